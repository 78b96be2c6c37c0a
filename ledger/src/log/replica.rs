//! A log as a replica (docs/HA.md "Followers"): batches that another node
//! sequenced and committed are checked the way `ledger verify` checks a
//! journal, then written through the same group sync as the log's own, so
//! the replica's reads, proofs and dedup are the log's usual ones; and the
//! writer's restart after a batch the store refused without keeping it.
//!
//! Owns: the checks before a replicated batch is written (it follows the
//! tip, verifies, ends at its signed checkpoint) and the writer state it
//! leaves. Must not: accept a batch that does not verify, or write one
//! that does not start at the tip.

use std::sync::Arc;

use bytes::Bytes;

use super::append::store_failed;
use super::{AppendError, Ledger, LedgerError, SignedCheckpoint, Tip, tip};
use crate::journal::parse_frame;
use crate::note::Checkpoint;
use crate::record::{self, Checked};
use crate::store::{BatchEntry, WriteBatch, request_hash};
use crate::sync::lock;
use crate::verify::{BatchStart, Finding, verify_batch};

/// Why a replicated batch was not applied (nothing of it was).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The batch does not start where the replica ends.
    #[error("the batch starts at seq {first_seq} but the replica holds {size} entries")]
    NotAtTip {
        /// the batch's first seq
        first_seq: u64,
        /// entries in the replica
        size: u64,
    },
    /// The batch does not verify: the first finding, as `ledger verify`
    /// names it.
    #[error("the batch from seq {first_seq} does not verify ({count} findings), first: {} at seq {}: {}", finding.kind.name(), finding.seq.map_or("-".into(), |s| s.to_string()), finding.detail)]
    Verify {
        /// the batch's first seq
        first_seq: u64,
        /// the first finding
        finding: Finding,
        /// findings in all
        count: u64,
    },
    /// The batch is tagged with an HMAC key this node does not hold, even
    /// after reading its keyring file again: a rotation's staged keys were
    /// not copied here. Nothing was applied; the node waits for the file.
    #[error(
        "the batch from seq {first_seq} uses a key this node does not hold ({detail}; {keyring}): copy the keyring with the staged keys from the node that staged them"
    )]
    KeysMissing {
        /// the batch's first seq
        first_seq: u64,
        /// the verifier's finding
        detail: String,
        /// what reading the keyring file again found
        keyring: String,
    },
    /// The replica stopped taking writes (an earlier failure).
    #[error("the replica stopped: {0}")]
    Stopped(String),
    /// The store failed to write or sync it.
    #[error("writing the batch failed: {0}")]
    Store(AppendError),
    /// The batch is written, but the effect of an admin entry it carries
    /// failed on this replica (a redaction is finished at the next open).
    #[error("the batch is applied but the {what} of entry {seq} failed here: {reason}")]
    Effect {
        /// the entry the effect is on (a redaction's target, a reindex entry)
        seq: u64,
        /// which effect
        what: &'static str,
        /// why
        reason: String,
    },
}

