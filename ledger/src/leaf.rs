//! Leaf construction and the canonical-encoding check (FORMAT.md §3).
//!
//! Owns: how a validated entry becomes leaf bytes, and how stored leaf bytes
//! are accepted. Must not: hash anything but through `crate::hash`.

use prost::Message as _;

use crate::entry::{ArtifactRef, NewEntry};
use crate::hash::Hash;
pub use ledger_proto::v1::Leaf;

/// The format version written in every leaf.
pub const FORMAT_VERSION: u32 = 1;

/// Why stored leaf bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// The bytes are not a protobuf `Leaf`.
    #[error("leaf does not decode: {0}")]
    Decode(String),
    /// Re-encoding gives other bytes (FORMAT.md §3.1).
    #[error("leaf is not in canonical encoding")]
    NotCanonical,
    /// A field is outside its range.
    #[error("leaf field {field}: {reason}")]
    Invalid {
        /// the field
        field: &'static str,
        /// why
        reason: String,
    },
}

/// The server-assigned parts of a leaf.
#[derive(Debug, Clone, Copy)]
pub struct Sequencing {
    /// position
    pub seq: u64,
    /// server time, unix ns
    pub recorded_at: i64,
    /// leaf hash of seq - 1
    pub prev_hash: Hash,
    /// seq + 1 of the previous leaf with the same subject, 0 if none
    pub subject_prev: u64,
}

/// Builds the leaf for a validated entry.
pub fn build_leaf(entry: &NewEntry, s: Sequencing) -> Leaf {
    Leaf {
        version: FORMAT_VERSION,
        seq: s.seq,
        recorded_at: s.recorded_at,
        prev_hash: s.prev_hash.to_vec(),
        category: entry.category.as_str().to_owned(),
        subject: entry.subject.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
        actor: entry.actor.as_str().to_owned(),
        request_id: entry.request_id.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
        occurred_at: entry.occurred_at.unwrap_or(0),
        payload_sha256: crate::hash::sha256(entry.payload.bytes()).to_vec(),
        payload_size: entry.payload.bytes().len() as u64,
        artifacts: entry.artifacts.iter().map(artifact_to_proto).collect(),
        subject_prev: s.subject_prev,
    }
}

/// An artifact reference as its protobuf message.
pub fn artifact_to_proto(a: &ArtifactRef) -> ledger_proto::v1::ArtifactRef {
    ledger_proto::v1::ArtifactRef {
        blake3: a.blake3.to_vec(),
        sha256: a.sha256.to_vec(),
        size: a.size,
        name: a.name.clone(),
        media_type: a.media_type.clone(),
    }
}

/// Encodes a leaf (prost writes the canonical form of FORMAT.md §3.1).
pub fn encode_leaf(leaf: &Leaf) -> Vec<u8> {
    leaf.encode_to_vec()
}

/// Decodes stored leaf bytes, requiring the canonical encoding, version 1 and
/// 32-byte hashes.
pub fn decode_leaf(bytes: &[u8]) -> Result<Leaf, LeafError> {
    let leaf = Leaf::decode(bytes).map_err(|e| LeafError::Decode(e.to_string()))?;
    if leaf.version != FORMAT_VERSION {
        return Err(LeafError::Invalid {
            field: "version",
            reason: format!("{} is not {FORMAT_VERSION}", leaf.version),
        });
    }
    for (field, v) in [("prev_hash", &leaf.prev_hash), ("payload_sha256", &leaf.payload_sha256)] {
        if v.len() != 32 {
            return Err(LeafError::Invalid { field, reason: format!("{} bytes, not 32", v.len()) });
        }
    }
    if leaf.encoded_len() != bytes.len() || leaf.encode_to_vec() != bytes {
        return Err(LeafError::NotCanonical);
    }
    Ok(leaf)
}

/// The leaf's `prev_hash` as an array (decode_leaf guarantees 32 bytes).
pub fn prev_hash(leaf: &Leaf) -> Hash {
    crate::hash::from_slice(&leaf.prev_hash).unwrap_or([0; 32])
}
