//! End to end: the real ledgerd and the real `ledger` binary over loopback.

use std::path::Path;

#[path = "../../ledger/tests/common/prerule.rs"]
mod prerule;

use bytes::Bytes;
use ledger::journal::{read_records, write_records};
use ledger::record::Decoded;
use ledger_e2e::{Ledgerd, Run, ledger};

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r
}

fn config_with_interval(dir: &Path, interval: u64) -> String {
    let p = dir.join("ledgerd.toml");
    std::fs::write(&p, format!("checkpoint_interval = {interval}\n")).unwrap();
    p.to_str().unwrap().to_owned()
}

/// A bundle exported from a real server with 30 entries, plus its vkeys
/// and the server's keyring (as the HMAC key file).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with_interval(dir.path(), 10);
        let mut d = Ledgerd::start(&dir.path().join("data"), &["--config", &cfg]);
        let w = dir.path();
        for i in 0..30 {
            let subject = format!("INC-{}", i % 4);
            let field = format!("step={i}");
            ok(ledger(
                &d.url,
                w,
                &["append", "--category", "stage4_incident", "--subject", &subject, "--field", &field],
            ));
        }
        let q = ok(ledger(&d.url, w, &["query", "--subject", "INC-1", "--output", "json"]));
        assert_eq!(q.stdout.lines().count(), 8, "INC-1 has seqs 1, 5, …, 29");
        let first: serde_json::Value = serde_json::from_str(q.stdout.lines().next().unwrap()).unwrap();
        assert_eq!((first["seq"].as_u64(), first["actor"].as_str()), (Some(1), Some("e2e-tester")));
        ok(ledger(&d.url, w, &["export", "--out", "bundle"]));
        let vk = ok(ledger(&d.url, w, &["keys", "public"]));
        std::fs::write(w.join("vkeys"), vk.stdout).unwrap();
        assert_eq!(d.stop(), Some(0), "SIGTERM stops ledgerd cleanly");
        std::fs::copy(ledger::layout::keyring(&d.log_dir()), w.join("hmac.json")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of the bundle with its journal records edited.
    fn tampered(&self, name: &str, f: impl FnOnce(&mut Vec<Decoded>)) -> String {
        let dst = self.path().join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for file in ["vkeys", "checkpoint", "hmac-keys.json"] {
            std::fs::copy(self.path().join("bundle").join(file), dst.join(file)).unwrap();
        }
        let mut segs = read_records(&self.path().join("bundle/journal")).unwrap();
        f(&mut segs[0].1);
        write_records(&dst.join("journal"), &segs).unwrap();
        name.to_owned()
    }

    fn verify(&self, bundle: &str) -> Run {
        ledger(
            "http://127.0.0.1:1",
            self.path(),
            &["verify", bundle, "--vkey", "vkeys", "--hmac-key", "hmac.json", "--output", "json"],
        )
    }
}

/// An edit of a journal's records.
type Edit = Box<dyn FnOnce(&mut Vec<Decoded>)>;

fn entry_pos(recs: &[Decoded], seq: u64) -> usize {
    recs.iter()
        .position(|r| matches!(r, Decoded::Entry(e) if ledger::leaf::decode_leaf(&e.leaf).unwrap().seq == seq))
        .unwrap()
}

fn entry_mut(recs: &mut [Decoded], seq: u64) -> &mut ledger::record::EntryRecord {
    let i = entry_pos(recs, seq);
    match &mut recs[i] {
        Decoded::Entry(e) => e,
        Decoded::Checkpoint(_) => unreachable!(),
    }
}

