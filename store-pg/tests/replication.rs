//! Two nodes of one log on a real PostgreSQL 15 (docs/HA.md "Roles"): the
//! leader's batches reach the database before its replica, the follower
//! verifies each before it serves it, takes over when the lease lapses and
//! fences the former leader, which follows again with nothing of its
//! refused batch anywhere; a batch that does not verify, or a database that
//! lost committed batches, halts a follower naming what it found.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{Cluster, connect};
use ledger::{EntryInput, Ledger, LogOptions, NewEntry};
use ledger_store_pg::{Db, Identity, Node, engine};

const LOG: &str = "default";

fn entry(i: u64) -> NewEntry {
    EntryInput {
        category: "stage4_incident".into(),
        subject: format!("INC-{}", i % 5),
        payload: format!(r#"{{"step":{i}}}"#).into_bytes(),
        request_id: format!("req-{i}"),
        ..Default::default()
    }
    .validate("svc-test", &Default::default())
    .unwrap()
}

fn options() -> LogOptions {
    let mut o = LogOptions::new("ledger.test/default");
    o.checkpoint_interval = 16;
    o
}

/// A node of the log with its replica in `dir`; `keys_from` holds the
/// keyring every node shares (the first node creates it).
fn node(url: &str, dir: &Path, keys_from: Option<&Path>, name: &str) -> (Arc<Ledger>, Node) {
    if let Some(from) = keys_from {
        let to = ledger::layout::keyring(dir);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(ledger::layout::keyring(from), to).unwrap();
    }
    let db = Arc::new(Db::new(url, Duration::from_millis(800)).unwrap());
    db.install().unwrap();
    let (l, _, store) = engine::open(dir, LOG, db, options()).unwrap();
    let l = Arc::new(l);
    let me = Identity { node: name.into(), advertise: format!("http://{name}"), lease: Duration::from_millis(800) };
    (l.clone(), Node::new(me, l, store))
}

fn append(l: &Ledger, from: u64, n: u64) -> Vec<Result<ledger::Receipt, ledger::AppendError>> {
    l.append_batch((from..from + n).map(entry).collect())
}

fn sql(cluster: &Cluster, stmt: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&cluster.primary).await;
        c.batch_execute(stmt).await.unwrap();
    });
}

fn verify_replica(dir: &Path, l: &Ledger) -> ledger::verify::Report {
    let vkeys = l.verifiers();
    let hmac = l.hmac_keys();
    let input = ledger::verify::VerifyInput {
        journal_dir: &ledger::layout::journal(dir),
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    };
    ledger::verify::verify(&input).unwrap()
}

#[test]
fn a_follower_serves_what_was_committed_takes_over_and_fences_the_former_leader() {
    let cluster = Cluster::start(false);
    let url = cluster.primary.conninfo();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, na) = node(&url, da.path(), None, "node-a");
    let (b, nb) = node(&url, db.path(), Some(da.path()), "node-b");

    // node-a takes the lease (there is no head yet), node-b follows.
    assert!(na.step().unwrap().role_changed);
    assert!(na.state().is_leader());
    assert!(append(&b, 0, 1)[0].is_err(), "a follower refuses its own appends");
    let (mut seq, mut acked) = (0, Vec::new());
    for _ in 0..5 {
        for r in append(&a, seq, 10) {
            acked.push(r.unwrap());
        }
        seq += 10;
    }
    let stepped = nb.step().unwrap();
    assert_eq!(stepped.applied, 50);
    assert!(!nb.state().is_leader(), "node-a's lease runs");
    assert_eq!(b.latest_checkpoint().checkpoint, a.latest_checkpoint().checkpoint);
    assert_eq!(nb.state().leader().unwrap().1, "http://node-a");

    // node-a stalls past its lease: node-b takes epoch 2 and writes.
    std::thread::sleep(Duration::from_millis(900));
    assert!(nb.step().unwrap().role_changed);
    assert!(nb.state().is_leader());
    assert_eq!(nb.state().epoch(), 2);
    let dup = b.append(entry(7)).unwrap();
    assert!(dup.duplicate && dup.seq == 7, "a retry on the new leader returns the original receipt");
    for r in append(&b, 50, 10) {
        acked.push(r.unwrap());
    }

    // node-a's next batch is fenced: nothing acknowledged, nothing kept.
    for r in append(&a, 1000, 5) {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("fenced"), "{e}");
    }
    assert!(a.stopped().is_some());
    na.step().unwrap();
    assert!(!na.state().is_leader());
    assert!(a.stopped().is_none(), "it resumed as a follower");
    while na.step().unwrap().applied > 0 {}
    assert_eq!(a.size(), 60);
    assert_eq!(a.latest_checkpoint().checkpoint, b.latest_checkpoint().checkpoint);
    for r in &acked {
        assert_eq!(a.get(r.seq).unwrap().leaf_hash, r.leaf_hash, "acknowledged entry {} on node-a", r.seq);
        assert_eq!(b.get(r.seq).unwrap().leaf_hash, r.leaf_hash, "acknowledged entry {} on node-b", r.seq);
    }
    for (dir, l) in [(da.path(), &a), (db.path(), &b)] {
        let report = verify_replica(dir, l);
        assert!(report.ok, "{}", report.to_text());
        assert_eq!(report.tree_size, 60);
    }
}

