//! Revocation that takes effect now (docs/SECURITY.md "Revocation"):
//! `[tls] client_crl` and the `[[logs.access]]` grants re-read by
//! `admin reload-policy`; a revoked or ungranted client is refused on its
//! next call and its open streams end with PERMISSION_DENIED within a
//! second; each reload is an entry naming what changed. Certificates and
//! CRLs are made with the `openssl` command line.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestServer;
use common::openssl_pki::{Issued, OpensslCa};
use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_client::AdminServiceClient;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use ledger_server::Config;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Live {
    server: TestServer,
    ca: OpensslCa,
    cfg: PathBuf,
    server_cert: Issued,
    _dir: tempfile::TempDir,
}

const ALICE: &str = "spiffe://ops/alice";
const BOB: &str = "spiffe://ops/bob";
const ADMIN: &str = "spiffe://ops/admin";

/// The config file: TLS with the CA's CRL, and `grants` as
/// (identity, roles) on the log `default`.
fn config_text(ca: &OpensslCa, server: &Issued, grants: &[(&str, &str)]) -> String {
    let mut s = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\nclient_crl = {:?}\n\n[[logs]]\nname = \"default\"\n",
        server.cert, server.key, ca.ca_pem, ca.crl
    );
    for (id, roles) in grants {
        s.push_str(&format!("[[logs.access]]\nidentity = {id:?}\nroles = {roles}\n"));
    }
    s
}

const GRANTS: &[(&str, &str)] =
    &[(ALICE, r#"["writer", "reader"]"#), (BOB, r#"["reader"]"#), (ADMIN, r#"["admin", "reader", "writer"]"#)];

impl Live {
    /// A server whose config file grants `grants`; `before` runs on the CA
    /// first (to revoke someone before the start).
    async fn start(before: impl FnOnce(&OpensslCa)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = OpensslCa::new(dir.path(), "ops-ca");
        before(&ca);
        let server_cert = ca.server();
        let cfg = dir.path().join("ledgerd.toml");
        std::fs::write(&cfg, config_text(&ca, &server_cert, GRANTS)).unwrap();
        let loaded = Config::load(&cfg).unwrap();
        let server = TestServer::start(move |c: &mut Config| {
            let data = c.data_dir.clone();
            *c = Config { data_dir: data, ..loaded };
        })
        .await;
        Self { server, ca, cfg, server_cert, _dir: dir }
    }

    fn client(&self, file: &str, serial: &str, uri: &str) -> Issued {
        self.ca.client(file, serial, uri)
    }

    /// A connection as `who` (the handshake may be refused).
    async fn connect(&self, who: &Issued) -> Result<Channel, tonic::transport::Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(&self.ca.ca_pem).unwrap()))
            .identity(Identity::from_pem(std::fs::read(&who.cert).unwrap(), std::fs::read(&who.key).unwrap()));
        let url = format!("https://localhost:{}", self.server.addr.port());
        let ep = Channel::from_shared(url).unwrap().tls_config(tls).unwrap();
        let mut last = None;
        for _ in 0..100 {
            match ep.connect().await {
                Ok(c) => return Ok(c),
                Err(e) if format!("{e:?}").contains("Connection refused") => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("tried"))
    }

    async fn ledger(&self, who: &Issued) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(self.connect(who).await.unwrap())
    }

    /// Reloads as the admin; the receipt's seq.
    async fn reload(&self, admin: &Issued, reason: &str) -> Result<u64, tonic::Status> {
        let mut adm = AdminServiceClient::new(self.connect(admin).await.unwrap());
        let r = pb::ReloadPolicyRequest { log: "default".into(), reason: reason.into(), actor: String::new() };
        Ok(adm.reload_policy(r).await?.into_inner().receipt.unwrap().seq)
    }

    /// The payload of entry `seq`, read as the admin.
    async fn payload(&self, admin: &Issued, seq: u64) -> serde_json::Value {
        let e = self.ledger(admin).await.get(pb::GetRequest { log: "default".into(), seq, with_proof: false }).await;
        serde_json::from_slice(&e.unwrap().into_inner().entry.unwrap().payload).unwrap()
    }
}