impl Ledger {
    /// Applies a batch sequenced by another node: its journal `frames`
    /// (entries, then an optional history checkpoint) and `head`, its
    /// signed checkpoint note. The batch must start at this log's size and
    /// verify under the log's keys (CRC, leaves, chain, HMAC tags, payload
    /// hashes, history checkpoints, and `head`'s signature, size and root);
    /// then it is written, made durable and published like an append.
    /// Returns the new size.
    pub fn apply_replica(&self, first_seq: u64, frames: Bytes, head: &str) -> Result<u64, ReplicaError> {
        let mut w = lock(&self.writer);
        if let Some(p) = self.s.vis.stopped() {
            return Err(ReplicaError::Stopped(p));
        }
        if first_seq != w.tip.next_seq {
            return Err(ReplicaError::NotAtTip { first_seq, size: w.tip.next_seq });
        }
        let start = BatchStart {
            first_seq,
            prev_hash: w.tip.last_hash,
            prev_recorded_at: w.tip.last_time,
            range: w.tip.range.clone(),
            redactions: w.claims.clone(),
        };
        let claims = self.verify_replicated(&start, &frames, head)?;
        // the replay verified its signature, size and root: only its fields are read here
        let checkpoint = checkpoint_of(head).map_err(|e| verify_failed(first_seq, e))?;
        let head = SignedCheckpoint { checkpoint, note: head.to_owned() };
        let pieces = replicated_batches(&w.tip, &frames, head).map_err(|e| verify_failed(first_seq, e))?;
        let redactions = redactions_in(pieces.iter().flat_map(|(b, _)| &b.entries));
        let rotations: Vec<u64> = pieces
            .iter()
            .flat_map(|(b, _)| &b.entries)
            .filter(|e| e.leaf.category == super::KEY_ROTATION)
            .map(|e| e.leaf.seq)
            .collect();
        let reindex = pieces.iter().flat_map(|(b, _)| &b.entries).rfind(|e| e.leaf.category == super::REINDEX);
        let reindex = reindex.map(|e| e.leaf.seq);
        for (batch, tip) in pieces {
            let end = tip.next_seq;
            let sent: Vec<u64> = batch.entries.iter().filter_map(|e| e.request_hash).collect();
            let subjects: Vec<(String, u64)> = batch
                .entries
                .iter()
                .filter(|e| !e.leaf.subject.is_empty())
                .map(|e| (e.leaf.subject.clone(), e.leaf.seq))
                .collect();
            let latest = batch.checkpoint.clone();
            let store = &mut w.store;
            self.s
                .group
                .append(end, latest, || store.write(batch).map_err(store_failed))
                .map_err(ReplicaError::Store)?;
            w.tip = tip;
            w.unindexed.prune(self.s.vis.indexed());
            w.unindexed.add(end, sent);
            if w.subjects.len() + subjects.len() > super::SUBJECT_CACHE {
                w.subjects.clear(); // a miss asks the store, which serves this batch once published
            }
            w.subjects.extend(subjects);
        }
        self.s.flush_written().map_err(ReplicaError::Store)?;
        if w.store.wants_durable_point()
            && let Err(e) = w.store.durable_point()
        {
            self.s.vis.stop(format!("the store failed at a durable point: {e}"));
        }
        w.claims = claims;
        for seq in rotations {
            let what = "key rotation";
            self.rotate_replica(seq).map_err(|reason| ReplicaError::Effect { seq, what, reason })?;
        }
        if let Some(seq) = reindex {
            // as on the node that wrote it: this replica's index is rebuilt at its next start
            let what = "index rebuild request";
            self.s.store.request_rebuild(seq).map_err(|e| ReplicaError::Effect { seq, what, reason: e.to_string() })?;
        }
        for (target, by) in redactions {
            let what = "redaction";
            self.redact_replica(&mut w, target, by).map_err(|e| ReplicaError::Effect {
                seq: target,
                what,
                reason: e.to_string(),
            })?;
        }
        Ok(w.tip.next_seq)
    }

    /// Verifies a replicated batch under the log's keys. A batch tagged with
    /// an HMAC key this node does not hold is checked again after the
    /// keyring file is read again (the staged keys of a rotation copied
    /// there, docs/HA.md "Admin actions"); when it still lacks the key the
    /// batch is `KeysMissing`: not applied, and not a verification failure.
    fn verify_replicated(
        &self,
        start: &BatchStart,
        frames: &Bytes,
        head: &str,
    ) -> Result<Vec<(u64, u64)>, ReplicaError> {
        let mut reread = None;
        loop {
            let (vkeys, hmac) = {
                let ring = crate::sync::read(&self.s.keyring);
                (ring.verifiers(), ring.hmac_keys())
            };
            let (report, claims) = verify_batch(start, frames, head, &vkeys, Some(&hmac));
            let Some(finding) = report.findings.first() else { return Ok(claims) };
            let (first_seq, count) = (start.first_seq, report.finding_count);
            if finding.kind != crate::verify::FindingKind::HmacKeyUnknown {
                return Err(ReplicaError::Verify { first_seq, finding: finding.clone(), count });
            }
            match reread {
                None => reread = Some(crate::sync::write(&self.s.keyring).reload()),
                Some(r) => {
                    let keyring = match r {
                        Ok(_) => "the keyring file does not hold it either".to_owned(),
                        Err(e) => format!("the keyring file was not read again: {e}"),
                    };
                    return Err(ReplicaError::KeysMissing { first_seq, detail: finding.detail.clone(), keyring });
                }
            }
        }
    }

    /// A replicated `key_rotation` entry's effect on this replica: the keys
    /// it names become the active ones here too, from `recorded_at` on.
    fn rotate_replica(&self, seq: u64) -> Result<(), String> {
        let e = self.get(seq).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&e.payload).map_err(|e| format!("payload: {e}"))?;
        let id = |kind: &str| {
            let keys = v["new_keys"].as_array().map(Vec::as_slice).unwrap_or_default();
            let key = keys.iter().find(|k| k["kind"] == kind).and_then(|k| k["id"].as_str());
            key.map(str::to_owned).ok_or_else(|| format!("payload: new_keys names no {kind} key"))
        };
        let (ed25519, hmac) = (id("ed25519")?, id("hmac-sha256")?);
        let mut ring = crate::sync::write(&self.s.keyring);
        ring.activate(&ed25519, &hmac, e.leaf.recorded_at).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// A replicated redaction entry's effect on this replica: the target's
    /// record is redacted here too, unless the row it was copied from
    /// already was (FORMAT.md §6.4; a crash before this is finished at the
    /// next open, as on a single node).
    fn redact_replica(&self, w: &mut super::Writer, target: u64, by: u64) -> Result<(), LedgerError> {
        let t = self.get(target)?;
        if t.redacted_by == 0 && !t.payload.is_empty() {
            self.remove_payload(w, target, by)?;
        }
        Ok(())
    }

