//! The index thread (docs/ARCHITECTURE.md "Write path"): the index is
//! applied after the receipts go out, yet every read sees an acknowledged
//! entry at once, duplicates of a batch the index has not applied yet are
//! still found, and the journal verifies.

mod common;

use std::sync::mpsc;

use ledger::log::{Ledger, Query};

fn batch(first: u64, n: u64) -> Vec<ledger::NewEntry> {
    (first..first + n)
        .map(|i| {
            let e = common::entry("alert_ack", Some(&format!("INC-{}", i % 5)), i);
            common::with_request_id(e, &format!("req-{i}"))
        })
        .collect()
}

/// A reader on another thread gets each receipt as it is issued and reads
/// the entry, its proof at the receipt's size, and its subject's history
/// through it — with no wait of its own.
#[test]
fn every_receipt_is_readable_at_once_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    let reader = l.reader();
    let (tx, rx) = mpsc::channel::<ledger::Receipt>();
    let checker = std::thread::spawn(move || {
        let mut checked = 0u64;
        for r in rx {
            let e = reader.get(r.seq).expect("an acknowledged entry is readable");
            assert_eq!(e.leaf_hash, r.leaf_hash);
            let size = r.checkpoint.checkpoint.size;
            let (proof, at) = reader.prove_inclusion(r.seq, Some(size)).expect("a proof at the receipt's size");
            assert_eq!(at, size);
            ledger::merkle::verify_inclusion(r.seq, size, &r.leaf_hash, &proof, &r.checkpoint.checkpoint.root)
                .expect("the proof leads to the receipt's root");
            let q = Query {
                subject: Some(e.leaf.subject.clone()),
                to_seq: Some(r.seq + 1),
                desc: true,
                limit: 1,
                ..Default::default()
            };
            assert_eq!(reader.query(&q).unwrap().entries[0].seq, r.seq, "the subject index holds it");
            assert!(reader.size() > r.seq);
            checked += 1;
        }
        checked
    });
    for b in 0..150 {
        for r in l.append_batch(batch(b * 16, 16)) {
            tx.send(r.unwrap()).unwrap();
        }
    }
    drop(tx);
    assert_eq!(checker.join().unwrap(), 2_400);
    assert_eq!(l.indexed_size(), l.size(), "the index thread catches up");
    assert_verifies(&l, dir.path());
}

/// A retry that arrives right after its batch (which the index may not
/// hold yet) gets the original entry back, not a second one.
#[test]
fn a_retry_right_after_its_batch_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    for b in 0..50 {
        let first: Vec<_> = l.append_batch(batch(b * 8, 8)).into_iter().map(Result::unwrap).collect();
        let again: Vec<_> = l.append_batch(batch(b * 8, 8)).into_iter().map(Result::unwrap).collect();
        for (a, r) in first.iter().zip(&again) {
            assert!(r.duplicate && !a.duplicate);
            assert_eq!((r.seq, r.leaf_hash), (a.seq, a.leaf_hash));
            r.tlog_proof().verify(&l.verifiers(), Some(&r.leaf_hash)).expect("the duplicate's receipt verifies");
        }
    }
    assert_eq!(l.size(), 400, "no retry wrote an entry");
    assert_verifies(&l, dir.path());
}

/// Entries acknowledged just before a drop are in the index after a
/// reopen (the index thread finished, or catch-up redid it).
#[test]
fn a_drop_right_after_appends_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    for b in 0..20 {
        for r in l.append_batch(batch(b * 10, 10)) {
            r.unwrap();
        }
    }
    drop(l);
    let l = common::open(dir.path(), common::options());
    assert_eq!((l.size(), l.indexed_size()), (200, 200));
    let q = Query { subject: Some("INC-3".into()), limit: 1000, ..Default::default() };
    assert_eq!(l.query(&q).unwrap().entries.len(), 40);
    assert!(
        l.append(common::with_request_id(common::entry("alert_ack", Some("INC-3"), 3), "req-3")).unwrap().duplicate
    );
}

