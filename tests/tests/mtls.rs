//! The real binaries over mutual TLS: the CLI's --ca/--cert/--key, the
//! recorded identity, certificate errors, roles, an audited redaction that
//! keeps `ledger verify` green, and ledgerd's startup refusals.

#[path = "../../server/tests/common/pki.rs"]
mod pki;

use std::path::Path;
use std::process::Command;

use ledger_e2e::{Ledgerd, Run, bin_dir, ledger};
use pki::{Pair, Pki};

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    pki: Pki,
    server: Ledgerd,
}

fn config(pki: &Pki, server: &Pair) -> String {
    format!(
        r#"{tls}
[[logs]]
name = "default"
[[logs.access]]
identity = "spiffe://ops/submitter"
roles = ["writer"]
categories = ["alert_ack", "stage5_training"]
[[logs.access]]
identity = "compliance-officer"
roles = ["reader", "auditor", "admin"]
"#,
        tls = pki.tls_section(server)
    )
}

fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let pki = Pki::new(&root.join("pki"), "ops");
    let sp = pki.server();
    let cfg = root.join("ledgerd.toml");
    std::fs::write(&cfg, config(&pki, &sp)).unwrap();
    let server = Ledgerd::start(&root.join("data"), &["--config", cfg.to_str().unwrap()]);
    Env { _dir: dir, root, pki, server }
}

/// `ledger` with TLS flags for `who` (None: only --ca).
fn as_(env: &Env, ca: &Path, who: Option<&Pair>, args: &[&str]) -> Run {
    let ca_only = ["--ca", ca.to_str().unwrap()];
    let flags = who.map(|p| p.cli_args(ca));
    let tls: &[&str] = flags.as_ref().map_or(&ca_only[..], |f| &f[..]);
    ledger(&env.server.url, &env.root, &[tls, args].concat())
}

#[test]
fn the_cli_over_mutual_tls_records_the_certificate_identity_and_roles_hold() {
    let env = start();
    let submitter = env.pki.client_uri("submitter", "spiffe://ops/submitter");
    let officer = env.pki.client_cn("officer", "compliance-officer");
    let ca = env.pki.ca_pem.clone();

    let a = as_(
        &env,
        &ca,
        Some(&submitter),
        &["--output", "json", "append", "--category", "alert_ack", "--subject", "INC-1", "--field", "alert=disk"],
    );
    assert_eq!(a.code, 0, "{a:?}");
    let seq = a.json()["seq"].as_u64().unwrap();
    let g = as_(&env, &ca, Some(&officer), &["--output", "json", "get", &seq.to_string()]);
    assert_eq!(g.code, 0, "{g:?}");
    assert_eq!(g.json()["actor"], "spiffe://ops/submitter", "not LEDGER_ACTOR=e2e-tester");

    // The submitter may not write incidents, nor read.
    let denied = as_(&env, &ca, Some(&submitter), &["append", "--category", "stage4_incident", "--field", "x=1"]);
    assert_eq!(denied.code, 4, "{denied:?}");
    assert!(denied.stderr.contains("permission denied: identity \"spiffe://ops/submitter\" lacks the writer role for category \"stage4_incident\""), "{}", denied.stderr);
    let denied = as_(&env, &ca, Some(&submitter), &["get", "0"]);
    assert_eq!(denied.code, 4);
    assert!(denied.stderr.contains("lacks the reader role on log \"default\""), "{}", denied.stderr);
}

