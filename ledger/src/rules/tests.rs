//! Each kind of rule on small logs built to pass, warn and fail it; the
//! policy keys refused with the rule and key named.

use serde_json::json;

use super::fixture::{DAY, Log, MIN, rules};
use super::{Verdict, check_set};

fn one(kind_toml: &str) -> Vec<super::Rule> {
    rules(&format!("[[policy.rules]]\nname = \"r\"\n{kind_toml}")).unwrap()
}

#[test]
fn freshness_passes_warns_and_fails_with_the_latest_matching_entry() {
    let rs = one(
        "kind = \"freshness\"\ncategory = \"platform_key_rotation\"\nwhen = 'payload.kind == \"tls\"'\nmax_age = \"30d\"\nwarn_before = \"7d\"",
    );
    let log = Log::new();
    let none = log.eval(&rs);
    assert_eq!((none[0].verdict, none[0].seq), (Verdict::Fail, None));
    assert!(none[0].detail.contains("no platform_key_rotation entry matching"), "{}", none[0].detail);
    let tls = log.add("platform_key_rotation", "core-oem", json!({"kind": "tls"}));
    log.at(DAY).add("platform_key_rotation", "core-oem", json!({"kind": "rbac"}));
    log.at(10 * DAY);
    assert_eq!((log.eval(&rs)[0].verdict, log.eval(&rs)[0].seq), (Verdict::Pass, Some(tls)));
    log.at(24 * DAY);
    let w = log.eval(&rs);
    assert_eq!((w[0].verdict, w[0].seq), (Verdict::Warn, Some(tls)));
    assert!(w[0].detail.contains("6d before it is older than 30d"), "{}", w[0].detail);
    log.at(31 * DAY);
    let f = log.eval(&rs);
    assert_eq!((f[0].verdict, f[0].seq), (Verdict::Fail, Some(tls)));
    assert!(f[0].detail.contains("31d old: older than 30d"), "{}", f[0].detail);
}

#[test]
fn a_past_size_gives_the_verdict_the_log_had_then() {
    let rs = one("kind = \"freshness\"\ncategory = \"acceptance_run\"\nmax_age = \"7d\"");
    let log = Log::new();
    let first = log.add("acceptance_run", "oem", json!({"run": 1}));
    log.at(8 * DAY).add("stage4_incident", "INC-1", json!({}));
    let then = log.log.reader().size();
    log.at(9 * DAY).add("acceptance_run", "oem", json!({"run": 2}));
    let r = log.log.reader();
    let past = super::evaluate(&r, &rs, super::AsOf::past(&r, then).unwrap()).unwrap();
    assert_eq!((past[0].verdict, past[0].seq), (Verdict::Fail, Some(first)));
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Pass);
}

#[test]
fn references_resolve_or_name_the_first_that_does_not() {
    let rs = one(
        "kind = \"reference\"\ncategory = \"stage5_incident\"\nfield = \"rotation_event_id\"\ntarget_category = \"platform_key_rotation\"",
    );
    let log = Log::new();
    log.add("platform_key_rotation", "core-oem", json!({"rotation_event_id": "rot-1"}));
    log.add("stage5_incident", "INC-1", json!({"rotation_event_id": "rot-1"}));
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Pass);
    let bad = log.add("stage5_incident", "INC-2", json!({"rotation_event_id": "rot-9"}));
    log.add("stage5_incident", "INC-3", json!({}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(bad)));
    assert!(
        o[0].detail.starts_with("2 of 3 do not resolve; first: seq 2 names rotation_event_id \"rot-9\""),
        "{}",
        o[0].detail
    );
}

