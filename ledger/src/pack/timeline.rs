//! The incident timeline (docs/CLI.md "ledger incident"): one subject's
//! entries with the playbooks' milestones, the clocks from the alert, and
//! the findings. `ledger incident show` prints it; an evidence pack's
//! reports (`report.json`, `report.md`, `report.html`) are made from it.
//!
//! Owns: the conventions (which entry is which milestone, what is late).
//! Must not: read the log itself: what needs the server (approvals,
//! artifacts it lacks, the log's clock) comes in a [`Context`].

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

/// An acknowledgement later than this after the alert fired, without an
/// escalation, is a `late_ack_without_escalation` finding (5 minutes).
pub const LATE_ACK_NS: i64 = 300_000_000_000;

/// One entry of the subject, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// its seq
    pub seq: u64,
    /// server time, unix ns
    pub recorded_at: i64,
    /// client time, unix ns; 0 = not given
    pub occurred_at: i64,
    /// its category
    pub category: String,
    /// who wrote it
    pub actor: String,
    /// the payload (null when redacted)
    pub payload: Value,
}

impl TimelineEntry {
    /// When it happened: `occurred_at` when given, else `recorded_at`.
    pub fn at(&self) -> i64 {
        if self.occurred_at != 0 { self.occurred_at } else { self.recorded_at }
    }
}

/// A milestone reached: by which entry, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Milestone {
    /// the entry
    pub seq: u64,
    /// its time (unix ns, [`TimelineEntry::at`])
    pub at: i64,
}

/// The playbooks' milestones, each `None` when not reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Milestones {
    /// the first `alert_fired` entry
    pub alert_fired: Option<Milestone>,
    /// the first `alert_ack` entry
    pub acknowledged: Option<Milestone>,
    /// the first entry whose payload has `escalated_to`
    pub escalated: Option<Milestone>,
    /// the first entry whose payload `step` starts with `L2`
    pub l2_confirmed: Option<Milestone>,
    /// the first `override` entry
    #[serde(rename = "override")]
    pub overridden: Option<Milestone>,
    /// the last `alert_resolved` entry or entry with payload `status` `resolved`
    pub resolved: Option<Milestone>,
}

/// Seconds from the alert firing (or the first entry) to each milestone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    /// to the acknowledgement
    pub time_to_ack: Option<f64>,
    /// to the escalation
    pub time_to_escalate: Option<f64>,
    /// to the L2 confirmation
    pub time_to_l2: Option<f64>,
}

/// Something the playbooks ask about that the timeline shows wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentFinding {
    /// `late_ack_without_escalation`, `ai_degraded_unapproved`, `missing_artifact`
    pub kind: String,
    /// the entry concerned, when there is one
    pub seq: Option<u64>,
    /// human detail
    pub detail: String,
}

/// The checkpoint the timeline is read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsOf {
    /// tree size
    pub size: u64,
    /// root, hex
    pub root: String,
}

/// An artifact an entry references that the server's store does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingArtifact {
    /// the referencing entry
    pub seq: u64,
    /// its name
    pub name: String,
    /// hex BLAKE3
    pub blake3: String,
    /// what the store said (not registered, absent, altered)
    pub reason: String,
}

/// What the timeline needs from the server.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// the log's clock at the checkpoint (recorded_at of its last entry)
    pub now: i64,
    /// decision evaluations an `approval` entry names by `approved_seq`
    pub approved: BTreeSet<u64>,
    /// referenced artifacts the server's store lacks
    pub missing_artifacts: Vec<MissingArtifact>,
}

/// `ledger incident show --output json` (docs/CLI.md "JSON output").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// the incident
    pub subject: String,
    /// the checkpoint read at
    pub as_of: AsOf,
    /// the subject's entries in seq order
    pub entries: Vec<TimelineEntry>,
    /// the milestones
    pub milestones: Milestones,
    /// the clocks
    pub durations: Durations,
    /// the findings
    pub findings: Vec<IncidentFinding>,
}

