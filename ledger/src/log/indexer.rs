//! The index thread: applies committed batches to the index after their
//! receipts went out, and only then shows them to readers (DESIGN "The write
//! path"; docs/ARCHITECTURE.md "Write path").
//!
//! Owns: the thread, its queue (bounded: a writer that outruns the index
//! waits), merging what queued up into one application, and the "visible"
//! size that readers see. Must not: apply anything the journal has not made
//! durable (jobs are sent after the fdatasync), or reorder batches.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Shared, SignedCheckpoint};
use crate::index::IndexBatch;

/// Batches that may wait for the index thread before the writer waits.
const QUEUE: usize = 8;
/// Batches merged into one application at most.
const MERGE: usize = 64;
/// How long a reader waits for the index to show an acknowledged entry.
const READ_WAIT: Duration = Duration::from_secs(10);
/// How long the writer waits for the index to catch up.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

/// One committed batch for the index and the checkpoint signed for it (it
/// covers entries `[.., checkpoint size)`).
pub(super) struct Job {
    pub batch: IndexBatch,
    pub checkpoint: Arc<SignedCheckpoint>,
}

struct State {
    /// the latest checkpoint: every entry it covers is durable and acknowledged
    acked: Arc<SignedCheckpoint>,
    /// the newest checkpoint whose entries the index holds: its size is
    /// the entries the index holds (≤ the acknowledged size)
    readable: Arc<SignedCheckpoint>,
}

impl State {
    fn indexed(&self) -> u64 {
        self.readable.checkpoint.size
    }
}

/// What is acknowledged, and what the index holds; readers that need the
/// index beyond it wait here.
pub(super) struct Visibility {
    state: Mutex<State>,
    moved: Condvar,
}

impl Visibility {
    pub fn new(latest: Arc<SignedCheckpoint>) -> Self {
        let state = State { acked: latest.clone(), readable: latest };
        Self { state: Mutex::new(state), moved: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest checkpoint (acknowledged; the index may lag it briefly).
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        self.lock().acked.clone()
    }

    /// Entries the index holds.
    pub fn indexed(&self) -> u64 {
        self.lock().indexed()
    }

    /// The newest checkpoint whose entries the index holds: proofs in it
    /// never wait for the index thread. The latest one, or (while the index
    /// thread applies the newest batches) a few batches behind it.
    pub fn readable(&self) -> Arc<SignedCheckpoint> {
        self.lock().readable.clone()
    }

    /// A batch is durable: its checkpoint becomes the latest.
    pub fn set_acked(&self, checkpoint: Arc<SignedCheckpoint>) {
        self.lock().acked = checkpoint;
    }

    /// The index holds the entries `checkpoint` covers: wakes the readers
    /// waiting for them.
    fn publish(&self, checkpoint: Arc<SignedCheckpoint>) {
        let mut st = self.lock();
        if checkpoint.checkpoint.size > st.indexed() {
            st.readable = checkpoint;
        }
        drop(st);
        self.moved.notify_all();
    }

    /// Waits until the index holds `size` entries, when those are
    /// acknowledged (a size beyond the acknowledged one returns at once: the
    /// caller's bounds checks answer it). Gives up after `limit`.
    pub fn reach(&self, size: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut st = self.lock();
        while size > st.indexed() && size <= st.acked.checkpoint.size {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            st = self.moved.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// `reach` with the readers' limit.
    pub fn reach_for_read(&self, size: u64) {
        self.reach(size, READ_WAIT)
    }

    /// Waits until the index holds every acknowledged entry (a minute at
    /// most: the index thread applies a batch in milliseconds).
    pub fn drain(&self) {
        let size = self.latest().checkpoint.size;
        self.reach(size, DRAIN_WAIT)
    }
}

/// Starts the index thread; it ends when the sender is dropped.
pub(super) fn start(shared: Arc<Shared>) -> std::io::Result<(SyncSender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new().name("ledger-index".into()).spawn(move || run(&shared, rx))?;
    Ok((tx, thread))
}

fn run(s: &Shared, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let (mut batch, mut checkpoint) = (first.batch, first.checkpoint);
        for _ in 1..MERGE {
            let Ok(next) = rx.try_recv() else { break };
            batch.merge(next.batch);
            checkpoint = next.checkpoint;
        }
        if let Err(e) = s.index.apply(batch) {
            s.poison(format!("index update failed: {e}"));
        }
        s.vis.publish(checkpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Checkpoint;

    fn cp(size: u64) -> Arc<SignedCheckpoint> {
        let checkpoint = Checkpoint { origin: "test".into(), size, root: [size as u8; 32] };
        Arc::new(SignedCheckpoint { checkpoint, note: format!("note {size}") })
    }

    /// Proofs at "latest" use the newest checkpoint the index holds: it
    /// follows the index thread, never runs ahead of it, never goes back.
    #[test]
    fn the_readable_checkpoint_follows_what_the_index_holds() {
        let vis = Visibility::new(cp(10));
        assert_eq!(vis.readable().checkpoint.size, 10, "at open the index holds the latest");
        vis.set_acked(cp(12));
        vis.set_acked(cp(15));
        assert_eq!(vis.latest().checkpoint.size, 15);
        assert_eq!(vis.readable().checkpoint.size, 10, "acknowledged, not yet indexed");
        vis.publish(cp(12));
        assert_eq!(vis.readable().note, "note 12");
        vis.publish(cp(11));
        assert_eq!(vis.readable().checkpoint.size, 12, "never goes back");
        vis.publish(cp(15));
        assert_eq!((vis.readable().checkpoint.size, vis.indexed()), (15, 15));
    }
}
