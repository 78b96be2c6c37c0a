//! ledgerd as a c2sp.org/tlog-witness (docs/FORMAT.md §13), for real: one
//! ledgerd is the log, another its witness. The witness cosigns the log's
//! checkpoints in order (cosignature/v1 lines that verify under its vkey),
//! answers every status of the spec (409 with `text/x.tlog.size`, 404, 403,
//! 400, 422), keeps its state across a restart; and a fork of the log signed
//! with a copied keyring (a split view) is refused, while `ledger verify`
//! of the fork's export names the split against the cosigned checkpoint.
//! A log with two ledgerd witnesses (and one whose vkey is wrong) gets its
//! checkpoints cosigned; checkpoints, `get --proof` receipts and exports
//! carry the lines, and `verify-proof` / `verify` count them to a quorum
//! (the log's `witness_quorum` policy too). Two ledgerds witness each other.

use std::io::{Read as _, Write as _};
use std::path::Path;

use ledger::cosign::CosignatureVerifier;
use ledger::witness::AddCheckpoint;
use ledger_e2e::{Ledgerd, ledger};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

async fn append(url: &str, from: usize, n: usize) {
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    for i in from..from + n {
        let entry = pb::EntryInput {
            category: "stage4_incident".into(),
            subject: "INC-1".into(),
            payload: format!(r#"{{"step":{i}}}"#).into_bytes(),
            ..Default::default()
        };
        c.append(pb::AppendRequest { log: "default".into(), entry: Some(entry), actor: "svc".into() }).await.unwrap();
    }
}

/// (checkpoint note, consistency proof from `old`) of the log at `url`.
async fn checkpoint(url: &str, old: u64) -> (String, Vec<[u8; 32]>) {
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    let note = c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await.unwrap();
    let note = note.into_inner().note;
    if old == 0 {
        return (note, vec![]);
    }
    let p = c.prove_consistency(pb::ProveConsistencyRequest { log: "default".into(), old_size: old, new_size: 0 });
    let p = p.await.unwrap().into_inner();
    (note, p.proof.into_iter().map(|h| h.try_into().unwrap()).collect())
}

/// One raw HTTP request: (status code, content type, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut c = std::net::TcpStream::connect(addr.trim_start_matches("http://")).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let code = head[9..12].parse().unwrap();
    let ctype = head.lines().find_map(|l| l.to_lowercase().strip_prefix("content-type: ").map(str::to_owned));
    (code, ctype.unwrap_or_default(), body.to_owned())
}

fn add(w: &Ledgerd, old: u64, proof: Vec<[u8; 32]>, note: &str) -> (u16, String, String) {
    let body = AddCheckpoint { old, proof, note: note.to_owned() }.encode();
    http(&w.http, "POST", "/witness/add-checkpoint", &body)
}

