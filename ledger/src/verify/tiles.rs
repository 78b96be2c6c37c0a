//! A copy of a log's tiles checked (FORMAT.md §12): the checkpoint's
//! signature, every bundle entry against its level-0 tile, the chain inside
//! the leaves, every higher-level tile hash against the subtree it names,
//! the root at the checkpoint's size, and an earlier checkpoint's root at
//! its size (consistency with what was mirrored before).
//!
//! Owns: that walk and its findings (the verifier's kinds). Must not: fetch
//! anything itself (a [`TileSource`] does) or read payloads (bundles hold
//! leaves only).

use std::collections::HashMap;

use super::{Finding, FindingKind, Report, StartState};
use crate::hash::{Hash, leaf_hash, to_hex};
use crate::merkle::CompactRange;
use crate::note::{Checkpoint, NoteVerifier};
use crate::tiles::{TILE_WIDTH, TileKind, TilePath, decode_bundle};

/// Where the tiles are read from (a directory, a URL).
pub trait TileSource {
    /// The bytes at `path` (relative to the log's prefix: `checkpoint`,
    /// `tile/…`), `None` when there is nothing there.
    fn fetch(&mut self, path: &str) -> Result<Option<Vec<u8>>, String>;
}

/// Checks the tiles `src` holds under its checkpoint, signed by one of
/// `vkeys`; with `earlier` (a checkpoint verified before), that the tree
/// holds it too. `progress` is told the entries checked and the total.
pub fn verify_tiles(
    src: &mut dyn TileSource,
    vkeys: &[NoteVerifier],
    earlier: Option<&Checkpoint>,
    progress: Option<&dyn Fn(u64, u64)>,
) -> (Report, Option<Checkpoint>) {
    let (report, cp, _) = verify_tiles_from(src, vkeys, earlier, None, progress);
    (report, cp)
}

/// [`verify_tiles`] resumed: with `start`, the state the walk had at the
/// end of an earlier verification of the same copy, at `earlier`'s size
/// and root (else it is ignored and the walk starts at 0), only the
/// entries past it and the tiles above them are read: O(new). Also
/// returns the state at the end, for the next run.
pub fn verify_tiles_from(
    src: &mut dyn TileSource,
    vkeys: &[NoteVerifier],
    earlier: Option<&Checkpoint>,
    start: Option<&StartState>,
    progress: Option<&dyn Fn(u64, u64)>,
) -> (Report, Option<Checkpoint>, Option<StartState>) {
    let mut w = Walk::new(earlier.cloned());
    let Some(cp) = w.checkpoint(src, vkeys) else { return (w.finish(None), None, None) };
    w.size = cp.size;
    if let (Some(s), Some(e)) = (start, earlier) {
        w.resume(s, e);
    }
    for n in w.from / TILE_WIDTH..cp.size.div_ceil(TILE_WIDTH) {
        if !w.level0(src, n) {
            break;
        }
        if let Some(p) = progress {
            p(w.range.size(), cp.size);
        }
    }
    let state = StartState {
        first_seq: w.range.size(),
        prev_hash: to_hex(&w.prev_hash),
        prev_recorded_at: w.prev_time,
        compact_range: w.range.nodes().iter().map(to_hex).collect(),
    };
    let report = w.finish(Some(&cp));
    let state = report.ok.then_some(state);
    (report, Some(cp), state)
}

struct Walk {
    report: Report,
    range: CompactRange,
    prev_hash: Hash,
    prev_time: i64,
    size: u64,
    /// entries before it were verified by an earlier run
    from: u64,
    earlier: Option<Checkpoint>,
    /// the upper tile last fetched at each level (None: missing, reported)
    upper: HashMap<u8, (u64, Option<Vec<u8>>)>,
}

impl Walk {
    fn new(earlier: Option<Checkpoint>) -> Self {
        let report = Report::default();
        let (range, prev_hash, prev_time) = (CompactRange::new(), [0; 32], i64::MIN);
        Self { report, range, prev_hash, prev_time, size: 0, from: 0, earlier, upper: HashMap::new() }
    }

