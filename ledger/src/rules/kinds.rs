//! What each kind of rule checks, over the entries `super::eval` scans.
//!
//! Owns: one function per kind and the wording of its detail. Must not:
//! choose the prefix or the time (`eval::AsOf`), or parse policy.

use std::collections::HashSet;
use std::sync::Arc;

use cel::Value;

use super::eval::{AsOf, Found, Halt, Scan, matches, time_of};
use super::{Expr, Kind, Rule, Scope, Verdict};
use crate::log::{LedgerReader, StoredEntry};
use crate::rfc3339::format_secs;
use crate::span::{Span, human};

/// Evaluates one rule.
pub(super) fn run(reader: &LedgerReader, rule: &Rule, at: AsOf) -> Result<Found, Halt> {
    match &rule.kind {
        Kind::Freshness { max_age, warn_before } => freshness(reader, rule, at, max_age, warn_before.as_ref()),
        Kind::Reference { field, target_category, target_field } => {
            reference(reader, rule, at, field, target_category, target_field)
        }
        Kind::Check { expr, scope } => check(reader, rule, at, expr, *scope),
        Kind::Approved { role } => super::approved::approved(reader, rule, at, role.as_deref()),
        Kind::Response { .. } => super::response::response(reader, rule, at),
        Kind::Aggregate { last, expr } => aggregate(reader, rule, at, *last, expr),
    }
}

pub(super) fn found(verdict: Verdict, detail: String, seq: Option<u64>) -> Result<Found, Halt> {
    Ok(Found { verdict, detail, seq })
}

/// "acceptance_run entry matching `when` in the last 30d".
pub(super) fn what(rule: &Rule) -> String {
    described(rule, "entry")
}

/// "acceptance_run entries matching `when` in the last 30d".
pub(super) fn whats(rule: &Rule) -> String {
    described(rule, "entries")
}

fn described(rule: &Rule, noun: &str) -> String {
    let mut s = format!("{} {noun}", rule.category);
    if let Some(w) = &rule.when {
        s += &format!(" matching `{}`", w.source());
    }
    if let Some(o) = &rule.over {
        s += &format!(" in the last {o}");
    }
    s
}

