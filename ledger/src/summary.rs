//! Compliance summaries (docs/ARCHITECTURE.md "Design decisions: Policy and summaries"): counts per category
//! and subject, required-field coverage, the decision-engine summary of the
//! Stage5 playbook, and key-rotation / checkpoint freshness — each naming the
//! checkpoint it was computed at.
//!
//! Owns: the summary arithmetic. Must not: change the log.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::keys::DAY_NS;
use crate::log::{LedgerError, LedgerReader, Query, StoredEntry};

/// What to summarise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryRequest {
    /// only this category
    pub category: Option<String>,
    /// only this subject
    pub subject: Option<String>,
    /// recorded_at ≥ (unix ns)
    pub since: Option<i64>,
    /// recorded_at < (unix ns)
    pub until: Option<i64>,
    /// how many latest decision evaluations to list (0 = none)
    pub history: usize,
}

/// The checkpoint a summary was computed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct At {
    /// tree size
    pub size: u64,
    /// root, hex
    pub root: String,
}

/// Required-field coverage of one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// required fields
    pub required: Vec<String>,
    /// entries of the category
    pub entries: u64,
    /// entries with every required field
    pub complete: u64,
    /// complete / entries (1.0 when there are none)
    pub coverage: f64,
    /// entries missing each field
    pub missing: BTreeMap<String, u64>,
}

/// One decision evaluation in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// entry
    pub seq: u64,
    /// server time
    pub recorded_at: i64,
    /// model
    pub model: Option<String>,
    /// accepted?
    pub accepted: Option<bool>,
    /// rejection reasons
    pub reasons: Vec<String>,
    /// thresholds snapshot
    pub thresholds: Option<Value>,
}

/// The decision_engine_summary of the Stage5 playbook.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecisionSummary {
    /// evaluations
    pub total: u64,
    /// accepted ones
    pub accepted: u64,
    /// accepted / total (0 when none)
    pub acceptance_rate: f64,
    /// model of the latest evaluation
    pub latest_model: Option<String>,
    /// thresholds of the latest evaluation
    pub latest_thresholds: Option<Value>,
    /// most frequent rejection reasons, most first (at most 10)
    pub top_rejection_reasons: Vec<(String, u64)>,
    /// the latest evaluations, newest last
    pub history: VecDeque<Evaluation>,
}

/// Key and checkpoint freshness.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Freshness {
    /// seq of the latest key_rotation entry
    pub last_key_rotation_seq: Option<u64>,
    /// its recorded_at
    pub last_key_rotation_at: Option<i64>,
    /// days since then (or since the log's first entry when never rotated)
    pub days_since_key_rotation: Option<i64>,
    /// recorded_at of the newest entry the checkpoint covers
    pub newest_entry_at: Option<i64>,
}

/// A compliance summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// computed at this checkpoint
    pub checkpoint: At,
    /// entries summarised
    pub entries: u64,
    /// entries per category
    pub by_category: BTreeMap<String, u64>,
    /// entries per subject
    pub by_subject: BTreeMap<String, u64>,
    /// required-field coverage per category that has required fields
    pub required_fields: BTreeMap<String, Coverage>,
    /// decision evaluations
    pub decision_engine: DecisionSummary,
    /// freshness
    pub freshness: Freshness,
}

/// Computes a summary at the reader's latest checkpoint.
pub fn summarize(r: &LedgerReader, req: &SummaryRequest, now_ns: i64) -> Result<Summary, LedgerError> {
    let cp = r.latest_checkpoint();
    let mut acc = Acc::default();
    let q = Query {
        category: req.category.clone(),
        subject: req.subject.clone(),
        since: req.since,
        until: req.until,
        to_seq: Some(cp.checkpoint.size),
        limit: 1000,
        ..Default::default()
    };
    r.each(q, |e| {
        acc.add(r, &e, req.history);
        Ok::<_, LedgerError>(true)
    })?;
    let freshness = freshness(r, cp.checkpoint.size, now_ns)?;
    let at = At { size: cp.checkpoint.size, root: crate::hash::to_hex(&cp.checkpoint.root) };
    Ok(acc.finish(at, freshness))
}

