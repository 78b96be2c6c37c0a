//! The RFC 6962 Merkle tree (FORMAT.md §4): proof generation over any store
//! of perfect-subtree hashes, proof verification, and the compact range used
//! to append.
//!
//! Owns: tree arithmetic. Must not: do I/O itself (stores implement
//! [`NodeSource`]).

use crate::hash::{Hash, empty_root, node_hash};

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index is not below the tree size.
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// the leaf index asked for
        index: u64,
        /// the tree size
        size: u64,
    },
    /// The sizes of a consistency proof are not ordered.
    #[error("old size {old} is larger than new size {new}")]
    SizesOutOfOrder {
        /// the smaller tree
        old: u64,
        /// the larger tree
        new: u64,
    },
    /// The tree size is larger than what is stored.
    #[error("tree size {size} is larger than the log ({available} entries)")]
    SizeBeyondLog {
        /// the size asked for
        size: u64,
        /// entries stored
        available: u64,
    },
    /// A consistency proof from the empty tree proves nothing.
    #[error("a consistency proof from an empty tree is meaningless")]
    EmptyOldTree,
    /// The proof has the wrong number of hashes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The recomputed root is not the expected one.
    #[error("root mismatch: the proof does not lead to the expected root")]
    RootMismatch,
    /// A node the proof needs is missing from the store.
    #[error("merkle node level {level} index {index} is missing from the store")]
    MissingNode {
        /// node level (0 = leaf)
        level: u8,
        /// node index at that level
        index: u64,
    },
}

/// A store of perfect-subtree hashes: `node(level, index)` is the root of
/// leaves `[index << level, (index + 1) << level)`.
pub trait NodeSource {
    /// The hash of one complete subtree.
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError>;
}

/// A node source that remembers every node it served: proofs of many
/// leaves in one tree share their upper levels and the tree's right edge,
/// which are then read (and, for levels a store computes, hashed) once.
/// Memory grows with the nodes served; use one per batch of proofs.
pub struct MemoNodes<S> {
    src: S,
    seen: std::cell::RefCell<std::collections::HashMap<(u8, u64), Hash>>,
}

impl<S: NodeSource> MemoNodes<S> {
    /// Remembers the nodes of `src`.
    pub fn new(src: S) -> Self {
        Self { src, seen: Default::default() }
    }
}

impl<S: NodeSource> NodeSource for MemoNodes<S> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        if let Some(h) = self.seen.borrow().get(&(level, index)) {
            return Ok(*h);
        }
        let h = self.src.node(level, index)?;
        self.seen.borrow_mut().insert((level, index), h);
        Ok(h)
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start..end))` for a range that arises in the RFC 6962 recursion.
pub fn range_root<S: NodeSource + ?Sized>(src: &S, start: u64, end: u64) -> Result<Hash, ProofError> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros() as u8, start / n);
    }
    let k = split_point(n);
    let left = range_root(src, start, start + k)?;
    let right = range_root(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// RFC 6962 `PATH(index, D[0..size))`, leaf sibling first.
pub fn inclusion_proof<S: NodeSource + ?Sized>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::with_capacity(64 - size.leading_zeros() as usize);
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: NodeSource + ?Sized>(src: &S, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), ProofError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < start + k {
        path(src, m, start, start + k, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        path(src, m, start + k, end, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

/// RFC 6962 `PROOF(old, D[0..new))`; empty when `old` is 0 or equals `new`.
pub fn consistency_proof<S: NodeSource + ?Sized>(src: &S, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    subproof(src, old, 0, new, true, &mut out)?;
    Ok(out)
}

fn subproof<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(range_root(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, complete, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
/// As in transparency-dev `merkle`, an old size of 0 is an error: every tree
/// extends the empty one, so such a proof would prove nothing.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old: old_size, new: new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*path[0], *path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The compact range `[0, size)`: the roots of the perfect subtrees that
/// make up the tree, largest first. O(log n) memory; appends in O(1)
/// amortised hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the range of `size` leaves from a store.
    pub fn from_source<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Self, ProofError> {
        let mut nodes = Vec::new();
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                nodes.push(src.node(level, (size >> level) - 1)?);
            }
        }
        Ok(Self { size, nodes })
    }

    /// A range from its parts (size and the subtree roots, largest first);
    /// `None` when the number of roots does not match the size.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// The subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `on_node(level, index, hash)` sees every perfect
    /// subtree this completes, the leaf itself (level 0) first.
    pub fn push(&mut self, leaf: Hash, mut on_node: impl FnMut(u8, u64, &Hash)) {
        let index = self.size;
        on_node(0, index, &leaf);
        let mut h = leaf;
        let mut level = 0u8;
        while self.size >> level & 1 == 1 {
            let left = self.nodes.pop().expect("a set bit has a node");
            h = node_hash(&left, &h);
            level += 1;
            on_node(level, index >> level, &h);
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The root of the tree.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |r, h| node_hash(h, &r))
    }

    /// The perfect subtree `(level, index)` if it is one of this range's
    /// nodes.
    pub fn piece(&self, level: u8, index: u64) -> Option<Hash> {
        if level >= 64 || self.size >> level & 1 == 0 || (self.size >> level) - 1 != index {
            return None;
        }
        let above = self.size.checked_shr(u32::from(level) + 1).unwrap_or(0);
        self.nodes.get(above.count_ones() as usize).copied()
    }
}
