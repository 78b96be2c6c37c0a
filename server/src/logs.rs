//! The hosted logs: each one a `Ledger`, a bounded append queue and two
//! writer threads that take turns batching whatever is queued: one
//! sequences a batch while the other's syncs (docs/ARCHITECTURE.md "The
//! write path").
//!
//! Owns: the data-dir lock, the queues, the writer threads, shutdown order.
//! Must not: answer gRPC (services do) or bypass the queue for appends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ledger::entry::NewEntry;
use ledger::log::{AppendError, Receipt, system_clock};
use ledger::{Ledger, LedgerReader, LogOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::Status;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::status;
use ledger::sync;

/// One queued append (one or more entries from one request).
pub struct Job {
    entries: Vec<NewEntry>,
    /// entries it brought (its reply has as many results)
    count: usize,
    reply: oneshot::Sender<Vec<Result<Receipt, AppendError>>>,
}

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another process holds the data directory.
    #[error(
        "data directory {0} is in use by another ledgerd (lock file {0}/LOCK); stop it or choose another --data-dir"
    )]
    Locked(PathBuf),
    /// The data directory cannot be used.
    #[error("data directory {path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The database of `[storage] kind = "postgres"` cannot be used.
    #[error("log {log:?}: storage: {reason}")]
    Storage {
        /// the log
        log: String,
        /// why
        reason: String,
    },
    /// A log did not open.
    #[error("log {log:?}: {source}")]
    Log {
        /// the log
        log: String,
        /// why
        source: ledger::LedgerError,
    },
}

/// One hosted log.
pub struct LogHandle {
    /// its name
    pub name: String,
    ledger: Arc<Ledger>,
    queue: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    depth: usize,
    /// the visible size, for Tail
    pub size: watch::Receiver<u64>,
    size_tx: Arc<watch::Sender<u64>>,
    /// unix ns of the latest checkpoint
    pub checkpoint_at: Arc<AtomicI64>,
    /// each identity's share of the queue (`per_identity.queue_share`)
    pub shares: Arc<crate::limits::Shares>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// with `[storage] kind = "postgres"`: this node's part in the log
    pub replication: Option<crate::replicated::Replication>,
    /// the witnesses' cosignatures of its checkpoints
    pub cosignatures: Arc<crate::witnessing::Cosignatures>,
}

impl LogHandle {
    /// `Ok` when this node may append to the log (always on the local
    /// store); on a follower `UNAVAILABLE` naming the leader.
    pub fn writable(&self) -> Result<(), Status> {
        self.replication.as_ref().map_or(Ok(()), |r| r.writable(&self.name))
    }

    /// The read side.
    pub fn reader(&self) -> LedgerReader {
        self.ledger.reader()
    }

