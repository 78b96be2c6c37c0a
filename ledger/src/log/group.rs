//! The group sync: pipelined group commit (DESIGN "The write path";
//! docs/ARCHITECTURE.md "Write path").
//!
//! A batch is sequenced and its frames written under the writer lock; its
//! `fdatasync` runs after the lock is released, so the next batch is
//! sequenced while the disk syncs this one. One sync covers every batch
//! written before it started. A synced batch is published — the readers'
//! durable mark, its index job, its checkpoint as the latest — strictly in
//! write order, and only then are its receipts built.
//!
//! Owns: the queue of written batches that are not yet durable, the syncs,
//! and what a failed sync does (the log is poisoned; every batch it would
//! have covered fails, and their frames are cut off). Must not: publish or
//! acknowledge a batch before a sync that started after its frames were
//! written, or publish out of order.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::append::{AppendError, Pending, Receipt};
use super::indexer::Job;
use super::{LedgerReader, Shared};
use crate::journal::{JournalError, segment_name};

/// One batch whose frames are written, waiting for the sync that covers it.
pub(super) struct Written {
    /// entries in the log once it is durable
    pub end: u64,
    /// where its frames start in the open segment
    pub start: u64,
    /// the journal's end after it: (segment, offset)
    pub journal_end: (u64, u64),
    /// its index batch and signed checkpoint
    pub job: Job,
}

struct Queue {
    written: VecDeque<Written>,
    /// the open segment (`journal_end.0` of the written batches): every
    /// written batch is in it (a segment is sealed only after the batches in
    /// it are synced)
    file: Option<Arc<File>>,
    /// committed batches go to the index thread (None once it is stopped)
    index_tx: Option<SyncSender<Job>>,
}

struct Synced {
    /// entries durable and published
    through: u64,
    /// the failure that poisoned the log
    failed: Option<AppendError>,
}

/// The written batches and the syncs that make them durable.
pub(super) struct GroupSync {
    queue: Mutex<Queue>,
    synced: Mutex<Synced>,
    /// held while a batch is appended and queued, and while a failed sync
    /// cuts the journal back: no frame lands behind that cut. Holds the
    /// failure once there was one (nothing is appended after it).
    gate: Mutex<Option<AppendError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupSync {
    /// `durable` entries are on disk at open.
    pub fn new(durable: u64) -> Self {
        let queue = Queue { written: VecDeque::new(), file: None, index_tx: None };
        let synced = Mutex::new(Synced { through: durable, failed: None });
        Self { queue: Mutex::new(queue), synced, gate: Mutex::new(None) }
    }

    /// Synced batches go to the index thread through `tx`.
    pub fn start_index(&self, tx: SyncSender<Job>) {
        lock(&self.queue).index_tx = Some(tx);
    }

    /// Appends one batch with `append` (its frames to the open segment,
    /// whose file it returns with the batch) and queues it after every batch
    /// already queued. Call under the writer lock. After a failed sync
    /// nothing is appended: that sync's error is returned.
    pub fn append(
        &self,
        append: impl FnOnce() -> Result<(Written, Arc<File>), AppendError>,
    ) -> Result<(), AppendError> {
        let gate = lock(&self.gate);
        if let Some(e) = &*gate {
            return Err(e.clone());
        }
        let (w, file) = append()?;
        let mut q = lock(&self.queue);
        q.file = Some(file);
        q.written.push_back(w);
        Ok(())
    }

    /// Makes the next sync use `file` (tests: a file whose `fdatasync`
    /// fails).
    #[cfg(test)]
    pub fn sync_with(&self, file: File) {
        lock(&self.queue).file = Some(Arc::new(file));
    }

    /// Stops the index thread's feed: later batches poison the log.
    pub fn stop_index(&self) {
        drop(lock(&self.queue).index_tx.take());
    }
}

impl Shared {
    /// Makes the log durable through `end` entries (one `fdatasync` for every
    /// batch written so far, unless an earlier sync already covered them),
    /// and publishes the synced batches in order.
    pub(super) fn sync_through(&self, end: u64) -> Result<(), AppendError> {
        let mut st = lock(&self.group.synced);
        if st.through >= end {
            return Ok(());
        }
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        let (file, segment, through) = {
            let q = lock(&self.group.queue);
            let (Some(last), Some(file)) = (q.written.back(), &q.file) else {
                return Ok(()); // nothing written beyond what is durable
            };
            (file.clone(), last.journal_end.0, last.end)
        };
        let started = Instant::now();
        let synced = file.sync_data();
        self.last_sync_ns.store(started.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = synced {
            let path = self.dir.join("journal").join(segment_name(segment));
            let e = JournalError::io(&path, e);
            let failed = AppendError::Storage { disk_full: e.is_disk_full(), reason: e.to_string() };
            self.fail_written(&path, &failed);
            self.poison(format!("fdatasync failed: {e}"));
            st.failed = Some(failed.clone());
            return Err(failed);
        }
        st.through = through;
        let (done, tx) = {
            let mut q = lock(&self.group.queue);
            let n = q.written.iter().take_while(|w| w.end <= through).count();
            (q.written.drain(..n).collect::<Vec<_>>(), q.index_tx.clone())
        };
        for w in done {
            self.publish(w, tx.as_ref());
        }
        Ok(())
    }

    /// Syncs and publishes every batch written so far.
    pub(super) fn flush_written(&self) -> Result<(), AppendError> {
        self.sync_through(u64::MAX)
    }

    /// A batch is durable: readers may read its frames, the index thread
    /// gets it, its checkpoint becomes the latest.
    fn publish(&self, w: Written, tx: Option<&SyncSender<Job>>) {
        *lock(&self.durable) = w.journal_end;
        let checkpoint = w.job.checkpoint.clone();
        if tx.is_none_or(|tx| tx.send(w.job).is_err()) {
            self.poison("the index thread stopped".into());
        }
        self.vis.set_acked(checkpoint);
    }

    /// A sync failed: nothing written since the last good one is
    /// acknowledged, so its frames are cut off the segment (no
    /// unacknowledged frame stays in front of later ones).
    fn fail_written(&self, segment: &std::path::Path, failed: &AppendError) {
        let mut gate = lock(&self.group.gate);
        *gate = Some(failed.clone());
        let mut q = lock(&self.group.queue);
        if let Some(first) = q.written.front() {
            // If this fails too, the frames stay, complete: the next open
            // recovers them as entries no caller was told about.
            let _ = std::fs::OpenOptions::new().write(true).open(segment).and_then(|f| f.set_len(first.start));
        }
        q.written.clear();
    }
}

/// A batch sequenced and written but not yet durable
/// (`Ledger::begin_batch`). `wait` makes it durable and returns its
/// receipts; dropping it still makes it durable (without receipts).
#[must_use = "a pending batch is acknowledged only by wait()"]
pub struct PendingBatch {
    reader: LedgerReader,
    pending: Option<Pending>,
}

impl PendingBatch {
    pub(super) fn new(reader: LedgerReader, pending: Pending) -> Self {
        Self { reader, pending: Some(pending) }
    }

