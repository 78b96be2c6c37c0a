//! A log as a replica (`Ledger::apply_replica`): a batch another node
//! sequenced is applied only when it verifies, starts at the tip and ends
//! at its signed checkpoint; then the replica serves it like its own
//! (reads, proofs, request-id dedup) and can go on writing after it.

mod common;

use bytes::Bytes;
use ledger::journal::{SEGMENT_HEADER_LEN, encode_frame, parse_frame};
use ledger::keys::Keyring;
use ledger::log::ReplicaError;
use ledger::record::{self, Decoded};
use ledger::store::memory::MemoryDisk;
use ledger::verify::FindingKind;
use ledger::{Ledger, LogOptions};

fn options() -> LogOptions {
    let mut o = common::options();
    o.checkpoint_interval = 10; // history checkpoint frames inside the batch
    o
}

/// A log on a memory disk with the keyring in `dir` (created on first use).
fn log_on(dir: &std::path::Path) -> (Ledger, MemoryDisk) {
    let o = options();
    let (ring, _) =
        Keyring::open_or_create(&dir.join("keyring.json"), &o.origin, 1_767_225_600_000_000_000, &o.key_policy)
            .unwrap();
    let disk = MemoryDisk::new();
    let (l, _) = Ledger::open(disk.open().unwrap(), ring, o).unwrap();
    (l, disk)
}

/// A leader with 25 entries (one with a request id); its journal frames
/// and head checkpoint.
fn leader(dir: &std::path::Path) -> (Ledger, Bytes, String) {
    let (l, disk) = log_on(dir);
    common::fill(&l, 24, 7);
    l.append(common::with_request_id(common::entry("stage4_incident", Some("INC-1"), 99), "req-99")).unwrap();
    let frames = Bytes::from(disk.journal()[SEGMENT_HEADER_LEN as usize..].to_vec());
    let head = l.latest_checkpoint().note.clone();
    (l, frames, head)
}

/// The frames with entry `seq`'s payload changed (frame CRC recomputed).
fn tamper_payload(frames: &Bytes, seq: u64) -> Bytes {
    let (mut out, mut at, mut n) = (Vec::new(), 0, 0u64);
    while let Some((body, len)) = parse_frame(&frames[at..]).unwrap() {
        match record::decode(Bytes::copy_from_slice(body)).unwrap() {
            Decoded::Entry(mut e) if n == seq => {
                let mut p = e.payload.to_vec();
                p[2] ^= 1;
                e.payload = p.into();
                encode_frame(&record::encode_entry(e), &mut out);
                n += 1;
            }
            Decoded::Entry(_) => {
                out.extend_from_slice(&frames[at..at + len]);
                n += 1;
            }
            Decoded::Checkpoint(_) => out.extend_from_slice(&frames[at..at + len]),
        }
        at += len;
        if at == frames.len() {
            break;
        }
    }
    out.into()
}

#[test]
fn a_verified_batch_is_served_like_the_logs_own_and_writing_goes_on_after_it() {
    let keys = tempfile::tempdir().unwrap();
    let (l, frames, head) = leader(keys.path());
    let (r, _) = log_on(keys.path());
    assert_eq!(r.apply_replica(0, frames, &head).unwrap(), 25);
    assert_eq!(r.latest_checkpoint().checkpoint, l.latest_checkpoint().checkpoint);
    assert_eq!(r.get(24).unwrap().leaf, l.get(24).unwrap().leaf);
    let proof = r.prove_inclusion(3, Some(25)).unwrap();
    assert_eq!(proof, l.prove_inclusion(3, Some(25)).unwrap());
    // dedup caught up: the leader's request id returns the original entry
    let again = r.append(common::with_request_id(common::entry("stage4_incident", Some("INC-1"), 99), "req-99"));
    let again = again.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.seq, 24);
    // the subject chain goes on from the replicated entries
    let next = r.append(common::entry("stage4_incident", Some("INC-1"), 100)).unwrap();
    assert_eq!(next.seq, 25);
    assert_eq!(r.get(25).unwrap().leaf.subject_prev, 25, "INC-1's previous entry is seq 24");
    assert!(r.get(25).unwrap().leaf.recorded_at >= l.get(24).unwrap().leaf.recorded_at);
}

