//! `ledger-bench load LEDGERD SCENARIO [ARG] [SECONDS] [JSON]`: the gRPC
//! load generator. Starts the given ledgerd on a fresh data directory (on
//! this machine's disk, every ack durable), drives one scenario, and prints
//! a table row plus a JSON object (also written to JSON when given):
//! throughput, p50/p90/p99/p999/max latency in µs (HDR histogram), errors,
//! and the server's RSS.
//!
//! Scenarios: `unary N` (N clients in a closed loop, each waiting for its
//! receipt), `rate R` (R appends/s offered in an open loop; latency counts
//! from the scheduled send time, so a stall is not hidden), `stream` (one
//! AppendStream, up to 4,096 entries in flight), `reads R` (subject
//! history of 100 entries and inclusion proofs, latency measured while
//! appends run at R/s on a log preloaded with ARG2 entries; four readers in
//! a closed loop), `proofs R` (inclusion proofs alone, offered at 1,000/s in
//! an open loop, while appends run at R/s on a log of ARG2 entries),
//! `noisy N` (N clients of one identity flooding appends while another
//! offers 100/s: the second's latency and errors, with the queue share
//! `BENCH_QUEUE_SHARE`, default 0.5, 1.0 = no per-identity limit).
//! `lag R` (replicated ledgerd, docs/HA.md): appends offered at R/s to the
//! leader while one Tail on a follower (`BENCH_FOLLOWER=<url>`) receives
//! them; the latency is each entry's arrival at the follower after its
//! acknowledgement by the leader (0 when it arrived first).
//! Two scenarios measure the transport's floor, with no disk and no writer
//! behind it: `floor N` and `floor-rate R` are `unary N` and `rate R` with
//! GetCheckpoint (answered from memory) in place of Append. Every report
//! also gives the CPU time the client and the server used while the
//! scenario ran, and their sum per request: on two shared cores, a rate
//! times that sum above two cores cannot be reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tokio::sync::Mutex;
use tonic::transport::Channel;

type Hist = Arc<Mutex<Histogram<u64>>>;

fn hist() -> Hist {
    Arc::new(Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds")))
}

/// A 512-byte JSON payload append with a request id, as `load-<worker>`.
pub fn append_req(worker: u64, n: u64) -> pb::AppendRequest {
    append_as(&format!("load-{worker}"), worker, n)
}

/// [`append_req`] as the identity `actor`.
fn append_as(actor: &str, worker: u64, n: u64) -> pb::AppendRequest {
    let head = format!(r#"{{"worker":{worker},"n":{n},"note":""#);
    let pad = 512 - head.len() - 2;
    let e = pb::EntryInput {
        category: "alert_ack".into(),
        subject: format!("INC-{}", n % 1000),
        payload: format!("{head}{}\"}}", "p".repeat(pad)).into_bytes(),
        request_id: format!("w{worker}-{n}"),
        ..Default::default()
    };
    pb::AppendRequest { log: log_name(), entry: Some(e), actor: actor.to_owned() }
}

pub(crate) struct Run {
    ok: AtomicU64,
    errors: AtomicU64,
    latency: Hist,
}

impl Run {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { ok: AtomicU64::new(0), errors: AtomicU64::new(0), latency: hist() })
    }

    async fn record(&self, started: Instant, ok: bool) {
        if ok {
            self.ok.fetch_add(1, Relaxed);
            let us = started.elapsed().as_micros().max(1) as u64;
            let _ = self.latency.lock().await.record(us);
        } else {
            self.errors.fetch_add(1, Relaxed);
        }
    }
}

pub(crate) async fn channels(url: &str, n: usize) -> Vec<Channel> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Channel::from_shared(url.to_owned()).unwrap().tcp_nodelay(true).connect().await.expect("connect"));
    }
    out
}

