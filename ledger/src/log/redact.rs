//! Audited redaction (FORMAT.md §6.4): a `redaction` entry first (who,
//! which entry, why), then the store replaces the target's record with its
//! redacted form, of the same length. The leaf — and so every hash, proof and checkpoint —
//! stays; the verifier lists the entry as redacted by that entry.
//!
//! Owns: the redaction order and its crash recovery (a `redaction` entry
//! whose target still has its payload is finished at open). Must not:
//! touch any byte of a frame other than the target's record body.

use super::admin::AdminEntry;
use super::{Ledger, LedgerError, Receipt, Writer};
use crate::entry::Actor;
use crate::log::AppendError;
use crate::sync::{lock, read as read_lock};

/// The category of redaction entries.
pub const REDACTION: &str = "redaction";

/// Request-id prefixes of the entries ledgerd writes itself (a redaction,
/// a dual-control approval): a client's append of one is refused, so that
/// no client can take an id an admin action will need.
pub const SERVER_REQUEST_ID_PREFIXES: [&str; 2] = ["redaction/", "admin_request/"];

/// The request id of the redaction of `seq` (one redaction per entry; a
/// retry returns the first receipt).
pub fn redaction_request_id(seq: u64) -> String {
    format!("redaction/{seq}")
}

/// The target of a redaction entry's request id, `redaction/<seq>`.
pub fn redaction_target(request_id: &str) -> Option<u64> {
    request_id.strip_prefix("redaction/").and_then(|s| s.parse().ok())
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

/// Why the entry `seq` cannot be redacted, if it cannot.
fn refusal(seq: u64, target: &super::StoredEntry) -> Option<RedactError> {
    let reason = if target.leaf.category == REDACTION {
        "it is a redaction entry, the record of an admin action".to_owned()
    } else if target.redacted_by != 0 {
        format!("it was already redacted by entry {}", target.redacted_by - 1)
    } else {
        return None;
    };
    Some(RedactError::Refused { seq, reason })
}

impl Ledger {
    /// Redacts the payload of entry `seq`: writes the `redaction` entry
    /// (its receipt is returned), then removes the payload from disk.
    pub fn redact(&self, actor: &Actor, seq: u64, reason: &str) -> Result<Receipt, RedactError> {
        self.redact_for(actor, seq, reason, None)
    }

    /// [`redact`](Self::redact) carrying out the approved dual-control
    /// request `request_seq` (its entry names it in `request_seq`).
    pub fn redact_as_requested(
        &self,
        actor: &Actor,
        seq: u64,
        reason: &str,
        request_seq: u64,
    ) -> Result<Receipt, RedactError> {
        self.redact_for(actor, seq, reason, Some(request_seq))
    }

    /// Checks that entry `seq` can be redacted now (what `redact` refuses
    /// before writing anything: the target, and that its record can take
    /// the redaction marker of a redaction written next), without writing.
    pub fn check_redactable(&self, seq: u64) -> Result<(), RedactError> {
        if let Some(e) = refusal(seq, &self.get(seq)?) {
            return Err(e);
        }
        let (_, record) = self
            .s
            .store
            .record(seq)
            .map_err(LedgerError::from)?
            .ok_or(LedgerError::IndexAhead { indexed: self.size(), missing: seq })?;
        // request, approval, then the redaction: two entries from now
        if crate::record::redacted(&record, self.size() + 3).is_none() {
            let reason = "its record is too short to be redacted in place (FORMAT.md §6.4)".into();
            return Err(RedactError::Refused { seq, reason });
        }
        Ok(())
    }

    fn redact_for(
        &self,
        actor: &Actor,
        seq: u64,
        reason: &str,
        request_seq: Option<u64>,
    ) -> Result<Receipt, RedactError> {
        let mut w = lock(&self.writer);
        let target = self.get(seq)?;
        let refuse = |reason: String| RedactError::Refused { seq, reason };
        if let Some(e) = refusal(seq, &target) {
            return Err(e);
        }
        if reason.trim().is_empty() {
            return Err(refuse("the reason is empty; say why (e.g. a GDPR erasure request and its ticket)".into()));
        }
        // checked before the entry is written: a redaction entry whose
        // removal cannot happen would be retried at every open
        let (_, record) = self
            .s
            .store
            .record(seq)
            .map_err(LedgerError::from)?
            .ok_or(LedgerError::IndexAhead { indexed: self.size(), missing: seq })?;
        if crate::record::redacted(&record, w.tip.next_seq + 1).is_none() {
            return Err(refuse("its record is too short to be redacted in place (FORMAT.md §6.4)".into()));
        }
        let mut payload = serde_json::json!({
            "redacted_seq": seq,
            "reason": reason,
            "payload_sha256": hex::encode(&target.leaf.payload_sha256),
            "payload_size": target.leaf.payload_size,
        });
        if let Some(r) = request_seq {
            payload["request_seq"] = r.into();
        }
        let entry = AdminEntry {
            category: REDACTION,
            subject: target.leaf.subject.clone(),
            request_id: redaction_request_id(seq),
            payload,
        };
        let receipt = {
            let ring = read_lock(&self.s.keyring);
            self.commit_admin(&mut w, &ring, actor.as_str(), entry, &[])?
        };
        self.remove_payload(&mut w, seq, receipt.seq)?;
        Ok(receipt)
    }

    /// Replaces the target's record with its redacted form (the store
    /// seals what it must first).
    pub(super) fn remove_payload(&self, w: &mut Writer, seq: u64, redaction_seq: u64) -> Result<(), LedgerError> {
        let size = self.size();
        let (_, record) = self.s.store.record(seq)?.ok_or(LedgerError::IndexAhead { indexed: size, missing: seq })?;
        let new = crate::record::redacted(&record, redaction_seq + 1).ok_or_else(|| LedgerError::BadRecord {
            seq,
            reason: "the payload is too short to be redacted in place".into(),
        })?;
        w.store.replace_record(seq, &new)?;
        Ok(())
    }

    /// Finishes redactions whose entry was written but whose payload
    /// removal did not happen (a crash in between). Called at open.
    pub(super) fn finish_redactions(&self) -> Result<u64, LedgerError> {
        let mut w = lock(&self.writer);
        let mut done = 0;
        let q = super::Query { category: Some(REDACTION.into()), limit: 1000, ..Default::default() };
        self.each(q, |r| {
            let Some(target) = redaction_target(&r.leaf.request_id) else { return Ok(true) };
            let t = self.get(target)?;
            if t.redacted_by == 0 && !t.payload.is_empty() {
                self.remove_payload(&mut w, target, r.seq)?;
                done += 1;
            }
            Ok::<_, LedgerError>(true)
        })?;
        Ok(done)
    }
}
