//! Redaction in the commit log (FORMAT.md §6.4, docs/HA.md "Admin
//! actions"): a batch that carries a `redaction` entry also rewrites its
//! target's frame in the stored rows, in the same transaction that commits
//! the entry. The two durable steps of a single node become one commit, so
//! no crash leaves the entry without its effect in the database; each
//! replica applies the effect to its own copy when it replays the entry
//! (`Ledger::apply_replica`).
//!
//! Owns: finding a frame in a row group and replacing it with a redacted
//! frame of the same length. Must not: decide what is redacted (the
//! `ledger` crate wrote and checked the redaction entry) or change any
//! other byte of a row.

use bytes::Bytes;
use ledger::journal::{encode_frame, parse_frame};
use ledger::record::{self, Decoded};
use ledger::store::{LogStore, WriteBatch};
use tokio_postgres::Transaction;

use crate::fence::FenceError;

/// A stored frame to replace: the record of entry `seq`, redacted.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// the redacted entry
    pub seq: u64,
    /// its redacted record, as long as the stored one
    pub record: Vec<u8>,
}

/// The rewrites the redaction entries among `batches` call for, their
/// targets read from the local replica (which holds every committed
/// entry before them).
pub fn rewrites(batches: &[WriteBatch], local: &dyn LogStore) -> Result<Vec<Rewrite>, String> {
    let mut out = Vec::new();
    for e in batches.iter().flat_map(|b| &b.entries) {
        if e.leaf.category != ledger::log::REDACTION {
            continue;
        }
        let by = e.leaf.seq;
        let seq = ledger::log::redaction_target(&e.leaf.request_id)
            .ok_or_else(|| format!("redaction entry {by}: request id {:?} names no entry", e.leaf.request_id))?;
        let (_, old) = local
            .record(seq)
            .map_err(|err| format!("redaction entry {by}: reading entry {seq}: {err}"))?
            .ok_or_else(|| format!("redaction entry {by}: entry {seq} is not in the replica"))?;
        let record = record::redacted(&old, by + 1)
            .ok_or_else(|| format!("redaction entry {by}: entry {seq} cannot be redacted in place"))?;
        out.push(Rewrite { seq, record });
    }
    Ok(out)
}

/// Replaces the frame of `r.seq` in the row group that holds it, inside
/// the batch's transaction (the head is locked and checked already).
pub async fn apply(tx: &Transaction<'_>, log: &str, r: &Rewrite) -> Result<(), FenceError> {
    let failed = |reason: String| FenceError::Rewrite { log: log.to_owned(), seq: r.seq, reason };
    let rows = tx
        .query(
            "SELECT first_seq, part, frames FROM ledger_batch WHERE log = $1 AND first_seq = \
             (SELECT max(first_seq) FROM ledger_batch WHERE log = $1 AND first_seq <= $2) ORDER BY part",
            &[&log, &(r.seq as i64)],
        )
        .await
        .map_err(|e| failed(crate::schema::detail(&e)))?;
    let first = rows.first().map(|row| row.get::<_, i64>(0) as u64).ok_or_else(|| failed("no stored row".into()))?;
    let mut parts: Vec<Vec<u8>> = rows.iter().map(|row| row.get(2)).collect();
    let (part, at, len) = locate(&parts, first, r.seq).map_err(failed)?;
    let mut frame = Vec::with_capacity(len);
    encode_frame(&r.record, &mut frame);
    if frame.len() != len {
        return Err(failed(format!("the redacted frame is {} bytes, the stored one {len}", frame.len())));
    }
    parts[part][at..at + len].copy_from_slice(&frame);
    tx.execute(
        "UPDATE ledger_batch SET frames = $4 WHERE log = $1 AND first_seq = $2 AND part = $3",
        &[&log, &(first as i64), &(part as i32), &parts[part]],
    )
    .await
    .map_err(|e| failed(crate::schema::detail(&e)))?;
    Ok(())
}

/// (part, offset, frame length) of entry `seq`'s frame in the parts of the
/// row group starting at `first_seq`; entries are counted in frame order,
/// checkpoint frames skipped. The frame must hold entry `seq` unredacted.
pub fn locate(parts: &[Vec<u8>], first_seq: u64, seq: u64) -> Result<(usize, usize, usize), String> {
    let mut next = first_seq;
    for (p, bytes) in parts.iter().enumerate() {
        let mut at = 0;
        while at < bytes.len() {
            let Some((body, len)) = parse_frame(&bytes[at..]).map_err(|e| format!("part {p} offset {at}: {e}"))? else {
                break;
            };
            match record::decode(Bytes::copy_from_slice(body))? {
                Decoded::Entry(e) if next == seq => {
                    if e.redacted_by != 0 || e.payload.is_empty() {
                        return Err(format!("entry {seq} is stored redacted already"));
                    }
                    return Ok((p, at, len));
                }
                Decoded::Entry(_) => next += 1,
                Decoded::Checkpoint(_) => {}
            }
            at += len;
        }
    }
    Err(format!("entry {seq} is not in the row group from seq {first_seq}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::record::{EntryRecord, encode_checkpoint, encode_entry};

    fn frame(record: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(record, &mut out);
        out
    }

    fn entry(n: u8) -> Vec<u8> {
        encode_entry(EntryRecord {
            leaf: Bytes::from(vec![n; 40]),
            payload: Bytes::from(vec![b'x'; 30]),
            hmac_key_id: "0123456789abcdef".into(),
            hmac: Bytes::from(vec![1u8; 32]),
            redacted_by: 0,
            padding: Bytes::new(),
        })
    }

    #[test]
    fn entries_are_counted_across_parts_and_checkpoints() {
        let (e0, e1, e2) = (frame(&entry(0)), frame(&entry(1)), frame(&entry(2)));
        let cp = frame(&encode_checkpoint("note"));
        let parts = vec![[e0.clone(), cp.clone()].concat(), [e1.clone(), e2.clone()].concat()];
        assert_eq!(locate(&parts, 10, 10), Ok((0, 0, e0.len())));
        assert_eq!(locate(&parts, 10, 11), Ok((1, 0, e1.len())));
        assert_eq!(locate(&parts, 10, 12), Ok((1, e1.len(), e2.len())));
        assert!(locate(&parts, 10, 13).unwrap_err().contains("not in the row group"));
    }

    #[test]
    fn a_redacted_frame_is_not_redacted_twice() {
        let old = Bytes::from(entry(0));
        let parts = vec![frame(&record::redacted(&old, 9).expect("fits"))];
        assert!(locate(&parts, 0, 0).unwrap_err().contains("redacted already"));
    }
}
