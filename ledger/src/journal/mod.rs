//! The journal format: segment files of CRC-framed records (FORMAT.md §6),
//! as the file store keeps them and as an export bundle carries them.
//!
//! Owns: segment naming and headers, the frame layout, scanning a segment,
//! and reading or writing whole journal directories for tools and tests.
//! Must not: decode records beyond the frame, or write a live log (the file
//! store's writer does: `crate::store::file`).

mod frame;

pub use frame::{FRAME_HEADER_LEN, FrameError, MAX_FRAME_LEN, SegmentScanner, encode_frame, parse_frame};

use std::path::{Path, PathBuf};

/// The 8-byte magic that opens every segment (format version 1).
pub const SEGMENT_MAGIC: &[u8; 8] = b"LDGRJNL1";
/// Length of the segment header: magic ‖ u64le first seq.
pub const SEGMENT_HEADER_LEN: u64 = 16;

/// A journal failure, always naming the file (and offset where it applies).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O call failed.
    #[error("journal I/O on {path}: {source}")]
    Io {
        /// the file or directory
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// Damage that is not a torn tail: the journal will not open.
    #[error("journal segment {segment} is damaged at byte offset {offset}: {reason}")]
    Corrupt {
        /// the segment file
        segment: PathBuf,
        /// byte offset in that file
        offset: u64,
        /// what is wrong
        reason: String,
    },
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    /// True when the OS reported a full disk or quota.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. } if crate::store::is_disk_full(source))
    }
}

/// `<first seq, 20 digits>.seg`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The segment header for `first_seq`.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// The segments of a journal directory, sorted, as (first seq, path).
/// Files that are not named like segments are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let path = entry.map_err(|e| JournalError::io(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            out.push((stem.parse().expect("20 digits fit u64 when valid"), path));
        }
    }
    out.sort();
    Ok(out)
}

/// Checks a segment header against the first seq its name gives.
pub fn check_header(path: &Path, header: &[u8], first_seq: u64) -> Result<(), JournalError> {
    let corrupt = |reason: String| JournalError::Corrupt { segment: path.to_owned(), offset: 0, reason };
    if header.len() < SEGMENT_HEADER_LEN as usize || &header[..8] != SEGMENT_MAGIC {
        return Err(corrupt("bad segment header (expected magic LDGRJNL1)".into()));
    }
    let in_header = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if in_header != first_seq {
        return Err(corrupt(format!("header says first seq {in_header}, file name says {first_seq}")));
    }
    Ok(())
}

/// Every record of a journal directory, per segment (first seq, records).
/// For tooling and tests: a damaged frame is an error.
pub fn read_records(dir: &Path) -> Result<Vec<(u64, Vec<crate::record::Decoded>)>, JournalError> {
    let mut out = Vec::new();
    for (first, path) in list_segments(dir)? {
        let mut scan = SegmentScanner::open(&path, first, None)?;
        let mut recs = Vec::new();
        while let Some((offset, bytes)) = scan.next_frame()? {
            let r = crate::record::decode(bytes).map_err(|reason| JournalError::Corrupt {
                segment: path.clone(),
                offset,
                reason,
            })?;
            recs.push(r);
        }
        out.push((first, recs));
    }
    Ok(out)
}

/// Writes segments from records (headers, frames, valid CRCs) into `dir`,
/// replacing what is there. For tooling and tests (e.g. crafting tampered
/// copies); never used on a live log.
pub fn write_records(dir: &Path, segments: &[(u64, Vec<crate::record::Decoded>)]) -> Result<(), JournalError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
    for (first, recs) in segments {
        let mut buf = segment_header(*first).to_vec();
        for r in recs {
            let body = match r {
                crate::record::Decoded::Entry(e) => crate::record::encode_entry(e.clone()),
                crate::record::Decoded::Checkpoint(n) => crate::record::encode_checkpoint(n),
            };
            encode_frame(&body, &mut buf);
        }
        let p = dir.join(segment_name(*first));
        std::fs::write(&p, buf).map_err(|e| JournalError::io(&p, e))?;
    }
    Ok(())
}