fn ack(n: u64) -> pb::AppendRequest {
    let e = common::input("alert_ack", "INC-77", &format!(r#"{{"alert":"a{n}"}}"#));
    pb::AppendRequest { log: "default".into(), entry: Some(e), actor: String::new() }
}

fn tail() -> pb::TailRequest {
    pb::TailRequest { log: "default".into(), ..Default::default() }
}

/// A stream must end with PERMISSION_DENIED within a second, after at most
/// what was already on its way (`sent` tells whether a message may have
/// been: the reload's own entry precedes its effect, so a tail may get it).
async fn ends_denied<T: std::fmt::Debug>(s: &mut tonic::Streaming<T>, sent: impl Fn(&T) -> bool) -> tonic::Status {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let next = tokio::time::timeout_at(deadline, s.message()).await.expect("ended within a second");
        match next {
            Ok(Some(m)) => assert!(sent(&m), "nothing after the revocation is served: {m:?}"),
            Ok(None) => panic!("the stream ended without an error"),
            Err(st) => {
                assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
                return st;
            }
        }
    }
}

/// A call over a fresh connection as `who` fails (at the handshake or at
/// the call).
async fn fresh_call_fails(t: &Live, who: &Issued) {
    if let Ok(ch) = t.connect(who).await {
        let r = LedgerServiceClient::new(ch).get_checkpoint(pb::GetCheckpointRequest::default()).await;
        assert!(r.is_err(), "a new connection with a revoked certificate is refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_at_its_next_call_and_its_open_streams_end() {
    let t = Live::start(|_| {}).await;
    let (alice, bob, admin) =
        (t.client("alice", "0a11ce", ALICE), t.client("bob", "0b0b", BOB), t.client("admin", "0add", ADMIN));
    let mut al = t.ledger(&alice).await;
    al.append(ack(0)).await.unwrap();
    let mut alice_tail = al.tail(tail()).await.unwrap().into_inner();
    assert!(alice_tail.message().await.unwrap().is_some());
    let (in_tx, in_rx) = tokio::sync::mpsc::channel(4);
    in_tx.send(ack(1)).await.unwrap();
    let mut alice_stream =
        al.append_stream(tokio_stream::wrappers::ReceiverStream::new(in_rx)).await.unwrap().into_inner();
    assert!(alice_stream.message().await.unwrap().is_some(), "a receipt before the revocation");
    let mut bob_tail = t.ledger(&bob).await.tail(tail()).await.unwrap().into_inner();
    assert_eq!(bob_tail.message().await.unwrap().unwrap().seq, 0);

    t.ca.revoke(&alice);
    t.ca.write_crl();
    let seq = t.reload(&admin, "alice's key leaked, INC-77").await.unwrap();

    let tail_end = ends_denied(&mut alice_tail, |e| e.seq <= seq).await;
    let stream_end = ends_denied(&mut alice_stream, |_| false).await;
    for st in [tail_end, stream_end] {
        assert!(st.message().contains("is revoked") && st.message().contains("0a11ce"), "{}", st.message());
    }
    let st = al.append(ack(2)).await.unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "the same connection, the next call: {st:?}");
    assert!(st.message().contains(ALICE), "{}", st.message());
    fresh_call_fails(&t, &alice).await;
    // Bob is not affected: his tail goes on to the reload entry.
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), bob_tail.message()).await.unwrap().unwrap().unwrap();
        if e.seq == seq {
            assert_eq!(e.decoded.unwrap().category, "policy_reload");
            break;
        }
    }
    let p = t.payload(&admin, seq).await;
    assert_eq!(p["revoked_serials"], serde_json::json!({"added": ["0a11ce"], "removed": []}));
    assert_eq!(p["access"], serde_json::json!({"added": [], "removed": []}));
    assert_eq!(p["reason"], "alice's key leaked, INC-77");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_grant_ends_the_stream_and_the_reload_entry_names_it() {
    let t = Live::start(|_| {}).await;
    let (bob, admin) = (t.client("bob", "0b0b", BOB), t.client("admin", "0add", ADMIN));
    t.ledger(&admin).await.append(ack(0)).await.unwrap();
    let mut bl = t.ledger(&bob).await;
    let mut bob_tail = bl.tail(tail()).await.unwrap().into_inner();
    assert!(bob_tail.message().await.unwrap().is_some());

    let carol = (r#"spiffe://ops/carol"#, r#"["reader"]"#);
    let grants = [GRANTS[0], GRANTS[2], carol];
    std::fs::write(&t.cfg, config_text(&t.ca, &t.server_cert, &grants)).unwrap();
    let seq = t.reload(&admin, "bob moved to another team").await.unwrap();

    let st = ends_denied(&mut bob_tail, |e| e.seq <= seq).await;
    assert!(st.message().contains("lacks the reader role"), "{}", st.message());
    let again = bl.get(pb::GetRequest { log: "default".into(), seq: 0, with_proof: false }).await.unwrap_err();
    assert_eq!(again.code(), Code::PermissionDenied);
    let p = t.payload(&admin, seq).await;
    let grant = |id: &str| serde_json::json!({"identity": id, "roles": ["reader"]});
    assert_eq!(p["access"], serde_json::json!({"added": [grant("spiffe://ops/carol")], "removed": [grant(BOB)]}));
    assert_eq!(p["revoked_serials"], serde_json::json!({"added": [], "removed": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_listed_at_start_is_refused_and_a_bad_crl_changes_nothing() {
    let mut mallory = None;
    let t = Live::start(|ca| {
        let m = ca.client("mallory", "0bad", "spiffe://ops/mallory");
        ca.revoke(&m);
        ca.write_crl();
        mallory = Some(m);
    })
    .await;
    let (alice, admin) = (t.client("alice", "0a11ce", ALICE), t.client("admin", "0add", ADMIN));
    fresh_call_fails(&t, mallory.as_ref().unwrap()).await;
    let mut al = t.ledger(&alice).await;
    let size = al.append(ack(0)).await.unwrap().into_inner().receipt.unwrap().seq + 1;

    let rogue = OpensslCa::new(t._dir.path(), "rogue-ca");
    for (content, says) in [
        (std::fs::read(&rogue.crl).unwrap(), "is not a certificate of tls.client_ca"),
        (b"not a CRL\n".to_vec(), "no PEM CRL"),
    ] {
        std::fs::write(&t.ca.crl, content).unwrap();
        let st = t.reload(&admin, "try").await.unwrap_err();
        assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
        assert!(st.message().contains("tls.client_crl") && st.message().contains(says), "{}", st.message());
    }
    let next = al.append(ack(1)).await.unwrap().into_inner().receipt.unwrap().seq;
    assert_eq!(next, size, "no reload entry was written and alice still appends");
}
