//! `--server` as a list of nodes, writes that follow a follower's redirect
//! to the leader (`UNAVAILABLE` + `ledger-leader`), bounded retries, and
//! the request_id `ledger append` generates. Real ledgerd processes (the
//! e2e harness) and, for the follower, a small tonic server in this test.

#[allow(dead_code)]
#[path = "../../tests/src/lib.rs"]
mod harness;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Ledgerd, Run, ledger};
use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_server::{ArtifactService, ArtifactServiceServer};
use ledger_proto::v1::ledger_service_server::{LedgerService, LedgerServiceServer};
use tonic::{Request, Response, Status, Streaming};

/// Ports nothing listens on (connections are refused at once).
const DOWN: [&str; 2] = ["http://127.0.0.1:1", "http://127.0.0.1:9"];

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

/// `ledger … --output json` on `url`, expected to succeed.
fn json(url: &str, cwd: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    ok(ledger(url, cwd, &a)).json()
}

/// What the fake node answers to a write (Append, Upload).
#[derive(Clone)]
enum Answer {
    /// `UNAVAILABLE`, naming this leader in `ledger-leader` when given: a follower
    Unavailable(Option<String>),
    /// `INVALID_ARGUMENT`
    Invalid,
}

#[derive(Clone)]
struct Fake {
    answer: Answer,
    writes: Arc<AtomicUsize>,
}

impl Fake {
    fn refuse(&self) -> Status {
        self.writes.fetch_add(1, Ordering::SeqCst);
        match &self.answer {
            Answer::Unavailable(leader) => {
                let mut st = Status::unavailable("not the leader");
                if let Some(l) = leader {
                    st.metadata_mut().insert("ledger-leader", l.parse().unwrap());
                }
                st
            }
            Answer::Invalid => Status::invalid_argument("refused by the test node"),
        }
    }
}

type Empty<T> = tokio_stream::Empty<Result<T, Status>>;

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("the test node serves no reads"))
}

