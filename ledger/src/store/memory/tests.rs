//! The memory store's own tests (the conformance suite runs it too).

use super::*;
use crate::entry::EntryInput;
use crate::journal::SEGMENT_HEADER_LEN;
use crate::leaf::{Sequencing, build_leaf, encode_leaf};
use crate::log::SignedCheckpoint;
use crate::merkle::CompactRange;
use crate::note::Checkpoint;
use crate::record::EntryRecord;
use crate::store::BatchEntry;

/// A batch of `n` entries after `range` (pushed into it), with request
/// ids `req-<seq>` and subjects cycling over 3.
fn batch(range: &mut CompactRange, n: u64, history: bool) -> WriteBatch {
    let first_seq = range.size();
    let (mut entries, mut nodes, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for seq in first_seq..first_seq + n {
        let input = EntryInput {
            category: "alert_ack".into(),
            subject: format!("S-{}", seq % 3),
            payload: format!(r#"{{"n":{seq},"pad":"xxxxxxxxxxxxxxxx"}}"#).into_bytes(),
            request_id: format!("req-{seq}"),
            ..Default::default()
        };
        let e = input.validate("svc", &Default::default()).expect("valid");
        let seqs = Sequencing { seq, recorded_at: seq as i64, prev_hash: [0; 32], subject_prev: 0 };
        let leaf = build_leaf(&e, seqs);
        let leaf_bytes = Bytes::from(encode_leaf(&leaf));
        let hash = crate::hash::leaf_hash(&leaf_bytes);
        let rec = EntryRecord {
            leaf: leaf_bytes,
            payload: Bytes::from(format!(r#"{{"n":{seq},"pad":"xxxxxxxxxxxxxxxx"}}"#)),
            hmac_key_id: "k".into(),
            hmac: Bytes::from_static(&[1; 32]),
            redacted_by: 0,
            padding: Bytes::new(),
        };
        range.push(hash, |l, i, h| {
            if l > 0 {
                nodes.push((l, i, *h))
            }
        });
        let request_hash = Some(crate::store::request_hash(&leaf.request_id));
        let body = record::encode_entry(rec);
        encode_frame(&body, &mut frames);
        let frame_len = (FRAME_HEADER_LEN as usize + body.len()) as u32;
        entries.push(BatchEntry { frame_len, leaf, leaf_hash: hash, request_hash });
    }
    let checkpoint = Checkpoint { origin: "test".into(), size: range.size(), root: range.root() };
    let note = format!("note {}", range.size());
    if history {
        encode_frame(&record::encode_checkpoint(&note), &mut frames);
    }
    let checkpoint = Arc::new(SignedCheckpoint { checkpoint, note: note.clone() });
    WriteBatch { first_seq, frames, entries, nodes, history: history.then_some(note), checkpoint, replicated: false }
}

#[test]
fn a_second_writer_is_locked_out_until_the_first_is_dropped() {
    let disk = MemoryDisk::new();
    let first = disk.open().expect("open");
    let err = disk.open().err().expect("a second open while the writer lives");
    assert_eq!(err.kind, StoreErrorKind::Locked);
    drop(first.writer);
    assert!(disk.open().is_ok(), "the lease went with the writer");
}

#[test]
fn a_batch_is_durable_after_sync_and_readable_after_publish_only() {
    let disk = MemoryDisk::new();
    let o = disk.open().unwrap();
    let (store, mut w) = (o.store, o.writer);
    let vis = Arc::new(Visibility::new(batch(&mut CompactRange::new(), 0, false).checkpoint));
    store.start(vis.clone()).unwrap();
    let mut range = CompactRange::new();
    let b = batch(&mut range, 5, true);
    w.write(b).unwrap();
    assert_eq!(disk.journal().len(), SEGMENT_HEADER_LEN as usize, "written is not durable");
    store.sync().unwrap();
    assert!(disk.journal().len() > SEGMENT_HEADER_LEN as usize, "synced is on the disk");
    assert_eq!(store.leaf_meta(0).unwrap(), None, "not readable before publish");
    store.publish(5);
    assert_eq!(vis.indexed(), 5);
    let (meta, rec) = store.record(4).unwrap().expect("published");
    let record::Decoded::Entry(e) = record::decode(rec).unwrap() else { panic!("an entry") };
    assert_eq!(crate::hash::leaf_hash(&e.leaf), meta.leaf_hash);
    assert_eq!(store.node(2, 0).unwrap(), CompactRange::from_source(&NodesOf(&*store), 4).ok().map(|r| r.root()));
    assert_eq!(store.scan(Secondary::Subject, "S-1", 0, 5, true, 10).unwrap(), vec![4, 1]);
    assert_eq!(store.request_candidates(crate::store::request_hash("req-3")).unwrap(), vec![3]);
    assert_eq!(store.checkpoints(0, 10).unwrap(), vec![(5, "note 5".to_owned())]);
    assert_eq!(store.leaf_meta(5).unwrap(), None);
}

struct NodesOf<'a>(&'a dyn LogStore);
impl crate::merkle::NodeSource for NodesOf<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, crate::merkle::ProofError> {
        self.0.node(level, index).ok().flatten().ok_or(crate::merkle::ProofError::MissingNode { level, index })
    }
}

#[test]
fn discarded_batches_never_reach_the_disk_and_a_reopen_rebuilds_the_rest() {
    let disk = MemoryDisk::new();
    let o = disk.open().unwrap();
    let (store, mut w) = (o.store, o.writer);
    let mut range = CompactRange::new();
    w.write(batch(&mut range, 3, false)).unwrap();
    store.sync().unwrap();
    store.publish(3);
    let root3 = range.root();
    w.write(batch(&mut range, 4, true)).unwrap();
    store.discard_unsynced();
    store.sync().unwrap();
    let mut redacted = store.record(1).unwrap().unwrap().1.to_vec();
    let last = redacted.len() - 3;
    redacted[last] ^= 0x20; // same length, other bytes ('x' → 'X')
    w.replace_record(1, &redacted).unwrap();
    drop((store, w));
    let o = disk.open().unwrap();
    assert_eq!(o.report.size, 3, "the discarded batch is gone");
    assert_eq!(CompactRange::from_source(&NodesOf(&*o.store), 3).unwrap().root(), root3);
    assert_eq!(&o.store.record(1).unwrap().unwrap().1[..], &redacted[..], "the frame's CRC was re-encoded");
    assert!(o.store.checkpoints(0, 10).unwrap().is_empty(), "the discarded history went with its batch");
}

#[test]
fn blobs_are_checked_limited_and_kept_across_opens() {
    let disk = MemoryDisk::new();
    let o = disk.open().unwrap();
    let blobs = o.store.blobs();
    let stored = blobs.put(&b"hello artifact"[..], 100).unwrap();
    assert_eq!(blobs.get(&stored.blake3).unwrap(), b"hello artifact");
    let err = blobs.put(&[7u8; 101][..], 100).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::TooLarge { limit: 100 });
    assert_eq!(blobs.verify(&[9; 32]).unwrap_err().kind, StoreErrorKind::NotFound);
    lock(&disk.state).blobs.get_mut(&stored.blake3).unwrap()[0] ^= 1;
    assert_eq!(blobs.verify(&stored.blake3).unwrap_err().kind, StoreErrorKind::Damaged);
    drop(o);
    let o = disk.open().unwrap();
    assert_eq!(o.store.blobs().verify(&stored.blake3).unwrap_err().kind, StoreErrorKind::Damaged, "same disk");
}
