//! A real ledgerd on a loopback port, started through `serve`.
#![allow(dead_code)]
pub mod openssl_pki;
pub mod pki;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_client::ArtifactServiceClient;
use ledger_proto::v1::key_service_client::KeyServiceClient;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use ledger_server::Config;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ledger_server::ServerError>>>,
}

pub fn config(data: &Path) -> Config {
    Config { data_dir: data.to_owned(), ..Config::default() }
}

impl TestServer {
    pub async fn start(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, edit).await
    }

    pub async fn start_in(dir: tempfile::TempDir, edit: impl FnOnce(&mut Config)) -> Self {
        let mut c = config(&dir.path().join("data"));
        edit(&mut c);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, metrics) = (l.local_addr().unwrap(), m.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(ledger_server::serve_with_metrics(c, l, Some(m), async move {
            let _ = rx.await;
        }));
        Self { addr, metrics, dir, stop: Some(tx), task: Some(task) }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data().join("logs/default")
    }

    /// A channel to the server once it answers (a connect alone can succeed
    /// through the listen backlog before the logs are open and locked).
    pub async fn channel(&self) -> Channel {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        for _ in 0..500 {
            if let Ok(c) = Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await {
                let mut health = HealthClient::new(c.clone());
                let check = health.check(HealthCheckRequest { service: String::new() });
                if let Ok(Ok(_)) = tokio::time::timeout(std::time::Duration::from_secs(1), check).await {
                    return c;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server did not come up");
    }

    pub async fn ledger(&self) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(self.channel().await)
    }

    pub async fn artifacts(&self) -> ArtifactServiceClient<Channel> {
        ArtifactServiceClient::new(self.channel().await)
    }

    pub async fn keys(&self) -> KeyServiceClient<Channel> {
        KeyServiceClient::new(self.channel().await)
    }

    /// Stops the server and waits for it (final checkpoint written).
    pub async fn stop(&mut self) -> Result<(), ledger_server::ServerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await.unwrap(),
            None => Ok(()),
        }
    }

    /// Stops and hands back the directory.
    pub async fn into_dir(mut self) -> tempfile::TempDir {
        self.stop().await.unwrap();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

pub fn input(category: &str, subject: &str, payload: &str) -> pb::EntryInput {
    pb::EntryInput {
        category: category.into(),
        subject: subject.into(),
        payload: payload.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn req(entry: pb::EntryInput) -> pb::AppendRequest {
    pb::AppendRequest { log: "default".into(), entry: Some(entry), actor: "svc-test".into() }
}

pub fn ack(i: u64) -> pb::AppendRequest {
    req(input("alert_ack", &format!("INC-{}", i % 5), &format!(r#"{{"alert":"a{i}"}}"#)))
}

/// Every file under `dir` with its bytes (to check that nothing changed).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

pub async fn vkeys(s: &TestServer) -> Vec<ledger::note::NoteVerifier> {
    let keys = s.keys().await.public_keys(pb::PublicKeysRequest { log: "default".into() }).await.unwrap().into_inner();
    keys.keys
        .iter()
        .filter(|k| !k.vkey.is_empty())
        .map(|k| ledger::note::NoteVerifier::from_vkey(&k.vkey).unwrap())
        .collect()
}

/// The response (status line, headers, body) to `GET path` over HTTP/1.1.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}
