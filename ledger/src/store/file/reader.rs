//! Positional reads of single frames, concurrent with the writer. Only
//! frames the index points at (so already durable) are read.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::sync::lock;

use crate::journal::{FRAME_HEADER_LEN, JournalError, parse_frame, segment_name};

/// Most segment files kept open for reads.
const MAX_OPEN: usize = 64;

/// Reads frames by (segment, offset, length). Cheap to clone.
#[derive(Clone, Debug)]
pub struct JournalReader {
    dir: PathBuf,
    files: Arc<Mutex<HashMap<u64, Arc<File>>>>,
}

impl JournalReader {
    /// A reader over the journal in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, files: Arc::default() }
    }

    fn file(&self, segment: u64) -> Result<Arc<File>, JournalError> {
        let mut files = lock(&self.files);
        if let Some(f) = files.get(&segment) {
            return Ok(f.clone());
        }
        let path = self.dir.join(segment_name(segment));
        let f = Arc::new(File::open(&path).map_err(|e| JournalError::io(&path, e))?);
        if files.len() >= MAX_OPEN {
            files.clear();
        }
        files.insert(segment, f.clone());
        Ok(f)
    }

    /// Drops the cached handle of a segment that was replaced on disk (a
    /// redaction), so later reads see the new file.
    pub fn forget(&self, segment: u64) {
        lock(&self.files).remove(&segment);
    }

    /// Reads `buf.len()` bytes of a segment at `offset` (an export).
    pub fn read_at(&self, segment: u64, offset: u64, buf: &mut [u8]) -> Result<(), JournalError> {
        let f = self.file(segment)?;
        f.read_exact_at(buf, offset).map_err(|e| JournalError::io(&self.dir.join(segment_name(segment)), e))
    }

    /// The record of the frame at `offset` (`frame_len` includes the header),
    /// CRC-checked.
    pub fn read(&self, segment: u64, offset: u64, frame_len: u32) -> Result<Bytes, JournalError> {
        let f = self.file(segment)?;
        let mut buf = vec![0u8; frame_len as usize];
        let path = || self.dir.join(segment_name(segment));
        f.read_exact_at(&mut buf, offset).map_err(|e| JournalError::io(&path(), e))?;
        match parse_frame(&buf) {
            Ok(Some((_, n))) if n == buf.len() => {
                let mut b = Bytes::from(buf);
                Ok(b.split_off(FRAME_HEADER_LEN as usize))
            }
            Ok(_) => Err(JournalError::Corrupt {
                segment: path(),
                offset,
                reason: "frame length differs from the index".into(),
            }),
            Err(e) => Err(JournalError::Corrupt { segment: path(), offset, reason: e.to_string() }),
        }
    }
}
