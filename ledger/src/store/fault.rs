//! The fault store: wraps another store and makes chosen calls fail, to
//! test what a log does when its storage fails or the process dies.
//!
//! [`FaultStore::wrap`] returns the wrapped store and a [`FaultControl`]
//! that arms one fault at a time:
//! - `fail(point, nth)`: the nth call at `point` (counted from arming)
//!   returns a `StoreErrorKind::Io` error; later calls pass through again
//!   (a failed sync is followed by `discard_unsynced`, which reaches the
//!   inner store).
//! - `crash(point, nth)`: the nth call fails, and from then on the process
//!   is "dead": every mutating call (write, sync, durable_point,
//!   replace_record, close, a blob's finish) fails without reaching the
//!   inner store; `discard_unsynced` and `publish` are swallowed (a dead
//!   process cleans nothing up and shows nothing new); reads, `start` and
//!   `stop` pass through. Drop the ledger and reopen the inner engine to
//!   see what survived.
//!
//! Owns: the armed fault and the crashed flag. Must not: change what the
//! inner store holds beyond withholding calls.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::artifacts::StoredBlob;
use crate::hash::Hash;
use crate::store::{
    ArtifactRow, BlobStore, BlobWriter, BundlePart, LeafMeta, LogStore, LogWriter, Opened, Secondary, StoreError,
    StoreErrorKind, Visibility, WriteBatch,
};
use crate::sync::lock;

/// Where a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// `LogWriter::write`, before the inner write: nothing of the batch is
    /// written.
    Write,
    /// `LogStore::sync`, before the inner sync: the inner store did not
    /// sync (what it wrote may or may not survive).
    BeforeSync,
    /// `LogStore::sync`, after the inner sync succeeded: the batches are
    /// durable but the log is told the sync failed (never acknowledged).
    AfterSync,
    /// `LogWriter::durable_point`, before the inner call.
    DurablePoint,
    /// `LogWriter::replace_record` (a redaction's payload removal), before
    /// the inner call: the redaction entry is durable, the payload stays.
    ReplaceRecord,
    /// `LogWriter::close`, before the inner call: no final checkpoint.
    Close,
}

struct Armed {
    point: FaultPoint,
    nth: u64,
    seen: u64,
    crash: bool,
}

#[derive(Default)]
struct State {
    armed: Option<Armed>,
    crashed: bool,
}

/// Arms faults in a wrapped store. Cheap to clone.
#[derive(Clone, Default)]
pub struct FaultControl {
    state: Arc<Mutex<State>>,
}

fn injected(what: &str) -> StoreError {
    StoreError::with_source(StoreErrorKind::Io, what.to_owned(), std::io::Error::other("injected fault"))
}

impl FaultControl {
    /// The nth call (1-based) at `point` from now fails once.
    pub fn fail(&self, point: FaultPoint, nth: u64) {
        lock(&self.state).armed = Some(Armed { point, nth, seen: 0, crash: false });
    }

    /// The nth call (1-based) at `point` from now fails, and the store is
    /// dead from then on.
    pub fn crash(&self, point: FaultPoint, nth: u64) {
        lock(&self.state).armed = Some(Armed { point, nth, seen: 0, crash: true });
    }

    /// True once an armed crash struck.
    pub fn crashed(&self) -> bool {
        lock(&self.state).crashed
    }

    /// A call at `point`: fails when the store is dead or the armed fault
    /// strikes now.
    fn check(&self, point: FaultPoint) -> Result<(), StoreError> {
        let mut st = lock(&self.state);
        if st.crashed {
            return Err(injected("the store crashed"));
        }
        let Some(a) = st.armed.as_mut().filter(|a| a.point == point) else {
            return Ok(());
        };
        a.seen += 1;
        if a.seen < a.nth {
            return Ok(());
        }
        let crash = a.crash;
        st.armed = None;
        st.crashed = crash;
        Err(injected(&format!("{point:?}")))
    }

    /// Fails only when the store is dead (a call with no fault point).
    fn alive(&self) -> Result<(), StoreError> {
        if self.crashed() { Err(injected("the store crashed")) } else { Ok(()) }
    }
}

/// The shared side of a wrapped store.
pub struct FaultStore {
    inner: Arc<dyn LogStore>,
    blobs: FaultBlobs,
    ctl: FaultControl,
}

struct FaultWriter {
    inner: Box<dyn LogWriter>,
    ctl: FaultControl,
}

impl FaultStore {
    /// Wraps a store just opened; its report passes through.
    pub fn wrap(inner: Opened) -> (Opened, FaultControl) {
        let ctl = FaultControl::default();
        let blobs = FaultBlobs { store: inner.store.clone(), ctl: ctl.clone() };
        let store = Arc::new(FaultStore { inner: inner.store, blobs, ctl: ctl.clone() });
        let writer = Box::new(FaultWriter { inner: inner.writer, ctl: ctl.clone() });
        (Opened { store, writer, report: inner.report }, ctl)
    }
}

