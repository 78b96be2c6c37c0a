//! `ledger verify`'s warnings (FORMAT.md §11): entries written before
//! payload rule 2 (FORMAT.md §3.4) whose stored payload breaks it, or breaks
//! rule 1, are each a `payload_not_ijson` warning naming the seq, the
//! member's JSON path and the reason as the writer's refusal names them;
//! verification still succeeds.

mod common;

use std::path::{Path, PathBuf};

use ledger::verify::{FindingKind as K, Report, VerifyInput, verify};

/// A stopped log of 50 entries in batches of 10, a checkpoint after each.
fn log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    common::stopped_log_of_50(&data);
    (dir, data)
}

/// Verifies with the log's own keys (and HMAC keys) against `trusted`.
fn run(data: &Path, trusted: Option<&str>) -> Report {
    let ring = ledger::keys::Keyring::load(&ledger::layout::keyring(data)).unwrap();
    let hmac = ledger::keys::HmacKeySet::from_json(
        Path::new("keyring.json"),
        &std::fs::read_to_string(ledger::layout::keyring(data)).unwrap(),
    )
    .unwrap();
    verify(&VerifyInput {
        journal_dir: &ledger::layout::journal(data),
        vkeys: &ring.verifiers(),
        hmac_keys: Some(&hmac),
        trusted_checkpoint: trusted,
        progress: None,
        start: None,
    })
    .unwrap()
}

/// (kind, seq, detail) of every warning.
fn warned(r: &Report) -> Vec<(K, Option<u64>, String)> {
    r.warnings.iter().map(|f| (f.kind, f.seq, f.detail.clone())).collect()
}

/// A valid report with no finding, every entry's HMAC checked.
fn assert_valid(r: &Report) {
    assert!(r.ok, "{}", r.to_text());
    assert_eq!((r.finding_count, r.entries, r.checkpoints, r.hmac_checked), (0, 50, 5, 50), "{}", r.to_text());
}

#[test]
fn a_log_written_under_rule_2_has_no_warning() {
    let (_d, data) = log();
    let r = run(&data, None);
    assert_valid(&r);
    assert_eq!((r.warning_count, r.warnings.len(), r.warning_counts.len()), (0, 0, 0), "{}", r.to_text());
    assert!(r.to_text().contains(" 0 warnings; "), "{}", r.to_text());
}

#[test]
fn pre_rule_duplicates_and_big_numbers_are_warnings_naming_seq_and_path() {
    let (_d, data) = log();
    let latest = common::prerule::rewrite_as_rule_1(
        &data,
        &[
            (3, br#"{"model":"m1","accepted":true,"accepted":false}"#),
            (17, br#"{"x":{"y":1,"y":2}}"#),
            (42, br#"{"n":123456789012345678901234567890}"#),
        ],
    );
    let r = run(&data, Some(&latest));
    assert_valid(&r);
    let dup = "duplicate member name";
    let big = "integer beyond 2^53, send it as a string";
    assert_eq!(
        warned(&r),
        vec![
            (K::PayloadNotIjson, Some(3), format!("payload.accepted: {dup}")),
            (K::PayloadNotIjson, Some(17), format!("payload.x.y: {dup}")),
            (K::PayloadNotIjson, Some(42), format!("payload.n: {big}")),
        ]
    );
    assert_eq!((r.warning_count, r.warning_counts.get(&K::PayloadNotIjson)), (3, Some(&3)));
    assert_eq!(r.of_kind(K::PayloadNotIjson).len(), 3);
    let text = r.to_text();
    assert!(text.starts_with("VALID: 50 entries") && text.contains(" 3 warnings; "), "{text}");
    assert!(text.contains("\n  warning payload_not_ijson seq 3: payload.accepted: duplicate member name\n"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["warning_counts"], serde_json::json!({"payload_not_ijson": 3}));
    assert_eq!(
        json["warnings"][1],
        serde_json::json!({"kind": "payload_not_ijson", "seq": 17, "detail": "payload.x.y: duplicate member name"})
    );
}

#[test]
fn a_stored_payload_breaking_rule_1_is_the_same_warning() {
    let (_d, data) = log();
    common::prerule::rewrite_as_rule_1(&data, &[(5, b"[1,2]"), (6, br#"{"a":"#), (7, b"{\"a\":\"\xff\"}"), (8, b"")]);
    let r = run(&data, None);
    assert_valid(&r);
    let w = warned(&r);
    assert_eq!(w.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>(), [5, 6, 7, 8].map(|s| (K::PayloadNotIjson, Some(s))));
    assert_eq!(w[0].2, "payload: must be a JSON object, got an array");
    assert!(w[1].2.starts_with("payload: not valid JSON: EOF while parsing"), "{}", w[1].2);
    assert!(w[2].2.starts_with("payload: not UTF-8: "), "{}", w[2].2);
    assert!(w[3].2.starts_with("payload: not valid JSON: "), "an empty payload not redacted: {}", w[3].2);
}

#[test]
fn a_payload_the_leaf_does_not_commit_to_is_a_finding_not_a_warning() {
    let (_d, data) = log();
    let journal = ledger::layout::journal(&data);
    let mut segments = ledger::journal::read_records(&journal).unwrap();
    for record in &mut segments[0].1 {
        if let ledger::record::Decoded::Entry(e) = record
            && ledger::leaf::decode_leaf(&e.leaf).unwrap().seq == 9
        {
            e.payload = br#"{"a":1,"a":2}"#.to_vec().into();
        }
    }
    ledger::journal::write_records(&journal, &segments).unwrap();
    let r = run(&data, None);
    assert_eq!(r.findings.iter().map(|f| (f.kind, f.seq)).collect::<Vec<_>>(), [(K::PayloadMismatch, Some(9))]);
    assert_eq!(r.warning_count, 0, "{}", r.to_text());
}
