//! Recovery: torn tails are cut, anything else stops the open with the
//! segment and offset; the index is rebuilt from the journal.

mod common;

use std::path::Path;

use ledger::journal::{JournalError, SegmentScanner, list_segments};
use ledger::store::file::Journal;
use ledger::{Ledger, LedgerError};

/// A log of `n` entries appended one per batch, dropped without close (as
/// a crash would leave it). Returns each entry's frame offset in the last
/// segment and the end of its frames (a zero tail follows, FORMAT.md §6.1).
fn crashed_log(dir: &Path, n: u64, opts: ledger::LogOptions) -> (Vec<u64>, u64) {
    let l = common::open(dir, opts);
    for i in 0..n {
        l.append(common::entry("alert_ack", Some("INC-1"), i)).unwrap();
    }
    let last = list_segments(&dir.join("journal")).unwrap().pop().unwrap();
    let mut s = SegmentScanner::open(&last.1, last.0, None).unwrap();
    let mut offsets = Vec::new();
    while let Some((o, _)) = s.next_frame().unwrap() {
        offsets.push(o);
    }
    (offsets, s.offset())
}

/// True when the bytes of the last frame after `cut` are all zeros (its
/// HMAC tag can end in a zero byte): a zero tail then restores the frame
/// whole, so that case is no torn write (1 run in ~256 drew one).
fn restored_by_zeros(full: &[u8], cut: usize, end: usize) -> bool {
    full[cut..end].iter().all(|&b| b == 0)
}

fn count_frames(dir: &Path) -> usize {
    let mut n = 0;
    for (first, p) in list_segments(dir).unwrap() {
        let mut s = SegmentScanner::open(&p, first, None).unwrap();
        while s.next_frame().unwrap().is_some() {
            n += 1;
        }
    }
    n
}

#[test]
fn torn_last_frame_cut_at_every_byte_is_truncated_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.checkpoint_interval = 1_000_000;
    let (offsets, end) = crashed_log(dir.path(), 20, o);
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let full = std::fs::read(&seg).unwrap();
    assert!(full.len() as u64 > end && full[end as usize..].iter().all(|&b| b == 0), "a zero tail follows the frames");
    let last = *offsets.last().unwrap() as usize;
    assert!(end as usize - last > 100, "a real frame");
    let work = tempfile::tempdir().unwrap();
    let wj = work.path().join("journal");
    std::fs::create_dir_all(&wj).unwrap();
    let name = wj.join(seg.file_name().unwrap());
    for cut in last..end as usize {
        // Torn at the end of the file, and torn inside the zero tail (the
        // rest of the frame never reached the disk).
        let mut padded = full[..cut].to_vec();
        padded.resize(full.len(), 0);
        for (bytes, zero_tail) in [(&full[..cut], false), (&padded[..], true)] {
            if zero_tail && restored_by_zeros(&full, cut, end as usize) {
                continue; // the frame's missing bytes were zeros: padded, it is whole, not torn
            }
            std::fs::write(&name, bytes).unwrap();
            let j = Journal::open(&wj, 64 << 20).unwrap();
            assert_eq!(j.segment_len(), last as u64, "cut at {cut}");
            let cut_off = if zero_tail { full.len() - last } else { cut - last };
            assert_eq!(j.truncated_on_open().map(|t| t.2), (cut > last).then_some(cut_off as u64), "cut at {cut}");
            drop(j);
            let kept = if cut == last && zero_tail { full.len() } else { last };
            assert_eq!(std::fs::metadata(&name).unwrap().len(), kept as u64, "cut at {cut}");
            assert_eq!(count_frames(&wj), 19, "cut at {cut}: the 19 earlier entries stay");
        }
    }
}

