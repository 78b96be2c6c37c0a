//! Where things are on disk: a server's logs, `<data_dir>/logs/<name>` (a
//! name's `/`-separated parts become nested directories), the parts of a
//! log directory on the file store, and of an export bundle. The one source
//! of these paths for ledgerd, the file store and the CLI's offline
//! commands.

use std::path::{Path, PathBuf};

/// The directory of log `name` under `data_dir`.
pub fn log_dir(data_dir: &Path, name: &str) -> PathBuf {
    name.split('/').fold(data_dir.join("logs"), |p, part| p.join(part))
}

/// The keyring file of a log directory.
pub fn keyring(log_dir: &Path) -> PathBuf {
    log_dir.join("keys").join("keyring.json")
}

/// The journal directory (segment files, FORMAT.md §6) of a log directory
/// on the file store, or of an export bundle.
pub fn journal(dir: &Path) -> PathBuf {
    dir.join("journal")
}

/// The index directory (FORMAT.md §10) of a log directory on the file store.
pub fn index(log_dir: &Path) -> PathBuf {
    log_dir.join("index")
}

/// The artifact blob directory of a log directory on the file store.
pub fn artifacts(log_dir: &Path) -> PathBuf {
    log_dir.join("artifacts")
}

/// The single-writer lease of a log directory on the file store.
pub fn writer_lock(log_dir: &Path) -> PathBuf {
    log_dir.join("LOCK")
}
