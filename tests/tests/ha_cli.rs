//! The `ledger` CLI against replicated ledgerd (docs/HA.md "Clients"): a
//! real PostgreSQL 15, two real ledgerd nodes. `--server follower,leader`
//! appends land on the leader through the follower's `ledger-leader`
//! answer, with a generated request id; reads are served by the follower;
//! `ledger status` shows each node's role, size and lag, and exits 1 when
//! a node is down; after the leader is killed, the same command line
//! appends on the node that took over; an admin redaction given to the
//! node list lands on the leader and the follower's copy loses the payload;
//! a SIGHUP on the follower is recorded when it takes the lead.

#[path = "../../store-pg/tests/common/cluster.rs"]
mod cluster;

use std::path::Path;
use std::time::{Duration, Instant};

use ledger_e2e::{Ledgerd, Run, ledger};

fn start(dir: &Path, name: &str, url: &str) -> Ledgerd {
    let config = dir.join(format!("{name}.toml"));
    let text = format!("[storage]\nkind = \"postgres\"\nurl = \"{url}\"\nnode = \"{name}\"\nlease = \"2s\"\n");
    std::fs::write(&config, text).unwrap();
    Ledgerd::start(&dir.join(name), &["--config", config.to_str().unwrap()])
}

/// Runs `ledger` until `ok` holds for its result (10 s at most).
fn until(url: &str, cwd: &Path, args: &[&str], ok: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ledger(url, cwd, args);
        if ok(&r) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_cli_follows_the_leader_reads_from_followers_and_reports_each_nodes_role() {
    let pg = cluster::Cluster::start(false);
    let url = pg.primary.conninfo();
    let dir = tempfile::tempdir().unwrap();
    let mut a = start(dir.path(), "node-a", &url);
    // node-a leads (it was alone); node-b gets the same keyring and follows
    until(&a.url, dir.path(), &["status", "--output", "json"], |r| r.json()["nodes"][0]["role"] == "leader");
    let ring = |n: &str| ledger::layout::keyring(&ledger::layout::log_dir(&dir.path().join(n), "default"));
    std::fs::create_dir_all(ring("node-b").parent().unwrap()).unwrap();
    std::fs::copy(ring("node-a"), ring("node-b")).unwrap();
    let b = start(dir.path(), "node-b", &url);
    let both = format!("{},{}", b.url, a.url);

    let r = ledger(
        &both,
        dir.path(),
        &["append", "--category", "alert_ack", "--subject", "INC-1", "--field", "alert=x", "--output", "json"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let receipt = r.json();
    assert_eq!(receipt["seq"], 0);
    assert!(receipt["request_id"].as_str().is_some_and(|id| id.starts_with("cli-")), "{receipt}");

    // the follower serves it once it applied it
    let got = until(&b.url, dir.path(), &["get", "0", "--output", "json"], |r| r.code == 0);
    assert_eq!(got.code, 0, "{}{}", got.stdout, got.stderr);
    assert_eq!(got.json()["leaf_hash"], receipt["leaf_hash"]);

    let st = until(&format!("{},{}", a.url, b.url), dir.path(), &["status", "--output", "json"], |r| {
        r.code == 0 && r.json()["nodes"][1]["lag"] == 0 && r.json()["nodes"][1]["size"] == 1
    });
    assert_eq!(st.code, 0, "{}{}", st.stdout, st.stderr);
    let nodes = st.json()["nodes"].clone();
    assert_eq!((nodes[0]["node"].as_str(), nodes[0]["role"].as_str()), (Some("node-a"), Some("leader")), "{nodes}");
    assert_eq!((nodes[1]["node"].as_str(), nodes[1]["role"].as_str()), (Some("node-b"), Some("follower")), "{nodes}");
    assert_eq!(nodes[1]["leader_address"], a.url.as_str());
    let text = ledger(&both, dir.path(), &["status"]);
    assert!(text.stdout.contains("follower") && text.stdout.contains("leader"), "{}", text.stdout);

    // an admin action goes to the leader through the node list; the follower replays it
    let args = ["admin", "redact", "0", "--reason", "GDPR erasure, ticket PRIV-3", "--output", "json"];
    let red = ledger(&both, dir.path(), &args);
    assert_eq!(red.code, 0, "{}{}", red.stdout, red.stderr);
    assert_eq!(red.json()["receipt"]["seq"], 1);
    let got =
        until(&b.url, dir.path(), &["get", "0", "--output", "json"], |r| r.code == 0 && r.json()["redacted_by"] == 2);
    assert_eq!(got.json()["redacted_by"], 2, "{}{}", got.stdout, got.stderr);
    assert!(got.json()["payload"].is_null(), "the follower's copy has no payload: {}", got.stdout);

    // a rotation: a pair staged in node-a's keyring, the file copied to node-b, rotated through the list
    let data_a = dir.path().join("node-a");
    let staged =
        ledger(&a.url, dir.path(), &["keys", "stage", "--data-dir", data_a.to_str().unwrap(), "--output", "json"]);
    assert_eq!(staged.code, 0, "{}{}", staged.stdout, staged.stderr);
    let hmac_id = staged.json()["hmac_id"].as_str().unwrap().to_owned();
    std::fs::copy(ring("node-a"), ring("node-b")).unwrap();
    let rot = ledger(&both, dir.path(), &["keys", "rotate", "--reason", "30-day rotation", "--output", "json"]);
    assert_eq!(rot.code, 0, "{}{}", rot.stdout, rot.stderr);
    assert_eq!(rot.json()["new_hmac_key_id"], hmac_id.as_str());
    let active_on_b = |r: &Run| {
        r.code == 0
            && r.json()["keys"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k["id"] == hmac_id.as_str() && k["state"] == "active"))
    };
    let keys_b = until(&b.url, dir.path(), &["keys", "status", "--output", "json"], active_on_b);
    assert!(active_on_b(&keys_b), "node-b switched its keys on replay: {}{}", keys_b.stdout, keys_b.stderr);

    // a SIGHUP on the follower waits for its entry until node-b leads
    let hup = std::process::Command::new("kill").args(["-HUP", &b.pid().unwrap().to_string()]).status().unwrap();
    assert!(hup.success());
    let logged = Instant::now() + Duration::from_secs(10);
    while !b.logs().iter().any(|l| l.contains("reloaded on a follower")) && Instant::now() < logged {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.logs().iter().any(|l| l.contains("reloaded on a follower")), "{:?}", b.logs());

    // the leader is lost: status says so; the same command line writes on node-b once it leads
    a.kill();
    let down = ledger(&both, dir.path(), &["status", "--output", "json"]);
    assert_eq!(down.code, 1, "{}{}", down.stdout, down.stderr);
    assert_eq!(down.json()["nodes"][1]["reachable"], false);
    let r = ledger(
        &both,
        dir.path(),
        &["append", "--category", "alert_ack", "--subject", "INC-1", "--field", "alert=y", "--output", "json"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.json()["seq"] == 3 || r.json()["seq"] == 4, "{}", r.stdout);
    let reloads = until(&b.url, dir.path(), &["query", "--category", "policy_reload", "--output", "json"], |r| {
        r.stdout.lines().count() == 1
    });
    let entry: serde_json::Value = serde_json::from_str(reloads.stdout.trim()).unwrap();
    let reason = entry["payload"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("SIGHUP") && reason.contains("node-b while it followed"), "{entry}");
    let st = ledger(&b.url, dir.path(), &["status", "--output", "json"]);
    assert_eq!(st.json()["nodes"][0]["role"], "leader", "{}", st.stdout);
    assert_eq!(st.json()["nodes"][0]["epoch"], 2);
}
