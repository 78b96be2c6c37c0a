//! The group sync: pipelined group commit (docs/ARCHITECTURE.md "The write
//! path").
//!
//! A batch is sequenced and written to the store under the writer lock; its
//! sync runs after the lock is released, so the next batch is sequenced
//! while the store syncs this one. One sync covers every batch written
//! before it started. A synced batch is published — the store makes it
//! readable, its checkpoint becomes the latest — strictly in write order,
//! and only then are its receipts built.
//!
//! Owns: the queue of written batches that are not yet durable, the syncs,
//! and what a failed sync does (the log stops taking writes; every batch it
//! would have covered fails, and the store drops them). Must not: publish
//! or acknowledge a batch before a sync that started after it was written,
//! or publish out of order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::append::{AppendError, Receipt, Sequenced};
use super::{LedgerReader, Shared, SignedCheckpoint};
use crate::sync::lock;

struct Synced {
    /// entries durable and published
    through: u64,
    /// the failure that stopped the log
    failed: Option<AppendError>,
}

/// The written batches and the syncs that make them durable.
pub(super) struct GroupSync {
    /// written batches, in order: (entries once durable, their checkpoint)
    queue: Mutex<VecDeque<(u64, Arc<SignedCheckpoint>)>>,
    synced: Mutex<Synced>,
    /// held while a batch is written and queued, and while a failed sync
    /// makes the store drop what it had written: nothing is written behind
    /// that cut. Holds the failure once there was one (nothing is written
    /// after it).
    gate: Mutex<Option<AppendError>>,
}

impl GroupSync {
    /// `durable` entries are durable at open.
    pub fn new(durable: u64) -> Self {
        let synced = Mutex::new(Synced { through: durable, failed: None });
        Self { queue: Mutex::new(VecDeque::new()), synced, gate: Mutex::new(None) }
    }

    /// Forgets a failed sync (`crate::Ledger::resume`): writes are taken
    /// again, from `durable`. Call under the writer lock with nothing queued.
    pub fn reset(&self, durable: u64) {
        let mut gate = lock(&self.gate);
        let mut st = lock(&self.synced);
        lock(&self.queue).clear();
        (st.through, st.failed) = (durable, None);
        *gate = None;
    }

    /// The entries durable and published.
    pub fn through(&self) -> u64 {
        lock(&self.synced).through
    }

    /// Writes one batch with `write` and queues it (ending at `end`, with
    /// its checkpoint) after every batch already queued. Call under the
    /// writer lock. After a failed sync nothing is written: that sync's
    /// error is returned.
    pub fn append(
        &self,
        end: u64,
        checkpoint: Arc<SignedCheckpoint>,
        write: impl FnOnce() -> Result<(), AppendError>,
    ) -> Result<(), AppendError> {
        let gate = lock(&self.gate);
        if let Some(e) = &*gate {
            return Err(e.clone());
        }
        write()?;
        lock(&self.queue).push_back((end, checkpoint));
        Ok(())
    }
}

impl Shared {
    /// Makes the log durable through `end` entries (one store sync for every
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
        let Some(through) = lock(&self.group.queue).back().map(|b| b.0) else {
            return Ok(()); // nothing written beyond what is durable
        };
        if let Err(e) = self.store.sync() {
            let failed = super::append::store_failed(e);
            self.fail_written(&failed);
            self.vis.stop(format!("a sync failed: {failed}"));
            st.failed = Some(failed.clone());
            return Err(failed);
        }
        st.through = through;
        let done: Vec<_> = {
            let mut q = lock(&self.group.queue);
            let n = q.iter().take_while(|b| b.0 <= through).count();
            q.drain(..n).collect()
        };
        for (end, checkpoint) in done {
            // The store makes it readable; its checkpoint becomes the latest.
            self.store.publish(end);
            self.vis.set_acked(checkpoint);
        }
        Ok(())
    }

    /// Syncs and publishes every batch written so far.
    pub(super) fn flush_written(&self) -> Result<(), AppendError> {
        self.sync_through(u64::MAX)
    }

    /// A sync failed: nothing written since the last good one is
    /// acknowledged, so the store drops it (no unacknowledged record stays
    /// in front of later ones).
    fn fail_written(&self, failed: &AppendError) {
        let mut gate = lock(&self.group.gate);
        *gate = Some(failed.clone());
        let mut q = lock(&self.group.queue);
        self.store.discard_unsynced();
        q.clear();
    }
}

/// A batch sequenced and written but not yet durable
/// (`Ledger::begin_batch`). `wait` makes it durable and returns its
/// receipts; dropping it still makes it durable (without receipts).
#[must_use = "a pending batch is acknowledged only by wait()"]
pub struct PendingBatch {
    reader: LedgerReader,
    sequenced: Option<Sequenced>,
}

impl PendingBatch {
    pub(super) fn new(reader: LedgerReader, sequenced: Sequenced) -> Self {
        Self { reader, sequenced: Some(sequenced) }
    }

    /// Waits for the sync that covers this batch (running it, or
    /// sharing one that covers later batches too) and returns one result per
    /// entry, in order. Batches written earlier are made durable with it.
    pub fn wait(mut self) -> Vec<Result<Receipt, AppendError>> {
        let sequenced = self.sequenced.take().expect("waited once");
        self.reader.finish(sequenced)
    }
}

impl Drop for PendingBatch {
    fn drop(&mut self) {
        if let Some(p) = &self.sequenced {
            let _ = self.reader.s.sync_through(p.end());
        }
    }
}
