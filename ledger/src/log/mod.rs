//! One log over a store (`crate::store`): open (the tip from the store,
//! keys, a fresh checkpoint), the batched append path and the concurrent
//! read path.
//!
//! Owns: validation, policy, dedup semantics, sequencing, leaf, hash and
//! HMAC, the compact range and receipts, checkpoint signing and the history
//! cadence, the order of publication, admin actions, query planning and
//! paging — what every store shares. Must not: know how a store keeps its
//! data, block readers on the writer, or acknowledge anything before the
//! store made it durable.

mod admin;
mod append;
mod checkpoints;
mod group;
mod read;
mod redact;
mod replica;

use std::sync::{Arc, Mutex, RwLock};

pub use admin::{KEY_ROTATION, POLICY_RELOAD, REINDEX};
pub use append::{AppendError, Receipt};
pub use checkpoints::Inclusion;
pub use group::PendingBatch;
pub use read::{Page, QUERY_PAGE_BYTES, Query, StoredEntry};
pub use redact::{REDACTION, RedactError, SERVER_REQUEST_ID_PREFIXES, redaction_request_id, redaction_target};
pub use replica::ReplicaError;

use crate::entry::Limits;
use crate::hash::Hash;
use crate::keys::{KeyError, KeyPolicy, Keyring};
use crate::merkle::{CompactRange, NodeSource, ProofError};
use crate::note::{Checkpoint, NoteSigner};
use crate::policy::Policy;
pub use crate::store::OpenReport;
use crate::store::{LogStore, LogWriter, Opened, StoreError, StoreErrorKind, Visibility};
use crate::sync::lock;

/// The clock: unix nanoseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    })
}

/// How a log behaves.
#[derive(Clone)]
pub struct LogOptions {
    /// checkpoint origin and key name, `<prefix>/<log name>`
    pub origin: String,
    /// input limits
    pub limits: Limits,
    /// categories
    pub policy: Policy,
    /// key ages
    pub key_policy: KeyPolicy,
    /// segment roll size in bytes (the file store)
    pub segment_bytes: u64,
    /// a history checkpoint frame at least every this many entries
    pub checkpoint_interval: u64,
    /// largest artifact in bytes
    pub max_artifact_bytes: u64,
    /// appends are refused (disk full) while the log's filesystem has less
    /// free space than this, so the journal and index never run out
    /// mid-batch (the file store)
    pub min_free_bytes: u64,
    /// time source
    pub clock: Clock,
}

impl LogOptions {
    /// Defaults for a log with this origin.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            limits: Limits::default(),
            policy: Policy::default(),
            key_policy: KeyPolicy::default(),
            segment_bytes: 64 << 20,
            checkpoint_interval: 1024,
            max_artifact_bytes: 1 << 30,
            min_free_bytes: 64 << 20,
            clock: system_clock(),
        }
    }
}

/// A checkpoint with its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// size and root
    pub checkpoint: Checkpoint,
    /// the C2SP signed note text
    pub note: String,
}

/// A failure of the log outside one entry's validation.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// keyring failure
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// proof failure
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The index claims entries that the journal does not have.
    #[error(
        "the index holds {indexed} entries but the journal does not have entry {missing}: acknowledged data is missing from the journal (restore the journal from backup, or delete the index to rebuild it from what the journal holds)"
    )]
    IndexAhead {
        /// entries the index claims
        indexed: u64,
        /// the first entry not found
        missing: u64,
    },
    /// A stored record is unreadable or is not the entry it should be.
    #[error("entry {seq} is damaged in the store: {reason}")]
    BadRecord {
        /// the entry
        seq: u64,
        /// what is wrong
        reason: String,
    },
    /// No entry with this seq.
    #[error("entry {seq} does not exist: the log has {size} entries")]
    NotFound {
        /// asked for
        seq: u64,
        /// current size
        size: u64,
    },
    /// The keyring belongs to another origin.
    #[error("keyring {keyring} signs as {found:?} but the log's origin is {expected:?}")]
    OriginMismatch {
        /// the keyring
        keyring: String,
        /// the origin in the keys
        found: String,
        /// the configured origin
        expected: String,
    },
    /// The log stopped accepting writes after a storage failure.
    #[error("the log stopped accepting writes after a storage failure ({0}); restart the server")]
    Poisoned(String),
}

impl From<StoreError> for LedgerError {
    fn from(e: StoreError) -> Self {
        match e.kind {
            StoreErrorKind::Missing { indexed, missing } => LedgerError::IndexAhead { indexed, missing },
            _ => LedgerError::Store(e),
        }
    }
}

/// The writer's view of the end of the log.
#[derive(Clone, Debug)]
struct Tip {
    next_seq: u64,
    last_hash: Hash,
    last_time: i64,
    range: CompactRange,
    last_history: u64,
}

struct Writer {
    store: Box<dyn LogWriter>,
    tip: Tip,
    /// last seq per subject, from committed batches (bounded; a miss asks the store)
    subjects: crate::FastMap<String, u64>,
    /// request-id hashes of committed batches the store may not serve yet
    unindexed: append::UnindexedRequests,
    /// a replica's open redaction claims (`BatchStart::redactions`); kept in
    /// memory only (docs/HA.md "Admin actions")
    claims: Vec<(u64, u64)>,
}