impl LogStore for FaultStore {
    fn start(&self, vis: Arc<Visibility>) -> Result<(), StoreError> {
        self.inner.start(vis)
    }
    fn stop(&self) {
        self.inner.stop()
    }
    fn leaf_meta(&self, seq: u64) -> Result<Option<LeafMeta>, StoreError> {
        self.inner.leaf_meta(seq)
    }
    fn record(&self, seq: u64) -> Result<Option<(LeafMeta, Bytes)>, StoreError> {
        self.inner.record(seq)
    }
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        self.inner.node(level, index)
    }
    fn request_candidates(&self, hash: u64) -> Result<Vec<u64>, StoreError> {
        self.inner.request_candidates(hash)
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
        self.inner.scan(by, value, from, to, desc, limit)
    }
    fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.checkpoints(from, to)
    }
    fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, StoreError> {
        self.inner.artifact(blake3)
    }
    fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, StoreError> {
        self.inner.artifact_rows()
    }
    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }
    fn bundle_parts(&self) -> Result<Vec<BundlePart>, StoreError> {
        self.inner.bundle_parts()
    }
    fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        self.inner.read_part(part, offset, buf)
    }

    /// `BeforeSync`, the inner sync, then `AfterSync`.
    fn sync(&self) -> Result<(), StoreError> {
        self.ctl.check(FaultPoint::BeforeSync)?;
        self.inner.sync()?;
        self.ctl.check(FaultPoint::AfterSync)
    }
    fn publish(&self, end: u64) {
        if !self.ctl.crashed() {
            self.inner.publish(end)
        }
    }
    fn discard_unsynced(&self) {
        if !self.ctl.crashed() {
            self.inner.discard_unsynced()
        }
    }
    fn last_sync_nanos(&self) -> u64 {
        self.inner.last_sync_nanos()
    }
    fn request_rebuild(&self, by: u64) -> Result<(), StoreError> {
        self.ctl.alive()?;
        self.inner.request_rebuild(by)
    }
}

impl LogWriter for FaultWriter {
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        self.ctl.check(FaultPoint::Write)?;
        self.inner.write(batch)
    }
    fn wants_durable_point(&self) -> bool {
        self.inner.wants_durable_point()
    }
    fn durable_point(&mut self) -> Result<(), StoreError> {
        self.ctl.check(FaultPoint::DurablePoint)?;
        self.inner.durable_point()
    }
    fn replace_record(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.ctl.check(FaultPoint::ReplaceRecord)?;
        self.inner.replace_record(seq, record)
    }
    fn close(&mut self, history: Option<(u64, String)>) -> Result<(), StoreError> {
        self.ctl.check(FaultPoint::Close)?;
        self.inner.close(history)
    }
}

/// The inner store's blobs; a blob's `finish` fails once the store is dead.
struct FaultBlobs {
    store: Arc<dyn LogStore>,
    ctl: FaultControl,
}

impl BlobStore for FaultBlobs {
    fn begin(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StoreError> {
        self.ctl.alive()?;
        Ok(Box::new(FaultBlobWriter { inner: self.store.blobs().begin(limit)?, ctl: self.ctl.clone() }))
    }
    fn verify(&self, blake3: &Hash) -> Result<StoredBlob, StoreError> {
        self.store.blobs().verify(blake3)
    }
    fn open(&self, blake3: &Hash) -> Result<Box<dyn Read + Send>, StoreError> {
        self.store.blobs().open(blake3)
    }
}

struct FaultBlobWriter {
    inner: Box<dyn BlobWriter>,
    ctl: FaultControl,
}

impl BlobWriter for FaultBlobWriter {
    fn write(&mut self, b: &[u8]) -> Result<(), StoreError> {
        self.inner.write(b)
    }
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError> {
        self.ctl.alive()?;
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryDisk;

    #[test]
    fn a_failure_strikes_once_at_the_nth_call_then_calls_pass_through() {
        let (o, ctl) = FaultStore::wrap(MemoryDisk::new().open().unwrap());
        ctl.fail(FaultPoint::BeforeSync, 2);
        assert!(o.store.sync().is_ok(), "the first call passes");
        assert_eq!(o.store.sync().unwrap_err().kind, StoreErrorKind::Io, "the second fails");
        assert!(o.store.sync().is_ok(), "then calls pass again");
        assert!(!ctl.crashed());
    }

    #[test]
    fn after_a_crash_every_mutating_call_fails_and_reads_pass() {
        let disk = MemoryDisk::new();
        let (o, ctl) = FaultStore::wrap(disk.open().unwrap());
        let (store, mut writer) = (o.store, o.writer);
        let blob = store.blobs().put(&b"before"[..], 100).unwrap();
        ctl.crash(FaultPoint::Close, 1);
        assert!(writer.close(Some((0, "note".into()))).is_err());
        assert!(ctl.crashed());
        assert!(store.sync().is_err());
        assert!(writer.durable_point().is_err());
        assert!(writer.replace_record(0, b"x").is_err());
        assert!(store.blobs().put(&b"after"[..], 100).is_err());
        assert_eq!(store.blobs().get(&blob.blake3).unwrap(), b"before", "reads pass through");
        assert!(store.checkpoints(0, 10).unwrap().is_empty(), "the crashed close kept nothing");
        drop((store, writer));
        assert_eq!(disk.journal().len(), crate::journal::SEGMENT_HEADER_LEN as usize, "nothing reached the disk");
    }
}