    /// The ledger itself (for admin actions that take the writer lock).
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Queues entries; the receiver yields one result per entry.
    pub fn submit(
        &self,
        entries: Vec<NewEntry>,
    ) -> Result<oneshot::Receiver<Vec<Result<Receipt, AppendError>>>, Status> {
        let (reply, rx) = oneshot::channel();
        let guard = sync::lock(&self.queue);
        let Some(q) = guard.as_ref() else { return Err(status::shutting_down()) };
        match q.try_send(Job { count: entries.len(), entries, reply }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(status::queue_full(&self.name, self.depth)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(status::shutting_down()),
        }
    }

    /// Queues entries, waiting for room (for streams, whose own flow control
    /// bounds what waits).
    pub async fn submit_wait(
        &self,
        entries: Vec<NewEntry>,
    ) -> Result<oneshot::Receiver<Vec<Result<Receipt, AppendError>>>, Status> {
        let q = sync::lock(&self.queue).clone().ok_or_else(status::shutting_down)?;
        let (reply, rx) = oneshot::channel();
        q.send(Job { count: entries.len(), entries, reply }).await.map_err(|_| status::shutting_down())?;
        Ok(rx)
    }

    /// Tells Tail streams about entries written outside the queue (admin
    /// actions, which take the writer lock themselves).
    pub fn published(&self) {
        publish(&self.size_tx, self.ledger.size());
    }

    /// Appends waiting.
    pub fn queued(&self) -> usize {
        let guard = sync::lock(&self.queue);
        guard.as_ref().map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// Stops taking appends, lets the writer finish what is queued, writes
    /// the final checkpoint and fsyncs.
    fn stop(&self) {
        if let Some(r) = &self.replication {
            r.stop();
        }
        sync::lock(&self.queue).take();
        if let Some(t) = sync::lock(&self.writer).take() {
            let _ = t.join();
        }
        if let Some(r) = &self.replication {
            r.release();
        }
    }
}

/// All hosted logs, and the lock on the data directory.
pub struct Logs {
    /// by name
    pub by_name: BTreeMap<String, Arc<LogHandle>>,
    _lock: std::fs::File,
}

impl Logs {
    /// Locks the data directory and opens every configured log.
    pub fn open(config: &Config, metrics: &Arc<Metrics>) -> Result<Self, StartError> {
        let dir = &config.data_dir;
        let io = |e| StartError::Io { path: dir.clone(), source: e };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StartError::Locked(dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut by_name = BTreeMap::new();
        for lc in &config.logs {
            let h = open_log(config, &lc.name, config.policy_of(lc), metrics)?;
            by_name.insert(lc.name.clone(), Arc::new(h));
        }
        Ok(Self { by_name, _lock: lock })
    }

    /// The log named `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<LogHandle>, Status> {
        self.by_name.get(name).ok_or_else(|| status::unknown_log(name, &self.names()))
    }

    /// Hosted log names.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// Stops every writer (queued appends finish first).
    pub fn stop(&self) {
        for h in self.by_name.values() {
            h.stop();
        }
    }
}

fn open_log(
    config: &Config,
    name: &str,
    policy: ledger::policy::Policy,
    metrics: &Arc<Metrics>,
) -> Result<LogHandle, StartError> {
    let mut o = LogOptions::new(&format!("{}/{name}", config.origin_prefix));
    o.limits = config.limits.clone();
    o.policy = policy;
    o.key_policy = config.keys;
    o.segment_bytes = config.segment_bytes;
    o.checkpoint_interval = config.checkpoint_interval;
    o.max_artifact_bytes = config.max_artifact_bytes;
    o.min_free_bytes = config.min_free_bytes;
    o.clock = system_clock();
    let dir = ledger::layout::log_dir(&config.data_dir, name);
    let (ledger, report, pg) = open_store(config, name, &dir, o)?;
    if report.keys_created {
        tracing::warn!(log = name, keyring = %dir.join("keys/keyring.json").display(), "no keys found: generated a new Ed25519 checkpoint key and HMAC key; back up the keyring and publish the vkeys (ledger keys public)");
    }
    if let Some((aside, why)) = &report.index_rebuilt {
        tracing::warn!(log = name, previous = %aside, reason = %why, "the index was rebuilt from the journal");
    }
    if let Some((seg, len, cut)) = &report.truncated {
        tracing::warn!(log = name, segment = %seg, new_len = len, removed_bytes = cut, "cut a torn, never-acknowledged tail from the journal");
    }
    tracing::info!(log = name, entries = report.size, indexed_from_journal = report.caught_up, dir = %dir.display(), "log open");
    let ledger = Arc::new(ledger);
    let (tx, rx) = mpsc::channel(config.queue_depth);
    let (size_tx, size_rx) = watch::channel(ledger.size());
    let size_tx = Arc::new(size_tx);
    let replication = match pg {
        None => None,
        Some(store) => Some(start_replication(config, name, &ledger, store, &size_tx)?),
    };
    let checkpoint_at = Arc::new(AtomicI64::new((system_clock())()));
    let w = Writer {
        ledger: ledger.clone(),
        name: name.to_owned(),
        max_batch: config.max_batch,
        metrics: metrics.clone(),
        size: size_tx.clone(),
        checkpoint_at: checkpoint_at.clone(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("writer-{name}"))
        .spawn(move || w.run(rx))
        .map_err(|e| StartError::Io { path: dir.clone(), source: e })?;
    Ok(LogHandle {
        name: name.to_owned(),
        ledger,
        queue: std::sync::Mutex::new(Some(tx)),
        depth: config.queue_depth,
        size: size_rx,
        size_tx,
        checkpoint_at,
        shares: crate::limits::Shares::new(crate::config::PerIdentity::of(
            config.per_identity.queue_share,
            config.queue_depth,
        )),
        writer: std::sync::Mutex::new(Some(thread)),
        replication,
        cosignatures: Arc::default(),
    })
}

type Opened = (Ledger, ledger::log::OpenReport, Option<Arc<ledger_store_pg::PgStore>>);

/// Opens the log on the configured store.
fn open_store(config: &Config, name: &str, dir: &std::path::Path, o: LogOptions) -> Result<Opened, StartError> {
    let failed = |e| StartError::Log { log: name.into(), source: e };
    if config.storage.kind == crate::config::StorageKind::Local {
        let (l, report) = ledger::store::file::open(dir, o).map_err(failed)?;
        return Ok((l, report, None));
    }
    let storage = |e: &dyn std::fmt::Display| StartError::Storage { log: name.into(), reason: e.to_string() };
    let lease = config.storage.lease().map_err(|e| storage(&e))?;
    let transport = config.storage.transport().map_err(|e| storage(&e))?;
    let db =
        Arc::new(ledger_store_pg::Db::with_transport(&config.storage.url, lease, transport).map_err(|e| storage(&e))?);
    db.install().map_err(|e| storage(&e))?;
    let (l, report, store) = ledger_store_pg::engine::open(dir, name, db, o).map_err(failed)?;
    Ok((l, report, Some(store)))
}

/// Starts this node's replication of the log (it begins as a follower).
fn start_replication(
    config: &Config,
    name: &str,
    ledger: &Arc<Ledger>,
    store: Arc<ledger_store_pg::PgStore>,
    size: &Arc<watch::Sender<u64>>,
) -> Result<crate::replicated::Replication, StartError> {
    let lease = config.storage.lease().map_err(|e| StartError::Storage { log: name.into(), reason: e.to_string() })?;
    let node_name = config.storage.node_name();
    let me = ledger_store_pg::Identity { node: node_name.clone(), advertise: config.advertise(), lease };
    let node = ledger_store_pg::Node::new(me, ledger.clone(), store.clone());
    let (size, l) = (size.clone(), ledger.clone());
    let parts = (node_name, node, ledger.clone());
    crate::replicated::Replication::start(name, parts, store, lease, move || publish(&size, l.size()))
        .map_err(|e| StartError::Io { path: config.data_dir.clone(), source: e })
}

struct Writer {
    ledger: Arc<Ledger>,
    name: String,
    max_batch: usize,
    metrics: Arc<Metrics>,
    size: Arc<watch::Sender<u64>>,
    checkpoint_at: Arc<AtomicI64>,
}

/// Writer threads per log: while one waits for its batch's fdatasync, the
/// other takes what queued up meanwhile and sequences it (pipelined group
/// commit, docs/ARCHITECTURE.md "Write path").
const WRITER_THREADS: usize = 2;

impl Writer {
    /// Runs the writer threads until the queue is closed and drained, then
    /// writes the final checkpoint.
    fn run(self, rx: mpsc::Receiver<Job>) {
        let rx = std::sync::Mutex::new(rx);
        std::thread::scope(|s| {
            for i in 1..WRITER_THREADS {
                let spawned = std::thread::Builder::new()
                    .name(format!("writer-{}-{i}", self.name))
                    .spawn_scoped(s, || self.take_turns(&rx));
                if let Err(e) = spawned {
                    tracing::warn!(log = %self.name, error = %e, "a second writer thread did not start: batches are not pipelined");
                }
            }
            self.take_turns(&rx);
        });
        if let Err(e) = self.ledger.close() {
            tracing::error!(log = %self.name, error = %e, "final checkpoint failed");
        } else {
            tracing::info!(log = %self.name, entries = self.ledger.size(), "log closed with a final checkpoint");
        }
    }

    /// Holding the queue, takes whatever is queued (up to max_batch entries)
    /// and sequences it as one batch (so batches keep the queue's order);
    /// then, without the queue, waits for it to be durable and replies.
    fn take_turns(&self, rx: &std::sync::Mutex<mpsc::Receiver<Job>>) {
        loop {
            let (pending, jobs, n) = {
                let mut rx = sync::lock(rx);
                let Some(first) = rx.blocking_recv() else { return };
                let mut n = first.entries.len();
                let mut jobs = vec![first];
                while n < self.max_batch {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.entries.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let entries: Vec<NewEntry> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.entries)).collect();
                (self.ledger.begin_batch(entries), jobs, n)
            };
            self.finish(pending, jobs, n);
        }
    }

    fn finish(&self, pending: ledger::log::PendingBatch, jobs: Vec<Job>, n: usize) {
        let results = pending.wait();
        if results.iter().any(|r| r.as_ref().is_ok_and(|r| !r.duplicate)) {
            self.metrics.batch_size.with_label_values(&[&self.name]).observe(n as f64);
            let sync = self.ledger.last_sync_nanos() as f64 / 1e9;
            self.metrics.fsync_seconds.with_label_values(&[&self.name]).observe(sync);
            self.checkpoint_at.store((system_clock())(), Ordering::Relaxed);
            publish(&self.size, self.ledger.size());
        }
        let mut results = results.into_iter();
        for job in jobs {
            let _ = job.reply.send(results.by_ref().take(job.count).collect());
        }
    }
}

/// Raises the visible size to `after` (never lowers it).
fn publish(size: &watch::Sender<u64>, after: u64) {
    size.send_if_modified(|v| std::mem::replace(v, (*v).max(after)) < after);
}
