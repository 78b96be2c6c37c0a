//! `ledger verify` on a log holding entries written before payload rule 2
//! (FORMAT.md §3.4): each is a `payload_not_ijson` warning, printed in text
//! and JSON, and the verdict and exit code stay those of a valid log.

#[path = "../../ledger/tests/common/prerule.rs"]
mod prerule;

use std::path::Path;
use std::process::Command;

/// A stopped log of 20 entries at `dir` (its keys in `dir/keys/`).
fn log(dir: &Path) {
    let mut o = ledger::LogOptions::new("ledger.test/cli");
    o.checkpoint_interval = 5;
    let (l, _) = ledger::store::file::open(dir, o).unwrap();
    let entries = (0..20).map(|i| {
        let payload = format!(r#"{{"step":{i},"note":"entry {i}"}}"#).into_bytes();
        let input = ledger::EntryInput { category: "stage4_incident".into(), payload, ..Default::default() };
        input.validate("svc-test", &Default::default()).unwrap()
    });
    for r in l.append_batch(entries.collect()) {
        r.unwrap();
    }
    l.close().unwrap();
}

/// `ledger verify DIR --hmac-key DIR/keys/keyring.json [extra]`: exit code
/// and stdout.
fn verify(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let ring = ledger::layout::keyring(dir);
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("verify")
        .arg(dir)
        .arg("--hmac-key")
        .arg(&ring)
        .args(extra)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn pre_rule_payloads_are_printed_as_warnings_and_the_exit_code_stays_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    log(&data);
    let (code, text) = verify(&data, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("VALID: 20 entries") && text.contains(" 0 warnings; ") && !text.contains("warning "));

    prerule::rewrite_as_rule_1(
        &data,
        &[(3, br#"{"accepted":true,"accepted":false}"#), (12, br#"{"x":{"y":1,"y":2}}"#), (19, br#"{"n":1e16}"#)],
    );
    let (code, text) = verify(&data, &[]);
    assert_eq!(code, Some(0), "warnings do not fail verification: {text}");
    assert!(text.starts_with("VALID: 20 entries") && text.contains(" 3 warnings; "), "{text}");
    for line in [
        "  warning payload_not_ijson seq 3: payload.accepted: duplicate member name\n",
        "  warning payload_not_ijson seq 12: payload.x.y: duplicate member name\n",
        "  warning payload_not_ijson seq 19: payload.n: integer beyond 2^53, send it as a string\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    let (code, out) = verify(&data, &["--output", "json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["finding_count"].as_u64(), v["warning_count"].as_u64()),
        (Some(true), Some(0), Some(3))
    );
    assert_eq!(v["warning_counts"], serde_json::json!({"payload_not_ijson": 3}));
    let seqs: Vec<_> =
        v["warnings"].as_array().unwrap().iter().map(|w| (w["kind"].clone(), w["seq"].clone())).collect();
    assert_eq!(seqs, [3, 12, 19].map(|s| (serde_json::json!("payload_not_ijson"), serde_json::json!(s))));
    assert_eq!(v["warnings"][0]["detail"], "payload.accepted: duplicate member name");
}
