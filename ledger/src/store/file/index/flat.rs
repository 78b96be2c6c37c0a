//! Fixed-size record files of the index (FORMAT.md §10): entry positions
//! (`positions.dat`, 64 bytes per seq) and perfect Merkle subtrees
//! (`merkle-<level>.dat`, 32 bytes per node, levels 4, 8, 12, …: the
//! levels between are hashed up by readers). Record `i` lives at byte
//! `i × size`, so a read or a batch write is one `pread`/`pwrite`.
//!
//! Derived data like the rest of the index: written after the journal's
//! fdatasync, never fsynced, reconciled with `indexed_through` on open.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{IndexError, Position, io};
use crate::hash::Hash;
use crate::sync;

/// Bytes per position record.
pub const POSITION_BYTES: u64 = 64;

/// One file of fixed-size records.
struct RecordFile {
    path: PathBuf,
    file: File,
    size: u64,
}

impl RecordFile {
    fn open(path: PathBuf, size: u64) -> Result<Self, IndexError> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io(&path))?;
        Ok(Self { path, file, size })
    }

    fn records(&self) -> Result<u64, IndexError> {
        Ok(self.file.metadata().map_err(io(&self.path))?.len() / self.size)
    }

    fn write(&self, first: u64, bytes: &[u8]) -> Result<(), IndexError> {
        self.file.write_all_at(bytes, first * self.size).map_err(io(&self.path))
    }

    fn read(&self, i: u64, buf: &mut [u8]) -> Result<bool, IndexError> {
        match self.file.read_exact_at(buf, i * self.size) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(IndexError::Io { path: self.path.clone(), source: e }),
        }
    }

    fn truncate(&self, records: u64) -> Result<(), IndexError> {
        self.file.set_len(records * self.size).map_err(io(&self.path))
    }
}

/// Positions and Merkle levels.
pub(super) struct FlatStore {
    dir: PathBuf,
    positions: RecordFile,
    levels: RwLock<Vec<Option<Arc<RecordFile>>>>,
}

impl FlatStore {
    pub(super) fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let positions = RecordFile::open(dir.join("positions.dat"), POSITION_BYTES)?;
        let store = Self { dir: dir.to_owned(), positions, levels: RwLock::new(vec![None; 64]) };
        for l in 1..64u8 {
            let path = store.level_path(l);
            if !path.exists() {
                continue;
            }
            if stored(l) {
                store.level(l, true)?;
            } else {
                // Written by a build from before only every fourth level
                // was stored; nothing reads it any more.
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(store)
    }

    fn level_path(&self, l: u8) -> PathBuf {
        self.dir.join(format!("merkle-{l:02}.dat"))
    }

    fn level(&self, l: u8, create: bool) -> Result<Option<Arc<RecordFile>>, IndexError> {
        if let Some(f) = sync::read(&self.levels)[l as usize].clone() {
            return Ok(Some(f));
        }
        if !create {
            return Ok(None);
        }
        let f = Arc::new(RecordFile::open(self.level_path(l), 32)?);
        sync::write(&self.levels)[l as usize] = Some(f.clone());
        Ok(Some(f))
    }

    pub(super) fn write_positions(&self, first: u64, bytes: &[u8]) -> Result<(), IndexError> {
        self.positions.write(first, bytes)
    }

    pub(super) fn write_nodes(&self, level: u8, first: u64, bytes: &[u8]) -> Result<(), IndexError> {
        self.level(level, true)?.expect("created").write(first, bytes)
    }

    pub(super) fn position(&self, seq: u64) -> Result<Option<Position>, IndexError> {
        let mut b = [0u8; POSITION_BYTES as usize];
        Ok(self.positions.read(seq, &mut b)?.then(|| decode_position(&b)))
    }

    /// `n` consecutive hashes of `level` from `first` (level 0: the leaf
    /// hashes in `positions.dat`), read at once; `None` when the file does
    /// not hold them all.
    pub(super) fn hashes(&self, level: u8, first: u64, n: u64) -> Result<Option<Vec<Hash>>, IndexError> {
        let level_file;
        let (file, size, at) = if level == 0 {
            (&self.positions, POSITION_BYTES as usize, LEAF_HASH_AT)
        } else {
            let Some(f) = self.level(level, false)? else { return Ok(None) };
            level_file = f;
            (&*level_file, 32, 0)
        };
        let mut buf = vec![0u8; n as usize * size];
        if !file.read(first, &mut buf)? {
            return Ok(None);
        }
        Ok(Some(buf.chunks_exact(size).map(|c| c[at..at + 32].try_into().expect("32 bytes")).collect()))
    }

    /// The number of entries these files cover completely, at most
    /// `through`; the files are cut to it (what lies beyond is rewritten by
    /// the catch-up from the journal).
    pub(super) fn reconcile(&self, through: u64) -> Result<u64, IndexError> {
        let mut n = through.min(self.positions.records()?);
        for l in (1..64u8).filter(|&l| stored(l)) {
            let have = match self.level(l, false)? {
                Some(f) => f.records()?,
                None => 0,
            };
            // Having `have` nodes at level l covers fewer than (have + 1) << l leaves.
            let cover = (have + 1).checked_shl(u32::from(l)).map_or(u64::MAX, |c| c - 1);
            n = n.min(cover);
        }
        self.positions.truncate(n)?;
        for l in 1..64u8 {
            if let Some(f) = self.level(l, false)? {
                f.truncate(n >> l)?;
            }
        }
        Ok(n)
    }
}

/// Where a position record holds the leaf hash.
const LEAF_HASH_AT: usize = 24;

/// Whether Merkle level `l` (≥ 1) has a file.
fn stored(l: u8) -> bool {
    l.is_multiple_of(super::STORED_EVERY)
}

/// Encodes a position: segment u64 ‖ offset u64 ‖ frame_len u32 ‖ 0u32 ‖
/// leaf hash ‖ recorded_at i64, little-endian.
pub(super) fn encode_position(p: &Position, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.segment.to_le_bytes());
    out.extend_from_slice(&p.offset.to_le_bytes());
    out.extend_from_slice(&p.frame_len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&p.leaf_hash);
    out.extend_from_slice(&p.recorded_at.to_le_bytes());
}

fn decode_position(b: &[u8; POSITION_BYTES as usize]) -> Position {
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Position {
        segment: u64_at(0),
        offset: u64_at(8),
        frame_len: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
        leaf_hash: b[LEAF_HASH_AT..LEAF_HASH_AT + 32].try_into().expect("32 bytes"),
        recorded_at: i64::from_le_bytes(b[56..64].try_into().expect("8 bytes")),
    }
}
