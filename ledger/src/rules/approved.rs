//! Kind `approved`: every matching entry is named by an `approval` entry
//! (each approval was checked when it was appended, crate::approval) — by
//! a holder of the rule's `role`, when it names one (a sign-off).
//!
//! Owns: that check. Must not: judge an approval again.

use std::collections::{HashMap, HashSet};

use super::eval::{AsOf, Found, Halt, Scan, matches};
use super::kinds::{found, whats};
use super::{Rule, Verdict};
use crate::approval::{ApprovalRule, Claim};
use crate::log::LedgerReader;
use crate::rfc3339::format_secs;

/// Without its own `when`, a rule takes the category's
/// `requires_approval.when`; entries still inside the approval's `within`
/// are waiting (warn), those past it or without a limit are missing.
pub(super) fn approved(reader: &LedgerReader, rule: &Rule, at: AsOf, role: Option<&str>) -> Result<Found, Halt> {
    let policy = reader.policy();
    let needs = policy.categories.get(&rule.category).and_then(|c| c.requires_approval.clone());
    let done = approvals(reader, at, needs.as_ref())?;
    let within = needs.as_ref().and_then(|n| n.within_ns().ok().flatten());
    let (mut checked, mut missing, mut waiting) = (0u64, Vec::new(), Vec::new());
    Scan::of(reader, rule, at).each(|e| {
        let applies = match (&rule.when, &needs) {
            (Some(_), _) => matches(rule, &e)?,
            (None, Some(n)) => n.applies(&e.payload),
            (None, None) => true,
        };
        let approved = done.get(&e.seq).is_some_and(|roles| role.is_none_or(|r| roles.contains(r)));
        if applies {
            checked += 1;
            if !approved {
                match within.map(|w| e.leaf.recorded_at.saturating_add(w)) {
                    Some(due) if due >= at.now => waiting.push((e.seq, due)),
                    _ => missing.push(e.seq),
                }
            }
        }
        Ok(true)
    })?;
    let by = role.map_or_else(String::new, |r| format!(" by a {r}"));
    if let Some(&first) = missing.first() {
        let n = missing.len();
        return found(
            rule.severity,
            format!("{n} of {checked} without an approval{by}; first: seq {first}"),
            Some(first),
        );
    }
    if let Some(&(first, due)) = waiting.first() {
        let n = waiting.len();
        let detail = format!("{n} of {checked} still waiting{by}; first: seq {first}, due by {}", format_secs(due));
        return found(Verdict::Warn, detail, Some(first));
    }
    found(Verdict::Pass, format!("all {checked} {} approved{by}", whats(rule)), None)
}

/// The approved seqs, each with the roles it was approved as (the role the
/// approval names, else its category's rule's).
fn approvals(
    reader: &LedgerReader,
    at: AsOf,
    needs: Option<&ApprovalRule>,
) -> Result<HashMap<u64, HashSet<String>>, Halt> {
    let mut done: HashMap<u64, HashSet<String>> = HashMap::new();
    let scan = Scan::all(reader, "approval", at);
    scan.each(|a| {
        if let Ok(c) = Claim::parse(&a.payload) {
            let roles = done.entry(c.seq).or_default();
            roles.extend(c.role.or_else(|| needs.map(|n| n.role.clone())));
        }
        Ok(true)
    })?;
    Ok(done)
}