/// Pipelined group commit: a batch begun while an earlier one is not yet
/// durable is sequenced after it; nothing of either is visible before a
/// sync covers it, one sync covers both, and each receipt proves its entry
/// in its own batch's checkpoint.
#[test]
fn a_batch_begun_before_the_last_one_synced_is_acknowledged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    let exported = |l: &Ledger| l.bundle_parts().unwrap().iter().map(|p| p.len).sum::<u64>();
    let before = exported(&l);
    let a = l.begin_batch(batch(0, 16));
    let b = l.begin_batch(batch(16, 16));
    assert_eq!(l.size(), 0, "written, not durable: not acknowledged");
    assert!(l.get(0).is_err(), "readers do not see a batch before its sync");
    assert_eq!(exported(&l), before, "an export copies durable bytes only");
    let rb: Vec<_> = b.wait().into_iter().map(Result::unwrap).collect();
    assert_eq!(l.size(), 32, "the later batch's sync covers the earlier one");
    let ra: Vec<_> = a.wait().into_iter().map(Result::unwrap).collect();
    for (i, r) in ra.iter().chain(&rb).enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.checkpoint.checkpoint.size, if i < 16 { 16 } else { 32 });
        r.tlog_proof().verify(&l.verifiers(), Some(&r.leaf_hash)).expect("the receipt verifies");
        assert_eq!(l.get(r.seq).unwrap().leaf_hash, r.leaf_hash);
    }
    assert_verifies(&l, dir.path());
}

/// A retry of a request whose batch is written but not yet synced finds
/// it (the writer makes that batch durable and indexed first): the same
/// entry back, or a conflict for other content, never a second entry.
#[test]
fn a_retry_of_a_batch_not_yet_synced_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    let first = l.begin_batch(batch(0, 8));
    let again = l.begin_batch(batch(0, 8));
    let other = common::with_request_id(common::entry("alert_ack", Some("INC-9"), 99), "req-3");
    let conflict = l.begin_batch(vec![other]);
    let again: Vec<_> = again.wait().into_iter().map(Result::unwrap).collect();
    let first: Vec<_> = first.wait().into_iter().map(Result::unwrap).collect();
    for (a, r) in first.iter().zip(&again) {
        assert!(r.duplicate && !a.duplicate);
        assert_eq!((r.seq, r.leaf_hash), (a.seq, a.leaf_hash));
    }
    match conflict.wait().pop().unwrap() {
        Err(ledger::AppendError::Conflict { request_id, seq }) => assert_eq!((request_id.as_str(), seq), ("req-3", 3)),
        other => panic!("expected a conflict with entry 3, got {other:?}"),
    }
    assert_eq!(l.size(), 8, "no retry wrote an entry");
    assert_verifies(&l, dir.path());
}

/// Batches begun and not waited for, across segment rolls (a segment is
/// sealed only after the batches in it are durable), and a pending batch
/// dropped without a wait: all durable, in order, and there after a reopen.
#[test]
fn pending_batches_across_rolls_and_drops_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::options();
    opts.segment_bytes = 16 << 10;
    let l = common::open(dir.path(), opts.clone());
    let pending: Vec<_> = (0..40).map(|b| l.begin_batch(batch(b * 10, 10))).collect();
    drop(l.begin_batch(batch(400, 10)));
    assert_eq!(l.size(), 410, "a dropped pending batch is still made durable");
    let mut seq = 0;
    for p in pending {
        for r in p.wait() {
            assert_eq!(r.unwrap().seq, seq);
            seq += 1;
        }
    }
    let segments = l.bundle_parts().unwrap().len();
    assert!(segments > 3, "the segments rolled: {segments}");
    drop(l);
    let l = common::open(dir.path(), opts);
    assert_eq!((l.size(), l.indexed_size()), (410, 410));
    let q = Query { subject: Some("INC-3".into()), limit: 1000, ..Default::default() };
    let hits = l.query(&q).unwrap().entries;
    assert_eq!(hits.len(), 82);
    for w in hits.windows(2) {
        assert_eq!(w[1].leaf.subject_prev, w[0].seq + 1, "each entry links its subject's previous one");
    }
    assert_verifies(&l, dir.path());
}

/// Appenders on several threads overlap (one sequences while another
/// syncs): every entry once, chains and subject links intact.
#[test]
fn concurrent_appenders_keep_the_log_whole() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let l = &l;
            s.spawn(move || {
                for b in 0..25 {
                    let first = (t * 25 + b) * 8;
                    for r in l.append_batch(batch(first, 8)) {
                        let r = r.unwrap();
                        r.tlog_proof().verify(&l.verifiers(), Some(&r.leaf_hash)).expect("verifies");
                    }
                }
            });
        }
    });
    assert_eq!(l.size(), 800);
    assert_verifies(&l, dir.path());
}

fn assert_verifies(l: &Ledger, dir: &std::path::Path) {
    l.close().unwrap();
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &dir.join("journal"),
        vkeys: &l.verifiers(),
        hmac_keys: Some(&l.hmac_keys()),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.findings.is_empty(), "{:?}", rep.findings);
    assert_eq!(rep.entries, l.size());
}