#[test]
fn sighup_rereads_the_grants_and_records_what_changed() {
    let mut env = start();
    let submitter = env.pki.client_uri("submitter", "spiffe://ops/submitter");
    let officer = env.pki.client_cn("officer", "compliance-officer");
    let ca = env.pki.ca_pem.clone();
    let append = ["--output", "json", "append", "--category", "alert_ack", "--subject", "INC-9", "--field", "a=1"];
    let first = as_(&env, &ca, Some(&submitter), &append);
    assert_eq!(first.code, 0, "{first:?}");
    let seq = first.json()["seq"].as_u64().unwrap();

    // The submitter's grant is withdrawn in the file, then SIGHUP.
    let cfg = env.root.join("ledgerd.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let without = text.replace("[[logs.access]]\nidentity = \"spiffe://ops/submitter\"\nroles = [\"writer\"]\ncategories = [\"alert_ack\", \"stage5_training\"]\n", "");
    assert_ne!(without, text, "the grant was in the file");
    std::fs::write(&cfg, without).unwrap();
    let pid = env.server.pid().unwrap().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());

    // The reload entry follows the submitter's entry; wait for it (bounded).
    let reload = (0..100)
        .find_map(|_| {
            let g = as_(&env, &ca, Some(&officer), &["--output", "json", "get", &(seq + 1).to_string()]);
            if g.code == 0 {
                return Some(g.json());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            None
        })
        .expect("a policy_reload entry within 5 s of SIGHUP");
    assert_eq!(reload["category"], "policy_reload");
    assert_eq!(reload["actor"], "ledgerd");
    let payload = &reload["payload"];
    assert_eq!(payload["reason"], "SIGHUP: the configuration file was read again");
    assert_eq!(payload["access"]["removed"][0]["identity"], "spiffe://ops/submitter", "{payload}");
    let denied = as_(&env, &ca, Some(&submitter), &append);
    assert_eq!(denied.code, 4, "{denied:?}");
    assert!(denied.stderr.contains("lacks the writer role"), "{}", denied.stderr);
    assert_eq!(env.server.stop(), Some(0), "a SIGHUP does not stop ledgerd");
}

#[test]
fn certificate_errors_are_named_with_what_to_do() {
    let env = start();
    let other = Pki::new(&env.root.join("other"), "evil");
    let stranger = other.client_uri("stranger", "spiffe://ops/submitter");
    let officer = env.pki.client_cn("officer", "compliance-officer");

    let wrong_ca = as_(&env, &other.ca_pem, Some(&officer), &["checkpoint"]);
    assert_eq!(wrong_ca.code, 3, "{wrong_ca:?}");
    assert!(
        wrong_ca.stderr.contains("ledgerd's certificate is not signed by the CA given with --ca"),
        "{}",
        wrong_ca.stderr
    );

    for (what, who) in [("no client certificate", None), ("a client certificate from another CA", Some(&stranger))] {
        let r = as_(&env, &env.pki.ca_pem, who, &["checkpoint"]);
        assert_ne!(r.code, 0, "{what}: {r:?}");
        assert!(
            r.stderr.contains("refused your client certificate") || r.stderr.contains("requires a client certificate"),
            "{what}: {}",
            r.stderr
        );
    }
    let half = ledger(
        &env.server.url,
        &env.root,
        &["--ca", env.pki.ca_pem.to_str().unwrap(), "--cert", officer.cert.to_str().unwrap(), "checkpoint"],
    );
    assert_eq!(half.code, 2, "{half:?}");
    assert!(half.stderr.contains("--key"), "{}", half.stderr);
    let not_pem = ledger(&env.server.url, &env.root, &["--ca", officer.key.to_str().unwrap(), "checkpoint"]);
    assert_eq!(not_pem.code, 2, "{not_pem:?}");
    assert!(
        not_pem.stderr.contains("--ca") && not_pem.stderr.contains("no PEM CERTIFICATE block"),
        "{}",
        not_pem.stderr
    );
    // Plaintext against the TLS port: refused, not served.
    let plain = ledger(&env.server.url, &env.root, &["checkpoint"]);
    assert_ne!(plain.code, 0, "{plain:?}");
}