#[tonic::async_trait]
impl LedgerService for Fake {
    async fn append(&self, _: Request<pb::AppendRequest>) -> Result<Response<pb::AppendResponse>, Status> {
        Err(self.refuse())
    }
    type AppendStreamStream = tokio_stream::wrappers::ReceiverStream<Result<pb::AppendStreamResponse, Status>>;
    /// As ledgerd's follower does: each entry refused in the stream, without
    /// the metadata a call's status carries (no `ledger-leader`).
    async fn append_stream(
        &self,
        req: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (fake, mut inbound) = (self.clone(), req.into_inner());
        tokio::spawn(async move {
            let mut index = 0;
            while let Ok(Some(_)) = inbound.message().await {
                let st = fake.refuse();
                let error = pb::Error { code: st.code() as i32, message: st.message().to_owned() };
                let m =
                    pb::AppendStreamResponse { index, result: Some(pb::append_stream_response::Result::Error(error)) };
                if tx.send(Ok(m)).await.is_err() {
                    break;
                }
                index += 1;
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        unimplemented()
    }
    type QueryStream = Empty<pb::QueryResponse>;
    async fn query(&self, _: Request<pb::QueryRequest>) -> Result<Response<Self::QueryStream>, Status> {
        unimplemented()
    }
    type TailStream = Empty<pb::Entry>;
    async fn tail(&self, _: Request<pb::TailRequest>) -> Result<Response<Self::TailStream>, Status> {
        unimplemented()
    }
    async fn get_checkpoint(
        &self,
        _: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        unimplemented()
    }
    async fn prove_inclusion(
        &self,
        _: Request<pb::ProveInclusionRequest>,
    ) -> Result<Response<pb::ProveInclusionResponse>, Status> {
        unimplemented()
    }
    async fn prove_consistency(
        &self,
        _: Request<pb::ProveConsistencyRequest>,
    ) -> Result<Response<pb::ProveConsistencyResponse>, Status> {
        unimplemented()
    }
    async fn summarize(&self, _: Request<pb::SummarizeRequest>) -> Result<Response<pb::SummarizeResponse>, Status> {
        unimplemented()
    }
    type ExportStream = Empty<pb::ExportChunk>;
    async fn export(&self, _: Request<pb::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        unimplemented()
    }
    async fn node_status(&self, _: Request<pb::NodeStatusRequest>) -> Result<Response<pb::NodeStatusResponse>, Status> {
        unimplemented()
    }
    async fn pending_approvals(
        &self,
        _: Request<pb::PendingApprovalsRequest>,
    ) -> Result<Response<pb::PendingApprovalsResponse>, Status> {
        unimplemented()
    }
    async fn check_rules(&self, _: Request<pb::CheckRulesRequest>) -> Result<Response<pb::CheckRulesResponse>, Status> {
        unimplemented()
    }
}

#[tonic::async_trait]
impl ArtifactService for Fake {
    async fn upload(&self, _: Request<Streaming<pb::UploadRequest>>) -> Result<Response<pb::UploadResponse>, Status> {
        Err(self.refuse())
    }
    type DownloadStream = Empty<pb::DownloadChunk>;
    async fn download(&self, _: Request<pb::DownloadRequest>) -> Result<Response<Self::DownloadStream>, Status> {
        unimplemented()
    }
    async fn stat(&self, _: Request<pb::StatRequest>) -> Result<Response<pb::StatResponse>, Status> {
        unimplemented()
    }
}

/// A node that refuses every write with `answer`, served on a loopback port
/// until dropped (its runtime goes with it).
struct FakeNode {
    url: String,
    writes: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl FakeNode {
    fn start(answer: Answer) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Fake { answer, writes: Arc::default() };
        let writes = fake.writes.clone();
        let server = tonic::transport::Server::builder()
            .add_service(LedgerServiceServer::new(fake.clone()))
            .add_service(ArtifactServiceServer::new(fake))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        rt.spawn(server);
        Self { url, writes, _rt: rt }
    }

    /// Writes it refused so far.
    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[test]
fn a_list_whose_first_node_is_down_uses_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let nodes = format!(" {} , {}", DOWN[0], d.url);
    let r = json(&nodes, w, &["append", "--category", "alert_ack", "--field", "n=1"]);
    assert_eq!((r["seq"].as_u64(), r["duplicate"].as_bool()), (Some(0), Some(false)), "{r}");
    let e = json(&nodes, w, &["get", "0"]);
    assert_eq!((e["category"].as_str(), e["payload"]["n"].as_u64()), (Some("alert_ack"), Some(1)));
    assert_eq!(json(&nodes, w, &["checkpoint"])["size"].as_u64(), Some(1));
}

#[test]
fn when_no_node_answers_the_error_names_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let nodes = DOWN.join(",");
    for args in [&["checkpoint"][..], &["append", "--category", "alert_ack"]] {
        let started = Instant::now();
        let r = ledger(&nodes, w, args);
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("error: cannot reach ledgerd at any of the 2 nodes: "), "{}", r.stderr);
        for n in DOWN {
            assert!(r.stderr.contains(&format!("{n}: ")), "{n} in {}", r.stderr);
        }
        assert!(started.elapsed() < Duration::from_secs(5), "refused connections are not retried");
    }
    // One node: the message of a single --server, as before the lists.
    let r = ledger(DOWN[0], w, &["append", "--category", "alert_ack"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.starts_with(&format!("error: cannot reach ledgerd at {}: ", DOWN[0])), "{}", r.stderr);
    // An empty item is a usage error naming --server.
    for bad in [format!("{},", DOWN[0]), format!("{},,{}", DOWN[0], DOWN[1]), " ".to_owned()] {
        let r = ledger(&bad, w, &["checkpoint"]);
        assert_eq!(r.code, 2, "{bad:?}: {r:?}");
        assert!(r.stderr.starts_with("error: --server ") && r.stderr.contains("empty"), "{}", r.stderr);
    }
    // Every URL of the list is checked before any node is contacted.
    let r = ledger(&format!("{},not a url", DOWN[0]), w, &["checkpoint"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("invalid --server \"not a url\""), "{}", r.stderr);
}

#[test]
fn appends_without_a_request_id_get_distinct_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let mut ids = Vec::new();
    for n in 0..2 {
        let r = json(&d.url, w, &["append", "--category", "alert_ack", "--field", &format!("n={n}")]);
        let id = r["request_id"].as_str().unwrap().to_owned();
        assert!(id.len() == 36 && id.starts_with("cli-") && id[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(json(&d.url, w, &["get", &r["seq"].to_string()])["request_id"].as_str(), Some(id.as_str()));
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    // Text output shows it too.
    let r = ok(ledger(&d.url, w, &["append", "--category", "alert_ack"]));
    let line = r.stdout.lines().find(|l| l.starts_with("request id ")).unwrap_or_else(|| panic!("{}", r.stdout));
    let id = &line["request id ".len()..];
    assert!(id.starts_with("cli-") && !ids.iter().any(|i| i == id), "{}", r.stdout);
    assert_eq!(json(&d.url, w, &["get", "2"])["request_id"].as_str(), Some(id));
    // A given one is kept, and a retry with it returns the original receipt.
    let first = json(&d.url, w, &["append", "--category", "alert_ack", "--request-id", "ack-7"]);
    let again = json(&d.url, w, &["append", "--category", "alert_ack", "--request-id", "ack-7"]);
    assert_eq!((first["request_id"].as_str(), first["seq"].as_u64()), (Some("ack-7"), Some(3)));
    assert_eq!((again["seq"].as_u64(), again["duplicate"].as_bool()), (Some(3), Some(true)));
}

#[test]
fn a_follower_redirects_writes_to_the_leader_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let follower = FakeNode::start(Answer::Unavailable(Some(d.url.clone())));
    std::fs::write(w.join("report.txt"), "the report\n").unwrap();
    let r = json(
        &follower.url,
        w,
        &["append", "--category", "alert_ack", "--subject", "INC-9", "--attach", "report.txt", "--field", "n=1"],
    );
    // The upload was redirected; the append then went to the leader directly.
    assert_eq!(follower.writes(), 1);
    assert_eq!(r["seq"].as_u64(), Some(1), "{r}");
    let e = json(&d.url, w, &["get", "1"]);
    assert_eq!(
        (e["category"].as_str(), e["subject"].as_str(), e["request_id"].as_str()),
        (Some("alert_ack"), Some("INC-9"), r["request_id"].as_str())
    );
    assert_eq!(e["artifacts"][0]["name"].as_str(), Some("report.txt"));
    let a = json(&d.url, w, &["get", "0"]);
    assert_eq!(a["category"].as_str(), Some("artifact"));
    assert!(a["request_id"].as_str().unwrap().starts_with("cli-"), "{a}");

    // A plain append, and `artifact add`, each redirected once.
    let r = json(&follower.url, w, &["append", "--category", "alert_ack", "--field", "n=2"]);
    assert_eq!((r["seq"].as_u64(), follower.writes()), (Some(2), 2));
    let r = json(&follower.url, w, &["artifact", "add", "report.txt"]);
    assert_eq!((r["receipt"]["seq"].as_u64(), follower.writes()), (Some(3), 3));
}

#[test]
fn ledger_import_through_a_follower_writes_on_the_leader_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let follower = FakeNode::start(Answer::Unavailable(Some(d.url.clone())));
    let lines: String = (1..=5)
        .map(|n| format!("{{\"c\":\"alert_ack\",\"s\":\"INC-{n}\",\"t\":\"2026-11-21T10:00:0{n}Z\"}}\n"))
        .collect();
    std::fs::write(w.join("runtime.jsonl"), lines).unwrap();
    let args = ["import", "runtime.jsonl", "--category-field", "c", "--subject-field", "s", "--time-field", "t"];
    let r = json(&follower.url, w, &args);
    assert_eq!((r["written"].as_u64(), r["import_entry"]["seq"].as_u64()), (Some(5), Some(5)), "{r}");
    // the stream's five refusals, then the one unary append that named the leader
    assert_eq!(follower.writes(), 6);
    assert_eq!(json(&d.url, w, &["get", "4"])["subject"].as_str(), Some("INC-5"));

    // A follower that refuses each entry otherwise: nothing retried, the line named.
    let refusing = FakeNode::start(Answer::Invalid);
    let r = ledger(&refusing.url, w, &args);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("runtime.jsonl: line 1: ledgerd refused it: refused by the test node"), "{}", r.stderr);
    assert_eq!(refusing.writes(), 5);
}

#[test]
fn a_follower_naming_no_leader_sends_the_write_to_the_next_node() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let follower = FakeNode::start(Answer::Unavailable(None));
    let nodes = format!("{},{}", follower.url, d.url);
    let r = json(&nodes, w, &["append", "--category", "alert_ack"]);
    assert_eq!((r["seq"].as_u64(), follower.writes()), (Some(0), 1));
    assert_eq!(json(&d.url, w, &["get", "0"])["request_id"], r["request_id"]);
}

#[test]
fn retries_are_bounded_and_end_with_the_last_status() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let follower = FakeNode::start(Answer::Unavailable(None));
    let started = Instant::now();
    let r = ledger(&follower.url, w, &["append", "--category", "alert_ack", "--write-retry", "1"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.starts_with("error: unavailable: not the leader"), "{}", r.stderr);
    // Retried for 1 s: attempts at 0, 200 ms and 600 ms (the next, at 1.4 s, would start too late).
    assert_eq!(follower.writes(), 3);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(10), "{took:?}");

    // A follower naming a leader that is down: bounded all the same (attempts:
    // the follower, the leader's refused connection, the follower), and the
    // error names the leader.
    let follower = FakeNode::start(Answer::Unavailable(Some(DOWN[0].to_owned())));
    let r = ledger(&follower.url, w, &["append", "--category", "alert_ack", "--write-retry", "1"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains(&format!("the leader is {}", DOWN[0])), "{}", r.stderr);
    assert_eq!(follower.writes(), 2);
}

#[test]
fn only_unavailable_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let d = Ledgerd::start(&w.join("data"), &[]);
    let refusing = FakeNode::start(Answer::Invalid);
    let r = ledger(&format!("{},{}", refusing.url, d.url), w, &["append", "--category", "alert_ack"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.starts_with("error: invalid argument: refused by the test node"), "{}", r.stderr);
    assert_eq!(refusing.writes(), 1);
    assert_eq!(json(&d.url, w, &["checkpoint"])["size"].as_u64(), Some(0), "nothing reached the second node");
}
