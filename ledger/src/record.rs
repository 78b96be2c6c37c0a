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

/// A record read back where entry `seq` belongs, checked (`decode_at`).
// Transient (one per read); boxing the entry would cost every read an
// allocation for the rare checkpoint record's sake.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// an entry whose leaf decodes and has the expected seq
    Entry {
        /// the record
        record: EntryRecord,
        /// its decoded leaf
        leaf: crate::leaf::Leaf,
        /// `H(0x00 ‖ leaf bytes)`
        leaf_hash: crate::hash::Hash,
    },
    /// a history checkpoint note
    Checkpoint(String),
}

/// Decodes a record found where entry `seq` belongs (or a checkpoint
/// record): an entry's leaf must decode and carry that seq. The one checked
/// decode of the stores' catch-up and of the log's reads.
pub fn decode_at(bytes: Bytes, seq: u64) -> Result<Checked, String> {
    match decode(bytes)? {
        Decoded::Checkpoint(note) => Ok(Checked::Checkpoint(note)),
        Decoded::Entry(record) => {
            let leaf = crate::leaf::decode_leaf(&record.leaf).map_err(|e| e.to_string())?;
            if leaf.seq != seq {
                return Err(format!("entry has seq {} where {seq} was expected", leaf.seq));
            }
            let leaf_hash = crate::hash::leaf_hash(&record.leaf);
            Ok(Checked::Entry { record, leaf, leaf_hash })
        }
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

fn varint(mut v: u64, width: usize, out: &mut Vec<u8>) {
    for i in 0..width {
        let more = i + 1 < width;
        out.push((v & 0x7f) as u8 | if more { 0x80 } else { 0 });
        v >>= 7;
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Parses `0x0A ‖ varint(len) ‖ body` (a `Record` holding an entry): the
/// prefix length and the body length.
fn entry_prefix(record: &[u8]) -> Option<(usize, usize)> {
    if record.first() != Some(&0x0A) {
        return None;
    }
    let (mut len, mut shift, mut at) = (0u64, 0u32, 1usize);
    loop {
        let b = *record.get(at)?;
        len |= u64::from(b & 0x7f) << shift;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    (at + len as usize == record.len()).then_some((at, len as usize))
}

/// The redacted form of an entry record, exactly as long as `record`
/// (FORMAT.md §6.4): the payload removed, `redacted_by` set, `padding`
/// filling the difference (the `redacted_by` varint is one byte longer than
/// minimal when the difference would otherwise be one byte). `None` when the
/// record is not an entry, or its payload is too short to make room.
pub fn redacted(record: &Bytes, redacted_by: u64) -> Option<Vec<u8>> {
    let (prefix, body_len) = entry_prefix(record)?;
    let Ok(Decoded::Entry(e)) = decode(record.clone()) else {
        return None;
    };
    let base = EntryRecord { payload: Bytes::new(), redacted_by: 0, padding: Bytes::new(), ..e };
    let mut body = base.encode_to_vec();
    let room = body_len.checked_sub(body.len() + 1)?; // after field 5's tag
    let min = varint_len(redacted_by);
    for width in min..=10 {
        let Some(rest) = room.checked_sub(width) else { break };
        // `rest` = 0, or a padding field: tag ‖ varint(n) ‖ n zero bytes
        let pad = (0..=rest).find(|&n| rest == 0 || 1 + varint_len(n as u64) + n == rest);
        let Some(n) = pad else { continue };
        body.push(0x28);
        varint(redacted_by, width, &mut body);
        if rest > 0 {
            body.push(0x32);
            varint(n as u64, varint_len(n as u64), &mut body);
            body.resize(body.len() + n, 0);
        }
        let mut out = record[..prefix].to_vec();
        out.extend_from_slice(&body);
        debug_assert_eq!(out.len(), record.len());
        return Some(out);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload_len: usize) -> Bytes {
        Bytes::from(encode_entry(EntryRecord {
            leaf: Bytes::from(vec![7u8; 90]),
            payload: Bytes::from(vec![b'x'; payload_len]),
            hmac_key_id: "0123456789abcdef".into(),
            hmac: Bytes::from(vec![1u8; 32]),
            redacted_by: 0,
            padding: Bytes::new(),
        }))
    }

    #[test]
    fn redacted_records_keep_their_length_and_decode() {
        for payload_len in [2usize, 3, 7, 8, 9, 10, 11, 12, 126, 127, 128, 129, 130, 131, 200, 16_383, 16_384, 65_536] {
            for by in [1u64, 127, 128, 16_384, 1 << 21, 1 << 35, u64::MAX] {
                let old = record(payload_len);
                let Some(new) = redacted(&old, by) else {
                    assert!(payload_len < 12, "payload {payload_len} by {by} must fit");
                    continue;
                };
                assert_eq!(new.len(), old.len(), "payload {payload_len} by {by}");
                let Ok(Decoded::Entry(e)) = decode(Bytes::from(new)) else { panic!("decodes") };
                assert!(e.payload.is_empty());
                assert_eq!(e.redacted_by, by);
                assert!(e.padding.iter().all(|&b| b == 0));
                assert_eq!(e.leaf, Bytes::from(vec![7u8; 90]));
            }
        }
    }

    #[test]
    fn checkpoint_records_are_not_redacted() {
        assert!(redacted(&Bytes::from(encode_checkpoint("note")), 5).is_none());
    }
}
