//! The file store: a log in one directory (FORMAT.md §6, §10): the journal
//! (segment files, the source of truth), the index (flat files and sled,
//! derived data, applied by an index thread after each sync), artifact
//! blobs, and the reindex marker.
//!
//! Owns: everything about those files: segment positions, the open
//! segment, the zero tail, rolling and sealing, torn-tail recovery, the
//! index, its catch-up and rebuilds, the written-but-not-synced batches
//! and cutting them off after a failed sync, the free-space reserve.
//! Must not: sequence, sign or validate anything (the log does), or make
//! a batch readable before the log publishes it.

mod blobs;
mod catchup;
mod index;
mod indexer;
mod journal;
mod reader;
mod rewrite;

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;

pub use blobs::FileBlobs;
pub use index::IndexError;
pub use journal::Journal;
pub use rewrite::sync_dir;

use self::index::{Index, IndexBatch, IndexedEntry, Position};
use self::reader::JournalReader;
use crate::hash::Hash;
use crate::journal::{JournalError, encode_frame, list_segments, segment_name};
use crate::keys::Keyring;
use crate::log::{Ledger, LedgerError, LogOptions};
use crate::record;
use crate::store::{
    ArtifactRow, BlobStore, BundlePart, LeafMeta, LogStore, LogWriter, OpenReport, Opened, Secondary, StoreError,
    StoreErrorKind, Visibility, WriteBatch,
};
use crate::sync::lock;

/// The marker file (in the log directory) that makes the next open rebuild
/// the index from the journal; it holds the seq of the `reindex` entry.
pub const REINDEX_MARKER: &str = "reindex.requested";

/// Opens (or creates) the log in `dir` on the file store: keys, journal
/// recovery, index catch-up, and a fresh checkpoint.
pub fn open(dir: &Path, opts: LogOptions) -> Result<(Ledger, OpenReport), LedgerError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let now = (opts.clock)();
    let ring = crate::layout::keyring(dir);
    let (keyring, keys_created) = Keyring::open_or_create(&ring, &opts.origin, now, &opts.key_policy)?;
    let mut opened = FileStore::open(dir, opts.segment_bytes, opts.min_free_bytes, now)?;
    opened.report.keys_created = keys_created;
    Ledger::open(opened, keyring, opts)
}

impl From<JournalError> for StoreError {
    fn from(e: JournalError) -> Self {
        let kind = match &e {
            JournalError::Corrupt { .. } => StoreErrorKind::Damaged,
            JournalError::Io { .. } if e.is_disk_full() => StoreErrorKind::DiskFull,
            JournalError::Io { .. } => StoreErrorKind::Io,
        };
        StoreError::with_source(kind, "", e)
    }
}

impl From<IndexError> for StoreError {
    fn from(e: IndexError) -> Self {
        let kind = if e.is_damage() { StoreErrorKind::Damaged } else { StoreErrorKind::Io };
        StoreError::with_source(kind, "", e)
    }
}

/// One batch whose frames are written, waiting for the sync that covers it.
struct Written {
    /// entries in the log once it is durable
    end: u64,
    /// where its frames start in the open segment
    start: u64,
    /// the journal's end after it: (segment, offset)
    journal_end: (u64, u64),
    /// its index batch and signed checkpoint
    job: indexer::Job,
}

struct Queue {
    written: VecDeque<Written>,
    /// the open segment (`journal_end.0` of the written batches): every
    /// written batch is in it (a segment is sealed only after the batches in
    /// it are synced)
    file: Option<(u64, Arc<File>)>,
}

/// The shared side of a log on the file store.
pub struct FileStore {
    dir: PathBuf,
    index: Index,
    journal: JournalReader,
    blobs: FileBlobs,
    min_free_bytes: u64,
    queue: Mutex<Queue>,
    /// the journal's durable end (segment, offset): what readers and exports may read
    durable: Mutex<(u64, u64)>,
    /// committed batches go to the index thread (None before start and once stopped)
    index_tx: Mutex<Option<SyncSender<indexer::Job>>>,
    indexer: Mutex<Option<std::thread::JoinHandle<()>>>,
    vis: OnceLock<Arc<Visibility>>,
    last_sync_ns: AtomicU64,
}

/// The writer of a log on the file store.
struct FileWriter {
    store: Arc<FileStore>,
    journal: Journal,
    /// entries written (durable or not)
    next_seq: u64,
    /// the single-writer lease: `<dir>/LOCK`, locked while the writer lives
    _lease: File,
}

