//! Audited admin actions other than key rotation and redaction: a policy
//! reload and a reindex request are written as entries (who, what, when,
//! why) in the log itself before they take effect (docs/SECURITY.md
//! "Admin actions").
//!
//! Owns: the `policy_reload` and `reindex` entries and the reindex marker
//! file. Must not: change anything before its entry is durable.

use std::sync::Arc;

use super::{Ledger, Receipt, Writer, read_lock};
use crate::entry::{Actor, EntryInput};
use crate::log::AppendError;
use crate::policy::Policy;

/// The category of policy-reload entries.
pub const POLICY_RELOAD: &str = "policy_reload";
/// The category of reindex entries.
pub const REINDEX: &str = "reindex";
/// The marker file (in the log directory) that makes the next open rebuild
/// the index from the journal; it holds the seq of the `reindex` entry.
pub const REINDEX_MARKER: &str = "reindex.requested";

impl Ledger {
    /// Writes an admin entry (category from ADMIN_CATEGORIES) as one batch.
    fn admin_entry(
        &self,
        w: &mut Writer,
        actor: &str,
        category: &str,
        payload: serde_json::Value,
    ) -> Result<Receipt, AppendError> {
        let input =
            EntryInput { category: category.into(), payload: payload.to_string().into_bytes(), ..Default::default() };
        let entry = input.validate(actor, &self.s.opts.limits)?;
        let ring = read_lock(&self.s.keyring);
        self.commit_admin(w, &ring, entry, &[])
    }

    /// Puts `policy` in force for appends after its `policy_reload` entry,
    /// which records who, why, and the declared categories with their
    /// required fields.
    pub fn reload_policy(&self, actor: &Actor, policy: Policy, reason: &str) -> Result<Receipt, AppendError> {
        if reason.trim().is_empty() {
            return Err(crate::entry::ValidationError::new("reason", "is empty; say why the policy changes").into());
        }
        let payload = serde_json::json!({
            "reason": reason,
            "allow_undeclared": policy.allow_undeclared,
            "categories": policy.categories,
        });
        // Hold the writer across the entry and the swap: no append is
        // checked against a policy its entry does not precede.
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let receipt = self.admin_entry(&mut w, actor.as_str(), POLICY_RELOAD, payload)?;
        *self.s.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
        Ok(receipt)
    }
}

impl Ledger {
    /// Writes a `reindex` entry and marks the index for a rebuild from the
    /// journal at the next open (the index is derived data; the rebuild
    /// runs while nothing reads it).
    pub fn request_reindex(&self, actor: &Actor, reason: &str) -> Result<Receipt, AppendError> {
        if reason.trim().is_empty() {
            return Err(crate::entry::ValidationError::new("reason", "is empty; say why the index is rebuilt").into());
        }
        let payload = serde_json::json!({"reason": reason, "takes_effect": "at the next start"});
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let receipt = self.admin_entry(&mut w, actor.as_str(), REINDEX, payload)?;
        let marker = self.s.dir.join(REINDEX_MARKER);
        let storage = |e: std::io::Error| AppendError::Storage {
            reason: format!("{}: {e} (the reindex entry {} is written; retry)", marker.display(), receipt.seq),
            disk_full: false,
        };
        let mut f = std::fs::File::create(&marker).map_err(storage)?;
        std::io::Write::write_all(&mut f, receipt.seq.to_string().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(storage)?;
        crate::journal::sync_dir(&self.s.dir)
            .map_err(|e| AppendError::Storage { reason: e.to_string(), disk_full: false })?;
        Ok(receipt)
    }
}