#[test]
fn checks_read_the_latest_or_every_entry_and_expression_errors_fail_naming_the_seq() {
    let latest = one(
        "kind = \"check\"\ncategory = \"tco_report\"\nexpr = 'double(payload.avg) <= 2.0 * double(payload.threshold)'",
    );
    let log = Log::new();
    let high = log.add("tco_report", "INC-1", json!({"avg": 0.0095, "threshold": 0.004}));
    assert_eq!((log.eval(&latest)[0].verdict, log.eval(&latest)[0].seq), (Verdict::Fail, Some(high)));
    let ok = log.add("tco_report", "INC-1", json!({"avg": 0.0042, "threshold": 0.004}));
    assert_eq!((log.eval(&latest)[0].verdict, log.eval(&latest)[0].seq), (Verdict::Pass, Some(ok)));
    let all = one(
        "kind = \"check\"\ncategory = \"tco_report\"\nscope = \"all\"\nseverity = \"warn\"\nexpr = 'double(payload.avg) <= 2.0 * double(payload.threshold)'",
    );
    let o = log.eval(&all);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Warn, Some(high)));
    let broken = log.add("tco_report", "INC-1", json!({"threshold": 0.004}));
    let o = log.eval(&latest);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(broken)));
    assert!(o[0].detail.contains("cannot be evaluated"), "{}", o[0].detail);
}

#[test]
fn approvals_are_present_waiting_or_missing_and_sign_offs_count_by_role() {
    let rs =
        one("kind = \"approved\"\ncategory = \"decision_evaluation\"\nwhen = '\"ai_degraded\" in payload.reasons'");
    let log = Log::new();
    log.add("decision_evaluation", "autotrader", json!({"reasons": []}));
    let degraded = log.add("decision_evaluation", "autotrader", json!({"reasons": ["ai_degraded"]}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(degraded)));
    assert!(o[0].detail.starts_with("1 of 1 without an approval"), "{}", o[0].detail);
    log.approve(degraded, None);
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Pass);
    let signed = one(
        "kind = \"approved\"\ncategory = \"stage4_incident\"\nrole = \"incident_manager\"\nwhen = 'has(payload.status) && payload.status == \"resolved\"'",
    );
    let closing = log.add("stage4_incident", "INC-1", json!({"status": "resolved"}));
    log.approve(closing, Some("operator"));
    let o = log.eval(&signed);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(closing)));
    log.approve(closing, Some("incident_manager"));
    assert_eq!(log.eval(&signed)[0].verdict, Verdict::Pass);
}

#[test]
fn responses_in_time_escalated_open_or_missed() {
    let rs = one(
        "kind = \"response\"\ncategory = \"alert_fired\"\nresponse = \"alert_ack\"\nwithin = \"5m\"\notherwise = \"stage4_incident\"\notherwise_when = 'has(payload.escalated_to)'",
    );
    let log = Log::new();
    log.add("alert_fired", "INC-1", json!({}));
    log.at(4 * MIN).add("alert_ack", "INC-1", json!({}));
    let late = log.at(10 * MIN).add("alert_fired", "INC-2", json!({}));
    log.at(20 * MIN).add("alert_ack", "INC-2", json!({}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(late)));
    assert!(o[0].detail.contains("answered 10m after it (limit 5m), no escalation"), "{}", o[0].detail);
    log.add("stage4_incident", "INC-2", json!({"escalated_to": "L2"}));
    log.at(21 * MIN).add("alert_fired", "INC-3", json!({}));
    let o = log.eval(&rs);
    assert_eq!(o[0].verdict, Verdict::Pass, "{}", o[0].detail);
    assert!(o[0].detail.contains("1 answered by alert_ack within 5m, 1 escalated, 1 still open"), "{}", o[0].detail);
    log.at(30 * MIN);
    let o = log.eval(&rs);
    assert!(
        o[0].detail.contains("1 of 3 alert_fired entries not answered in time; first: seq 5 never answered"),
        "{}",
        o[0].detail
    );
}

#[test]
fn aggregates_see_the_last_n_entries() {
    let rs = one(
        "kind = \"aggregate\"\ncategory = \"decision_evaluation\"\nlast = 4\nexpr = 'entries.filter(e, e.payload.accepted).size() * 100 >= entries.size() * 75'",
    );
    let log = Log::new();
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Fail);
    for accepted in [false, false, true, true, true] {
        log.add("decision_evaluation", "autotrader", json!({"accepted": accepted}));
    }
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Pass, Some(4)), "{}", o[0].detail);
    assert!(o[0].detail.contains("over the last 4 (seq 1–4)"), "{}", o[0].detail);
    log.add("decision_evaluation", "autotrader", json!({"accepted": false}));
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Pass, "3 of the last 4");
    log.add("decision_evaluation", "autotrader", json!({"accepted": false}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(6)), "2 of the last 4");
}

