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

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use bytes::Bytes;

use crate::artifacts::{BlobHasher, StoredBlob};
use crate::hash::Hash;
use crate::journal::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, encode_frame, parse_frame, segment_header, segment_name};
use crate::leaf::Leaf;
use crate::merkle::CompactRange;
use crate::record::{self, Checked};
use crate::store::{
    ArtifactRow, BlobStore, BlobWriter, BundlePart, LeafMeta, LogStore, LogWriter, OpenReport, Opened, Secondary,
    StoreError, StoreErrorKind, Visibility, WriteBatch,
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
            opened_size: size,
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

/// Derived data of the published entries.
#[derive(Default)]
struct Derived {
    metas: Vec<LeafMeta>,
    /// perfect-subtree hashes per level (level 0: leaf hashes)
    nodes: Vec<Vec<Hash>>,
    postings: HashMap<(Secondary, String), Vec<u64>>,
    requests: HashMap<u64, Vec<u64>>,
    /// history checkpoints, ascending by size
    checkpoints: Vec<(u64, String)>,
    artifacts: HashMap<Hash, ArtifactRow>,
}

impl Derived {
    /// Rebuilds everything from a durable journal; returns it with each
    /// seq's frame offset.
    fn scan(journal: &[u8]) -> Result<(Self, Vec<u64>), StoreError> {
        if journal.get(..SEGMENT_HEADER_LEN as usize) != Some(&segment_header(0)[..]) {
            return Err(StoreError::damaged("the memory journal's segment header is wrong"));
        }
        let (mut d, mut offsets, mut range) = (Derived::default(), Vec::new(), CompactRange::new());
        let mut at = SEGMENT_HEADER_LEN as usize;
        let bad = |at: usize, why: String| StoreError::damaged(format!("memory journal at offset {at}: {why}"));
        while let Some((rec, n)) = parse_frame(&journal[at..]).map_err(|e| bad(at, e.to_string()))? {
            let seq = offsets.len() as u64;
            match record::decode_at(Bytes::copy_from_slice(rec), seq).map_err(|e| bad(at, e))? {
                Checked::Checkpoint(note) => d.checkpoints.push((seq, note)),
                Checked::Entry { leaf, leaf_hash: h, .. } => {
                    d.add_entry(seq, &leaf, h, None);
                    range.push(h, |l, i, n| d.add_node(l, i, n));
                    offsets.push(at as u64);
                }
            }
            at += n;
        }
        Ok((d, offsets))
    }

    /// Indexes one entry, as the file store's `IndexBatch::add_entry`.
    fn add_entry(&mut self, seq: u64, leaf: &Leaf, hash: Hash, request_hash: Option<u64>) {
        self.metas.push(LeafMeta { leaf_hash: hash, recorded_at: leaf.recorded_at });
        if !leaf.request_id.is_empty() {
            let h = request_hash.unwrap_or_else(|| crate::store::request_hash(&leaf.request_id));
            self.requests.entry(h).or_default().push(seq);
        }
        let mut post = |s: Secondary, v: &str| self.postings.entry((s, v.to_owned())).or_default().push(seq);
        post(Secondary::Category, &leaf.category);
        post(Secondary::Actor, &leaf.actor);
        if !leaf.subject.is_empty() {
            post(Secondary::Subject, &leaf.subject);
        }
        for a in &leaf.artifacts {
            let (Some(b3), Some(sha)) = (crate::hash::from_slice(&a.blake3), crate::hash::from_slice(&a.sha256)) else {
                continue;
            };
            self.artifacts.entry(b3).or_insert_with(|| ArtifactRow {
                sha256: sha,
                size: a.size,
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                subject: leaf.subject.clone(),
                seq,
            });
        }
    }

    /// Keeps a perfect-subtree hash (they arrive in index order per level).
    fn add_node(&mut self, level: u8, index: u64, hash: &Hash) {
        let l = level as usize;
        if self.nodes.len() <= l {
            self.nodes.resize_with(l + 1, Vec::new);
        }
        let v = &mut self.nodes[l];
        match usize::try_from(index) {
            Ok(i) if i == v.len() => v.push(*hash),
            Ok(i) if i < v.len() => v[i] = *hash,
            _ => {} // a gap: the node stays missing (a proof through it fails)
        }
    }

    /// Applies a durable batch: entries, their nodes, its history checkpoint.
    fn apply(&mut self, b: &WriteBatch) {
        for (i, e) in b.entries.iter().enumerate() {
            let seq = b.first_seq + i as u64;
            self.add_entry(seq, &e.leaf, e.leaf_hash, e.request_hash);
            self.add_node(0, seq, &e.leaf_hash);
        }
        for (level, index, h) in &b.nodes {
            self.add_node(*level, *index, h);
        }
        if let Some(note) = &b.history {
            self.checkpoints.push((b.end(), note.clone()));
        }
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
    opened_size: u64,
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
    fn opened_size(&self) -> u64 {
        self.opened_size
    }

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

    /// Makes every written batch durable, then keeps `history` after it.
    fn close(&mut self, history: Option<(u64, String)>) -> Result<(), StoreError> {
        self.store.sync_written();
        if let Some((size, note)) = history {
            encode_frame(&record::encode_checkpoint(&note), &mut lock(&self.store.disk.state).journal);
            write(&self.store.derived).checkpoints.push((size, note));
        }
        Ok(())
    }
}

/// Artifact blobs in the disk's map.
struct MemoryBlobs {
    disk: MemoryDisk,
}

fn not_found(blake3: &Hash) -> StoreError {
    StoreError::new(StoreErrorKind::NotFound, format!("artifact {} is not stored", hex::encode(blake3)))
}

impl MemoryBlobs {
    fn content(&self, blake3: &Hash) -> Result<Vec<u8>, StoreError> {
        lock(&self.disk.state).blobs.get(blake3).cloned().ok_or_else(|| not_found(blake3))
    }
}

impl BlobStore for MemoryBlobs {
    fn begin(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(MemoryBlobWriter {
            disk: self.disk.clone(),
            buf: Vec::new(),
            hasher: BlobHasher::default(),
            limit,
        }))
    }

    fn verify(&self, blake3: &Hash) -> Result<StoredBlob, StoreError> {
        let content = self.content(blake3)?;
        let mut h = BlobHasher::default();
        h.update(&content);
        let blob = h.finish();
        if &blob.blake3 != blake3 {
            return Err(StoreError::damaged(format!(
                "artifact {} is altered: its content hashes to {}",
                hex::encode(blake3),
                hex::encode(blob.blake3)
            )));
        }
        Ok(blob)
    }

    fn open(&self, blake3: &Hash) -> Result<Box<dyn Read + Send>, StoreError> {
        Ok(Box::new(std::io::Cursor::new(self.content(blake3)?)))
    }
}

/// A blob being written: in the disk's map only after `finish`.
struct MemoryBlobWriter {
    disk: MemoryDisk,
    buf: Vec<u8>,
    hasher: BlobHasher,
    limit: u64,
}

impl BlobWriter for MemoryBlobWriter {
    fn write(&mut self, b: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(b);
        if self.hasher.size() > self.limit {
            let limit = self.limit;
            return Err(StoreError::new(StoreErrorKind::TooLarge { limit }, format!("artifact exceeds {limit} bytes")));
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Stores the content under its hash (a blob already stored stays).
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError> {
        let MemoryBlobWriter { disk, buf, hasher, .. } = *self;
        let blob = hasher.finish();
        lock(&disk.state).blobs.entry(blob.blake3).or_insert(buf);
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryInput;
    use crate::leaf::{Sequencing, build_leaf, encode_leaf};
    use crate::log::SignedCheckpoint;
    use crate::note::Checkpoint;
    use crate::record::EntryRecord;
    use crate::store::BatchEntry;

    /// A batch of `n` entries after `range` (pushed into it), with request
    /// ids `req-<seq>` and subjects cycling over 3.
    fn batch(range: &mut CompactRange, n: u64, history: bool) -> WriteBatch {
        let first_seq = range.size();
        let (mut entries, mut nodes, mut frames) = (Vec::new(), Vec::new(), Vec::new());
        for seq in first_seq..first_seq + n {
            let input = EntryInput {
                category: "alert_ack".into(),
                subject: format!("S-{}", seq % 3),
                payload: format!(r#"{{"n":{seq},"pad":"xxxxxxxxxxxxxxxx"}}"#).into_bytes(),
                request_id: format!("req-{seq}"),
                ..Default::default()
            };
            let e = input.validate("svc", &Default::default()).expect("valid");
            let seqs = Sequencing { seq, recorded_at: seq as i64, prev_hash: [0; 32], subject_prev: 0 };
            let leaf = build_leaf(&e, seqs);
            let leaf_bytes = Bytes::from(encode_leaf(&leaf));
            let hash = crate::hash::leaf_hash(&leaf_bytes);
            let rec = EntryRecord {
                leaf: leaf_bytes,
                payload: Bytes::from(format!(r#"{{"n":{seq},"pad":"xxxxxxxxxxxxxxxx"}}"#)),
                hmac_key_id: "k".into(),
                hmac: Bytes::from_static(&[1; 32]),
                redacted_by: 0,
                padding: Bytes::new(),
            };
            range.push(hash, |l, i, h| {
                if l > 0 {
                    nodes.push((l, i, *h))
                }
            });
            let request_hash = Some(crate::store::request_hash(&leaf.request_id));
            let body = record::encode_entry(rec);
            encode_frame(&body, &mut frames);
            let frame_len = (FRAME_HEADER_LEN as usize + body.len()) as u32;
            entries.push(BatchEntry { frame_len, leaf, leaf_hash: hash, request_hash });
        }
        let checkpoint = Checkpoint { origin: "test".into(), size: range.size(), root: range.root() };
        let note = format!("note {}", range.size());
        if history {
            encode_frame(&record::encode_checkpoint(&note), &mut frames);
        }
        let checkpoint = Arc::new(SignedCheckpoint { checkpoint, note: note.clone() });
        WriteBatch { first_seq, frames, entries, nodes, history: history.then_some(note), checkpoint }
    }

    #[test]
    fn a_second_writer_is_locked_out_until_the_first_is_dropped() {
        let disk = MemoryDisk::new();
        let first = disk.open().expect("open");
        let err = disk.open().err().expect("a second open while the writer lives");
        assert_eq!(err.kind, StoreErrorKind::Locked);
        drop(first.writer);
        assert!(disk.open().is_ok(), "the lease went with the writer");
    }

    #[test]
    fn a_batch_is_durable_after_sync_and_readable_after_publish_only() {
        let disk = MemoryDisk::new();
        let o = disk.open().unwrap();
        let (store, mut w) = (o.store, o.writer);
        let vis = Arc::new(Visibility::new(batch(&mut CompactRange::new(), 0, false).checkpoint));
        store.start(vis.clone()).unwrap();
        let mut range = CompactRange::new();
        let b = batch(&mut range, 5, true);
        w.write(b).unwrap();
        assert_eq!(disk.journal().len(), SEGMENT_HEADER_LEN as usize, "written is not durable");
        store.sync().unwrap();
        assert!(disk.journal().len() > SEGMENT_HEADER_LEN as usize, "synced is on the disk");
        assert_eq!(store.leaf_meta(0).unwrap(), None, "not readable before publish");
        store.publish(5);
        assert_eq!(vis.indexed(), 5);
        let (meta, rec) = store.record(4).unwrap().expect("published");
        let record::Decoded::Entry(e) = record::decode(rec).unwrap() else { panic!("an entry") };
        assert_eq!(crate::hash::leaf_hash(&e.leaf), meta.leaf_hash);
        assert_eq!(store.node(2, 0).unwrap(), CompactRange::from_source(&NodesOf(&*store), 4).ok().map(|r| r.root()));
        assert_eq!(store.scan(Secondary::Subject, "S-1", 0, 5, true, 10).unwrap(), vec![4, 1]);
        assert_eq!(store.request_candidates(crate::store::request_hash("req-3")).unwrap(), vec![3]);
        assert_eq!(store.checkpoints(0, 10).unwrap(), vec![(5, "note 5".to_owned())]);
        assert_eq!(store.leaf_meta(5).unwrap(), None);
    }

    struct NodesOf<'a>(&'a dyn LogStore);
    impl crate::merkle::NodeSource for NodesOf<'_> {
        fn node(&self, level: u8, index: u64) -> Result<Hash, crate::merkle::ProofError> {
            self.0.node(level, index).ok().flatten().ok_or(crate::merkle::ProofError::MissingNode { level, index })
        }
    }

    #[test]
    fn discarded_batches_never_reach_the_disk_and_a_reopen_rebuilds_the_rest() {
        let disk = MemoryDisk::new();
        let o = disk.open().unwrap();
        let (store, mut w) = (o.store, o.writer);
        let mut range = CompactRange::new();
        w.write(batch(&mut range, 3, false)).unwrap();
        store.sync().unwrap();
        store.publish(3);
        let root3 = range.root();
        w.write(batch(&mut range, 4, true)).unwrap();
        store.discard_unsynced();
        store.sync().unwrap();
        let mut redacted = store.record(1).unwrap().unwrap().1.to_vec();
        let last = redacted.len() - 3;
        redacted[last] ^= 0x20; // same length, other bytes ('x' → 'X')
        w.replace_record(1, &redacted).unwrap();
        drop((store, w));
        let o = disk.open().unwrap();
        assert_eq!((o.store.opened_size(), o.report.size), (3, 3), "the discarded batch is gone");
        assert_eq!(CompactRange::from_source(&NodesOf(&*o.store), 3).unwrap().root(), root3);
        assert_eq!(&o.store.record(1).unwrap().unwrap().1[..], &redacted[..], "the frame's CRC was re-encoded");
        assert!(o.store.checkpoints(0, 10).unwrap().is_empty(), "the discarded history went with its batch");
    }

    #[test]
    fn blobs_are_checked_limited_and_kept_across_opens() {
        let disk = MemoryDisk::new();
        let o = disk.open().unwrap();
        let blobs = o.store.blobs();
        let stored = blobs.put(&b"hello artifact"[..], 100).unwrap();
        assert_eq!(blobs.get(&stored.blake3).unwrap(), b"hello artifact");
        let err = blobs.put(&[7u8; 101][..], 100).unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::TooLarge { limit: 100 });
        assert_eq!(blobs.verify(&[9; 32]).unwrap_err().kind, StoreErrorKind::NotFound);
        lock(&disk.state).blobs.get_mut(&stored.blake3).unwrap()[0] ^= 1;
        assert_eq!(blobs.verify(&stored.blake3).unwrap_err().kind, StoreErrorKind::Damaged);
        drop(o);
        let o = disk.open().unwrap();
        assert_eq!(o.store.blobs().verify(&stored.blake3).unwrap_err().kind, StoreErrorKind::Damaged, "same disk");
    }
}
