//! Incidents end to end (issue 18): a real ledgerd, entries written with
//! `ledger append`, then `ledger incident show` (milestones, clocks,
//! findings), `ledger incident pack` and `ledger verify-pack` (clean, then
//! each damage to a copy of the pack named by its kind and seq).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_e2e::{Ledgerd, Run, ledger};
use serde_json::{Value, json};

const T0: &str = "2026-12-01T10:00:00Z";
const T0_NS: i64 = 1_796_119_200_000_000_000;

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r
}

fn at(minutes: i64) -> String {
    format!("2026-12-01T10:{minutes:02}:00Z")
}

/// A ledgerd holding incidents INC-7 (alert, late ack with escalation, L2,
/// two degraded evaluations of which one approved, an override, resolved,
/// two attachments of which one lost by the store) and INC-9 (late ack,
/// no escalation), among other subjects.
struct Fixture {
    dir: tempfile::TempDir,
    d: Ledgerd,
    seqs: std::collections::BTreeMap<&'static str, u64>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ledgerd.toml");
        std::fs::write(&cfg, "checkpoint_interval = 4\n[policy]\nallow_undeclared = true\ncategories = {}\n").unwrap();
        let data = dir.path().join("data");
        let d = Ledgerd::start(&data, &["--config", cfg.to_str().unwrap()]);
        std::fs::write(dir.path().join("evidence.txt"), "latency graph, 10:05\n").unwrap();
        std::fs::write(dir.path().join("lost.txt"), "a file the store will lose\n").unwrap();
        let mut fx = Self { dir, d, seqs: Default::default() };
        fx.write_entries();
        let vk = ok(fx.run(&["keys", "public"]));
        std::fs::write(fx.path().join("vkeys"), vk.stdout).unwrap();
        fx
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        ledger(&self.d.url, self.path(), args)
    }

    /// Appends; returns the seq.
    fn append(&mut self, name: &'static str, category: &str, subject: &str, extra: &[&str]) -> u64 {
        let mut args = vec!["append", "--category", category, "--subject", subject, "--output", "json"];
        args.extend_from_slice(extra);
        let seq = ok(self.run(&args)).json()["seq"].as_u64().unwrap();
        if !name.is_empty() {
            self.seqs.insert(name, seq);
        }
        seq
    }

    fn write_entries(&mut self) {
        let f = |k: &str| format!("--field={k}");
        self.append("", "stage4_incident", "INC-8", &["--field", "step=L1.1"]);
        self.append(
            "fired",
            "alert_fired",
            "INC-7",
            &[&f("fingerprint=fp1"), &f("alertname=HighLatency"), "--occurred-at", T0],
        );
        let other =
            self.append("other_alert", "alert_fired", "HighLatency/fp2", &[&f("fingerprint=fp2"), "--occurred-at", T0]);
        let early = ok(self.run(&["checkpoint"])).stdout;
        std::fs::write(self.path().join("early.cp"), early).unwrap();
        self.append(
            "ack",
            "alert_ack",
            "INC-7",
            &[&f("alert_seq=1"), &f("status=acknowledged"), "--occurred-at", &at(7)],
        );
        self.append("ack2", "alert_ack", "INC-7", &[&f(&format!("alert_seq={other}")), "--occurred-at", &at(8)]);
        self.append("", "stage4_incident", "INC-8", &["--field", "step=L1.2"]);
        self.append(
            "escalated",
            "stage4_incident",
            "INC-7",
            &[&f("step=L1.3"), &f("escalated_to=l2-oncall"), "--occurred-at", &at(9)],
        );
        self.append(
            "l2",
            "stage4_incident",
            "INC-7",
            &[&f("step=L2.1"), "--occurred-at", &at(15), "--attach", "evidence.txt"],
        );
        self.append(
            "lost",
            "stage4_incident",
            "INC-7",
            &[&f("step=L2.2"), "--occurred-at", &at(16), "--attach", "lost.txt"],
        );
        let deg = [f("model=m1"), f("accepted=false"), f(r#"reasons=["ai_degraded"]"#)];
        let deg: Vec<&str> = deg.iter().map(String::as_str).collect();
        self.append(
            "eval_unapproved",
            "decision_evaluation",
            "INC-7",
            &[&deg[..], &["--occurred-at", &at(17)]].concat(),
        );
        let approved = self.append(
            "eval_approved",
            "decision_evaluation",
            "INC-7",
            &[&deg[..], &["--occurred-at", &at(18)]].concat(),
        );
        // a risk officer's approval (someone other than the evaluation's writer), kept on its own subject
        let leaf = ok(self.run(&["get", &approved.to_string(), "--output", "json"])).json()["leaf_hash"].clone();
        let leaf = f(&format!("approved_leaf_hash={}", leaf.as_str().unwrap()));
        let approval =
            [f(&format!("approved_seq={approved}")), leaf, f("reason=inputs checked"), f("role=risk_officer")];
        let approval: Vec<&str> = approval.iter().map(String::as_str).collect();
        self.append("", "approval", "CHG-1", &[&approval[..], &["--actor", "risk-1"]].concat());
        self.append(
            "override",
            "override",
            "INC-7",
            &[&f("component=router"), &f("reason=manual failover"), "--occurred-at", &at(20)],
        );
        self.append(
            "resolved",
            "alert_resolved",
            "INC-7",
            &[&f("fingerprint=fp1"), &f("status=resolved"), "--occurred-at", &at(30)],
        );
        let fired9 = self.append("fired9", "alert_fired", "INC-9", &[&f("fingerprint=fp9"), "--occurred-at", T0]);
        self.append("ack9", "alert_ack", "INC-9", &[&f(&format!("alert_seq={fired9}")), "--occurred-at", &at(10)]);
        self.lose_artifact("lost.txt");
    }

    /// Removes an uploaded file's blob from ledgerd's artifact store.
    fn lose_artifact(&self, file: &str) {
        let b3 = blake3_hex(&std::fs::read(self.path().join(file)).unwrap());
        let blob = self.d.log_dir().join("artifacts").join(&b3[..2]).join(&b3);
        std::fs::remove_file(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    }

    fn seq(&self, name: &str) -> u64 {
        self.seqs[name]
    }

    fn verify_pack(&self, dir: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["verify-pack", dir.to_str().unwrap(), "--vkey", "vkeys", "--output", "json"];
        args.extend_from_slice(extra);
        ledger("http://127.0.0.1:1", self.path(), &args)
    }
}

/// BLAKE3 through the ledger crate's artifact hasher.
fn blake3_hex(b: &[u8]) -> String {
    hex::encode(ledger::artifacts::hash_reader(&mut &b[..]).unwrap().blake3)
}

fn finding_pairs(rep: &Value) -> Vec<(String, Option<u64>)> {
    rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_owned(), f["seq"].as_u64()))
        .collect()
}

