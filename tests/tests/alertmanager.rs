//! A real Alertmanager (Debian's `prometheus-alertmanager`, which `.ci/run`
//! installs) routed to a real ledgerd (docs/API.md "Alertmanager webhook"):
//! an alert posted to Alertmanager's API arrives as an `alert_fired` entry
//! on the incident's subject with its firing time, Alertmanager's repeats
//! add nothing, `ledger ack` links the acknowledgement, a resolve arrives
//! as `alert_resolved`; and the receiver's refusals (400, 401, 403, 404)
//! write nothing.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_e2e::{Ledgerd, ledger};
use serde_json::{Value, json};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const TOKEN: &str = "s3cret-am-token";

/// One HTTP/1.1 request over loopback: (status code, body).
fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(c, "{req}\r\n{body}").unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Alertmanager, stopped by its pid on drop.
struct Alertmanager {
    child: Child,
    url: String,
}

impl Alertmanager {
    fn start(dir: &Path, webhook: &str, token_file: &Path) -> Self {
        let config = format!(
            "route:\n  receiver: ledger\n  group_by: ['incident']\n  group_wait: 100ms\n  group_interval: 1s\n  \
             repeat_interval: 2s\nreceivers:\n  - name: ledger\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n        http_config:\n          authorization:\n            credentials_file: '{}'\n",
            token_file.display()
        );
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .expect("start prometheus-alertmanager (Debian's package; .ci/run installs it)");
        let am = Self { child, url: format!("http://127.0.0.1:{port}") };
        let ready = wait(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(&am.url, "GET", "/-/ready", &[], "").0 == 200
        });
        assert!(ready, "alertmanager did not become ready: {}", log(dir));
        am
    }

    fn post_alert(&self, alert: &Value) {
        let (code, body) = http(
            &self.url,
            "POST",
            "/api/v2/alerts",
            &[("Content-Type", "application/json")],
            &json!([alert]).to_string(),
        );
        assert_eq!(code, 200, "alertmanager refused the alert: {body}");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default()
}

