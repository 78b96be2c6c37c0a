//! `ledger-bench alertmanager LEDGERD [RATE] [SECONDS] [JSON]`: Alertmanager
//! notifications (webhook payload version 4, one alert each, every one a
//! new alert) posted to a fresh ledgerd's `POST /alertmanager/v1/default`
//! at RATE per second in an open loop (keep-alive HTTP/1.1): the latency
//! from the request to its 200, which ledgerd sends after the entry's
//! durable write (issue target: p99 ≤ 50 ms).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::load::{Run, open_loop, summary};

/// Notification `n`: one firing alert of incident INC-<n % 100>.
fn notification(n: u64) -> String {
    serde_json::json!({
        "version": "4", "receiver": "ledger", "groupKey": format!("{{}}:{{incident=\"INC-{}\"}}", n % 100),
        "status": "firing", "externalURL": "http://am.bench:9093",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "stage4_pnl_drawdown", "incident": format!("INC-{}", n % 100), "severity": "page"},
                    "annotations": {"summary": "no signals for 6 min"},
                    "startsAt": "2026-12-05T21:25:15.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.bench/graph", "fingerprint": format!("{n:016x}")}]
    })
    .to_string()
}

/// The run.
pub async fn run(ledgerd: &str, per_sec: u64, seconds: f64) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ledger-am-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("ledgerd.toml");
    std::fs::write(&cfg, "[[logs]]\nname = \"default\"\n[logs.alertmanager]\n").expect("config");
    let server = ledger_e2e::Ledgerd::start_binary(
        std::path::Path::new(ledgerd),
        &dir.join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: Arc<hyper::Uri> = Arc::new(format!("{}/alertmanager/v1/default", server.http).parse().expect("uri"));
    let (run, until) = (Run::new(), Instant::now() + Duration::from_secs_f64(seconds));
    open_loop(per_sec, until, run.clone(), move |n| {
        let req = hyper::Request::post(uri.as_ref().clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(notification(n))))
            .expect("request");
        let client = client.clone();
        async move {
            let Ok(resp) = client.request(req).await else { return false };
            let ok = resp.status() == 200;
            ok && resp.into_body().collect().await.is_ok()
        }
    })
    .await;
    let report = summary("an Alertmanager notification to its durable entry (200)", &run, seconds).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::json!({ "offered_per_s": per_sec, "seconds": seconds, "notifications": report })
}
