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