#[test]
fn torn_tail_through_the_full_ledger_open_keeps_every_earlier_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.checkpoint_interval = 1_000_000;
    let (offsets, end) = crashed_log(dir.path(), 20, o.clone());
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let full = std::fs::read(&seg).unwrap();
    let (last, end) = (*offsets.last().unwrap() as usize, end as usize);
    for cut in [last + 1, last + 7, last + 8, last + 9, end - 1] {
        let mut padded = full[..cut].to_vec();
        padded.resize(full.len(), 0);
        let variants: &[&[u8]] =
            if restored_by_zeros(&full, cut, end) { &[&full[..cut]] } else { &[&full[..cut], &padded[..]] };
        for &bytes in variants {
            // The frame was never acknowledged, so the index never saw it either.
            std::fs::remove_dir_all(dir.path().join("index")).unwrap();
            std::fs::write(&seg, bytes).unwrap();
            let (l, rep) = ledger::store::file::open(dir.path(), o.clone()).unwrap();
            assert_eq!(rep.size, 19, "cut at {cut}");
            assert_eq!(rep.caught_up, 19);
            assert!(rep.truncated.is_some());
            assert_eq!(l.get(18).unwrap().leaf.seq, 18);
            let r = l.append(common::entry("alert_ack", Some("INC-1"), 99)).unwrap();
            assert_eq!(r.seq, 19, "appends continue where the durable log ends");
            assert_eq!(l.get(19).unwrap().leaf.subject_prev, 19, "subject chain continues from seq 18");
            drop(l);
            std::fs::write(&seg, &full).unwrap();
        }
    }
}

#[test]
fn garbage_after_the_last_frame_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, end) = crashed_log(dir.path(), 5, common::options());
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    // Non-zero bytes where the zero tail was: a torn write, not an end.
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().write_all_at(&[0xab; 4096], end).unwrap();
    let (_, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.truncated.unwrap().2, len - end);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), end);
    assert_eq!(rep.size, 5);
}

#[test]
fn small_batches_go_into_a_zero_tail_that_reopening_keeps_and_closing_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::options();
    let (_, end) = crashed_log(dir.path(), 5, o.clone());
    let (first, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    assert!(len > (1 << 20) && len > end, "preallocated ahead: {len} bytes for frames ending at {end}");
    let (l, rep) = ledger::store::file::open(dir.path(), o).unwrap();
    assert_eq!((rep.size, rep.truncated.is_none()), (5, true), "a zero tail is the end, not a torn write");
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len, "and it is kept");
    l.append(common::entry("alert_ack", Some("INC-1"), 5)).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len, "the next small batch is written in place");
    let (vkeys, hmac) = (l.verifiers(), l.hmac_keys());
    let journal = dir.path().join("journal");
    let input = || ledger::verify::VerifyInput {
        journal_dir: &journal,
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    };
    let rep = ledger::verify::verify(&input()).unwrap();
    assert!(rep.ok, "a running log's zero tail verifies: {}", rep.to_text());
    assert_eq!(rep.entries, 6);
    l.close().unwrap();
    drop(l);
    let mut s = SegmentScanner::open(&seg, first, None).unwrap();
    while s.next_frame().unwrap().is_some() {}
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), s.offset(), "a clean shutdown cuts the tail");
    // A zero tail shorter than a frame header is an end too, for verify and for the open.
    let data = std::fs::read(&seg).unwrap();
    let mut short = data.clone();
    short.extend_from_slice(&[0; 3]);
    std::fs::write(&seg, &short).unwrap();
    assert!(ledger::verify::verify(&input()).unwrap().ok, "three zero bytes after the frames");
    let j = Journal::open(&journal, 64 << 20).unwrap();
    assert_eq!((j.segment_len(), j.truncated_on_open().is_none()), (data.len() as u64, true));
    drop(j);
    // A non-zero byte after a zero header is damage, named with its offset.
    let mut tailed = data.clone();
    tailed.resize(data.len() + 8192, 0);
    tailed[data.len() + 5000] = 1;
    std::fs::write(&seg, &tailed).unwrap();
    let rep = ledger::verify::verify(&input()).unwrap();
    let f = &rep.findings[0];
    assert_eq!(f.kind, ledger::verify::FindingKind::FrameCorrupt);
    let want = format!("offset {}", data.len() + 5000);
    assert!(f.detail.contains("zero frame header") && f.detail.contains(&want), "{}", f.detail);
}

