//! The entries still waiting for an approval: those of a category with
//! `requires_approval` whose payload matches its `when`, and dual control's
//! `admin_request` entries (role `admin`, due when they expire), not named
//! by any `approval` entry (each was checked when it was appended).
//!
//! Owns: that scan over a [`LedgerReader`]. Must not: judge approvals
//! (`super::check` did, at append time).

use std::collections::HashSet;

use super::Claim;
use super::dual::{ADMIN_REQUEST, ADMIN_ROLE, AdminRequest};
use crate::log::{LedgerError, LedgerReader, Query, StoredEntry};

/// An entry waiting for its approval.
pub struct Pending {
    /// the entry
    pub entry: StoredEntry,
    /// the approver role it needs
    pub role: String,
    /// when the approval is due (unix ns), with a `within`
    pub due: Option<i64>,
}

/// The pending entries (of `only`, or of every category with a rule, and
/// admin requests),
/// oldest first; at most `max` (then the bool is true).
pub fn pending(reader: &LedgerReader, only: Option<&str>, max: usize) -> Result<(Vec<Pending>, bool), LedgerError> {
    let mut approved = HashSet::new();
    each(reader, "approval", |e| {
        if let Ok(c) = Claim::parse(&e.payload) {
            approved.insert(c.seq);
        }
        true
    })?;
    let policy = reader.policy();
    let mut out = Vec::new();
    for (name, c) in policy.categories.iter().filter(|(n, _)| only.is_none_or(|o| o == n.as_str())) {
        let Some(rule) = &c.requires_approval else { continue };
        let due_in = rule.within_ns().ok().flatten();
        each(reader, name, |e| {
            if rule.applies(&e.payload) && !approved.contains(&e.seq) {
                let due = due_in.map(|w| e.leaf.recorded_at.saturating_add(w));
                out.push(Pending { entry: e, role: rule.role.clone(), due });
            }
            out.len() <= max
        })?;
    }
    if only.is_none_or(|o| o == ADMIN_REQUEST) {
        let done = carried_out(reader)?;
        each(reader, ADMIN_REQUEST, |e| {
            if !approved.contains(&e.seq) {
                let due = AdminRequest::parse(&e.payload).ok().and_then(|r| r.expires_at(e.leaf.recorded_at));
                out.push(Pending { entry: e, role: ADMIN_ROLE.to_owned(), due });
            } else if !done.contains(&e.seq) {
                // approved, but its action failed: a rerun of the approval completes it
                out.push(Pending { entry: e, role: ADMIN_ROLE.to_owned(), due: None });
            }
            out.len() <= max
        })?;
    }
    out.sort_by_key(|p| p.entry.seq);
    let truncated = out.len() > max;
    out.truncate(max);
    Ok((out, truncated))
}

/// The admin requests whose action's entry (naming it in `request_seq`) is written.
fn carried_out(reader: &LedgerReader) -> Result<HashSet<u64>, LedgerError> {
    let mut done = HashSet::new();
    for category in [crate::log::REDACTION, crate::log::KEY_ROTATION, crate::log::POLICY_RELOAD] {
        each(reader, category, |e| {
            let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap_or_default();
            done.extend(v["request_seq"].as_u64());
            true
        })?;
    }
    Ok(done)
}

/// Calls `f` with every entry of `category` until it returns false.
fn each(reader: &LedgerReader, category: &str, mut f: impl FnMut(StoredEntry) -> bool) -> Result<(), LedgerError> {
    let q = Query { category: Some(category.to_owned()), limit: 10_000, ..Default::default() };
    reader.each(q, |e| Ok::<_, LedgerError>(f(e)))
}