/// Takes the log directory's single-writer lease (an exclusive `flock` on
/// `<dir>/LOCK`, released when the writer is dropped or the process dies).
fn take_lease(dir: &Path) -> Result<File, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let path = crate::layout::writer_lock(dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(path.display().to_string(), e))?;
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.raw_os_error() == Some(11) => {
            Err(StoreError::with_source(
                StoreErrorKind::Locked,
                format!(
                    "log directory {} has a writer already (lock file {}); stop it first",
                    dir.display(),
                    path.display()
                ),
                e,
            ))
        }
        Err(e) => Err(StoreError::io(format!("locking {}", path.display()), e)),
    }
}

/// Opens the index; a damaged one is moved aside (kept for inspection) and
/// rebuilt from the journal, which is the source of truth.
fn open_index(dir: &Path, now: i64) -> Result<(Index, Option<(String, String)>), StoreError> {
    let path = crate::layout::index(dir);
    let marker = dir.join(REINDEX_MARKER);
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| StoreError::io(p.clone(), e)
    };
    if marker.exists() {
        // A requested rebuild: the old index goes; the marker goes once the
        // empty index exists (catch-up then fills it from the journal).
        let by = std::fs::read_to_string(&marker).unwrap_or_default();
        let aside = dir.join(format!("index.replaced-{now}"));
        if path.exists() {
            std::fs::rename(&path, &aside).map_err(io(&path))?;
        }
        let index = Index::open(&path)?;
        std::fs::remove_file(&marker).map_err(io(&marker))?;
        let _ = std::fs::remove_dir_all(&aside);
        let why = format!("rebuild requested by reindex entry {}", by.trim());
        return Ok((index, Some((path.display().to_string(), why))));
    }
    match Index::open(&path) {
        Ok(i) => Ok((i, None)),
        Err(e) if e.is_damage() => {
            let aside = dir.join(format!("index.damaged-{now}"));
            std::fs::rename(&path, &aside).map_err(io(&path))?;
            Ok((Index::open(&path)?, Some((aside.display().to_string(), e.to_string()))))
        }
        Err(e) => Err(e.into()),
    }
}

impl FileStore {
    /// Opens (or creates) the store in `dir`: journal recovery (a torn tail
    /// is cut), the index (rebuilt when damaged or asked for) caught up
    /// from the journal. `segment_bytes` is the roll size; appends are
    /// refused while the filesystem has less than `min_free_bytes` free.
    pub fn open(dir: &Path, segment_bytes: u64, min_free_bytes: u64, now: i64) -> Result<Opened, StoreError> {
        let lease = take_lease(dir)?;
        let journal_dir = crate::layout::journal(dir);
        let journal = Journal::open(&journal_dir, segment_bytes)?;
        let (index, index_rebuilt) = open_index(dir, now)?;
        let caught_up = catchup::catch_up(&index, &journal_dir)?;
        let size = index.indexed_through()?;
        let report = OpenReport {
            truncated: journal.truncated_on_open().map(|(p, len, cut)| (p.display().to_string(), *len, *cut)),
            caught_up,
            size,
            index_rebuilt,
            ..Default::default()
        };
        let store = Arc::new(FileStore {
            dir: dir.to_owned(),
            index,
            journal: JournalReader::new(journal_dir),
            blobs: FileBlobs::new(crate::layout::artifacts(dir)),
            min_free_bytes,
            queue: Mutex::new(Queue { written: VecDeque::new(), file: None }),
            durable: Mutex::new((journal.segment(), journal.segment_len())),
            index_tx: Mutex::new(None),
            indexer: Mutex::new(None),
            vis: OnceLock::new(),
            last_sync_ns: AtomicU64::new(0),
        });
        let writer = Box::new(FileWriter { store: store.clone(), journal, next_seq: size, _lease: lease });
        Ok(Opened { store, writer, report })
    }

    fn segment_path(&self, segment: u64) -> PathBuf {
        crate::layout::journal(&self.dir).join(segment_name(segment))
    }

    fn set_durable(&self, j: &Journal) {
        *lock(&self.durable) = (j.segment(), j.segment_len());
    }

    fn stop_writes(&self, reason: String) {
        if let Some(vis) = self.vis.get() {
            vis.stop(reason);
        }
    }

