//! The append path: idempotency, validation, policy, and key rotation.

mod common;

use std::sync::atomic::Ordering;

use ledger::entry::Limits;
use ledger::keys::{KeyState, Verdict};
use ledger::note::Note;
use ledger::policy::PolicyError;
use ledger::verify::{VerifyInput, verify};
use ledger::{AppendError, EntryInput};

#[test]
fn same_request_id_returns_the_original_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 3, 3);
    let first = l.append(common::with_request_id(common::entry("alert_ack", Some("A-1"), 1), "req-1")).unwrap();
    assert!(!first.duplicate);
    common::fill(&l, 2, 2);
    let again = l.append(common::with_request_id(common::entry("alert_ack", Some("A-1"), 1), "req-1")).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, again.leaf_hash, &again.leaf), (first.seq, first.leaf_hash, &first.leaf));
    assert_eq!(l.size(), 6, "nothing new was written");
    // Within one batch too.
    let rs = l.append_batch(vec![
        common::with_request_id(common::entry("alert_ack", None, 9), "req-2"),
        common::with_request_id(common::entry("alert_ack", None, 9), "req-2"),
    ]);
    let (a, b) = (rs[0].clone().unwrap(), rs[1].clone().unwrap());
    assert_eq!((a.seq, a.leaf_hash), (b.seq, b.leaf_hash));
    assert!(b.duplicate && !a.duplicate);
    assert_eq!(l.size(), 7);
    // And after a restart.
    drop(l);
    let l = common::open(dir.path(), common::options());
    let r = l.append(common::with_request_id(common::entry("alert_ack", Some("A-1"), 1), "req-1")).unwrap();
    assert_eq!((r.seq, r.leaf_hash), (first.seq, first.leaf_hash));
}

#[test]
fn same_request_id_with_different_content_is_a_conflict_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    let first = l.append(common::with_request_id(common::entry("alert_ack", None, 1), "req-1")).unwrap();
    let size = l.size();
    let err = l.append(common::with_request_id(common::entry("alert_ack", None, 2), "req-1")).unwrap_err();
    assert_eq!(err, AppendError::Conflict { request_id: "req-1".into(), seq: first.seq });
    let rs = l.append_batch(vec![
        common::with_request_id(common::entry("alert_ack", None, 3), "req-3"),
        common::with_request_id(common::entry("alert_ack", None, 4), "req-3"),
    ]);
    assert!(rs[0].is_ok());
    assert!(matches!(rs[1], Err(AppendError::Conflict { seq, .. }) if seq == size));
    assert_eq!(l.size(), size + 1);
}

fn input(category: &str, payload: &str) -> EntryInput {
    EntryInput { category: category.into(), payload: payload.as_bytes().to_vec(), ..Default::default() }
}

