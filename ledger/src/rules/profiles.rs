//! The profiles shipped under docs/policy/: a log built to follow each
//! playbook passes every rule; for each rule, the same log with that one
//! step done wrong fails it (or warns, for a rule of severity warn),
//! naming the entry.

use serde_json::{Value, json};

use super::Verdict;
use super::fixture::{DAY, Log, MIN, of, rules};
use crate::policy::Policy;

const STAGE4: &str = include_str!("../../../docs/policy/stage4.toml");
const STAGE5: &str = include_str!("../../../docs/policy/stage5.toml");

fn rotation(log: &Log, kind: &str) -> u64 {
    let p =
        json!({"bundle": "core-oem", "kind": kind, "not_after": "2027-02-19T00:00:00Z", "rotation_event_id": "rot-1"});
    log.add("platform_key_rotation", "core-oem", p)
}

/// Rotations: on time, or (broken) 31 days before the evaluation — then
/// first, as seq 0 (the ledger's clock never goes back).
fn rotations(log: &Log, broken: &str) {
    let kinds = if broken == "core-oem-rbac-rotated" { ["rbac", "tls"] } else { ["tls", "rbac"] };
    for kind in kinds {
        let stale = broken == format!("core-oem-{kind}-rotated");
        log.at(if stale { -21 * DAY } else { 0 });
        rotation(log, kind);
    }
}

/// An alert at day 9, acknowledged after 2 minutes (broken: after 7).
fn alert(log: &Log, subject: &str, broken: &str) -> u64 {
    let seq = log.at(9 * DAY).add("alert_fired", subject, json!({"fingerprint": "f1"}));
    let delay = if broken == "alerts-answered" { 7 } else { 2 };
    log.at(9 * DAY + delay * MIN).add("alert_ack", subject, json!({"alert_seq": seq}));
    seq
}

/// The resolved incident entry and its two sign-offs (broken: one missing).
fn closing(log: &Log, category: &str, payload: Value, broken: &str) -> u64 {
    let seq = log.add(category, "INC-1", payload);
    for role in ["operator", "incident_manager"] {
        if broken != format!("checklist-signed-{}", role.replace('_', "-")) {
            log.approve(seq, Some(role));
        }
    }
    seq
}

fn stage5(broken: &str) -> (Log, u64) {
    let log = Log::with(Policy::default());
    rotations(&log, broken);
    log.at(if broken == "acceptance-run-fresh" { DAY } else { 5 * DAY });
    log.add("acceptance_run", "oem-acceptance", json!({"run": "20261106T0600Z", "tco": "pass"}));
    let alert = alert(&log, "INC-1", broken);
    let avg = if broken == "tco-within-threshold" { 0.0095 } else { 0.0042 };
    let tco = log.add("tco_report", "INC-1", json!({"avg_cost_per_trade": avg, "threshold": 0.004}));
    let accepted = broken != "acceptance-rate";
    for _ in 0..3 {
        log.add("decision_evaluation", "autotrader", json!({"model": "v3", "accepted": accepted}));
    }
    let degraded = json!({"model": "v3", "accepted": false, "reasons": ["ai_degraded"]});
    let degraded = log.add("decision_evaluation", "autotrader", degraded);
    if broken != "ai-degraded-approved" {
        log.approve(degraded, None);
    }
    let rot = if broken == "rotation-reference" { "rot-9" } else { "rot-1" };
    let inc =
        json!({"tco_kpi": 1.8, "decision_path": "limit_strategy", "rotation_event_id": rot, "status": "resolved"});
    let close = closing(&log, "stage5_incident", inc, broken);
    log.at(10 * DAY);
    let named = match broken {
        "alerts-answered" => alert,
        "tco-within-threshold" => tco,
        "ai-degraded-approved" => degraded,
        "acceptance-rate" => degraded,
        "acceptance-run-fresh" => 2,
        "core-oem-tls-rotated" | "core-oem-rbac-rotated" => 0,
        _ => close,
    };
    (log, named)
}

fn stage4(broken: &str) -> (Log, u64) {
    let log = Log::with(Policy::default());
    rotations(&log, broken);
    let alert = alert(&log, "INC-2041", broken);
    let mut l14 = json!({"step": "L1.4", "ticket": "INC-2041"});
    if broken == "incident-logged-with-ticket" {
        l14 = json!({"step": "L1.4"});
    }
    let logged = log.add("stage4_incident", "INC-2041", l14);
    let mut rollback =
        json!({"component": "multi_strategy", "action": "disable", "reason": "INC-2041", "ticket": "INC-2041"});
    if broken == "rollback-has-ticket" {
        rollback.as_object_mut().unwrap().remove("ticket");
    }
    let over = log.add("override", "INC-2041", rollback);
    let close = closing(&log, "stage4_incident", json!({"step": "L2.6", "status": "resolved"}), broken);
    log.at(10 * DAY);
    let named = match broken {
        "alerts-answered" => alert,
        "incident-logged-with-ticket" => logged,
        "rollback-has-ticket" => over,
        "core-oem-tls-rotated" | "core-oem-rbac-rotated" => 0,
        _ => close,
    };
    (log, named)
}

fn profile(text: &str, build: fn(&str) -> (Log, u64)) {
    let rs = rules(text).unwrap();
    // every category the profile names is one ledgerd declares by default
    super::check_set(&rs, |c| Policy::default().categories.contains_key(c)).unwrap();
    let (good, _) = build("");
    for o in good.eval(&rs) {
        assert_eq!(o.verdict, Verdict::Pass, "{}: {}", o.rule, o.detail);
    }
    for rule in &rs {
        let (log, seq) = build(&rule.name);
        let out = log.eval(&rs);
        let o = of(&out, &rule.name);
        assert_eq!((o.verdict, o.seq), (rule.severity, Some(seq)), "{}: {}", o.rule, o.detail);
    }
}

#[test]
fn stage5_profile_passes_its_playbook_and_fails_each_broken_step() {
    profile(STAGE5, stage5);
}

#[test]
fn stage4_profile_passes_its_playbook_and_fails_each_broken_step() {
    profile(STAGE4, stage4);
}
