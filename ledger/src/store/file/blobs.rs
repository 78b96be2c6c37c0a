//! Artifact blobs as files: `artifacts/<b3[0..2]>/<blake3 hex>`, written to
//! a temp file, fsynced, renamed; checked against their hash when read
//! (docs/ARCHITECTURE.md "Design decisions").
//!
//! Owns: blob files. Must not: register artifacts in the log (the caller
//! appends the entry that references them).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::sync_dir;
use crate::artifacts::{BlobHasher, StoredBlob, hash_reader};
use crate::hash::Hash;
use crate::store::{BlobStore, BlobWriter, StoreError, StoreErrorKind};

/// The blob directory of one log.
#[derive(Debug, Clone)]
pub struct FileBlobs {
    dir: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(format!("artifact store {}", path.display()), e)
}

fn not_found(blake3: &Hash) -> StoreError {
    StoreError::new(StoreErrorKind::NotFound, format!("artifact {} is not stored", hex::encode(blake3)))
}

impl FileBlobs {
    /// The store rooted at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the blob with this BLAKE3 hash lives.
    pub fn path(&self, blake3: &Hash) -> PathBuf {
        let h = hex::encode(blake3);
        self.dir.join(&h[..2]).join(h)
    }

    fn open_file(&self, blake3: &Hash) -> Result<std::fs::File, StoreError> {
        let path = self.path(blake3);
        match std::fs::File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found(blake3)),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

impl BlobStore for FileBlobs {
    fn begin(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StoreError> {
        let tmp_dir = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
        let (path, file) = tempfile_in(&tmp_dir)?;
        Ok(Box::new(FileBlobWriter {
            store: self.clone(),
            path,
            file: Some(file),
            hasher: BlobHasher::default(),
            limit,
        }))
    }

    fn verify(&self, blake3: &Hash) -> Result<StoredBlob, StoreError> {
        let mut f = self.open_file(blake3)?;
        let blob = hash_reader(&mut f).map_err(io(&self.path(blake3)))?;
        if &blob.blake3 != blake3 {
            return Err(StoreError::damaged(format!(
                "artifact {} is altered on disk: its content hashes to {}",
                hex::encode(blake3),
                hex::encode(blob.blake3)
            )));
        }
        Ok(blob)
    }

    fn open(&self, blake3: &Hash) -> Result<Box<dyn std::io::Read + Send>, StoreError> {
        Ok(Box::new(self.open_file(blake3)?))
    }
}

/// A blob being written: hashed as it streams, durable and visible under its
/// hash only after `finish`. Dropped unfinished, it leaves nothing behind.
struct FileBlobWriter {
    store: FileBlobs,
    path: PathBuf,
    file: Option<std::fs::File>,
    hasher: BlobHasher,
    limit: u64,
}

impl BlobWriter for FileBlobWriter {
    fn write(&mut self, b: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(b);
        if self.hasher.size() > self.limit {
            let limit = self.limit;
            return Err(StoreError::new(StoreErrorKind::TooLarge { limit }, format!("artifact exceeds {limit} bytes")));
        }
        let f = self.file.as_mut().expect("open until finish");
        f.write_all(b).map_err(io(&self.path))
    }

    /// fsyncs, renames to `<b3[0..2]>/<blake3 hex>`, fsyncs the directory.
    fn finish(mut self: Box<Self>) -> Result<StoredBlob, StoreError> {
        let file = self.file.take().expect("open until finish");
        file.sync_all().map_err(io(&self.path))?;
        let blob = std::mem::take(&mut self.hasher).finish();
        let dest = self.store.path(&blob.blake3);
        let parent = dest.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::rename(&self.path, &dest).map_err(io(&dest))?;
        sync_dir(parent)?;
        Ok(blob)
    }
}

impl Drop for FileBlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), StoreError> {
    for _ in 0..16 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).expect("the OS random source works");
        let p = dir.join(format!("{}.part", hex::encode(r)));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&p)(e)),
        }
    }
    Err(io(dir)(std::io::Error::other("could not create a temp file")))
}
