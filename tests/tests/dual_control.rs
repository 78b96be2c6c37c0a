//! Dual control through the real CLI over mutual TLS (docs/SECURITY.md
//! "Dual control"): on a log with `dual_control = true`, `admin redact`,
//! `keys rotate` and `admin reload-policy` by admin A only record an
//! `admin_request`; A's own `admin approve` and a plain `ledger approve` are
//! refused, writing nothing; admin B's `admin approve` writes the approval,
//! then the action's entry naming the request; a rerun writes nothing; an
//! action that fails after its approval is completed by a rerun without a
//! second approval; a request past `dual_control_within` is refused; a log
//! without dual control acts at once.

#[path = "../../server/tests/common/pki.rs"]
mod pki;

use ledger_e2e::{Ledgerd, Run, ledger};
use pki::{Pair, Pki};
use serde_json::{Value, json};

/// The config; `extra` adds policy categories, `host_default` keeps log
/// "default" configured.
fn config(pki: &Pki, server: &Pair, extra: &str, host_default: bool) -> String {
    let grants = r#"[[logs.access]]
identity = "spiffe://ops/engine"
roles = ["writer", "reader"]
[[logs.access]]
identity = "admin-a"
roles = ["admin", "reader"]
[[logs.access]]
identity = "admin-b"
roles = ["admin", "reader", "writer"]
categories = ["approval"]
"#;
    let default = if host_default {
        format!("[[logs]]\nname = \"default\"\ndual_control = true\ndual_control_within = \"1h\"\n{grants}")
    } else {
        String::new()
    };
    format!(
        r#"{tls}
[policy.categories.approval]
required = ["approved_seq", "approved_leaf_hash", "reason"]
[policy.categories.stage4_incident]
required = []
{extra}
{default}
[[logs]]
name = "plain"
{grants}
[[logs]]
name = "short"
dual_control = true
dual_control_within = "1s"
{grants}"#,
        tls = pki.tls_section(server)
    )
}

struct Env {
    server: Ledgerd,
    root: std::path::PathBuf,
    ca: std::path::PathBuf,
}

impl Env {
    fn run(&self, who: &Pair, args: &[&str]) -> Run {
        ledger(&self.server.url, &self.root, &[&who.cli_args(&self.ca)[..], args].concat())
    }

    /// Runs, expecting success, and parses the JSON output.
    fn ok(&self, who: &Pair, args: &[&str]) -> Value {
        let r = self.run(who, &[&["--output", "json"][..], args].concat());
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        r.json()
    }

