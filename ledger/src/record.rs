//! Journal record bodies (FORMAT.md §6.2): encode and decode the `Record`
//! oneof. Shared by the writer, the index catch-up and the verifier.

use bytes::Bytes;
use prost::Message as _;

use ledger_proto::v1::record::Body;
pub use ledger_proto::v1::{CheckpointRecord, EntryRecord, Record};

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// an entry
    Entry(EntryRecord),
    /// a history checkpoint note
    Checkpoint(String),
}

/// Decodes record bytes (zero-copy for the entry's byte fields).
pub fn decode(bytes: Bytes) -> Result<Decoded, String> {
    let r = Record::decode(bytes).map_err(|e| format!("record does not decode: {e}"))?;
    match r.body {
        Some(Body::Entry(e)) => Ok(Decoded::Entry(e)),
        Some(Body::Checkpoint(c)) => Ok(Decoded::Checkpoint(c.note)),
        None => Err("record has no body".into()),
    }
}

/// Encodes an entry record.
pub fn encode_entry(e: EntryRecord) -> Vec<u8> {
    Record { body: Some(Body::Entry(e)) }.encode_to_vec()
}

/// Encodes a checkpoint record.
pub fn encode_checkpoint(note: &str) -> Vec<u8> {
    Record { body: Some(Body::Checkpoint(CheckpointRecord { note: note.to_owned() })) }.encode_to_vec()
}
