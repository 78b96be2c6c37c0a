//! One log: open (recovery, index catch-up, keys), the batched append path
//! and the concurrent read path.
//!
//! Owns: the write order of DESIGN "The write path" — frames appended, one
//! fdatasync, then index, checkpoint and receipts. Must not: block readers
//! on the writer, or acknowledge anything before the fdatasync.

mod admin;
mod append;
mod catchup;
mod group;
mod indexer;
mod read;
mod redact;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use admin::{POLICY_RELOAD, REINDEX, REINDEX_MARKER};
pub use append::{AppendError, Receipt};
pub use group::PendingBatch;
pub use read::{Page, QUERY_PAGE_BYTES, Query, StoredEntry};
pub use redact::{REDACTION, RedactError, redaction_request_id};

use crate::artifacts::ArtifactStore;
use crate::entry::Limits;
use crate::hash::Hash;
use crate::index::{Index, IndexError};
use crate::journal::{Journal, JournalError, JournalReader};
use crate::keys::{KeyError, KeyPolicy, Keyring};
use crate::merkle::{CompactRange, ProofError};
use crate::note::{Checkpoint, NoteSigner};
use crate::policy::Policy;

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
    /// segment roll size in bytes
    pub segment_bytes: u64,
    /// a history checkpoint frame at least every this many entries
    pub checkpoint_interval: u64,
    /// largest artifact in bytes
    pub max_artifact_bytes: u64,
    /// appends are refused (disk full) while the log's filesystem has less
    /// free space than this, so the journal and index never run out mid-batch
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
    /// journal failure
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// index failure
    #[error(transparent)]
    Index(#[from] IndexError),
    /// keyring failure
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// proof failure
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// artifact failure
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
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
    /// A journal record is unreadable or out of order.
    #[error("journal segment {segment} offset {offset}: {reason}")]
    BadRecord {
        /// the segment file
        segment: PathBuf,
        /// the offset
        offset: u64,
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
    #[error("keyring {path} signs as {found:?} but the log's origin is {expected:?}")]
    OriginMismatch {
        /// the keyring
        path: PathBuf,
        /// the origin in the keys
        found: String,
        /// the configured origin
        expected: String,
    },
    /// The log stopped accepting writes after a storage failure.
    #[error("the log stopped accepting writes after a storage failure ({0}); restart the server")]
    Poisoned(String),
}

/// What opening a log found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// keys were generated because there were none
    pub keys_created: bool,
    /// a torn tail was cut: (segment, new length, bytes removed)
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// entries added to the index from the journal
    pub caught_up: u64,
    /// entries in the log
    pub size: u64,
    /// the index was rebuilt from the journal: (where the old one went — `index.damaged-<ns>`, or
    /// `index/` itself when a requested rebuild deleted it — and why)
    pub index_rebuilt: Option<(PathBuf, String)>,
    /// redactions whose payload removal a crash interrupted, finished now
    pub redactions_finished: u64,
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
    journal: Journal,
    tip: Tip,
    /// last seq per subject, from committed batches (bounded; a miss asks the index)
    subjects: crate::FastMap<String, u64>,
    /// request-id hashes of committed batches the index may not hold yet
    recent: append::Recent,
}

/// Subjects cached by the writer before the cache is cleared.
const SUBJECT_CACHE: usize = 200_000;