fn witness_config(dir: &Path, vkey: &str) -> std::path::PathBuf {
    let path = dir.join("witness.toml");
    let text = format!(
        "origin_prefix = \"witness.local\"\n[witness]\nname = \"witness.test/w1\"\n\n[[witness.logs]]\norigin = \"ledger.local/default\"\nvkeys = [\"{vkey}\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledgerd_witness_cosigns_in_order_answers_every_status_and_refuses_a_split_view() {
    let dir = tempfile::tempdir().unwrap();
    let log = Ledgerd::start(&dir.path().join("log"), &[]);
    append(&log.url, 0, 10).await;
    let vkey = ledger(&log.url, dir.path(), &["keys", "public"]).stdout.trim().to_owned();
    let cfg = witness_config(dir.path(), &vkey);
    let mut w = Ledgerd::start(&dir.path().join("witness"), &["--config", cfg.to_str().unwrap()]);
    let (_, _, wvkey) = http(&w.http, "GET", "/witness/vkey", "");
    let cosigner = CosignatureVerifier::from_vkey(wvkey.trim()).unwrap();

    // the first checkpoint from size 0, cosigned
    let (cp10, _) = checkpoint(&log.url, 0).await;
    let (code, _, line) = add(&w, 0, vec![], &cp10);
    assert_eq!(code, 200, "{line}");
    let body = ledger::cosign::split_note(&cp10).unwrap().0;
    assert!(cosigner.verify_line(body, &line).is_some(), "{line}");
    // a stale old size: 409 with the witness's size
    let (code, ctype, size) = add(&w, 0, vec![], &cp10);
    assert_eq!((code, ctype.as_str(), size.as_str()), (409, "text/x.tlog.size", "10\n"));
    // the next one with its consistency proof
    append(&log.url, 10, 20).await;
    let (cp30, proof) = checkpoint(&log.url, 10).await;
    let (code, _, line) = add(&w, 10, proof.clone(), &cp30);
    assert_eq!(code, 200, "{line}");
    let cosigned30 = format!("{cp30}{line}");
    // 400: old size past the checkpoint, a malformed body
    assert_eq!(add(&w, 31, vec![], &cp30).0, 400);
    assert_eq!(http(&w.http, "POST", "/witness/add-checkpoint", "old x\n\n").0, 400);
    // 404: a log it does not witness (its own); 403: the right origin, another key
    let (own, _) = checkpoint(&w.url, 0).await;
    assert_eq!(add(&w, 0, vec![], &own).0, 404);
    let impostor = Ledgerd::start(&dir.path().join("impostor"), &[]);
    append(&impostor.url, 0, 31).await;
    let (forged, _) = checkpoint(&impostor.url, 0).await;
    assert_eq!(add(&w, 30, vec![], &forged).0, 403);

    // the state survives a restart
    w.stop();
    let w = Ledgerd::start(&dir.path().join("witness"), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(add(&w, 0, vec![], &cp10).2, "30\n");

    // a fork signed with a copied keyring: refused at the same size (409) and past it (422)
    let ring = |d: &str| ledger::layout::keyring(&ledger::layout::log_dir(&dir.path().join(d), "default"));
    std::fs::create_dir_all(ring("fork").parent().unwrap()).unwrap();
    std::fs::copy(ring("log"), ring("fork")).unwrap();
    let fork = Ledgerd::start(&dir.path().join("fork"), &[]);
    append(&fork.url, 100, 30).await;
    let (fork30, _) = checkpoint(&fork.url, 0).await;
    assert_ne!(fork30, cp30);
    let (code, ctype, size) = add(&w, 30, vec![], &fork30);
    assert_eq!((code, ctype.as_str(), size.as_str()), (409, "text/x.tlog.size", "30\n"), "same size, another root");
    append(&fork.url, 130, 10).await;
    let (fork40, fork_proof) = checkpoint(&fork.url, 30).await;
    assert_eq!(add(&w, 30, fork_proof, &fork40).0, 422, "no consistency with what the witness cosigned");
    assert!(w.logs().iter().any(|l| l.contains("may show log misbehaviour")));

    // the fork's own journal, checked against the cosigned checkpoint, names the split
    let export = dir.path().join("fork-export");
    let e = ledger(&fork.url, dir.path(), &["export", "--out", export.to_str().unwrap()]);
    assert_eq!(e.code, 0, "{}{}", e.stdout, e.stderr);
    let trusted = dir.path().join("cosigned30");
    std::fs::write(&trusted, &cosigned30).unwrap();
    let v = ledger(
        &fork.url,
        dir.path(),
        &["verify", export.to_str().unwrap(), "--trusted-checkpoint", trusted.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("split_view"), "{}", v.stdout);
}

/// The metrics page of `server`.
fn metrics(server: &Ledgerd) -> String {
    http(&server.http, "GET", "/metrics", "").2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_gets_its_checkpoints_cosigned_by_two_witnesses_and_receipts_carry_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let made = ledger("http://127.0.0.1:1", dir.path(), &["keys", "generate", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let log_vkey = made.stdout.lines().last().unwrap().trim().to_owned();
    let cfg = witness_config(dir.path(), &log_vkey);
    let w1 = Ledgerd::start(&dir.path().join("w1"), &["--config", cfg.to_str().unwrap()]);
    let cfg2 = dir.path().join("w2.toml");
    std::fs::write(&cfg2, std::fs::read_to_string(&cfg).unwrap().replace("witness.test/w1", "witness.test/w2"))
        .unwrap();
    let w2 = Ledgerd::start(&dir.path().join("w2"), &["--config", cfg2.to_str().unwrap()]);
    let (v1, v2) = (http(&w1.http, "GET", "/witness/vkey", "").2, http(&w2.http, "GET", "/witness/vkey", "").2);
    let bad = ledger::cosign::Cosigner::from_seed("witness.test/bad", &[5; 32]).unwrap().vkey();
    let mut text = "[[logs]]\nname = \"default\"\nwitness_quorum = 2\n".to_owned();
    for (name, vkey, at) in [
        ("witness.test/w1", v1.trim(), &w1.http),
        ("witness.test/w2", v2.trim(), &w2.http),
        ("witness.test/bad", &bad, &w1.http),
    ] {
        text += &format!("[[logs.witnesses]]\nname = \"{name}\"\nvkey = \"{vkey}\"\nurl = \"{at}/witness\"\n");
    }
    let log_cfg = dir.path().join("log.toml");
    std::fs::write(&log_cfg, text).unwrap();
    let log = Ledgerd::start(&data, &["--config", log_cfg.to_str().unwrap()]);
    append(&log.url, 0, 5).await;

    // both witnesses cosign the latest checkpoint (within seconds, bounded)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let note = loop {
        let (note, _) = checkpoint(&log.url, 0).await;
        if note.matches("witness.test/w").count() == 2 || std::time::Instant::now() > deadline {
            break note;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (body, lines) = ledger::cosign::split_note(&note).unwrap();
    for v in [&v1, &v2] {
        let v = CosignatureVerifier::from_vkey(v.trim()).unwrap();
        assert!(lines.iter().any(|l| v.verify_line(body, l).is_some()), "{} on {note}", v.name());
    }
    assert!(!note.contains("witness.test/bad"), "a line that does not verify is never kept");
    assert!(
        metrics(&log).contains(
            r#"ledger_witness_cosignatures_total{log="default",outcome="dropped",witness="witness.test/bad"}"#
        )
    );

    // a receipt from `get --proof` carries them; verify-proof counts them against a quorum
    let mut c = LedgerServiceClient::connect(log.url.clone()).await.unwrap();
    let got = c.get(pb::GetRequest { log: "default".into(), seq: 2, with_proof: true }).await.unwrap().into_inner();
    let proof_file = dir.path().join("e2.tlog-proof");
    std::fs::write(&proof_file, got.receipt.unwrap().tlog_proof).unwrap();
    let (vk, wk) = (dir.path().join("vkey"), dir.path().join("witnesses"));
    std::fs::write(&vk, &log_vkey).unwrap();
    std::fs::write(&wk, format!("{v1}{v2}")).unwrap();
    let (p, vks, wks) = (proof_file.to_str().unwrap(), vk.to_str().unwrap(), wk.to_str().unwrap());
    let ok =
        ledger(&log.url, dir.path(), &["verify-proof", p, "--vkey", vks, "--witness-vkey", wks, "--output", "json"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(ok.json()["cosigned_by"], serde_json::json!(["witness.test/w1", "witness.test/w2"]));
    let third = dir.path().join("third");
    std::fs::write(&third, &bad).unwrap();
    let short = ledger(
        &log.url,
        dir.path(),
        &["verify-proof", p, "--vkey", vks, "--witness-vkey", wks, "--witness-vkey", third.to_str().unwrap()],
    );
    assert_eq!(short.code, 1, "{}{}", short.stdout, short.stderr);
    assert!(
        short.stderr.contains("2 of the 3") && short.stderr.contains("missing: witness.test/bad"),
        "{}",
        short.stderr
    );

    // the log's policy (witness_quorum = 2 of its 3 witnesses) as a file, and in an export
    let policy = ledger(&log.url, dir.path(), &["keys", "witnesses"]);
    assert!(policy.stdout.starts_with("quorum 2\n") && policy.stdout.lines().count() == 4, "{}", policy.stdout);
    let pf = dir.path().join("policy.vkey");
    std::fs::write(&pf, &policy.stdout).unwrap();
    let ok = ledger(&log.url, dir.path(), &["verify-proof", p, "--vkey", vks, "--witness-vkey", pf.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "2 of the 3, as the policy says: {}{}", ok.stdout, ok.stderr);
    let export = dir.path().join("export");
    let e = ledger(&log.url, dir.path(), &["export", "--out", export.to_str().unwrap()]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert_eq!(std::fs::read_to_string(export.join("witnesses.vkey")).unwrap(), policy.stdout);
    let v = ledger(&log.url, dir.path(), &["verify", export.to_str().unwrap(), "--vkey", vks, "--output", "json"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert_eq!(v.json()["cosigned_by"], serde_json::json!(["witness.test/w1", "witness.test/w2"]));
    // a stricter quorum than the cosignatures there: the missing witness is named
    std::fs::write(export.join("witnesses.vkey"), policy.stdout.replace("quorum 2", "quorum 3")).unwrap();
    let v = ledger(&log.url, dir.path(), &["verify", export.to_str().unwrap(), "--vkey", vks]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stderr.contains("missing: witness.test/bad"), "{}", v.stderr);
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgerds_witness_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // each log's keys and each witness's key, made first: every configuration names the other's
    let mut logs = Vec::new();
    for (node, seed) in [("a", 1u8), ("b", 2u8)] {
        let data = root.join(node);
        let prefix = format!("{node}.local");
        let made = ledger(
            "http://127.0.0.1:1",
            root,
            &["keys", "generate", "--data-dir", data.to_str().unwrap(), "--origin-prefix", &prefix],
        );
        assert_eq!(made.code, 0, "{}", made.stderr);
        let log_vkey = made.stdout.lines().last().unwrap().trim().to_owned();
        let key = root.join(format!("{node}-witness.key"));
        std::fs::write(&key, base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [seed; 32])).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let name = format!("witness.test/{node}");
        let wvkey = ledger::cosign::Cosigner::from_seed(&name, &[seed; 32]).unwrap().vkey();
        logs.push((node, data, prefix, log_vkey, key, name, wvkey, free_port()));
    }
    let mut servers = Vec::new();
    for (i, (node, data, prefix, _, key, name, _, port)) in logs.iter().enumerate() {
        let (_, _, other_prefix, other_vkey, _, other_name, other_wvkey, other_port) = &logs[1 - i];
        let text = format!(
            "origin_prefix = \"{prefix}\"\n[[logs]]\nname = \"default\"\n[[logs.witnesses]]\nname = \"{other_name}\"\nvkey = \"{other_wvkey}\"\nurl = \"http://127.0.0.1:{other_port}/witness\"\n\n[witness]\nname = \"{name}\"\nkey = {:?}\n[[witness.logs]]\norigin = \"{other_prefix}/default\"\nvkeys = [\"{other_vkey}\"]\n",
            key.display().to_string()
        );
        let cfg = root.join(format!("{node}.toml"));
        std::fs::write(&cfg, text).unwrap();
        servers.push(Ledgerd::start_with_http(
            data,
            &format!("127.0.0.1:{port}"),
            &["--config", cfg.to_str().unwrap()],
        ));
    }
    for s in &servers {
        append(&s.url, 0, 5).await;
    }
    // each log's checkpoint carries the other's cosignature, which verifies (bounded wait)
    for (i, s) in servers.iter().enumerate() {
        let other = CosignatureVerifier::from_vkey(&logs[1 - i].6).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (note, _) = checkpoint(&s.url, 0).await;
            let (body, lines) = ledger::cosign::split_note(&note).unwrap();
            if note.contains("\n5\n") && lines.iter().any(|l| other.verify_line(body, l).is_some()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{} not cosigned by {}: {note}", logs[i].0, other.name());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