#[test]
fn corrupted_frame_in_the_middle_stops_the_open_naming_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (offsets, _) = crashed_log(dir.path(), 20, common::options());
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let at = offsets[10];
    b[at as usize + 20] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let err = Journal::open(&dir.path().join("journal"), 64 << 20).unwrap_err();
    match &err {
        JournalError::Corrupt { segment, offset, reason } => {
            assert_eq!(segment, &seg);
            assert_eq!(*offset, at);
            assert!(reason.contains("CRC mismatch") && reason.contains("not a torn write"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = ledger::store::file::open(dir.path(), common::options()).err().expect("open must refuse").to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains(&format!("offset {at}")), "{msg}");
    assert_eq!(std::fs::read(&seg).unwrap(), b, "a refused open changes nothing");
}

#[test]
fn torn_segment_creation_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    crashed_log(dir.path(), 3, common::options());
    // A roll that died after creating the file and writing 5 header bytes.
    let j = dir.path().join("journal");
    std::fs::write(j.join(ledger::journal::segment_name(3)), &ledger::journal::segment_header(3)[..5]).unwrap();
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.size, 3);
    assert_eq!(l.append(common::entry("alert_ack", None, 3)).unwrap().seq, 3);
}

#[test]
fn segments_roll_and_sealed_segments_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.segment_bytes = 4096;
    let l = common::open(dir.path(), o.clone());
    common::fill(&l, 300, 10);
    let segs = list_segments(&dir.path().join("journal")).unwrap();
    assert!(segs.len() > 10, "{} segments", segs.len());
    let sealed: Vec<Vec<u8>> = segs[..segs.len() - 1].iter().map(|(_, p)| std::fs::read(p).unwrap()).collect();
    common::fill(&l, 50, 10);
    for ((_, p), before) in segs.iter().zip(&sealed) {
        assert_eq!(&std::fs::read(p).unwrap(), before, "{} changed", p.display());
    }
    for (first, p) in &segs {
        let mut s = SegmentScanner::open(p, *first, None).unwrap();
        if let Some((_, b)) = s.next_frame().unwrap()
            && let ledger::record::Decoded::Entry(e) = ledger::record::decode(b).unwrap()
        {
            let seq = ledger::leaf::decode_leaf(&e.leaf).unwrap().seq;
            assert_eq!(seq, *first, "segment named after its first entry");
        }
    }
    // Sealing cut the zero tail (FORMAT.md §6.1): a sealed segment ends at its last frame.
    for (first, p) in &segs[..segs.len() - 1] {
        let mut s = SegmentScanner::open(p, *first, None).unwrap();
        while s.next_frame().unwrap().is_some() {}
        assert_eq!(std::fs::metadata(p).unwrap().len(), s.offset(), "{} keeps a zero tail", p.display());
    }
    l.close().unwrap();
    drop(l);
    let (l, _) = ledger::store::file::open(dir.path(), o).unwrap();
    assert_eq!(l.size(), 350);
    assert_eq!(l.get(123).unwrap().leaf.seq, 123);
}

#[test]
fn deleted_index_is_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 500, 50);
    let root = l.latest_checkpoint().checkpoint.root;
    let q = ledger::log::Query { subject: Some("INC-3".into()), limit: 1000, ..Default::default() };
    let before = l.query(&q).unwrap().entries.len();
    l.close().unwrap();
    drop(l);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.caught_up, 500);
    assert_eq!(l.latest_checkpoint().checkpoint.root, root);
    assert_eq!(l.query(&q).unwrap().entries.len(), before);
    let (p, size) = l.prove_inclusion(77, None).unwrap();
    ledger::merkle::verify_inclusion(77, size, &l.get(77).unwrap().leaf_hash, &p, &root).unwrap();
}

#[test]
fn index_ahead_of_the_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 10, 1);
    let lost_from = l.reader().get(8).unwrap();
    l.close().unwrap(); // the index is flushed: it knows all 10 entries
    drop(l);
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let mut s = SegmentScanner::open(&seg, 0, None).unwrap();
    let mut cut = None;
    while let Some((o, b)) = s.next_frame().unwrap() {
        if let ledger::record::Decoded::Entry(e) = ledger::record::decode(b).unwrap()
            && e.leaf == lost_from.leaf_bytes
        {
            cut = Some(o);
        }
    }
    // Acknowledged entries 8 and 9 vanish from the journal (a lost disk write).
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(cut.unwrap()).unwrap();
    drop(f);
    match ledger::store::file::open(dir.path(), common::options()) {
        Err(LedgerError::IndexAhead { indexed: 10, missing: 9 }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("must refuse"),
    }
}