    /// Refuses a batch that would eat into the free-space reserve.
    fn check_space(&self, batch_bytes: u64) -> Result<(), StoreError> {
        let reserve = self.min_free_bytes;
        if reserve == 0 {
            return Ok(());
        }
        let free = fs2::available_space(&self.dir)
            .map_err(|e| StoreError::io(format!("free space of {}", self.dir.display()), e))?;
        if free < reserve.saturating_add(batch_bytes) {
            let reason = format!(
                "only {free} bytes free on the filesystem of {}, below the reserve of {reserve} bytes: free space, then retry",
                self.dir.display()
            );
            return Err(StoreError::new(StoreErrorKind::DiskFull, reason));
        }
        Ok(())
    }
}

impl LogStore for FileStore {
    fn start(&self, vis: Arc<Visibility>) -> Result<(), StoreError> {
        let _ = self.vis.set(vis.clone());
        let (tx, thread) =
            indexer::start(self.index.clone(), vis).map_err(|e| StoreError::io("starting the index thread", e))?;
        *lock(&self.index_tx) = Some(tx);
        *lock(&self.indexer) = Some(thread);
        Ok(())
    }

    fn stop(&self) {
        drop(lock(&self.index_tx).take());
        if let Some(t) = lock(&self.indexer).take() {
            let _ = t.join();
        }
    }

    fn leaf_meta(&self, seq: u64) -> Result<Option<LeafMeta>, StoreError> {
        Ok(self.index.position(seq)?.map(|p| LeafMeta { leaf_hash: p.leaf_hash, recorded_at: p.recorded_at }))
    }

    fn record(&self, seq: u64) -> Result<Option<(LeafMeta, Bytes)>, StoreError> {
        let Some(pos) = self.index.position(seq)? else {
            return Ok(None);
        };
        let bytes = self.journal.read(pos.segment, pos.offset, pos.frame_len)?;
        Ok(Some((LeafMeta { leaf_hash: pos.leaf_hash, recorded_at: pos.recorded_at }, bytes)))
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.index.hash_at(level, index))
    }

    fn request_candidates(&self, hash: u64) -> Result<Vec<u64>, StoreError> {
        Ok(self.index.request_candidates(hash)?)
    }

    fn scan(
        &self,
        by: Secondary,
        value: &str,
        from: u64,
        to: u64,
        desc: bool,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        Ok(self.index.scan(by, value, from, to, desc, limit)?)
    }

    fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(self.index.checkpoints(from, to)?)
    }

    fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, StoreError> {
        Ok(self.index.artifact(blake3)?)
    }

    fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, StoreError> {
        Ok(self.index.artifacts().collect::<Result<_, _>>()?)
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    /// Sealed segments are whole; the open one is cut at its last sync.
    fn bundle_parts(&self) -> Result<Vec<BundlePart>, StoreError> {
        let (seg, len) = *lock(&self.durable);
        let mut out = Vec::new();
        for (first, path) in list_segments(&crate::layout::journal(&self.dir))? {
            if first > seg {
                break;
            }
            let n = if first == seg {
                len
            } else {
                std::fs::metadata(&path).map_err(|e| JournalError::io(&path, e))?.len()
            };
            out.push(BundlePart { name: format!("journal/{}", segment_name(first)), first_seq: first, len: n });
        }
        Ok(out)
    }

    fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let n = part.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.journal.read_at(part.first_seq, offset, &mut buf[..n])?;
        Ok(n)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let Some((segment, file)) = lock(&self.queue).file.clone() else {
            return Ok(()); // nothing written since the open
        };
        let started = Instant::now();
        let synced = file.sync_data();
        self.last_sync_ns.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        synced.map_err(|e| JournalError::io(&self.segment_path(segment), e).into())
    }

    fn publish(&self, end: u64) {
        loop {
            let w = {
                let mut q = lock(&self.queue);
                match q.written.front() {
                    Some(w) if w.end <= end => q.written.pop_front(),
                    _ => None,
                }
            };
            let Some(w) = w else { return };
            *lock(&self.durable) = w.journal_end;
            let sent = lock(&self.index_tx).as_ref().is_some_and(|tx| tx.send(w.job).is_ok());
            if !sent {
                self.stop_writes("the index thread stopped".into());
            }
        }
    }

    /// Cuts the frames of every written batch off the open segment.
    fn discard_unsynced(&self) {
        let mut q = lock(&self.queue);
        if let Some(first) = q.written.front() {
            let path = self.segment_path(first.journal_end.0);
            // If this fails too, the frames stay, complete: the next open
            // recovers them as entries no caller was told about.
            let _ = std::fs::OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(first.start));
        }
        q.written.clear();
    }

    fn last_sync_nanos(&self) -> u64 {
        self.last_sync_ns.load(Ordering::Relaxed)
    }

    fn request_rebuild(&self, by: u64) -> Result<(), StoreError> {
        let marker = self.dir.join(REINDEX_MARKER);
        let io = |e| StoreError::io(marker.display().to_string(), e);
        let mut f = File::create(&marker).map_err(io)?;
        std::io::Write::write_all(&mut f, by.to_string().as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
        Ok(sync_dir(&self.dir)?)
    }
}

