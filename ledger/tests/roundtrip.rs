//! Round trip: append in batches, reopen, prove and verify everything.

mod common;

use ledger::merkle::{verify_consistency, verify_inclusion};
use ledger::receipt::TlogProof;
use ledger::verify::{VerifyInput, verify};

#[test]
fn ten_thousand_entries_in_batches_reopen_prove_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = {
        let l = common::open(dir.path(), common::options());
        let r = common::fill(&l, 10_000, 250);
        l.close().unwrap();
        r
    };
    assert_eq!(receipts.len(), 10_000);
    let (l, report) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(report.size, 10_000);
    assert_eq!(report.caught_up, 0, "a clean close leaves the index caught up");
    let latest = l.latest_checkpoint();
    let vkeys = l.verifiers();
    assert_eq!(latest.checkpoint.size, 10_000);
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        // The receipt as issued verifies offline, through its text form.
        let text = r.tlog_proof().to_text();
        let v = TlogProof::parse(&text).unwrap().verify(&vkeys, None).unwrap();
        assert_eq!(v.leaf_hash, r.leaf_hash);
        // And it is in the latest checkpoint, which extends the receipt's.
        let (proof, size) = l.prove_inclusion(r.seq, None).unwrap();
        verify_inclusion(r.seq, size, &r.leaf_hash, &proof, &latest.checkpoint.root).unwrap();
        let old = &r.checkpoint.checkpoint;
        if i % 97 == 0 {
            let (cproof, _) = l.prove_consistency(old.size, None).unwrap();
            verify_consistency(old.size, size, &old.root, &latest.checkpoint.root, &cproof).unwrap();
        }
    }
    let hmac = l.hmac_keys();
    let rep = verify(&VerifyInput {
        journal_dir: &dir.path().join("journal"),
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: Some(&latest.note),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!(rep.finding_count, 0);
    assert_eq!(rep.entries, 10_000);
    assert_eq!(rep.hmac_checked, 10_000);
    assert_eq!(rep.checkpoints, 40, "each 250-entry batch passes the 100-entry interval once; close adds none");
    assert_eq!(rep.root, hex::encode(latest.checkpoint.root));
}

#[test]
fn receipts_within_one_batch_prove_against_the_batch_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    for batch in [1u64, 2, 3, 5, 8, 13, 64, 100] {
        let entries: Vec<_> = (0..batch).map(|i| common::entry("alert_ack", None, i)).collect();
        let rs: Vec<_> = l.append_batch(entries).into_iter().map(Result::unwrap).collect();
        let cp = &rs[0].checkpoint.checkpoint;
        assert_eq!(cp.size, rs.last().unwrap().seq + 1, "one checkpoint per batch, covering it");
        for r in &rs {
            assert!(std::sync::Arc::ptr_eq(&r.checkpoint, &rs[0].checkpoint), "one signature per batch");
            verify_inclusion(r.seq, cp.size, &r.leaf_hash, &r.proof, &cp.root).unwrap();
        }
    }
}

#[test]
fn get_returns_what_was_appended_and_reads_do_not_see_beyond_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    let r = l.append(common::entry("stage5_incident", Some("INC-1"), 7)).unwrap();
    let e = l.get(r.seq).unwrap();
    assert_eq!(e.leaf_bytes, r.leaf);
    assert_eq!(&e.payload[..], br#"{"tco_kpi":7,"decision_path":"p7","rotation_event_id":"r7"}"#);
    assert_eq!(e.leaf.category, "stage5_incident");
    assert_eq!(e.leaf.actor, "svc-test");
    assert_eq!(e.leaf.subject_prev, 0);
    let r2 = l.append(common::entry("stage5_incident", Some("INC-1"), 8)).unwrap();
    assert_eq!(l.get(r2.seq).unwrap().leaf.subject_prev, 1, "subject chain links to seq 0");
    assert_eq!(l.get(r2.seq).unwrap().leaf.prev_hash, r.leaf_hash.to_vec());
    assert!(matches!(l.get(2), Err(ledger::LedgerError::NotFound { seq: 2, size: 2 })));
}

