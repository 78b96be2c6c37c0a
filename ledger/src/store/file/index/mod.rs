//! The sled index of one log (FORMAT.md §10): derived data, caught up from
//! the journal and rebuildable from scratch.
//!
//! Owns: tree names, key layouts, bincode values and the flat record files
//! (`flat`). Must not: hold
//! anything the journal does not (it is written only after the journal's
//! fdatasync), or be hashed or signed.

mod batch;
mod filter;
mod flat;
mod postings;
mod requests;
mod tail;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bincode::Decode;

use crate::hash::Hash;
use crate::merkle::{NodeSource, ProofError};
pub use crate::store::{ArtifactRow, Secondary};
use crate::sync;

pub use batch::{IndexBatch, IndexedEntry};

const THROUGH_KEY: &[u8] = b"indexed_through";
/// The index layout version (FORMAT.md §10); another one is rebuilt.
const FORMAT_KEY: &[u8] = b"index_format";
const FORMAT: u64 = 3;
/// sled's page cache (its default is 1 GiB; the hot data, positions and Merkle
/// nodes, lives in the flat files and the OS page cache).
const SLED_CACHE_BYTES: u64 = 64 << 20;

/// An index failure.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// sled failed.
    #[error("index database: {0}")]
    Sled(#[from] sled::Error),
    /// A flat index file failed.
    #[error("index file {path}: {source}")]
    Io {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The index was written in another layout.
    #[error("the index has layout {found}, this ledgerd uses {FORMAT}: it is rebuilt from the journal")]
    Layout {
        /// the layout found
        found: u64,
    },
    /// A stored value does not decode.
    #[error("index value in tree {tree} does not decode: {reason}; rebuild the index (delete the index directory)")]
    Decode {
        /// the tree
        tree: &'static str,
        /// the decoder's message
        reason: String,
    },
}

impl IndexError {
    /// True when the index's files are damaged or unreadable as an index
    /// (as opposed to locked or failing I/O): it can be rebuilt from the journal.
    pub fn is_damage(&self) -> bool {
        match self {
            Self::Sled(
                sled::Error::Corruption { .. } | sled::Error::Unsupported(_) | sled::Error::ReportableBug(_),
            ) => true,
            Self::Sled(_) | Self::Io { .. } => false,
            Self::Decode { .. } | Self::Layout { .. } => true,
        }
    }
}

/// Where an entry's frame is, plus what proofs and time queries need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// first seq of the segment file
    pub segment: u64,
    /// frame offset in that file
    pub offset: u64,
    /// frame length including its 8-byte header
    pub frame_len: u32,
    /// the leaf hash (Merkle level 0)
    pub leaf_hash: Hash,
    /// the leaf's recorded_at
    pub recorded_at: i64,
}

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn decode<T: Decode<()>>(tree: &'static str, bytes: &[u8]) -> Result<T, IndexError> {
    bincode::decode_from_slice(bytes, cfg())
        .map(|(v, _)| v)
        .map_err(|e| IndexError::Decode { tree, reason: e.to_string() })
}

/// Maps an I/O error on an index file to `IndexError::Io` naming it.
fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_owned(), source }
}

fn be_u64(tree: &'static str, b: &[u8]) -> Result<u64, IndexError> {
    let arr: [u8; 8] =
        b.try_into().map_err(|_| IndexError::Decode { tree, reason: format!("{} bytes, expected 8", b.len()) })?;
    Ok(u64::from_be_bytes(arr))
}

/// Opens sled, waiting up to 2 s for its file lock: a just-dropped index
/// of the same directory releases it only when sled's flusher thread ends.
fn open_db(path: &Path) -> Result<sled::Db, IndexError> {
    let mut tries = 0;
    loop {
        let r = sled::Config::new().path(path).cache_capacity(SLED_CACHE_BYTES).flush_every_ms(Some(1000)).open();
        match r {
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return Ok(r?),
        }
    }
}

