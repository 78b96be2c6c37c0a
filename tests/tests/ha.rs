//! Replicated ledgerd for real (issue 17, docs/HA.md "What is tested"):
//! a PostgreSQL 15 primary with a synchronous standby, three ledgerd nodes
//! on it, 16 writers retrying by request id across the nodes. Faults, in
//! turn: SIGKILL of the leading ledgerd (twice, each restarted as a
//! follower), SIGSTOP of the leader past its lease then SIGCONT (a zombie),
//! SIGKILL of the PostgreSQL primary and promotion of the standby. After
//! them: every acknowledged request is present once at its acknowledged seq
//! with its leaf hash on every node, the tree size equals the number of
//! requests (no duplicate, no hole), every checkpoint handed out is
//! consistent with the final tree on every node (no fork), and every
//! node's replica passes `ledger verify`. The time until writes resumed
//! after each fault is printed (the figures in docs/HA.md come from here).

#[path = "../../store-pg/tests/common/cluster.rs"]
mod cluster;
mod ha_common;

use std::time::{Duration, Instant};

use ha_common::{LEASE, Load, WRITERS, check_every_replica, leader, resumed, start_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_ledgerd_loses_nothing_and_never_forks_across_kills_a_zombie_and_a_promotion() {
    let mut pg = tokio::task::block_in_place(|| cluster::Cluster::start(true));
    let standby = pg.standby.as_ref().unwrap().port;
    let url = format!("host=127.0.0.1,127.0.0.1 port={},{standby} user=ledger dbname=postgres", pg.primary.port);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, ring) = tokio::task::block_in_place(|| start_nodes(dir.path(), &url));
    let load = Load::start(&nodes);
    let book = load.book.clone();
    let mut figures = Vec::new();
    tokio::time::sleep(Duration::from_secs(1)).await;

    for round in 0..2 {
        let i = tokio::task::block_in_place(|| leader(&nodes));
        let at = Instant::now();
        tokio::task::block_in_place(|| nodes[i].d.kill());
        let took = tokio::task::block_in_place(|| resumed(&book, at));
        figures.push(format!("SIGKILL of leader {} (round {round}): writes resumed after {took:?}", nodes[i].name));
        tokio::task::block_in_place(|| nodes[i].restart());
        load.set_nodes(&nodes);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let i = tokio::task::block_in_place(|| leader(&nodes));
    let at = Instant::now();
    nodes[i].signal("-STOP");
    let took = tokio::task::block_in_place(|| resumed(&book, at));
    figures.push(format!("SIGSTOP of leader {}: writes resumed after {took:?}", nodes[i].name));
    // stopped past its lease: another node took over; now it wakes up
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[i].signal("-CONT");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let zombie_led = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while nodes[i].leads() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        nodes[i].leads()
    });
    let tail: Vec<String> = nodes[i].d.logs().into_iter().rev().take(40).collect();
    assert!(!zombie_led, "the zombie {} went back to following: {tail:#?}", nodes[i].name);
    let fenced = tail.iter().any(|l| l.contains("fenced: following") || l.contains("lease lost: following"));
    assert!(fenced, "the zombie {} was fenced (its batch or its renewal): {tail:#?}", nodes[i].name);

    let at = Instant::now();
    pg.primary.signal(libc::SIGKILL);
    tokio::task::block_in_place(|| pg.promote());
    let took = tokio::task::block_in_place(|| resumed(&book, at));
    figures.push(format!("SIGKILL of the PostgreSQL primary, standby promoted: writes resumed after {took:?}"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    drop(book);
    let (requests, book) = load.finish().await;
    // every node catches up to the same tree, which holds each request once;
    // every replica verifies
    check_every_replica(dir.path(), &mut nodes, &book, requests, &ring).await;
    println!("replicated ledgerd: {requests} requests by {WRITERS} writers, lease {LEASE}");
    for f in figures {
        println!("  {f}");
    }
}
