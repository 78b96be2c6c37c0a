//! Audited redaction (FORMAT.md §6.4): the entry stays provable, the
//! payload leaves the disk, the verifier lists it, and a crash between the
//! redaction entry and the payload removal is finished at the next open.

mod common;

use std::path::Path;

use ledger::entry::{Actor, EntryInput};
use ledger::log::{AppendError, Ledger, RedactError};
use ledger::policy::PolicyError;
use ledger::verify::{VerifyInput, verify};

const SECRET: &str = "TOP-SECRET-4242";

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle) {
            out.push(p);
        }
    }
    out
}

fn secret_entry() -> ledger::NewEntry {
    let payload = format!(r#"{{"step":"call","customer_phone":"{SECRET}"}}"#);
    EntryInput {
        category: "stage4_incident".into(),
        subject: "INC-7".into(),
        payload: payload.into_bytes(),
        ..Default::default()
    }
    .validate("svc-test", &Default::default())
    .unwrap()
}

fn admin() -> Actor {
    Actor::new("spiffe://ops/admin", &Default::default()).unwrap()
}

fn verify_log(l: &Ledger, dir: &Path) -> ledger::verify::Report {
    let (vkeys, hmac) = (l.verifiers(), l.hmac_keys());
    let input = VerifyInput {
        journal_dir: &dir.join("journal"),
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    };
    verify(&input).unwrap()
}

#[test]
fn redaction_removes_the_payload_and_keeps_every_proof() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = common::open(&data, common::options());
    common::fill(&l, 20, 5);
    let target = l.append(secret_entry()).unwrap();
    common::fill(&l, 5, 5);
    let before = l.get(target.seq).unwrap();
    assert_eq!(files_containing(&data, SECRET.as_bytes()).len(), 1, "the payload is on disk once");

    let r = l.redact(&admin(), target.seq, "GDPR erasure, ticket PRIV-12").unwrap();
    let after = l.get(target.seq).unwrap();
    assert!(after.payload.is_empty());
    assert_eq!(after.redacted_by, r.seq + 1);
    assert_eq!((after.leaf_hash, &after.leaf_bytes), (before.leaf_hash, &before.leaf_bytes), "leaf unchanged");
    assert_eq!(files_containing(&data, SECRET.as_bytes()), Vec::<std::path::PathBuf>::new());

    // The redaction entry says who, what and why, on the entry's subject.
    let red = l.get(r.seq).unwrap();
    assert_eq!((red.leaf.category.as_str(), red.leaf.actor.as_str()), ("redaction", "spiffe://ops/admin"));
    assert_eq!(red.leaf.subject, "INC-7");
    let p: serde_json::Value = serde_json::from_slice(&red.payload).unwrap();
    assert_eq!(p["redacted_seq"], target.seq);
    assert_eq!(p["reason"], "GDPR erasure, ticket PRIV-12");

    // The old receipt still verifies; a fresh one too.
    let fresh = l.receipt_at(target.seq, &l.latest_checkpoint()).unwrap();
    assert_eq!(fresh.leaf_hash, target.leaf_hash);
    fresh.tlog_proof().verify(&l.verifiers(), Some(&target.leaf_hash)).unwrap();
    target.tlog_proof().verify(&l.verifiers(), Some(&target.leaf_hash)).unwrap();

    // Refusals change nothing.
    let size = l.size();
    let again = l.redact(&admin(), target.seq, "again").unwrap_err();
    assert!(matches!(again, RedactError::Refused { seq, .. } if seq == target.seq), "{again}");
    assert!(again.to_string().contains(&format!("already redacted by entry {}", r.seq)), "{again}");
    let meta = l.redact(&admin(), r.seq, "hide the trail").unwrap_err();
    assert!(meta.to_string().contains("it is a redaction entry"), "{meta}");
    let empty = l.redact(&admin(), 3, "  ").unwrap_err();
    assert!(empty.to_string().contains("the reason is empty"), "{empty}");
    assert!(matches!(l.redact(&admin(), 10_000, "x"), Err(RedactError::Read(_))));
    let forged = EntryInput { category: "redaction".into(), payload: b"{}".to_vec(), ..Default::default() }
        .validate("svc-test", &Default::default())
        .unwrap();
    assert!(matches!(l.append(forged), Err(AppendError::Policy(PolicyError::Reserved { .. }))));
    assert_eq!(l.size(), size);

    l.close().unwrap();
    let report = verify_log(&l, &data);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.redacted.len(), 1);
    assert_eq!((report.redacted[0].seq, report.redacted[0].redaction_seq), (target.seq, r.seq));
    assert_eq!(report.warning_count, 0, "a redacted record has no payload to check: {}", report.to_text());
}

