//! Evidence packs (FORMAT.md §14): one incident's entries, each with an
//! inclusion proof in one signed checkpoint, the subject's chain, the
//! referenced artifacts and the reports for people, checked offline with
//! public keys only.
//!
//! Owns: the pack's file formats ([`types`]), writing them ([`PackWriter`]),
//! their verification ([`verify`]) and the incident timeline the reports and
//! `ledger incident show` print ([`timeline`]). Must not: talk to a server
//! (the CLI fetches, then calls this) or trust anything in a pack that the
//! keys, the proofs or the leaves do not back.

mod checks;
mod encode;
pub mod timeline;
pub mod types;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use encode::{PackWriter, StoredBytes, entries_text, line_for};
pub use types::{Consistency, FileDigest, Manifest, ManifestArtifact, PACK_VERSION, PackLine, Role, TreeHead};
pub use verify::verify;

use crate::verify::Report;

/// Where a pack's files come from (a directory, or memory in tests).
pub trait PackSource {
    /// The bytes of the file `name` (a path relative to the pack, `/`
    /// separated); `None` when it does not exist.
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>>;
}

/// A pack on disk.
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// The pack in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }
}

impl PackSource for DirSource {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl PackSource for std::collections::BTreeMap<String, Vec<u8>> {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.get(name).cloned())
    }
}

/// The pack could not be checked at all (distinct from findings).
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// No `pack.json`: not an evidence pack.
    #[error("no pack.json: not an evidence pack (write one with `ledger incident pack INC --out DIR`)")]
    NotAPack,
    /// `pack.json` does not parse.
    #[error("pack.json: {reason}")]
    Manifest {
        /// why
        reason: String,
    },
    /// Another pack format version.
    #[error("pack.json: version {found} is not {PACK_VERSION}, the version this ledger reads")]
    Version {
        /// the version found
        found: u32,
    },
    /// A file could not be read.
    #[error("{name}: {source}")]
    Io {
        /// the file, relative to the pack
        name: String,
        /// the OS error
        source: std::io::Error,
    },
    /// No keys were given.
    #[error("no verifier keys given: pass the log's vkeys")]
    NoKeys,
}

/// An artifact the pack proves by its hashes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// hex BLAKE3
    pub blake3: String,
    /// its name in the leaf
    pub name: String,
    /// its length
    pub size: u64,
    /// why its bytes are not in the pack
    pub reason: String,
}

/// What `ledger verify-pack` reports: §11's report (with `entries`,
/// `tree_size`, `root`, findings) and the pack's own counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackReport {
    /// findings, counts, tree size and root
    #[serde(flatten)]
    pub report: Report,
    /// the pack's subject
    pub subject: String,
    /// entries with role `subject`
    pub subject_entries: u64,
    /// artifacts whose bytes were checked
    pub artifacts_checked: u64,
    /// artifacts proven by their hashes only
    pub artifacts_omitted: Vec<Omitted>,
    /// the trusted checkpoint's size, when one was checked
    pub trusted_size: Option<u64>,
}

impl PackReport {
    /// A human rendering: a summary line, then one line per finding.
    pub fn to_text(&self) -> String {
        let r = &self.report;
        let mut s = format!(
            "{}: pack of {} ({} entries, {} of the subject), {} artifacts checked, {} by hash only; tree size {} root {}\n",
            if r.ok { "VALID" } else { "INVALID" },
            self.subject,
            r.entries,
            self.subject_entries,
            self.artifacts_checked,
            self.artifacts_omitted.len(),
            r.tree_size,
            r.root
        );
        if let Some(t) = self.trusted_size {
            s.push_str(&format!("  checked against the trusted checkpoint of size {t}\n"));
        }
        for f in &r.findings {
            let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
            s.push_str(&format!("  {} seq {seq}: {}\n", f.kind.name(), f.detail));
        }
        for o in &self.artifacts_omitted {
            s.push_str(&format!(
                "  note: artifact {} ({}, {} bytes) by hash only: {}\n",
                o.name, o.blake3, o.size, o.reason
            ));
        }
        s
    }
}
