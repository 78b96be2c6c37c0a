//! The fence against a real PostgreSQL 15 with a synchronous standby
//! (docs/HA.md "The fence"): one writer per epoch, a zombie's batch commits
//! nothing, a batch not at the head commits nothing, the ack point waits
//! for the standby, and acknowledged batches survive the primary's loss.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, connect};
use ledger_store_pg::fence::{self, Batch, FenceError};
use ledger_store_pg::schema;

const LOG: &str = "default";

/// (first seq, frames) of stored batches; each names the checkpoint "cp" of its first part.
fn frames(stored: Vec<fence::Stored>) -> Vec<(u64, Vec<u8>)> {
    assert!(stored.iter().all(|s| s.checkpoint == "cp"), "{stored:?}");
    stored.into_iter().map(|s| (s.first_seq, s.frames)).collect()
}

fn batch<'a>(first_seq: u64, entries: u32, parts: &'a [&'a [u8]]) -> Batch<'a> {
    Batch {
        first_seq,
        entries,
        parts,
        root: &[7; 32],
        checkpoint: "cp",
        last_recorded_at: first_seq as i64,
        rewrites: &[],
    }
}

async fn writer(node: &common::cluster::Node) -> tokio_postgres::Client {
    let c = connect(node).await;
    schema::install(&c).await.unwrap();
    schema::writer_session(&c).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_waits_for_the_lease_and_then_fences_the_first() {
    let cluster = Cluster::start(true);
    let (mut a, mut b) = (writer(&cluster.primary).await, writer(&cluster.primary).await);
    let lease = Duration::from_millis(600);
    let la = fence::acquire(&mut a, LOG, "node-a", "http://node-a", lease).await.unwrap();
    assert_eq!(la.epoch, 1);
    match fence::acquire(&mut b, LOG, "node-b", "http://node-b", lease).await {
        Err(FenceError::Held { holder, epoch: 1, remaining_ms, .. }) => {
            assert_eq!(holder, "node-a");
            assert!(remaining_ms > 0 && remaining_ms <= 600, "{remaining_ms}");
        }
        other => panic!("the lease is held: {other:?}"),
    }
    fence::commit(&mut a, &la, &batch(0, 10, &[b"frames 0..10"])).await.unwrap();

    // node-a stalls past its lease (a zombie); node-b takes over.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let lb = fence::acquire(&mut b, LOG, "node-b", "http://node-b", lease).await.unwrap();
    assert_eq!(lb.epoch, 2);
    match fence::commit(&mut a, &la, &batch(10, 5, &[b"zombie"])).await {
        Err(FenceError::Fenced { epoch: 1, head_epoch: 2, head_size: 10, first_seq: 10, .. }) => {}
        other => panic!("the zombie's batch is fenced: {other:?}"),
    }
    assert!(matches!(fence::renew(&a, &la).await, Err(FenceError::Fenced { head_epoch: 2, .. })));
    fence::commit(&mut b, &lb, &batch(10, 5, &[b"frames ", b"10..15"])).await.unwrap();

    let got = frames(fence::batches(&a, LOG, 0, 100).await.unwrap());
    assert_eq!(got, vec![(0, b"frames 0..10".to_vec()), (10, b"frames 10..15".to_vec())], "nothing of the zombie");
    let head = fence::head(&a, LOG).await.unwrap().unwrap();
    assert_eq!((head.epoch, head.tree_size, head.holder.as_str()), (2, 15, "node-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_at_the_head_commits_nothing() {
    let cluster = Cluster::start(false);
    let mut a = writer(&cluster.primary).await;
    let l = fence::acquire(&mut a, LOG, "node-a", "http://node-a", Duration::from_secs(10)).await.unwrap();
    for first in [5, 1] {
        match fence::commit(&mut a, &l, &batch(first, 1, &[b"x"])).await {
            Err(FenceError::Fenced { head_size: 0, .. }) => {}
            other => panic!("a batch from seq {first} on an empty log is fenced: {other:?}"),
        }
    }
    assert!(frames(fence::batches(&a, LOG, 0, 100).await.unwrap()).is_empty());
    let big = vec![0u8; schema::MAX_PART_BYTES + 1];
    let parts: [&[u8]; 1] = [&big];
    assert!(matches!(fence::commit(&mut a, &l, &batch(0, 1, &parts)).await, Err(FenceError::PartTooLarge { .. })));
    // A node that takes the lease again gets a new epoch: its former self is fenced.
    let again = fence::acquire(&mut a, LOG, "node-a", "http://node-a", Duration::from_secs(10)).await.unwrap();
    assert_eq!(again.epoch, l.epoch + 1);
    assert!(matches!(fence::commit(&mut a, &l, &batch(0, 1, &[b"x"])).await, Err(FenceError::Fenced { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_waits_for_the_standby_and_acknowledged_batches_survive_the_primarys_loss() {
    let mut cluster = Cluster::start(true);
    let mut a = writer(&cluster.primary).await;
    let l = fence::acquire(&mut a, LOG, "node-a", "http://node-a", Duration::from_secs(30)).await.unwrap();
    for i in 0..3u64 {
        fence::commit(&mut a, &l, &batch(i * 2, 2, &[format!("batch {i}").as_bytes()])).await.unwrap();
    }
    // With the standby stopped, COMMIT does not return: nothing is acknowledged.
    cluster.standby.as_ref().unwrap().freeze(true);
    let pending = tokio::spawn(async move {
        let r = fence::commit(&mut a, &l, &batch(6, 2, &[b"batch 3"])).await;
        (a, l, r)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!pending.is_finished(), "COMMIT returned while the synchronous standby was stopped");
    cluster.standby.as_ref().unwrap().freeze(false);
    let (_a, _l, r) =
        tokio::time::timeout(Duration::from_secs(20), pending).await.expect("acked once resumed").unwrap();
    r.unwrap();

    // The primary is lost; the standby is promoted and holds every acknowledged batch.
    cluster.primary.signal(libc::SIGKILL);
    cluster.promote();
    let c = connect(&cluster.primary).await;
    let got = frames(fence::batches(&c, LOG, 0, 100).await.unwrap());
    let firsts: Vec<u64> = got.iter().map(|(f, _)| *f).collect();
    assert_eq!(firsts, vec![0, 2, 4, 6]);
    assert_eq!(got[3].1, b"batch 3");
    let head = fence::head(&c, LOG).await.unwrap().unwrap();
    assert_eq!(head.tree_size, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_finds_the_promoted_standby_through_the_host_list() {
    let mut cluster = Cluster::start(true);
    let (p, s) = (cluster.primary.port, cluster.standby.as_ref().unwrap().port);
    let url = format!("host=127.0.0.1,127.0.0.1 port={p},{s} user=ledger dbname=postgres connect_timeout=2");
    let mut a = schema::connect_writer(&url).await.unwrap();
    schema::install(&a).await.unwrap();
    let l = fence::acquire(&mut a, LOG, "node-a", "http://node-a", Duration::from_secs(30)).await.unwrap();
    fence::commit(&mut a, &l, &batch(0, 4, &[b"before"])).await.unwrap();

    cluster.primary.signal(libc::SIGKILL);
    // Only the standby is up, and it is read-only: no writer.
    let err = schema::connect_writer(&url).await.unwrap_err();
    assert!(matches!(err, schema::ConnectError::NoWriter { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{s}")), "{err}");
    cluster.promote();
    let mut b = schema::connect_writer(&url).await.expect("the promoted standby is found");
    let l2 = fence::acquire(&mut b, LOG, "node-a", "http://node-a", Duration::from_secs(30)).await.unwrap();
    assert_eq!(l2.epoch, l.epoch + 1);
    fence::commit(&mut b, &l2, &batch(4, 2, &[b"after"])).await.unwrap();
    let firsts: Vec<u64> = frames(fence::batches(&b, LOG, 0, 100).await.unwrap()).iter().map(|(f, _)| *f).collect();
    assert_eq!(firsts, vec![0, 4]);
}

/// A clean shutdown gives the lease up (`fence::release`): another node
/// takes it at once instead of after the lease; a release by a fenced
/// epoch changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_taken_at_once_and_a_stale_release_changes_nothing() {
    let cluster = Cluster::start(false);
    let (mut a, mut b) = (writer(&cluster.primary).await, writer(&cluster.primary).await);
    let lease = Duration::from_secs(60);
    let la = fence::acquire(&mut a, LOG, "node-a", "http://node-a", lease).await.unwrap();
    assert!(matches!(
        fence::acquire(&mut b, LOG, "node-b", "http://node-b", lease).await,
        Err(FenceError::Held { .. })
    ));
    fence::release(&a, &la).await.unwrap();
    let lb = fence::acquire(&mut b, LOG, "node-b", "http://node-b", lease).await.expect("taken at once");
    assert_eq!(lb.epoch, la.epoch + 1);
    fence::release(&a, &la).await.unwrap();
    let head = fence::head(&b, LOG).await.unwrap().unwrap();
    assert!(head.remaining_ms > 50_000, "node-a's stale release left node-b's lease alone: {head:?}");
    assert_eq!((head.holder.as_str(), head.holder_addr.as_str()), ("node-b", "http://node-b"));
}