/// The index database.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    flat: Arc<flat::FlatStore>,
    flat_start: Arc<AtomicU64>,
    /// entries whose postings are in sled or the tail (sled's own mark, `indexed_through`, moves only when the tail is written out)
    postings_through: Arc<AtomicU64>,
    /// sled's `indexed_through` as last read or written
    sled_mark: Arc<AtomicU64>,
    tail: Arc<RwLock<tail::Tail>>,
    meta: sled::Tree,
    requests: Arc<requests::RequestIndex>,
    category: sled::Tree,
    subject: sled::Tree,
    actor: sled::Tree,
    checkpoint: sled::Tree,
    artifact: sled::Tree,
}

impl Secondary {
    fn slot(self) -> usize {
        match self {
            Secondary::Category => 0,
            Secondary::Subject => 1,
            Secondary::Actor => 2,
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

impl Index {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let db = open_db(&path.join("db"))?;
        let (requests, requests_through) = requests::RequestIndex::open(path)?;
        let t = |n: &str| db.open_tree(n);
        let index = Self {
            flat: Arc::new(flat::FlatStore::open(path)?),
            flat_start: Arc::default(),
            postings_through: Arc::default(),
            sled_mark: Arc::default(),
            tail: Arc::default(),
            meta: t("meta")?,
            requests: Arc::new(requests),
            category: t("category")?,
            subject: t("subject")?,
            actor: t("actor")?,
            checkpoint: t("checkpoint")?,
            artifact: t("artifact")?,
            db,
        };
        index.check_layout()?;
        // The flat files and sled are flushed independently: the flat files
        // keep what they hold completely; catch-up redoes the rest.
        let sled_through = index.sled_through()?;
        let kept = index.flat.reconcile(sled_through)?;
        // The request tables are durable through their own mark (synced about once a second).
        index.flat_start.store(kept.min(requests_through), Ordering::SeqCst);
        index.postings_through.store(sled_through, Ordering::SeqCst);
        index.sled_mark.store(sled_through, Ordering::SeqCst);
        Ok(index)
    }

    /// Refuses (as damage, so it is rebuilt) an index of another layout;
    /// stamps a new one.
    fn check_layout(&self) -> Result<(), IndexError> {
        match self.meta.get(FORMAT_KEY)? {
            Some(v) => match be_u64("meta", &v)? {
                FORMAT => Ok(()),
                found => Err(IndexError::Layout { found }),
            },
            None if self.sled_through()? > 0 => Err(IndexError::Layout { found: 1 }),
            None => {
                self.meta.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
                Ok(())
            }
        }
    }

    /// Adds a batch's request ids to the request tables (fdatasynced).
    fn apply_requests(&self, records: &[(u64, u64)], through: Option<u64>) -> Result<(), IndexError> {
        let through = through.or_else(|| records.last().map(|r| r.1 + 1)).unwrap_or(0);
        self.requests.insert(records, through)
    }

    /// Adds a batch's postings to the tail (FORMAT.md §10.2) and writes
    /// the full lists once `tail::READY_VALUES` values hold one (`all`:
    /// every held seq, and then the tail is empty). In a replayed batch, a
    /// value the tail does not know first looks up its last seq in sled, so
    /// nothing is written twice. Returns whether the tail is empty.
    fn apply_postings(
        &self,
        postings: &crate::FastMap<tail::Key, Vec<u64>>,
        replayed: bool,
        all: bool,
    ) -> Result<bool, IndexError> {
        let mut written = HashMap::new();
        if replayed {
            let tail = sync::read(&self.tail);
            for key in postings.keys().filter(|k| !tail.knows(k)) {
                let (tree, name) = self.tree(key.0);
                let last = postings::scan(tree, name, &key.1, (0, u64::MAX), true, 1)?.first().copied();
                written.insert(key, last);
            }
        }
        let ready = {
            let mut tail = sync::write(&self.tail);
            for (key, seqs) in postings {
                tail.add(key, seqs, written.get(key).copied().flatten());
            }
            if !all && tail.full_values() < tail::READY_VALUES {
                return Ok(tail.is_empty());
            }
            tail.ready(all)
        };
        // Written before they leave the tail: a reader looks at the tail first, then sled.
        let mut lists: [Vec<(Vec<u8>, Vec<u8>)>; 3] = Default::default();
        for ((s, value), seqs) in &ready {
            let last = *seqs.last().expect("lists are not empty");
            lists[s.slot()].push((postings::key(value, last), postings::encode(seqs)));
        }
        let [c, sj, a] = lists;
        apply_writes(&self.category, c)?;
        apply_writes(&self.subject, sj)?;
        apply_writes(&self.actor, a)?;
        let mut tail = sync::write(&self.tail);
        tail.written(&ready);
        Ok(tail.is_empty())
    }

    /// Applies a batch; `indexed_through` moves only after every tree.
    pub fn apply(&self, b: IndexBatch) -> Result<(), IndexError> {
        if let Some((first, bytes)) = &b.positions {
            self.flat.write_positions(*first, bytes)?;
        }
        for (level, first, bytes) in &b.nodes {
            self.flat.write_nodes(*level, *first, bytes)?;
        }
        self.apply_requests(&b.requests, b.through)?;
        if let Some(t) = b.through {
            self.flat_start.fetch_max(t, Ordering::SeqCst);
            self.postings_through.fetch_max(t, Ordering::SeqCst);
        }
        let due =
            self.postings_through.load(Ordering::SeqCst) >= self.sled_mark.load(Ordering::SeqCst) + tail::FLUSH_ENTRIES;
        let tail_empty = self.apply_postings(&b.postings, b.replayed, due)?;
        let checkpoints = b.checkpoints.iter().map(|(size, note)| (size.to_be_bytes(), note.as_bytes())).collect();
        apply_writes(&self.checkpoint, checkpoints)?;
        for (b3, row) in b.artifacts {
            let value = bincode::encode_to_vec(&row, cfg()).expect("encodable");
            // The first registration wins: later references keep its row.
            let _ = self.artifact.compare_and_swap(b3, None as Option<&[u8]>, Some(value))?;
        }
        if tail_empty {
            self.mark_sled_through()?;
        }
        Ok(())
    }

    /// Moves sled's `indexed_through` to every entry applied (the tail is
    /// empty: sled holds their postings).
    fn mark_sled_through(&self) -> Result<(), IndexError> {
        let t = self.postings_through.load(Ordering::SeqCst);
        if t > self.sled_mark.load(Ordering::SeqCst) {
            self.meta.insert(THROUGH_KEY, &t.to_be_bytes())?;
            self.sled_mark.store(t, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Writes the postings tail out, then asks sled to write its buffers
    /// (not an fsync guarantee; sled#1452).
    pub fn flush(&self) -> Result<(), IndexError> {
        if self.apply_postings(&crate::FastMap::default(), false, true)? {
            self.mark_sled_through()?;
        }
        self.requests.sync()?;
        self.db.flush()?;
        Ok(())
    }

    /// Number of entries indexed in every part (flat files, sled and the
    /// postings tail).
    pub fn indexed_through(&self) -> Result<u64, IndexError> {
        Ok(self.postings_through.load(Ordering::SeqCst).min(self.flat_start.load(Ordering::SeqCst)))
    }

    /// Number of entries sled's trees hold (durably, as far as sled is).
    pub fn sled_through(&self) -> Result<u64, IndexError> {
        self.meta.get(THROUGH_KEY)?.map_or(Ok(0), |v| be_u64("meta", &v))
    }

    /// The position of `seq`.
    pub fn position(&self, seq: u64) -> Result<Option<Position>, IndexError> {
        self.flat.position(seq)
    }

    /// The seqs that may hold a request id whose `request_hash` is `h`, ascending;
    /// the caller confirms each against the entry's leaf.
    pub fn request_candidates(&self, h: u64) -> Result<Vec<u64>, IndexError> {
        self.requests.lookup(h)
    }

    fn tree(&self, s: Secondary) -> (&sled::Tree, &'static str) {
        match s {
            Secondary::Category => (&self.category, "category"),
            Secondary::Subject => (&self.subject, "subject"),
            Secondary::Actor => (&self.actor, "actor"),
        }
    }

    /// Seqs with `value` in a secondary index within `[from, to)`, ascending
    /// or descending, at most `limit`.
    pub fn scan(
        &self,
        s: Secondary,
        value: &str,
        from: u64,
        to: u64,
        desc: bool,
        limit: usize,
    ) -> Result<Vec<u64>, IndexError> {
        // The tail first, then sled: a list leaves the tail only after it is in sled.
        let held = sync::read(&self.tail).seqs(&(s, value.to_owned()));
        let in_sled = to.min(held.first().copied().unwrap_or(u64::MAX));
        let held = held.into_iter().filter(|x| (from..to).contains(x));
        let (tree, name) = self.tree(s);
        if desc {
            let mut out: Vec<u64> = held.rev().take(limit).collect();
            let more = postings::scan(tree, name, value, (from, in_sled), true, limit - out.len())?;
            out.extend(more);
            return Ok(out);
        }
        let mut out = postings::scan(tree, name, value, (from, in_sled), false, limit)?;
        let room = limit - out.len();
        out.extend(held.take(room));
        Ok(out)
    }

    /// The last seq below `before` with this subject.
    #[cfg(test)]
    pub fn last_with_subject(&self, subject: &str, before: u64) -> Result<Option<u64>, IndexError> {
        Ok(self.scan(Secondary::Subject, subject, 0, before, true, 1)?.first().copied())
    }

    /// History checkpoints with size in `[from, to]`, ascending.
    pub fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.checkpoint.range(from.to_be_bytes()..=to.to_be_bytes()) {
            let (k, v) = kv?;
            out.push((be_u64("checkpoint", &k)?, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }

    /// The artifact row for a BLAKE3 hash.
    pub fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, IndexError> {
        self.artifact.get(blake3)?.map(|v| decode("artifact", &v)).transpose()
    }

    /// Every artifact row.
    pub fn artifacts(&self) -> impl Iterator<Item = Result<(Hash, ArtifactRow), IndexError>> + '_ {
        self.artifact.iter().map(|kv| {
            let (k, v) = kv?;
            let b3 = crate::hash::from_slice(&k)
                .ok_or(IndexError::Decode { tree: "artifact", reason: "key is not 32 bytes".into() })?;
            Ok((b3, decode("artifact", &v)?))
        })
    }
}

/// Merkle nodes are stored only at levels that are multiples of this
/// (FORMAT.md §10.1); a node in between is hashed up from the `2^span`
/// nodes below it, which lie side by side (one `pread`). So the siblings of
/// four levels of a proof come from one place in one file: a proof at 10M
/// entries touches six places instead of 24, and only two of them in large
/// files (a cold page is a disk read).
pub(crate) const STORED_EVERY: u8 = 4;

impl Index {
    /// The perfect-subtree hash at (level, index), level 0 being the leaf
    /// hash; `None` when the index does not hold it.
    pub fn hash_at(&self, level: u8, index: u64) -> Option<Hash> {
        // A stored level is its own "below": one hash.
        let span = level % STORED_EVERY;
        let below = self.flat.hashes(level - span, index << span, 1 << span).ok().flatten();
        below.map(fold)
    }
}

impl NodeSource for Index {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.hash_at(level, index).ok_or(ProofError::MissingNode { level, index })
    }
}

/// The root of a perfect subtree from its `2^k` nodes at one level.
fn fold(mut hashes: Vec<Hash>) -> Hash {
    while hashes.len() > 1 {
        hashes = hashes.chunks_exact(2).map(|p| crate::hash::node_hash(&p[0], &p[1])).collect();
    }
    hashes[0]
}

/// Writes `writes` to `tree` as one atomic sled batch, and nothing when
/// there are none: sled 0.34.7's `apply_batch` rolls its log buffer even
/// for an empty batch (`pin_log`), a write and `sync_file_range` on sled's
/// I/O threads per call. At one batch per append (1,000 appends/s offered)
/// the four empty batches of each index application made sled's threads
/// ~40 % of ledgerd's CPU samples (docs/BENCHMARKS-HISTORY.md, fifth run).
fn apply_writes(tree: &sled::Tree, writes: Vec<(impl AsRef<[u8]>, impl AsRef<[u8]>)>) -> Result<(), IndexError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for (k, v) in writes {
        batch.insert(k.as_ref(), v.as_ref());
    }
    Ok(tree.apply_batch(batch)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seqs: std::ops::Range<u64>) -> IndexBatch {
        let mut b = IndexBatch::default();
        for seq in seqs {
            let leaf = crate::leaf::Leaf {
                seq,
                category: "alert_ack".into(),
                subject: "INC-1".into(),
                actor: "svc".into(),
                request_id: format!("req-{seq}"),
                ..Default::default()
            };
            let pos =
                Position { segment: 0, offset: 16 + seq * 100, frame_len: 100, leaf_hash: [1; 32], recorded_at: 0 };
            b.add_entry(IndexedEntry { seq, pos, leaf: &leaf, request_hash: None, flat_only: false });
        }
        b
    }

    /// Proofs from the stored index (nodes between every fourth level
    /// hashed up from below) equal the ones from an in-memory tree, for
    /// every leaf of several sizes up to 2^10 + 37 leaves.
    #[test]
    fn proofs_from_the_stored_index_match_an_in_memory_tree() {
        use crate::merkle::{CompactRange, consistency_proof, inclusion_proof};
        struct Mem(Vec<Vec<Hash>>);
        impl NodeSource for Mem {
            fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
                self.0
                    .get(level as usize)
                    .and_then(|l| l.get(index as usize))
                    .copied()
                    .ok_or(ProofError::MissingNode { level, index })
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        let (mut range, mut mem) = (CompactRange::new(), Mem(vec![Vec::new()]));
        let n = 1024 + 37;
        for chunk in (0..n).collect::<Vec<u64>>().chunks(100) {
            let mut b = IndexBatch::default();
            for &seq in chunk {
                let leaf = crate::leaf::Leaf { seq, request_id: format!("req-{seq}"), ..Default::default() };
                let h = crate::hash::leaf_hash(&seq.to_le_bytes());
                let pos = Position { segment: 0, offset: 16 + seq, frame_len: 1, leaf_hash: h, recorded_at: 0 };
                b.add_entry(IndexedEntry { seq, pos, leaf: &leaf, request_hash: None, flat_only: false });
                range.push(h, |level, i, node| {
                    if mem.0.len() <= level as usize {
                        mem.0.resize_with(level as usize + 1, Vec::new);
                    }
                    assert_eq!(mem.0[level as usize].len() as u64, i);
                    mem.0[level as usize].push(*node);
                    b.add_node(level, i, node);
                });
            }
            index.apply(b).unwrap();
        }
        assert!(dir.path().join("merkle-04.dat").exists() && dir.path().join("merkle-08.dat").exists());
        assert!(!dir.path().join("merkle-01.dat").exists(), "only every fourth level is stored");
        // A level file of an older build is removed on open.
        index.flush().unwrap();
        drop(index);
        std::fs::write(dir.path().join("merkle-02.dat"), [7u8; 64]).unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert!(!dir.path().join("merkle-02.dat").exists());
        for size in [1, 2, 15, 16, 17, 255, 256, 257, 1000, n] {
            for i in 0..size {
                assert_eq!(inclusion_proof(&index, i, size).unwrap(), inclusion_proof(&mem, i, size).unwrap());
            }
            for old in [1, 3, 16, 100, 256] {
                if old <= size {
                    assert_eq!(
                        consistency_proof(&index, old, size).unwrap(),
                        consistency_proof(&mem, old, size).unwrap()
                    );
                }
            }
        }
    }

    /// A batch applied again (the catch-up after a crash between sled's
    /// trees and `indexed_through`) adds no postings or request records.
    #[test]
    fn a_replayed_batch_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        index.apply(batch(0..5)).unwrap();
        index.apply(batch(5..9)).unwrap();
        index.apply(batch(5..9)).unwrap();
        let subject = index.scan(Secondary::Subject, "INC-1", 0, 100, false, 100).unwrap();
        assert_eq!(subject, (0..9).collect::<Vec<u64>>());
        let category = index.scan(Secondary::Category, "alert_ack", 0, 100, true, 100).unwrap();
        assert_eq!(category, (0..9).rev().collect::<Vec<u64>>());
        for seq in 0..9 {
            assert_eq!(index.request_candidates(crate::store::request_hash(&format!("req-{seq}"))).unwrap(), vec![seq]);
        }
        assert!(index.request_candidates(crate::store::request_hash("req-9")).unwrap().is_empty());
    }

    /// Postings written out (a full flush, then a reopen) are not added
    /// again by a replayed batch that overlaps them, and the tail and sled
    /// read as one list.
    #[test]
    fn a_replayed_batch_after_a_flush_adds_no_written_postings() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = Index::open(dir.path()).unwrap();
            index.apply(batch(0..300)).unwrap();
            index.flush().unwrap();
            assert_eq!(index.sled_through().unwrap(), 300);
        }
        let index = Index::open(dir.path()).unwrap();
        index.apply(batch(250..400).replayed()).unwrap();
        assert!(!index.tail.read().unwrap().is_empty(), "seqs 300..400 wait in the tail");
        assert_eq!(index.sled_through().unwrap(), 300, "sled's mark waits for the tail");
        assert_eq!(index.indexed_through().unwrap(), 400);
        let all = index.scan(Secondary::Subject, "INC-1", 0, 1000, false, 1000).unwrap();
        assert_eq!(all, (0..400).collect::<Vec<u64>>());
        let all = index.scan(Secondary::Category, "alert_ack", 0, 1000, true, 1000).unwrap();
        assert_eq!(all, (0..400).rev().collect::<Vec<u64>>());
        let newest = index.scan(Secondary::Subject, "INC-1", 100, 350, true, 60).unwrap();
        assert_eq!(newest, (290..350).rev().collect::<Vec<u64>>());
        assert_eq!(index.last_with_subject("INC-1", 299).unwrap(), Some(298));
    }

    /// The whole tail is written every `FLUSH_ENTRIES` entries, so sled's
    /// mark (and the catch-up after a crash) never lags further.
    #[test]
    fn the_tail_is_written_out_every_flush_entries() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        index.apply(batch(0..1000)).unwrap();
        assert_eq!(index.sled_through().unwrap(), 0);
        let end = tail::FLUSH_ENTRIES + 10;
        index.apply(batch(1000..end)).unwrap();
        assert_eq!(index.sled_through().unwrap(), end);
        assert!(index.tail.read().unwrap().is_empty());
        let newest = index.scan(Secondary::Subject, "INC-1", 0, end, true, 3).unwrap();
        assert_eq!(newest, vec![end - 1, end - 2, end - 3]);
    }

    /// An application with nothing for sled (no postings list ready, no
    /// checkpoint) leaves sled's log alone: sled rolls its log buffer on
    /// every `apply_batch`, even an empty one (see `apply_writes`).
    #[test]
    fn an_application_with_nothing_for_sled_writes_nothing_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        index.apply(batch(0..130)).unwrap();
        index.flush().unwrap();
        let before = index.db.size_on_disk().unwrap();
        // seqs 130..250 of one value: its second list is not ready until 256
        for seq in 130..250 {
            index.apply(batch(seq..seq + 1)).unwrap();
        }
        index.db.flush().unwrap();
        assert_eq!(index.db.size_on_disk().unwrap(), before);
    }

