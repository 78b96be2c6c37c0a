//! Audited admin actions other than key rotation and redaction: a policy
//! reload is written as an entry (who, what, when, why) in the log itself
//! before it takes effect (docs/SECURITY.md "Admin actions").
//!
//! Owns: the `policy_reload` entry. Must not: change anything before its
//! entry is durable.

use std::sync::Arc;

use super::{Ledger, Receipt, Writer, read_lock};
use crate::entry::{Actor, EntryInput};
use crate::log::AppendError;
use crate::policy::Policy;

/// The category of policy-reload entries.
pub const POLICY_RELOAD: &str = "policy_reload";

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
        self.commit(w, &ring, vec![entry], &[], true).pop().expect("one result")
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
