//! The memory store's derived data: what a file store keeps in its index
//! (leaf metas, Merkle nodes, postings, request hashes, history
//! checkpoints, artifact rows), rebuilt from the journal at every open and
//! extended as batches are published.

use std::collections::HashMap;

use bytes::Bytes;

use crate::hash::Hash;
use crate::journal::{SEGMENT_HEADER_LEN, parse_frame, segment_header};
use crate::leaf::Leaf;
use crate::merkle::CompactRange;
use crate::record::{self, Checked};
use crate::store::{ArtifactRow, LeafMeta, Secondary, StoreError, WriteBatch};

/// Derived data of the published entries.
#[derive(Default)]
pub(super) struct Derived {
    pub(super) metas: Vec<LeafMeta>,
    /// perfect-subtree hashes per level (level 0: leaf hashes)
    pub(super) nodes: Vec<Vec<Hash>>,
    pub(super) postings: HashMap<(Secondary, String), Vec<u64>>,
    pub(super) requests: HashMap<u64, Vec<u64>>,
    /// history checkpoints, ascending by size
    pub(super) checkpoints: Vec<(u64, String)>,
    pub(super) artifacts: HashMap<Hash, ArtifactRow>,
}

impl Derived {
    /// Rebuilds everything from a durable journal; returns it with each
    /// seq's frame offset.
    pub(super) fn scan(journal: &[u8]) -> Result<(Self, Vec<u64>), StoreError> {
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
    pub(super) fn add_entry(&mut self, seq: u64, leaf: &Leaf, hash: Hash, request_hash: Option<u64>) {
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
    pub(super) fn add_node(&mut self, level: u8, index: u64, hash: &Hash) {
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
    pub(super) fn apply(&mut self, b: &WriteBatch) {
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