    /// Waits for the `fdatasync` that covers this batch (running it, or
    /// sharing one that covers later batches too) and returns one result per
    /// entry, in order. Batches written earlier are made durable with it.
    pub fn wait(mut self) -> Vec<Result<Receipt, AppendError>> {
        let pending = self.pending.take().expect("waited once");
        self.reader.finish(pending)
    }
}

impl Drop for PendingBatch {
    fn drop(&mut self) {
        if let Some(p) = &self.pending {
            let _ = self.reader.s.sync_through(p.end());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::log::{AppendError, Ledger, LogOptions};

    fn entries(from: u64, n: u64) -> Vec<crate::NewEntry> {
        let limits = crate::entry::Limits::default();
        (from..from + n)
            .map(|i| {
                let input = crate::EntryInput {
                    category: "alert_ack".into(),
                    subject: format!("INC-{i}"),
                    payload: format!(r#"{{"i":{i}}}"#).into_bytes(),
                    request_id: format!("req-{i}"),
                    ..Default::default()
                };
                input.validate("test", &limits).unwrap()
            })
            .collect()
    }

    /// A failed fdatasync fails every batch written since the last good
    /// one (none is acknowledged or visible), cuts their frames off the
    /// segment, and stops the log; the next open has the log as it was
    /// before them, and a retry then writes them once.
    #[test]
    fn a_failed_sync_fails_every_batch_it_would_have_covered_and_cuts_them_off() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions::new("test.local/sync");
        let (l, _) = Ledger::open(dir.path(), opts.clone()).unwrap();
        assert!(l.append_batch(entries(0, 4)).into_iter().all(|r| r.is_ok()));
        let segment = l.journal_files().unwrap().pop().unwrap();
        let good_len = segment.2;
        let (a, b) = (l.begin_batch(entries(4, 3)), l.begin_batch(entries(7, 3)));
        // fsync(2) of /dev/full fails (EINVAL: no synchronisation)
        l.s.group.sync_with(std::fs::File::open("/dev/full").unwrap());
        for r in b.wait().into_iter().chain(a.wait()) {
            assert!(matches!(r, Err(AppendError::Storage { .. })), "{r:?}");
        }
        assert_eq!(l.size(), 4, "nothing of the failed batches is acknowledged");
        assert_eq!(std::fs::metadata(&segment.1).unwrap().len(), good_len, "their frames are cut off");
        let later = l.append(entries(10, 1).pop().unwrap());
        assert!(matches!(later, Err(AppendError::Unavailable(_))), "{later:?}");
        assert!(l.close().is_err(), "a stopped log writes no final checkpoint");
        drop(l);
        let (l, _) = Ledger::open(dir.path(), opts).unwrap();
        assert_eq!(l.size(), 4);
        let retried: Vec<_> = l.append_batch(entries(4, 6)).into_iter().map(Result::unwrap).collect();
        assert!(retried.iter().all(|r| !r.duplicate) && retried[0].seq == 4);
    }
}
