//! Mutual TLS, identities and roles against a real ledgerd on loopback
//! (docs/SECURITY.md). Certificates are made here with rcgen.

mod common;

use common::pki::{Pair, Pki};
use common::{TestServer, input};
use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_client::AdminServiceClient;
use ledger_proto::v1::artifact_service_client::ArtifactServiceClient;
use ledger_proto::v1::key_service_client::KeyServiceClient;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use ledger_server::Config;
use ledger_server::config::{Grant, Role, TlsConfig};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Status};

struct Setup {
    server: TestServer,
    pki: Pki,
    _certs: tempfile::TempDir,
}

fn grant(identity: &str, roles: &[Role], categories: &[&str]) -> Grant {
    Grant {
        identity: identity.into(),
        roles: roles.to_vec(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        approves: Vec::new(),
    }
}

async fn start() -> Setup {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "ops");
    let server_pair = pki.server();
    let (ca, sp) = (pki.ca_pem.clone(), server_pair.clone());
    let server = TestServer::start(move |c: &mut Config| {
        c.tls = Some(TlsConfig { cert: sp.cert, key: sp.key, client_ca: ca, client_crl: None });
        c.logs[0].access = vec![
            grant("spiffe://ops/writer", &[Role::Writer], &[]),
            grant("spiffe://ops/trainer", &[Role::Writer], &["stage5_training"]),
            grant("spiffe://ops/reader", &[Role::Reader], &[]),
            grant("spiffe://ops/auditor", &[Role::Auditor], &[]),
            grant("spiffe://ops/admin", &[Role::Admin], &[]),
            grant("cn-writer", &[Role::Writer], &[]),
        ];
    })
    .await;
    Setup { server, pki, _certs: certs }
}

