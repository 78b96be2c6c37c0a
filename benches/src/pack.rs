//! `ledger-bench pack LEDGERD [INCIDENT] [OTHER] [RUNS] [JSON]`: the evidence
//! pack of one incident of INCIDENT entries spread evenly among OTHER
//! entries of 1,000 other subjects, on a fresh ledgerd (docs/FORMAT.md §14):
//! the wall time of `ledger incident pack` (the real binary, over gRPC) and
//! of `ledger verify-pack` (offline), RUNS times each. `BENCH_KEEP=1` keeps
//! the data directory and the packs.

use std::path::Path;
use std::time::Instant;

use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

const SUBJECT: &str = "INC-BENCH";

/// The `i`-th of `total` entries, `incident` of them (evenly spread) of the
/// incident, the first of those its alert.
fn entry(i: u64, total: u64, incident: u64) -> pb::AppendRequest {
    let (a, b) = (i * incident / total, (i + 1) * incident / total);
    let filler = "x".repeat(160);
    let (category, subject, payload) = if a == b {
        ("stage4_incident", format!("BG-{}", i % 1000), format!(r#"{{"step":"L1.{i}","note":"{filler}"}}"#))
    } else if a == 0 {
        ("alert_fired", SUBJECT.to_owned(), r#"{"fingerprint":"bench","alertname":"Bench"}"#.to_owned())
    } else {
        ("stage4_incident", SUBJECT.to_owned(), format!(r#"{{"step":"L2.{a}","note":"{filler}"}}"#))
    };
    let entry =
        pb::EntryInput { category: category.into(), subject, payload: payload.into_bytes(), ..Default::default() };
    pb::AppendRequest { log: "default".into(), entry: Some(entry), actor: format!("bench-{}", i % 7) }
}

/// Appends the log on one AppendStream.
async fn fill(url: &str, total: u64, incident: u64) {
    let mut client = LedgerServiceClient::connect(url.to_owned()).await.expect("connect");
    let reqs = (0..total).map(move |i| entry(i, total, incident));
    let mut st = client.append_stream(tokio_stream::iter(reqs)).await.expect("stream").into_inner();
    let mut got = 0u64;
    while let Ok(Some(m)) = st.message().await {
        assert!(matches!(m.result, Some(pb::append_stream_response::Result::Receipt(_))), "append: {m:?}");
        got += 1;
    }
    assert_eq!(got, total, "fill");
}

/// Runs the `ledger` binary; returns its wall seconds and JSON output.
fn timed(ledger: &Path, url: &str, args: &[&str]) -> (f64, serde_json::Value) {
    let t0 = Instant::now();
    let out = std::process::Command::new(ledger).args(args).env("LEDGER_SERVER", url).output().expect("run ledger");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, serde_json::from_slice(&out.stdout).unwrap_or_default())
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .map(|e| if e.path().is_dir() { dir_bytes(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
            .sum()
    })
}

/// The run.
pub async fn run(ledgerd: &str, incident: u64, other: u64, runs: u64) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ledger-pack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let server = ledger_e2e::Ledgerd::start_binary(Path::new(ledgerd), &dir.join("data"), &[]);
    let t0 = Instant::now();
    fill(&server.url, incident + other, incident.max(1)).await;
    let fill_secs = t0.elapsed().as_secs_f64();
    let ledger = Path::new(ledgerd).with_file_name("ledger");
    let keys = std::process::Command::new(&ledger).args(["keys", "public"]).env("LEDGER_SERVER", &server.url).output();
    std::fs::write(dir.join("vkeys"), keys.expect("keys public").stdout).expect("vkeys");
    let (mut build, mut verify, mut bytes) = (Vec::new(), Vec::new(), 0);
    for r in 0..runs {
        let out = dir.join(format!("pack-{r}"));
        let o = out.to_str().expect("utf-8");
        let (s, summary) = timed(&ledger, &server.url, &["incident", "pack", SUBJECT, "--out", o, "--output", "json"]);
        assert_eq!(summary["subject_entries"].as_u64(), Some(incident.max(1)), "{summary}");
        build.push(s);
        let vk = dir.join("vkeys");
        let (s, rep) =
            timed(&ledger, &server.url, &["verify-pack", o, "--vkey", vk.to_str().expect("utf-8"), "--output", "json"]);
        assert_eq!(rep["ok"], true, "{rep}");
        verify.push(s);
        bytes = dir_bytes(&out);
    }
    drop(server);
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = serde_json::json!({
        "log_entries": incident + other, "incident_entries": incident.max(1), "fill_seconds": fill_secs,
        "pack_seconds": &build, "verify_pack_seconds": &verify, "pack_bytes": bytes,
    });
    let list = |v: &[f64]| v.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", ");
    println!(
        "pack: {} incident entries in a log of {}: build {} s, verify-pack {} s, {bytes} bytes",
        incident.max(1),
        incident + other,
        list(&build),
        list(&verify)
    );
    report
}
