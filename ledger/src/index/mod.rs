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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::hash::Hash;
use crate::merkle::{NodeSource, ProofError};

pub use batch::{IndexBatch, IndexedEntry};
pub use requests::hash as request_hash;

const THROUGH_KEY: &[u8] = b"indexed_through";
/// The index layout version (FORMAT.md §10); another one is rebuilt.
const FORMAT_KEY: &[u8] = b"index_format";
const FORMAT: u64 = 3;
/// Most seqs in one postings list (a list grows until then, batch by batch).
const POSTINGS_MAX: usize = 128;
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

/// One row of the artifact index.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct ArtifactRow {
    /// SHA-256 of the content
    #[serde(with = "crate::entry::hex_array")]
    pub sha256: Hash,
    /// content length
    pub size: u64,
    /// file name
    pub name: String,
    /// media type
    pub media_type: String,
    /// subject of the registering entry
    pub subject: String,
    /// seq of the first entry that referenced it
    pub seq: u64,
}

/// Which secondary index a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Secondary {
    /// by category
    Category,
    /// by subject
    Subject,
    /// by actor
    Actor,
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
    flat_start: Arc<std::sync::atomic::AtomicU64>,
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
        let kept = index.flat.reconcile(index.sled_through()?)?;
        // The request tables are durable through their own mark (synced about once a second).
        index.flat_start.store(kept.min(requests_through), std::sync::atomic::Ordering::SeqCst);
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

    /// Adds a batch's postings: each value's seqs extend its last list
    /// while that holds fewer than POSTINGS_MAX (a replayed batch adds
    /// nothing); otherwise they start a new list.
    fn apply_postings(&self, postings: &HashMap<(Secondary, String), Vec<u64>>) -> Result<(), IndexError> {
        let mut lists: [sled::Batch; 3] = Default::default();
        for ((s, value), seqs) in postings {
            let (tree, name) = self.tree(*s);
            let mut prefix = value.as_bytes().to_vec();
            prefix.push(0);
            let mut merged = Vec::new();
            if let Some(kv) = tree.scan_prefix(&prefix).next_back() {
                let (k, v) = kv?;
                let old = postings::decode(name, &v)?;
                let last = old.last().copied().unwrap_or(0);
                if old.len() < POSTINGS_MAX {
                    lists[s.slot()].remove(k);
                    merged = old;
                }
                merged.extend(seqs.iter().filter(|&&x| x > last));
            } else {
                merged.extend_from_slice(seqs);
            }
            if let Some(&last) = merged.last() {
                lists[s.slot()].insert(postings::key(value, last), postings::encode(&merged));
            }
        }
        let [c, sj, a] = lists;
        self.category.apply_batch(c)?;
        self.subject.apply_batch(sj)?;
        self.actor.apply_batch(a)?;
        Ok(())
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
        self.apply_postings(&b.postings)?;
        let mut checkpoints = sled::Batch::default();
        for (size, note) in &b.checkpoints {
            checkpoints.insert(&size.to_be_bytes(), note.as_bytes());
        }
        self.checkpoint.apply_batch(checkpoints)?;
        for (b3, row) in b.artifacts {
            let value = bincode::encode_to_vec(&row, cfg()).expect("encodable");
            // The first registration wins: later references keep its row.
            let _ = self.artifact.compare_and_swap(b3, None as Option<&[u8]>, Some(value))?;
        }
        if let Some(t) = b.through {
            self.flat_start.fetch_max(t, std::sync::atomic::Ordering::SeqCst);
            let sled = self.sled_through()?;
            self.meta.insert(THROUGH_KEY, &t.max(sled).to_be_bytes())?;
        }
        Ok(())
    }

    /// Asks sled to write its buffers (not an fsync guarantee; sled#1452).
    pub fn flush(&self) -> Result<(), IndexError> {
        self.requests.sync()?;
        self.db.flush()?;
        Ok(())
    }

    /// Number of entries indexed in every part (flat files and sled).
    pub fn indexed_through(&self) -> Result<u64, IndexError> {
        Ok(self.sled_through()?.min(self.flat_start.load(std::sync::atomic::Ordering::SeqCst)))
    }

    /// Number of entries sled's trees hold.
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
        let (tree, name) = self.tree(s);
        postings::scan(tree, name, value, (from, to), desc, limit)
    }

    /// The last seq below `before` with this subject.
    pub fn last_with_subject(&self, subject: &str, before: u64) -> Result<Option<u64>, IndexError> {
        Ok(self.scan(Secondary::Subject, subject, 0, before, true, 1)?.first().copied())
    }

    /// A stored perfect-subtree hash.
    pub fn merkle_node(&self, level: u8, index: u64) -> Result<Option<Hash>, IndexError> {
        if level == 0 {
            return Ok(self.position(index)?.map(|p| p.leaf_hash));
        }
        self.flat.node(level, index)
    }

    /// The history checkpoint at `size`, if kept.
    pub fn checkpoint(&self, size: u64) -> Result<Option<String>, IndexError> {
        Ok(self.checkpoint.get(size.to_be_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
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

impl NodeSource for Index {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.merkle_node(level, index).ok().flatten().ok_or(ProofError::MissingNode { level, index })
    }
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
            b.add_entry(IndexedEntry { seq, pos, leaf: &leaf, flat_only: false });
        }
        b
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
            assert_eq!(index.request_candidates(request_hash(&format!("req-{seq}"))).unwrap(), vec![seq]);
        }
        assert!(index.request_candidates(request_hash("req-9")).unwrap().is_empty());
    }
}