#[test]
fn a_batch_that_does_not_verify_or_a_rolled_back_head_halts_a_follower() {
    let cluster = Cluster::start(false);
    let url = cluster.primary.conninfo();
    let (da, db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, na) = node(&url, da.path(), None, "node-a");
    let (b, nb) = node(&url, db.path(), Some(da.path()), "node-b");
    na.step().unwrap();
    for i in 0..3 {
        assert!(append(&a, i * 10, 10).iter().all(|r| r.is_ok()));
    }
    nb.step().unwrap();
    assert_eq!(b.size(), 30);

    // The database loses the last batch (as an asynchronous replica
    // promoted would): node-b, which verified it, refuses to go on.
    sql(&cluster, "DELETE FROM ledger_batch WHERE first_seq = 20; UPDATE ledger_head SET tree_size = 20");
    nb.step().unwrap();
    let halted = nb.state().halted().expect("halted");
    assert!(halted.contains("holds 20 entries but this replica verified 30"), "{halted}");
    assert!(!nb.state().is_leader());

    // A byte of a stored batch changes: a fresh follower applies the batches
    // before it and stops at that one, naming it.
    sql(
        &cluster,
        "UPDATE ledger_batch SET frames = set_byte(frames, 40, get_byte(frames, 40) # 1) WHERE first_seq = 10",
    );
    let (c, nc) = node(&url, dc.path(), Some(da.path()), "node-c");
    nc.step().unwrap();
    assert_eq!(c.size(), 10, "the batches before the damaged one are applied");
    let halted = nc.state().halted().expect("halted");
    assert!(halted.contains("frame_corrupt at seq 10"), "{halted}");
}

/// A sync whose frames exceed a row (`MAX_PART_BYTES`, 1 MiB) is stored in
/// several parts cut at frame boundaries; a follower joins them, verifies
/// and serves every entry.
#[test]
fn a_sync_larger_than_a_row_is_split_into_parts_and_joined_again() {
    let cluster = Cluster::start(false);
    let url = cluster.primary.conninfo();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, na) = node(&url, da.path(), None, "node-a");
    let (b, nb) = node(&url, db.path(), Some(da.path()), "node-b");
    na.step().unwrap();
    let big = |i: u64| {
        EntryInput {
            category: "stage4_incident".into(),
            subject: format!("INC-{i}"),
            payload: format!(r#"{{"step":{i},"pad":"{}"}}"#, "x".repeat(30_000)).into_bytes(),
            ..Default::default()
        }
        .validate("svc-test", &Default::default())
        .unwrap()
    };
    let receipts: Vec<_> = a.append_batch((0..80).map(big).collect()).into_iter().map(Result::unwrap).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let parts: i64 = rt.block_on(async {
        let c = connect(&cluster.primary).await;
        c.query_one("SELECT count(*) FROM ledger_batch WHERE first_seq = 0", &[]).await.unwrap().get(0)
    });
    assert!(parts >= 3, "80 entries of ~30 KB take at least 3 parts of 1 MiB, got {parts}");
    while nb.step().unwrap().applied > 0 {}
    assert_eq!(b.size(), 80);
    for r in &receipts {
        assert_eq!(b.get(r.seq).unwrap().leaf_hash, r.leaf_hash);
    }
    assert!(verify_replica(db.path(), &b).ok);
}