/// Polls `f` every 100 ms until it holds or `limit` passes.
fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn entries(server: &Ledgerd, dir: &Path, category: &str) -> Vec<Value> {
    let r = ledger(&server.url, dir, &["query", "--category", category, "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn metric(server: &Ledgerd, outcome: &str) -> u64 {
    let (_, text) = http(&server.http, "GET", "/metrics", &[], "");
    let key = format!("ledger_alertmanager_alerts_total{{log=\"default\",outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&key)).map_or(0, |v| v.trim().parse().unwrap())
}

fn start(dir: &Path) -> (Ledgerd, std::path::PathBuf) {
    let token = dir.join("am.token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = dir.join("ledgerd.toml");
    let text = format!(
        "[[logs]]\nname = \"default\"\n[logs.alertmanager]\ntoken_file = {:?}\n\n[[logs]]\nname = \"quiet\"\n",
        token.display().to_string()
    );
    std::fs::write(&cfg, text).unwrap();
    (Ledgerd::start(&dir.join("data"), &["--config", cfg.to_str().unwrap()]), token)
}

#[test]
fn alertmanager_notifications_become_entries_once_and_acks_link_them() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(dir.path());
    let am = Alertmanager::start(dir.path(), &format!("{}/alertmanager/v1/default", server.http), &token);
    let starts_at = "2026-12-05T21:25:15.5Z";
    let mut alert = json!({
        "labels": {"alertname": "stage4_pnl_drawdown", "incident": "INC-2041", "severity": "page"},
        "annotations": {"summary": "no signals for 6 min"},
        "startsAt": starts_at, "generatorURL": "http://prometheus.example/graph",
    });
    am.post_alert(&alert);
    assert!(
        wait(Duration::from_secs(30), || !entries(&server, dir.path(), "alert_fired").is_empty()),
        "{}",
        log(dir.path())
    );
    let fired = &entries(&server, dir.path(), "alert_fired")[0];
    assert_eq!(fired["subject"], "INC-2041");
    assert_eq!(fired["actor"], "alertmanager");
    assert_eq!(fired["occurred_at"], 1_796_505_915_500_000_000i64, "startsAt is the entry's occurred_at");
    assert_eq!(fired["payload"]["labels"]["severity"], "page");
    assert_eq!(fired["payload"]["annotations"]["summary"], "no signals for 6 min");
    assert_eq!(fired["payload"]["receiver"], "ledger");
    let fingerprint = fired["payload"]["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 16);

    // Alertmanager repeats the notification every 2 s: each repeat is a duplicate, never a second entry
    assert!(
        wait(Duration::from_secs(30), || metric(&server, "duplicate") >= 1),
        "no repeat arrived: {}",
        log(dir.path())
    );
    assert_eq!(entries(&server, dir.path(), "alert_fired").len(), 1);

    // the acknowledgement, by fingerprint, linked by seq and leaf hash; running it again adds nothing
    for _ in 0..2 {
        let r = ledger(
            &server.url,
            dir.path(),
            &["ack", "--alert", &fingerprint, "--field", "note=on it", "--output", "json"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let acks = entries(&server, dir.path(), "alert_ack");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["subject"], "INC-2041");
    assert_eq!(acks[0]["payload"]["alert_seq"], fired["seq"]);
    assert_eq!(acks[0]["payload"]["alert_leaf_hash"], fired["leaf_hash"]);
    assert_eq!(acks[0]["payload"]["note"], "on it");
    let r = ledger(&server.url, dir.path(), &["ack", "--alert", &acks[0]["seq"].to_string()]);
    assert_eq!(r.code, 2, "an ack of an entry that is not an alert is refused: {}", r.stderr);
    assert!(r.stderr.contains("not an alert_fired entry"), "{}", r.stderr);

    // resolved: endsAt in the past ends the alert; Alertmanager sends it resolved
    alert["endsAt"] = json!("2026-12-05T21:40:00Z");
    am.post_alert(&alert);
    assert!(
        wait(Duration::from_secs(30), || !entries(&server, dir.path(), "alert_resolved").is_empty()),
        "{}",
        log(dir.path())
    );
    let resolved = &entries(&server, dir.path(), "alert_resolved")[0];
    assert_eq!(resolved["subject"], "INC-2041");
    assert_eq!(resolved["payload"]["fingerprint"], fingerprint.as_str());
    assert_eq!(resolved["payload"]["ends_at"], "2026-12-05T21:40:00Z");
    assert_eq!(resolved["occurred_at"], 1_796_506_800_000_000_000i64);

    // the incident's timeline starts at the alert's firing; its evidence pack holds alert and ack and verifies
    let show = ledger(&server.url, dir.path(), &["incident", "show", "INC-2041", "--output", "json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let m = &show.json()["milestones"];
    assert_eq!(
        (m["alert_fired"]["seq"].clone(), m["acknowledged"]["seq"].clone()),
        (fired["seq"].clone(), acks[0]["seq"].clone())
    );
    assert_eq!(m["alert_fired"]["at"], 1_796_505_915_500_000_000i64);
    assert_eq!(m["resolved"]["seq"], resolved["seq"]);
    let pack = dir.path().join("pack");
    let r = ledger(&server.url, dir.path(), &["incident", "pack", "INC-2041", "--out", pack.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let vkeys = dir.path().join("vkeys");
    std::fs::write(&vkeys, ledger(&server.url, dir.path(), &["keys", "public"]).stdout).unwrap();
    let v =
        ledger(&server.url, dir.path(), &["verify-pack", pack.to_str().unwrap(), "--vkey", vkeys.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn refused_notifications_say_why_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = start(dir.path());
    let auth = ("Authorization", "Bearer s3cret-am-token");
    let good = json!({
        "version": "4", "receiver": "ledger", "groupKey": "{}:{}", "status": "firing", "externalURL": "",
        "alerts": [{"status": "firing", "labels": {"alertname": "x"}, "annotations": {},
                    "startsAt": "2026-12-05T21:25:15Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": "00000000000000aa"}]
    });
    let post = |log: &str, headers: &[(&str, &str)], body: &str| {
        http(&server.http, "POST", &format!("/alertmanager/v1/{log}"), headers, body)
    };
    let mut bad = good.clone();
    bad["alerts"][0]["startsAt"] = json!("yesterday");
    let (code, why) = post("default", &[auth], &bad.to_string());
    assert_eq!(code, 400, "{why}");
    assert!(why.contains("alerts[0].startsAt") && why.contains("RFC 3339"), "{why}");
    let (code, why) = post("default", &[("Authorization", "Bearer wrong")], &good.to_string());
    assert_eq!(code, 401, "{why}");
    let (code, _) = post("default", &[], &good.to_string());
    assert_eq!(code, 401);
    let (code, why) = post("quiet", &[auth], &good.to_string());
    assert!(code == 403 && why.contains("[logs.alertmanager]"), "{code} {why}");
    let (code, why) = post("nosuchlog", &[auth], &good.to_string());
    assert_eq!(code, 404, "{why}");
    assert!(entries(&server, dir.path(), "alert_fired").is_empty(), "a refusal wrote something");
    let (code, body) = post("default", &[auth], &good.to_string());
    assert_eq!(code, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(out["entries"][0]["duplicate"], false);
    let (_, body) = post("default", &[auth], &good.to_string());
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(out["entries"][0]["duplicate"], true, "the same alert again is a duplicate");
    assert_eq!(entries(&server, dir.path(), "alert_fired").len(), 1);
    assert!(!server.logs().join("\n").contains(TOKEN), "the token reached ledgerd's log");
}