#[test]
fn an_admin_redaction_keeps_verify_green_and_reports_the_entry() {
    let env = start();
    let submitter = env.pki.client_uri("submitter", "spiffe://ops/submitter");
    let officer = env.pki.client_cn("officer", "compliance-officer");
    let ca = env.pki.ca_pem.clone();
    for i in 0..5 {
        let r = as_(
            &env,
            &ca,
            Some(&submitter),
            &[
                "append",
                "--category",
                "stage5_training",
                "--subject",
                "TR-1",
                "--field",
                &format!("trainee=person-{i}-SSN-078051120"),
            ],
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
    let red =
        as_(&env, &ca, Some(&officer), &["--output", "json", "admin", "redact", "2", "--reason", "erasure PRIV-3"]);
    assert_eq!(red.code, 0, "{red:?}");
    let redaction_seq = red.json()["receipt"]["seq"].as_u64().unwrap();
    assert_eq!((red.json()["redacted_seq"].as_u64(), redaction_seq), (Some(2), 5));
    let text = as_(&env, &ca, Some(&officer), &["query", "--subject", "TR-1"]);
    assert!(text.stdout.contains("<redacted by entry 5>"), "{}", text.stdout);

    let bundle = env.root.join("bundle");
    let ex = as_(&env, &ca, Some(&officer), &["export", "--out", bundle.to_str().unwrap()]);
    assert_eq!(ex.code, 0, "{ex:?}");
    let v = ledger(&env.server.url, &env.root, &["--output", "json", "verify", bundle.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(v.json()["redacted"], serde_json::json!([{"seq": 2, "redaction_seq": 5}]));
    let needle = b"person-2-SSN";
    for dir in [env.server.data.clone(), bundle] {
        let hit = walk(&dir).into_iter().find(|p| std::fs::read(p).unwrap().windows(needle.len()).any(|w| w == needle));
        assert!(hit.is_none(), "redacted payload found in {hit:?}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

fn ledgerd(args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("ledgerd")).args(args).output().unwrap()
}

#[test]
fn ledgerd_refuses_plaintext_off_loopback_and_readable_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = ledgerd(&["--data-dir", d, "--listen", "0.0.0.0:0", "--metrics-listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config: listen: 0.0.0.0:0 is not a loopback address and [tls] is not configured"), "{err}");
    assert!(err.contains("--insecure-listen"), "{err}");

    // With the flag it serves, and says loudly that it is insecure.
    let mut s = Ledgerd::start(&data, &["--insecure-listen"]);
    assert!(s.logs().iter().all(|l| !l.contains("INSECURE")), "loopback is not insecure");
    s.stop();
    let mut child = Command::new(bin_dir().join("ledgerd"))
        .args([
            "--data-dir",
            d,
            "--listen",
            "0.0.0.0:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--insecure-listen",
            "--log-format",
            "json",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stderr.as_mut().unwrap()), &mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("INSECURE: plaintext gRPC on a non-loopback address"), "{first}");
    assert!(first.contains("\"level\":\"WARN\""), "{first}");

    use std::os::unix::fs::PermissionsExt as _;
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(&data, "default"));
    std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ledgerd(&["--data-dir", d, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has mode 0644: it must not be readable by group or others (chmod 600"), "{err}");
}

fn metrics_text(server: &Ledgerd) -> String {
    use std::io::{Read as _, Write as _};
    let line = server.logs().into_iter().find(|l| l.contains("ledgerd serving")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = v["fields"]["metrics"].as_str().unwrap().to_owned();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

/// Every secret of the keyring (base64 as stored, and hex) and the TLS key.
fn secrets(env: &Env) -> Vec<String> {
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(&env.server.data, "default"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ring).unwrap()).unwrap();
    let mut out = Vec::new();
    for k in v["keys"].as_array().unwrap() {
        let b64 = k["secret"].as_str().unwrap().to_owned();
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &b64).unwrap();
        out.push(b64);
        out.push(raw.iter().map(|b| format!("{b:02x}")).collect());
    }
    let tls_key = std::fs::read_to_string(env.root.join("pki/ops-server.key")).unwrap();
    out.extend(tls_key.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned));
    out
}

#[test]
fn secrets_never_reach_logs_errors_metrics_or_exports() {
    let env = start();
    let submitter = env.pki.client_uri("submitter", "spiffe://ops/submitter");
    let officer = env.pki.client_cn("officer", "compliance-officer");
    let ca = env.pki.ca_pem.clone();
    let mut outputs = Vec::new();
    for args in [
        vec!["append", "--category", "alert_ack", "--field", "a=1"],
        vec!["append", "--category", "stage4_incident", "--field", "a=1"],
        vec!["keys", "rotate", "--reason", "30-day rotation"],
        vec!["--output", "json", "keys", "status"],
        vec!["--output", "json", "keys", "public"],
        vec!["admin", "redact", "0", "--reason", "test"],
        vec!["export", "--out", "bundle"],
    ] {
        let who = if args[0] == "append" { &submitter } else { &officer };
        let r = as_(&env, &ca, Some(who), &args);
        outputs.push(r.stdout + &r.stderr);
    }
    let mut haystack = outputs.join("\n");
    haystack.push_str(&env.server.logs().join("\n"));
    haystack.push_str(&metrics_text(&env.server));
    for p in walk(&env.root.join("bundle")) {
        haystack.push_str(&String::from_utf8_lossy(&std::fs::read(p).unwrap()));
    }
    let secrets = secrets(&env);
    assert!(secrets.len() >= 8, "two rotations' worth of keys and the TLS key");
    for s in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(!haystack.contains(s.as_str()), "a secret leaked: {}…", &s[..8]);
    }
    assert!(haystack.contains("ledger_appends_total"), "metrics were read");
}