#[test]
fn bad_rules_are_refused_naming_the_rule_and_the_key() {
    let bad = |body: &str| rules(&format!("[[policy.rules]]\n{body}")).unwrap_err();
    assert!(bad("kind = \"freshness\"\ncategory = \"x\"").contains("a rule needs a non-empty name"));
    let e = bad("name = \"f\"\nkind = \"freshness\"\ncategory = \"x\"");
    assert!(e.contains("rule \"f\": max_age: is required for kind freshness"), "{e}");
    let e = bad("name = \"f\"\nkind = \"freshness\"\ncategory = \"x\"\nmax_age = \"7d\"\nexpr = 'true'");
    assert!(e.contains("rule \"f\": expr: does not apply to kind freshness"), "{e}");
    let e = bad("name = \"f\"\nkind = \"often\"\ncategory = \"x\"");
    assert!(e.contains("kind: \"often\" is not one of freshness"), "{e}");
    let e = bad("name = \"f\"\nkind = \"check\"\ncategory = \"x\"\nexpr = 'payload.a >'");
    assert!(e.contains("is not valid CEL"), "{e}");
    let e = bad("name = \"f\"\nkind = \"freshness\"\ncategory = \"x\"\nmax_age = \"7 days\"");
    assert!(e.contains("give a whole number of s, m, h or d"), "{e}");
    assert!(bad("name = \"f\"\nkind = \"approved\"\ncategory = \"x\"\ncolour = 1").contains("unknown field `colour`"));
    let two = rules("[[policy.rules]]\nname = \"a\"\nkind = \"approved\"\ncategory = \"x\"\n[[policy.rules]]\nname = \"a\"\nkind = \"approved\"\ncategory = \"y\"").unwrap();
    let e = check_set(&two, |_| true).unwrap_err();
    assert_eq!((e.index, e.field.as_str()), (1, "name"));
    let e = check_set(&two[..1], |c| c != "x").unwrap_err();
    assert_eq!((e.index, e.field.as_str()), (0, "category"));
}

#[test]
fn rules_serialise_as_written() {
    let text = include_str!("../../../docs/policy/stage5.toml");
    let rs = rules(text).unwrap();
    let again: Vec<super::Rule> = serde_json::from_value(serde_json::to_value(&rs).unwrap()).unwrap();
    assert_eq!(rs, again);
}

#[test]
fn an_expression_error_in_when_fails_the_rule_naming_the_entry() {
    let rs =
        one("kind = \"freshness\"\ncategory = \"acceptance_run\"\nwhen = 'payload.tco == \"pass\"'\nmax_age = \"7d\"");
    let log = Log::new();
    let seq = log.add("acceptance_run", "oem", json!({"run": 1}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(seq)));
    assert!(o[0].detail.starts_with(&format!("when at seq {seq}:")), "{}", o[0].detail);
}

#[test]
fn expressions_see_the_entry_when_they_name_it() {
    let rs = one(
        "kind = \"check\"\ncategory = \"override\"\nscope = \"all\"\nwhen = 'entry.subject.startsWith(\"INC-\")'\nexpr = 'entry.actor != \"svc\" && !entry.redacted && entry.seq >= 0'",
    );
    let log = Log::new();
    log.add_as("ops", "override", "INC-1", json!({}));
    log.add("override", "BG-1", json!({}));
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Pass, "{}", log.eval(&rs)[0].detail);
    let by_svc = log.add("override", "INC-2", json!({}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(by_svc)), "{}", o[0].detail);
}