    /// Full postings lists wait in the tail until `READY_VALUES` values
    /// hold one, then go to sled together; queries see them all along.
    #[test]
    fn full_lists_are_written_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        // subjects S-0.. with 128 seqs each; the category and the actor are full too
        let subjects = (tail::READY_VALUES - 3) as u64;
        let apply = |from: u64, n: u64, subject: &dyn Fn(u64) -> String| {
            let mut b = batch(from..from + n);
            b.postings.retain(|k, _| k.0 != Secondary::Subject);
            for seq in from..from + n {
                b.postings.entry((Secondary::Subject, subject(seq))).or_default().push(seq);
            }
            index.apply(b).unwrap();
        };
        apply(0, 128 * subjects, &|seq| format!("S-{}", seq % subjects));
        assert_eq!(index.subject.len(), 0, "{} values hold a full list: not yet", subjects + 2);
        let held = index.scan(Secondary::Subject, "S-0", 0, u64::MAX, true, 200).unwrap();
        assert_eq!(held.len(), 128, "the tail answers queries");
        apply(128 * subjects, 128, &|_| "S-last".into());
        assert_eq!(index.subject.len() as u64, subjects + 1, "the group went to sled");
        assert_eq!(index.scan(Secondary::Subject, "S-0", 0, u64::MAX, true, 200).unwrap(), held);
    }
}