#[test]
fn index_files_that_lost_writes_are_caught_up_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 300, 30);
    let root = l.latest_checkpoint().checkpoint.root;
    l.close().unwrap();
    drop(l);
    // A crash lost the tails of the flat files that sled's meta already counts.
    let cut = |name: &str, len: u64| {
        let f = std::fs::OpenOptions::new().write(true).open(dir.path().join("index").join(name)).unwrap();
        f.set_len(len).unwrap();
    };
    cut("positions.dat", 100 * 64 + 17);
    cut("merkle-04.dat", 3 * 32);
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.caught_up, 300 - 63, "kept what every file covers: 3 nodes at level 4 cover fewer than 64 leaves");
    assert_eq!(l.latest_checkpoint().checkpoint.root, root);
    for seq in [0, 99, 100, 250, 299] {
        let (p, size) = l.prove_inclusion(seq, None).unwrap();
        ledger::merkle::verify_inclusion(seq, size, &l.get(seq).unwrap().leaf_hash, &p, &root).unwrap();
    } // sled already held those entries: the catch-up must not list them twice.
    for desc in [false, true] {
        let q = ledger::log::Query { subject: Some("INC-3".into()), limit: 1000, desc, ..Default::default() };
        let mut got: Vec<u64> = l.query(&q).unwrap().entries.iter().map(|e| e.seq).collect();
        if desc {
            got.reverse();
        }
        assert_eq!(got, (0..300).filter(|s| s % 7 == 3).collect::<Vec<u64>>());
    }
    let r = l.append(common::with_request_id(common::entry("alert_ack", None, 1), "after-crash")).unwrap();
    assert_eq!(r.seq, 300);
}

#[test]
fn a_garbled_index_is_moved_aside_and_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 200, 20);
    let root = l.latest_checkpoint().checkpoint.root;
    l.close().unwrap();
    drop(l);
    for f in std::fs::read_dir(dir.path().join("index/db")).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            let n = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0xA5u8; n.max(64)]).unwrap();
        }
    }
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    let (aside, why) = rep.index_rebuilt.expect("the damage is reported");
    let aside = std::path::PathBuf::from(aside);
    assert!(aside.starts_with(dir.path()) && aside.exists(), "the damaged index is kept for inspection");
    assert!(why.contains("index database"), "{why}");
    assert_eq!((rep.caught_up, l.size()), (200, 200));
    assert_eq!(l.latest_checkpoint().checkpoint.root, root);
    let q = ledger::log::Query { subject: Some("INC-4".into()), limit: 1000, ..Default::default() };
    assert_eq!(l.query(&q).unwrap().entries.len(), (0..200).filter(|s| s % 7 == 4).count());
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_found_by_reads_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.segment_bytes = 4096;
    let l = common::open(dir.path(), o.clone());
    common::fill(&l, 100, 5);
    l.close().unwrap();
    let (vkeys, hmac) = (l.verifiers(), l.hmac_keys());
    drop(l);
    let segs = list_segments(&dir.path().join("journal")).unwrap();
    let (first, sealed) = &segs[1];
    let mut b = std::fs::read(sealed).unwrap();
    b[200] ^= 0x01;
    std::fs::write(sealed, &b).unwrap();
    // The open only scans the newest segment: the log still opens and serves.
    let (l, _) = ledger::store::file::open(dir.path(), o).unwrap();
    let hit = (*first..*first + 10).find(|s| l.get(*s).is_err()).expect("an entry of the damaged frame");
    let err = l.get(hit).unwrap_err().to_string();
    assert!(err.contains(&sealed.display().to_string()) && err.contains("CRC mismatch"), "{err}");
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &dir.path().join("journal"),
        vkeys: &vkeys,
        hmac_keys: Some(&hmac),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    })
    .unwrap();
    let f = &rep.findings[0];
    assert_eq!(f.kind, ledger::verify::FindingKind::FrameCorrupt);
    assert!(f.detail.contains(&sealed.display().to_string()), "{}", f.detail);
    assert!(
        rep.findings.iter().any(|f| f.kind == ledger::verify::FindingKind::SeqMismatch),
        "the entries after the damage are missing"
    );
}