async fn channel(s: &Setup, ca: &std::path::Path, id: Option<&Pair>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    if let Some(p) = id {
        tls = tls.identity(Identity::from_pem(std::fs::read(&p.cert).unwrap(), std::fs::read(&p.key).unwrap()));
    }
    let url = format!("https://localhost:{}", s.server.addr.port());
    let ep = Channel::from_shared(url).unwrap().tls_config(tls).unwrap();
    for _ in 0..100 {
        match ep.connect().await {
            Ok(c) => return Ok(c),
            Err(e) if format!("{e:?}").contains("Connection refused") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    Err("server did not come up".into())
}

async fn client(s: &Setup, id: &Pair) -> Channel {
    channel(s, &s.pki.ca_pem, Some(id)).await.unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    Append,
    AppendStream,
    Get,
    Query,
    Tail,
    Checkpoint,
    ProveInclusion,
    ProveConsistency,
    Summarize,
    Export,
    Upload,
    Download,
    Stat,
    KeyStatus,
    Rotate,
    PublicKeys,
    Redact,
    ReloadPolicy,
    Reindex,
}

const ALL: [Rpc; 19] = [
    Rpc::Append,
    Rpc::AppendStream,
    Rpc::Get,
    Rpc::Query,
    Rpc::Tail,
    Rpc::Checkpoint,
    Rpc::ProveInclusion,
    Rpc::ProveConsistency,
    Rpc::Summarize,
    Rpc::Export,
    Rpc::Upload,
    Rpc::Download,
    Rpc::Stat,
    Rpc::KeyStatus,
    Rpc::Rotate,
    Rpc::PublicKeys,
    Rpc::Redact,
    Rpc::ReloadPolicy,
    Rpc::Reindex,
];

fn log() -> String {
    "default".into()
}

fn append_req(category: &str, actor: &str) -> pb::AppendRequest {
    pb::AppendRequest { log: log(), entry: Some(input(category, "INC-1", r#"{"step":"x"}"#)), actor: actor.into() }
}

/// Calls one RPC; Ok when the server did not refuse it.
async fn call(ch: Channel, rpc: Rpc) -> Result<(), Status> {
    let mut l = LedgerServiceClient::new(ch.clone());
    let mut a = ArtifactServiceClient::new(ch.clone());
    let mut k = KeyServiceClient::new(ch.clone());
    let mut adm = AdminServiceClient::new(ch);
    match rpc {
        Rpc::Append => l.append(append_req("stage5_training", "")).await.map(drop),
        Rpc::AppendStream => {
            // Refusals come per message, as the entry's error.
            let mut st = l.append_stream(tokio_stream::iter(vec![append_req("stage5_training", "")])).await?;
            match st.get_mut().message().await?.and_then(|m| m.result) {
                Some(pb::append_stream_response::Result::Error(e)) => Err(Status::new(Code::from(e.code), e.message)),
                _ => Ok(()),
            }
        }
        Rpc::Get => l.get(pb::GetRequest { log: log(), seq: 0, with_proof: true }).await.map(drop),
        Rpc::Query => l.query(pb::QueryRequest { log: log(), limit: 1, ..Default::default() }).await.map(drop),
        Rpc::Tail => l.tail(pb::TailRequest { log: log(), ..Default::default() }).await.map(drop),
        Rpc::Checkpoint => l.get_checkpoint(pb::GetCheckpointRequest { log: log(), size: 0 }).await.map(drop),
        Rpc::ProveInclusion => {
            l.prove_inclusion(pb::ProveInclusionRequest { log: log(), seq: 0, tree_size: 0 }).await.map(drop)
        }
        Rpc::ProveConsistency => {
            let r = pb::ProveConsistencyRequest { log: log(), old_size: 1, new_size: 0 };
            l.prove_consistency(r).await.map(drop)
        }
        Rpc::Summarize => l.summarize(pb::SummarizeRequest { log: log(), ..Default::default() }).await.map(drop),
        Rpc::Export => l.export(pb::ExportRequest { log: log(), from_seq: 0 }).await.map(drop),
        Rpc::Upload => {
            let header = pb::UploadHeader { log: log(), name: "a.txt".into(), ..Default::default() };
            let msgs = vec![
                pb::UploadRequest { item: Some(pb::upload_request::Item::Header(header)) },
                pb::UploadRequest { item: Some(pb::upload_request::Item::Chunk(b"hello".to_vec())) },
            ];
            a.upload(tokio_stream::iter(msgs)).await.map(drop)
        }
        Rpc::Download => a.download(pb::DownloadRequest { log: log(), blake3: vec![0; 32] }).await.map(drop),
        Rpc::Stat => a.stat(pb::StatRequest { log: log(), blake3: vec![0; 32] }).await.map(drop),
        Rpc::KeyStatus => k.status(pb::KeyStatusRequest { log: log() }).await.map(drop),
        Rpc::Rotate => {
            k.rotate(pb::RotateRequest { log: log(), reason: "test".into(), actor: String::new() }).await.map(drop)
        }
        Rpc::PublicKeys => k.public_keys(pb::PublicKeysRequest { log: log() }).await.map(drop),
        Rpc::Redact => adm
            .redact(pb::RedactRequest { log: log(), seq: 0, reason: "t".into(), actor: String::new() })
            .await
            .map(drop),
        Rpc::ReloadPolicy => {
            let r = pb::ReloadPolicyRequest { log: log(), reason: "t".into(), actor: String::new() };
            adm.reload_policy(r).await.map(drop)
        }
        Rpc::Reindex => {
            adm.reindex(pb::ReindexRequest { log: log(), reason: "t".into(), actor: String::new() }).await.map(drop)
        }
    }
}

fn allowed(role: Role) -> Vec<Rpc> {
    use Rpc::*;
    match role {
        Role::Writer => vec![Append, AppendStream, Upload, PublicKeys],
        Role::Reader => {
            vec![Get, Query, Tail, Checkpoint, ProveInclusion, ProveConsistency, Download, Stat, KeyStatus, PublicKeys]
        }
        Role::Auditor => vec![Summarize, Export, KeyStatus, PublicKeys],
        Role::Admin => vec![Rotate, KeyStatus, PublicKeys, Redact, ReloadPolicy, Reindex],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_can_do_exactly_its_rpcs() {
    let s = start().await;
    let writer = s.pki.client_uri("writer", "spiffe://ops/writer");
    call(client(&s, &writer).await, Rpc::Append).await.unwrap();
    for (role, name) in
        [(Role::Writer, "writer"), (Role::Reader, "reader"), (Role::Auditor, "auditor"), (Role::Admin, "admin")]
    {
        let id = format!("spiffe://ops/{name}");
        let ch = client(&s, &s.pki.client_uri(name, &id)).await;
        let ok = allowed(role);
        for rpc in ALL {
            let r = call(ch.clone(), rpc).await;
            if ok.contains(&rpc) {
                if let Err(st) = &r {
                    assert!(
                        !matches!(st.code(), Code::PermissionDenied | Code::Unauthenticated),
                        "{name} must be allowed {rpc:?}: {st:?}"
                    );
                }
            } else {
                let st = r.expect_err(&format!("{name} must be refused {rpc:?}"));
                assert_eq!(st.code(), Code::PermissionDenied, "{name} {rpc:?}: {st:?}");
                assert!(st.message().contains(&format!("identity {id:?}")), "{}", st.message());
                assert!(st.message().contains("role on log \"default\""), "{}", st.message());
            }
        }
    }
    // A certificate the CA signed but with no grant can do nothing but fail.
    let stranger = client(&s, &s.pki.client_uri("stranger", "spiffe://ops/stranger")).await;
    for rpc in ALL {
        let st = call(stranger.clone(), rpc).await.expect_err("no grant, no access");
        assert_eq!(st.code(), Code::PermissionDenied, "{rpc:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_limited_to_a_category_cannot_append_another() {
    let s = start().await;
    let ch = client(&s, &s.pki.client_uri("trainer", "spiffe://ops/trainer")).await;
    let mut l = LedgerServiceClient::new(ch);
    l.append(append_req("stage5_training", "")).await.unwrap();
    let incident = pb::AppendRequest {
        log: log(),
        entry: Some(input("stage5_incident", "INC-1", r#"{"tco_kpi":1,"decision_path":"a","rotation_event_id":"r"}"#)),
        actor: String::new(),
    };
    let st = l.append(incident).await.unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);
    assert_eq!(
        st.message(),
        "identity \"spiffe://ops/trainer\" lacks the writer role for category \"stage5_incident\" on log \"default\" (it may write: stage5_training)"
    );
    let mut r = LedgerServiceClient::new(client(&s, &s.pki.client_uri("reader", "spiffe://ops/reader")).await);
    let cp = r.get_checkpoint(pb::GetCheckpointRequest { log: log(), size: 0 }).await.unwrap().into_inner();
    assert_eq!(cp.size, 1, "only the training entry is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_is_the_certificate_identity_whatever_the_request_says() {
    let s = start().await;
    let uri = client(&s, &s.pki.client_uri("writer", "spiffe://ops/writer")).await;
    let cn = client(&s, &s.pki.client_cn("cnw", "cn-writer")).await;
    let r1 = LedgerServiceClient::new(uri).append(append_req("alert_ack", "mallory")).await.unwrap().into_inner();
    let r2 = LedgerServiceClient::new(cn.clone()).append(append_req("alert_ack", "root")).await.unwrap().into_inner();
    let mut l = LedgerServiceClient::new(client(&s, &s.pki.client_uri("reader", "spiffe://ops/reader")).await);
    for (r, want) in [(r1, "spiffe://ops/writer"), (r2, "cn-writer")] {
        let seq = r.receipt.unwrap().seq;
        let e = l.get(pb::GetRequest { log: log(), seq, with_proof: false }).await.unwrap().into_inner();
        assert_eq!(e.entry.unwrap().decoded.unwrap().actor, want);
    }
    // The stream path too: each message's claim is ignored.
    let mut st = LedgerServiceClient::new(cn)
        .append_stream(tokio_stream::iter(vec![append_req("alert_ack", "someone-else")]))
        .await
        .unwrap()
        .into_inner();
    let m = st.message().await.unwrap().unwrap();
    let Some(pb::append_stream_response::Result::Receipt(rc)) = m.result else { panic!("{m:?}") };
    let e = l.get(pb::GetRequest { log: log(), seq: rc.seq, with_proof: false }).await.unwrap().into_inner();
    assert_eq!(e.entry.unwrap().decoded.unwrap().actor, "cn-writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_or_one_from_another_ca_is_refused() {
    let s = start().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::new(other_dir.path(), "evil");
    let forged = other.client_uri("forged", "spiffe://ops/admin");
    for (what, id) in [("no certificate", None), ("another CA", Some(&forged))] {
        // rustls may refuse during the handshake (connect fails) or, with
        // TLS 1.3, on the first request (the server's alert or its close
        // can reach hyper before the request is sent: "connection was not
        // ready"): either way nothing is served.
        let refused = match channel(&s, &s.pki.ca_pem, id).await {
            Err(e) => e,
            Ok(ch) => format!("{:?}", call(ch, Rpc::PublicKeys).await.expect_err(what)),
        };
        assert!(
            [
                "CertificateRequired",
                "UnknownCA",
                "BadCertificate",
                "DecryptError",
                "connection closed",
                "broken pipe",
                "Connection reset",
                "connection was not ready",
            ]
            .iter()
            .any(|m| refused.contains(m)),
            "{what}: {refused}"
        );
    }
    // A client that does not trust the server's CA refuses the server.
    let e = channel(&s, &other.ca_pem, Some(&forged)).await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // Plaintext to a TLS port gets nothing either.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", s.server.addr.port())).unwrap().connect().await;
    if let Ok(ch) = plain {
        assert!(call(ch, Rpc::PublicKeys).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_off_loopback_is_refused_unless_insecure_listen() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::config(&dir.path().join("data"));
    let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let e = ledger_server::serve_with_metrics(c.clone(), l, None, async {}).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("config: listen: 0.0.0.0:"), "{msg}");
    assert!(msg.contains("configure [tls] (mutual TLS) or pass --insecure-listen"), "{msg}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
    let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let insecure = Config { insecure_listen: true, ..c };
    ledger_server::serve_with_metrics(insecure, l, None, async {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_key_files_and_grants_without_tls_stop_startup() {
    use std::os::unix::fs::PermissionsExt as _;
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "ops");
    let sp = pki.server();
    std::fs::set_permissions(&sp.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(&dir.path().join("data"));
    c.tls =
        Some(TlsConfig { cert: sp.cert.clone(), key: sp.key.clone(), client_ca: pki.ca_pem.clone(), client_crl: None });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msg = ledger_server::serve_with_metrics(c.clone(), l, None, async {}).await.unwrap_err().to_string();
    assert!(msg.starts_with("tls.key: key file "), "{msg}");
    assert!(msg.contains("mode 0644: it must not be readable by group or others (chmod 600"), "{msg}");

    // The keyring of a log, made world-readable, stops startup too.
    std::fs::set_permissions(&sp.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    ledger_server::serve_with_metrics(c.clone(), l, None, async {}).await.unwrap();
    let ring = dir.path().join("data/logs/default/keys/keyring.json");
    std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o604)).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msg = ledger_server::serve_with_metrics(c.clone(), l, None, async {}).await.unwrap_err().to_string();
    assert!(msg.contains("keyring.json has mode 0604: it must not be readable by group or others"), "{msg}");

    // Grants without TLS would be a lie: refused.
    let mut plain = common::config(&dir.path().join("data2"));
    plain.logs[0].access = vec![grant("x", &[Role::Reader], &[])];
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msg = ledger_server::serve_with_metrics(plain, l, None, async {}).await.unwrap_err().to_string();
    assert!(msg.starts_with("config: logs[0].access: needs a [tls] section"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_redaction_is_an_entry_and_the_payload_leaves_the_disk() {
    let s = start().await;
    let mut w = LedgerServiceClient::new(client(&s, &s.pki.client_uri("writer", "spiffe://ops/writer")).await);
    let secret = "CUSTOMER-PHONE-555-0199";
    let e = input("stage4_incident", "INC-9", &format!(r#"{{"callback":"{secret}"}}"#));
    let target = w.append(pb::AppendRequest { log: log(), entry: Some(e), actor: String::new() }).await.unwrap();
    let target = target.into_inner().receipt.unwrap();
    // A writer cannot forge a redaction entry.
    let forged = w.append(append_req("redaction", "")).await.unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert!(forged.message().contains("reserved for ledgerd's admin actions"), "{}", forged.message());

    let mut adm = AdminServiceClient::new(client(&s, &s.pki.client_uri("admin", "spiffe://ops/admin")).await);
    let req = |seq| pb::RedactRequest { log: log(), seq, reason: "erasure PRIV-7".into(), actor: "someone".into() };
    let red = adm.redact(req(target.seq)).await.unwrap().into_inner().receipt.unwrap();
    let again = adm.redact(req(target.seq)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let missing = adm.redact(req(99)).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    let mut r = LedgerServiceClient::new(client(&s, &s.pki.client_uri("reader", "spiffe://ops/reader")).await);
    let got = r.get(pb::GetRequest { log: log(), seq: target.seq, with_proof: true }).await.unwrap().into_inner();
    let entry = got.entry.unwrap();
    assert!(entry.payload.is_empty());
    assert_eq!(entry.redacted_by, red.seq + 1);
    assert_eq!(got.receipt.unwrap().leaf_hash, target.leaf_hash, "still provable under the same leaf hash");
    let rec = r.get(pb::GetRequest { log: log(), seq: red.seq, with_proof: false }).await.unwrap().into_inner();
    let leaf = rec.entry.unwrap().decoded.unwrap();
    assert_eq!((leaf.category.as_str(), leaf.actor.as_str()), ("redaction", "spiffe://ops/admin"));

    let data = s.server.data();
    let mut server = s.server;
    server.stop().await.unwrap();
    let hits: Vec<_> = common::snapshot(&data)
        .into_iter()
        .filter(|(_, b)| b.windows(secret.len()).any(|w| w == secret.as_bytes()))
        .map(|(p, _)| p)
        .collect();
    assert!(hits.is_empty(), "payload still on disk in {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reload_is_an_entry_and_takes_effect_after_it() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "ops");
    let sp = pki.server();
    let cfg_path = certs.path().join("ledgerd.toml");
    let ca = pki.ca_pem.clone();
    let base = move |extra: &str| {
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n[policy.categories.alert_ack]\nrequired = []\n{extra}\n[[logs]]\nname = \"default\"\n[[logs.access]]\nidentity = \"spiffe://ops/admin\"\nroles = [\"admin\", \"writer\"]\n",
            sp.cert, sp.key, ca
        )
    };
    std::fs::write(&cfg_path, base("")).unwrap();
    let loaded = Config::load(&cfg_path).unwrap();
    let server = TestServer::start(move |c: &mut Config| {
        let data = c.data_dir.clone();
        *c = Config { data_dir: data, ..loaded };
    })
    .await;
    let setup = Setup { server, pki, _certs: certs };
    let ch = client(&setup, &setup.pki.client_uri("admin", "spiffe://ops/admin")).await;
    let mut l = LedgerServiceClient::new(ch.clone());
    let st = l.append(append_req("shift_handover", "")).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "undeclared before the reload: {st:?}");

    std::fs::write(&cfg_path, base("[policy.categories.shift_handover]\nrequired = [\"step\"]")).unwrap();
    let mut adm = AdminServiceClient::new(ch);
    let req = |reason: &str| pb::ReloadPolicyRequest { log: log(), reason: reason.into(), actor: String::new() };
    let empty = adm.reload_policy(req(" ")).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    let done = adm.reload_policy(req("new handover step, CHG-31")).await.unwrap().into_inner();
    assert_eq!(done.categories, vec!["alert_ack".to_string(), "shift_handover".to_string()]);
    let entry = l.append(append_req("shift_handover", "")).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!(entry.seq, done.receipt.as_ref().unwrap().seq + 1);
    let got = l.get(pb::GetRequest { log: log(), seq: done.receipt.unwrap().seq, with_proof: false }).await;
    // The admin holds no reader role here: reading the entry is refused.
    assert_eq!(got.unwrap_err().code(), Code::PermissionDenied);

    std::fs::write(&cfg_path, "not = [valid").unwrap();
    let bad = adm.reload_policy(req("typo")).await.unwrap_err();
    assert_eq!(bad.code(), Code::FailedPrecondition);
    assert!(bad.message().starts_with("the policy was not reloaded: config file "), "{}", bad.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_read_streams_are_capped_server_wide() {
    let mut s = TestServer::start(|c: &mut Config| {
        c.max_read_streams = 2;
        c.per_identity.read_stream_share = 1.0;
    })
    .await;
    let mut l = s.ledger().await;
    l.append(common::ack(1)).await.unwrap();
    let tail = || pb::TailRequest { log: log(), ..Default::default() };
    let t1 = l.tail(tail()).await.unwrap();
    let t2 = l.tail(tail()).await.unwrap();
    let st = l.tail(tail()).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted);
    assert!(st.message().starts_with("2 read streams (Query, Tail, Export, Download) are open"), "{}", st.message());
    let q = pb::QueryRequest { log: log(), ..Default::default() };
    assert_eq!(l.query(q.clone()).await.unwrap_err().code(), Code::ResourceExhausted);
    drop(t1);
    // The permit comes back when the server notices the stream is gone.
    let mut ok = false;
    for _ in 0..100 {
        if l.query(q.clone()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "a closed Tail releases its permit");
    drop(t2);
    s.stop().await.unwrap();
}
