//! One batch of index writes (FORMAT.md §10), built by the writer (or by
//! catch-up) and applied by `Index::apply`; consecutive batches merge.
//!
//! Owns: what a batch holds and how two merge. Must not: touch the disk.

use super::{ArtifactRow, Position, Secondary, flat, requests};
use crate::hash::Hash;

/// The writes of one batch, applied tree by tree, `indexed_through` last.
#[derive(Default)]
pub struct IndexBatch {
    pub(super) positions: Option<(u64, Vec<u8>)>,
    pub(super) requests: Vec<(u64, u64)>,
    pub(super) postings: crate::FastMap<(Secondary, String), Vec<u64>>,
    pub(super) nodes: Vec<(u8, u64, Vec<u8>)>,
    pub(super) checkpoints: Vec<(u64, String)>,
    pub(super) artifacts: Vec<(Hash, ArtifactRow)>,
    pub(super) through: Option<u64>,
    /// re-indexes entries a previous process may have indexed (catch-up)
    pub(super) replayed: bool,
}

/// The indexed fields of one entry.
pub struct IndexedEntry<'a> {
    /// seq
    pub seq: u64,
    /// frame position
    pub pos: Position,
    /// leaf
    pub leaf: &'a crate::leaf::Leaf,
    /// the hash of the leaf's request id, when the caller has it already
    pub request_hash: Option<u64>,
    /// only the flat files (positions, nodes, request tables) need it (sled
    /// already holds it: catch-up after the flat files lost writes)
    pub flat_only: bool,
}

impl IndexBatch {
    /// Indexes one entry and marks everything through it as indexed.
    pub fn add_entry(&mut self, e: IndexedEntry<'_>) {
        match &mut self.positions {
            Some((first, bytes)) if *first + bytes.len() as u64 / flat::POSITION_BYTES == e.seq => {
                flat::encode_position(&e.pos, bytes)
            }
            Some(_) => panic!("index batch positions must be contiguous"),
            None => {
                let mut bytes = Vec::with_capacity(64 * 1024);
                flat::encode_position(&e.pos, &mut bytes);
                self.positions = Some((e.seq, bytes));
            }
        }
        self.through = Some(e.seq + 1);
        if !e.leaf.request_id.is_empty() {
            let h = e.request_hash.unwrap_or_else(|| requests::hash(&e.leaf.request_id));
            self.requests.push((h, e.seq));
        }
        if e.flat_only {
            return;
        }
        let mut post = |s: Secondary, v: &str| self.postings.entry((s, v.to_owned())).or_default().push(e.seq);
        post(Secondary::Category, &e.leaf.category);
        post(Secondary::Actor, &e.leaf.actor);
        if !e.leaf.subject.is_empty() {
            post(Secondary::Subject, &e.leaf.subject);
        }
        for a in &e.leaf.artifacts {
            let (Some(b3), Some(sha)) = (crate::hash::from_slice(&a.blake3), crate::hash::from_slice(&a.sha256)) else {
                continue;
            };
            let row = ArtifactRow {
                sha256: sha,
                size: a.size,
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                subject: e.leaf.subject.clone(),
                seq: e.seq,
            };
            self.artifacts.push((b3, row));
        }
    }

    /// Stores a perfect-subtree hash (levels that are positive multiples of
    /// `STORED_EVERY`; level 0 lives in `seq`, the others are not stored).
    pub fn add_node(&mut self, level: u8, index: u64, hash: &Hash) {
        if level == 0 || !level.is_multiple_of(super::STORED_EVERY) {
            return;
        }
        match self.nodes.iter_mut().rev().find(|(l, _, _)| *l == level) {
            Some((_, first, bytes)) if *first + bytes.len() as u64 / 32 == index => bytes.extend_from_slice(hash),
            _ => self.nodes.push((level, index, hash.to_vec())),
        }
    }

    /// Keeps a checkpoint in the history.
    pub fn add_checkpoint(&mut self, size: u64, note: &str) {
        self.checkpoints.push((size, note.to_owned()));
    }

    /// Appends `next`, the batch that follows this one, so both are applied
    /// as one (the index thread merges what queued up while it worked).
    pub fn merge(&mut self, next: IndexBatch) {
        match (&mut self.positions, next.positions) {
            (Some((first, bytes)), Some((next_first, more))) => {
                assert_eq!(*first + bytes.len() as u64 / flat::POSITION_BYTES, next_first, "batches merge in order");
                bytes.extend_from_slice(&more);
            }
            (mine, theirs @ Some(_)) => *mine = theirs,
            (_, None) => {}
        }
        self.requests.extend(next.requests);
        for (key, seqs) in next.postings {
            self.postings.entry(key).or_default().extend(seqs);
        }
        for (level, first, bytes) in next.nodes {
            match self.nodes.iter_mut().rev().find(|(l, _, _)| *l == level) {
                Some((_, f, b)) if *f + b.len() as u64 / 32 == first => b.extend_from_slice(&bytes),
                _ => self.nodes.push((level, first, bytes)),
            }
        }
        self.checkpoints.extend(next.checkpoints);
        self.artifacts.extend(next.artifacts);
        self.through = self.through.max(next.through);
        self.replayed |= next.replayed;
    }

    /// Marks the batch as re-indexing entries that sled may already hold
    /// beyond its `indexed_through` (catch-up on open): each value's last
    /// seq in sled is looked up, so no seq is added twice.
    pub fn replayed(mut self) -> Self {
        self.replayed = true;
        self
    }
}
