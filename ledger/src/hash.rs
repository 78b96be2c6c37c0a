//! Hash primitives and the domain-separation labels of FORMAT.md §2.
//!
//! Owns: every hash input layout. Must not: know about storage or keys.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The prefix of a Merkle leaf hash input (RFC 6962).
pub const LEAF_PREFIX: u8 = 0x00;
/// The prefix of an interior Merkle node hash input (RFC 6962).
pub const NODE_PREFIX: u8 = 0x01;
/// The label before the leaf hash in a record HMAC input (FORMAT.md §5).
pub const RECORD_HMAC_LABEL: &[u8] = b"ledger/v1/record-hmac\n";
/// The label before the key in an HMAC key id input (FORMAT.md §5).
pub const HMAC_KEY_ID_LABEL: &[u8] = b"ledger/v1/hmac-key-id\n";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// The leaf hash `H(0x00 ‖ leaf bytes)` (FORMAT.md §3.3).
pub fn leaf_hash(leaf_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(leaf_bytes);
    h.finalize().into()
}

/// An interior node `H(0x01 ‖ left ‖ right)` (FORMAT.md §4).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `H("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Lower-case hex of a hash.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// Parses a 32-byte hash from a slice; `None` when the length is wrong.
pub fn from_slice(b: &[u8]) -> Option<Hash> {
    b.try_into().ok()
}