#[test]
fn a_journal_that_starts_mid_log_verifies_from_its_start_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.segment_bytes = 4096;
    o.checkpoint_interval = 25;
    let l = common::open(dir.path(), o);
    common::fill(&l, 300, 10);
    l.close().unwrap();
    let segs = ledger::journal::list_segments(&dir.path().join("journal")).unwrap();
    let (first, _) = segs[3];
    let part = tempfile::tempdir().unwrap();
    for (_, p) in &segs[3..] {
        std::fs::copy(p, part.path().join(p.file_name().unwrap())).unwrap();
    }
    let start = l.start_state(first).unwrap();
    let (vkeys, hmac, latest) = (l.verifiers(), l.hmac_keys(), l.latest_checkpoint());
    let run = |s: &ledger::verify::StartState| {
        verify(&VerifyInput {
            journal_dir: part.path(),
            vkeys: &vkeys,
            hmac_keys: Some(&hmac),
            trusted_checkpoint: Some(&latest.note),
            progress: None,
            start: Some(s),
        })
        .unwrap()
    };
    let rep = run(&start);
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!((rep.first_seq, rep.entries, rep.tree_size), (first, 300 - first, 300));
    assert!(rep.checkpoints > 0, "the checkpoints after the start are checked against the rebuilt tree");
    // A forged start state cannot pass: every later checkpoint disagrees.
    let mut forged = start.clone();
    forged.compact_range[0] = hex::encode([7u8; 32]);
    let rep = run(&forged);
    assert!(!rep.ok);
    assert!(rep.findings.iter().all(|f| f.kind == ledger::verify::FindingKind::CheckpointMismatch
        || f.kind == ledger::verify::FindingKind::SplitView));
}

/// Which checkpoint a read answers with (`LedgerReader::inclusion`,
/// `checkpoint_note`): "latest" (0) is signed by a batch's checkpoint that
/// covers the entry (the readable one: it never waits); a size
/// with a checkpoint at hand is signed at that size; another size gets the
/// bare proof, which verifies against that size's root; a checkpoint note
/// is the latest or a kept history one, and none for a size not kept.
#[test]
fn proofs_and_checkpoints_come_from_the_checkpoint_asked_for() {
    use ledger::log::Inclusion;
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options()); // a history checkpoint every 100 entries
    common::fill(&l, 250, 50);
    let latest = l.latest_checkpoint();
    let Inclusion::Signed(r) = l.inclusion(7, 0).unwrap() else { panic!("latest is signed") };
    // the readable checkpoint: the latest, or a batch behind it while the index thread applies it
    assert!((50..=250).contains(&r.checkpoint.checkpoint.size) && r.checkpoint.checkpoint.size % 50 == 0);
    let cp = &r.checkpoint.checkpoint;
    verify_inclusion(7, cp.size, &r.leaf_hash, &r.proof, &cp.root).unwrap();
    let Inclusion::Signed(r) = l.inclusion(7, 250).unwrap() else { panic!("the latest size is at hand") };
    assert_eq!(r.checkpoint.note, latest.note);
    let Inclusion::Unsigned { proof, size, leaf_hash } = l.inclusion(7, 120).unwrap() else {
        panic!("no checkpoint of 120 is at hand")
    };
    assert_eq!((size, leaf_hash), (120, l.leaf_hash(7).unwrap()));
    verify_inclusion(7, 120, &leaf_hash, &proof, &l.root_at(120).unwrap()).unwrap();
    assert_eq!(l.checkpoint_note(0).unwrap().as_deref(), Some(latest.note.as_str()));
    assert_eq!(l.checkpoint_note(250).unwrap().as_deref(), Some(latest.note.as_str()));
    let kept = l.checkpoint_history(100, 100).unwrap().pop().expect("a history checkpoint at 100");
    assert_eq!(l.checkpoint_note(100).unwrap(), Some(kept.1));
    assert_eq!(l.checkpoint_note(120).unwrap(), None, "no checkpoint of 120 was kept");
    assert!(l.inclusion(7, 251).is_err(), "beyond the log");
}
