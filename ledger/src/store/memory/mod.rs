//! The memory store: a log kept in memory, for tests and as the smallest
//! engine that passes the conformance suite (`ledger/tests/conformance.rs`).
//!
//! A [`MemoryDisk`] is what survives a reopen: the durable journal bytes in
//! the layout of FORMAT.md §6 (one segment: its header, then one frame per
//! record, a batch's history checkpoint after its entries), the frame
//! offset of each seq, and the artifact blobs. Everything else — leaf metas,
//! Merkle nodes, postings, request hashes, history checkpoints, artifact
//! rows — is derived data, rebuilt by scanning the journal at every open.
//!
//! Owns: the disk's bytes, the written-but-not-synced batches (dropped by
//! `discard_unsynced`, lost when the store is dropped), the synced batches
//! waiting for `publish`, the derived data, and the single-writer lease.
//! Must not: make a batch durable before `sync`, make it readable before
//! `publish`, or decide anything the log decides (sequencing, dedup,
//! signing).

mod blobs;
mod derived;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use self::blobs::MemoryBlobs;
use self::derived::Derived;

use bytes::Bytes;

use crate::hash::Hash;
use crate::journal::{FRAME_HEADER_LEN, encode_frame, parse_frame, segment_header, segment_name};
use crate::record;
use crate::store::{
    ArtifactRow, BlobStore, BundlePart, LeafMeta, LogStore, LogWriter, OpenReport, Opened, Secondary, StoreError,
    StoreErrorKind, Visibility, WriteBatch,
};
use crate::sync::{lock, read, write};

/// What a reopen finds: the durable journal, each seq's frame offset, the
/// blobs, and whether a writer holds the disk.
struct DiskState {
    /// one segment (first seq 0): header, then frames
    journal: Vec<u8>,
    /// the frame offset of each durable entry, by seq
    offsets: Vec<u64>,
    /// artifact content by BLAKE3
    blobs: HashMap<Hash, Vec<u8>>,
    /// a writer of this disk is alive (the single-writer lease)
    leased: bool,
}

/// The durable side of a memory store: cheap to clone (every clone is the
/// same disk). Open it again after dropping a ledger to see what survived.
#[derive(Clone)]
pub struct MemoryDisk {
    state: Arc<Mutex<DiskState>>,
}

impl Default for MemoryDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl DiskState {
    /// Appends a batch's frames (entries, then its history checkpoint).
    fn append_batch(&mut self, b: &WriteBatch) {
        let mut at = self.journal.len() as u64;
        for e in &b.entries {
            self.offsets.push(at);
            at += u64::from(e.frame_len);
        }
        self.journal.extend_from_slice(&b.frames);
    }

    /// The record of the frame at `offset`, CRC-checked.
    fn frame_at(&self, offset: u64) -> Result<&[u8], StoreError> {
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        match self.journal.get(at..).map(parse_frame) {
            Some(Ok(Some((record, _)))) => Ok(record),
            Some(Err(e)) => Err(StoreError::damaged(format!("memory journal frame at offset {offset}: {e}"))),
            _ => Err(StoreError::damaged(format!("no frame at offset {offset} of the memory journal"))),
        }
    }
}

impl MemoryDisk {
    /// An empty disk: a journal of one empty segment, no blobs.
    pub fn new() -> Self {
        let state = DiskState {
            journal: segment_header(0).to_vec(),
            offsets: Vec::new(),
            blobs: HashMap::new(),
            leased: false,
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// Opens the store on this disk: derived data rebuilt from the journal.
    /// `Locked` while a writer of this disk is alive.
    pub fn open(&self) -> Result<Opened, StoreError> {
        let mut st = lock(&self.state);
        if st.leased {
            return Err(StoreError::new(StoreErrorKind::Locked, "the memory disk has a live writer"));
        }
        let (derived, offsets) = Derived::scan(&st.journal)?;
        st.offsets = offsets;
        st.leased = true;
        drop(st);
        let size = derived.metas.len() as u64;
        let store = Arc::new(MemoryStore {
            disk: self.clone(),
            blobs: MemoryBlobs { disk: self.clone() },
            derived: RwLock::new(derived),
            queue: Mutex::new(Queue::default()),
            vis: OnceLock::new(),
            last_sync_ns: AtomicU64::new(0),
        });
        let writer = Box::new(MemoryWriter { store: store.clone(), _lease: Lease { disk: self.clone() } });
        let report = OpenReport { caught_up: size, size, ..Default::default() };
        Ok(Opened { store, writer, report })
    }

    /// The durable journal bytes (one segment, FORMAT.md §6).
    pub fn journal(&self) -> Vec<u8> {
        lock(&self.state).journal.clone()
    }
}

/// Held by the writer; dropping it frees the disk for the next open.
struct Lease {
    disk: MemoryDisk,
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.disk.state).leased = false;
    }
}

/// Batches between `write` and `publish`.
#[derive(Default)]
struct Queue {
    /// written, not durable
    written: VecDeque<WriteBatch>,
    /// durable, not yet published
    synced: VecDeque<WriteBatch>,
}

/// The shared side of a log in memory.
pub struct MemoryStore {
    disk: MemoryDisk,
    blobs: MemoryBlobs,
    derived: RwLock<Derived>,
    queue: Mutex<Queue>,
    vis: OnceLock<Arc<Visibility>>,
    last_sync_ns: AtomicU64,
}

/// The writer of a log in memory: holds the disk's lease.
struct MemoryWriter {
    store: Arc<MemoryStore>,
    _lease: Lease,
}

