//! Evaluating a rule set against a log's prefix at a given time: the
//! current log now, or — `--as-of SIZE` — the first SIZE entries at the
//! time of the last of them (the verdict an auditor would have had then).
//!
//! Owns: the prefix and time of an evaluation, the scan over a category
//! that every kind uses, and turning a kind's result into an [`Outcome`].
//! Must not: know what a kind checks (`super::kinds`).

use super::{Rule, Verdict, kinds};
use crate::log::{LedgerError, LedgerReader, Query, StoredEntry};

/// The log's prefix and the time a verdict is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// entries `[0, size)` count
    pub size: u64,
    /// the evaluation's time (unix ns)
    pub now: i64,
}

impl AsOf {
    /// The whole log at `now`.
    pub fn current(reader: &LedgerReader, now: i64) -> Self {
        Self { size: reader.size(), now }
    }

    /// The first `size` entries, at the time the last of them was recorded.
    pub fn past(reader: &LedgerReader, size: u64) -> Result<Self, LedgerError> {
        let now = if size == 0 { 0 } else { reader.get(size - 1)?.leaf.recorded_at };
        Ok(Self { size, now })
    }
}

/// A rule's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// the rule's name
    pub rule: String,
    /// its kind
    pub kind: &'static str,
    /// pass, warn or fail
    pub verdict: Verdict,
    /// what was found: the entry, or the missing one
    pub detail: String,
    /// the entry the detail names, if one
    pub seq: Option<u64>,
}

/// Why a kind stopped: the store failed, or an expression could not be
/// evaluated at an entry (the rule then fails, naming it).
pub(super) enum Halt {
    Ledger(LedgerError),
    Expr(Option<u64>, String),
}

impl From<LedgerError> for Halt {
    fn from(e: LedgerError) -> Self {
        Halt::Ledger(e)
    }
}

/// Evaluates every rule; only a store failure is an error.
pub fn evaluate(reader: &LedgerReader, rules: &[Rule], at: AsOf) -> Result<Vec<Outcome>, LedgerError> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let (verdict, detail, seq) = match kinds::run(reader, rule, at) {
            Ok(found) => (found.verdict, found.detail, found.seq),
            Err(Halt::Ledger(e)) => return Err(e),
            Err(Halt::Expr(seq, msg)) => (Verdict::Fail, msg, seq),
        };
        out.push(Outcome { rule: rule.name.clone(), kind: rule.kind.name(), verdict, detail, seq });
    }
    Ok(out)
}

/// What a kind found.
pub(super) struct Found {
    pub verdict: Verdict,
    pub detail: String,
    pub seq: Option<u64>,
}

/// Entries of one category within an evaluation.
pub(super) struct Scan<'a> {
    pub reader: &'a LedgerReader,
    pub category: &'a str,
    pub subject: Option<&'a str>,
    pub from_seq: u64,
    pub at: AsOf,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub desc: bool,
}

impl<'a> Scan<'a> {
    /// Every entry of `category` in the evaluated prefix.
    pub fn all(reader: &'a LedgerReader, category: &'a str, at: AsOf) -> Self {
        Self { reader, category, subject: None, from_seq: 0, at, since: None, until: None, desc: false }
    }

    /// The entries of `rule`'s category (within its `over`).
    pub fn of(reader: &'a LedgerReader, rule: &'a Rule, at: AsOf) -> Self {
        let since = rule.over.as_ref().map(|o| at.now.saturating_sub(o.ns()));
        Self { since, ..Self::all(reader, &rule.category, at) }
    }

    /// The same scan, newest first.
    pub fn newest_first(mut self) -> Self {
        self.desc = true;
        self
    }

    /// Calls `f` with each entry until it returns `Ok(false)`.
    pub fn each(&self, f: impl FnMut(StoredEntry) -> Result<bool, Halt>) -> Result<(), Halt> {
        let q = Query {
            category: Some(self.category.to_owned()),
            subject: self.subject.map(str::to_owned),
            since: self.since,
            until: self.until,
            from_seq: Some(self.from_seq),
            to_seq: Some(self.at.size),
            desc: self.desc,
            limit: 1000,
            ..Default::default()
        };
        self.reader.each(q, f)
    }
}

/// Whether `rule`'s `when` holds for `e` (no `when`: it does; a redacted
/// entry, its payload gone, matches no `when`).
pub(super) fn matches(rule: &Rule, e: &StoredEntry) -> Result<bool, Halt> {
    match &rule.when {
        None => Ok(true),
        Some(_) if e.redacted_by != 0 => Ok(false),
        Some(w) => w.holds(e).map_err(|m| Halt::Expr(Some(e.seq), format!("when at seq {}: {m}", e.seq))),
    }
}

/// An entry's time for the rules: its `occurred_at` when given and earlier
/// than when the ledger recorded it, else the recorded time — never later
/// than the ledger saw it.
pub(super) fn time_of(e: &StoredEntry) -> i64 {
    match e.leaf.occurred_at {
        t if t > 0 => t.min(e.leaf.recorded_at),
        _ => e.leaf.recorded_at,
    }
}
