//! The files of an evidence pack as types (FORMAT.md §14.2–§14.4): the
//! manifest, one line of `entries.jsonl`, the consistency proof.
//!
//! Owns: the serde shapes and their member names. Must not: check anything
//! (that is `verify`) or touch the file system.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The pack format version this code writes and reads (`pack.json` `version`).
pub const PACK_VERSION: u32 = 1;

/// File names of a pack (FORMAT.md §14.1).
pub mod files {
    /// the manifest
    pub const MANIFEST: &str = "pack.json";
    /// the signed checkpoint every proof leads to
    pub const CHECKPOINT: &str = "checkpoint";
    /// one line per entry
    pub const ENTRIES: &str = "entries.jsonl";
    /// the auditor's earlier checkpoint
    pub const TRUSTED: &str = "trusted-checkpoint";
    /// the consistency proof from it
    pub const CONSISTENCY: &str = "consistency.json";
    /// the log's vkeys as the server listed them
    pub const VKEYS: &str = "vkeys";
    /// the artifacts' directory
    pub const ARTIFACTS: &str = "artifacts";
}

/// The SHA-256 and length of one file of the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// hex SHA-256 of the bytes
    pub sha256: String,
    /// length in bytes
    pub size: u64,
}

impl FileDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self { sha256: hex::encode(crate::hash::sha256(bytes)), size: bytes.len() as u64 }
    }
}

/// An artifact referenced by the pack's leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestArtifact {
    /// hex BLAKE3
    pub blake3: String,
    /// hex SHA-256
    pub sha256: String,
    /// length in bytes
    pub size: u64,
    /// its name in the leaf
    pub name: String,
    /// whether `artifacts/<blake3>` holds it
    pub included: bool,
    /// why not, when not included; empty otherwise
    pub reason: String,
}

/// A tree head named in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// tree size
    pub size: u64,
    /// hex root
    pub root: String,
}

/// `pack.json` (FORMAT.md §14.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `1`
    pub version: u32,
    /// the incident
    pub subject: String,
    /// the log's origin
    pub origin: String,
    /// the checkpoint's size
    pub tree_size: u64,
    /// the checkpoint's root (hex)
    pub root: String,
    /// when the pack was written (unix ns)
    pub created_at: i64,
    /// lines of entries.jsonl
    pub entries: u64,
    /// lines with role `subject`
    pub subject_entries: u64,
    /// the size limit artifacts were included under
    pub max_artifact_bytes: u64,
    /// every artifact the leaves reference
    pub artifacts: Vec<ManifestArtifact>,
    /// the auditor's earlier checkpoint, when given
    pub trusted: Option<TreeHead>,
    /// every other file but `artifacts/`: name → digest
    pub files: BTreeMap<String, FileDigest>,
}

/// Why an entry is in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// an entry of the pack's subject
    Subject,
    /// an alert entry an `alert_ack` of the subject names
    Alert,
}

/// One line of `entries.jsonl` (FORMAT.md §14.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackLine {
    /// the leaf's seq
    pub seq: u64,
    /// why it is here
    pub role: Role,
    /// base64 of the leaf bytes
    pub leaf: String,
    /// base64 of the payload bytes; `None` when redacted
    pub payload: Option<String>,
    /// seq+1 of the redaction entry, 0 if none
    pub redacted_by: u64,
    /// the HMAC key id
    pub hmac_key_id: String,
    /// hex HMAC tag
    pub hmac: String,
    /// hex inclusion proof hashes in the checkpoint's tree
    pub proof: Vec<String>,
}

/// `consistency.json` (FORMAT.md §14.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    /// the trusted checkpoint's size
    pub old_size: u64,
    /// the pack's tree size
    pub new_size: u64,
    /// hex hashes
    pub proof: Vec<String>,
}
