//! Audited admin actions other than key rotation and redaction: a policy
//! reload and a reindex request are written as entries (who, what, when,
//! why) in the log itself before they take effect (docs/SECURITY.md
//! "Admin actions").
//!
//! Owns: the `policy_reload`, `reindex` and `admin_request` (dual control:
//! `crate::approval::dual`) entries (the store keeps the rebuild request). Must not: change anything before its entry is durable.

use std::sync::Arc;

use super::{Ledger, Receipt, Writer};
use crate::entry::{Actor, EntryInput};
use crate::keys::Keyring;
use crate::log::AppendError;
use crate::note::NoteSigner;
use crate::policy::Policy;
use crate::sync::{lock, read as read_lock};

/// The category of policy-reload entries.
pub const POLICY_RELOAD: &str = "policy_reload";
/// The category of reindex entries.
pub const REINDEX: &str = "reindex";
/// The category of the ledger's own key rotations (`Ledger::rotate_keys`).
pub const KEY_ROTATION: &str = "key_rotation";

/// What an admin action records: its entry's category (one of
/// ADMIN_CATEGORIES), subject, request id and payload. The actor is the
/// caller's identity.
pub(super) struct AdminEntry {
    pub category: &'static str,
    pub subject: String,
    pub request_id: String,
    pub payload: serde_json::Value,
}

impl AdminEntry {
    /// An entry with no subject and no request id.
    pub fn new(category: &'static str, payload: serde_json::Value) -> Self {
        Self { category, subject: String::new(), request_id: String::new(), payload }
    }
}

impl Ledger {
    /// Validates an admin action's entry, then sequences, writes and syncs
    /// it as its own batch while the caller holds the writer: nothing is
    /// sequenced after it before it is durable. `extra` co-signs its
    /// checkpoint (key rotation). The one way every admin entry is built.
    pub(super) fn commit_admin(
        &self,
        w: &mut Writer,
        ring: &Keyring,
        actor: &str,
        e: AdminEntry,
        extra: &[NoteSigner],
    ) -> Result<Receipt, AppendError> {
        let input = EntryInput {
            category: e.category.into(),
            subject: e.subject,
            request_id: e.request_id,
            payload: e.payload.to_string().into_bytes(),
            ..Default::default()
        };
        let entry = input.validate(actor, &self.s.opts.limits)?;
        self.commit_batch_of_one(w, ring, entry, extra)
    }

    /// Writes an admin entry with the active keys.
    fn admin_entry(&self, w: &mut Writer, actor: &str, e: AdminEntry) -> Result<Receipt, AppendError> {
        let ring = read_lock(&self.s.keyring);
        self.commit_admin(w, &ring, actor, e, &[])
    }

    /// Puts `policy` in force for appends after its `policy_reload` entry,
    /// which records who, why, and the declared categories with their
    /// required fields. `also` adds members describing what else the caller
    /// changes with it (the server: grants and revoked certificates); they
    /// cannot replace the three above.
    pub fn reload_policy(
        &self,
        actor: &Actor,
        policy: Policy,
        reason: &str,
        also: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Receipt, AppendError> {
        if reason.trim().is_empty() {
            return Err(crate::entry::ValidationError::new("reason", "is empty; say why the policy changes").into());
        }
        let mut payload = also;
        payload.insert("reason".into(), reason.into());
        payload.insert("allow_undeclared".into(), policy.allow_undeclared.into());
        payload.insert("categories".into(), serde_json::json!(policy.categories));
        if !policy.rules.is_empty() {
            // the acceptance rules in force from this entry on, as written
            payload.insert("rules".into(), serde_json::json!(policy.rules));
        }
        let payload = serde_json::Value::Object(payload);
        // Hold the writer across the entry and the swap: no append is
        // checked against a policy its entry does not precede.
        let mut w = lock(&self.writer);
        let receipt = self.admin_entry(&mut w, actor.as_str(), AdminEntry::new(POLICY_RELOAD, payload))?;
        *crate::sync::write(&self.s.policy) = Arc::new(policy);
        Ok(receipt)
    }
}

impl Ledger {
    /// Writes a `reindex` entry and asks the store to rebuild its derived
    /// data (the file store's index) from the source of truth at the next
    /// open (the rebuild runs while nothing reads it).
    pub fn request_reindex(&self, actor: &Actor, reason: &str) -> Result<Receipt, AppendError> {
        if reason.trim().is_empty() {
            return Err(crate::entry::ValidationError::new("reason", "is empty; say why the index is rebuilt").into());
        }
        let payload = serde_json::json!({"reason": reason, "takes_effect": "at the next start"});
        let mut w = lock(&self.writer);
        let receipt = self.admin_entry(&mut w, actor.as_str(), AdminEntry::new(REINDEX, payload))?;
        self.s.store.request_rebuild(receipt.seq).map_err(|e| AppendError::Storage {
            reason: format!("{e} (the reindex entry {} is written; retry)", receipt.seq),
            disk_full: e.is_disk_full(),
        })?;
        Ok(receipt)
    }
}

impl Ledger {
    /// Writes a dual-control `admin_request` entry: nothing else happens
    /// until another admin approves it (`crate::approval::dual`).
    pub fn request_admin_action(
        &self,
        actor: &Actor,
        request: &crate::approval::dual::AdminRequest,
    ) -> Result<Receipt, AppendError> {
        let entry = AdminEntry::new(crate::approval::dual::ADMIN_REQUEST, request.to_json());
        let mut w = lock(&self.writer);
        self.admin_entry(&mut w, actor.as_str(), entry)
    }
}
