//! `ledger-bench tiles LEDGERD [RATE] [SECONDS] [ENTRIES] [JSON]`: the C2SP
//! tiles of a log of ENTRIES entries (docs/FORMAT.md §12) on a fresh
//! ledgerd with `public_tiles = true`: the latency of full level-0 tiles,
//! entry bundles and level-1 tiles fetched at RATE per second in an open
//! loop (random indexes, keep-alive HTTP/1.1); then `ledger mirror` of the
//! whole log (entries per second), then 10,000 more entries and the mirror
//! again (what it fetched and how long it took: O(new)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ledger::tiles::index_path;

use crate::load::{Run, fill, open_loop, summary};

/// Runs `ledger mirror`; returns (seconds, tiles fetched).
fn mirror(ledger: &std::path::Path, prefix: &str, dir: &std::path::Path, vkey: &std::path::Path) -> (f64, u64) {
    let t0 = Instant::now();
    let out = std::process::Command::new(ledger)
        .args([
            "mirror",
            prefix,
            dir.to_str().expect("utf-8"),
            "--vkey",
            vkey.to_str().expect("utf-8"),
            "--output",
            "json",
        ])
        .output()
        .expect("run ledger mirror");
    let secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success(), "mirror: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("mirror JSON");
    (secs, v["fetched"].as_u64().unwrap_or(0))
}

/// The run.
pub async fn run(ledgerd: &str, per_sec: u64, seconds: f64, entries: u64) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ledger-tiles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("ledgerd.toml");
    std::fs::write(&cfg, "[[logs]]\nname = \"default\"\npublic_tiles = true\n").expect("config");
    let server = ledger_e2e::Ledgerd::start_binary(
        std::path::Path::new(ledgerd),
        &dir.join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let t0 = Instant::now();
    fill(&server.url, 3_000_000, entries).await;
    let fill_secs = t0.elapsed().as_secs_f64();
    let prefix = format!("{}/tlog/default", server.http);

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (run, until) = (Run::new(), Instant::now() + Duration::from_secs_f64(seconds));
    let (tiles0, tiles1) = ((entries / 256).max(1), (entries / 65_536).max(1));
    let base = Arc::new(prefix.clone());
    open_loop(per_sec, until, run.clone(), move |n| {
        let pick = n.wrapping_mul(2_654_435_761);
        let path = match n % 3 {
            0 => format!("tile/0/{}", index_path(pick % tiles0)),
            1 => format!("tile/entries/{}", index_path(pick % tiles0)),
            _ => format!("tile/1/{}", index_path(pick % tiles1)),
        };
        let (client, uri) = (client.clone(), format!("{base}/{path}"));
        async move {
            let Ok(resp) = client.get(uri.parse().expect("uri")).await else { return false };
            let ok = resp.status() == 200;
            ok && resp.into_body().collect().await.is_ok()
        }
    })
    .await;
    let tiles = summary("a full tile or bundle (level 0, entries, level 1)", &run, seconds).await;

    let ledger = std::path::Path::new(ledgerd).with_file_name("ledger");
    let keys =
        std::process::Command::new(&ledger).args(["--server", &server.url, "keys", "public"]).output().expect("keys");
    let vkey = dir.join("vkey");
    std::fs::write(&vkey, &keys.stdout).expect("vkey");
    let copy = dir.join("copy");
    let (m_secs, m_fetched) = mirror(&ledger, &prefix, &copy, &vkey);
    fill(&server.url, 4_000_000, 10_000).await;
    let (again_secs, again_fetched) = mirror(&ledger, &prefix, &copy, &vkey);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::json!({
        "entries": entries, "fill_entries_per_s": entries as f64 / fill_secs,
        "offered_per_s": per_sec, "seconds": seconds, "tiles": tiles,
        "mirror": {"seconds": m_secs, "fetched": m_fetched, "entries_per_s": entries as f64 / m_secs},
        "mirror_again": {"new_entries": 10_000, "seconds": again_secs, "fetched": again_fetched},
    })
}
