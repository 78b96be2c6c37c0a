//! The conformance suite every store passes (`ledger::store`): the same
//! checks, run through a `Ledger`, over an engine reopened on the same
//! disk. Crash checks wrap the engine in the fault store, then reopen it
//! without faults. `ledger/tests/conformance.rs` runs it over the file and
//! memory stores, `store-pg/tests/conformance.rs` over the PostgreSQL
//! store (both include this file and `../engines/mod.rs`).
#![allow(dead_code)]

use crate::engines::Engine;
use ledger::log::Query;
use ledger::receipt::TlogProof;
use ledger::store::fault::FaultPoint;
use ledger::{AppendError, Ledger, NewEntry, Receipt};

/// A valid entry: subjects cycle over 7, actors over 3, two categories.
pub fn entry(i: u64) -> NewEntry {
    let category = if i.is_multiple_of(4) { "alert_ack" } else { "stage4_incident" };
    ledger::EntryInput {
        category: category.into(),
        subject: format!("INC-{}", i % 7),
        payload: format!(r#"{{"step":{i},"note":"entry number {i} with some padding text"}}"#).into_bytes(),
        ..Default::default()
    }
    .validate(&format!("svc-{}", i % 3), &Default::default())
    .expect("valid test entry")
}

/// Entry `i` with request id `req-<i>` (same content every time).
pub fn request(i: u64) -> NewEntry {
    let mut e = entry(i);
    e.request_id = Some(ledger::RequestId::new(&format!("req-{i}"), &Default::default()).unwrap());
    e
}

/// Appends `make(i)` for `i` in `range`, in batches of `batch`.
pub fn fill(l: &Ledger, range: std::ops::Range<u64>, batch: u64, make: fn(u64) -> NewEntry) -> Vec<Receipt> {
    let ids: Vec<u64> = range.collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(batch as usize) {
        for r in l.append_batch(chunk.iter().map(|&i| make(i)).collect()) {
            out.push(r.expect("append"));
        }
    }
    out
}

/// The receipt verifies offline and matches what the log serves.
pub fn check_receipt(l: &Ledger, r: &Receipt) {
    let text = r.tlog_proof().to_text();
    let v = TlogProof::parse(&text).unwrap().verify(&l.verifiers(), None).expect("receipt verifies");
    assert_eq!(v.leaf_hash, r.leaf_hash);
    let e = l.get(r.seq).expect("a receipted entry is readable");
    assert_eq!((e.leaf_bytes.clone(), e.leaf_hash), (r.leaf.clone(), r.leaf_hash));
}

/// Every acknowledged receipt is present at its seq with its leaf hash.
pub fn check_present(l: &Ledger, acked: &[Receipt]) {
    assert!(l.size() >= acked.len() as u64, "tree size {} < {} acknowledged", l.size(), acked.len());
    for r in acked {
        assert_eq!(l.leaf_hash(r.seq).expect("acknowledged entry"), r.leaf_hash, "seq {}", r.seq);
        assert_eq!(l.get(r.seq).unwrap().leaf_bytes, r.leaf, "seq {}", r.seq);
    }
}

pub fn appends_and_reads(e: &dyn Engine) {
    let l = e.ledger();
    let rs = fill(&l, 0..40, 7, entry);
    assert_eq!(l.size(), 40);
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        check_receipt(&l, r);
        let want = format!(r#"{{"step":{i},"note":"entry number {i} with some padding text"}}"#);
        assert_eq!(&l.get(r.seq).unwrap().payload[..], want.as_bytes());
        let latest = l.latest_checkpoint();
        let (proof, size) = l.prove_inclusion(r.seq, None).unwrap();
        ledger::merkle::verify_inclusion(r.seq, size, &r.leaf_hash, &proof, &latest.checkpoint.root).unwrap();
    }
    assert!(matches!(l.get(40), Err(ledger::LedgerError::NotFound { seq: 40, size: 40 })));
    drop(l);
    let l = e.ledger();
    assert_eq!(l.size(), 40, "everything acknowledged is there after a reopen");
    check_present(&l, &rs);
    assert_eq!(l.latest_checkpoint().checkpoint.root, rs[39].checkpoint.checkpoint.root);
}

pub fn idempotency_across_reopen(e: &dyn Engine) {
    let l = e.ledger();
    fill(&l, 0..5, 5, entry);
    let first = l.append(request(100)).unwrap();
    assert!(!first.duplicate);
    fill(&l, 5..8, 3, entry);
    drop(l);
    let l = e.ledger();
    let again = l.append(request(100)).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, again.leaf_hash), (first.seq, first.leaf_hash));
    check_receipt(&l, &again);
    let mut other = request(101);
    other.request_id = request(100).request_id;
    assert_eq!(l.append(other).unwrap_err(), AppendError::Conflict { request_id: "req-100".into(), seq: first.seq });
    assert_eq!(l.size(), 9, "neither the duplicate nor the conflict wrote anything");
}

