//! The PostgreSQL engine behind the storage seam (docs/HA.md "The engine"):
//! a log whose source of truth is the database's batch rows, and whose
//! reads come from a local replica on the file store.
//!
//! The leader's batches wait in memory until the group sync: one
//! transaction commits every batch written since the last sync at the
//! head under the lease (the ack point), and only then are they written
//! and fsynced to the local replica and published. So the replica never
//! holds what the database does not, and a fenced or failed commit leaves
//! nothing anywhere (the log may resume as a follower). A follower's
//! batches (`WriteBatch::replicated`) are already committed: they go to
//! the replica only.
//!
//! Owns: the order commit → local write → publish, the leader's lease as
//! the writer sees it, and whether a failed sync left nothing behind
//! ([`PgStore::fenced`]). Must not: sequence, sign or verify (the log does),
//! or serve a read from the database.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use ledger::hash::Hash;
use ledger::keys::Keyring;
use ledger::store::file::FileStore;
use ledger::store::{
    ArtifactRow, BlobStore, BundlePart, LeafMeta, LogStore, LogWriter, OpenReport, Opened, Secondary, StoreError,
    StoreErrorKind, Visibility, WriteBatch,
};
use ledger::sync::lock;
use ledger::{Ledger, LedgerError, LogOptions};

use crate::db::{Db, OwnedBatch};
use crate::fence::Lease;
use crate::schema::MAX_PART_BYTES;

/// The shared side of a log on PostgreSQL.
pub struct PgStore {
    log: String,
    db: Arc<Db>,
    local: Arc<dyn LogStore>,
    /// the replica's writer and its single-writer lease: dropped with
    /// this store's writer ([`PgWriter`]), so the lease is held while the
    /// writer lives, as on the file store
    local_writer: Mutex<Option<Box<dyn LogWriter>>>,
    /// written batches not yet committed (the leader's) or not yet applied
    pending: Mutex<Vec<WriteBatch>>,
    /// the lease while this node leads
    lease: Mutex<Option<Lease>>,
    /// why the last failed sync failed, when it left nothing behind
    fenced: Mutex<Option<String>>,
    /// when the lease was last extended (a commit or a renewal)
    renewed: Mutex<Instant>,
    last_sync_ns: AtomicU64,
    fenced_batches: AtomicU64,
}

struct PgWriter {
    store: Arc<PgStore>,
}

/// Opens the log `log` in `dir` (its local replica and keyring, as the
/// file store lays them out) over `db`, as a follower.
pub fn open(
    dir: &Path,
    log: &str,
    db: Arc<Db>,
    opts: LogOptions,
) -> Result<(Ledger, OpenReport, Arc<PgStore>), LedgerError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let now = (opts.clock)();
    let ring = ledger::layout::keyring(dir);
    let (keyring, keys_created) = Keyring::open_or_create(&ring, &opts.origin, now, &opts.key_policy)?;
    let (mut opened, store) = open_store(dir, log, db, opts.segment_bytes, opts.min_free_bytes, now)?;
    opened.report.keys_created = keys_created;
    let (ledger, report) = Ledger::open(opened, keyring, opts)?;
    Ok((ledger, report, store))
}

/// Opens the store alone (its local replica in `dir`, on the file store),
/// not leading: [`PgStore::lead`] makes its own batches committable.
pub fn open_store(
    dir: &Path,
    log: &str,
    db: Arc<Db>,
    segment_bytes: u64,
    min_free_bytes: u64,
    now: i64,
) -> Result<(Opened, Arc<PgStore>), StoreError> {
    let local = FileStore::open(dir, segment_bytes, min_free_bytes, now)?;
    let store = Arc::new(PgStore {
        log: log.to_owned(),
        db,
        local: local.store,
        local_writer: Mutex::new(Some(local.writer)),
        pending: Mutex::new(Vec::new()),
        lease: Mutex::new(None),
        fenced: Mutex::new(None),
        renewed: Mutex::new(Instant::now()),
        last_sync_ns: AtomicU64::new(0),
        fenced_batches: AtomicU64::new(0),
    });
    let opened =
        Opened { store: store.clone(), writer: Box::new(PgWriter { store: store.clone() }), report: local.report };
    Ok((opened, store))
}