#[test]
fn show_names_milestones_clocks_and_findings() {
    let fx = Fixture::new();
    let t = ok(fx.run(&["incident", "show", "INC-7", "--output", "json"])).json();
    assert_eq!(t["subject"], "INC-7");
    let seqs: Vec<u64> = t["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    // 10 appends and the two `artifact` entries of the uploads (`--attach`: subject INC-7)
    assert_eq!(seqs.len(), 12, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(t["entries"][0]["actor"], "e2e-tester");
    assert_eq!(t["entries"][0]["occurred_at"], T0_NS);
    let m = &t["milestones"];
    for (name, key) in [
        ("alert_fired", "fired"),
        ("acknowledged", "ack"),
        ("escalated", "escalated"),
        ("l2_confirmed", "l2"),
        ("override", "override"),
        ("resolved", "resolved"),
    ] {
        assert_eq!(m[name]["seq"].as_u64(), Some(fx.seq(key)), "{name}: {m}");
    }
    assert_eq!(m["alert_fired"]["at"], T0_NS);
    assert_eq!(t["durations"], json!({"time_to_ack": 420.0, "time_to_escalate": 540.0, "time_to_l2": 900.0}));
    assert_eq!(
        finding_pairs(&t),
        [
            ("ai_degraded_unapproved".to_owned(), Some(fx.seq("eval_unapproved"))),
            // named at the first entry referencing it: the upload's own `artifact` entry, just before
            ("missing_artifact".to_owned(), Some(fx.seq("lost") - 1))
        ]
    );
    let t9 = ok(fx.run(&["incident", "show", "INC-9", "--output", "json"])).json();
    assert_eq!(finding_pairs(&t9), [("late_ack_without_escalation".to_owned(), Some(fx.seq("ack9")))]);
    assert_eq!(t9["durations"]["time_to_escalate"], Value::Null);
    assert_eq!(t9["milestones"]["escalated"], Value::Null);
    let text = ok(fx.run(&["incident", "show", "INC-9"])).stdout;
    assert!(text.contains(&format!("late_ack_without_escalation seq {}", fx.seq("ack9"))), "{text}");
    let none = fx.run(&["incident", "show", "INC-404"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("INC-404"), "{}", none.stderr);
}

#[test]
fn show_as_of_reads_a_kept_checkpoint() {
    let fx = Fixture::new();
    // checkpoint_interval 4: a kept checkpoint every few entries; take the
    // first kept size that already holds the ack but not the escalation
    let (lo, hi) = (fx.seq("ack") + 1, fx.seq("escalated"));
    let t = (lo..=hi)
        .map(|s| fx.run(&["incident", "show", "INC-7", "--as-of", &s.to_string(), "--output", "json"]))
        .find(|r| r.code == 0)
        .unwrap_or_else(|| panic!("no kept checkpoint of size {lo}..={hi}"))
        .json();
    let size = t["as_of"]["size"].as_u64().unwrap();
    assert!(t["entries"].as_array().unwrap().iter().all(|e| e["seq"].as_u64().unwrap() < size));
    assert_eq!(t["milestones"]["acknowledged"]["seq"].as_u64(), Some(fx.seq("ack")));
    assert_eq!(t["milestones"]["escalated"], Value::Null);
    assert_eq!(t["as_of"]["root"].as_str().unwrap().len(), 64);
    let bad = fx.run(&["incident", "show", "INC-7", "--as-of", "0"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--as-of"), "{}", bad.stderr);
}

/// Copies a pack directory.
fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("artifacts")).unwrap();
    for e in std::fs::read_dir(from).unwrap().chain(std::fs::read_dir(from.join("artifacts")).unwrap()) {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let rel = e.path().strip_prefix(from).unwrap().to_owned();
            std::fs::copy(e.path(), to.join(rel)).unwrap();
        }
    }
}

fn read_lines(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Writes the entry lines back and re-seals pack.json (digests, counts), as
/// someone who edits a pack would.
fn write_lines(dir: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("entries.jsonl"), text).unwrap();
    let mut m: Value = serde_json::from_slice(&std::fs::read(dir.join("pack.json")).unwrap()).unwrap();
    m["entries"] = lines.len().into();
    m["subject_entries"] = lines.iter().filter(|l| l["role"] == "subject").count().into();
    std::fs::write(dir.join("pack.json"), m.to_string()).unwrap();
    reseal(dir);
}

fn reseal(dir: &Path) {
    let mut m: Value = serde_json::from_slice(&std::fs::read(dir.join("pack.json")).unwrap()).unwrap();
    let names: Vec<String> = m["files"].as_object().unwrap().keys().cloned().collect();
    for n in names {
        let b = std::fs::read(dir.join(&n)).unwrap();
        m["files"][&n] = json!({"sha256": hex::encode(ledger::hash::sha256(&b)), "size": b.len()});
    }
    std::fs::write(dir.join("pack.json"), m.to_string()).unwrap();
}

fn line_of(lines: &[Value], seq: u64) -> usize {
    lines.iter().position(|l| l["seq"].as_u64() == Some(seq)).unwrap()
}

type Damage = Box<dyn Fn(&Path)>;

#[test]
fn pack_verifies_offline_and_each_damage_is_named() {
    let fx = Fixture::new();
    let r = ok(fx.run(&[
        "incident",
        "pack",
        "INC-7",
        "--out",
        "pack",
        "--trusted-checkpoint",
        "early.cp",
        "--output",
        "json",
    ]));
    let summary = r.json();
    assert_eq!((summary["entries"].as_u64(), summary["subject_entries"].as_u64()), (Some(13), Some(12)), "{summary}");
    let pack = fx.path().join("pack");
    let rep = ok(fx.verify_pack(&pack, &[])).json();
    assert_eq!(rep["ok"], true, "{rep}");
    assert_eq!((rep["entries"].as_u64(), rep["artifacts_checked"].as_u64()), (Some(13), Some(1)));
    assert_eq!(rep["artifacts_omitted"].as_array().unwrap().len(), 1, "the lost artifact by hash only");
    assert!(rep["trusted_size"].as_u64().unwrap() > 0);
    let report: Value = serde_json::from_slice(&std::fs::read(pack.join("report.json")).unwrap()).unwrap();
    let shown =
        ok(fx.run(&["incident", "show", "INC-7", "--as-of", &rep["tree_size"].to_string(), "--output", "json"]));
    assert_eq!(report, shown.json(), "report.json is `incident show` at the pack's checkpoint");
    let html = std::fs::read_to_string(pack.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("l2_confirmed") && !html.contains("src=\"http"));
    assert!(
        std::fs::read_to_string(pack.join("entries.csv"))
            .unwrap()
            .starts_with("seq,recorded_at,occurred_at,category,actor")
    );
    std::fs::copy(ledger::layout::keyring(&fx.d.log_dir()), fx.path().join("hmac.json")).unwrap();
    let with_tags = ok(fx.verify_pack(&pack, &["--hmac-key", "hmac.json"])).json();
    assert_eq!(with_tags["hmac_checked"].as_u64(), Some(13), "{with_tags}");
    let text = ledger("http://127.0.0.1:1", fx.path(), &["verify-pack", "pack", "--vkey", "vkeys"]);
    assert!(text.code == 0 && text.stdout.starts_with("VALID"), "{}", text.stdout);

    let tree_size = rep["tree_size"].as_u64().unwrap();
    let (escalated, l2) = (fx.seq("escalated"), fx.seq("l2"));
    let cases: Vec<(&str, Damage, &str, u64)> = vec![
        (
            "payload",
            Box::new(move |d| {
                let mut lines = read_lines(d);
                let i = line_of(&lines, escalated);
                let mut p = B64.decode(lines[i]["payload"].as_str().unwrap()).unwrap();
                let at = p.iter().position(|b| *b == b'3').unwrap();
                p[at] = b'4';
                lines[i]["payload"] = B64.encode(p).into();
                write_lines(d, &lines);
            }),
            "payload_mismatch",
            escalated,
        ),
        (
            "removed",
            Box::new(move |d| {
                let mut lines = read_lines(d);
                lines.remove(line_of(&lines, escalated));
                write_lines(d, &lines);
            }),
            "subject_chain_broken",
            l2 - 1,
        ),
        (
            "leaf",
            Box::new(move |d| {
                let mut lines = read_lines(d);
                let i = line_of(&lines, escalated);
                let mut leaf = B64.decode(lines[i]["leaf"].as_str().unwrap()).unwrap();
                let at = leaf.windows(10).position(|w| w == b"e2e-tester").unwrap();
                leaf[at] = b'E';
                lines[i]["leaf"] = B64.encode(leaf).into();
                write_lines(d, &lines);
            }),
            "inclusion_failed",
            escalated,
        ),
        (
            "signature",
            Box::new(|d| {
                let note = std::fs::read_to_string(d.join("checkpoint")).unwrap();
                let early = std::fs::read_to_string(d.join("trusted-checkpoint")).unwrap();
                let sig = |n: &str| n.lines().find(|l| l.starts_with('\u{2014}')).unwrap().to_owned();
                std::fs::write(d.join("checkpoint"), note.replace(&sig(&note), &sig(&early))).unwrap();
                reseal(d);
            }),
            "checkpoint_untrusted",
            tree_size,
        ),
        (
            "artifact",
            Box::new(|d| {
                let art = std::fs::read_dir(d.join("artifacts")).unwrap().next().unwrap().unwrap().path();
                std::fs::write(art, "latency graph, 10:06\n").unwrap();
            }),
            "artifact_mismatch",
            l2 - 1,
        ),
    ];
    for (name, damage, kind, seq) in cases {
        let dir: PathBuf = fx.path().join(format!("pack-{name}"));
        copy(&pack, &dir);
        damage(&dir);
        let r = fx.verify_pack(&dir, &[]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert_eq!(finding_pairs(&r.json()), [(kind.to_owned(), Some(seq))], "{name}");
    }
    // an edit without re-sealing the manifest
    let dir = fx.path().join("pack-stale");
    copy(&pack, &dir);
    std::fs::write(dir.join("README.txt"), "edited").unwrap();
    assert_eq!(finding_pairs(&fx.verify_pack(&dir, &[]).json()), [("manifest_mismatch".to_owned(), None)]);
    assert_eq!(fx.verify_pack(&fx.path().join("nothing-here"), &[]).code, 2);
}

#[test]
fn a_trusted_checkpoint_of_a_forked_log_fails_consistency() {
    let fx = Fixture::new();
    // a second log with the same keys (a copied keyring) and another history
    let data = fx.path().join("fork");
    let keyring = ledger::layout::keyring(&fx.d.log_dir());
    let to = ledger::layout::keyring(&ledger::layout::log_dir(&data, "default"));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(&keyring, &to).unwrap();
    let fork = Ledgerd::start(&data, &[]);
    for i in 0..3 {
        ok(ledger(
            &fork.url,
            fx.path(),
            &["append", "--category", "stage4_incident", "--subject", "X", "--field", &format!("i={i}")],
        ));
    }
    std::fs::write(fx.path().join("fork.cp"), ok(ledger(&fork.url, fx.path(), &["checkpoint"])).stdout).unwrap();
    ok(fx.run(&["incident", "pack", "INC-7", "--out", "forked", "--trusted-checkpoint", "fork.cp"]));
    let r = fx.verify_pack(&fx.path().join("forked"), &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(finding_pairs(&r.json()), [("split_view".to_owned(), Some(3))]);
    // the same checkpoint given to verify-pack against a clean pack
    ok(fx.run(&["incident", "pack", "INC-7", "--out", "clean"]));
    let r = fx.verify_pack(&fx.path().join("clean"), &["--trusted-checkpoint", "fork.cp"]);
    assert_eq!(finding_pairs(&r.json()), [("split_view".to_owned(), Some(3))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_proofs_lead_to_the_tree_asked_for() {
    use ledger_proto::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    let d = Ledgerd::start(&dir.path().join("data"), &[]);
    for i in 0..6 {
        let subject = if i % 2 == 0 { "INC-1" } else { "INC-2" };
        let field = format!("i={i}");
        ok(ledger(
            &d.url,
            dir.path(),
            &["append", "--category", "stage4_incident", "--subject", subject, "--field", &field],
        ));
    }
    let mut c = pb::ledger_service_client::LedgerServiceClient::connect(d.url.clone()).await.unwrap();
    let cons = pb::ProveConsistencyRequest { log: "default".into(), old_size: 4, new_size: 0 };
    let root4: [u8; 32] = c.prove_consistency(cons).await.unwrap().into_inner().old_root.try_into().unwrap();
    let query = |proof_tree_size| pb::QueryRequest {
        log: "default".into(),
        filter: Some(pb::Filter { subject: "INC-1".into(), ..Default::default() }),
        proof_tree_size,
        ..Default::default()
    };
    let mut entries = Vec::new();
    let mut st = c.query(query(4)).await.unwrap().into_inner();
    while let Some(m) = st.message().await.unwrap() {
        if let Some(pb::query_response::Item::Entry(e)) = m.item {
            entries.push(e);
        }
    }
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 2], "only entries below the proofs' tree");
    for e in &entries {
        let proof: Vec<[u8; 32]> = e.proof.iter().map(|p| p.as_slice().try_into().unwrap()).collect();
        let leaf = ledger::hash::leaf_hash(&e.leaf);
        ledger::merkle::verify_inclusion(e.seq, 4, &leaf, &proof, &root4)
            .unwrap_or_else(|x| panic!("seq {}: {x}", e.seq));
    }
    let mut st = c.query(query(0)).await.unwrap().into_inner();
    while let Some(m) = st.message().await.unwrap() {
        assert!(
            !matches!(m.item, Some(pb::query_response::Item::Entry(e)) if !e.proof.is_empty()),
            "no proofs unless asked"
        );
    }
    let beyond = c.query(query(7)).await.map(drop).unwrap_err();
    assert_eq!(beyond.code(), tonic::Code::OutOfRange, "{beyond}");
}
