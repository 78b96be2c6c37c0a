//! Artifact content hashing (FORMAT.md §3.2: an artifact is referenced by
//! BLAKE3 and SHA-256 of its bytes). Where blobs are kept is a store's
//! (`crate::store::BlobStore`).
//!
//! Owns: the hashes and size of content as it streams. Must not: store
//! blobs, or register artifacts in the log (the caller appends the entry
//! that references them).

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// Hashes and size of stored content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlob {
    /// BLAKE3-256
    pub blake3: Hash,
    /// SHA-256
    pub sha256: Hash,
    /// bytes
    pub size: u64,
}

/// Hashes content as it streams.
#[derive(Default)]
pub struct BlobHasher {
    b3: blake3::Hasher,
    sha: Sha256,
    size: u64,
}

impl BlobHasher {
    /// Feeds bytes.
    pub fn update(&mut self, b: &[u8]) {
        self.b3.update(b);
        self.sha.update(b);
        self.size += b.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes and size.
    pub fn finish(self) -> StoredBlob {
        StoredBlob { blake3: *self.b3.finalize().as_bytes(), sha256: self.sha.finalize().into(), size: self.size }
    }
}

/// Hashes everything `r` yields.
pub fn hash_reader(r: &mut impl Read) -> std::io::Result<StoredBlob> {
    let mut h = BlobHasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}