#[test]
fn a_crash_between_the_entry_and_the_removal_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = common::open(&data, common::options());
    common::fill(&l, 10, 5);
    let target = l.append(secret_entry()).unwrap();
    let segs = ledger::journal::list_segments(&data.join("journal")).unwrap();
    assert_eq!(segs.len(), 1, "the target is in the active segment");
    // The frames, without the active segment's zero tail (FORMAT.md §6.1).
    let mut original = std::fs::read(&segs[0].1).unwrap();
    let mut scan = ledger::journal::SegmentScanner::open(&segs[0].1, segs[0].0, None).unwrap();
    while scan.next_frame().unwrap().is_some() {}
    let end = scan.offset() as usize;
    assert!(original[end..].iter().all(|&b| b == 0), "after the frames only zeros");
    original.truncate(end);
    let r = l.redact(&admin(), target.seq, "erasure").unwrap();
    l.close().unwrap();
    drop(l);
    // The state a crash right after the redaction entry leaves: the entry
    // follows the target in its segment (sealed before the rewrite), and
    // the target still holds its payload: put the original bytes back over
    // the prefix they share (the rewrite kept every length).
    assert_eq!(ledger::journal::list_segments(&data.join("journal")).unwrap().len(), 2, "sealed before rewrite");
    let mut now = std::fs::read(&segs[0].1).unwrap();
    assert!(now.len() > original.len() && now[..original.len()] != original[..]);
    now[..original.len()].copy_from_slice(&original);
    std::fs::write(&segs[0].1, &now).unwrap();
    assert_eq!(files_containing(&data, SECRET.as_bytes()).len(), 1);

    let (l, report) = ledger::store::file::open(&data, common::options()).unwrap();
    assert_eq!(report.redactions_finished, 1);
    assert_eq!(l.get(target.seq).unwrap().redacted_by, r.seq + 1);
    assert_eq!(files_containing(&data, SECRET.as_bytes()), Vec::<std::path::PathBuf>::new());
    drop(l);
    let (_l, again) = ledger::store::file::open(&data, common::options()).unwrap();
    assert_eq!(again.redactions_finished, 0, "nothing left to finish");
}

#[test]
fn a_reindex_request_is_an_entry_and_the_next_open_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = common::open(&data, common::options());
    common::fill(&l, 30, 7);
    let empty = l.request_reindex(&admin(), "").unwrap_err();
    assert!(empty.to_string().contains("reason"), "{empty}");
    let r = l.request_reindex(&admin(), "index moved to new disk, CHG-9").unwrap();
    assert_eq!(r.seq, 30);
    assert!(data.join(ledger::store::file::REINDEX_MARKER).exists());
    let e = l.get(r.seq).unwrap();
    assert_eq!((e.leaf.category.as_str(), e.leaf.actor.as_str()), ("reindex", "spiffe://ops/admin"));
    let before: Vec<_> = (0..31).map(|s| l.get(s).unwrap().leaf_hash).collect();
    l.close().unwrap();
    drop(l);

    let (l, report) = ledger::store::file::open(&data, common::options()).unwrap();
    let (_, why) = report.index_rebuilt.expect("rebuilt");
    assert_eq!(why, "rebuild requested by reindex entry 30");
    assert_eq!(report.caught_up, 31);
    assert!(!data.join(ledger::store::file::REINDEX_MARKER).exists());
    let after: Vec<_> = (0..31).map(|s| l.get(s).unwrap().leaf_hash).collect();
    assert_eq!(before, after);
    let q = ledger::log::Query { subject: Some("INC-3".into()), ..Default::default() };
    assert_eq!(l.query(&q).unwrap().entries.len(), 4, "secondary indexes rebuilt too");
    drop(l);
    let (_l, again) = ledger::store::file::open(&data, common::options()).unwrap();
    assert!(again.index_rebuilt.is_none(), "only once");
}
