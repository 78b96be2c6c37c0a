//! The memory store's artifact blobs: the disk's map, written there only
//! when a blob is finished.

use std::io::Read;

use super::MemoryDisk;
use crate::artifacts::{BlobHasher, StoredBlob};
use crate::hash::Hash;
use crate::store::{BlobStore, BlobWriter, StoreError, StoreErrorKind};
use crate::sync::lock;

/// Artifact blobs in the disk's map.
pub(super) struct MemoryBlobs {
    pub(super) disk: MemoryDisk,
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