/// Subjects cached by the writer before the cache is cleared.
const SUBJECT_CACHE: usize = 200_000;

struct Shared {
    opts: LogOptions,
    store: Arc<dyn LogStore>,
    /// what readers see, what is acknowledged, whether writes stopped
    vis: Arc<Visibility>,
    keyring: RwLock<Keyring>,
    /// the category policy in force (starts as `opts.policy`; swapped by a policy reload)
    policy: RwLock<Arc<Policy>>,
    /// written batches waiting for the sync that makes them durable
    group: group::GroupSync,
}

/// Merkle nodes from a store, for proofs.
pub(crate) struct StoreNodes<'a>(pub &'a dyn LogStore);

impl NodeSource for StoreNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.0.node(level, index).ok().flatten().ok_or(ProofError::MissingNode { level, index })
    }
}

/// The read side of a log: cheap to clone, never waits for the writer.
#[derive(Clone)]
pub struct LedgerReader {
    s: Arc<Shared>,
}

/// One open log: a single writer (batches are serialised) and any number of
/// concurrent readers.
pub struct Ledger {
    reader: LedgerReader,
    writer: Mutex<Writer>,
}

impl Drop for Ledger {
    /// Makes written batches durable, then stops the store's background
    /// work after it applied what it was sent.
    fn drop(&mut self) {
        let _ = self.s.flush_written();
        self.s.store.stop();
    }
}

impl std::ops::Deref for Ledger {
    type Target = LedgerReader;
    fn deref(&self) -> &LedgerReader {
        &self.reader
    }
}

/// The writer's tip, from a store just opened with `n` entries.
fn tip(store: &dyn LogStore, n: u64) -> Result<Tip, LedgerError> {
    let (last_hash, last_time) = match n.checked_sub(1) {
        None => ([0u8; 32], 0),
        Some(last) => {
            let m = store.leaf_meta(last)?.ok_or(LedgerError::IndexAhead { indexed: n, missing: last })?;
            (m.leaf_hash, m.recorded_at)
        }
    };
    let range = CompactRange::from_source(&StoreNodes(store), n)?;
    let last_history = store.checkpoints(0, n)?.last().map_or(0, |(s, _)| *s);
    Ok(Tip { next_seq: n, last_hash, last_time, range, last_history })
}

impl Ledger {
    /// Opens a log over a store just opened, with its keyring: the tip
    /// from the store, a fresh checkpoint, interrupted redactions finished.
    pub fn open(opened: Opened, keyring: Keyring, opts: LogOptions) -> Result<(Self, OpenReport), LedgerError> {
        let Opened { store, writer, mut report } = opened;
        if let Some(s) = keyring.active_signers().first().filter(|s| s.name() != opts.origin) {
            return Err(LedgerError::OriginMismatch {
                keyring: keyring.path().display().to_string(),
                found: s.name().to_owned(),
                expected: opts.origin.clone(),
            });
        }
        let tip = tip(store.as_ref(), report.size)?;
        let checkpoint = Checkpoint { origin: opts.origin.clone(), size: tip.next_seq, root: tip.range.root() };
        let note = checkpoint.sign(&keyring.active_signers());
        report.size = tip.next_seq;
        let vis = Arc::new(Visibility::new(Arc::new(SignedCheckpoint { checkpoint, note })));
        store.start(vis.clone())?;
        let shared = Shared {
            store,
            vis,
            keyring: RwLock::new(keyring),
            policy: RwLock::new(Arc::new(opts.policy.clone())),
            group: group::GroupSync::new(tip.next_seq),
            opts,
        };
        let writer = Writer {
            store: writer,
            tip,
            subjects: Default::default(),
            unindexed: Default::default(),
            claims: Vec::new(),
        };
        let ledger = Self { reader: LedgerReader { s: Arc::new(shared) }, writer: Mutex::new(writer) };
        report.redactions_finished = ledger.finish_redactions()?;
        Ok((ledger, report))
    }

    /// A read handle that can outlive borrows of the ledger.
    pub fn reader(&self) -> LedgerReader {
        self.reader.clone()
    }

    /// Writes a final history checkpoint (if the tree grew since the last
    /// one) and makes everything durable. Call on shutdown.
    pub fn close(&self) -> Result<(), LedgerError> {
        let mut w = lock(&self.writer);
        if let Some(p) = self.s.vis.stopped() {
            return Err(LedgerError::Poisoned(p)); // the store's end is not the writer's to trust
        }
        self.s.flush_written().map_err(|e| LedgerError::Poisoned(e.to_string()))?;
        self.s.vis.drain();
        let mut history = None;
        if w.tip.next_seq > w.tip.last_history {
            let latest = self.latest_checkpoint();
            history = Some((latest.checkpoint.size, latest.note.clone()));
            w.tip.last_history = w.tip.next_seq;
        }
        w.store.close(history)?;
        Ok(())
    }

    fn signers_with<'a>(ring: &'a Keyring, extra: &'a [NoteSigner]) -> Vec<&'a NoteSigner> {
        let mut v = ring.active_signers();
        for e in extra {
            if !v.iter().any(|s| s.id() == e.id()) {
                v.push(e);
            }
        }
        v
    }
}
