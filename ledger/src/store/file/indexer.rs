//! The index thread: applies durable batches to the index after the log
//! published them, and only then shows them to readers (docs/ARCHITECTURE.md
//! "The write path").
//!
//! Owns: the thread, its queue (bounded: a writer that outruns the index
//! waits), and merging what queued up into one application. Must not: apply
//! anything the journal has not made durable (jobs are sent after the
//! sync), or reorder batches.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::index::{Index, IndexBatch};
use crate::log::SignedCheckpoint;
use crate::store::Visibility;

/// Batches that may wait for the index thread before the writer waits.
const QUEUE: usize = 8;
/// Batches merged into one application at most.
const MERGE: usize = 64;

/// One durable batch for the index and the checkpoint signed for it (it
/// covers entries `[.., checkpoint size)`).
pub(super) struct Job {
    pub batch: IndexBatch,
    pub checkpoint: Arc<SignedCheckpoint>,
}

/// Starts the index thread; it ends when the sender is dropped.
pub(super) fn start(
    index: Index,
    vis: Arc<Visibility>,
) -> std::io::Result<(SyncSender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new().name("ledger-index".into()).spawn(move || run(&index, &vis, rx))?;
    Ok((tx, thread))
}

fn run(index: &Index, vis: &Visibility, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let (mut batch, mut checkpoint) = (first.batch, first.checkpoint);
        for _ in 1..MERGE {
            let Ok(next) = rx.try_recv() else { break };
            batch.merge(next.batch);
            checkpoint = next.checkpoint;
        }
        if let Err(e) = index.apply(batch) {
            vis.stop(format!("index update failed: {e}"));
        }
        vis.publish(checkpoint);
    }
}