#[test]
fn redacted_entries_match_no_condition_and_are_not_read() {
    let fresh = one(
        "kind = \"freshness\"\ncategory = \"platform_key_rotation\"\nwhen = 'payload.bundle == \"core-oem\"'\nmax_age = \"30d\"",
    );
    let latest = one("kind = \"check\"\ncategory = \"tco_report\"\nexpr = 'payload.avg <= 2.0 * payload.threshold'");
    let log = Log::new();
    let rot = log.add("platform_key_rotation", "core-oem", json!({"bundle": "core-oem"}));
    let ok = log.add("tco_report", "INC-1", json!({"avg": 0.004, "threshold": 0.004}));
    let later = log.add("platform_key_rotation", "core-oem", json!({"bundle": "core-oem"}));
    let gone = log.add("tco_report", "INC-1", json!({"avg": 0.1, "threshold": 0.004}));
    let admin = crate::Actor::new("admin", &Default::default()).unwrap();
    log.log.redact(&admin, later, "erasure request").unwrap();
    log.log.redact(&admin, gone, "erasure request").unwrap();
    let o = log.eval(&fresh);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Pass, Some(rot)), "{}", o[0].detail);
    let o = log.eval(&latest);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Pass, Some(ok)), "{}", o[0].detail);
}

#[test]
fn an_approval_still_in_time_warns_and_over_bounds_the_entries() {
    let mut policy =
        crate::policy::Policy { categories: Default::default(), allow_undeclared: true, rules: Vec::new() };
    let needs: crate::approval::ApprovalRule = toml::from_str("role = \"risk_officer\"\nwithin = \"4h\"").unwrap();
    let category = crate::policy::CategoryPolicy { requires_approval: Some(needs), ..Default::default() };
    policy.categories.insert("decision_evaluation".into(), category);
    let log = Log::with(policy);
    let rs = one("kind = \"approved\"\ncategory = \"decision_evaluation\"");
    let old = log.add("decision_evaluation", "autotrader", json!({}));
    log.at(3 * DAY);
    let new = log.add("decision_evaluation", "autotrader", json!({}));
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(old)), "past its 4h: missing");
    log.approve(old, None);
    let o = log.eval(&rs);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Warn, Some(new)), "{}", o[0].detail);
    assert!(o[0].detail.contains("still waiting"), "{}", o[0].detail);
    log.at(3 * DAY + 5 * 3_600_000_000_000);
    assert_eq!(log.eval(&rs)[0].verdict, Verdict::Fail);
    let recent = one("kind = \"approved\"\ncategory = \"decision_evaluation\"\nover = \"1d\"");
    log.approve(new, None);
    log.at(5 * DAY);
    let unapproved = log.add("decision_evaluation", "autotrader", json!({}));
    log.at(6 * DAY);
    let o = log.eval(&recent);
    assert_eq!((o[0].verdict, o[0].seq), (Verdict::Fail, Some(unapproved)));
    assert!(o[0].detail.starts_with("1 of 1 without"), "only the last day's entry counts: {}", o[0].detail);
}

#[test]
fn limits_that_could_never_hold_are_refused() {
    let e = rules("[[policy.rules]]\nname = \"f\"\nkind = \"freshness\"\ncategory = \"x\"\nmax_age = \"7d\"\nwarn_before = \"7d\"").unwrap_err();
    assert!(e.contains("rule \"f\": warn_before: must be shorter than max_age"), "{e}");
    let e =
        rules("[[policy.rules]]\nname = \"a\"\nkind = \"aggregate\"\ncategory = \"x\"\nlast = 1000000\nexpr = 'true'")
            .unwrap_err();
    assert!(e.contains("last: 1000000 is outside 1..=100000"), "{e}");
}

#[test]
fn a_policy_reload_entry_records_the_rules_it_puts_in_force() {
    let log = Log::new();
    let mut policy = log.log.reader().policy().as_ref().clone();
    policy.rules = one("kind = \"freshness\"\ncategory = \"acceptance_run\"\nmax_age = \"7d\"");
    let admin = crate::Actor::new("admin", &Default::default()).unwrap();
    let seq = log.log.reload_policy(&admin, policy, "CHG-1", Default::default()).unwrap().seq;
    let e = log.log.reader().get(seq).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
    assert_eq!(payload["rules"][0]["max_age"], "7d", "{payload}");
    assert_eq!(payload["rules"][0]["kind"], "freshness");
}
