//! The index's bounded-key layouts (FORMAT.md §10): postings lists that
//! grow batch by batch, request-id buckets, and the rebuild of an index
//! written in an older layout.

mod common;

use ledger::log::{Ledger, Query};

/// 1,000 entries in batches of 7 over 3 subjects; some with request ids.
fn filled(dir: &std::path::Path) -> Ledger {
    let l = common::open(dir, common::options());
    let mut seq = 0u64;
    while seq < 1_000 {
        let batch: Vec<_> = (seq..(seq + 7).min(1_000))
            .map(|i| {
                let e = common::entry("stage4_incident", Some(&format!("INC-{}", i % 3)), i);
                if i % 2 == 0 { common::with_request_id(e, &format!("req-{i}")) } else { e }
            })
            .collect();
        seq += batch.len() as u64;
        for r in l.append_batch(batch) {
            r.unwrap();
        }
    }
    l
}

fn subject_seqs(l: &Ledger, subject: &str, from: u64, to: u64, desc: bool, limit: usize) -> Vec<u64> {
    let mut q = Query {
        subject: Some(subject.into()),
        from_seq: Some(from),
        to_seq: Some(to),
        desc,
        limit,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = l.query(&q).unwrap();
        out.extend(page.entries.iter().map(|e| e.seq));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn postings_lists_that_grow_across_batches_answer_every_window() {
    let dir = tempfile::tempdir().unwrap();
    let l = filled(&dir.path().join("log"));
    for (from, to) in [(0, 1_000), (5, 6), (127, 520), (384, 385), (990, 1_000), (300, 300)] {
        for s in 0..3u64 {
            let want: Vec<u64> = (from..to).filter(|i| i % 3 == s).collect();
            let subject = format!("INC-{s}");
            assert_eq!(subject_seqs(&l, &subject, from, to, false, 50), want, "{subject} [{from},{to}) asc");
            let rev: Vec<u64> = want.iter().rev().copied().collect();
            assert_eq!(subject_seqs(&l, &subject, from, to, true, 50), rev, "{subject} [{from},{to}) desc");
        }
    }
    // The per-subject chain link is found from the lists too.
    let e = l.append(common::entry("stage4_incident", Some("INC-1"), 1_000)).unwrap();
    assert_eq!(l.get(e.seq).unwrap().leaf.subject_prev, 997 + 1);
}

#[test]
fn request_ids_dedup_through_the_buckets_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = filled(&data);
    l.close().unwrap();
    drop(l);
    let l = common::open(&data, common::options());
    for i in [0u64, 2, 500, 998] {
        let again = common::with_request_id(
            common::entry("stage4_incident", Some(&format!("INC-{}", i % 3)), i),
            &format!("req-{i}"),
        );
        let r = l.append(again).unwrap();
        assert!(r.duplicate, "req-{i}");
        assert_eq!(r.seq, i);
        let other = common::with_request_id(common::entry("alert_ack", None, i), &format!("req-{i}"));
        let e = l.append(other).unwrap_err();
        assert!(e.to_string().contains(&format!("entry {i}")), "{e}");
    }
    let fresh = common::with_request_id(common::entry("alert_ack", None, 1), "req-1");
    assert!(!l.append(fresh).unwrap().duplicate, "odd seqs had no request id");
}

#[test]
fn an_index_in_the_old_layout_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = filled(&data);
    l.close().unwrap();
    drop(l);
    {
        // sled releases its file lock when its flusher thread ends, shortly
        // after the drop (Index::open waits for it the same way)
        let db = (0..100)
            .find_map(|_| {
                sled::open(data.join("index/db")).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                })
            })
            .expect("sled's lock is released within 2 s");
        db.open_tree("meta").unwrap().remove(b"index_format").unwrap();
        db.flush().unwrap();
    }
    let (l, report) = ledger::store::file::open(&data, common::options()).unwrap();
    let (_, why) = report.index_rebuilt.expect("rebuilt");
    assert!(why.contains("layout 1"), "{why}");
    assert_eq!(report.caught_up, 1_000);
    assert_eq!(subject_seqs(&l, "INC-2", 0, 1_000, false, 1_000).len(), 333);
    assert!(
        l.append(common::with_request_id(common::entry("stage4_incident", Some("INC-0"), 0), "req-0"))
            .unwrap()
            .duplicate
    );
}

/// Request tables that lost their records and their `through` (an OS crash
/// before their sync) are refilled from the journal at the next open.
#[test]
fn request_tables_that_lost_writes_are_refilled_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let l = filled(dir.path());
    l.close().unwrap();
    drop(l);
    let mut tables = 0;
    for e in std::fs::read_dir(dir.path().join("index")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "tbl") {
            let mut b = std::fs::read(&path).unwrap();
            b[16..32].fill(0); // count and through
            b[4096..].fill(0); // every record
            std::fs::write(&path, &b).unwrap();
            tables += 1;
        }
    }
    assert!(tables >= 1);
    let (l, report) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    assert_eq!(report.caught_up, 1_000, "catch-up starts where the tables' through says");
    for i in [0u64, 2, 500, 998] {
        let again = common::with_request_id(
            common::entry("stage4_incident", Some(&format!("INC-{}", i % 3)), i),
            &format!("req-{i}"),
        );
        let r = l.append(again).unwrap();
        assert!(r.duplicate && r.seq == i, "req-{i} found again at {}", r.seq);
    }
    assert_eq!(l.size(), 1_000);
}

/// A request table cut short (its size lost in an OS crash) is damage:
/// the index is moved aside and rebuilt, and request ids dedup again.
#[test]
fn a_truncated_request_table_has_the_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let l = filled(dir.path());
    l.close().unwrap();
    drop(l);
    let table = dir.path().join("index/requests-00.tbl");
    std::fs::OpenOptions::new().write(true).open(&table).unwrap().set_len(10).unwrap();
    let (l, report) = ledger::store::file::open(dir.path(), common::options()).unwrap();
    let (_, why) = report.index_rebuilt.expect("rebuilt");
    assert!(why.contains("requests-00.tbl") && why.contains("shorter than its header"), "{why}");
    let again = common::with_request_id(common::entry("stage4_incident", Some("INC-2"), 2), "req-2");
    assert!(l.append(again).unwrap().duplicate);
}