#[test]
fn append_query_export_verify_then_every_tamper_kind_fails_naming_kind_and_seq() {
    let fx = Fixture::new();
    let r = ok(fx.verify("bundle"));
    let rep = r.json();
    assert_eq!(
        (rep["ok"].as_bool(), rep["entries"].as_u64(), rep["hmac_checked"].as_u64()),
        (Some(true), Some(30), Some(30))
    );
    assert!(rep["checkpoints"].as_u64().unwrap() >= 3);
    let cases: Vec<(&str, Edit, &str, u64)> = vec![
        (
            "payload",
            Box::new(|r| {
                let e = entry_mut(r, 7);
                e.payload = Bytes::from_static(br#"{"step":700}"#);
            }),
            "payload_mismatch",
            7,
        ),
        ("hmac", Box::new(|r| entry_mut(r, 12).hmac = Bytes::from(vec![0u8; 32])), "hmac_mismatch", 12),
        (
            "deleted",
            Box::new(|r| {
                let i = entry_pos(r, 20);
                r.remove(i);
            }),
            "seq_mismatch",
            20,
        ),
        (
            "swapped",
            Box::new(|r| {
                let (a, b) = (entry_pos(r, 3), entry_pos(r, 4));
                r.swap(a, b);
            }),
            "seq_mismatch",
            3,
        ),
        (
            "truncated",
            Box::new(|r| {
                let i = entry_pos(r, 25);
                r.truncate(i);
            }),
            "truncated",
            25,
        ),
        (
            "leaf",
            Box::new(|r| {
                let e = entry_mut(r, 9);
                let mut l = ledger::leaf::decode_leaf(&e.leaf).unwrap();
                l.actor = "someone-else".into();
                e.leaf = Bytes::from(ledger::leaf::encode_leaf(&l));
            }),
            "hmac_mismatch",
            9,
        ),
        (
            "checkpoint",
            Box::new(|r| {
                let i = r.iter().position(|x| matches!(x, Decoded::Checkpoint(_))).unwrap();
                let stranger = ledger::note::NoteSigner::from_seed("ledger.local/default", &[3u8; 32]).unwrap();
                let Decoded::Checkpoint(n) = &r[i] else { unreachable!() };
                let body = ledger::note::Note::parse(n).unwrap().text;
                r[i] = Decoded::Checkpoint(ledger::note::sign_note(&body, &[&stranger]));
            }),
            "checkpoint_untrusted",
            10,
        ),
    ];
    for (name, edit, kind, seq) in cases {
        let b = fx.tampered(name, edit);
        let r = fx.verify(&b);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        let rep = r.json();
        let f = &rep["findings"][0];
        assert_eq!((f["kind"].as_str(), f["seq"].as_u64()), (Some(kind), Some(seq)), "{name}: {}", rep["findings"]);
        let text =
            ledger("http://127.0.0.1:1", fx.path(), &["verify", &b, "--vkey", "vkeys", "--hmac-key", "hmac.json"]);
        assert_eq!(text.code, 1);
        assert!(text.stdout.contains(&format!("{kind} seq {seq}")), "{name}: {}", text.stdout);
    }
}

#[test]
fn an_export_from_a_seq_verifies_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let cfg = w.join("small.toml");
    std::fs::write(&cfg, "segment_bytes = 4096\ncheckpoint_interval = 10\n").unwrap();
    let d = Ledgerd::start(&w.join("data"), &["--config", cfg.to_str().unwrap()]);
    for i in 0..120 {
        ok(ledger(
            &d.url,
            w,
            &[
                "append",
                "--category",
                "alert_ack",
                "--subject",
                &format!("INC-{}", i % 3),
                "--field",
                &format!("n={i}"),
            ],
        ));
    }
    let vk = ok(ledger(&d.url, w, &["keys", "public"]));
    std::fs::write(w.join("vkeys"), vk.stdout).unwrap();
    ok(ledger(&d.url, w, &["export", "--out", "part", "--from", "60"]));
    assert!(w.join("part/start.json").is_file());
    let rep = ok(ledger(&d.url, w, &["verify", "part", "--vkey", "vkeys", "--output", "json"])).json();
    let first = rep["first_seq"].as_u64().unwrap();
    assert!(first > 0 && first <= 60, "starts at the segment holding seq 60: {first}");
    assert_eq!(rep["tree_size"].as_u64(), Some(120));
    assert_eq!(rep["entries"].as_u64(), Some(120 - first));
}

#[test]
fn verifying_a_stopped_servers_log_directory_works_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Ledgerd::start(&dir.path().join("data"), &[]);
    for i in 0..5 {
        ok(ledger(&d.url, dir.path(), &["append", "--category", "alert_ack", "--field", &format!("n={i}")]));
    }
    let vk = ok(ledger(&d.url, dir.path(), &["keys", "public"]));
    std::fs::write(dir.path().join("vkeys"), vk.stdout).unwrap();
    assert_eq!(d.stop(), Some(0));
    let log = d.log_dir();
    let r = ok(ledger(
        "http://127.0.0.1:1",
        dir.path(),
        &["verify", log.to_str().unwrap(), "--vkey", "vkeys", "--output", "json"],
    ));
    let rep = r.json();
    assert_eq!(
        (rep["entries"].as_u64(), rep["checkpoints"].as_u64()),
        (Some(5), Some(1)),
        "the final checkpoint was written at SIGTERM"
    );
    assert!(d.logs().iter().any(|l| l.contains("log closed with a final checkpoint")));
}

