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

/// Whether any stored row of the log holds `needle`.
fn rows_contain(cluster: &Cluster, needle: &[u8]) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&cluster.primary).await;
        let rows = c.query("SELECT frames FROM ledger_batch WHERE log = $1", &[&LOG]).await.unwrap();
        rows.iter().any(|r| r.get::<_, Vec<u8>>(0).windows(needle.len()).any(|w| w == needle))
    })
}

fn catch_up(n: &Node) {
    for _ in 0..100 {
        if n.step().unwrap().applied == 0 {
            return;
        }
    }
    panic!("still applying after 100 steps");
}

#[test]
fn a_redaction_rewrites_the_stored_row_and_every_replica_replays_it_as_a_reindex() {
    let cluster = Cluster::start(false);
    let url = cluster.primary.conninfo();
    let (da, db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, na) = node(&url, da.path(), None, "node-a");
    let (b, nb) = node(&url, db.path(), Some(da.path()), "node-b");
    assert!(na.step().unwrap().role_changed && na.state().is_leader());
    for r in append(&a, 0, 30) {
        r.unwrap();
    }
    catch_up(&nb);
    let payload = br#"{"step":7}"#;
    assert_eq!(b.get(7).unwrap().payload, &payload[..]);
    assert!(rows_contain(&cluster, payload));

    let admin = ledger::Actor::new("admin-1", &Default::default()).unwrap();
    let r = a.redact(&admin, 7, "GDPR erasure, ticket PRIV-9").unwrap();
    assert_eq!(r.seq, 30);
    assert_eq!(a.get(7).unwrap().redacted_by, 31, "redacted on the leader's replica");
    assert!(!rows_contain(&cluster, payload), "no stored row holds the payload any more");

    // the follower that holds the payload removes it when it replays the entry
    catch_up(&nb);
    let got = b.get(7).unwrap();
    assert!(got.payload.is_empty() && got.redacted_by == 31, "{got:?}");
    // a node that joins later copies the rewritten row and checks it against the entry
    let (c, nc) = node(&url, dc.path(), Some(da.path()), "node-c");
    catch_up(&nc);
    assert_eq!(c.size(), 31);
    assert_eq!(c.get(7).unwrap().redacted_by, 31);
    assert!(b.redact(&admin, 8, "from a follower").is_err(), "a follower writes nothing");

    // a reindex is requested on every replica that replays its entry
    let marker = ledger::store::file::REINDEX_MARKER;
    a.request_reindex(&admin, "index check after a disk scare").unwrap();
    catch_up(&nb);
    catch_up(&nc);
    for (dir, l) in [(da.path(), &a), (db.path(), &b), (dc.path(), &c)] {
        assert!(dir.join(marker).exists(), "{} has the rebuild request", dir.display());
        let report = verify_replica(dir, l);
        assert!(report.ok, "{}", report.to_text());
        assert_eq!(report.tree_size, 32);
        assert_eq!(report.redacted.len(), 1);
        assert_eq!((report.redacted[0].seq, report.redacted[0].redaction_seq), (7, 30));
    }
}

#[test]
fn a_rotation_reaches_every_node_once_it_holds_the_staged_keys_and_a_fenced_one_keeps_its_keys() {
    use ledger::keys::Keyring;
    let cluster = Cluster::start(false);
    let url = cluster.primary.conninfo();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, na) = node(&url, da.path(), None, "node-a");
    let (b, nb) = node(&url, db.path(), Some(da.path()), "node-b");
    assert!(na.step().unwrap().role_changed && na.state().is_leader());
    for r in append(&a, 0, 10) {
        r.unwrap();
    }
    catch_up(&nb);

    // a pair staged in node-a's file only: node-a rotates to it
    let (ring_a, ring_b) = (ledger::layout::keyring(da.path()), ledger::layout::keyring(db.path()));
    let now = ledger::log::system_clock();
    let staged = Keyring::load(&ring_a).unwrap().stage(now(), &Default::default()).unwrap();
    let staged_file = std::fs::read(&ring_a).unwrap();
    let admin = ledger::Actor::new("admin-1", &Default::default()).unwrap();
    let (receipt, _) = a.rotate_to_staged_keys(&admin, "30-day rotation").unwrap();
    assert_eq!(receipt.seq, 10);
    for r in append(&a, 10, 5) {
        r.unwrap();
    }
    // node-b lacks the keys: it waits at the rotation, not halted
    catch_up(&nb);
    assert_eq!(b.size(), 10);
    assert!(nb.state().halted().is_none(), "{:?}", nb.state().halted());
    // once the staged keyring is copied there it applies the rotation and the rest
    std::fs::write(&ring_b, &staged_file).unwrap();
    catch_up(&nb);
    assert_eq!(b.size(), 16);
    assert_eq!(Keyring::load(&ring_b).unwrap().active_hmac().id(), staged.hmac_id);

    // node-b takes over; node-a, fenced mid-rotation, keeps the keys the log uses
    std::thread::sleep(Duration::from_millis(900));
    assert!(nb.step().unwrap().role_changed && nb.state().is_leader());
    Keyring::load(&ring_a).unwrap().stage(now(), &Default::default()).unwrap();
    let e = a.rotate_to_staged_keys(&admin, "a second rotation").unwrap_err().to_string();
    assert!(e.contains("fenced"), "{e}");
    let kept = Keyring::load(&ring_a).unwrap();
    assert_eq!(kept.active_hmac().id(), staged.hmac_id, "the first rotation's keys stay active on node-a");
    assert!(kept.has_staged(), "the second pair is staged again, not active");
    for r in append(&b, 100, 3) {
        r.unwrap();
    }
    na.step().unwrap();
    catch_up(&na);
    assert_eq!(a.size(), 19, "node-a follows node-b's batches under the same keys");
    for (dir, l) in [(da.path(), &a), (db.path(), &b)] {
        let report = verify_replica(dir, l);
        assert!(report.ok, "{}", report.to_text());
    }
}