/// The last recorded (highest seq) entry of the rule's category its
/// `when` accepts; with `readable`, not a redacted one.
pub(super) fn latest(
    reader: &LedgerReader,
    rule: &Rule,
    at: AsOf,
    readable: bool,
) -> Result<Option<StoredEntry>, Halt> {
    let mut hit = None;
    Scan::of(reader, rule, at).newest_first().each(|e| {
        if (!readable || e.redacted_by == 0) && matches(rule, &e)? {
            hit = Some(e);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(hit)
}

fn freshness(
    reader: &LedgerReader,
    rule: &Rule,
    at: AsOf,
    max_age: &Span,
    warn_before: Option<&Span>,
) -> Result<Found, Halt> {
    let Some(e) = latest(reader, rule, at, false)? else {
        return found(rule.severity, format!("no {} (log size {})", what(rule), at.size), None);
    };
    let age = at.now.saturating_sub(time_of(&e));
    let said = format!("latest is seq {} of {}, {} old", e.seq, format_secs(time_of(&e)), human(age));
    let warn_from = max_age.ns().saturating_sub(warn_before.map_or(i64::MAX, Span::ns));
    if age > max_age.ns() {
        found(rule.severity, format!("{said}: older than {max_age}"), Some(e.seq))
    } else if warn_before.is_some() && age > warn_from {
        let left = human(max_age.ns() - age);
        found(Verdict::Warn, format!("{said}: {left} before it is older than {max_age}"), Some(e.seq))
    } else {
        found(Verdict::Pass, format!("{said} (limit {max_age})"), Some(e.seq))
    }
}

/// `payload[field]` of `e` as comparable text (`None`: absent or null).
pub(super) fn field_text(e: &StoredEntry, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&e.payload).ok()?;
    match v.get(field)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn reference(
    reader: &LedgerReader,
    rule: &Rule,
    at: AsOf,
    field: &str,
    target_category: &str,
    target_field: &str,
) -> Result<Found, Halt> {
    let mut targets = HashSet::new();
    Scan::all(reader, target_category, at).each(|t| {
        targets.extend(field_text(&t, target_field));
        Ok(true)
    })?;
    let (mut checked, mut broken, mut first) = (0u64, 0u64, None);
    Scan::of(reader, rule, at).each(|e| {
        if e.redacted_by != 0 || !matches(rule, &e)? {
            return Ok(true);
        }
        checked += 1;
        let v = field_text(&e, field);
        if v.as_ref().is_none_or(|v| !targets.contains(v)) {
            broken += 1;
            first.get_or_insert((e.seq, v));
        }
        Ok(true)
    })?;
    let target = format!("{target_category}.{target_field}");
    match first {
        None => found(Verdict::Pass, format!("{checked} {}: every {field} names a {target}", whats(rule)), None),
        Some((seq, None)) => found(
            rule.severity,
            format!("{broken} of {checked} do not resolve; first: seq {seq} has no {field}"),
            Some(seq),
        ),
        Some((seq, Some(v))) => found(
            rule.severity,
            format!(
                "{broken} of {checked} do not resolve; first: seq {seq} names {field} {v:?}, which no {target} holds"
            ),
            Some(seq),
        ),
    }
}

fn check(reader: &LedgerReader, rule: &Rule, at: AsOf, expr: &Expr, scope: Scope) -> Result<Found, Halt> {
    let eval = |e: &StoredEntry| expr.holds(e).map_err(|m| Halt::Expr(Some(e.seq), format!("seq {}: {m}", e.seq)));
    if scope == Scope::Latest {
        let Some(e) = latest(reader, rule, at, true)? else {
            return found(rule.severity, format!("no {} (log size {})", what(rule), at.size), None);
        };
        let (v, says) = if eval(&e)? { (Verdict::Pass, "holds") } else { (rule.severity, "does not hold") };
        return found(v, format!("latest is seq {}: `{}` {says}", e.seq, expr.source()), Some(e.seq));
    }
    let (mut checked, mut failed, mut first) = (0u64, 0u64, None);
    Scan::of(reader, rule, at).each(|e| {
        if e.redacted_by == 0 && matches(rule, &e)? {
            checked += 1;
            if !eval(&e)? {
                failed += 1;
                first.get_or_insert(e.seq);
            }
        }
        Ok(true)
    })?;
    match first {
        None => found(Verdict::Pass, format!("`{}` holds for all {checked} {}", expr.source(), whats(rule)), None),
        Some(seq) => found(
            rule.severity,
            format!("`{}` fails for {failed} of {checked}; first: seq {seq}", expr.source()),
            Some(seq),
        ),
    }
}

fn aggregate(reader: &LedgerReader, rule: &Rule, at: AsOf, last: usize, expr: &Expr) -> Result<Found, Halt> {
    let mut picked = Vec::new();
    Scan::of(reader, rule, at).newest_first().each(|e| {
        if e.redacted_by == 0 && matches(rule, &e)? {
            picked.push(e);
        }
        Ok(picked.len() < last)
    })?;
    let (Some(newest), Some(oldest)) = (picked.first(), picked.last()) else {
        return found(rule.severity, format!("no {} to aggregate (log size {})", what(rule), at.size), None);
    };
    let range = format!(
        "the last {} (seq {}–{}{})",
        picked.len(),
        oldest.seq,
        newest.seq,
        if picked.len() < last { format!("; fewer than {last}") } else { String::new() }
    );
    let list: Vec<Value> = picked.iter().rev().map(one).collect();
    let n = i64::try_from(list.len()).unwrap_or(i64::MAX);
    let holds = expr
        .eval(&[("entries", Value::List(Arc::new(list))), ("count", Value::Int(n))])
        .map_err(|m| Halt::Expr(None, format!("over {range}: {m}")))?;
    let (v, says) = if holds { (Verdict::Pass, "holds") } else { (rule.severity, "does not hold") };
    found(v, format!("`{}` {says} over {range}", expr.source()), Some(newest.seq))
}

/// `{payload, entry}` of one entry, for `entries`.
fn one(e: &StoredEntry) -> Value {
    let m: std::collections::HashMap<String, Value> =
        [("payload".to_owned(), super::expr::payload_value(e)), ("entry".to_owned(), super::expr::entry_value(e))]
            .into();
    Value::Map(m.into())
}
