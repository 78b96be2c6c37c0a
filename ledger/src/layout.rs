//! Where a server keeps its logs: `<data_dir>/logs/<name>` (a name's
//! `/`-separated parts become nested directories). Shared by ledgerd and
//! the CLI's offline commands.

use std::path::{Path, PathBuf};

/// The directory of log `name` under `data_dir`.
pub fn log_dir(data_dir: &Path, name: &str) -> PathBuf {
    name.split('/').fold(data_dir.join("logs"), |p, part| p.join(part))
}

/// The keyring file of a log directory.
pub fn keyring(log_dir: &Path) -> PathBuf {
    log_dir.join("keys").join("keyring.json")
}
