//! `ledger-bench rules [N] [RUNS]`: the Stage5 profile (docs/policy/stage5.toml,
//! ten rules) evaluated by the library over a log of N entries of the
//! playbooks' mix, RUNS times: per 100 entries an alert and its
//! acknowledgement, an `ai_degraded` evaluation and its approval, 20
//! accepted evaluations, a `stage5_incident` naming a rotation, 76 Stage4
//! steps (the filler). The log is written through the library with group
//! commit; `BENCH_KEEP=1` keeps it.

use std::time::Instant;

use ledger::rules::{AsOf, evaluate};
use serde_json::json;

/// Entries before the mix (`head`): the mix's entry `i` is seq `i + HEAD`.
const HEAD: u64 = 4;

fn payload(i: u64) -> (&'static str, String, serde_json::Value) {
    let block = i / 100;
    let inc = format!("INC-{block}");
    match i % 100 {
        0 => ("alert_fired", inc, json!({"fingerprint": format!("f{block}")})),
        1 => ("alert_ack", inc, json!({"alert_seq": i - 1 + HEAD})),
        2 => (
            "decision_evaluation",
            "autotrader".into(),
            json!({"model": "v3", "accepted": false, "reasons": ["ai_degraded"]}),
        ),
        // the rules do not re-check an approval's leaf hash (ledgerd did at append)
        3 => (
            "approval",
            String::new(),
            json!({"approved_seq": i - 1 + HEAD, "approved_leaf_hash": "00".repeat(32), "reason": "checked"}),
        ),
        4..=23 => ("decision_evaluation", "autotrader".into(), json!({"model": "v3", "accepted": true})),
        24 => ("stage5_incident", inc, json!({"tco_kpi": 1.8, "decision_path": "limit", "rotation_event_id": "rot-1"})),
        _ => ("stage4_incident", format!("BG-{}", i % 1000), json!({"step": "L1.3", "note": "x".repeat(160)})),
    }
}

fn head() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let rot = |kind| json!({"bundle": "core-oem", "kind": kind, "not_after": "2027-02-19T00:00:00Z", "rotation_event_id": "rot-1"});
    vec![
        ("platform_key_rotation", "core-oem", rot("tls")),
        ("platform_key_rotation", "core-oem", rot("rbac")),
        ("acceptance_run", "oem", json!({"run": "bench"})),
        ("tco_report", "INC-0", json!({"avg_cost_per_trade": 0.0042, "threshold": 0.004})),
    ]
}

fn fill(l: &ledger::Ledger, n: u64) {
    let limits = ledger::entry::Limits::default();
    let make = |(c, s, p): (&str, String, serde_json::Value)| {
        let e = ledger::EntryInput {
            category: c.into(),
            subject: s,
            payload: p.to_string().into_bytes(),
            ..Default::default()
        };
        e.validate("bench", &limits).expect("valid")
    };
    for r in l.append_batch(head().into_iter().map(|(c, s, p)| make((c, s.to_owned(), p))).collect()) {
        r.expect("append");
    }
    crate::append_all(l, n, 1024, false, |i| make(payload(i)));
}

/// Runs the bench.
pub fn run(n: u64, runs: u64) {
    let text = include_str!("../../docs/policy/stage5.toml");
    let rules = toml::from_str::<ledger::rules::RulesFile>(text).expect("docs/policy/stage5.toml").policy.rules;
    let dir = std::env::temp_dir().join(format!("ledger-bench-rules-{}", std::process::id()));
    let (l, _) = ledger::store::file::open(&dir, ledger::LogOptions::new("bench.local/rules")).expect("open");
    let t0 = Instant::now();
    fill(&l, n);
    println!("rules: {} entries written in {:.2} s", n + 4, t0.elapsed().as_secs_f64());
    let reader = l.reader();
    for run in 1..=runs {
        let t = Instant::now();
        let now = (ledger::log::system_clock())();
        let out = evaluate(&reader, &rules, AsOf::current(&reader, now)).expect("evaluate");
        let secs = t.elapsed().as_secs_f64();
        let verdicts: Vec<String> = out.iter().map(|o| format!("{}={}", o.rule, o.verdict.name())).collect();
        println!(
            "  run {run}: {} rules in {secs:.2} s ({:.0} entries/s); {}",
            out.len(),
            (n + 4) as f64 / secs,
            verdicts.join(" ")
        );
    }
    let now = (ledger::log::system_clock())();
    let each: Vec<String> = rules
        .iter()
        .map(|r| {
            let t = Instant::now();
            evaluate(&reader, std::slice::from_ref(r), AsOf::current(&reader, now)).expect("evaluate");
            format!("{} {:.3} s", r.name, t.elapsed().as_secs_f64())
        })
        .collect();
    println!("  each rule alone: {}", each.join(", "));
    l.close().expect("close");
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("  kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