fn first(entries: &[TimelineEntry], f: impl Fn(&TimelineEntry) -> bool) -> Option<Milestone> {
    entries.iter().find(|e| f(e)).map(|e| Milestone { seq: e.seq, at: e.at() })
}

/// The milestones of `entries` (in seq order), by the conventions above.
pub fn milestones(entries: &[TimelineEntry]) -> Milestones {
    let is = |c: &'static str| move |e: &TimelineEntry| e.category == c;
    let resolved =
        |e: &TimelineEntry| e.category == "alert_resolved" || e.payload.get("status") == Some(&"resolved".into());
    Milestones {
        alert_fired: first(entries, is("alert_fired")),
        acknowledged: first(entries, is("alert_ack")),
        escalated: first(entries, |e| e.payload.get("escalated_to").is_some()),
        l2_confirmed: first(entries, |e| {
            e.payload.get("step").and_then(Value::as_str).is_some_and(|s| s.starts_with("L2"))
        }),
        overridden: first(entries, is("override")),
        resolved: entries.iter().rev().find(|e| resolved(e)).map(|e| Milestone { seq: e.seq, at: e.at() }),
    }
}

/// The decision evaluations whose `reasons` hold `ai_degraded`: each needs
/// an `approval` entry naming it (`approved_seq`).
pub fn degraded_evaluations(entries: &[TimelineEntry]) -> Vec<u64> {
    let degraded = |e: &&TimelineEntry| {
        e.category == "decision_evaluation"
            && e.payload.get("reasons").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x == "ai_degraded"))
    };
    entries.iter().filter(degraded).map(|e| e.seq).collect()
}

/// The timeline of `subject` at `as_of`.
pub fn timeline(subject: &str, as_of: AsOf, entries: Vec<TimelineEntry>, ctx: &Context) -> Timeline {
    let m = milestones(&entries);
    let start = m.alert_fired.map(|a| a.at).or_else(|| entries.first().map(TimelineEntry::at));
    let since = |x: Option<Milestone>| Some((x?.at - start?) as f64 / 1e9);
    let durations = Durations {
        time_to_ack: since(m.acknowledged),
        time_to_escalate: since(m.escalated),
        time_to_l2: since(m.l2_confirmed),
    };
    let mut findings = late_ack(&m, ctx.now).into_iter().collect::<Vec<_>>();
    for seq in degraded_evaluations(&entries).into_iter().filter(|s| !ctx.approved.contains(s)) {
        let detail = "a decision evaluation degraded by the AI (reasons hold ai_degraded) with no approval entry naming it (approved_seq)";
        findings.push(IncidentFinding { kind: "ai_degraded_unapproved".into(), seq: Some(seq), detail: detail.into() });
    }
    for a in &ctx.missing_artifacts {
        let detail = format!("artifact {} ({}): {}", a.name, a.blake3, a.reason);
        findings.push(IncidentFinding { kind: "missing_artifact".into(), seq: Some(a.seq), detail });
    }
    Timeline { subject: subject.to_owned(), as_of, entries, milestones: m, durations, findings }
}

/// An acknowledgement later than [`LATE_ACK_NS`] after the alert fired (or
/// none by `now`, that long after it), with no escalation.
fn late_ack(m: &Milestones, now: i64) -> Option<IncidentFinding> {
    let fired = m.alert_fired?;
    if m.escalated.is_some() {
        return None;
    }
    let (seq, delay, what) = match m.acknowledged {
        Some(a) => (a.seq, a.at - fired.at, "acknowledged"),
        None => (fired.seq, now - fired.at, "not acknowledged"),
    };
    (delay > LATE_ACK_NS).then(|| IncidentFinding {
        kind: "late_ack_without_escalation".into(),
        seq: Some(seq),
        detail: format!(
            "{what} {} s after the alert fired (limit {} s), and no escalation",
            delay / 1_000_000_000,
            LATE_ACK_NS / 1_000_000_000
        ),
    })
}