/// `clients` clients in a closed loop, each waiting for its answer: appends,
/// or with `checkpoint` GetCheckpoint calls (the transport's floor).
async fn unary(url: &str, clients: u64, until: Instant, run: Arc<Run>, checkpoint: bool) {
    let chans = channels(url, (clients as usize).div_ceil(8)).await;
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (ch, run) = (chans[w as usize % chans.len()].clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = LedgerServiceClient::new(ch);
            let mut n = 0;
            while Instant::now() < until {
                let t = Instant::now();
                let ok = if checkpoint {
                    c.get_checkpoint(checkpoint_req()).await.is_ok()
                } else {
                    c.append(append_req(w, n)).await.is_ok()
                };
                run.record(t, ok).await;
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// `per_sec` calls offered in an open loop: appends as `worker`, or with
/// `checkpoint` GetCheckpoint calls (the transport's floor).
pub(crate) async fn rate(url: &str, per_sec: u64, until: Instant, run: Arc<Run>, worker: u64, checkpoint: bool) {
    let chans = channels(url, 4).await;
    open_loop(per_sec, until, run, move |n| {
        let mut c = LedgerServiceClient::new(chans[n as usize % chans.len()].clone());
        async move {
            if checkpoint {
                c.get_checkpoint(checkpoint_req()).await.is_ok()
            } else {
                c.append(append_req(worker, n)).await.is_ok()
            }
        }
    })
    .await
}

/// `noisy N`: N clients of one identity (`noisy`) appending in a closed
/// loop, retrying at once when refused, while another identity (`calm`)
/// offers `CALM_PER_SEC` appends in an open loop: the calm identity's
/// latency and errors show whether the noisy one starves it.
async fn noisy(url: &str, clients: u64, until: Instant, noisy: Arc<Run>, calm: Arc<Run>) {
    let chans = channels(url, (clients as usize).div_ceil(8)).await;
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (ch, run) = (chans[w as usize % chans.len()].clone(), noisy.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = LedgerServiceClient::new(ch);
            let mut n = 0;
            while Instant::now() < until {
                let t = Instant::now();
                let ok = c.append(append_as("noisy", w, n)).await.is_ok();
                run.record(t, ok).await;
                n += 1;
            }
        }));
    }
    let calm_chans = channels(url, 1).await;
    open_loop(CALM_PER_SEC, until, calm, move |n| {
        let mut c = LedgerServiceClient::new(calm_chans[0].clone());
        async move { c.append(append_as("calm", 1_000_000, n)).await.is_ok() }
    })
    .await;
    for t in tasks {
        let _ = t.await;
    }
}

/// `lag R`: the follower's replication lag under R appends/s; `lag` gets
/// one sample per entry the follower's Tail delivered, `acks` the appends.
async fn lag(url: &str, per_sec: u64, until: Instant, acks: Arc<Run>, lag: Arc<Run>) {
    use std::collections::HashMap;
    let follower = std::env::var("BENCH_FOLLOWER").expect("lag needs BENCH_FOLLOWER=<a follower's URL>");
    let acked: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
    let arrived: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut f = LedgerServiceClient::new(channels(&follower, 1).await.remove(0));
    let from = f.get_checkpoint(checkpoint_req()).await.expect("the follower answers").into_inner().size;
    let mut tail = f
        .tail(pb::TailRequest { log: log_name(), from_seq: from, filter: None })
        .await
        .expect("tail the follower")
        .into_inner();
    let got = arrived.clone();
    let tailer = tokio::spawn(async move {
        while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_secs(5), tail.message()).await {
            got.lock().unwrap().insert(e.seq, Instant::now());
        }
    });
    let chans = channels(url, 4).await;
    let book = acked.clone();
    let worker = 20_000_000 + u64::from(std::process::id());
    open_loop(per_sec, until, acks, move |n| {
        let (mut c, book) = (LedgerServiceClient::new(chans[n as usize % chans.len()].clone()), book.clone());
        async move {
            match c.append(append_req(worker, n)).await {
                Ok(r) => {
                    let seq = r.into_inner().receipt.map_or(u64::MAX, |r| r.seq);
                    book.lock().unwrap().insert(seq, Instant::now());
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let _ = tailer.await;
    let (acked, arrived) = (acked.lock().unwrap().clone(), arrived.lock().unwrap().clone());
    let mut h = lag.latency.lock().await;
    for (seq, at) in &acked {
        match arrived.get(seq) {
            Some(t) => {
                lag.ok.fetch_add(1, Relaxed);
                let _ = h.record(t.saturating_duration_since(*at).as_micros().max(1) as u64);
            }
            None => {
                lag.errors.fetch_add(1, Relaxed); // never reached the follower
            }
        }
    }
}

/// What the calm identity offers in `noisy`.
const CALM_PER_SEC: u64 = 100;

/// The config file `noisy` starts ledgerd with: a 256-append queue, and
/// each identity's share of it from `BENCH_QUEUE_SHARE` (default 0.5;
/// 1.0 = no per-identity limit).
fn noisy_config(dir: &std::path::Path) -> std::path::PathBuf {
    let share: f64 = std::env::var("BENCH_QUEUE_SHARE").ok().and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let path = dir.with_extension("toml");
    std::fs::write(&path, format!("queue_depth = 256\n[per_identity]\nqueue_share = {share:?}\n")).expect("config");
    path
}

fn checkpoint_req() -> pb::GetCheckpointRequest {
    pb::GetCheckpointRequest { log: log_name(), size: 0 }
}

/// Sends `call(n)` at `per_sec` per second until `until` and records each
/// one's latency from its *scheduled* time (an open loop: a stall shows as
/// latency instead of slowing the sender).
pub(crate) async fn open_loop<F, Fut>(per_sec: u64, until: Instant, run: Arc<Run>, call: F)
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / per_sec.max(1) as f64);
    // The schedule is kept by an OS thread: tokio's timer has a 1 ms tick,
    // so `sleep_until` sent each request up to 1 ms after its scheduled time
    // and that lateness counted as latency. `thread::sleep` wakes within
    // ~0.1 ms.
    let handle = tokio::runtime::Handle::current();
    let pacer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for n in 0u64.. {
            let scheduled = start + period * n as u32;
            if scheduled >= until {
                break;
            }
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let (fut, run) = (call(n), run.clone());
            tasks.push(handle.spawn(async move {
                let ok = fut.await;
                run.record(scheduled, ok).await;
            }));
        }
        tasks
    });
    let tasks = tokio::task::spawn_blocking(move || pacer.join().expect("pacer")).await.expect("pacer task");
    for t in tasks {
        let _ = t.await;
    }
}

