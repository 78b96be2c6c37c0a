//! C2SP tlog-tiles (FORMAT.md §12): the paths of tiles and entry bundles,
//! which tiles a tree of a given size has, bundles' encoding, and reading
//! a tile or bundle from a log.
//!
//! Owns: the mapping between the log's tree and the static resources.
//! Must not: serve HTTP (the server does) or verify a copy (`verify::tiles`
//! does, with the verifier's findings).

use crate::hash::Hash;
use crate::log::{LedgerError, LedgerReader};

/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u64 = 256;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    /// Merkle tree hashes at this tile level (level 0: leaf hashes)
    Hashes(u8),
    /// the entries of level-0 tile `index`
    Entries,
}

/// One tile or entry bundle: `tile/<L>/<N>[.p/<W>]` or
/// `tile/entries/<N>[.p/<W>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TilePath {
    /// hashes at a level, or entries
    pub kind: TileKind,
    /// the tile's index at its level
    pub index: u64,
    /// hashes or entries in it: 256 for a full tile, 1..=255 for a partial one
    pub width: u16,
}

/// A path that is not a tile's, or a tile the tree does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// Not a tile path (FORMAT.md §12).
    #[error("{path:?} is not a tile path: {reason}")]
    BadPath {
        /// the path as given
        path: String,
        /// why
        reason: String,
    },
    /// The tree does not hold it (yet).
    #[error("{path} is beyond the tree of size {size}")]
    Beyond {
        /// the tile's path
        path: String,
        /// the tree's size
        size: u64,
    },
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Read(String),
}

impl From<LedgerError> for TileError {
    fn from(e: LedgerError) -> Self {
        Self::Read(e.to_string())
    }
}

impl TilePath {
    /// Parses a path relative to the log's prefix (`tile/…`).
    pub fn parse(path: &str) -> Result<Self, TileError> {
        let bad = |reason: &str| TileError::BadPath { path: path.to_owned(), reason: reason.to_owned() };
        let rest = path.strip_prefix("tile/").ok_or_else(|| bad("it does not start with tile/"))?;
        let (level, rest) = rest.split_once('/').ok_or_else(|| bad("no index"))?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let l = decimal(level).filter(|l| *l <= 63).ok_or_else(|| bad("the level is not 0..63 in decimal"))?;
            TileKind::Hashes(l as u8)
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((n, w)) => {
                let w =
                    decimal(w).filter(|w| (1..TILE_WIDTH).contains(w)).ok_or_else(|| bad("the width is not 1..255"))?;
                (n, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = parse_index(index).ok_or_else(|| bad("the index is not in x000/…/000 form"))?;
        Ok(Self { kind, index, width })
    }

    /// The path relative to the log's prefix.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes(l) => l.to_string(),
            TileKind::Entries => "entries".into(),
        };
        let mut p = format!("tile/{level}/{}", index_path(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// A full tile: it never changes.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The tile level whose hashes it holds or hashes (entries: 0).
    pub fn level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes(l) => l,
            TileKind::Entries => 0,
        }
    }

    /// Leaves under one of its hashes: 256^level.
    fn span(&self) -> u64 {
        1u64 << (8 * u32::from(self.level()))
    }

    /// The first leaf it covers and the leaves it covers.
    fn leaves(&self) -> Option<(u64, u64)> {
        let span = self.span();
        let start = self.index.checked_mul(TILE_WIDTH)?.checked_mul(span)?;
        Some((start, u64::from(self.width).checked_mul(span)?))
    }

    /// Whether a tree of `size` holds it.
    pub fn within(&self, size: u64) -> bool {
        self.leaves().and_then(|(start, n)| start.checked_add(n)).is_some_and(|end| end <= size)
    }
}

fn decimal(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if ok { s.parse().ok() } else { None }
}

/// `x001/x234/067` → 1234067.
fn parse_index(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split('/').collect();
    let mut n: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let digits = if i + 1 < parts.len() { p.strip_prefix('x')? } else { p };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits.parse::<u64>().ok()?)?;
    }
    // the shortest form only: no leading x000 element
    (parts.len() == 1 || parts[0] != "x000").then_some(n)
}

/// 1234067 → `x001/x234/067`.
pub fn index_path(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

/// Every tile of a tree of `size` at every level, full ones first within
/// a level, then the entry bundles (FORMAT.md §12).
pub fn tiles_of(size: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    let mut level = 0u8;
    let mut hashes = size; // hashes at this level: floor(size / 256^level)
    while hashes > 0 {
        push_level(&mut out, TileKind::Hashes(level), hashes);
        hashes /= TILE_WIDTH;
        level += 1;
    }
    push_level(&mut out, TileKind::Entries, size);
    out
}

fn push_level(out: &mut Vec<TilePath>, kind: TileKind, count: u64) {
    for index in 0..count / TILE_WIDTH {
        out.push(TilePath { kind, index, width: TILE_WIDTH as u16 });
    }
    let rest = (count % TILE_WIDTH) as u16;
    if rest > 0 {
        out.push(TilePath { kind, index: count / TILE_WIDTH, width: rest });
    }
}

/// Entries as a bundle: each as a big-endian uint16 length, then its bytes.
/// `None` when one is longer than 65,535 bytes.
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&u16::try_from(e.len()).ok()?.to_be_bytes());
        out.extend_from_slice(e);
    }
    Some(out)
}