pub fn readable_through(e: &dyn Engine) {
    let l = e.ledger();
    let reader = l.reader();
    let (tx, rx) = std::sync::mpsc::channel::<Receipt>();
    let t = std::thread::spawn(move || {
        let mut n = 0;
        for r in rx {
            let started = std::time::Instant::now();
            assert_eq!(reader.leaf_hash(r.seq).expect("readable at once"), r.leaf_hash);
            assert_eq!(reader.get(r.seq).unwrap().leaf_bytes, r.leaf);
            assert!(reader.size() > r.seq);
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the read waited");
            n += 1;
        }
        n
    });
    for b in 0..20u64 {
        for r in l.append_batch((b * 3..b * 3 + 3).map(entry).collect()) {
            tx.send(r.unwrap()).unwrap();
        }
    }
    drop(tx);
    assert_eq!(t.join().unwrap(), 60);
}

/// Pages through `q` with cursors; returns the seqs.
pub fn page_all(l: &Ledger, mut q: Query) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let page = l.query(&q).unwrap();
        assert!(page.entries.len() <= q.limit, "a page holds at most its limit");
        out.extend(page.entries.iter().map(|e| e.seq));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

pub fn scans_and_paging(e: &dyn Engine) {
    let l = e.ledger();
    fill(&l, 0..30, 4, entry);
    drop(l);
    let l = e.ledger(); // half indexed at open, half after
    fill(&l, 30..61, 5, entry);
    let all: Vec<_> = (0..l.size()).map(|s| l.get(s).unwrap()).collect();
    let queries = [
        Query { subject: Some("INC-3".into()), ..Default::default() },
        Query { category: Some("alert_ack".into()), ..Default::default() },
        Query { actor: Some("svc-1".into()), ..Default::default() },
        Query { subject: Some("INC-2".into()), actor: Some("svc-2".into()), ..Default::default() },
        Query { category: Some("stage4_incident".into()), from_seq: Some(10), to_seq: Some(50), ..Default::default() },
        Query { subject: Some("none".into()), ..Default::default() },
    ];
    for q in queries {
        for desc in [false, true] {
            let q = Query { desc, limit: 4, ..q.clone() };
            let mut want: Vec<u64> = all
                .iter()
                .filter(|x| q.subject.as_ref().is_none_or(|s| &x.leaf.subject == s))
                .filter(|x| q.category.as_ref().is_none_or(|c| &x.leaf.category == c))
                .filter(|x| q.actor.as_ref().is_none_or(|a| &x.leaf.actor == a))
                .filter(|x| q.from_seq.is_none_or(|f| x.seq >= f) && q.to_seq.is_none_or(|t| x.seq < t))
                .map(|x| x.seq)
                .collect();
            if desc {
                want.reverse();
            }
            assert_eq!(page_all(&l, q.clone()), want, "{q:?}");
        }
    }
}