#[test]
fn bad_input_names_the_field_and_the_reason() {
    let lim = Limits::default();
    let cases: Vec<(EntryInput, &str, &str)> = vec![
        (input("", "{}"), "category", "1 to 64"),
        (input("Stage5", "{}"), "category", "not allowed"),
        (input(&"a".repeat(65), "{}"), "category", "1 to 64"),
        (input("alert_ack", "[]"), "payload", "must be a JSON object, got an array"),
        (input("alert_ack", "\"x\""), "payload", "got a string"),
        (input("alert_ack", "{"), "payload", "not valid JSON"),
        (
            input("alert_ack", &format!("{}{}", "[".repeat(40), "]".repeat(40))),
            "payload",
            "nesting depth 40 exceeds 32",
        ),
        (input("alert_ack", &format!(r#"{{"a":"{}"}}"#, "x".repeat(70_000))), "payload", "at most 65536"),
        (EntryInput { subject: "a\nb".into(), ..input("alert_ack", "{}") }, "subject", "control character"),
        (EntryInput { subject: "s".repeat(257), ..input("alert_ack", "{}") }, "subject", "at most 256"),
        (EntryInput { request_id: "r".repeat(129), ..input("alert_ack", "{}") }, "request_id", "1 to 128"),
        (EntryInput { request_id: "has space".into(), ..input("alert_ack", "{}") }, "request_id", "printable ASCII"),
        (EntryInput { occurred_at: -5, ..input("alert_ack", "{}") }, "occurred_at", "1970"),
        (EntryInput { payload: vec![0xff, 0xfe], ..input("alert_ack", "") }, "payload", "not UTF-8"),
    ];
    for (i, (inp, field, reason)) in cases.into_iter().enumerate() {
        let e = inp.validate("svc", &lim).unwrap_err();
        assert_eq!(e.field, field, "case {i}");
        assert!(e.reason.contains(reason), "case {i}: {}", e.reason);
    }
    let many = ledger::entry::ArtifactRef::new(0, &[0; 32], &[0; 32], 1, "a.pdf", "application/pdf").unwrap();
    let e = EntryInput { artifacts: vec![many; 33], ..input("alert_ack", "{}") }.validate("svc", &lim).unwrap_err();
    assert_eq!(e.field, "artifacts");
    let e = ledger::entry::ArtifactRef::new(2, &[0; 31], &[0; 32], 1, "a", "").unwrap_err();
    assert_eq!(e.field, "artifacts[2].blake3");
    let e = EntryInput::default().validate("", &lim).unwrap_err();
    assert_eq!(e.field, "category");
    let e = input("alert_ack", "{}").validate("", &lim).unwrap_err();
    assert_eq!(e.field, "actor");
}

#[test]
fn policy_requires_fields_declared_categories_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.policy.categories.get_mut("override").unwrap().writers = Some(vec!["ops-lead".into()]);
    let l = common::open(dir.path(), o);
    let lim = Limits::default();
    let e = input("stage5_incident", r#"{"tco_kpi":1,"decision_path":null}"#).validate("svc", &lim).unwrap();
    assert_eq!(
        l.append(e).unwrap_err(),
        AppendError::Policy(PolicyError::MissingFields {
            category: "stage5_incident".into(),
            fields: vec!["decision_path".into(), "rotation_event_id".into()]
        })
    );
    let e = input("no_such_category", "{}").validate("svc", &lim).unwrap();
    assert!(matches!(l.append(e).unwrap_err(), AppendError::Policy(PolicyError::Undeclared { .. })));
    let e =
        input("override", r#"{"component":"decision_orchestrator","reason":"INC-9"}"#).validate("svc", &lim).unwrap();
    assert!(matches!(l.append(e).unwrap_err(), AppendError::Policy(PolicyError::NotAllowed { .. })));
    let e = input("override", r#"{"component":"decision_orchestrator","reason":"INC-9"}"#)
        .validate("ops-lead", &lim)
        .unwrap();
    assert!(l.append(e).is_ok());
    assert_eq!(l.size(), 1, "rejected entries leave no trace");
    assert_eq!(std::fs::read_dir(dir.path().join("journal")).unwrap().count(), 1);
}

#[test]
fn key_rotation_is_an_entry_cosigned_by_old_and_new_keys_and_history_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, t) = common::test_clock();
    let mut o = common::options();
    o.clock = clock;
    let l = common::open(dir.path(), o.clone());
    common::fill(&l, 20, 5);
    let old_vkeys = l.verifiers();
    t.fetch_add(31 * ledger::keys::DAY_NS, Ordering::SeqCst);
    let now = t.load(Ordering::SeqCst);
    let st = l.key_status(now);
    assert!(st.iter().all(|k| k.verdict == Verdict::Fail), "31-day-old keys fail the 30-day rule: {st:?}");
    let actor = ledger::Actor::new("admin", &Limits::default()).unwrap();
    let (r, rot) = l.rotate_keys(&actor, "monthly rotation").unwrap();
    assert_eq!(rot.retired.len(), 2);
    let e = l.get(r.seq).unwrap();
    assert_eq!(e.leaf.category, "key_rotation");
    let payload: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
    assert_eq!(payload["new_keys"][0]["vkey"], rot.new_vkey);
    assert!(!String::from_utf8_lossy(&e.payload).contains("secret"));
    let note = Note::parse(&r.checkpoint.note).unwrap();
    assert_eq!(note.verify(&old_vkeys).unwrap().len(), 1, "old key signed the rotation checkpoint");
    let new = ledger::note::NoteVerifier::from_vkey(&rot.new_vkey).unwrap();
    note.verify(std::slice::from_ref(&new)).unwrap();
    let st = l.key_status(t.load(Ordering::SeqCst));
    assert_eq!(st.iter().filter(|k| k.state == KeyState::Active && k.verdict == Verdict::Ok).count(), 2);
    common::fill(&l, 10, 5);
    let later = l.latest_checkpoint();
    assert!(Note::parse(&later.note).unwrap().verify(&old_vkeys).is_err(), "the retired key no longer signs");
    l.close().unwrap();
    let all = l.verifiers();
    let hmac = l.hmac_keys();
    let rep = verify(&VerifyInput {
        journal_dir: &dir.path().join("journal"),
        vkeys: &all,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!(rep.hmac_checked, 31);
    drop(l);
    let (l, rep) = ledger::store::file::open(dir.path(), o).unwrap();
    assert!(!rep.keys_created);
    assert_eq!(l.verifiers().len(), 2);
}

#[test]
fn key_status_warns_seven_days_before_the_rotation_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, t) = common::test_clock();
    let mut o = common::options();
    o.clock = clock;
    let l = common::open(dir.path(), o);
    let t0 = t.load(Ordering::SeqCst);
    let v = |days: i64| l.key_status(t0 + days * ledger::keys::DAY_NS).iter().map(|k| k.verdict).max().unwrap();
    assert_eq!(v(0), Verdict::Ok);
    assert_eq!(v(22), Verdict::Ok);
    assert_eq!(v(23), Verdict::Warn);
    assert_eq!(v(30), Verdict::Fail);
}

#[test]
fn world_readable_keyring_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(common::open(dir.path(), common::options()));
    let ring = dir.path().join("keys/keyring.json");
    assert_eq!(std::fs::metadata(&ring).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ledger::store::file::open(dir.path(), common::options()).err().unwrap().to_string();
    assert!(err.contains("mode 0644") && err.contains("chmod 600"), "{err}");
    let text = std::fs::read_to_string(&ring).unwrap();
    let secret = text.split("\"secret\": \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(!err.contains(secret));
}

#[test]
fn queries_page_with_cursors_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 700, 70);
    for desc in [false, true] {
        let mut q = ledger::log::Query { subject: Some("INC-2".into()), limit: 17, desc, ..Default::default() };
        let mut seen = Vec::new();
        loop {
            let p = l.query(&q).unwrap();
            seen.extend(p.entries.iter().map(|e| e.seq));
            match p.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut want: Vec<u64> = (0..700).filter(|s| s % 7 == 2).collect();
        if desc {
            want.reverse();
        }
        assert_eq!(seen, want, "desc={desc}");
    }
    let q = ledger::log::Query { fields: vec![("step".into(), serde_json::json!(42))], limit: 5, ..Default::default() };
    let p = l.query(&q).unwrap();
    assert_eq!(p.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![42]);
    let t = l.get(350).unwrap().leaf.recorded_at;
    let q = ledger::log::Query { since: Some(t), until: Some(t + 1), limit: 1000, ..Default::default() };
    assert!(l.query(&q).unwrap().entries.iter().all(|e| e.leaf.recorded_at == t));
}

#[test]
fn summary_counts_coverage_and_decision_engine() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    for i in 0..10 {
        l.append(common::entry("decision_evaluation", Some("strat-1"), i)).unwrap();
    }
    l.append(common::entry("stage5_incident", Some("INC-5"), 1)).unwrap();
    let s = ledger::summary::summarize(&l, &ledger::summary::SummaryRequest { history: 3, ..Default::default() }, 0)
        .unwrap();
    assert_eq!(s.entries, 11);
    assert_eq!(s.checkpoint.size, 11);
    assert_eq!(s.by_category["decision_evaluation"], 10);
    let d = &s.decision_engine;
    assert_eq!((d.total, d.accepted), (10, 5));
    assert!((d.acceptance_rate - 0.5).abs() < 1e-9);
    assert_eq!(d.latest_model.as_deref(), Some("m0"), "entry 9 uses model m{{9 % 3}}");
    assert_eq!(d.history.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![7, 8, 9]);
    assert_eq!(d.top_rejection_reasons[0].1, 1);
    let c = &s.required_fields["stage5_incident"];
    assert_eq!((c.entries, c.complete), (1, 1));
    assert_eq!(s.required_fields["decision_evaluation"].coverage, 1.0);
}
