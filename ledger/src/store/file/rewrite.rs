//! Rewriting a sealed segment in place of itself (an audited redaction),
//! and making directory entries durable.

use std::path::Path;

use crate::journal::{JournalError, encode_frame, parse_frame, segment_name};

/// fsyncs a directory so that created or renamed entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| JournalError::io(dir, e))
}

/// Replaces the record of one frame of a sealed segment with `record` of
/// the same length (an audited redaction, FORMAT.md §6.4): the segment is
/// copied with the new frame, fsynced, and renamed over the old one, so a
/// crash leaves either the old or the new segment, never a torn frame.
pub fn replace_record(dir: &Path, segment: u64, offset: u64, record: &[u8]) -> Result<(), JournalError> {
    use std::io::Write as _;
    let path = dir.join(segment_name(segment));
    let mut data = std::fs::read(&path).map_err(|e| JournalError::io(&path, e))?;
    let at = offset as usize;
    let corrupt = |reason: &str| JournalError::Corrupt { segment: path.clone(), offset, reason: reason.to_owned() };
    let old_len = match parse_frame(data.get(at..).unwrap_or_default()) {
        Ok(Some((r, n))) if r.len() == record.len() => n,
        Ok(Some(_)) => return Err(corrupt("the replacement record differs in length")),
        _ => return Err(corrupt("no valid frame at this offset")),
    };
    let mut frame = Vec::with_capacity(old_len);
    encode_frame(record, &mut frame);
    data[at..at + old_len].copy_from_slice(&frame);
    let tmp = path.with_extension("seg.rewrite");
    let mut f = std::fs::File::create(&tmp).map_err(|e| JournalError::io(&tmp, e))?;
    f.write_all(&data).and_then(|_| f.sync_all()).map_err(|e| JournalError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| JournalError::io(&path, e))?;
    sync_dir(dir)
}
