//! `ledger-bench witness LEDGERD [RATE] [SECONDS] [JSON]`: how long after a
//! checkpoint is signed it is cosigned by two witnesses (issue target:
//! ≤ 1 s under 10,000 appends/s). Two ledgerd witnesses and a log with both
//! in `[[logs.witnesses]]`; appends at RATE per second in an open loop;
//! every 100 ms the latest checkpoint is read (`GetCheckpoint`: it was
//! signed at most one batch earlier) and its last entry sampled: the time
//! until `Get` with a proof returns a checkpoint holding that entry with
//! both cosignatures (polled every 10 ms).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger_e2e::Ledgerd;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

use crate::load::{Run, rate, summary};

const W_CONFIG: &str = "origin_prefix = \"witness.local\"\n[witness]\nname = \"NAME\"\n\n[[witness.logs]]\norigin = \"ledger.local/default\"\nvkeys = [\"VKEY\"]\n";

fn start_witness(ledgerd: &str, dir: &std::path::Path, name: &str, log_vkey: &str) -> (Ledgerd, String) {
    let cfg = dir.join(format!("{}.toml", name.replace('/', "_")));
    std::fs::write(&cfg, W_CONFIG.replace("NAME", name).replace("VKEY", log_vkey)).expect("config");
    let w = Ledgerd::start_binary(
        std::path::Path::new(ledgerd),
        &dir.join(name.replace('/', "_")),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let vkey = http_get(&w.http, "/witness/vkey");
    (w, vkey.trim().to_owned())
}

fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(base.trim_start_matches("http://")).expect("connect");
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// The log's data directory with its keys made first (so the witnesses
/// know its vkey), and that vkey.
fn log_keys(ledger: &std::path::Path, data: &std::path::Path) -> String {
    let out = std::process::Command::new(ledger)
        .args(["keys", "generate", "--data-dir", data.to_str().expect("utf-8")])
        .output()
        .expect("ledger keys generate");
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

/// Waits until entry `seq` is in a checkpoint with `want` cosignature lines.
async fn cosigned(
    c: &mut LedgerServiceClient<tonic::transport::Channel>,
    seq: u64,
    want: usize,
    limit: Duration,
) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let r = c.get(pb::GetRequest { log: "default".into(), seq, with_proof: true }).await.ok()?.into_inner();
        let note = r.receipt.map(|rc| rc.checkpoint).unwrap_or_default();
        if note.lines().filter(|l| l.starts_with("— witness.bench/")).count() >= want {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The run.
pub async fn run(ledgerd: &str, per_sec: u64, seconds: f64) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ledger-witness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ledger = std::path::Path::new(ledgerd).with_file_name("ledger");
    let data = dir.join("log");
    let log_vkey = log_keys(&ledger, &data);
    let (w1, v1) = start_witness(ledgerd, &dir, "witness.bench/w1", &log_vkey);
    let (w2, v2) = start_witness(ledgerd, &dir, "witness.bench/w2", &log_vkey);
    let mut text = "[[logs]]\nname = \"default\"\n".to_owned();
    for (name, vkey, at) in [("witness.bench/w1", &v1, &w1.http), ("witness.bench/w2", &v2, &w2.http)] {
        text += &format!("[[logs.witnesses]]\nname = \"{name}\"\nvkey = \"{vkey}\"\nurl = \"{at}/witness\"\n");
    }
    let cfg = dir.join("log.toml");
    std::fs::write(&cfg, text).expect("config");
    let log = Ledgerd::start_binary(std::path::Path::new(ledgerd), &data, &["--config", cfg.to_str().expect("utf-8")]);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let load = Run::new();
    let url = log.url.clone();
    let appends = tokio::spawn({
        let load = load.clone();
        async move { rate(&url, per_sec, until, load, 0, false).await }
    });
    let mut c = LedgerServiceClient::connect(log.url.clone()).await.expect("connect");
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000, 3).expect("bounds");
    let missed = AtomicU64::new(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    while Instant::now() < until {
        let size = c
            .get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 })
            .await
            .map(|r| r.into_inner().size);
        if let Ok(size) = size.map(|s| s.saturating_sub(1)) {
            match cosigned(&mut c, size, 2, Duration::from_secs(10)).await {
                Some(d) => h.record(d.as_millis().max(1) as u64).expect("in bounds"),
                None => {
                    missed.fetch_add(1, Relaxed);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = appends.await;
    let appended = summary("appends offered alongside", &load, seconds).await;
    drop((log, w1, w2));
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::json!({
        "offered_appends_per_s": per_sec, "seconds": seconds, "appends": appended,
        "cosigned_by_2_ms": {"samples": h.len(), "p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "max": h.max()},
        "not_cosigned_within_10s": missed.load(Relaxed),
    })
}
