//! Content-addressed artifact blobs: `artifacts/<b3[0..2]>/<blake3 hex>`,
//! written to a temp file, fsynced, renamed; checked against their hash
//! when read (DESIGN "Artifacts").
//!
//! Owns: blob files. Must not: register artifacts in the log (the caller
//! appends the entry that references them).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hash::Hash;
use crate::journal::{JournalError, sync_dir};

/// An artifact failure.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// I/O failed.
    #[error("artifact store: {0}")]
    Io(#[from] JournalError),
    /// No blob with this hash.
    #[error("artifact {0} is not stored")]
    NotFound(String),
    /// The blob on disk does not hash to its name.
    #[error("artifact {blake3} is altered on disk: its content hashes to {actual}")]
    Altered {
        /// expected hash (hex)
        blake3: String,
        /// actual hash (hex)
        actual: String,
    },
    /// The upload is larger than allowed.
    #[error("artifact exceeds {limit} bytes")]
    TooLarge {
        /// the limit
        limit: u64,
    },
}

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

/// The blob directory of one log.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
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

    /// The hashes and size.
    pub fn finish(self) -> StoredBlob {
        StoredBlob { blake3: *self.b3.finalize().as_bytes(), sha256: self.sha.finalize().into(), size: self.size }
    }
}

impl ArtifactStore {
    /// The store rooted at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the blob with this BLAKE3 hash lives.
    pub fn path(&self, blake3: &Hash) -> PathBuf {
        let h = hex::encode(blake3);
        self.dir.join(&h[..2]).join(h)
    }

    /// Starts a blob of at most `limit` bytes, written as it arrives.
    pub fn begin(&self, limit: u64) -> Result<BlobWriter, ArtifactError> {
        let tmp_dir = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|e| JournalError::io(&tmp_dir, e))?;
        let (path, file) = tempfile_in(&tmp_dir)?;
        Ok(BlobWriter { store: self.clone(), path, file: Some(file), hasher: BlobHasher::default(), limit })
    }

    /// Streams `content` into the store (at most `limit` bytes).
    pub fn put(&self, mut content: impl Read, limit: u64) -> Result<StoredBlob, ArtifactError> {
        let mut w = self.begin(limit)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = content.read(&mut buf).map_err(|e| JournalError::io(&w.path, e))?;
            if n == 0 {
                return w.finish();
            }
            w.write(&buf[..n])?;
        }
    }

    /// Reads a whole blob, checking it against its hash.
    pub fn get(&self, blake3: &Hash) -> Result<Vec<u8>, ArtifactError> {
        let path = self.path(blake3);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::NotFound(hex::encode(blake3)));
            }
            Err(e) => return Err(JournalError::io(&path, e).into()),
        };
        let actual = *blake3::hash(&data).as_bytes();
        if &actual != blake3 {
            return Err(ArtifactError::Altered { blake3: hex::encode(blake3), actual: hex::encode(actual) });
        }
        Ok(data)
    }

    /// Checks a stored blob without keeping it in memory.
    pub fn verify(&self, blake3: &Hash) -> Result<StoredBlob, ArtifactError> {
        let path = self.path(blake3);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::NotFound(hex::encode(blake3)));
            }
            Err(e) => return Err(JournalError::io(&path, e).into()),
        };
        let blob = hash_reader(&mut f).map_err(|e| JournalError::io(&path, e))?;
        if &blob.blake3 != blake3 {
            return Err(ArtifactError::Altered { blake3: hex::encode(blake3), actual: hex::encode(blob.blake3) });
        }
        Ok(blob)
    }
}

/// A blob being written: hashed as it streams, durable and visible under its
/// hash only after [`BlobWriter::finish`]. Dropped unfinished, it leaves
/// nothing behind.
pub struct BlobWriter {
    store: ArtifactStore,
    path: PathBuf,
    file: Option<std::fs::File>,
    hasher: BlobHasher,
    limit: u64,
}

impl BlobWriter {
    /// Appends content.
    pub fn write(&mut self, b: &[u8]) -> Result<(), ArtifactError> {
        self.hasher.update(b);
        if self.hasher.size > self.limit {
            return Err(ArtifactError::TooLarge { limit: self.limit });
        }
        let f = self.file.as_mut().expect("open until finish");
        f.write_all(b).map_err(|e| JournalError::io(&self.path, e).into())
    }

    /// fsyncs, renames to `<b3[0..2]>/<blake3 hex>`, fsyncs the directory.
    pub fn finish(mut self) -> Result<StoredBlob, ArtifactError> {
        let file = self.file.take().expect("open until finish");
        file.sync_all().map_err(|e| JournalError::io(&self.path, e))?;
        let blob = std::mem::take(&mut self.hasher).finish();
        let dest = self.store.path(&blob.blake3);
        let parent = dest.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(parent).map_err(|e| JournalError::io(parent, e))?;
        std::fs::rename(&self.path, &dest).map_err(|e| JournalError::io(&dest, e))?;
        sync_dir(parent)?;
        Ok(blob)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
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

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), ArtifactError> {
    for _ in 0..16 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).expect("the OS random source works");
        let p = dir.join(format!("{}.part", hex::encode(r)));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(JournalError::io(&p, e).into()),
        }
    }
    Err(JournalError::io(dir, std::io::Error::other("could not create a temp file")).into())
}
