//! What the replicated-ledgerd tests share (`ha.rs` on a primary with a
//! synchronous standby, `patroni.rs` on Patroni + etcd): the writers and
//! their book of acknowledgements, the ledgerd nodes, how long writes took
//! to resume after a fault, and the final checks (every acknowledged
//! request once at its seq with its leaf hash on every node, the tree size
//! equal to the number of requests, every checkpoint handed out consistent,
//! every replica passing `ledger verify`).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_e2e::{Ledgerd, ledger};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

pub const WRITERS: u64 = 16;
pub const LEASE: &str = "2s";
/// A writer's deadline per call: a call to a stopped node gets no answer,
/// so how soon writes resume after a SIGSTOP is also the client's deadline.
const CALL_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Acked {
    pub seq: u64,
    pub leaf_hash: Vec<u8>,
    pub checkpoint: (u64, [u8; 32]),
}

#[derive(Default)]
pub struct Book {
    pub acked: HashMap<String, Acked>,
    /// the highest seq acknowledged, and when
    pub last_ack: (u64, Option<Instant>),
}

pub fn entry(writer: u64, n: u64) -> (String, pb::EntryInput) {
    let id = format!("w{writer}-{n}");
    let e = pb::EntryInput {
        category: "alert_ack".into(),
        subject: format!("INC-{writer}"),
        payload: format!(r#"{{"writer":{writer},"n":{n}}}"#).into_bytes(),
        request_id: id.clone(),
        ..Default::default()
    };
    (id, e)
}

fn checkpoint_of(r: &pb::Receipt) -> (u64, [u8; 32]) {
    let n = ledger::note::Note::parse(&r.checkpoint).unwrap();
    let c = ledger::note::Checkpoint::parse_body(&n.text).unwrap();
    (c.size, c.root)
}

/// The node URLs in force (a restarted node gets a new port).
pub type Nodes = Arc<Mutex<Vec<String>>>;

/// Appends until `stop`, each request retried (same id, same content)
/// across the nodes until acknowledged, following `ledger-leader`.
pub async fn writer(w: u64, nodes: Nodes, book: Arc<Mutex<Book>>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut n = 0;
    let mut target: Option<String> = None;
    let mut turn = w as usize;
    while !stop.load(Ordering::Relaxed) {
        let (id, e) = entry(w, n);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(Instant::now() < deadline, "writer {w}: {id} not acknowledged within 90 s: writes did not resume");
            let url = target.clone().unwrap_or_else(|| {
                let list = nodes.lock().unwrap();
                turn += 1;
                list[turn % list.len()].clone()
            });
            let Ok(Ok(mut c)) =
                tokio::time::timeout(Duration::from_secs(2), LedgerServiceClient::connect(url.clone())).await
            else {
                target = None;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let req = pb::AppendRequest { log: "default".into(), entry: Some(e.clone()), actor: format!("writer-{w}") };
            match tokio::time::timeout(CALL_DEADLINE, c.append(req)).await {
                Ok(Ok(r)) => {
                    let r = r.into_inner().receipt.unwrap();
                    let a = Acked { seq: r.seq, leaf_hash: r.leaf_hash.clone(), checkpoint: checkpoint_of(&r) };
                    let mut b = book.lock().unwrap();
                    if let Some(prev) = b.acked.get(&id) {
                        assert_eq!((prev.seq, &prev.leaf_hash), (a.seq, &a.leaf_hash), "{id} acknowledged twice");
                    }
                    if b.last_ack.1.is_none() || a.seq > b.last_ack.0 {
                        b.last_ack = (a.seq, Some(Instant::now()));
                    }
                    b.acked.insert(id.clone(), a);
                    target = Some(url);
                    break;
                }
                Ok(Err(s)) => {
                    // Cancelled: the connection closed mid-call (the node was
                    // killed); the request may or may not be in: retried by id
                    let retryable = matches!(
                        s.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Internal
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                    );
                    assert!(retryable, "writer {w}: {id}: {s:?}");
                    target = s.metadata().get("ledger-leader").and_then(|v| v.to_str().ok()).map(str::to_owned);
                }
                Err(_) => target = None,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

/// [`WRITERS`] writers appending across the nodes until [`Load::finish`].
pub struct Load {
    pub book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    list: Nodes,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the writers on `nodes` (on the current runtime).
    pub fn start(nodes: &[Node]) -> Self {
        let book = Arc::new(Mutex::new(Book::default()));
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let list: Nodes = Arc::new(Mutex::new(urls(nodes)));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(w, list.clone(), book.clone(), stop.clone(), sent.clone())))
            .collect();
        Self { book, stop, sent, list, writers }
    }

    /// Points the writers at the nodes' URLs in force (after a restart).
    pub fn set_nodes(&self, nodes: &[Node]) {
        *self.list.lock().unwrap() = urls(nodes);
    }

    /// Stops the writers once each has its request in flight acknowledged;
    /// the number of requests and the book, in which each was acknowledged
    /// once.
    pub async fn finish(self) -> (u64, Book) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers {
            w.await.unwrap();
        }
        let requests = self.sent.load(Ordering::Relaxed);
        let book = Arc::try_unwrap(self.book).ok().unwrap().into_inner().unwrap();
        assert_eq!(book.acked.len() as u64, requests, "every request was acknowledged once");
        (requests, book)
    }
}

fn config(dir: &Path, name: &str, url: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!("[storage]\nkind = \"postgres\"\nurl = \"{url}\"\nnode = \"{name}\"\nlease = \"{LEASE}\"\n");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Node {
    pub name: String,
    pub data: PathBuf,
    pub config: PathBuf,
    pub d: Ledgerd,
}

impl Node {
    pub fn start(dir: &Path, name: &str, url: &str) -> Self {
        let data = dir.join(name);
        let config = config(dir, name, url);
        let d = Ledgerd::start(&data, &["--config", config.to_str().unwrap()]);
        Self { name: name.into(), data, config, d }
    }

    pub fn restart(&mut self) {
        self.d = Ledgerd::start(&self.data, &["--config", self.config.to_str().unwrap()]);
    }

    /// True when its latest role change made it the leader.
    pub fn leads(&self) -> bool {
        let roles: Vec<String> = self
            .d
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "role changed")
            .map(|v| v["fields"]["role"].as_str().unwrap_or_default().to_owned())
            .collect();
        roles.last().is_some_and(|r| r == "leader")
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.d.pid().unwrap().to_string();
        assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }
}

/// Three ledgerd nodes, node-a to node-c, on the PostgreSQL at `url`,
/// every one holding node-a's keyring (docs/HA.md); the keyring's path.
/// Blocks: call it from `block_in_place`.
pub fn start_nodes(dir: &Path, url: &str) -> (Vec<Node>, PathBuf) {
    let mut nodes = vec![Node::start(dir, "node-a", url)];
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(&nodes[0].data, "default"));
    for name in ["node-b", "node-c"] {
        let to = ledger::layout::keyring(&ledger::layout::log_dir(&dir.join(name), "default"));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&ring, to).unwrap();
        nodes.push(Node::start(dir, name, url));
    }
    (nodes, ring)
}