    /// Starts from `s` when it is the state at `earlier` (same size, same
    /// root) and within the checkpoint's tree.
    fn resume(&mut self, s: &StartState, earlier: &Checkpoint) {
        let Some((prev_hash, range)) = s.parts() else { return };
        if range.size() != earlier.size || range.root() != earlier.root || range.size() > self.size {
            return;
        }
        (self.prev_hash, self.prev_time, self.from) = (prev_hash, s.prev_recorded_at, range.size());
        self.range = range;
        self.report.first_seq = self.from;
    }

    fn find(&mut self, kind: FindingKind, seq: Option<u64>, detail: String) {
        self.report.add(Finding { kind, seq, detail });
    }

    fn checkpoint(&mut self, src: &mut dyn TileSource, vkeys: &[NoteVerifier]) -> Option<Checkpoint> {
        self.report.checkpoints = 1;
        let note = match src.fetch("checkpoint") {
            Ok(Some(b)) => String::from_utf8(b).map_err(|_| "not UTF-8".to_owned()),
            Ok(None) => Err("there is no checkpoint".to_owned()),
            Err(e) => Err(e),
        };
        match note.and_then(|n| Checkpoint::open(&n, vkeys).map_err(|e| e.to_string())) {
            Ok(c) => Some(c),
            Err(e) => {
                self.find(FindingKind::CheckpointUntrusted, None, format!("checkpoint: {e}"));
                None
            }
        }
    }