/// Inclusion proofs of spread-out seqs at the latest size, offered at
/// `PROOFS_PER_SEC` in an open loop, while appends run at `appends`/s.
async fn proofs_alone(url: &str, appends: u64, until: Instant, run: Arc<Run>, entries: u64) {
    let chans = channels(url, 2).await;
    let bg = tokio::spawn(rate_quiet(url.to_owned(), appends, until));
    open_loop(PROOFS_PER_SEC, until, run, move |n| {
        let ch = chans[n as usize % chans.len()].clone();
        let seq = n.wrapping_mul(2_654_435_761) % entries;
        let p = pb::ProveInclusionRequest { log: log_name(), seq, tree_size: 0 };
        async move { LedgerServiceClient::new(ch).prove_inclusion(p).await.is_ok() }
    })
    .await;
    let _ = bg.await;
}

/// The offered rate of the `proofs` scenario.
const PROOFS_PER_SEC: u64 = 1000;

async fn stream(url: &str, until: Instant, run: Arc<Run>) {
    let ch = channels(url, 1).await.remove(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendRequest>(4096);
    let sent: Arc<std::sync::Mutex<std::collections::VecDeque<Instant>>> = Arc::default();
    let sent2 = sent.clone();
    let feed = tokio::spawn(async move {
        let mut n = 0;
        while Instant::now() < until {
            sent2.lock().unwrap().push_back(Instant::now());
            if tx.send(append_req(7, n)).await.is_err() {
                return;
            }
            n += 1;
        }
    });
    let mut st = LedgerServiceClient::new(ch)
        .append_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    while let Ok(Some(m)) = st.message().await {
        let t = sent.lock().unwrap().pop_front().unwrap_or_else(Instant::now);
        run.record(t, matches!(m.result, Some(pb::append_stream_response::Result::Receipt(_)))).await;
    }
    let _ = feed.await;
}

/// The log the scenarios use: `BENCH_LOG`, default "default".
fn log_name() -> String {
    std::env::var("BENCH_LOG").unwrap_or_else(|_| "default".into())
}

async fn reads(url: &str, per_sec: u64, until: Instant, run: Arc<Run>, proofs: Arc<Run>, entries: u64) {
    let chans = channels(url, 2).await;
    let bg = tokio::spawn(rate_quiet(url.to_owned(), per_sec, until));
    let mut tasks = Vec::new();
    for r in 0..4u64 {
        let (ch, run, proofs) = (chans[r as usize % 2].clone(), run.clone(), proofs.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = LedgerServiceClient::new(ch);
            let mut i = r;
            while Instant::now() < until {
                i += 4;
                let f = pb::Filter { subject: format!("INC-{}", i * 7 % 1000), ..Default::default() };
                let q =
                    pb::QueryRequest { log: log_name(), filter: Some(f), desc: true, limit: 100, ..Default::default() };
                let t = Instant::now();
                let ok = match c.query(q).await {
                    Ok(s) => {
                        let mut s = s.into_inner();
                        let mut n = 0;
                        while let Ok(Some(_)) = s.message().await {
                            n += 1;
                        }
                        n > 0
                    }
                    Err(_) => false,
                };
                run.record(t, ok).await;
                let t = Instant::now();
                let seq = i.wrapping_mul(2_654_435_761) % entries;
                let p = pb::ProveInclusionRequest { log: log_name(), seq, tree_size: 0 };
                let ok = c.prove_inclusion(p).await.is_ok();
                proofs.record(t, ok).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = bg.await;
}

async fn rate_quiet(url: String, per_sec: u64, until: Instant) {
    if per_sec > 0 {
        // Request ids of this run only: a log kept from an earlier run
        // (`BENCH_SERVER`) would answer earlier ids as retries.
        rate(&url, per_sec, until, Run::new(), 10_000_000 + u64::from(std::process::id()), false).await;
    }
}

/// Appends `n` entries as fast as one AppendStream goes (preloading).
pub async fn preload(url: &str, n: u64) {
    fill(url, 1_000_000, n).await
}

/// Appends `n` entries of writer `worker` (its own request ids) on one
/// AppendStream.
pub(crate) async fn fill(url: &str, worker: u64, n: u64) {
    let ch = channels(url, 1).await.remove(0);
    let reqs = (0..n).map(move |i| append_req(worker, i));
    let mut st =
        LedgerServiceClient::new(ch).append_stream(tokio_stream::iter(reqs)).await.expect("stream").into_inner();
    let mut got = 0;
    while let Ok(Some(_)) = st.message().await {
        got += 1;
    }
    assert_eq!(got, n, "preload");
}

/// CPU seconds (user + system) process `pid` has used so far ("self" for
/// this one), from `/proc/<pid>/stat` (fields 14 and 15, in USER_HZ = 100
/// ticks per second).
fn cpu_secs(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = s.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<u64> = after_name.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    f.get(11).zip(f.get(12)).map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) async fn summary(name: &str, run: &Run, secs: f64) -> serde_json::Value {
    let h = run.latency.lock().await;
    let ok = run.ok.load(Relaxed);
    serde_json::json!({
        "what": name,
        "ok": ok,
        "errors": run.errors.load(Relaxed),
        "per_sec": (ok as f64 / secs).round(),
        "latency_us": {
            "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9), "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999), "max": h.max(),
        },
    })
}

/// Runs one scenario; returns its JSON report. With `BENCH_SERVER=<url>`
/// (and `BENCH_PID=<pid>` for its RSS) it drives that running ledgerd
/// instead of starting one, without preloading; PRELOAD then names the
/// entries its log holds (e.g. a log written by `lib-append` with
/// `BENCH_KEEP=1`, served under `BENCH_LOG`).
pub async fn run(ledgerd: &str, scenario: &str, arg: u64, arg2: u64, seconds: f64) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ledger-load-{}", std::process::id()));
    let external = std::env::var("BENCH_SERVER").ok();
    let mut server = None;
    let (url, pid) = match &external {
        Some(url) => (url.clone(), std::env::var("BENCH_PID").ok().and_then(|p| p.parse().ok()).unwrap_or(0)),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
            let cfg = (scenario == "noisy").then(|| noisy_config(&dir));
            let extra: Vec<&str> = cfg.iter().flat_map(|c| ["--config", c.to_str().expect("utf-8 path")]).collect();
            let s = ledger_e2e::Ledgerd::start_binary(std::path::Path::new(ledgerd), &dir, &extra);
            let (url, pid) = (s.url.clone(), s.pid().expect("running"));
            if matches!(scenario, "reads" | "proofs") && arg2 > 0 {
                preload(&url, arg2).await;
            }
            server = Some(s);
            (url, pid)
        }
    };
    let (run, proofs) = (Run::new(), Run::new());
    let cpu = |pid: u32| if pid == 0 { 0.0 } else { cpu_secs(&pid.to_string()) };
    let (client_cpu0, server_cpu0) = (cpu_secs("self"), cpu(pid));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    // The entries the log holds (reads and proofs pick seqs below it).
    let entries = if arg2 > 0 { arg2 } else { 1_000_000 };
    match scenario {
        "unary" => unary(&url, arg.max(1), until, run.clone(), false).await,
        "rate" => rate(&url, arg.max(1), until, run.clone(), 0, false).await,
        "floor" => unary(&url, arg.max(1), until, run.clone(), true).await,
        "floor-rate" => rate(&url, arg.max(1), until, run.clone(), 0, true).await,
        "stream" => stream(&url, until, run.clone()).await,
        "reads" => reads(&url, arg, until, run.clone(), proofs.clone(), entries).await,
        "proofs" => proofs_alone(&url, arg, until, run.clone(), entries).await,
        "noisy" => noisy(&url, arg.max(1), until, run.clone(), proofs.clone()).await,
        "lag" => lag(&url, arg.max(1), until, run.clone(), proofs.clone()).await,
        other => {
            panic!(
                "unknown scenario {other:?}: unary N | rate R | stream | reads R [PRELOAD] | proofs R [PRELOAD] | floor N | floor-rate R | noisy N | lag R"
            )
        }
    }
    // `lag` waits for the follower's Tail after the offered load: its rate
    // is over the offered seconds
    let secs = if scenario == "lag" { seconds } else { started.elapsed().as_secs_f64().min(seconds.max(0.001) + 60.0) };
    let (client_cpu, server_cpu) = (cpu_secs("self") - client_cpu0, cpu(pid) - server_cpu0);
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    if let Some(mut server) = server {
        let _ = tokio::task::spawn_blocking(move || server.stop()).await;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.with_extension("toml"));
    }
    let what = match scenario {
        "reads" => "subject history (100)",
        "proofs" => "inclusion proof (1,000/s offered)",
        "floor" | "floor-rate" => "GetCheckpoint",
        "noisy" => "noisy identity's append",
        "lag" => "append on the leader",
        _ => "append",
    };
    let requests = run.ok.load(Relaxed) + run.errors.load(Relaxed) + proofs.ok.load(Relaxed);
    let mut results = vec![summary(what, &run, secs).await];
    if scenario == "reads" {
        results.push(summary("inclusion proof", &proofs, secs).await);
    }
    if scenario == "noisy" {
        results.push(summary("calm identity's append (100/s)", &proofs, secs).await);
    }
    if scenario == "lag" {
        results.push(summary("follower lag after the ack", &proofs, secs).await);
    }
    serde_json::json!({
        "scenario": scenario, "arg": arg, "arg2": arg2, "seconds": secs,
        "results": results, "server_rss_kib": rss, "server_peak_rss_kib": hwm,
        "cpu_s": { "client": client_cpu, "server": server_cpu,
            "per_request_us": (client_cpu + server_cpu) * 1e6 / requests.max(1) as f64 },
    })
}

