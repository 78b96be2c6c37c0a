//! Replicated ledgerd on a PostgreSQL run by Patroni + etcd (issue 17,
//! docs/HA.md "What is tested"): three Patroni members with
//! `synchronous_mode_strict` (a leader, its synchronous standby, a
//! replica), three ledgerd nodes on them, 16 writers retrying by request id
//! across the nodes. Faults, in turn: SIGKILL of the leading ledgerd
//! (restarted as a follower); the loss of the PostgreSQL primary's machine
//! (its Patroni, its postmaster and every backend SIGKILLed at once), which
//! Patroni answers on its own: once the leader key expired it promotes the
//! synchronous standby, and the replica left becomes the new synchronous
//! standby (strict mode: with none, a commit would wait). Writes must
//! resume within 30 s of the loss. Then the lost member's Patroni is
//! started again on its data directory and rejoins as a replica (pg_rewind
//! when its WAL diverged), writers still running. After them the checks of
//! `ha.rs`: every acknowledged request is present once at its acknowledged
//! seq with its leaf hash on every node, the tree size equals the number of
//! requests, every checkpoint handed out is consistent with the final tree
//! on every node, every node's replica passes `ledger verify`. The figures
//! are printed (docs/HA.md takes them from here).
//!
//! Needs Debian's `patroni` and `etcd-server` (`.ci/run` installs them);
//! without them it fails saying so.

#[path = "../../store-pg/tests/common/cluster.rs"]
mod cluster;
mod ha_common;
#[path = "ha_common/patroni.rs"]
mod patroni;

use std::time::{Duration, Instant};

use ha_common::{LEASE, Load, WRITERS, check_every_replica, floor, leader, resumed, start_nodes, watch_resumed};

/// The target: writes resume within this of the primary's loss.
const RESUME_TARGET: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_ledgerd_on_patroni_resumes_writes_after_the_primary_is_lost_and_loses_nothing() {
    let began = Instant::now();
    let mut pg = tokio::task::block_in_place(|| patroni::Patroni::start(3));
    let settled = began.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, ring) = tokio::task::block_in_place(|| start_nodes(dir.path(), &pg.url()));
    let load = Load::start(&nodes);
    let book = load.book.clone();
    let mut figures = vec![format!("etcd + 3 Patroni members settled (leader, sync standby, replica) in {settled:?}")];
    tokio::time::sleep(Duration::from_secs(1)).await;

    // (a) the leading ledgerd is killed: another node takes the lease
    let i = tokio::task::block_in_place(|| leader(&nodes));
    let at = Instant::now();
    tokio::task::block_in_place(|| nodes[i].d.kill());
    let took = tokio::task::block_in_place(|| resumed(&book, at));
    figures.push(format!("SIGKILL of leader {}: writes resumed after {took:?}", nodes[i].name));
    tokio::task::block_in_place(|| nodes[i].restart());
    load.set_nodes(&nodes);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // (b) the PostgreSQL primary's machine is lost; Patroni promotes
    let old = tokio::task::block_in_place(|| pg.healthy(3, Duration::from_secs(30)));
    let lost = pg.members[old].name.clone();
    let at = Instant::now();
    tokio::task::block_in_place(|| pg.lose(old));
    // counted from before the loss; the floor once nothing commits any more
    let watch = watch_resumed(book.clone(), at, floor(&book));
    let new = tokio::task::block_in_place(|| pg.promoted(old, Duration::from_secs(60)));
    let promoted = at.elapsed();
    tokio::task::block_in_place(|| pg.healthy(2, Duration::from_secs(60)));
    let sync_again = at.elapsed();
    let took = tokio::task::block_in_place(|| watch.join()).unwrap_or_else(|e| std::panic::resume_unwind(e));
    figures.push(format!(
        "loss of the PostgreSQL primary {lost} (Patroni + postmaster + backends SIGKILLed): writes resumed after \
         {took:?}; Patroni showed {} promoted after {promoted:?}, a streaming synchronous standby again after \
         {sync_again:?}",
        pg.members[new].name
    ));
    assert!(
        took <= RESUME_TARGET,
        "writes resumed {took:?} after the primary was lost, over the target of {RESUME_TARGET:?}: {}",
        figures.last().unwrap()
    );

    // the lost machine comes back: it rejoins as a replica (rewound when
    // its WAL diverged) while the writers go on
    let before = book.lock().unwrap().acked.len();
    let at = Instant::now();
    tokio::task::block_in_place(|| pg.restart(old));
    let leads = tokio::task::block_in_place(|| pg.healthy(3, Duration::from_secs(60)));
    let rejoined = at.elapsed();
    let during = book.lock().unwrap().acked.len() - before;
    assert_eq!(leads, new, "the member that came back did not take over");
    assert!(during > 0, "no write was acknowledged while {lost} rejoined ({rejoined:?})");
    let rewound = if pg.members[old].rewound() { "after pg_rewind" } else { "without pg_rewind" };
    figures.push(format!(
        "{lost} started again: a running replica {rewound} after {rejoined:?}, {during} requests acknowledged meanwhile"
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;

    drop(book);
    let (requests, book) = load.finish().await;
    check_every_replica(dir.path(), &mut nodes, &book, requests, &ring).await;
    println!(
        "replicated ledgerd on Patroni: {requests} requests by {WRITERS} writers, lease {LEASE}, Patroni ttl {} s, \
         loop_wait 1 s, retry_timeout 4 s, synchronous_mode_strict; {:?} in all",
        patroni::TTL,
        began.elapsed()
    );
    for f in figures {
        println!("  {f}");
    }
}