    /// Level-0 tile `n` and its bundle; false when the walk cannot go on.
    fn level0(&mut self, src: &mut dyn TileSource, n: u64) -> bool {
        let width = (self.size - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let first = n * TILE_WIDTH;
        let tile = TilePath { kind: TileKind::Hashes(0), index: n, width };
        let bundle = TilePath { kind: TileKind::Entries, ..tile };
        let (Some(hashes), Some(entries)) = (self.need(src, &tile, first), self.need(src, &bundle, first)) else {
            return false;
        };
        if hashes.len() != usize::from(width) * 32 {
            let detail = format!("{} holds {} bytes, not {} hashes", tile.path(), hashes.len(), width);
            self.find(FindingKind::CheckpointMismatch, Some(first), detail);
            return false;
        }
        let decoded = match decode_bundle(&entries) {
            Ok(d) if d.len() == usize::from(width) => d,
            Ok(d) => return self.bad_bundle(&bundle, first, format!("{} entries, not {width}", d.len())),
            Err(e) => return self.bad_bundle(&bundle, first, e),
        };
        for (i, entry) in decoded.iter().enumerate().skip(self.from.saturating_sub(first) as usize) {
            let want: Hash = hashes[i * 32..i * 32 + 32].try_into().expect("32 bytes");
            self.entry(src, first + i as u64, entry, &want);
        }
        true
    }

    fn bad_bundle(&mut self, bundle: &TilePath, first: u64, e: String) -> bool {
        self.find(FindingKind::LeafInvalid, Some(first), format!("{}: {e}", bundle.path()));
        false
    }

    fn need(&mut self, src: &mut dyn TileSource, p: &TilePath, seq: u64) -> Option<Vec<u8>> {
        match src.fetch(&p.path()) {
            Ok(Some(b)) => Some(b),
            Ok(None) => {
                self.find(FindingKind::Truncated, Some(seq), format!("{} is missing", p.path()));
                None
            }
            Err(e) => {
                self.find(FindingKind::Truncated, Some(seq), format!("{}: {e}", p.path()));
                None
            }
        }
    }

    /// One bundle entry: its hash in the tile, its leaf, the chain, the tree.
    fn entry(&mut self, src: &mut dyn TileSource, seq: u64, entry: &[u8], want: &Hash) {
        self.report.entries += 1;
        let h = leaf_hash(entry);
        if h != *want {
            let detail = format!("the bundle entry hashes to {}, the level-0 tile holds {}", to_hex(&h), to_hex(want));
            self.find(FindingKind::LeafInvalid, Some(seq), detail);
        }
        match crate::leaf::decode_leaf(entry) {
            Err(e) => self.find(FindingKind::LeafInvalid, Some(seq), format!("the bundle entry: {e}")),
            Ok(leaf) => {
                if leaf.seq != seq {
                    self.find(FindingKind::SeqMismatch, Some(seq), format!("the leaf says seq {}", leaf.seq));
                }
                if crate::leaf::prev_hash(&leaf) != self.prev_hash {
                    let detail = format!("prev_hash is not the leaf hash of entry {}", seq.wrapping_sub(1));
                    self.find(FindingKind::PrevHashMismatch, Some(seq), detail);
                }
                if leaf.recorded_at < self.prev_time {
                    self.find(
                        FindingKind::TimeBackwards,
                        Some(seq),
                        "recorded_at is before the previous entry's".into(),
                    );
                }
                self.prev_time = self.prev_time.max(leaf.recorded_at);
            }
        }
        self.prev_hash = h;
        let mut done = Vec::new();
        self.range.push(h, |level, index, hash| {
            if level > 0 && level % 8 == 0 {
                done.push((level / 8, index, *hash));
            }
        });
        for (tile_level, index, hash) in done {
            self.upper_hash(src, tile_level, index, &hash);
        }
        self.consistency();
    }

    /// A completed subtree's root against its hash in the tile above.
    fn upper_hash(&mut self, src: &mut dyn TileSource, level: u8, index: u64, hash: &Hash) {
        let n = index / TILE_WIDTH;
        if self.upper.get(&level).is_none_or(|(at, _)| *at != n) {
            let count = self.size >> (8 * u32::from(level));
            let width = (count - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
            let p = TilePath { kind: TileKind::Hashes(level), index: n, width };
            let got = self.need(src, &p, index << (8 * u32::from(level)));
            self.upper.insert(level, (n, got));
        }
        let Some((_, Some(tile))) = self.upper.get(&level) else { return };
        let at = (index % TILE_WIDTH) as usize * 32;
        if tile.get(at..at + 32) != Some(&hash[..]) {
            let seq = index << (8 * u32::from(level));
            let detail = format!("tile level {level} hash {index} differs from the root of the entries under it");
            self.find(FindingKind::CheckpointMismatch, Some(seq), detail);
        }
    }

    /// The earlier checkpoint's root at its size.
    fn consistency(&mut self) {
        let Some(e) = self.earlier.as_ref().filter(|e| e.size == self.range.size()) else { return };
        if e.root != self.range.root() {
            let detail = format!(
                "the earlier checkpoint's root {} at size {} differs from these tiles' {}: the log showed different histories",
                to_hex(&e.root),
                e.size,
                to_hex(&self.range.root())
            );
            self.find(FindingKind::SplitView, Some(e.size), detail);
        }
    }

    fn finish(mut self, cp: Option<&Checkpoint>) -> Report {
        if let Some(cp) = cp {
            if self.range.size() == cp.size && cp.root != self.range.root() {
                let detail = format!(
                    "the checkpoint's root {} differs from the tiles' {}",
                    to_hex(&cp.root),
                    to_hex(&self.range.root())
                );
                self.find(FindingKind::CheckpointMismatch, Some(cp.size), detail);
            }
            if let Some(e) = self.earlier.clone().filter(|e| e.size > cp.size) {
                let detail = format!(
                    "the earlier checkpoint covers {} entries, this one {}: entries were removed",
                    e.size, cp.size
                );
                self.find(FindingKind::Truncated, Some(cp.size), detail);
            }
        }
        self.report.tree_size = self.range.size();
        self.report.root = to_hex(&self.range.root());
        self.report.ok = self.report.finding_count == 0;
        self.report
    }
}
