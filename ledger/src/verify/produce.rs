//! The verifier's reading thread: frames, records, leaf decoding and the
//! SHA-256 work, in chunks for the replay thread.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;

use prost::Message as _;

use super::FindingKind;
use crate::hash::{Hash, leaf_hash, sha256};
use crate::journal::{FRAME_HEADER_LEN, JournalError, SegmentScanner};
use crate::leaf::{Leaf, LeafError, decode_leaf};
use crate::record::{self, Decoded};

const CHUNK: usize = 1024;

/// One entry, decoded and hashed.
pub(super) struct LeafItem {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    pub leaf: Option<Leaf>,
    pub leaf_error: Option<String>,
    pub leaf_hash: Hash,
    pub payload_hash: Hash,
    pub payload_len: u64,
    pub hmac_key_id: String,
    pub hmac: bytes::Bytes,
    pub redacted_by: u64,
}

/// What the reading thread hands over.
pub(super) enum Item {
    Segment { first_seq: u64 },
    Leaf(Box<LeafItem>),
    Checkpoint { note: String, bytes: u64 },
    Bad { kind: FindingKind, detail: String, bytes: u64 },
}

/// Reads every segment in order; a damaged frame ends its segment.
pub(super) fn produce(segments: &[(u64, PathBuf)], tx: &SyncSender<Vec<Item>>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    for (first, path) in segments {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut scan = match SegmentScanner::open(path, *first, None) {
            Ok(s) => s,
            Err(e) => {
                chunk.push(Item::Bad { kind: FindingKind::SegmentHeader, detail: e.to_string(), bytes: size });
                continue;
            }
        };
        chunk.push(Item::Segment { first_seq: *first });
        loop {
            match scan.next_frame() {
                Ok(None) => break,
                Ok(Some((offset, bytes))) => chunk.push(item(path, offset, bytes)),
                Err(e) => {
                    let kind = if matches!(e, JournalError::Corrupt { .. }) {
                        FindingKind::FrameCorrupt
                    } else {
                        FindingKind::SegmentHeader
                    };
                    chunk.push(Item::Bad {
                        kind,
                        detail: format!("{e}; the rest of this segment is skipped"),
                        bytes: size.saturating_sub(scan.offset()),
                    });
                    break;
                }
            }
            if chunk.len() >= CHUNK && tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(chunk);
}

fn item(path: &std::path::Path, offset: u64, bytes: bytes::Bytes) -> Item {
    let frame_bytes = FRAME_HEADER_LEN + bytes.len() as u64;
    match record::decode(bytes) {
        Err(e) => Item::Bad {
            kind: FindingKind::FrameCorrupt,
            detail: format!("{} offset {offset}: {e}", path.display()),
            bytes: frame_bytes,
        },
        Ok(Decoded::Checkpoint(note)) => Item::Checkpoint { note, bytes: frame_bytes },
        Ok(Decoded::Entry(e)) => {
            let (leaf, leaf_error) = match decode_leaf(&e.leaf) {
                Ok(l) => (Some(l), None),
                Err(LeafError::NotCanonical) => {
                    (Leaf::decode(e.leaf.clone()).ok(), Some(LeafError::NotCanonical.to_string()))
                }
                Err(x) => (None, Some(format!("{} offset {offset}: {x}", path.display()))),
            };
            Item::Leaf(Box::new(LeafItem {
                segment: path.to_owned(),
                offset,
                bytes: frame_bytes,
                leaf,
                leaf_error,
                leaf_hash: leaf_hash(&e.leaf),
                payload_hash: sha256(&e.payload),
                payload_len: e.payload.len() as u64,
                hmac_key_id: e.hmac_key_id,
                hmac: e.hmac,
                redacted_by: e.redacted_by,
            }))
        }
    }
}