#[test]
fn a_truncated_middle_segment_is_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = common::options();
    o.segment_bytes = 4096;
    let l = common::open(dir.path(), o);
    common::fill(&l, 100, 5);
    l.close().unwrap();
    let (vkeys, latest) = (l.verifiers(), l.latest_checkpoint());
    drop(l);
    let segs = list_segments(&dir.path().join("journal")).unwrap();
    let (_, mid) = &segs[segs.len() / 2];
    let len = std::fs::metadata(mid).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(mid).unwrap().set_len(len / 2).unwrap();
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &dir.path().join("journal"),
        vkeys: &vkeys,
        hmac_keys: None,
        trusted_checkpoint: Some(&latest.note),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(!rep.ok);
    assert_eq!(rep.findings[0].kind, ledger::verify::FindingKind::FrameCorrupt);
    assert!(rep.findings[0].detail.contains("runs past the end"), "{}", rep.findings[0].detail);
    assert!(rep.findings.iter().any(|f| f.kind == ledger::verify::FindingKind::SeqMismatch));
}

/// A crash loses the postings tail (FORMAT.md §10.2) while sled may already
/// hold full lists written after its `indexed_through`: the catch-up
/// re-indexes from the mark and lists no seq twice; a clean close writes
/// the tail out, so the next open catches nothing up.
#[test]
fn a_lost_postings_tail_is_caught_up_without_listing_a_seq_twice() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), common::options());
    common::fill(&l, 400, 50);
    drop(l); // no close: the tail is lost; the category's first three lists of 128 are in sled
    let check = |l: &Ledger| {
        for desc in [false, true] {
            for (category, subject, want) in [
                (Some("stage4_incident"), None, (0..400).collect::<Vec<u64>>()),
                (None, Some("INC-3"), (0..400).filter(|s| s % 7 == 3).collect()),
            ] {
                let q = ledger::log::Query {
                    category: category.map(str::to_owned),
                    subject: subject.map(str::to_owned),
                    limit: 1000,
                    desc,
                    ..Default::default()
                };
                let mut got: Vec<u64> = l.query(&q).unwrap().entries.iter().map(|e| e.seq).collect();
                if desc {
                    got.reverse();
                }
                assert_eq!(got, want, "category {category:?} subject {subject:?} desc {desc}");
            }
        }
    };
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.caught_up, 400, "sled's mark waited for the tail");
    check(&l);
    l.close().unwrap();
    drop(l);
    let (l, rep) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(rep.caught_up, 0, "the close wrote the tail out");
    check(&l);
}

/// A failed sync (the fault store over the file store) fails both pending
/// batches and cuts their frames off the open segment: the file is back at
/// its durable length, zero tail included (without the cut it keeps the
/// batches and 1 MiB of preallocated zeros).
#[test]
fn a_failed_sync_cuts_the_unsynced_frames_off_the_segment() {
    use ledger::store::fault::{FaultPoint, FaultStore};
    let dir = tempfile::tempdir().unwrap();
    let o = common::options();
    let now = (o.clock)();
    let ring = ledger::layout::keyring(dir.path());
    let ring = ledger::keys::Keyring::open_or_create(&ring, &o.origin, now, &o.key_policy).unwrap().0;
    let opened = ledger::store::file::FileStore::open(dir.path(), o.segment_bytes, 0, now).unwrap();
    let (opened, ctl) = FaultStore::wrap(opened);
    let (l, _) = Ledger::open(opened, ring, o).unwrap();
    common::fill(&l, 4, 4);
    let good = l.bundle_parts().unwrap().last().unwrap().len;
    let (_, seg) = list_segments(&dir.path().join("journal")).unwrap().pop().unwrap();
    let batch = |from: u64| (from..from + 3).map(|i| common::entry("alert_ack", Some("INC-1"), i)).collect();
    let (a, b) = (l.begin_batch(batch(4)), l.begin_batch(batch(7)));
    assert!(std::fs::metadata(&seg).unwrap().len() > good, "both batches are written");
    ctl.fail(FaultPoint::BeforeSync, 1);
    for r in b.wait().into_iter().chain(a.wait()) {
        assert!(matches!(r, Err(ledger::AppendError::Storage { .. })), "{r:?}");
    }
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good, "their frames are cut off");
}