struct Shared {
    dir: PathBuf,
    opts: LogOptions,
    index: Index,
    journal: JournalReader,
    artifacts: ArtifactStore,
    /// what readers see, what is acknowledged
    vis: indexer::Visibility,
    keyring: RwLock<Keyring>,
    /// the category policy in force (starts as `opts.policy`; swapped by a policy reload)
    policy: RwLock<Arc<Policy>>,
    poisoned: Mutex<Option<String>>,
    /// written batches waiting for the fdatasync that makes them durable
    group: group::GroupSync,
    /// the journal's durable end (segment, offset): what readers may read
    durable: Mutex<(u64, u64)>,
    last_sync_ns: std::sync::atomic::AtomicU64,
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
    indexer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ledger {
    /// Makes written batches durable, then stops the index thread after it
    /// applied what it was sent.
    fn drop(&mut self) {
        let _ = self.s.flush_written();
        self.s.group.stop_index();
        if let Some(t) = self.indexer.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    /// Stops writes after a storage failure (the first reason is kept).
    fn poison(&self, reason: String) {
        self.poisoned.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason);
    }
}

impl std::ops::Deref for Ledger {
    type Target = LedgerReader;
    fn deref(&self) -> &LedgerReader {
        &self.reader
    }
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Opens the index; a damaged one is moved aside (kept for inspection) and
/// rebuilt from the journal, which is the source of truth.
fn open_index(dir: &Path, now: i64) -> Result<(Index, Option<(PathBuf, String)>), LedgerError> {
    let path = dir.join("index");
    let marker = dir.join(admin::REINDEX_MARKER);
    if marker.exists() {
        // A requested rebuild: the old index goes; the marker goes once the
        // empty index exists (catch-up then fills it from the journal).
        let by = std::fs::read_to_string(&marker).unwrap_or_default();
        let aside = dir.join(format!("index.replaced-{now}"));
        if path.exists() {
            std::fs::rename(&path, &aside).map_err(|x| JournalError::io(&path, x))?;
        }
        let index = Index::open(&path)?;
        std::fs::remove_file(&marker).map_err(|x| JournalError::io(&marker, x))?;
        let _ = std::fs::remove_dir_all(&aside);
        return Ok((index, Some((path, format!("rebuild requested by reindex entry {}", by.trim())))));
    }
    match Index::open(&path) {
        Ok(i) => Ok((i, None)),
        Err(e) if e.is_damage() => {
            let aside = dir.join(format!("index.damaged-{now}"));
            std::fs::rename(&path, &aside).map_err(|x| JournalError::io(&path, x))?;
            Ok((Index::open(&path)?, Some((aside, e.to_string()))))
        }
        Err(e) => Err(e.into()),
    }
}

impl Ledger {
    /// Opens (or creates) the log in `dir`: keys, journal recovery, index
    /// catch-up, and a fresh checkpoint.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<(Self, OpenReport), LedgerError> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
        let now = (opts.clock)();
        let ring_path = dir.join("keys").join("keyring.json");
        let (keyring, keys_created) = Keyring::open_or_create(&ring_path, &opts.origin, now, &opts.key_policy)?;
        if let Some(s) = keyring.active_signers().first().filter(|s| s.name() != opts.origin) {
            return Err(LedgerError::OriginMismatch {
                path: ring_path,
                found: s.name().to_owned(),
                expected: opts.origin.clone(),
            });
        }
        let journal_dir = dir.join("journal");
        let journal = Journal::open(&journal_dir, opts.segment_bytes)?;
        let (index, index_rebuilt) = open_index(dir, now)?;
        let caught_up = catchup::catch_up(&index, &journal_dir)?;
        let tip = catchup::tip(&index)?;
        let checkpoint = Checkpoint { origin: opts.origin.clone(), size: tip.next_seq, root: tip.range.root() };
        let note = checkpoint.sign(&keyring.active_signers());
        let mut report = OpenReport {
            keys_created,
            truncated: journal.truncated_on_open().cloned(),
            caught_up,
            size: tip.next_seq,
            index_rebuilt,
            redactions_finished: 0,
        };
        let shared = Shared {
            dir: dir.to_owned(),
            index,
            journal: JournalReader::new(journal_dir),
            artifacts: ArtifactStore::new(dir.join("artifacts")),
            vis: indexer::Visibility::new(Arc::new(SignedCheckpoint { checkpoint, note })),
            keyring: RwLock::new(keyring),
            policy: RwLock::new(Arc::new(opts.policy.clone())),
            poisoned: Mutex::new(None),
            group: group::GroupSync::new(tip.next_seq),
            durable: Mutex::new((journal.segment(), journal.len())),
            last_sync_ns: Default::default(),
            opts,
        };
        let shared = Arc::new(shared);
        let (tx, thread) = indexer::start(shared.clone()).map_err(|e| JournalError::io(dir, e))?;
        shared.group.start_index(tx);
        let ledger = Self {
            reader: LedgerReader { s: shared },
            writer: Mutex::new(Writer { journal, tip, subjects: Default::default(), recent: Default::default() }),
            indexer: Some(thread),
        };
        report.redactions_finished = ledger.finish_redactions()?;
        Ok((ledger, report))
    }

    /// A read handle that can outlive borrows of the ledger.
    pub fn reader(&self) -> LedgerReader {
        self.reader.clone()
    }

    /// Writes a final history checkpoint frame (if the tree grew since the
    /// last one), fsyncs, cuts the journal's zero tail (FORMAT.md §6.1), and
    /// flushes the index. Call on shutdown.
    pub fn close(&self) -> Result<(), LedgerError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.s.poisoned.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(LedgerError::Poisoned(p)); // the journal's end is not the writer's to trust
        }
        self.s.flush_written().map_err(|e| LedgerError::Poisoned(e.to_string()))?;
        self.s.vis.drain();
        if w.tip.next_seq > w.tip.last_history {
            let latest = self.latest_checkpoint();
            let mut buf = Vec::new();
            crate::journal::encode_frame(&crate::record::encode_checkpoint(&latest.note), &mut buf);
            w.journal.append(&buf)?;
            w.journal.sync()?;
            self.set_durable(&w.journal);
            let mut b = crate::index::IndexBatch::default();
            b.add_checkpoint(latest.checkpoint.size, &latest.note);
            self.s.index.apply(b)?;
            w.tip.last_history = w.tip.next_seq;
        }
        w.journal.cut_tail()?;
        self.s.index.flush()?;
        Ok(())
    }

    fn set_durable(&self, j: &Journal) {
        *self.s.durable.lock().unwrap_or_else(|p| p.into_inner()) = (j.segment(), j.len());
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