#[test]
fn a_batch_that_does_not_verify_or_follow_the_tip_changes_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let (_l, frames, head) = leader(keys.path());
    let (r, _) = log_on(keys.path());

    match r.apply_replica(5, frames.clone(), &head) {
        Err(ReplicaError::NotAtTip { first_seq: 5, size: 0 }) => {}
        other => panic!("expected NotAtTip, got {other:?}"),
    }
    match r.apply_replica(0, tamper_payload(&frames, 7), &head) {
        Err(ReplicaError::Verify { finding, .. }) => {
            assert_eq!((finding.kind, finding.seq), (FindingKind::PayloadMismatch, Some(7)), "{finding:?}");
        }
        other => panic!("expected a payload mismatch at 7, got {other:?}"),
    }
    // a head signed by a key the replica does not hold
    let other_keys = tempfile::tempdir().unwrap();
    let (_, _, foreign) = leader(other_keys.path());
    match r.apply_replica(0, frames.clone(), &foreign) {
        Err(ReplicaError::Verify { finding, .. }) => {
            assert_eq!((finding.kind, finding.seq), (FindingKind::CheckpointUntrusted, Some(25)), "{finding:?}");
        }
        other => panic!("expected an untrusted head, got {other:?}"),
    }
    // a batch cut short: its head names more entries than it holds
    let (cut, _) = parse_frame(&frames).unwrap().unwrap();
    let cut_len = cut.len() + ledger::journal::FRAME_HEADER_LEN as usize;
    match r.apply_replica(0, frames.slice(..cut_len), &head) {
        Err(ReplicaError::Verify { finding, .. }) => {
            assert_eq!((finding.kind, finding.seq), (FindingKind::CheckpointMismatch, Some(1)), "{finding:?}");
        }
        other => panic!("expected a checkpoint mismatch, got {other:?}"),
    }
    assert_eq!(r.size(), 0, "nothing of a refused batch was applied");
    assert_eq!(r.apply_replica(0, frames, &head).unwrap(), 25, "the genuine batch still applies");
}

/// The journal's frames (after the segment header).
fn frames_of(disk: &MemoryDisk) -> Bytes {
    Bytes::from(disk.journal()[SEGMENT_HEADER_LEN as usize..].to_vec())
}

/// A log with 25 entries, before and after entry 7 is redacted by entry
/// 25: the 25 entries' frames as first written and as rewritten, the
/// redaction's frames, and the heads at 25 and 26.
struct Redacted {
    original: Bytes,
    rewritten: Bytes,
    tail: Bytes,
    head25: String,
    head26: String,
}

fn redacted_leader(dir: &std::path::Path) -> Redacted {
    let (l, disk) = log_on(dir);
    common::fill(&l, 25, 7);
    let (original, head25) = (frames_of(&disk), l.latest_checkpoint().note.clone());
    let admin = ledger::Actor::new("admin-1", &Default::default()).unwrap();
    assert_eq!(l.redact(&admin, 7, "GDPR erasure, ticket PRIV-9").unwrap().seq, 25);
    let after = frames_of(&disk);
    Redacted {
        rewritten: after.slice(..original.len()),
        tail: after.slice(original.len()..),
        original,
        head25,
        head26: l.latest_checkpoint().note.clone(),
    }
}