/// The entries of a bundle; an error names the offset where it breaks.
pub fn decode_bundle(mut b: &[u8]) -> Result<Vec<&[u8]>, String> {
    let (mut out, total) = (Vec::new(), b.len());
    while !b.is_empty() {
        let at = total - b.len();
        let (len, rest) = b.split_at_checked(2).ok_or_else(|| format!("a length cut short at byte {at}"))?;
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (entry, rest) =
            rest.split_at_checked(n).ok_or_else(|| format!("an entry of {n} bytes cut short at byte {at}"))?;
        out.push(entry);
        b = rest;
    }
    Ok(out)
}

/// The tile or bundle `p` of the log as `reader` serves it: `Beyond` when
/// its tree does not hold it.
pub fn read_tile(reader: &LedgerReader, p: &TilePath) -> Result<Vec<u8>, TileError> {
    let size = reader.size();
    if !p.within(size) {
        return Err(TileError::Beyond { path: p.path(), size });
    }
    let (start, _) = p.leaves().expect("within the tree");
    let span = p.span();
    let seqs = (0..u64::from(p.width)).map(|i| start + i * span);
    match p.kind {
        TileKind::Entries => {
            let entries: Vec<bytes::Bytes> =
                seqs.map(|seq| reader.get(seq).map(|e| e.leaf_bytes)).collect::<Result<_, _>>()?;
            encode_bundle(entries.iter().map(|e| e.as_ref()))
                .ok_or_else(|| TileError::Read("a leaf is longer than 65,535 bytes".into()))
        }
        TileKind::Hashes(0) => hashes(seqs.map(|seq| reader.leaf_hash(seq))),
        TileKind::Hashes(_) => hashes(seqs.map(|s| reader.subtree_root(s, s + span))),
    }
}

fn hashes(it: impl Iterator<Item = Result<Hash, LedgerError>>) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::with_capacity(TILE_WIDTH as usize * 32);
    for h in it {
        out.extend_from_slice(&h?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(index_path(1_234_067), "x001/x234/067");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(1000), "x001/000");
        let p = TilePath { kind: TileKind::Hashes(1), index: 1_234_067, width: 17 };
        assert_eq!(p.path(), "tile/1/x001/x234/067.p/17");
        assert_eq!(TilePath::parse(&p.path()), Ok(p));
        let e = TilePath::parse("tile/entries/x001/000").unwrap();
        assert_eq!((e.kind, e.index, e.is_full()), (TileKind::Entries, 1000, true));
        for bad in [
            "tile/1/1234",
            "tile/01/000",
            "tile/0/x000/001",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/64/000",
            "tiles/0/000",
            "tile/0/01",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tree_of_70000_has_the_tiles_the_spec_lists() {
        let t = tiles_of(70_000);
        let count = |kind, full: bool| t.iter().filter(|p| p.kind == kind && p.is_full() == full).count();
        assert_eq!((count(TileKind::Hashes(0), true), count(TileKind::Hashes(0), false)), (273, 1));
        assert_eq!((count(TileKind::Hashes(1), true), count(TileKind::Hashes(1), false)), (1, 1));
        assert_eq!((count(TileKind::Hashes(2), true), count(TileKind::Hashes(2), false)), (0, 1));
        let widths: Vec<u16> = t.iter().filter(|p| !p.is_full()).map(|p| p.width).collect();
        assert_eq!(widths, [112, 17, 1, 112]);
        assert_eq!(tiles_of(256).iter().map(TilePath::path).collect::<Vec<_>>()[1], "tile/1/000.p/1");
        assert!(tiles_of(0).is_empty());
        for p in &t {
            assert!(p.within(70_000), "{}", p.path());
        }
        assert!(!TilePath { kind: TileKind::Hashes(0), index: 273, width: 113 }.within(70_000));
    }

    #[test]
    fn bundles_round_trip_and_a_cut_one_is_named() {
        let entries: [&[u8]; 3] = [b"a", b"", &[7u8; 300]];
        let b = encode_bundle(entries).unwrap();
        assert_eq!(decode_bundle(&b).unwrap(), entries);
        assert!(decode_bundle(&b[..b.len() - 1]).unwrap_err().contains("cut short"));
        assert!(encode_bundle([&[0u8; 70_000][..]]).is_none());
    }
}