pub fn leader(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = nodes.iter().position(Node::leads) {
            return i;
        }
        assert!(Instant::now() < deadline, "no node leads within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The seq above which an acknowledgement was surely committed after now:
/// an acknowledgement in flight now does not count, and each writer has at
/// most one request out, so a seq above the highest acknowledged now plus
/// the number of writers was committed later.
pub fn floor(book: &Mutex<Book>) -> u64 {
    book.lock().unwrap().last_ack.0 + WRITERS
}

/// Waits until writes resumed after a fault at `since`; the time it took.
/// See [`floor`].
pub fn resumed(book: &Mutex<Book>, since: Instant) -> Duration {
    resumed_above(book, since, floor(book))
}

/// Waits (60 s at most from `since`) until a seq above `floor` (taken at
/// the fault) is acknowledged; the time from `since` to then.
pub fn resumed_above(book: &Mutex<Book>, since: Instant, floor: u64) -> Duration {
    let deadline = since + Duration::from_secs(60);
    loop {
        if let (seq, Some(t)) = book.lock().unwrap().last_ack
            && seq > floor
        {
            return t - since;
        }
        assert!(Instant::now() < deadline, "writes did not resume within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`resumed_above`] on a thread of its own, from now on: the caller can
/// wait for something else meanwhile (joining it gives the time, or its
/// panic).
pub fn watch_resumed(book: Arc<Mutex<Book>>, since: Instant, floor: u64) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || resumed_above(&book, since, floor))
}

pub fn urls(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| n.d.url.clone()).collect()
}

/// Checks one node once its replica holds `want` entries (30 s at most):
/// its size, every acknowledged entry, every checkpoint handed out.
pub async fn check_node(url: &str, book: &Book, want: u64) -> u64 {
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let l = c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await.unwrap();
        let l = l.into_inner();
        if l.size >= want || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(latest.size, want, "{url}: the replica holds every request once, nothing else");
    let latest_root: [u8; 32] = latest.root.clone().try_into().unwrap();
    for (id, a) in &book.acked {
        let e = c.get(pb::GetRequest { log: "default".into(), seq: a.seq, with_proof: false }).await;
        let e = e.unwrap_or_else(|s| panic!("{url}: acknowledged {id} (seq {}) is gone: {s}", a.seq)).into_inner();
        let e = e.entry.unwrap();
        assert_eq!(e.leaf_hash, a.leaf_hash, "{url}: acknowledged {id}: seq {} holds another entry", a.seq);
        assert_eq!(e.decoded.unwrap().request_id, *id);
    }
    let checkpoints: HashSet<(u64, [u8; 32])> = book.acked.values().map(|a| a.checkpoint).collect();
    for (size, root) in checkpoints {
        let req = pb::ProveConsistencyRequest { log: "default".into(), old_size: size, new_size: latest.size };
        let p = c.prove_consistency(req).await.unwrap().into_inner();
        let proof: Vec<[u8; 32]> = p.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
        ledger::merkle::verify_consistency(size, latest.size, &root, &latest_root, &proof)
            .unwrap_or_else(|e| panic!("{url}: checkpoint of size {size} handed out is not consistent: {e}"));
    }
    latest.size
}

/// The final checks, once the writers are finished: every node catches up
/// to the same tree, which holds each of the `requests` once
/// ([`check_node`]); then each node stops cleanly and its replica passes
/// `ledger verify` with a tree of `requests` entries.
pub async fn check_every_replica(dir: &Path, nodes: &mut [Node], book: &Book, requests: u64, ring: &Path) {
    for n in nodes.iter() {
        check_node(&n.d.url, book, requests).await;
    }

    let vkeys = ledger(&nodes[0].d.url, dir, &["keys", "public"]);
    std::fs::write(dir.join("vkeys"), vkeys.stdout).unwrap();
    for n in nodes.iter_mut() {
        let code = tokio::task::block_in_place(|| n.d.stop());
        let tail: Vec<String> = n.d.logs().into_iter().rev().take(12).collect();
        assert_eq!(code, Some(0), "{} stops cleanly: {tail:#?}", n.name);
        let log = ledger::layout::log_dir(&n.data, "default");
        let r = ledger(
            "http://127.0.0.1:1",
            dir,
            &[
                "verify",
                log.to_str().unwrap(),
                "--vkey",
                "vkeys",
                "--hmac-key",
                ring.to_str().unwrap(),
                "--output",
                "json",
            ],
        );
        assert_eq!(r.code, 0, "{}: {}{}", n.name, r.stdout, r.stderr);
        assert_eq!(r.json()["tree_size"], requests, "{}", n.name);
    }
}
