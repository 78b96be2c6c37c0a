//! Frames `u32le len ‖ u32le crc32c ‖ record` and a sequential scanner over
//! one segment file (FORMAT.md §6.2).

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use super::{JournalError, SEGMENT_HEADER_LEN, check_header};

/// Length of a frame header.
pub const FRAME_HEADER_LEN: u64 = 8;
/// Largest record a frame may carry.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;

/// Appends one frame around `record` to `out`.
pub fn encode_frame(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(record).to_le_bytes());
    out.extend_from_slice(record);
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The file ends inside the frame.
    #[error("frame runs past the end of the file")]
    Truncated,
    /// The length field is 0 or above the limit.
    #[error("frame length {0} is out of range")]
    BadLength(u32),
    /// The CRC does not match.
    #[error("frame CRC mismatch")]
    CrcMismatch,
    /// A zero frame header (the end of the frames, FORMAT.md §6.1) with
    /// non-zero bytes after it.
    #[error("a zero frame header (the end of the frames) is followed by non-zero bytes at offset {0}")]
    DataAfterEnd(u64),
}

/// Reads a frame header (`header` holds at least its 8 bytes): the frame's
/// whole length and the record's CRC.
fn read_header(header: &[u8]) -> Result<(usize, u32), FrameError> {
    if header.len() < FRAME_HEADER_LEN as usize {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_FRAME_LEN {
        return Err(FrameError::BadLength(len));
    }
    Ok((FRAME_HEADER_LEN as usize + len as usize, crc))
}

/// The record of a whole frame (`frame` is exactly `end` bytes long, as its
/// header says), CRC-checked.
fn checked_record(frame: &[u8], crc: u32) -> Result<&[u8], FrameError> {
    let record = &frame[FRAME_HEADER_LEN as usize..];
    if crc32c::crc32c(record) != crc {
        return Err(FrameError::CrcMismatch);
    }
    Ok(record)
}

/// Parses the frame at the start of `buf`: `Ok(Some((record, frame len)))`,
/// `Ok(None)` when `buf` is empty.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let (end, crc) = read_header(buf)?;
    if buf.len() < end {
        return Err(FrameError::Truncated);
    }
    Ok(Some((checked_record(&buf[..end], crc)?, end)))
}

/// Bytes read from the file at a time.
const READ_BLOCK: usize = 4 << 20;

/// Reads the frames of one segment in order, from its header on. Reads the
/// file in 4 MiB blocks; each frame's record is a slice of its block (no copy).
pub struct SegmentScanner {
    path: PathBuf,
    file: std::fs::File,
    /// read, not yet returned
    buf: BytesMut,
    eof: bool,
    offset: u64,
}

impl SegmentScanner {
    /// Opens a segment, checks its header, and positions after it (or at
    /// `start`, a frame boundary, when given).
    pub fn open(path: &Path, first_seq: u64, start: Option<u64>) -> Result<Self, JournalError> {
        let mut file = std::fs::File::open(path).map_err(|e| JournalError::io(path, e))?;
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        file.read_exact(&mut header).map_err(|e| JournalError::io(path, e))?;
        check_header(path, &header, first_seq)?;
        let offset = start.unwrap_or(SEGMENT_HEADER_LEN);
        if offset != SEGMENT_HEADER_LEN {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(offset)).map_err(|e| JournalError::io(path, e))?;
        }
        Ok(Self { path: path.to_owned(), file, buf: BytesMut::new(), eof: false, offset })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads until `want` bytes are buffered or the file ends. Each block is
    /// a new buffer (records handed out keep theirs alive); `read_to_end`
    /// reads into it without zero-filling it first.
    fn fill(&mut self, want: usize) -> Result<(), JournalError> {
        while self.buf.len() < want && !self.eof {
            let have = self.buf.len();
            let block = READ_BLOCK.max(want - have);
            let mut next = Vec::with_capacity(have + block);
            next.extend_from_slice(&self.buf);
            let got = (&mut self.file)
                .take(block as u64)
                .read_to_end(&mut next)
                .map_err(|e| JournalError::io(&self.path, e))?;
            self.buf = BytesMut::from(bytes::Bytes::from(next));
            self.eof = got == 0;
        }
        Ok(())
    }

    /// The next frame: `(offset, record bytes)`, `None` at a clean end.
    /// A damaged frame is an error naming the segment and offset.
    pub fn next_frame(&mut self) -> Result<Option<(u64, Bytes)>, JournalError> {
        let at = self.offset;
        let corrupt = |s: &Self, e: FrameError| JournalError::Corrupt {
            segment: s.path.clone(),
            offset: at,
            reason: e.to_string(),
        };
        let head = FRAME_HEADER_LEN as usize;
        self.fill(head)?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.buf[..head.min(self.buf.len())].iter().all(|&b| b == 0) {
            return match self.first_non_zero()? {
                None => Ok(None),
                Some(o) => Err(corrupt(self, FrameError::DataAfterEnd(o))),
            };
        }
        let (end, crc) = read_header(&self.buf).map_err(|e| corrupt(self, e))?;
        self.fill(end)?;
        if self.buf.len() < end {
            return Err(corrupt(self, FrameError::Truncated));
        }
        checked_record(&self.buf[..end], crc).map_err(|e| corrupt(self, e))?;
        let record = self.buf.split_to(end).freeze().slice(head..);
        self.offset += end as u64;
        Ok(Some((at, record)))
    }

    /// Reads the rest of the file: the offset of its first non-zero byte,
    /// `None` when it is all zero (a preallocated tail, FORMAT.md §6.1).
    /// `offset` stays at the zero header: the end of the frames.
    fn first_non_zero(&mut self) -> Result<Option<u64>, JournalError> {
        let mut at = self.offset;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b != 0) {
                return Ok(Some(at + i as u64));
            }
            at += self.buf.len() as u64;
            self.buf.clear();
            if self.eof {
                return Ok(None);
            }
            self.fill(READ_BLOCK)?;
        }
    }
}