#[derive(Default)]
struct Acc {
    entries: u64,
    by_category: BTreeMap<String, u64>,
    by_subject: BTreeMap<String, u64>,
    coverage: BTreeMap<String, Coverage>,
    decisions: DecisionSummary,
    reasons: HashMap<String, u64>,
}

impl Acc {
    fn add(&mut self, r: &LedgerReader, e: &StoredEntry, history: usize) {
        let l = &e.leaf;
        self.entries += 1;
        *self.by_category.entry(l.category.clone()).or_default() += 1;
        if !l.subject.is_empty() {
            *self.by_subject.entry(l.subject.clone()).or_default() += 1;
        }
        let payload: serde_json::Map<String, Value> = serde_json::from_slice(&e.payload).unwrap_or_default();
        let policy = r.policy();
        let required = policy.required(&l.category);
        if !required.is_empty() {
            let c = self
                .coverage
                .entry(l.category.clone())
                .or_insert_with(|| Coverage { required: required.to_vec(), ..Default::default() });
            c.entries += 1;
            let missing: Vec<&String> =
                required.iter().filter(|f| payload.get(f.as_str()).is_none_or(Value::is_null)).collect();
            if missing.is_empty() && e.redacted_by == 0 {
                c.complete += 1;
            }
            for f in missing {
                *c.missing.entry(f.clone()).or_default() += 1;
            }
        }
        if l.category == "decision_evaluation" {
            self.decision(e, &payload, history);
        }
    }

    fn decision(&mut self, e: &StoredEntry, p: &serde_json::Map<String, Value>, history: usize) {
        let d = &mut self.decisions;
        d.total += 1;
        let accepted = p.get("accepted").and_then(Value::as_bool);
        let reasons: Vec<String> = match p.get("reasons") {
            Some(Value::Array(a)) => {
                a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()
            }
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        if accepted == Some(true) {
            d.accepted += 1;
        } else {
            for reason in &reasons {
                *self.reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        let model = p.get("model").map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned));
        d.latest_model = model.clone().or(d.latest_model.take());
        d.latest_thresholds = p.get("thresholds").cloned().or(d.latest_thresholds.take());
        if history > 0 {
            d.history.push_back(Evaluation {
                seq: e.seq,
                recorded_at: e.leaf.recorded_at,
                model,
                accepted,
                reasons,
                thresholds: p.get("thresholds").cloned(),
            });
            if d.history.len() > history {
                d.history.pop_front();
            }
        }
    }

    fn finish(mut self, checkpoint: At, freshness: Freshness) -> Summary {
        for c in self.coverage.values_mut() {
            c.coverage = if c.entries == 0 { 1.0 } else { c.complete as f64 / c.entries as f64 };
        }
        let d = &mut self.decisions;
        d.acceptance_rate = if d.total == 0 { 0.0 } else { d.accepted as f64 / d.total as f64 };
        let mut reasons: Vec<(String, u64)> = self.reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        reasons.truncate(10);
        d.top_rejection_reasons = reasons;
        Summary {
            checkpoint,
            entries: self.entries,
            by_category: self.by_category,
            by_subject: self.by_subject,
            required_fields: self.coverage,
            decision_engine: self.decisions,
            freshness,
        }
    }
}

fn freshness(r: &LedgerReader, size: u64, now_ns: i64) -> Result<Freshness, LedgerError> {
    let mut f = Freshness::default();
    if size == 0 {
        return Ok(f);
    }
    f.newest_entry_at = Some(r.get(size - 1)?.leaf.recorded_at);
    let q =
        Query { category: Some("key_rotation".into()), to_seq: Some(size), desc: true, limit: 1, ..Default::default() };
    let since = match r.query(&q)?.entries.first() {
        Some(e) => {
            f.last_key_rotation_seq = Some(e.seq);
            f.last_key_rotation_at = Some(e.leaf.recorded_at);
            e.leaf.recorded_at
        }
        None => r.get(0)?.leaf.recorded_at,
    };
    f.days_since_key_rotation = Some((now_ns - since).div_euclid(DAY_NS));
    Ok(f)
}