    /// Takes writes again after a failed sync whose batches the store
    /// dropped without keeping anything of them (a replicated store's
    /// writer that was fenced): the writer restarts from what is durable
    /// and published. Only the store knows whether that holds; the caller
    /// asks it first.
    pub fn resume(&self) -> Result<u64, LedgerError> {
        let mut w = lock(&self.writer);
        let durable = self.s.group.through();
        let fresh = tip(self.s.store.as_ref(), durable)?;
        self.s.group.reset(durable);
        (w.tip, w.subjects, w.unindexed) = (fresh, Default::default(), Default::default());
        self.s.vis.resume();
        Ok(durable)
    }
}

/// The (target, redaction seq) of each redaction entry among `entries`.
fn redactions_in<'a>(entries: impl Iterator<Item = &'a BatchEntry>) -> Vec<(u64, u64)> {
    entries
        .filter(|e| e.leaf.category == super::REDACTION)
        .filter_map(|e| super::redaction_target(&e.leaf.request_id).map(|t| (t, e.leaf.seq)))
        .collect()
}

/// The fields of a checkpoint note the replay already verified.
fn checkpoint_of(note: &str) -> Result<Checkpoint, String> {
    let n = crate::note::Note::parse(note).map_err(|e| e.to_string())?;
    Checkpoint::parse_body(&n.text).map_err(|e| e.to_string())
}

fn verify_failed(first_seq: u64, detail: String) -> ReplicaError {
    let finding = Finding { kind: crate::verify::FindingKind::FrameCorrupt, seq: Some(first_seq), detail };
    ReplicaError::Verify { first_seq, finding, count: 1 }
}

/// The store's batches, each with the writer's tip after it, from frames
/// that verified: a history checkpoint frame ends a batch (its note is that
/// batch's checkpoint, as in the log's own batches, FORMAT.md §6.2); the
/// last one ends at `head`.
fn replicated_batches(old: &Tip, frames: &Bytes, head: SignedCheckpoint) -> Result<Vec<(WriteBatch, Tip)>, String> {
    let mut tip = old.clone();
    let mut out: Vec<(WriteBatch, Tip)> = Vec::new();
    let piece = |first_seq: u64, frames: &[u8], entries, nodes, history, checkpoint| WriteBatch {
        first_seq,
        frames: frames.to_vec(),
        entries,
        nodes,
        history,
        checkpoint: Arc::new(checkpoint),
        replicated: true,
    };
    let (mut entries, mut nodes, mut from, mut first) = (Vec::new(), Vec::new(), 0, tip.next_seq);
    let mut offset = 0;
    while offset < frames.len() {
        let Some((body, len)) = parse_frame(&frames[offset..]).map_err(|e| e.to_string())? else { break };
        offset += len;
        match record::decode_at(frames.slice_ref(body), tip.next_seq)? {
            Checked::Checkpoint(note) => {
                let checkpoint = checkpoint_of(&note)?;
                tip.last_history = tip.next_seq;
                let cp = SignedCheckpoint { checkpoint, note: note.clone() };
                let b = piece(
                    first,
                    &frames[from..offset],
                    std::mem::take(&mut entries),
                    std::mem::take(&mut nodes),
                    Some(note),
                    cp,
                );
                out.push((b, tip.clone()));
                (from, first) = (offset, tip.next_seq);
            }
            Checked::Entry { leaf, leaf_hash, .. } => {
                // every node the push completes, level 0 included, as the
                // log's own batches carry them
                tip.range.push(leaf_hash, |l, i, h| nodes.push((l, i, *h)));
                let request_hash = (!leaf.request_id.is_empty()).then(|| request_hash(&leaf.request_id));
                (tip.next_seq, tip.last_hash) = (leaf.seq + 1, leaf_hash);
                tip.last_time = tip.last_time.max(leaf.recorded_at);
                entries.push(BatchEntry { frame_len: len as u32, leaf, leaf_hash, request_hash });
            }
        }
    }
    if !entries.is_empty() {
        out.push((piece(first, &frames[from..], entries, nodes, None, head), tip));
    } else if let Some((last, _)) = out.last_mut().filter(|(b, _)| b.checkpoint.checkpoint == head.checkpoint) {
        last.checkpoint = Arc::new(head); // the head signs what the last history frame did
    }
    Ok(out)
}
