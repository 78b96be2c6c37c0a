//! The HTTP listener over TLS (`http_tls`, docs/SECURITY.md), read with
//! curl: a client certificate with the reader role reads a log's tiles that
//! are not public (cached privately), none or another role is refused;
//! `/metrics` needs no certificate; Alertmanager's notifications need the
//! writer grant of their categories, and the certificate's identity is
//! their actor.

#[path = "../../server/tests/common/pki.rs"]
mod pki;

use std::path::Path;
use std::process::Command;

use ledger_e2e::Ledgerd;
use pki::{Pair, Pki};

fn config(pki: &Pki, server: &Pair) -> String {
    format!(
        r#"http_tls = true

{tls}
[[logs]]
name = "default"
[logs.alertmanager]
[[logs.access]]
identity = "spiffe://ops/alertmanager"
roles = ["writer"]
categories = ["alert_fired", "alert_resolved"]
[[logs.access]]
identity = "spiffe://ops/submitter"
roles = ["writer"]
categories = ["alert_ack"]
[[logs.access]]
identity = "auditor-1"
roles = ["reader"]
"#,
        tls = pki.tls_section(server)
    )
}

/// curl over TLS as `who` (None: no client certificate): (status, headers, body).
fn curl(ca: &Path, who: Option<&Pair>, url: &str, post: Option<&str>) -> (u16, String, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "-D", "-", "--cacert"]).arg(ca);
    if let Some(p) = who {
        c.arg("--cert").arg(&p.cert).arg("--key").arg(&p.key);
    }
    if let Some(body) = post {
        c.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = c.arg(url).output().expect("run curl (.ci/run installs it)");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, head.to_lowercase(), body.to_owned())
}

fn notification(fingerprint: &str) -> String {
    serde_json::json!({
        "version": "4", "receiver": "ledger", "groupKey": "{}:{}", "status": "firing", "externalURL": "",
        "alerts": [{"status": "firing", "labels": {"alertname": "stage5_tco_cost_spike", "incident": "INC-3107"},
                    "annotations": {}, "startsAt": "2026-12-05T21:25:15Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": fingerprint}]
    })
    .to_string()
}

#[test]
fn the_http_listener_over_tls_lets_each_certificate_do_what_its_grants_say() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "ops");
    let cfg = dir.path().join("ledgerd.toml");
    std::fs::write(&cfg, config(&pki, &pki.server())).unwrap();
    let server = Ledgerd::start(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()]);
    let base = server.http.replace("http://", "https://");
    let (ca, am, submitter, auditor) = (
        &pki.ca_pem,
        pki.client_uri("am", "spiffe://ops/alertmanager"),
        pki.client_uri("submitter", "spiffe://ops/submitter"),
        pki.client_cn("auditor", "auditor-1"),
    );
    let hook = format!("{base}/alertmanager/v1/default");

    // Alertmanager's certificate writes alerts, as itself; others are refused by role, or for having none
    let (code, _, body) = curl(ca, Some(&am), &hook, Some(&notification("00000000000000a1")));
    assert_eq!(code, 200, "{body}");
    let (code, _, why) = curl(ca, Some(&submitter), &hook, Some(&notification("00000000000000a2")));
    assert!(code == 403 && why.contains("alert_fired"), "{code} {why}");
    let (code, _, why) = curl(ca, None, &hook, Some(&notification("00000000000000a3")));
    assert!(code == 401 && why.contains("client certificate"), "{code} {why}");

    // the tiles of a log that is not public: the reader role, privately cached
    let cp = format!("{base}/tlog/default/checkpoint");
    let (code, headers, note) = curl(ca, Some(&auditor), &cp, None);
    assert_eq!(code, 200, "{note}");
    assert!(headers.contains("cache-control: private, max-age=2"), "{headers}");
    assert!(note.contains("\n1\n"), "one entry: {note}");
    let (code, headers, leaf) = curl(ca, Some(&auditor), &format!("{base}/tlog/default/tile/entries/000.p/1"), None);
    assert_eq!(code, 200);
    assert!(headers.contains("cache-control: private, max-age=31536000, immutable"), "{headers}");
    assert!(leaf.contains("spiffe://ops/alertmanager"), "the entry's actor is the certificate's identity");
    let (code, _, why) = curl(ca, Some(&submitter), &cp, None);
    assert!(code == 403 && why.contains("reader"), "{code} {why}");
    let (code, _, why) = curl(ca, None, &cp, None);
    assert!(code == 403 && why.contains("public_tiles"), "{code} {why}");

    // /metrics needs no certificate
    let (code, _, metrics) = curl(ca, None, &format!("{base}/metrics"), None);
    assert_eq!(code, 200);
    assert!(metrics.contains("ledger_alertmanager_alerts_total{log=\"default\",outcome=\"ok\"} 1"), "{metrics}");
}