impl FileWriter {
    /// The index batch of a batch whose frames start at `base` in the open
    /// segment.
    fn index_batch(&self, b: &WriteBatch, base: u64) -> IndexBatch {
        let segment = self.journal.segment();
        let mut index = IndexBatch::default();
        let mut offset = base;
        for (i, e) in b.entries.iter().enumerate() {
            let pos = Position {
                segment,
                offset,
                frame_len: e.frame_len,
                leaf_hash: e.leaf_hash,
                recorded_at: e.leaf.recorded_at,
            };
            let seq = b.first_seq + i as u64;
            index.add_entry(IndexedEntry { seq, pos, leaf: &e.leaf, request_hash: e.request_hash, flat_only: false });
            offset += u64::from(e.frame_len);
        }
        for (level, i, h) in &b.nodes {
            index.add_node(*level, *i, h);
        }
        if let Some(note) = &b.history {
            index.add_checkpoint(b.end(), note);
        }
        index
    }
}

impl LogWriter for FileWriter {
    fn write(&mut self, b: WriteBatch) -> Result<(), StoreError> {
        let base = self.journal.segment_len();
        self.store.check_space(b.frames.len() as u64)?;
        self.journal.append(&b.frames)?;
        let index = self.index_batch(&b, base);
        let end = b.end();
        let journal_end = (self.journal.segment(), self.journal.segment_len());
        let job = indexer::Job { batch: index, checkpoint: b.checkpoint };
        let mut q = lock(&self.store.queue);
        q.file = Some((self.journal.segment(), self.journal.sync_handle()));
        q.written.push_back(Written { end, start: base, journal_end, job });
        self.next_seq = end;
        Ok(())
    }

    fn wants_durable_point(&self) -> bool {
        self.journal.roll_due(self.next_seq)
    }

    /// Seals the open segment when it reached the roll size (a segment is
    /// sealed only once the batches in it are durable).
    fn durable_point(&mut self) -> Result<(), StoreError> {
        if self.journal.roll_due(self.next_seq) && self.journal.roll(self.next_seq)? {
            self.store.set_durable(&self.journal);
        }
        Ok(())
    }

    /// Rewrites the target's record; seals the open segment first when the
    /// target is in it.
    fn replace_record(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        let Some(pos) = self.store.index.position(seq)? else {
            let indexed = self.store.index.indexed_through()?;
            return Err(StoreError::new(
                StoreErrorKind::Missing { indexed, missing: seq },
                format!("entry {seq} is not in the index"),
            ));
        };
        if pos.segment == self.journal.segment() {
            self.journal.roll(self.next_seq)?;
            self.store.set_durable(&self.journal);
        }
        rewrite::replace_record(&crate::layout::journal(&self.store.dir), pos.segment, pos.offset, record)?;
        self.store.journal.forget(pos.segment);
        Ok(())
    }

    /// Writes the final history checkpoint frame, fsyncs, cuts the zero
    /// tail (FORMAT.md §6.1), and flushes the index.
    fn close(&mut self, history: Option<(u64, String)>) -> Result<(), StoreError> {
        if let Some((size, note)) = history {
            let mut buf = Vec::new();
            encode_frame(&record::encode_checkpoint(&note), &mut buf);
            self.journal.append(&buf)?;
            self.journal.sync()?;
            self.store.set_durable(&self.journal);
            let mut b = IndexBatch::default();
            b.add_checkpoint(size, &note);
            self.store.index.apply(b)?;
        }
        self.journal.cut_tail()?;
        self.store.index.flush()?;
        Ok(())
    }
}
