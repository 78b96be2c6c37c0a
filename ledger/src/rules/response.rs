//! Kind `response`: each matching entry (an `alert_fired`) is answered,
//! for the same subject, by an entry of `response` (an `alert_ack`)
//! recorded within `within` of it — or else followed by an `otherwise`
//! entry (an escalation) meeting `otherwise_when`.
//!
//! Owns: that check. The answer's time is when the ledger recorded it (a
//! client cannot backdate it); the entry's own is `eval::time_of`.

use super::eval::{AsOf, Found, Halt, Scan, matches, time_of};
use super::kinds::{found, whats};
use super::{Expr, Kind, Rule, Verdict};
use crate::log::{LedgerReader, StoredEntry};
use crate::span::{Span, human};

#[derive(Default)]
struct Tally {
    checked: u64,
    in_time: u64,
    escalated: u64,
    open: u64,
    missed: Vec<u64>,
}

/// Evaluates a `response` rule.
pub(super) fn response(reader: &LedgerReader, rule: &Rule, at: AsOf) -> Result<Found, Halt> {
    let Kind::Response { response, within, otherwise, otherwise_when } = &rule.kind else {
        unreachable!("kinds::run dispatches by kind")
    };
    let mut t = Tally::default();
    Scan::of(reader, rule, at).each(|e| {
        if !matches(rule, &e)? {
            return Ok(true);
        }
        t.checked += 1;
        let deadline = time_of(&e).saturating_add(within.ns());
        // the index bounds the search for an answer by its recorded time
        if first_after(reader, at, &e, response, None, Some(deadline.saturating_add(1)))?.is_some() {
            t.in_time += 1;
        } else if escalated(reader, at, &e, otherwise.as_deref(), otherwise_when.as_ref())? {
            t.escalated += 1;
        } else if at.now <= deadline {
            t.open += 1;
        } else {
            t.missed.push(e.seq);
        }
        Ok(true)
    })?;
    let head = format!("{} {}", t.checked, whats(rule));
    let summary = format!(
        "{head}: {} answered by {response} within {within}, {} escalated, {} still open",
        t.in_time, t.escalated, t.open
    );
    let Some(&seq) = t.missed.first() else { return found(Verdict::Pass, summary, None) };
    // the first miss only: when (if ever) its answer came
    let e = reader.get(seq)?;
    let late = first_after(reader, at, &e, response, None, None)?.map(|a| a.leaf.recorded_at);
    let why = late_text(late, time_of(&e), within);
    found(
        rule.severity,
        format!("{} of {head} not answered in time; first: seq {seq} {why}", t.missed.len()),
        Some(seq),
    )
}

fn late_text(answered: Option<i64>, since: i64, within: &Span) -> String {
    match answered {
        Some(r) => format!("answered {} after it (limit {within}), no escalation", human(r - since)),
        None => format!("never answered (limit {within}), no escalation"),
    }
}

/// The first entry of `category` after `e` with `e`'s subject (meeting
/// `cond`, when given) in the evaluated prefix.
fn first_after(
    reader: &LedgerReader,
    at: AsOf,
    e: &StoredEntry,
    category: &str,
    cond: Option<&Expr>,
    until: Option<i64>,
) -> Result<Option<StoredEntry>, Halt> {
    if e.leaf.subject.is_empty() {
        return Ok(None);
    }
    let scan = Scan { subject: Some(&e.leaf.subject), from_seq: e.seq + 1, until, ..Scan::all(reader, category, at) };
    let mut hit = None;
    scan.each(|a| {
        let ok = match cond {
            Some(c) => {
                c.holds(&a).map_err(|m| Halt::Expr(Some(a.seq), format!("otherwise_when at seq {}: {m}", a.seq)))?
            }
            None => true,
        };
        if ok {
            hit = Some(a);
        }
        Ok(!ok)
    })?;
    Ok(hit)
}

fn escalated(
    reader: &LedgerReader,
    at: AsOf,
    e: &StoredEntry,
    otherwise: Option<&str>,
    cond: Option<&Expr>,
) -> Result<bool, Halt> {
    match otherwise {
        None => Ok(false),
        Some(c) => Ok(first_after(reader, at, e, c, cond, None)?.is_some()),
    }
}