impl PgStore {
    /// The log's name in the database.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The lease, while this node leads.
    pub fn lease(&self) -> Option<Lease> {
        lock(&self.lease).clone()
    }

    /// Leads under `lease` (the replica is caught up to the head).
    pub fn lead(&self, lease: Lease) {
        *lock(&self.renewed) = Instant::now();
        *lock(&self.fenced) = None;
        *lock(&self.lease) = Some(lease);
    }

    /// Stops leading: the next sync of a batch of this node's own fails.
    pub fn follow(&self) {
        lock(&self.lease).take();
    }

    /// Why the last sync failed, when it failed in the database and left
    /// nothing in the replica: the log may `resume` and follow. Taken: a
    /// later failure of another kind (the replica's own disk) must not be
    /// mistaken for one that left nothing behind.
    pub fn take_fenced(&self) -> Option<String> {
        lock(&self.fenced).take()
    }

    /// When the lease was last extended.
    pub fn renewed_at(&self) -> Instant {
        *lock(&self.renewed)
    }

    /// Marks the lease extended now (a renewal).
    pub fn renewed(&self) {
        *lock(&self.renewed) = Instant::now();
    }

    /// Batches of this node refused by the fence or lost with the
    /// connection (never acknowledged).
    pub fn fenced_batches(&self) -> u64 {
        self.fenced_batches.load(Ordering::Relaxed)
    }

    /// Commits the leader's batches as one row group (the ack point).
    fn commit(&self, batches: &[WriteBatch]) -> Result<(), StoreError> {
        let refuse = |reason: String| {
            self.fenced_batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
            *lock(&self.fenced) = Some(reason.clone());
            StoreError::new(StoreErrorKind::Unavailable, reason)
        };
        let Some(lease) = self.lease() else {
            return Err(refuse(format!("log {}: this node is not the leader: nothing was committed", self.log)));
        };
        let mut batch = owned(batches).map_err(|e| refuse(format!("log {}: {e}", self.log)))?;
        batch.rewrites = crate::redact::rewrites(batches, self.local.as_ref())
            .map_err(|e| refuse(format!("log {}: {e}", self.log)))?;
        match self.db.commit(&lease, batch) {
            Ok(()) => {
                self.renewed();
                Ok(())
            }
            Err(e) => {
                self.follow();
                Err(refuse(e.to_string()))
            }
        }
    }
}

/// One database batch from the batches of one sync: their frames in parts
/// of at most `MAX_PART_BYTES`, cut at frame boundaries (each entry's
/// `frame_len`, then the history checkpoint's frame, the rest of the
/// batch's frames), without reading the frames again.
fn owned(batches: &[WriteBatch]) -> Result<OwnedBatch, String> {
    let last = batches.last().ok_or("no batch")?;
    let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
    let mut add = |frame: &[u8]| {
        if parts.last().is_some_and(|p| !p.is_empty() && p.len() + frame.len() > MAX_PART_BYTES) {
            parts.push(Vec::new());
        }
        parts.last_mut().expect("one part at least").extend_from_slice(frame);
    };
    for b in batches {
        let mut at = 0;
        for e in &b.entries {
            let end = at + e.frame_len as usize;
            add(b.frames.get(at..end).ok_or("an entry's frame_len runs past the batch's frames")?);
            at = end;
        }
        if at < b.frames.len() {
            add(&b.frames[at..]);
        }
    }
    let entries: usize = batches.iter().map(|b| b.entries.len()).sum();
    let last_recorded_at = batches.iter().flat_map(|b| &b.entries).map(|e| e.leaf.recorded_at).max().unwrap_or(0);
    Ok(OwnedBatch {
        first_seq: batches[0].first_seq,
        entries: u32::try_from(entries).map_err(|_| "too many entries in one sync")?,
        parts,
        root: last.checkpoint.checkpoint.root.to_vec(),
        checkpoint: last.checkpoint.note.clone(),
        last_recorded_at,
        rewrites: Vec::new(),
    })
}

