//! `ledger-bench soak LEDGERD MINUTES [RATE] [PRELOAD]`: starts the given
//! ledgerd on a fresh data dir, appends PRELOAD entries first (so caches
//! are warm and the run measures the steady state), drives mixed load for MINUTES (appends at RATE per second
//! from 4 unary clients and one AppendStream, subject queries, two Tails,
//! inclusion and consistency proofs checked client-side), samples the
//! server's RSS and open file descriptors every 10 s, stops it with SIGTERM,
//! and fails on any error, a Tail that missed entries, RSS growth above 25 %
//! after the first minute, or open files beyond their bound (start + the
//! 64-file segment reader cache + the soak's connections).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::Channel;

#[derive(Default)]
struct Counts {
    appended: AtomicU64,
    queries: AtomicU64,
    proofs: AtomicU64,
    tailed: [AtomicU64; 2],
    errors: AtomicU64,
}

fn sample(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
    (rss, fds)
}

fn entry(worker: u64, n: u64) -> pb::AppendRequest {
    let e = pb::EntryInput {
        category: "alert_ack".into(),
        subject: format!("INC-{}", n % 500),
        payload: format!(r#"{{"worker":{worker},"n":{n},"note":"{}"}}"#, "s".repeat(440)).into_bytes(),
        request_id: format!("w{worker}-{n}"),
        ..Default::default()
    };
    pb::AppendRequest { log: "default".into(), entry: Some(e), actor: format!("soak-{worker}") }
}

async fn appender(ch: Channel, worker: u64, per_sec: u64, until: Instant, c: Arc<Counts>) {
    let mut cl = LedgerServiceClient::new(ch);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(1) as f64));
    let mut n = 0;
    while Instant::now() < until {
        tick.tick().await;
        match cl.append(entry(worker, n)).await {
            Ok(_) => c.appended.fetch_add(1, Relaxed),
            Err(_) => c.errors.fetch_add(1, Relaxed),
        };
        n += 1;
    }
}

async fn streamer(ch: Channel, per_sec: u64, until: Instant, c: Arc<Counts>) {
    let mut cl = LedgerServiceClient::new(ch);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let feed = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(1) as f64));
        let mut n = 0;
        while Instant::now() < until {
            tick.tick().await;
            if tx.send(entry(99, n)).await.is_err() {
                return;
            }
            n += 1;
        }
    });
    let mut st = cl.append_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("stream").into_inner();
    while let Ok(Some(m)) = st.message().await {
        match m.result {
            Some(pb::append_stream_response::Result::Receipt(_)) => c.appended.fetch_add(1, Relaxed),
            _ => c.errors.fetch_add(1, Relaxed),
        };
    }
    let _ = feed.await;
}

