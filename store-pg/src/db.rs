//! The database from threads that do not run async code: the ledger's
//! group sync and the replication loop call these and block; the
//! connection and every statement run on a small runtime of its own.
//!
//! Owns: that runtime, one connection to the read-write server (made again
//! after it broke, through the URL's host list), and the blocking calls.
//! Must not: retry anything (the caller decides; a COMMIT is never retried).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::fence::{self, Batch, FenceError, Head, Lease, Stored};
use crate::schema::{self, ConnectError};
use crate::tls::Transport;

/// A database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No read-write server could be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A statement or transaction failed, or was fenced.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// The database runtime could not start.
    #[error("starting the database runtime: {0}")]
    Runtime(std::io::Error),
}

/// A connection shared by one log's writer and replication loop.
pub struct Db {
    /// taken only by `drop`
    rt: Option<tokio::runtime::Runtime>,
    url: String,
    /// `idle_in_transaction_session_timeout` of the session, ms
    idle_ms: u64,
    transport: Transport,
    client: Arc<Mutex<Option<Client>>>,
}

type Shared = Arc<Mutex<Option<Client>>>;
/// How to connect: URL, idle limit (ms), transport.
type How = (String, u64, Transport);

/// The client, connected again when there is none or it broke, with
/// [`schema::idle_limit`] of `idle_ms`.
async fn ready<'a>(slot: &'a mut Option<Client>, how: &How) -> Result<&'a mut Client, DbError> {
    let (url, idle_ms, transport) = how;
    if slot.as_ref().is_none_or(|c| c.is_closed()) {
        *slot = None;
        let client = tokio::time::timeout(Duration::from_secs(10), schema::connect_writer_over(url, transport))
            .await
            .map_err(|_| ConnectError::Url { reason: "connecting took longer than 10 s".into() })??;
        schema::idle_limit(&client, *idle_ms).await.map_err(|source| ConnectError::Session { source })?;
        *slot = Some(client);
    }
    Ok(slot.as_mut().expect("connected above"))
}

impl Db {
    /// Starts the runtime; connects at the first call. `url` is a libpq URL
    /// or key=value string (several hosts allowed). `lease` is the leaders'
    /// lease: a transaction of this session left idle for half of it (a
    /// stopped process holding the head row's lock) is ended by the server
    /// (`schema::idle_limit`), so the next leader is not kept waiting.
    pub fn new(url: &str, lease: Duration) -> Result<Self, DbError> {
        Self::with_transport(url, lease, Transport::Plain)
    }

    /// [`Db::new`] over `transport` (TLS when configured).
    pub fn with_transport(url: &str, lease: Duration, transport: Transport) -> Result<Self, DbError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ledger-pg")
            .enable_all()
            .build()
            .map_err(DbError::Runtime)?;
        let idle_ms = (lease.as_millis() as u64 / 2).max(500);
        Ok(Self { rt: Some(rt), url: url.to_owned(), idle_ms, transport, client: Arc::new(Mutex::new(None)) })
    }

    /// Runs `fut` on the database runtime and waits for it (from any thread,
    /// async ones included).
    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.as_ref().expect("taken only by drop").spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("the database task sends its result")
    }

    fn parts(&self) -> (Shared, How) {
        (self.client.clone(), (self.url.clone(), self.idle_ms, self.transport.clone()))
    }

    /// Creates the tables when missing.
    pub fn install(&self) -> Result<(), DbError> {
        let (c, url) = self.parts();
        self.block(async move {
            let mut g = c.lock().await;
            let client = ready(&mut g, &url).await?;
            schema::install(client).await.map_err(|source| {
                DbError::Fence(FenceError::Db { log: String::new(), context: "creating the tables", source })
            })
        })
    }

    /// The head of `log`.
    pub fn head(&self, log: &str) -> Result<Option<Head>, DbError> {
        let ((c, url), log) = (self.parts(), log.to_owned());
        self.block(async move {
            let mut g = c.lock().await;
            Ok(fence::head(ready(&mut g, &url).await?, &log).await?)
        })
    }

    /// Takes the lease (`fence::acquire`).
    pub fn acquire(&self, log: &str, node: &str, advertise: &str, length: Duration) -> Result<Lease, DbError> {
        let ((c, url), log, node, addr) = (self.parts(), log.to_owned(), node.to_owned(), advertise.to_owned());
        self.block(async move {
            let mut g = c.lock().await;
            Ok(fence::acquire(ready(&mut g, &url).await?, &log, &node, &addr, length).await?)
        })
    }

    /// Renews the lease (`fence::renew`).
    pub fn renew(&self, lease: &Lease) -> Result<(), DbError> {
        let ((c, url), lease) = (self.parts(), lease.clone());
        self.block(async move {
            let mut g = c.lock().await;
            Ok(fence::renew(ready(&mut g, &url).await?, &lease).await?)
        })
    }

    /// Gives the lease up (`fence::release`).
    pub fn release(&self, lease: &Lease) -> Result<(), DbError> {
        let ((c, url), lease) = (self.parts(), lease.clone());
        self.block(async move {
            let mut g = c.lock().await;
            Ok(fence::release(ready(&mut g, &url).await?, &lease).await?)
        })
    }

    /// Committed batches from `from_seq` on (`fence::batches`).
    pub fn batches(&self, log: &str, from_seq: u64, max_batches: i64) -> Result<Vec<Stored>, DbError> {
        let ((c, url), log) = (self.parts(), log.to_owned());
        self.block(async move {
            let mut g = c.lock().await;
            Ok(fence::batches(ready(&mut g, &url).await?, &log, from_seq, max_batches).await?)
        })
    }

    /// Commits one batch under the lease (`fence::commit`). A connection
    /// that failed is dropped, so the next call connects again.
    pub fn commit(&self, lease: &Lease, batch: OwnedBatch) -> Result<(), DbError> {
        let ((c, url), lease) = (self.parts(), lease.clone());
        self.block(async move {
            let mut g = c.lock().await;
            let parts: Vec<&[u8]> = batch.parts.iter().map(Vec::as_slice).collect();
            let b = Batch {
                first_seq: batch.first_seq,
                entries: batch.entries,
                parts: &parts,
                root: &batch.root,
                checkpoint: &batch.checkpoint,
                last_recorded_at: batch.last_recorded_at,
                rewrites: &batch.rewrites,
            };
            let r = fence::commit(ready(&mut g, &url).await?, &lease, &b).await;
            if matches!(r, Err(FenceError::Ambiguous { .. } | FenceError::Db { .. })) {
                *g = None;
            }
            Ok(r?)
        })
    }
}

/// The runtime stops without waiting (a `Db` may be dropped on an async
/// thread, where blocking is not allowed); the connection closes with it.
impl Drop for Db {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A batch with its bytes owned, to cross into the database runtime.
#[derive(Debug, Clone)]
pub struct OwnedBatch {
    /// seq of its first entry
    pub first_seq: u64,
    /// entries in it
    pub entries: u32,
    /// its frames in parts of at most `schema::MAX_PART_BYTES`, split at
    /// frame boundaries
    pub parts: Vec<Vec<u8>>,
    /// the root after it
    pub root: Vec<u8>,
    /// its signed checkpoint
    pub checkpoint: String,
    /// its last recorded_at
    pub last_recorded_at: i64,
    /// stored frames its redaction entries rewrite
    pub rewrites: Vec<crate::redact::Rewrite>,
}
