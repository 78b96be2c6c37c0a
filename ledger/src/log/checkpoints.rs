//! Which signed checkpoint a read answers with: a proof "in the latest
//! checkpoint" uses the newest one the store already serves (it never waits
//! for the store), a checkpoint by size is the latest or a kept history one.
//!
//! Owns: those choices, so every server answers them alike. Must not: sign
//! anything (the writer does) or wait for the store when a readable
//! checkpoint will do.

use super::{LedgerError, LedgerReader, Receipt};
use crate::hash::Hash;

/// An inclusion proof as a client asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Inclusion {
    /// in a signed checkpoint at hand (the size asked for, or the latest)
    Signed(Receipt),
    /// at a size whose checkpoint is not at hand: the bare proof
    Unsigned {
        /// the proof's hashes
        proof: Vec<Hash>,
        /// the tree size it leads to
        size: u64,
        /// the entry's leaf hash
        leaf_hash: Hash,
    },
}

impl LedgerReader {
    /// An inclusion proof of `seq` in the tree of `tree_size` (0: the
    /// latest). Signed when a checkpoint of that size is at hand: for 0 the
    /// readable one when it covers `seq` (no wait), else the latest; for a
    /// size, the readable or the latest checkpoint when it has that size.
    pub fn inclusion(&self, seq: u64, tree_size: u64) -> Result<Inclusion, LedgerError> {
        if tree_size == 0 {
            return Ok(Inclusion::Signed(self.receipt(seq)?));
        }
        let at_hand =
            [self.readable_checkpoint(), self.latest_checkpoint()].into_iter().find(|c| c.checkpoint.size == tree_size);
        if let Some(cp) = at_hand {
            return Ok(Inclusion::Signed(self.receipt_at(seq, &cp)?));
        }
        let (proof, size) = self.prove_inclusion(seq, Some(tree_size))?;
        Ok(Inclusion::Unsigned { proof, size, leaf_hash: self.leaf_hash(seq)? })
    }

    /// The signed note of the checkpoint of `size` entries (0: the latest):
    /// the latest, or a kept history checkpoint; `None` when none of that
    /// size was kept.
    pub fn checkpoint_note(&self, size: u64) -> Result<Option<String>, LedgerError> {
        let latest = self.latest_checkpoint();
        if size == 0 || size == latest.checkpoint.size {
            return Ok(Some(latest.note.clone()));
        }
        Ok(self.checkpoint_history(size, size)?.into_iter().next().map(|(_, note)| note))
    }
}