    /// Runs, expecting a refusal whose message holds `why`.
    fn refused(&self, who: &Pair, args: &[&str], why: &str) {
        let r = self.run(who, args);
        assert_eq!(r.code, 4, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }

    fn entry(&self, who: &Pair, log: &str, seq: u64) -> Value {
        self.ok(who, &["--log", log, "get", &seq.to_string()])
    }

    /// The log's size: the seq of a fresh stage4_incident entry.
    fn next_seq(&self, writer: &Pair, log: &str) -> u64 {
        let r = self.ok(writer, &["--log", log, "append", "--category", "stage4_incident", "--field", "probe=1"]);
        r["seq"].as_u64().unwrap()
    }

    fn active_keys(&self, who: &Pair) -> Vec<String> {
        let v = self.ok(who, &["keys", "status"]);
        let keys = v["keys"].as_array().unwrap().iter().filter(|k| k["state"] == "active");
        keys.map(|k| k["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// Asserts the log holds request (by A) → approval (by B) → effect (by B,
/// naming the request) at `request`, `request + 1`, `request + 2`.
fn assert_trail(env: &Env, b: &Pair, request: u64, action: &str, effect_category: &str) {
    let req = env.entry(b, "default", request);
    assert_eq!((req["category"].clone(), req["actor"].clone()), (json!("admin_request"), json!("admin-a")));
    assert_eq!(req["payload"]["action"], action, "{req}");
    let approval = env.entry(b, "default", request + 1);
    assert_eq!((approval["category"].clone(), approval["actor"].clone()), (json!("approval"), json!("admin-b")));
    assert_eq!(approval["payload"]["approved_seq"], request, "{approval}");
    assert_eq!(approval["payload"]["approved_leaf_hash"], req["leaf_hash"], "{approval}");
    assert_eq!(approval["payload"]["role"], "admin", "{approval}");
    let effect = env.entry(b, "default", request + 2);
    assert_eq!((effect["category"].clone(), effect["actor"].clone()), (json!(effect_category), json!("admin-b")));
    assert_eq!(effect["payload"]["request_seq"], request, "{effect}");
}

#[test]
fn admin_actions_wait_for_a_second_admin_through_the_cli_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let pki = Pki::new(&root.join("pki"), "ops");
    let cfg = root.join("ledgerd.toml");
    std::fs::write(&cfg, config(&pki, &pki.server(), "", true)).unwrap();
    let server = Ledgerd::start(&root.join("data"), &["--config", cfg.to_str().unwrap()]);
    let env = Env { server, root: root.clone(), ca: pki.ca_pem.clone() };
    let writer = pki.client_uri("engine", "spiffe://ops/engine");
    let (a, b) = (pki.client_cn("admin-a", "admin-a"), pki.client_cn("admin-b", "admin-b"));

    // --- redaction: A's request leaves the payload; B's approval removes it
    let secret = env.ok(&writer, &["append", "--category", "stage4_incident", "--field", "ssn=person-1-SSN"]);
    assert_eq!(secret["seq"], 0);
    let req = env.ok(&a, &["admin", "redact", "0", "--reason", "erasure PRIV-12"]);
    assert_eq!((req["pending"].clone(), req["request_seq"].clone()), (json!(true), json!(1)), "{req}");
    assert!(req["approve_with"].as_str().unwrap().contains("admin approve 1"), "{req}");
    assert_eq!(env.entry(&a, "default", 0)["payload"]["ssn"], "person-1-SSN", "nothing is redacted yet");
    let text = env.run(&a, &["admin", "redact", "0", "--reason", "again"]);
    assert!(text.stdout.contains("waits for a second admin") && text.stdout.contains("admin approve 2"), "{text:?}");
    let pending = env.ok(&a, &["approvals", "pending", "--category", "admin_request"]);
    let listed: Vec<(Value, Value)> =
        pending["pending"].as_array().unwrap().iter().map(|p| (p["entry"]["seq"].clone(), p["role"].clone())).collect();
    assert_eq!(listed, vec![(json!(1), json!("admin")), (json!(2), json!("admin"))], "{pending}");
    let due = pending["pending"][0]["due"].as_i64().unwrap();
    assert_eq!(due, pending["pending"][0]["entry"]["recorded_at"].as_i64().unwrap() + 3_600_000_000_000);

    // refusals write nothing: A approving its own request, a plain approval,
    // an approval of an entry that is no request
    env.refused(&a, &["admin", "approve", "1", "--reason", "mine"], "a second admin must approve it");
    env.refused(&a, &["admin", "approve", "1", "--reason", "mine"], "\"admin-a\"");
    env.refused(&b, &["approve", "1", "--reason", "ok", "--as", "admin"], "ledger admin approve 1");
    env.refused(&b, &["admin", "approve", "0", "--reason", "ok"], "not an admin_request");
    assert_eq!(env.entry(&a, "default", 0)["payload"]["ssn"], "person-1-SSN");

    let done = env.ok(&b, &["admin", "approve", "1", "--reason", "ticket PRIV-12 checked"]);
    assert_eq!((done["approval"]["seq"].clone(), done["effect"]["seq"].clone()), (json!(3), json!(4)), "{done}");
    assert_eq!((done["action"].clone(), done["already_done"].clone()), (json!("redact"), json!(false)));
    let target = env.entry(&a, "default", 0);
    assert_eq!((target["payload"].clone(), target["redacted_by"].clone()), (Value::Null, json!(5)), "{target}");
    let req1 = env.entry(&b, "default", 1);
    assert_eq!(req1["payload"]["target_seq"], 0);
    // request 1 at seq 1, request 2 at seq 2: the trail of 1 is 1, 3, 4
    let approval = env.entry(&b, "default", 3);
    assert_eq!((approval["payload"]["approved_seq"].clone(), approval["actor"].clone()), (json!(1), json!("admin-b")));
    let redaction = env.entry(&b, "default", 4);
    assert_eq!(redaction["category"], "redaction");
    assert_eq!(
        (redaction["payload"]["redacted_seq"].clone(), redaction["payload"]["request_seq"].clone()),
        (json!(0), json!(1))
    );

    // a rerun writes nothing and answers with the same entries
    let again = env.ok(&b, &["admin", "approve", "1", "--reason", "retry"]);
    assert_eq!((again["approval"]["seq"].clone(), again["effect"]["seq"].clone()), (json!(3), json!(4)), "{again}");
    assert_eq!(again["already_done"], true);
    // request 2 now names an entry redacted already: refused, nothing written
    env.refused(&b, &["admin", "approve", "2", "--reason", "ok"], "already redacted by entry 4");
    assert_eq!(env.next_seq(&writer, "default"), 5, "the refusals and the rerun wrote nothing");

    // --- key rotation: the active keys change only with B's approval
    let before = env.active_keys(&a);
    let req = env.ok(&a, &["keys", "rotate", "--reason", "30-day rotation"]);
    assert_eq!((req["pending"].clone(), req["request_seq"].clone()), (json!(true), json!(6)), "{req}");
    assert_eq!(env.active_keys(&a), before, "nothing rotated yet");
    env.refused(&a, &["admin", "approve", "6", "--reason", "mine"], "a second admin must approve it");
    let done = env.ok(&b, &["admin", "approve", "6", "--reason", "rotation due"]);
    assert_eq!(done["action"], "rotate_keys");
    let after = env.active_keys(&a);
    assert!(after.iter().all(|k| !before.contains(k)) && after.len() == before.len(), "{before:?} → {after:?}");
    assert!(after.contains(&done["rotation"]["new_hmac_key_id"].as_str().unwrap().to_owned()), "{done}");
    assert_trail(&env, &b, 6, "rotate_keys", "key_rotation");

    // --- policy reload: the new category only after B's approval
    std::fs::write(&cfg, config(&pki, &pki.server(), "[policy.categories.dual_test]\nrequired = []\n", true)).unwrap();
    let req = env.ok(&a, &["admin", "reload-policy", "--reason", "CHG-31"]);
    assert_eq!((req["pending"].clone(), req["request_seq"].clone()), (json!(true), json!(9)), "{req}");
    env.refused(&writer, &["append", "--category", "dual_test", "--field", "x=1"], "dual_test");
    // the file changed after the request (here: it no longer configures this log): B's approval
    // is refused, writing nothing — it covers the file as requested; the same file again: done
    std::fs::write(&cfg, config(&pki, &pki.server(), "[policy.categories.dual_test]\nrequired = []\n", false)).unwrap();
    env.refused(
        &b,
        &["admin", "approve", "9", "--reason", "CHG-31 reviewed"],
        "changed since the reload was requested",
    );
    let waiting = env.ok(&a, &["approvals", "pending", "--category", "admin_request"]);
    let seqs: Vec<u64> =
        waiting["pending"].as_array().unwrap().iter().map(|p| p["entry"]["seq"].as_u64().unwrap()).collect();
    assert!(seqs.contains(&9), "{waiting}");
    std::fs::write(&cfg, config(&pki, &pki.server(), "[policy.categories.dual_test]\nrequired = []\n", true)).unwrap();
    let done = env.ok(&b, &["admin", "approve", "9", "--reason", "CHG-31 reviewed"]);
    assert_eq!((done["approval"]["seq"].clone(), done["approval"]["duplicate"].clone()), (json!(10), json!(false)));
    assert_eq!((done["effect"]["seq"].clone(), done["already_done"].clone()), (json!(11), json!(false)), "{done}");
    assert!(done["categories"].as_array().unwrap().contains(&json!("dual_test")), "{done}");
    assert_trail(&env, &b, 9, "reload_policy", "policy_reload");
    let appended = env.ok(&writer, &["append", "--category", "dual_test", "--field", "x=1"]);
    assert_eq!(appended["seq"], 12);
    assert_eq!(env.ok(&a, &["approvals", "pending", "--category", "admin_request"])["pending"][0]["entry"]["seq"], 2);

    // --- no client can take the request id of an approval or a redaction to come
    for id in ["admin_request/99/approval", "redaction/99"] {
        let args = ["append", "--category", "stage4_incident", "--request-id", id, "--field", "x=1"];
        env.refused(&writer, &args, "invalid request_id: starts with a prefix ledgerd keeps");
    }

    // --- past dual_control_within: refused, nothing written
    let req = env.ok(&a, &["--log", "short", "keys", "rotate", "--reason", "quick"]);
    assert_eq!(req["request_seq"], 0);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    env.refused(&b, &["--log", "short", "admin", "approve", "0", "--reason", "late"], "expired");
    assert_eq!(env.next_seq(&writer, "short"), 1);

    // --- without dual control an admin acts alone, as before
    env.ok(&writer, &["--log", "plain", "append", "--category", "stage4_incident", "--field", "ssn=x"]);
    let red = env.ok(&a, &["--log", "plain", "admin", "redact", "0", "--reason", "erasure"]);
    assert_eq!(
        (red["pending"].clone(), red["redacted_seq"].clone(), red["receipt"]["seq"].clone()),
        (json!(false), json!(0), json!(1))
    );
    assert_eq!(env.entry(&a, "plain", 0)["redacted_by"], 2);
}

#[test]
fn dual_control_within_is_checked_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ledgerd.toml");
    std::fs::write(&cfg, "[[logs]]\nname = \"default\"\ndual_control_within = \"1h\"\n").unwrap();
    let out = std::process::Command::new(ledger_e2e::bin_dir().join("ledgerd"))
        .args(["--config", cfg.to_str().unwrap(), "--data-dir", dir.path().join("d").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("logs[0].dual_control_within"), "{err}");
}
