//! Receipts as C2SP `tlog-proof@v1` texts (FORMAT.md §8): writing, parsing
//! and offline verification.
//!
//! Owns: the proof text format. Must not: fetch anything; the caller gives
//! the trusted keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::hash::{Hash, leaf_hash};
use crate::leaf::{Leaf, decode_leaf};
use crate::merkle::verify_inclusion;
use crate::note::{Checkpoint, NoteVerifier};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Why a proof text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The text does not follow the format.
    #[error("malformed tlog-proof: {0}")]
    Malformed(String),
    /// The checkpoint did not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::note::NoteError),
    /// The inclusion proof did not verify.
    #[error("inclusion proof: {0}")]
    Proof(#[from] crate::merkle::ProofError),
    /// The leaf in `extra` contradicts the proof.
    #[error("leaf: {0}")]
    Leaf(String),
}

/// A parsed `tlog-proof@v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// the `extra` data (our leaf bytes)
    pub extra: Option<Vec<u8>>,
    /// the entry's index (seq)
    pub index: u64,
    /// inclusion proof hashes
    pub proof: Vec<Hash>,
    /// the signed checkpoint note, verbatim
    pub checkpoint: String,
}

/// What a verified proof establishes.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedProof {
    /// the checkpoint the entry is included in
    pub checkpoint: Checkpoint,
    /// the leaf hash proven included
    pub leaf_hash: Hash,
    /// the decoded leaf, when `extra` carried it
    pub leaf: Option<Leaf>,
}

impl TlogProof {
    /// Writes the text.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(256 + self.proof.len() * 45 + self.checkpoint.len());
        s.push_str(HEADER);
        s.push('\n');
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&B64.encode(extra));
            s.push('\n');
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses the text.
    pub fn parse(text: &str) -> Result<Self, ReceiptError> {
        let bad = |m: &str| ReceiptError::Malformed(m.to_owned());
        let (head, checkpoint) = text.split_once("\n\n").ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(e).map_err(|_| bad("extra is not base64"))?);
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let idx = line.strip_prefix("index ").ok_or_else(|| bad("expected 'index N'"))?;
        if idx.is_empty() || (idx.len() > 1 && idx.starts_with('0')) || !idx.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("index is not a decimal without leading zeros"));
        }
        let index = idx.parse().map_err(|_| bad("index overflows"))?;
        let mut proof = Vec::new();
        for l in lines {
            let h = B64.decode(l).map_err(|_| bad("proof line is not base64"))?;
            proof.push(h.try_into().map_err(|_| bad("proof hash is not 32 bytes"))?);
        }
        if proof.len() > 64 {
            return Err(bad("more than 64 proof hashes"));
        }
        Ok(Self { extra, index, proof, checkpoint: checkpoint.to_owned() })
    }

    /// Verifies the proof against trusted log keys. Without `extra`, the
    /// caller must give the leaf hash.
    pub fn verify(&self, keys: &[NoteVerifier], leaf: Option<&Hash>) -> Result<VerifiedProof, ReceiptError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, keys)?;
        let (hash, decoded) = match (&self.extra, leaf) {
            (Some(extra), given) => {
                let h = leaf_hash(extra);
                if given.is_some_and(|g| g != &h) {
                    return Err(ReceiptError::Leaf("the leaf in 'extra' does not hash to the given leaf hash".into()));
                }
                let l = decode_leaf(extra).map_err(|e| ReceiptError::Leaf(e.to_string()))?;
                if l.seq != self.index {
                    return Err(ReceiptError::Leaf(format!("leaf seq {} differs from index {}", l.seq, self.index)));
                }
                (h, Some(l))
            }
            (None, Some(h)) => (*h, None),
            (None, None) => {
                return Err(ReceiptError::Malformed("no 'extra' leaf and no leaf hash given".into()));
            }
        };
        verify_inclusion(self.index, checkpoint.size, &hash, &self.proof, &checkpoint.root)?;
        Ok(VerifiedProof { checkpoint, leaf_hash: hash, leaf: decoded })
    }
}
