//! One batch checked the way `ledger verify` checks a journal, before a
//! replica applies it (docs/HA.md "Followers"): the same replay, fed from
//! frames in memory instead of segment files, ending with the batch's own
//! signed checkpoint.
//!
//! Owns: turning a batch's frames into the replay's items. Must not: check
//! anything the file replay does not (one verification path).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{FindingKind, Replay, Report, produce};
use crate::hash::Hash;
use crate::journal::parse_frame;
use crate::keys::HmacKeySet;
use crate::merkle::CompactRange;
use crate::note::NoteVerifier;

/// The state of the log just before a batch: what its first entry must
/// follow.
#[derive(Debug, Clone)]
pub struct BatchStart {
    /// seq of the batch's first entry
    pub first_seq: u64,
    /// leaf hash of `first_seq - 1` (zeros at 0)
    pub prev_hash: Hash,
    /// recorded_at of `first_seq - 1`
    pub prev_recorded_at: i64,
    /// the compact range of the first `first_seq` leaves
    pub range: CompactRange,
    /// redacted records before the batch whose redaction entries are at or
    /// after `first_seq`, as (redaction seq, redacted seq): a replica that
    /// copied a row already rewritten by a redaction (FORMAT.md §6.4) checks
    /// the claim when the redaction entry arrives
    pub redactions: Vec<(u64, u64)>,
}

/// Replays a batch's journal frames (FORMAT.md §6.2) from `start`, then
/// checks `head` (the batch's signed checkpoint note) against the replayed
/// tree: signature under `vkeys`, size, root. HMAC tags are checked when
/// `hmac` is given. The report's findings are what `ledger verify` would
/// report for the same bytes (a subject chain reaching before the batch is
/// not followed, as for a partial journal); warnings do not fail it.
/// Returned with the report: the redaction claims still open after the
/// batch (those of `start` and the batch's own whose redaction entries are
/// after it), for the next batch's `start`.
pub fn verify_batch(
    start: &BatchStart,
    frames: &Bytes,
    head: &str,
    vkeys: &[NoteVerifier],
    hmac: Option<&HmacKeySet>,
) -> (Report, Vec<(u64, u64)>) {
    let mut state = Replay::new(vkeys, None);
    (state.expect, state.prev_hash, state.prev_time) = (start.first_seq, start.prev_hash, start.prev_recorded_at);
    state.range = start.range.clone();
    state.redactions.extend(start.redactions.iter().copied());
    state.report.first_seq = start.first_seq;
    let name: Arc<Path> = Arc::from(Path::new(&format!("batch from seq {}", start.first_seq)));
    let mut offset = 0usize;
    while offset < frames.len() {
        match parse_frame(&frames[offset..]) {
            Ok(Some((record, len))) => {
                let bytes = frames.slice_ref(record);
                state.item(produce::item(name.clone(), offset as u64, bytes, hmac));
                offset += len;
            }
            Ok(None) => break,
            Err(e) => {
                let at = Some(state.range.size());
                state.find(FindingKind::FrameCorrupt, at, format!("{} offset {offset}: {e}", name.display()));
                break;
            }
        }
    }
    if state.range.size() == start.first_seq {
        state.find(FindingKind::Truncated, Some(start.first_seq), "the batch holds no entry".into());
    }
    state.checkpoint(head);
    let end = state.range.size();
    let mut open: Vec<(u64, u64)> =
        state.redactions.iter().filter(|(by, _)| **by >= end).map(|(b, t)| (*b, *t)).collect();
    open.sort_unstable();
    state.redactions.retain(|by, _| *by < end);
    (state.finish(), open)
}