impl MemoryStore {
    /// Moves every written batch to the disk.
    fn sync_written(&self) {
        let mut q = lock(&self.queue);
        let mut disk = lock(&self.disk.state);
        while let Some(b) = q.written.pop_front() {
            disk.append_batch(&b);
            q.synced.push_back(b);
        }
    }
}

impl LogStore for MemoryStore {
    fn start(&self, vis: Arc<Visibility>) -> Result<(), StoreError> {
        let _ = self.vis.set(vis);
        Ok(())
    }

    fn stop(&self) {}

    fn leaf_meta(&self, seq: u64) -> Result<Option<LeafMeta>, StoreError> {
        Ok(usize::try_from(seq).ok().and_then(|i| read(&self.derived).metas.get(i).copied()))
    }

    fn record(&self, seq: u64) -> Result<Option<(LeafMeta, Bytes)>, StoreError> {
        let Some(meta) = self.leaf_meta(seq)? else {
            return Ok(None);
        };
        let disk = lock(&self.disk.state);
        let offset = *disk.offsets.get(seq as usize).ok_or_else(|| {
            let indexed = read(&self.derived).metas.len() as u64;
            StoreError::new(StoreErrorKind::Missing { indexed, missing: seq }, "entry not in the memory journal")
        })?;
        Ok(Some((meta, Bytes::copy_from_slice(disk.frame_at(offset)?))))
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        let d = read(&self.derived);
        Ok(d.nodes.get(level as usize).and_then(|v| usize::try_from(index).ok().and_then(|i| v.get(i))).copied())
    }

    fn request_candidates(&self, hash: u64) -> Result<Vec<u64>, StoreError> {
        Ok(read(&self.derived).requests.get(&hash).cloned().unwrap_or_default())
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
        let d = read(&self.derived);
        let Some(seqs) = d.postings.get(&(by, value.to_owned())) else {
            return Ok(Vec::new());
        };
        let (lo, hi) = (seqs.partition_point(|&s| s < from), seqs.partition_point(|&s| s < to));
        let hits = &seqs[lo..hi.max(lo)];
        Ok(if desc {
            hits.iter().rev().take(limit).copied().collect()
        } else {
            hits.iter().take(limit).copied().collect()
        })
    }

    fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, StoreError> {
        let d = read(&self.derived);
        Ok(d.checkpoints.iter().filter(|(s, _)| (from..=to).contains(s)).cloned().collect())
    }

    fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, StoreError> {
        Ok(read(&self.derived).artifacts.get(blake3).cloned())
    }

    fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, StoreError> {
        let mut rows: Vec<_> = read(&self.derived).artifacts.iter().map(|(h, r)| (*h, r.clone())).collect();
        rows.sort_by_key(|(h, _)| *h);
        Ok(rows)
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    fn bundle_parts(&self) -> Result<Vec<BundlePart>, StoreError> {
        let len = lock(&self.disk.state).journal.len() as u64;
        Ok(vec![BundlePart { name: format!("journal/{}", segment_name(0)), first_seq: 0, len }])
    }

    fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if part.first_seq != 0 {
            return Err(StoreError::new(StoreErrorKind::NotFound, format!("no bundle part {}", part.name)));
        }
        let disk = lock(&self.disk.state);
        let end = part.len.min(disk.journal.len() as u64);
        let n = end.saturating_sub(offset).min(buf.len() as u64) as usize;
        if n > 0 {
            buf[..n].copy_from_slice(&disk.journal[offset as usize..offset as usize + n]);
        }
        Ok(n)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        self.sync_written();
        self.last_sync_ns.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Applies every synced batch through `end`, then tells readers.
    fn publish(&self, end: u64) {
        let mut done = Vec::new();
        {
            let mut q = lock(&self.queue);
            while q.synced.front().is_some_and(|b| b.end() <= end) {
                done.extend(q.synced.pop_front());
            }
        }
        let Some(last) = done.last().map(|b| b.checkpoint.clone()) else { return };
        {
            let mut d = write(&self.derived);
            for b in &done {
                d.apply(b);
            }
        }
        if let Some(vis) = self.vis.get() {
            vis.publish(last);
        }
    }

    fn discard_unsynced(&self) {
        lock(&self.queue).written.clear();
    }

    fn last_sync_nanos(&self) -> u64 {
        self.last_sync_ns.load(Ordering::Relaxed)
    }

    /// Derived data is rebuilt at every open: nothing to mark.
    fn request_rebuild(&self, _by: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

impl LogWriter for MemoryWriter {
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        lock(&self.store.queue).written.push_back(batch);
        Ok(())
    }

    fn wants_durable_point(&self) -> bool {
        false
    }

    fn durable_point(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Overwrites the frame in place, re-encoded so its CRC matches.
    fn replace_record(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        let mut disk = lock(&self.store.disk.state);
        let Some(&offset) = disk.offsets.get(seq as usize) else {
            let indexed = disk.offsets.len() as u64;
            return Err(StoreError::new(
                StoreErrorKind::Missing { indexed, missing: seq },
                format!("entry {seq} is not durable in the memory journal"),
            ));
        };
        let old = disk.frame_at(offset)?.len();
        if old != record.len() {
            return Err(StoreError::damaged(format!("the replacement of entry {seq} differs in length")));
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN as usize + old);
        encode_frame(record, &mut frame);
        let at = offset as usize;
        disk.journal[at..at + frame.len()].copy_from_slice(&frame);
        Ok(())
    }

    /// Keeps `history` after the durable batches (the log calls it with
    /// every written batch durable and published).
    fn close(&mut self, history: Option<(u64, String)>) -> Result<(), StoreError> {
        if let Some((size, note)) = history {
            encode_frame(&record::encode_checkpoint(&note), &mut lock(&self.store.disk.state).journal);
            write(&self.store.derived).checkpoints.push((size, note));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