impl LogStore for PgStore {
    fn start(&self, vis: Arc<Visibility>) -> Result<(), StoreError> {
        self.local.start(vis)
    }
    fn stop(&self) {
        self.local.stop()
    }
    fn leaf_meta(&self, seq: u64) -> Result<Option<LeafMeta>, StoreError> {
        self.local.leaf_meta(seq)
    }
    fn record(&self, seq: u64) -> Result<Option<(LeafMeta, Bytes)>, StoreError> {
        self.local.record(seq)
    }
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        self.local.node(level, index)
    }
    fn request_candidates(&self, hash: u64) -> Result<Vec<u64>, StoreError> {
        self.local.request_candidates(hash)
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
        self.local.scan(by, value, from, to, desc, limit)
    }
    fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.local.checkpoints(from, to)
    }
    fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, StoreError> {
        self.local.artifact(blake3)
    }
    fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, StoreError> {
        self.local.artifact_rows()
    }
    fn blobs(&self) -> &dyn BlobStore {
        self.local.blobs()
    }
    fn bundle_parts(&self) -> Result<Vec<BundlePart>, StoreError> {
        self.local.bundle_parts()
    }
    fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        self.local.read_part(part, offset, buf)
    }

    /// Commits this node's batches written so far (one transaction, the ack
    /// point), then writes them, or a follower's replicated batches, to the
    /// local replica and fsyncs it.
    fn sync(&self) -> Result<(), StoreError> {
        let t0 = Instant::now();
        let batches = std::mem::take(&mut *lock(&self.pending));
        let own = batches.iter().filter(|b| !b.replicated).count();
        if own > 0 && own < batches.len() {
            let reason = format!("log {}: a sync mixes own and replicated batches", self.log);
            *lock(&self.fenced) = Some(reason.clone());
            return Err(StoreError::new(StoreErrorKind::Io, reason));
        }
        if own > 0 {
            self.commit(&batches)?;
        }
        let mut guard = lock(&self.local_writer);
        let w = guard.as_mut().ok_or_else(writer_gone)?;
        for b in batches {
            w.write(b)?;
        }
        drop(guard);
        self.local.sync()?;
        self.last_sync_ns.store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn publish(&self, end: u64) {
        self.local.publish(end)
    }
    fn discard_unsynced(&self) {
        lock(&self.pending).clear();
        self.local.discard_unsynced()
    }
    fn last_sync_nanos(&self) -> u64 {
        self.last_sync_ns.load(Ordering::Relaxed)
    }
    fn request_rebuild(&self, by: u64) -> Result<(), StoreError> {
        self.local.request_rebuild(by)
    }
}

fn writer_gone() -> StoreError {
    StoreError::new(StoreErrorKind::Io, "the log's writer is closed")
}

/// The replica's writer (and its lease) goes with the log's writer.
impl Drop for PgWriter {
    fn drop(&mut self) {
        lock(&self.store.local_writer).take();
    }
}

impl LogWriter for PgWriter {
    /// Queues the batch for the next sync; a batch of this node's own is
    /// refused at once while it does not lead.
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        if !batch.replicated && self.store.lease().is_none() {
            let log = &self.store.log;
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!("log {log}: this node is not the leader"),
            ));
        }
        lock(&self.store.pending).push(batch);
        Ok(())
    }
    fn wants_durable_point(&self) -> bool {
        lock(&self.store.local_writer).as_ref().is_some_and(|w| w.wants_durable_point())
    }
    fn durable_point(&mut self) -> Result<(), StoreError> {
        lock(&self.store.local_writer).as_mut().ok_or_else(writer_gone)?.durable_point()
    }
    /// The redaction of the local replica's copy: the stored row was
    /// rewritten when the redaction entry was committed (`crate::redact`),
    /// on the leader and on every replica alike.
    fn replace_record(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        lock(&self.store.local_writer).as_mut().ok_or_else(writer_gone)?.replace_record(seq, record)
    }
    /// The local replica is closed without a history frame: its journal
    /// holds exactly the committed batches.
    fn close(&mut self, _history: Option<(u64, String)>) -> Result<(), StoreError> {
        lock(&self.store.local_writer).as_mut().ok_or_else(writer_gone)?.close(None)
    }
}
