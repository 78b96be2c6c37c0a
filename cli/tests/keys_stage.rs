//! `ledger keys generate` then `ledger keys stage` on a data directory, run
//! as the real binary (offline): the staged pair is in the log's keyring
//! file, printed in text and JSON, never with a secret; staging twice and a
//! log without keys are usage errors naming the file.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use ledger::keys::{KeyState, Keyring};

/// `ledger keys ARGS --data-dir DATA --log LOG [extra]`.
fn keys(data: &Path, log: &str, args: &[&str], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .args(["--log", log])
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn ids(ring: &Keyring, state: KeyState) -> Vec<String> {
    ring.entries().iter().filter(|k| k.state == state).map(|k| k.id.clone()).collect()
}

/// No secret of the keyring at `path` appears in `out`.
fn no_secret(path: &Path, out: &str) {
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for k in file["keys"].as_array().unwrap() {
        let secret = k["secret"].as_str().unwrap();
        assert!(!out.contains(secret), "a secret was printed");
    }
}

#[test]
fn keys_stage_adds_a_staged_pair_to_the_keyring_generated_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = keys(data, "audit", &["generate"], &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(data, "audit"));
    let active = ids(&Keyring::load(&ring).unwrap(), KeyState::Active);

    let out = keys(data, "audit", &["stage"], &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["keyring"].as_str(), Some(ring.to_str().unwrap()));
    let (ed, hmac, vkey) =
        (v["ed25519_id"].as_str().unwrap(), v["hmac_id"].as_str().unwrap(), v["vkey"].as_str().unwrap());
    let loaded = Keyring::load(&ring).unwrap();
    assert_eq!(ids(&loaded, KeyState::Staged), [ed, hmac]);
    assert_eq!(ids(&loaded, KeyState::Active), active, "the active keys are unchanged");
    assert!(loaded.verifiers().iter().any(|k| k.to_vkey() == vkey));
    assert!(vkey.starts_with("ledger.local/audit+"), "{vkey}");
    assert_eq!(std::fs::metadata(&ring).unwrap().permissions().mode() & 0o777, 0o600);
    no_secret(&ring, &text(&out.stdout));

    let out = keys(data, "audit", &["stage"], &[]);
    assert_eq!(out.status.code(), Some(2), "staging twice is a usage error");
    let err = text(&out.stderr);
    assert!(err.contains(ring.to_str().unwrap()) && err.contains(ed) && err.contains(hmac), "{err}");
    no_secret(&ring, &err);
    assert_eq!(Keyring::load(&ring).unwrap().entries(), loaded.entries(), "the file is unchanged");
}

#[test]
fn keys_stage_prints_the_next_step_and_refuses_a_log_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = keys(data, "default", &["stage"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(data, "default"));
    let err = text(&out.stderr);
    assert!(err.contains(ring.to_str().unwrap()) && err.contains("ledger keys generate"), "{err}");
    assert!(!ring.exists(), "nothing created");

    assert_eq!(keys(data, "default", &["generate"], &[]).status.code(), Some(0));
    let out = keys(data, "default", &["stage"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let staged = ids(&Keyring::load(&ring).unwrap(), KeyState::Staged);
    assert!(staged.iter().all(|id| stdout.contains(id.as_str())), "{stdout}");
    assert!(stdout.contains("vkey ledger.local/default+"), "{stdout}");
    assert!(
        stdout.contains("copy")
            && stdout.contains("on every node of log default")
            && stdout.contains("ledger keys rotate"),
        "{stdout}"
    );
    no_secret(&ring, &stdout);
}