/// The report as table rows.
pub fn print(report: &serde_json::Value) {
    println!(
        "{:<24} {:>10} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "scenario", "ok", "errors", "per s", "p50 µs", "p90 µs", "p99 µs", "p999 µs", "max µs"
    );
    for r in report["results"].as_array().into_iter().flatten() {
        let l = &r["latency_us"];
        let name = format!(
            "{} {} {}",
            report["scenario"].as_str().unwrap_or(""),
            report["arg"],
            r["what"].as_str().unwrap_or("")
        );
        let v = |x: &serde_json::Value| x.to_string();
        println!(
            "{name:<24} {:>10} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}",
            v(&r["ok"]),
            v(&r["errors"]),
            v(&r["per_sec"]),
            v(&l["p50"]),
            v(&l["p90"]),
            v(&l["p99"]),
            v(&l["p999"]),
            v(&l["max"])
        );
    }
    if report["server_rss_kib"].is_u64() {
        println!("server RSS {} KiB (peak {} KiB)", report["server_rss_kib"], report["server_peak_rss_kib"]);
    }
    let cpu = &report["cpu_s"];
    if let (Some(c), Some(s), Some(per)) =
        (cpu["client"].as_f64(), cpu["server"].as_f64(), cpu["per_request_us"].as_f64())
    {
        println!("CPU: client {c:.1} s, server {s:.1} s; {per:.0} µs per measured request, both together");
    }
}
