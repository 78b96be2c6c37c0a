//! The verifier's reading and hashing: one thread reads frames (CRC
//! checked) in numbered chunks; worker threads decode records and leaves,
//! do the SHA-256 work and check each stored payload against the payload
//! rules (FORMAT.md §3.4); the replay thread puts the chunks back in order.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use prost::Message as _;

use super::FindingKind;
use crate::hash::{Hash, leaf_hash, sha256};
use crate::journal::{FRAME_HEADER_LEN, JournalError, SegmentScanner};
use crate::keys::HmacKeySet;
use crate::leaf::{Leaf, LeafError, decode_leaf};
use crate::record::{self, Decoded, EntryRecord};
use crate::sync;

const CHUNK: usize = 1024;

/// One entry, decoded and hashed.
pub(super) struct LeafItem {
    pub segment: Arc<Path>,
    pub offset: u64,
    pub bytes: u64,
    pub leaf: Option<Leaf>,
    pub leaf_error: Option<String>,
    pub leaf_hash: Hash,
    pub payload_hash: Hash,
    pub payload_len: u64,
    pub hmac_key_id: String,
    /// the HMAC check, done here when the auditor holds the keys and the
    /// leaf decodes
    pub hmac: Option<HmacOutcome>,
    pub redacted_by: u64,
    /// what the writer would now refuse in the stored payload, as its
    /// error names it (`payload.x.y: duplicate member name`); none for a
    /// redacted record's missing payload
    pub payload_warning: Option<String>,
}

/// The HMAC tag of one entry against the auditor's keys (FORMAT.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacOutcome {
    /// the key id is not among the keys
    UnknownKey,
    /// the tag does not verify
    Mismatch,
    /// the tag verifies but the key was not valid at `recorded_at`
    KeyNotValid,
    /// the tag verifies under a key valid at `recorded_at`
    Ok,
}

pub(crate) fn hmac_outcome(keys: &HmacKeySet, key_id: &str, leaf_hash: &Hash, tag: &[u8], leaf: &Leaf) -> HmacOutcome {
    match keys.get(key_id) {
        None => HmacOutcome::UnknownKey,
        Some((key, _)) if !key.verify(leaf_hash, tag) => HmacOutcome::Mismatch,
        Some((_, entry)) if !entry.valid_at(leaf.recorded_at) => HmacOutcome::KeyNotValid,
        Some(_) => HmacOutcome::Ok,
    }
}

/// What the reading thread hands over.
pub(super) enum Item {
    Segment { first_seq: u64 },
    Leaf(Box<LeafItem>),
    Checkpoint { note: String, bytes: u64 },
    Bad { kind: FindingKind, detail: String, bytes: u64 },
}

/// A frame as read, before decoding.
pub(super) enum Raw {
    Segment { first_seq: u64 },
    Frame { path: Arc<Path>, offset: u64, bytes: bytes::Bytes },
    Bad { kind: FindingKind, detail: String, bytes: u64 },
}

/// A numbered chunk (the replay applies chunks in number order).
pub(super) type Chunk<T> = (u64, Vec<T>);

/// Decodes, hashes and checks HMAC tags (with `keys`) of chunks until the
/// reader is done.
pub(super) fn work(
    rx: &std::sync::Mutex<Receiver<Chunk<Raw>>>,
    tx: &SyncSender<Chunk<Item>>,
    keys: Option<&HmacKeySet>,
) {
    loop {
        let next = sync::lock(rx).recv();
        let Ok((n, raws)) = next else { return };
        let items = raws
            .into_iter()
            .map(|r| match r {
                Raw::Segment { first_seq } => Item::Segment { first_seq },
                Raw::Bad { kind, detail, bytes } => Item::Bad { kind, detail, bytes },
                Raw::Frame { path, offset, bytes } => item(path, offset, bytes, keys),
            })
            .collect();
        if tx.send((n, items)).is_err() {
            return;
        }
    }
}

/// Reads every segment in order; a damaged frame ends its segment.
pub(super) fn read(segments: &[(u64, std::path::PathBuf)], tx: &SyncSender<Chunk<Raw>>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut n = 0;
    for (first, path) in segments {
        let shared: Arc<Path> = Arc::from(path.as_path());
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut scan = match SegmentScanner::open(path, *first, None) {
            Ok(s) => s,
            Err(e) => {
                chunk.push(Raw::Bad { kind: FindingKind::SegmentHeader, detail: e.to_string(), bytes: size });
                continue;
            }
        };
        chunk.push(Raw::Segment { first_seq: *first });
        loop {
            match scan.next_frame() {
                Ok(None) => break,
                Ok(Some((offset, bytes))) => chunk.push(Raw::Frame { path: shared.clone(), offset, bytes }),
                Err(e) => {
                    let kind = if matches!(e, JournalError::Corrupt { .. }) {
                        FindingKind::FrameCorrupt
                    } else {
                        FindingKind::SegmentHeader
                    };
                    chunk.push(Raw::Bad {
                        kind,
                        detail: format!("{e}; the rest of this segment is skipped"),
                        bytes: size.saturating_sub(scan.offset()),
                    });
                    break;
                }
            }
            if chunk.len() >= CHUNK {
                if tx.send((n, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))).is_err() {
                    return;
                }
                n += 1;
            }
        }
    }
    let _ = tx.send((n, chunk));
}

pub(super) fn item(path: Arc<Path>, offset: u64, bytes: bytes::Bytes, keys: Option<&HmacKeySet>) -> Item {
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
            let leaf_hash = leaf_hash(&e.leaf);
            // An entry without a leaf gets no HMAC outcome: the replay reports the leaf.
            let hmac = keys.zip(leaf.as_ref()).map(|(k, l)| hmac_outcome(k, &e.hmac_key_id, &leaf_hash, &e.hmac, l));
            let payload_warning = payload_warning(&e);
            Item::Leaf(Box::new(LeafItem {
                segment: path,
                offset,
                bytes: frame_bytes,
                leaf,
                leaf_error,
                leaf_hash,
                payload_hash: sha256(&e.payload),
                payload_len: e.payload.len() as u64,
                hmac_key_id: e.hmac_key_id,
                hmac,
                redacted_by: e.redacted_by,
                payload_warning,
            }))
        }
    }
}

/// The payload rules (FORMAT.md §3.4) on a stored payload, by the writer's
/// own check: "field: reason" when it breaks them. A redacted record has no
/// payload to check.
fn payload_warning(e: &EntryRecord) -> Option<String> {
    if e.redacted_by != 0 && e.payload.is_empty() {
        return None;
    }
    crate::entry::stored_payload_error(&e.payload).map(|v| format!("{}: {}", v.field, v.reason))
}