#[test]
fn a_replica_replays_a_redaction_and_checks_a_copied_redacted_record_against_the_entry_that_follows() {
    let keys = tempfile::tempdir().unwrap();
    let x = redacted_leader(keys.path());
    assert_ne!(x.original, x.rewritten, "the leader rewrote entry 7's frame");

    // a replica that holds entry 7 with its payload redacts it when it replays the redaction
    let (a, _) = log_on(keys.path());
    a.apply_replica(0, x.original.clone(), &x.head25).unwrap();
    assert!(!a.get(7).unwrap().payload.is_empty());
    a.apply_replica(25, x.tail.clone(), &x.head26).unwrap();
    let e = a.get(7).unwrap();
    assert!(e.payload.is_empty(), "redacted on the replica");
    assert_eq!(e.redacted_by, 26, "by entry 25");

    // one that copies the rewritten frames first holds the claim until the redaction arrives
    let (b, _) = log_on(keys.path());
    b.apply_replica(0, x.rewritten.clone(), &x.head25).unwrap();
    assert_eq!(b.get(7).unwrap().redacted_by, 26);
    assert_eq!(b.apply_replica(25, x.tail.clone(), &x.head26).unwrap(), 26);

    // and refuses a next entry that is not that redaction, naming the stripped entry
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(keys.path().join("keyring.json"), other.path().join("keyring.json")).unwrap();
    let (fork, fork_disk) = log_on(other.path());
    common::fill(&fork, 25, 7);
    assert_eq!(fork.latest_checkpoint().note, x.head25, "the same 25 entries (a deterministic clock)");
    fork.append(common::entry("stage4_incident", Some("INC-1"), 1000)).unwrap();
    let fork_tail = frames_of(&fork_disk).slice(x.original.len()..);
    let (c, _) = log_on(keys.path());
    c.apply_replica(0, x.rewritten, &x.head25).unwrap();
    match c.apply_replica(25, fork_tail, &fork.latest_checkpoint().note) {
        Err(ReplicaError::Verify { finding, .. }) => {
            assert_eq!((finding.kind, finding.seq), (FindingKind::RedactionUnbacked, Some(7)), "{finding:?}");
        }
        other => panic!("expected an unbacked redaction of 7, got {other:?}"),
    }
    assert_eq!(c.size(), 25);
}

#[test]
fn a_rotation_to_staged_keys_waits_on_a_replica_without_them_then_switches_its_keys() {
    let (leader_keys, replica_keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (l, disk) = log_on(leader_keys.path());
    std::fs::copy(leader_keys.path().join("keyring.json"), replica_keys.path().join("keyring.json")).unwrap();
    let (r, _) = log_on(replica_keys.path());
    common::fill(&l, 5, 5);
    let (first, head5) = (frames_of(&disk), l.latest_checkpoint().note.clone());
    let admin = ledger::Actor::new("admin-1", &Default::default()).unwrap();
    let refused = l.rotate_to_staged_keys(&admin, "30-day rotation").unwrap_err().to_string();
    assert!(refused.contains("no staged keys"), "{refused}");
    assert_eq!(l.size(), 5, "nothing written");

    // the operator stages a pair in the leader's keyring file; the leader reads it at the rotation
    let ring_path = leader_keys.path().join("keyring.json");
    let staged = Keyring::load(&ring_path).unwrap().stage(1_767_225_600_000_000_000, &Default::default()).unwrap();
    let staged_file = std::fs::read(&ring_path).unwrap();
    let (receipt, rotation) = l.rotate_to_staged_keys(&admin, "30-day rotation").unwrap();
    assert_eq!((&rotation.new_ed25519_id, &rotation.new_hmac_id), (&staged.ed25519_id, &staged.hmac_id));
    assert_eq!(receipt.seq, 5);
    let (with_rotation, head6) = (frames_of(&disk), l.latest_checkpoint().note.clone());
    common::fill(&l, 3, 3);
    let all = frames_of(&disk);
    let rot = with_rotation.slice(first.len()..);
    let tail = all.slice(with_rotation.len()..);

    // the replica has the first batch; the rotation's is tagged with a key it lacks: it waits
    r.apply_replica(0, first, &head5).unwrap();
    match r.apply_replica(5, rot.clone(), &head6) {
        Err(ReplicaError::KeysMissing { first_seq: 5, .. }) => {}
        other => panic!("expected KeysMissing at 5, got {other:?}"),
    }
    assert_eq!(r.size(), 5);
    assert!(r.stopped().is_none(), "waiting is not a failure");

    // with the staged keyring copied there, it applies the rotation and switches its own keys
    std::fs::write(replica_keys.path().join("keyring.json"), &staged_file).unwrap();
    assert_eq!(r.apply_replica(5, rot, &head6).unwrap(), 6);
    let on_disk = Keyring::load(&replica_keys.path().join("keyring.json")).unwrap();
    assert_eq!(on_disk.active_hmac().id(), staged.hmac_id, "the replica's keyring has the new keys active");
    assert_eq!(r.apply_replica(6, tail, &l.latest_checkpoint().note).unwrap(), 9);
}
