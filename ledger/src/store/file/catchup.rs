//! Bringing the index up to the journal on open (the index is derived
//! data: FORMAT.md §10).

use std::path::Path;

use super::index::{Index, IndexBatch, IndexedEntry, Position};
use super::reader::JournalReader;
use crate::hash::leaf_hash;
use crate::journal::{FRAME_HEADER_LEN, JournalError, SegmentScanner, list_segments};
use crate::merkle::CompactRange;
use crate::record::{self, Checked, Decoded};
use crate::store::{StoreError, StoreErrorKind};

/// Entries indexed per sled batch during catch-up.
const CHUNK: u64 = 8192;

/// Indexes every journal entry after `indexed_through`; returns how many.
pub(super) fn catch_up(index: &Index, dir: &Path) -> Result<u64, StoreError> {
    let through = index.indexed_through()?;
    let sled_through = index.sled_through()?;
    let start = if through == 0 { None } else { Some(check_last_indexed(index, dir, through)?) };
    let mut range = CompactRange::from_source(index, through)
        .map_err(|e| StoreError::with_source(StoreErrorKind::Damaged, "the index's Merkle nodes", e))?;
    let mut expect = through;
    let mut batch = IndexBatch::default();
    for (first, path) in list_segments(dir)? {
        let from = match start {
            Some((seg, _)) if first < seg => continue,
            Some((seg, off)) if first == seg => Some(off),
            _ => None,
        };
        let mut scan = SegmentScanner::open(&path, first, from)?;
        while let Some((offset, bytes)) = scan.next_frame()? {
            let frame_len = (FRAME_HEADER_LEN as usize + bytes.len()) as u32;
            let bad = |reason: String| JournalError::Corrupt { segment: path.clone(), offset, reason };
            match record::decode_at(bytes, expect).map_err(bad)? {
                Checked::Checkpoint(note) => batch.add_checkpoint(expect, &note),
                Checked::Entry { leaf, leaf_hash: h, .. } => {
                    let pos =
                        Position { segment: first, offset, frame_len, leaf_hash: h, recorded_at: leaf.recorded_at };
                    let flat_only = expect < sled_through;
                    batch.add_entry(IndexedEntry { seq: expect, pos, leaf: &leaf, request_hash: None, flat_only });
                    range.push(h, |l, i, n| batch.add_node(l, i, n));
                    expect += 1;
                    if (expect - through) % CHUNK == 0 {
                        index.apply(std::mem::take(&mut batch).replayed())?;
                    }
                }
            }
        }
    }
    index.apply(batch.replayed())?;
    Ok(expect - through)
}

/// Checks that the last indexed entry is in the journal as indexed; returns
/// where the next frame starts.
fn check_last_indexed(index: &Index, dir: &Path, through: u64) -> Result<(u64, u64), StoreError> {
    let missing = StoreError::new(
        StoreErrorKind::Missing { indexed: through, missing: through - 1 },
        format!("the index holds {through} entries but the journal does not have entry {}", through - 1),
    );
    let Some(pos) = index.position(through - 1)? else {
        return Err(missing);
    };
    let Ok(bytes) = JournalReader::new(dir.to_owned()).read(pos.segment, pos.offset, pos.frame_len) else {
        return Err(missing);
    };
    match record::decode(bytes) {
        Ok(Decoded::Entry(e)) if leaf_hash(&e.leaf) == pos.leaf_hash => {
            Ok((pos.segment, pos.offset + u64::from(pos.frame_len)))
        }
        _ => Err(missing),
    }
}
