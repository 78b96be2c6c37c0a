//! Per-identity shares (`[per_identity]`, docs/SECURITY.md "Limits"): one
//! identity flooding appends or opening read streams gets RESOURCE_EXHAUSTED
//! naming it and the limit, and the others are not starved.

mod common;

use common::pki::Pki;
use common::{TestServer, input};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use ledger_server::Config;
use ledger_server::config::{Grant, Role, TlsConfig};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn append_as(actor: &str, n: u64) -> pb::AppendRequest {
    let e = input("alert_ack", "INC-1", &format!(r#"{{"alert":"a{n}"}}"#));
    pb::AppendRequest { log: "default".into(), entry: Some(e), actor: actor.into() }
}

async fn metrics(s: &TestServer) -> String {
    common::http_get(s.metrics, "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_identity_is_refused_past_its_share_and_another_is_never_starved() {
    // 8 queued appends per log; each identity may hold 4 of them.
    let s = TestServer::start(|c: &mut Config| {
        c.queue_depth = 8;
        c.per_identity.queue_share = 0.5;
    })
    .await;
    let ch = s.channel().await;
    let flood: Vec<_> = (0..300)
        .map(|n| {
            let mut l = LedgerServiceClient::new(ch.clone());
            tokio::spawn(async move { l.append(append_as("noisy", n)).await })
        })
        .collect();
    let mut calm = LedgerServiceClient::new(ch.clone());
    for n in 0..20 {
        calm.append(append_as("calm", n)).await.expect("the calm identity always finds room in the queue");
    }
    let mut refused = Vec::new();
    for t in flood {
        if let Err(st) = t.await.unwrap() {
            refused.push(st);
        }
    }
    assert!(!refused.is_empty(), "300 appends at once cannot all fit in a share of 4");
    for st in &refused {
        assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
        assert!(
            st.message().starts_with(
                r#"identity "noisy" already holds 4 queued appends on this log, its limit (per_identity.queue_share)"#
            ),
            "{}",
            st.message()
        );
    }
    let page = metrics(&s).await;
    let line = format!(
        r#"ledger_identity_limit_refusals_total{{identity="(unauthenticated)",limit="append_queue"}} {}"#,
        refused.len()
    );
    assert!(page.contains(&line), "{line} not in {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_stream_past_its_share_waits_instead_of_being_refused() {
    let s = TestServer::start(|c: &mut Config| {
        c.queue_depth = 8;
        c.per_identity.queue_share = 0.5;
    })
    .await;
    let mut l = LedgerServiceClient::new(s.channel().await);
    let msgs: Vec<_> = (0..200).map(|n| append_as("streamer", n)).collect();
    let mut out = l.append_stream(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    let mut seqs = Vec::new();
    while let Some(m) = out.message().await.unwrap() {
        match m.result {
            Some(pb::append_stream_response::Result::Receipt(r)) => seqs.push(r.seq),
            other => panic!("message {} was not appended: {other:?}", m.index),
        }
    }
    assert_eq!(seqs, (0..200).collect::<Vec<u64>>(), "all 200, in order, through a share of 4");
}

async fn tls_channel(s: &TestServer, pki: &Pki, who: &common::pki::Pair) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca_pem).unwrap()))
        .identity(Identity::from_pem(std::fs::read(&who.cert).unwrap(), std::fs::read(&who.key).unwrap()));
    let ep = Channel::from_shared(format!("https://localhost:{}", s.addr.port())).unwrap().tls_config(tls).unwrap();
    for _ in 0..100 {
        if let Ok(c) = ep.connect().await {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("server did not come up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_holds_at_most_its_share_of_the_read_streams() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path(), "ops");
    let (sp, ca) = (pki.server(), pki.ca_pem.clone());
    let s = TestServer::start(move |c: &mut Config| {
        c.tls = Some(TlsConfig { cert: sp.cert, key: sp.key, client_ca: ca, client_crl: None });
        c.max_read_streams = 4;
        c.per_identity.read_stream_share = 0.5;
        let reader =
            |id: &str| Grant { identity: id.into(), roles: vec![Role::Reader], categories: vec![], approves: vec![] };
        c.logs[0].access = vec![reader("spiffe://ops/alice"), reader("spiffe://ops/bob")];
    })
    .await;
    let tail = || pb::TailRequest { log: "default".into(), ..Default::default() };
    let alice = pki.client_uri("alice", "spiffe://ops/alice");
    let mut a = LedgerServiceClient::new(tls_channel(&s, &pki, &alice).await);
    let _a1 = a.tail(tail()).await.unwrap();
    let _a2 = a.tail(tail()).await.unwrap();
    let st = a.tail(tail()).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted);
    assert_eq!(
        st.message(),
        r#"identity "spiffe://ops/alice" already holds 2 open read streams, its limit (per_identity.read_stream_share): retry when some finish"#
    );
    let bob = pki.client_uri("bob", "spiffe://ops/bob");
    let mut b = LedgerServiceClient::new(tls_channel(&s, &pki, &bob).await);
    let _b1 = b.tail(tail()).await.expect("bob has his own share");
    let _b2 = b.tail(tail()).await.expect("bob has his own share");
    let page = metrics(&s).await;
    assert!(
        page.contains(r#"ledger_identity_limit_refusals_total{identity="spiffe://ops/alice",limit="read_streams"} 1"#),
        "{page}"
    );
}
