//! The marks a log and its store share: the latest acknowledged
//! checkpoint, the newest one whose entries the store can serve, and the
//! reason the log stopped taking writes, if it did.
//!
//! Owns: those marks and the waits on them. Must not: move "readable"
//! past "acknowledged" for a caller, or go back.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::log::SignedCheckpoint;
use crate::sync::lock;

/// How long a reader waits for the store to show an acknowledged entry.
const READ_WAIT: Duration = Duration::from_secs(10);
/// How long the writer waits for the store to catch up.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

struct State {
    /// the latest checkpoint: every entry it covers is durable and acknowledged
    acked: Arc<SignedCheckpoint>,
    /// the newest checkpoint whose entries the store serves: its size is
    /// the entries readable (≤ the acknowledged size)
    readable: Arc<SignedCheckpoint>,
}

impl State {
    fn indexed(&self) -> u64 {
        self.readable.checkpoint.size
    }
}

/// What is acknowledged, and what the store serves; readers that need the
/// store beyond it wait here.
pub struct Visibility {
    state: Mutex<State>,
    moved: Condvar,
    /// why the log stopped taking writes (the first reason is kept)
    stopped: Mutex<Option<String>>,
}

impl Visibility {
    /// Marks at open: `latest` is acknowledged and readable.
    pub fn new(latest: Arc<SignedCheckpoint>) -> Self {
        let state = State { acked: latest.clone(), readable: latest };
        Self { state: Mutex::new(state), moved: Condvar::new(), stopped: Mutex::new(None) }
    }

    /// The latest checkpoint (acknowledged; the store may lag it briefly).
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        lock(&self.state).acked.clone()
    }

    /// Entries the store serves.
    pub fn indexed(&self) -> u64 {
        lock(&self.state).indexed()
    }

    /// The newest checkpoint whose entries the store serves: proofs in it
    /// never wait. The latest one, or (while the store applies the newest
    /// batches) a few batches behind it.
    pub fn readable(&self) -> Arc<SignedCheckpoint> {
        lock(&self.state).readable.clone()
    }

    /// A batch is durable: its checkpoint becomes the latest.
    pub fn set_acked(&self, checkpoint: Arc<SignedCheckpoint>) {
        lock(&self.state).acked = checkpoint;
    }

    /// The store serves the entries `checkpoint` covers: wakes the readers
    /// waiting for them.
    pub fn publish(&self, checkpoint: Arc<SignedCheckpoint>) {
        let mut st = lock(&self.state);
        if checkpoint.checkpoint.size > st.indexed() {
            st.readable = checkpoint;
        }
        drop(st);
        self.moved.notify_all();
    }

    /// Waits until the store serves `size` entries, when those are
    /// acknowledged (a size beyond the acknowledged one returns at once: the
    /// caller's bounds checks answer it). Gives up after `limit`.
    pub fn reach(&self, size: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut st = lock(&self.state);
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

    /// Waits until the store serves every acknowledged entry (a minute at
    /// most: an index application takes milliseconds).
    pub fn drain(&self) {
        let size = self.latest().checkpoint.size;
        self.reach(size, DRAIN_WAIT)
    }

    /// Stops writes after a storage failure (the first reason is kept).
    pub fn stop(&self, reason: String) {
        lock(&self.stopped).get_or_insert(reason);
    }

    /// Takes writes again after a stop whose failed batches left nothing
    /// in the store (`crate::Ledger::resume`).
    pub fn resume(&self) {
        lock(&self.stopped).take();
    }

    /// Why writes stopped, if they did.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.stopped).clone()
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

    /// Proofs at "latest" use the newest checkpoint the store serves: it
    /// follows the store, never runs ahead of it, never goes back.
    #[test]
    fn the_readable_checkpoint_follows_what_the_store_serves() {
        let vis = Visibility::new(cp(10));
        assert_eq!(vis.readable().checkpoint.size, 10, "at open the store serves the latest");
        vis.set_acked(cp(12));
        vis.set_acked(cp(15));
        assert_eq!(vis.latest().checkpoint.size, 15);
        assert_eq!(vis.readable().checkpoint.size, 10, "acknowledged, not yet readable");
        vis.publish(cp(12));
        assert_eq!(vis.readable().note, "note 12");
        vis.publish(cp(11));
        assert_eq!(vis.readable().checkpoint.size, 12, "never goes back");
        vis.publish(cp(15));
        assert_eq!((vis.readable().checkpoint.size, vis.indexed()), (15, 15));
    }
}
