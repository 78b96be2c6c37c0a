//! Audited redaction (FORMAT.md §6.4): a `redaction` entry first (who,
//! which entry, why), then the target's payload is removed from its
//! segment in place. The leaf — and so every hash, proof and checkpoint —
//! stays; the verifier lists the entry as redacted by that entry.
//!
//! Owns: the redaction order and its crash recovery (a `redaction` entry
//! whose target still has its payload is finished at open). Must not:
//! touch any byte of a frame other than the target's record body.

use super::{Ledger, LedgerError, Receipt, Writer, read_lock};
use crate::entry::{Actor, EntryInput};
use crate::journal::{replace_record, segment_name};
use crate::log::AppendError;

/// The category of redaction entries.
pub const REDACTION: &str = "redaction";

/// The request id of the redaction of `seq` (one redaction per entry; a
/// retry returns the first receipt).
pub fn redaction_request_id(seq: u64) -> String {
    format!("redaction/{seq}")
}

/// Why a redaction was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The target cannot be redacted.
    #[error("entry {seq} cannot be redacted: {reason}")]
    Refused {
        /// the target
        seq: u64,
        /// why
        reason: String,
    },
    /// The target does not exist, or reading it failed.
    #[error(transparent)]
    Read(#[from] LedgerError),
    /// The redaction entry was not written.
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl Ledger {
    /// Redacts the payload of entry `seq`: writes the `redaction` entry
    /// (its receipt is returned), then removes the payload from disk.
    pub fn redact(&self, actor: &Actor, seq: u64, reason: &str) -> Result<Receipt, RedactError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.get(seq)?;
        let refuse = |reason: String| RedactError::Refused { seq, reason };
        if target.leaf.category == REDACTION {
            return Err(refuse("it is a redaction entry, the record of an admin action".into()));
        }
        if target.redacted_by != 0 {
            return Err(refuse(format!("it was already redacted by entry {}", target.redacted_by - 1)));
        }
        if reason.trim().is_empty() {
            return Err(refuse("the reason is empty; say why (e.g. a GDPR erasure request and its ticket)".into()));
        }
        let payload = serde_json::json!({
            "redacted_seq": seq,
            "reason": reason,
            "payload_sha256": hex::encode(&target.leaf.payload_sha256),
            "payload_size": target.leaf.payload_size,
        });
        let input = EntryInput {
            category: REDACTION.into(),
            subject: target.leaf.subject.clone(),
            request_id: redaction_request_id(seq),
            payload: payload.to_string().into_bytes(),
            ..Default::default()
        };
        let entry = input.validate(actor.as_str(), &self.s.opts.limits).map_err(AppendError::from)?;
        let receipt = {
            let ring = read_lock(&self.s.keyring);
            self.commit_admin(&mut w, &ring, entry, &[])?
        };
        self.remove_payload(&mut w, seq, receipt.seq)?;
        Ok(receipt)
    }

    /// Rewrites the target's record without its payload. Seals the active
    /// segment first when the target is in it.
    fn remove_payload(&self, w: &mut Writer, seq: u64, redaction_seq: u64) -> Result<(), LedgerError> {
        let pos = self.s.index.position(seq)?.ok_or(LedgerError::IndexAhead { indexed: self.size(), missing: seq })?;
        if pos.segment == w.journal.segment() {
            w.journal.roll(w.tip.next_seq)?;
            self.set_durable(&w.journal);
        }
        let dir = self.s.dir.join("journal");
        let record = self.s.journal.read(pos.segment, pos.offset, pos.frame_len)?;
        let bad = |reason: &str| LedgerError::BadRecord {
            segment: dir.join(segment_name(pos.segment)),
            offset: pos.offset,
            reason: reason.to_owned(),
        };
        let new = crate::record::redacted(&record, redaction_seq + 1)
            .ok_or_else(|| bad("the payload is too short to be redacted in place"))?;
        replace_record(&dir, pos.segment, pos.offset, &new)?;
        self.s.journal.forget(pos.segment);
        Ok(())
    }

    /// Finishes redactions whose entry was written but whose payload
    /// removal did not happen (a crash in between). Called at open.
    pub(super) fn finish_redactions(&self) -> Result<u64, LedgerError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = 0;
        let mut q = super::Query { category: Some(REDACTION.into()), limit: 1000, ..Default::default() };
        loop {
            let page = self.query(&q)?;
            for r in &page.entries {
                let Some(target) = r.leaf.request_id.strip_prefix("redaction/").and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                let t = self.get(target)?;
                if t.redacted_by == 0 && !t.payload.is_empty() {
                    self.remove_payload(&mut w, target, r.seq)?;
                    done += 1;
                }
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(done),
            }
        }
    }
}