#[test]
fn errors_are_one_line_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let r = ledger("http://127.0.0.1:1", w, &["checkpoint"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.starts_with("error: cannot reach ledgerd at http://127.0.0.1:1")
            && r.stderr.trim().lines().count() == 1,
        "{}",
        r.stderr
    );
    let d = Ledgerd::start(&w.join("data"), &[]);
    let r = ledger(&d.url, w, &["append", "--category", "Bad Cat"]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stderr.trim().lines().count(), 1);
    assert!(r.stderr.contains("invalid argument: invalid category"), "{}", r.stderr);
    let r = ledger(&d.url, w, &["append", "--category", "stage5_incident", "--field", "tco_kpi=1"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("failed precondition") && r.stderr.contains("decision_path, rotation_event_id"),
        "{}",
        r.stderr
    );
    let r = ledger(&d.url, w, &["append", "--category", "alert_ack", "--field", "novalue"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("expected K=V"), "{}", r.stderr);
    let r = ledger(&d.url, w, &["verify", "no/such/dir", "--vkey", "x"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = ledger(&d.url, w, &["get", "5"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("not found: entry 5 does not exist"), "{}", r.stderr);
    let r = ledger(&d.url, w, &["frobnicate"]);
    assert_eq!(r.code, 2);
    let r = ok(ledger(&d.url, w, &["completions", "bash"]));
    assert!(r.stdout.contains("ledger") && r.stdout.contains("verify-proof"));
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn a_second_ledgerd_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _d = Ledgerd::start(&dir.path().join("data"), &[]);
    let out = std::process::Command::new(ledger_e2e::bin_dir().join("ledgerd"))
        .args([
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another ledgerd"), "{err}");
}

#[test]
fn tail_follows_new_entries_and_ctrl_c_exits_zero() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    ok(ledger(&d.url, w, &["append", "--category", "alert_ack", "--field", "n=0"]));
    let mut child = std::process::Command::new(ledger_e2e::bin_dir().join("ledger"))
        .args(["tail", "--from", "0", "--output", "json", "--subject", "INC-5"])
        .env("LEDGER_SERVER", &d.url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in 1..=6 {
        let subject = if i % 2 == 0 { "INC-5" } else { "INC-6" };
        ok(ledger(
            &d.url,
            w,
            &["append", "--category", "alert_ack", "--subject", subject, "--field", &format!("n={i}")],
        ));
    }
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let seqs: Vec<u64> = (0..3)
        .map(|_| {
            serde_json::from_str::<serde_json::Value>(&lines.next().unwrap().unwrap()).unwrap()["seq"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![2, 4, 6]);
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn artifacts_get_and_verify_report_missing_altered_and_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    std::fs::create_dir_all(w.join("training")).unwrap();
    std::fs::write(w.join("training/slides.pdf"), b"%PDF slides").unwrap();
    std::fs::write(w.join("training/notes.txt"), b"notes").unwrap();
    let a =
        ok(ledger(&d.url, w, &["artifact", "add", "training/slides.pdf", "--subject", "TRN-1", "--output", "json"]))
            .json();
    let b = ok(ledger(&d.url, w, &["artifact", "add", "training/notes.txt", "--output", "json"])).json();
    let hash = a["blake3"].as_str().unwrap();
    ok(ledger(&d.url, w, &["artifact", "get", hash, "-o", "copy.pdf"]));
    assert_eq!(std::fs::read(w.join("copy.pdf")).unwrap(), b"%PDF slides");
    ok(ledger(&d.url, w, &["artifact", "verify", "training"]));
    std::fs::remove_file(w.join("training/notes.txt")).unwrap();
    std::fs::write(w.join("training/extra.bin"), b"not registered").unwrap();
    let r = ledger(&d.url, w, &["artifact", "verify", "training", "--output", "json"]);
    assert_eq!(r.code, 1);
    let rep = r.json();
    assert_eq!(rep["results"]["missing"][0]["blake3"], b["blake3"]);
    assert!(rep["results"]["unknown"][0]["path"].as_str().unwrap().ends_with("extra.bin"));
    // A blob altered in the server's store is refused on download.
    let blob = d.log_dir().join("artifacts").join(&hash[..2]).join(hash);
    std::fs::write(&blob, b"%PDF forged").unwrap();
    let r = ledger(&d.url, w, &["artifact", "get", hash, "-o", "again.pdf"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("data loss") && r.stderr.contains("altered"), "{}", r.stderr);
    assert!(!w.join("again.pdf").exists());
    // And the compliance check fails on it.
    let r = ledger(&d.url, w, &["compliance", "check", "--output", "json"]);
    assert_eq!(r.code, 1);
    let checks = r.json()["checks"].as_array().unwrap().clone();
    let art = checks.iter().find(|c| c["check"] == "artifacts").unwrap();
    assert_eq!(art["verdict"], "fail");
    assert!(art["detail"].as_str().unwrap().contains("slides.pdf"));
}

#[test]
fn malformed_files_given_to_the_cli_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    ok(ledger(&d.url, w, &["append", "--category", "alert_ack", "--field", "n=1", "--proof-out", "good.tlog-proof"]));
    std::fs::write(w.join("vkeys"), ok(ledger(&d.url, w, &["keys", "public"])).stdout).unwrap();
    ok(ledger(&d.url, w, &["export", "--out", "b"]));
    let good = std::fs::read_to_string(w.join("good.tlog-proof")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(w.join(name), text).unwrap();
    write("garbage.tlog-proof", "hello\n");
    write("badindex.tlog-proof", &good.replace("index 0", "index 01"));
    write("otherindex.tlog-proof", &good.replace("index 0", "index 3"));
    write("badsig.tlog-proof", &good.replacen("— ledger.local/default ", "— ledger.local/default AAAA", 1));
    write("bad.vkey", "not a key\n");
    write("bad-hmac.json", "{\"version\":1,");
    write("bad.checkpoint", "ledger.local/default\n1\n");
    write("array.json", "[1,2]");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["verify-proof", "garbage.tlog-proof", "--vkey", "vkeys"], 2, "malformed tlog-proof"),
        (
            vec!["verify-proof", "badindex.tlog-proof", "--vkey", "vkeys"],
            2,
            "index is not a decimal without leading zeros",
        ),
        (vec!["verify-proof", "otherindex.tlog-proof", "--vkey", "vkeys"], 1, "differs from index 3"),
        (vec!["verify-proof", "badsig.tlog-proof", "--vkey", "vkeys"], 1, "INVALID"),
        (vec!["verify-proof", "good.tlog-proof", "--vkey", "bad.vkey"], 2, "bad.vkey line 1"),
        (vec!["verify-proof", "missing.tlog-proof", "--vkey", "vkeys"], 2, "missing.tlog-proof"),
        (vec!["verify", "b", "--vkey", "vkeys", "--hmac-key", "bad-hmac.json"], 2, "not an HMAC key file"),
        (
            vec!["verify", "b", "--vkey", "vkeys", "--trusted-checkpoint", "bad.checkpoint"],
            1,
            "the trusted checkpoint does not verify",
        ),
        (vec!["append", "--category", "alert_ack", "--json", "array.json"], 2, "must be a JSON object"),
        (vec!["append", "--category", "alert_ack", "--occurred-at", "yesterday-ish"], 2, "--occurred-at"),
        (vec!["query", "--since", "last tuesday"], 2, "--since"),
        (vec!["artifact", "get", "abc", "-o", "x"], 2, "expected a BLAKE3 hash in hex"),
        (vec!["--server", "not a url", "checkpoint"], 2, "invalid --server"),
    ];
    for (args, code, msg) in cases {
        let r = ledger(&d.url, w, &args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{args:?}: {:?} lacks {msg:?}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: one line: {}", r.stderr);
    }
    ok(ledger(&d.url, w, &["verify-proof", "good.tlog-proof", "--vkey", "vkeys"]));
}

#[test]
fn the_compliance_check_warns_about_payloads_written_before_rule_2() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let mut d = Ledgerd::start(&w.join("data"), &[]);
    for n in 0..3 {
        ok(ledger(&d.url, w, &["append", "--category", "alert_ack", "--field", &format!("n={n}")]));
    }
    let clean = ledger(&d.url, w, &["compliance", "check", "--output", "json"]).json();
    let verifies = |r: &serde_json::Value| {
        r["checks"].as_array().unwrap().iter().find(|c| c["check"] == "log verifies").unwrap().clone()
    };
    assert_eq!(verifies(&clean)["verdict"], "pass");
    assert_eq!(d.stop(), Some(0));
    // The log as a writer before payload rule 2 left it; the index is rebuilt from it.
    prerule::rewrite_as_rule_1(&d.log_dir(), &[(1, br#"{"accepted":true,"accepted":false}"#)]);
    std::fs::remove_dir_all(ledger::layout::index(&d.log_dir())).unwrap();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let r = ledger(&d.url, w, &["compliance", "check", "--output", "json"]);
    assert_eq!(r.code, 0, "a warning does not fail the check: {r:?}");
    let check = verifies(&r.json());
    assert_eq!(check["verdict"], "warn", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 warnings")
            && detail.contains("payload_not_ijson at seq 1: payload.accepted: duplicate member name"),
        "{detail}"
    );
}
