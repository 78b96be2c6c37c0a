//! The tiles of a log (FORMAT.md §12) read with `tiles::read_tile` and
//! checked with `verify::verify_tiles`: a faithful copy verifies with the
//! checkpoint's root, an earlier checkpoint is consistent with it, and each
//! kind of damage is named with its kind and seq.

mod common;

use std::collections::HashMap;

use ledger::note::Checkpoint;
use ledger::tiles::{TileKind, TilePath, read_tile, tiles_of};
use ledger::verify::{FindingKind, TileSource, verify_tiles, verify_tiles_from};

/// A copy of the tiles in memory.
#[derive(Clone)]
struct Copy(HashMap<String, Vec<u8>>);

impl TileSource for Copy {
    fn fetch(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(path).cloned())
    }
}

/// A copy that counts what it is asked for.
struct Counted<'a>(&'a mut Copy, u64);

impl TileSource for Counted<'_> {
    fn fetch(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.1 += 1;
        self.0.fetch(path)
    }
}

fn copy_of(l: &ledger::Ledger) -> Copy {
    let reader = l.reader();
    let mut m: HashMap<String, Vec<u8>> =
        tiles_of(l.size()).iter().map(|p| (p.path(), read_tile(&reader, p).unwrap())).collect();
    m.insert("checkpoint".into(), l.latest_checkpoint().note.clone().into_bytes());
    Copy(m)
}

fn first_finding(c: &mut Copy, l: &ledger::Ledger, earlier: Option<&Checkpoint>) -> (FindingKind, Option<u64>) {
    let (report, _) = verify_tiles(c, &l.verifiers(), earlier, None);
    assert!(!report.ok);
    let f = &report.findings[0];
    (f.kind, f.seq)
}

#[test]
fn a_copy_of_the_tiles_verifies_and_each_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 5_000, 1_000);
    let earlier = l.latest_checkpoint().checkpoint.clone();
    common::fill(&l, 65_000, 1_000);
    assert_eq!(l.size(), 70_000);
    let copy = copy_of(&l);
    assert_eq!(
        copy.0.len(),
        273 + 1 + 1 + 1 + 1 + 274 + 1,
        "the spec's tiles for 70,000 entries, bundles and checkpoint"
    );
    assert_eq!(copy.0["tile/0/272"].len(), 8192);

    let (report, cp) = verify_tiles(&mut copy.clone(), &l.verifiers(), Some(&earlier), None);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!((report.tree_size, report.entries), (70_000, 70_000));
    assert_eq!(cp.unwrap().root, l.latest_checkpoint().checkpoint.root);

    // a leaf changed in its bundle
    let mut c = copy.clone();
    let bundle = c.0.get_mut("tile/entries/019").unwrap();
    bundle[10] ^= 1;
    assert_eq!(first_finding(&mut c, &l, None), (FindingKind::LeafInvalid, Some(19 * 256)));
    // a hash of the level-1 tile
    let mut c = copy.clone();
    c.0.get_mut("tile/1/000").unwrap()[32 * 3] ^= 1;
    assert_eq!(first_finding(&mut c, &l, None), (FindingKind::CheckpointMismatch, Some(3 * 256)));
    // a level-0 tile missing
    let mut c = copy.clone();
    c.0.remove("tile/0/100");
    assert_eq!(first_finding(&mut c, &l, None), (FindingKind::Truncated, Some(100 * 256)));
    // a checkpoint signed by another key
    let other = tempfile::tempdir().unwrap();
    let stranger = common::open(other.path(), common::options());
    assert_eq!(first_finding(&mut copy.clone(), &stranger, None), (FindingKind::CheckpointUntrusted, None));
    // an earlier checkpoint of another history
    let forged = Checkpoint { root: [9; 32], ..earlier.clone() };
    assert_eq!(first_finding(&mut copy.clone(), &l, Some(&forged)), (FindingKind::SplitView, Some(5_000)));
}

#[test]
fn tiles_beyond_the_tree_are_refused_and_partial_ones_of_any_held_width_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 300, 100);
    let reader = l.reader();
    let full = TilePath { kind: TileKind::Hashes(0), index: 0, width: 256 };
    let tile = read_tile(&reader, &full).unwrap();
    assert_eq!(&tile[32 * 5..32 * 6], &l.get(5).unwrap().leaf_hash[..]);
    let older = TilePath { kind: TileKind::Hashes(0), index: 1, width: 10 };
    assert_eq!(read_tile(&reader, &older).unwrap().len(), 320, "a partial tile of a smaller, earlier tree");
    for beyond in [
        TilePath { kind: TileKind::Hashes(0), index: 1, width: 45 },
        TilePath { kind: TileKind::Hashes(1), index: 0, width: 2 },
        TilePath { kind: TileKind::Entries, index: 2, width: 1 },
    ] {
        let e = read_tile(&reader, &beyond).unwrap_err().to_string();
        assert!(e.contains("beyond the tree of size 300"), "{e}");
    }
    let bundle = read_tile(&reader, &TilePath { kind: TileKind::Entries, index: 1, width: 44 }).unwrap();
    let entries = ledger::tiles::decode_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 44);
    assert_eq!(entries[0], &l.get(256).unwrap().leaf_bytes[..], "bundles hold leaf bytes");
}

#[test]
fn a_resumed_walk_reads_only_what_is_new_and_finds_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 60_100, 1_000);
    let keys = l.verifiers();
    let mut first = copy_of(&l);
    let (report, cp, state) = verify_tiles_from(&mut first, &keys, None, None, None);
    assert!(report.ok, "{}", report.to_text());
    let (earlier, state) = (cp.unwrap(), state.unwrap());
    assert_eq!(state.first_seq, 60_100);
    common::fill(&l, 1_000, 1_000);
    let mut copy = copy_of(&l);

    // resumed: the new entries only, the tiles above them, the same root
    let mut counted = Counted(&mut copy, 0);
    let (resumed, cp, next) = verify_tiles_from(&mut counted, &keys, Some(&earlier), Some(&state), None);
    assert!(resumed.ok, "{}", resumed.to_text());
    assert_eq!((resumed.first_seq, resumed.entries, resumed.tree_size), (60_100, 1_000, 61_100));
    assert_eq!(cp.unwrap().root, l.latest_checkpoint().checkpoint.root);
    assert!(counted.1 < 20, "{} resources read for 1,000 new entries", counted.1);
    assert_eq!(next.unwrap().first_seq, 61_100);
    let (full, _) = verify_tiles(&mut copy.clone(), &keys, Some(&earlier), None);
    assert_eq!(full.root, resumed.root);

    // damage past the resume point is still named; a state not at the earlier checkpoint is not used
    let mut bad = copy.clone();
    bad.0.get_mut("tile/entries/238.p/172").unwrap()[10] ^= 1;
    let (r, _, next) = verify_tiles_from(&mut bad, &keys, Some(&earlier), Some(&state), None);
    assert_eq!((r.findings[0].kind, r.findings[0].seq), (FindingKind::LeafInvalid, Some(238 * 256)));
    assert!(next.is_none(), "no state is handed on from a copy with findings");
    let stale = ledger::verify::StartState { first_seq: 60_000, ..state.clone() };
    let (r, _, _) = verify_tiles_from(&mut copy.clone(), &keys, Some(&earlier), Some(&stale), None);
    assert!(r.ok && r.first_seq == 0 && r.entries == 61_100, "a state that does not match is ignored: a full walk");
}