async fn reader(ch: Channel, until: Instant, c: Arc<Counts>) {
    let mut cl = LedgerServiceClient::new(ch);
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let f = pb::Filter { subject: format!("INC-{}", i % 500), ..Default::default() };
        let q =
            pb::QueryRequest { log: "default".into(), filter: Some(f), desc: true, limit: 100, ..Default::default() };
        let ok = match cl.query(q).await {
            Ok(r) => {
                let mut st = r.into_inner();
                let mut ok = true;
                while let Some(m) = st.message().await.transpose() {
                    ok &= m.is_ok();
                }
                ok
            }
            Err(_) => false,
        };
        if ok {
            c.queries.fetch_add(1, Relaxed)
        } else {
            c.errors.fetch_add(1, Relaxed)
        };
        if !prove(&mut cl, i).await {
            c.errors.fetch_add(1, Relaxed);
        } else {
            c.proofs.fetch_add(1, Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An inclusion and a consistency proof against the latest checkpoint, checked here.
async fn prove(cl: &mut LedgerServiceClient<Channel>, i: u64) -> bool {
    let Ok(cp) = cl.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await else {
        return false;
    };
    let cp = cp.into_inner();
    if cp.size < 2 {
        return true;
    }
    let root: [u8; 32] = cp.root.clone().try_into().unwrap();
    let seq = i * 7919 % cp.size;
    let Ok(p) = cl.prove_inclusion(pb::ProveInclusionRequest { log: "default".into(), seq, tree_size: cp.size }).await
    else {
        return false;
    };
    let p = p.into_inner();
    let proof: Vec<[u8; 32]> = p.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
    let leaf: [u8; 32] = p.leaf_hash.as_slice().try_into().unwrap();
    if ledger::merkle::verify_inclusion(seq, cp.size, &leaf, &proof, &root).is_err() {
        return false;
    }
    let old = 1 + seq % (cp.size - 1);
    let Ok(c) = cl
        .prove_consistency(pb::ProveConsistencyRequest { log: "default".into(), old_size: old, new_size: cp.size })
        .await
    else {
        return false;
    };
    let c = c.into_inner();
    let proof: Vec<[u8; 32]> = c.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
    let old_root: [u8; 32] = c.old_root.as_slice().try_into().unwrap();
    ledger::merkle::verify_consistency(old, cp.size, &old_root, &root, &proof).is_ok()
}

async fn tail(ch: Channel, which: usize, subject: &str, c: Arc<Counts>) -> Vec<u64> {
    let mut cl = LedgerServiceClient::new(ch);
    let f = pb::Filter { subject: subject.into(), ..Default::default() };
    let mut st = cl
        .tail(pb::TailRequest { log: "default".into(), from_seq: 0, filter: Some(f) })
        .await
        .expect("tail")
        .into_inner();
    let mut seqs = Vec::new();
    while let Ok(Some(e)) = st.message().await {
        seqs.push(e.seq);
        c.tailed[which].fetch_add(1, Relaxed);
    }
    seqs
}

/// Request-table level files of the default log (FORMAT.md §10.3): each
/// stays open, and their number grows with log₂ of the log.
fn request_levels(data: &std::path::Path) -> u64 {
    let index = ledger::layout::index(&ledger::layout::log_dir(data, "default"));
    let is_level = |n: &str| n.starts_with("requests-") && n.ends_with(".tbl");
    std::fs::read_dir(index)
        .map_or(0, |d| d.filter_map(|e| e.ok()).filter(|e| is_level(&e.file_name().to_string_lossy())).count() as u64)
}

/// Runs the soak; returns false on failure.
pub async fn run(ledgerd: &str, minutes: f64, rate: u64, preload: u64) -> bool {
    let dir = std::env::temp_dir().join(format!("ledger-soak-{}", std::process::id()));
    let mut server = ledger_e2e::Ledgerd::start_binary(std::path::Path::new(ledgerd), &dir, &[]);
    let pid = server.pid().expect("running");
    // Open files are bounded by construction: what ledgerd opens at start,
    // plus at most 64 segment files in the reader cache, plus the soak's
    // connections (16), plus the request-table levels added since (counted
    // at each sample).
    let fd_base = sample(pid).1 - request_levels(&dir) + 64 + 16;
    if preload > 0 {
        let t = Instant::now();
        crate::load::preload(&server.url, preload).await;
        let (rss, fds) = sample(pid);
        println!("preloaded {preload} entries in {:.0} s: RSS {rss} KiB, {fds} open fds", t.elapsed().as_secs_f64());
    }
    let ch = Channel::from_shared(server.url.clone()).unwrap().connect().await.expect("connect");
    let c = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let tails =
        [tokio::spawn(tail(ch.clone(), 0, "", c.clone())), tokio::spawn(tail(ch.clone(), 1, "INC-7", c.clone()))];
    let mut load = Vec::new();
    for w in 0..4 {
        load.push(tokio::spawn(appender(ch.clone(), w, rate * 3 / 20, until, c.clone())));
    }
    load.push(tokio::spawn(streamer(ch.clone(), rate * 2 / 5, until, c.clone())));
    for _ in 0..2 {
        load.push(tokio::spawn(reader(ch.clone(), until, c.clone())));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    println!(
        "{:>6} {:>10} {:>9} {:>8} {:>10} {:>8} {:>7}",
        "t(s)", "appended", "queries", "proofs", "rss(KiB)", "open fds", "errors"
    );
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (rss, fds) = sample(pid);
        let bound = fd_base + request_levels(&dir);
        let t = started.elapsed().as_secs();
        println!(
            "{t:>6} {:>10} {:>9} {:>8} {rss:>10} {fds:>8} {:>7}",
            c.appended.load(Relaxed),
            c.queries.load(Relaxed),
            c.proofs.load(Relaxed),
            c.errors.load(Relaxed)
        );
        samples.push((t, rss, fds, bound));
    }
    for l in load {
        let _ = l.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let code = tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    let mut seqs = Vec::new();
    for t in tails {
        seqs.push(t.await.unwrap_or_default());
    }
    let appended = c.appended.load(Relaxed);
    let tail_ok = seqs[0] == (0..appended + preload).collect::<Vec<u64>>();
    let tail_sub_ok = seqs[1].windows(2).all(|w| w[0] < w[1]);
    let warm = samples.iter().find(|s| s.0 >= 60).or(samples.first()).copied().unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    let rss_growth = last.1 as f64 / warm.1.max(1) as f64;
    let ok = c.errors.load(Relaxed) == 0
        && tail_ok
        && tail_sub_ok
        && code == Some(0)
        && rss_growth < 1.25
        && samples.iter().all(|s| s.2 <= s.3);
    println!(
        "soak {minutes} min: {appended} appended, {} queries, {} proofs checked, tails {}+{} entries (complete and in order: {tail_ok}), errors {}, RSS {} -> {} KiB (x{rss_growth:.2} after the first minute), fds {} -> {} (bound {}), ledgerd exit {code:?}: {}",
        c.queries.load(Relaxed),
        c.proofs.load(Relaxed),
        seqs[0].len(),
        seqs[1].len(),
        c.errors.load(Relaxed),
        warm.1,
        last.1,
        warm.2,
        last.2,
        last.3,
        if ok { "PASS" } else { "FAIL" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    ok
}