/// Writes the bundle parts into a `journal/` dir and runs the verifier.
pub fn export_and_verify(l: &Ledger) -> ledger::verify::Report {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let parts = l.bundle_parts().unwrap();
    assert!(!parts.is_empty());
    for p in &parts {
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 1000];
        loop {
            let n = l.read_part(p, bytes.len() as u64, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        assert_eq!(bytes.len() as u64, p.len, "{} reads to its length", p.name);
        std::fs::write(dir.path().join(&p.name), bytes).unwrap();
    }
    let (vkeys, hmac, latest) = (l.verifiers(), l.hmac_keys(), l.latest_checkpoint());
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &journal,
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: Some(&latest.note),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!(rep.finding_count, 0, "{}", rep.to_text());
    assert_eq!(rep.entries, l.size());
    assert_eq!(rep.root, ledger::hash::to_hex(&latest.checkpoint.root));
    rep
}

pub fn export_verifies(e: &dyn Engine) {
    let l = e.ledger();
    fill(&l, 0..50, 6, entry);
    let rep = export_and_verify(&l);
    assert!(rep.checkpoints > 0, "history checkpoints are in the export");
    l.close().unwrap();
    drop(l);
    let l = e.ledger();
    fill(&l, 50..53, 3, entry);
    export_and_verify(&l);
}

pub fn redaction(e: &dyn Engine) {
    let l = e.ledger();
    fill(&l, 0..12, 4, entry);
    let actor = ledger::Actor::new("ops", &Default::default()).unwrap();
    let r = l.redact(&actor, 3, "erasure request T-1").unwrap();
    let got = l.get(3).unwrap();
    assert!(got.payload.is_empty());
    assert_eq!(got.redacted_by, r.seq + 1);
    check_receipt(&l, &r);
    let rep = export_and_verify(&l);
    assert_eq!(rep.redacted.len(), 1);
    drop(l);
    let l = e.ledger();
    assert_eq!(l.get(3).unwrap().redacted_by, r.seq + 1, "the redaction is durable");
    assert!(l.get(4).unwrap().redacted_by == 0 && !l.get(4).unwrap().payload.is_empty());
    export_and_verify(&l);
}

pub fn a_failed_sync_acknowledges_nothing(e: &dyn Engine) {
    let (l, ctl) = e.faulty();
    let acked = fill(&l, 0..10, 3, entry);
    ctl.fail(FaultPoint::BeforeSync, 1);
    let failed = l.append_batch((10..15).map(entry).collect());
    assert!(failed.iter().all(|r| matches!(r, Err(AppendError::Storage { .. }))), "{failed:?}");
    assert!(matches!(l.append(entry(15)), Err(AppendError::Unavailable(_))));
    assert_eq!(l.size(), 10);
    assert!(!ctl.crashed());
    drop(l);
    let l = e.ledger();
    check_present(&l, &acked);
    assert_eq!(l.size(), 10, "the store dropped the unsynced batch");
    assert_eq!(l.append(entry(16)).unwrap().seq, 10);
    export_and_verify(&l);
}

/// A failed sync fails every batch written since the last good one (two
/// pending batches: none is acknowledged or visible), stops the log (no
/// later append, no final checkpoint), and the store drops them: the next
/// open has the log as it was before them, and a retry writes them once.
pub fn a_failed_sync_fails_every_batch_it_would_have_covered(e: &dyn Engine) {
    let (l, ctl) = e.faulty();
    let acked = fill(&l, 0..4, 4, request);
    let (a, b) = (l.begin_batch((4..7).map(request).collect()), l.begin_batch((7..10).map(request).collect()));
    ctl.fail(FaultPoint::BeforeSync, 1);
    for r in b.wait().into_iter().chain(a.wait()) {
        assert!(matches!(r, Err(AppendError::Storage { .. })), "{r:?}");
    }
    assert_eq!(l.size(), 4, "nothing of the failed batches is acknowledged");
    assert!(matches!(l.append(request(10)), Err(AppendError::Unavailable(_))));
    assert!(l.close().is_err(), "a stopped log writes no final checkpoint");
    drop(l);
    let l = e.ledger();
    assert_eq!(l.size(), 4, "the store dropped both unsynced batches");
    check_present(&l, &acked);
    let retried: Vec<_> = l.append_batch((4..10).map(request).collect()).into_iter().map(Result::unwrap).collect();
    assert!(retried.iter().all(|r| !r.duplicate) && retried[0].seq == 4);
    export_and_verify(&l);
}

/// After a crash: reopen without faults, everything acknowledged is there,
/// the export verifies, and retrying every request (ids `0..requests`)
/// leaves each one present exactly once. Returns the reopened ledger.
pub fn recover(e: &dyn Engine, acked: &[Receipt], requests: u64) -> Ledger {
    let l = e.ledger();
    check_present(&l, acked);
    export_and_verify(&l);
    for i in 0..requests {
        let r = l.append(request(i)).expect("a retry succeeds");
        if let Some(a) = acked.iter().find(|a| a.leaf == r.leaf || a.seq == r.seq) {
            assert_eq!((r.seq, r.duplicate), (a.seq, true), "req-{i}");
        }
    }
    let mut count = std::collections::HashMap::<String, u64>::new();
    for s in 0..l.size() {
        *count.entry(l.get(s).unwrap().leaf.request_id).or_default() += 1;
    }
    for i in 0..requests {
        assert_eq!(count.get(&format!("req-{i}")), Some(&1), "req-{i} is present exactly once");
    }
    export_and_verify(&l);
    l
}

pub fn crash_during_append(e: &dyn Engine, point: FaultPoint) {
    let (l, ctl) = e.faulty();
    let acked = fill(&l, 0..20, 4, request);
    ctl.crash(point, 1);
    let lost = l.append_batch((20..25).map(request).collect());
    assert!(lost.iter().all(|r| r.is_err()), "nothing of the crashed batch is acknowledged: {lost:?}");
    assert!(l.append(request(25)).is_err());
    assert!(ctl.crashed());
    drop(l);
    let l = recover(e, &acked, 26);
    let size = l.size();
    match point {
        FaultPoint::Write => assert_eq!(size, 20 + 6, "nothing was written: the retries came after 20"),
        FaultPoint::AfterSync => {
            assert_eq!(l.leaf_hash(24).map(|_| ()).ok(), Some(()), "the durable batch survived");
            assert_eq!(size, 25 + 1, "durable but unacknowledged entries are kept; only req-25 was new")
        }
        _ => assert!(size >= 26),
    }
}

pub fn crash_at_write(e: &dyn Engine) {
    crash_during_append(e, FaultPoint::Write)
}

pub fn crash_before_sync(e: &dyn Engine) {
    crash_during_append(e, FaultPoint::BeforeSync)
}

pub fn crash_after_sync(e: &dyn Engine) {
    crash_during_append(e, FaultPoint::AfterSync)
}

pub fn crash_at_durable_point(e: &dyn Engine) {
    let (l, ctl) = e.faulty();
    ctl.crash(FaultPoint::DurablePoint, 1);
    let mut acked = Vec::new();
    let mut i = 0;
    while i < 300 && !ctl.crashed() {
        acked.extend(l.append_batch((i..i + 5).map(request).collect()).into_iter().map(|r| r.expect("append")));
        i += 5;
    }
    assert_eq!(ctl.crashed(), e.asks_durable_points(), "a durable point is called exactly when the engine asks");
    if ctl.crashed() {
        assert!(matches!(l.append(request(i)), Err(AppendError::Unavailable(_))), "writes stop after it");
    }
    drop(l);
    recover(e, &acked, i + 1);
}

pub fn crash_at_replace_record(e: &dyn Engine) {
    let (l, ctl) = e.faulty();
    let acked = fill(&l, 0..12, 4, request);
    ctl.crash(FaultPoint::ReplaceRecord, 1);
    let actor = ledger::Actor::new("ops", &Default::default()).unwrap();
    assert!(l.redact(&actor, 2, "erasure request T-2").is_err());
    assert!(ctl.crashed());
    assert!(!l.get(2).unwrap().payload.is_empty(), "the payload removal did not happen");
    drop(l);
    let (l, report) = e.ledger_with_report();
    assert_eq!(report.redactions_finished, 1, "the open finished the redaction");
    let got = l.get(2).unwrap();
    assert!(got.payload.is_empty() && got.redacted_by == 12 + 1, "redacted by entry 12");
    drop(l);
    recover(e, &acked, 12);
}

pub fn crash_at_close(e: &dyn Engine) {
    let (l, ctl) = e.faulty();
    let acked = fill(&l, 0..15, 4, request);
    ctl.crash(FaultPoint::Close, 1);
    assert!(l.close().is_err());
    assert!(ctl.crashed());
    drop(l);
    let l = recover(e, &acked, 15);
    assert_eq!(l.size(), 15, "every retry was a duplicate");
}

pub fn blobs_round_trip(e: &dyn Engine) {
    let l = e.ledger();
    let stored = l.blobs().put(&b"artifact content"[..], 1000).unwrap();
    assert_eq!(l.blobs().get(&stored.blake3).unwrap(), b"artifact content");
    let err = l.blobs().put(&[1u8; 2000][..], 1000).unwrap_err();
    assert_eq!(err.kind, ledger::store::StoreErrorKind::TooLarge { limit: 1000 });
    assert_eq!(l.blobs().verify(&[5; 32]).unwrap_err().kind, ledger::store::StoreErrorKind::NotFound);
    drop(l);
    let l = e.ledger();
    assert_eq!(l.blobs().verify(&stored.blake3).unwrap(), stored, "blobs survive a reopen");
}

/// One writer per store: a second open while a ledger holds the writer is
/// refused as `Locked` (and changes nothing); once that ledger is dropped,
/// the store opens again with everything in it.
pub fn a_second_writer_is_locked_out(e: &dyn Engine) {
    let l = e.ledger();
    let acked = fill(&l, 0..5, 5, request);
    let err = e.try_open_store().err().expect("a second writer must be refused");
    assert_eq!(err.kind, ledger::store::StoreErrorKind::Locked, "{err}");
    assert_eq!(l.append(request(5)).unwrap().seq, 5, "the first writer goes on");
    drop(l);
    let l = e.ledger();
    check_present(&l, &acked);
    assert_eq!(l.size(), 6);
}

/// `conformance!(module, engine, [checks])`: one test per check, each on
/// a fresh engine.
macro_rules! conformance {
    ($module:ident, $engine:expr, [$($check:ident),* $(,)?]) => {
        mod $module {
            $(#[test] fn $check() { $crate::suite::$check(&$engine) })*
        }
    };
}

/// `conformance_all!(module, engine)`: every check of the suite.
#[allow(unused_macros)]
macro_rules! conformance_all {
    ($module:ident, $engine:expr) => {
        conformance!(
            $module,
            $engine,
            [
                appends_and_reads,
                idempotency_across_reopen,
                readable_through,
                scans_and_paging,
                export_verifies,
                redaction,
                a_failed_sync_acknowledges_nothing,
                a_failed_sync_fails_every_batch_it_would_have_covered,
                crash_at_write,
                crash_before_sync,
                crash_after_sync,
                crash_at_durable_point,
                crash_at_replace_record,
                crash_at_close,
                blobs_round_trip,
                a_second_writer_is_locked_out,
            ]
        );
    };
}
