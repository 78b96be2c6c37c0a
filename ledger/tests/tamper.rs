//! Tamper matrix: each attack on a journal copy gives exactly the expected
//! finding (kind and seq). Frames are rewritten with valid CRCs, as a
//! deliberate attacker would; "resealed" cases model an insider who also
//! holds the HMAC key and rebuilds the hash chain, but not the Ed25519 key.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ledger::hash::{leaf_hash, sha256};
use ledger::hmac_tag::HmacKey;
use ledger::journal::{list_segments, read_records, write_records};
use ledger::keys::HmacKeySet;
use ledger::leaf::{Leaf, decode_leaf, encode_leaf};
use ledger::note::{Checkpoint, NoteSigner, NoteVerifier};
use ledger::record::{Decoded, EntryRecord};
use ledger::verify::{FindingKind as K, Report, VerifyInput, verify};
use prost::Message as _;

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    vkeys: Vec<NoteVerifier>,
    hmac: HmacKeySet,
    hmac_key: HmacKey,
    signer: NoteSigner,
    latest: String,
}

/// 50 entries in batches of 10, a history checkpoint after each batch.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let l = common::stopped_log_of_50(&data);
    let ring = ledger::keys::Keyring::load(&data.join("keys/keyring.json")).unwrap();
    let signer = ring.active_signers()[0].clone();
    let hmac_key = ring.active_hmac().clone();
    Fixture {
        vkeys: l.verifiers(),
        hmac: l.hmac_keys(),
        hmac_key,
        signer,
        latest: l.latest_checkpoint().note.clone(),
        data,
        _dir: dir,
    }
}

/// A copy of the fixture's journal, edited by `f`.
fn tampered(fx: &Fixture, f: impl FnOnce(&mut Vec<Decoded>)) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    let mut segs = read_records(&fx.data.join("journal")).unwrap();
    assert_eq!(segs.len(), 1);
    f(&mut segs[0].1);
    write_records(&j, &segs).unwrap();
    (t, j)
}

fn entry_mut(recs: &mut [Decoded], seq: u64) -> &mut EntryRecord {
    recs.iter_mut()
        .filter_map(|r| if let Decoded::Entry(e) = r { Some(e) } else { None })
        .find(|e| decode_leaf(&e.leaf).unwrap().seq == seq)
        .unwrap()
}

fn pos_of(recs: &[Decoded], seq: u64) -> usize {
    recs.iter().position(|r| matches!(r, Decoded::Entry(e) if decode_leaf(&e.leaf).unwrap().seq == seq)).unwrap()
}

fn set_leaf(e: &mut EntryRecord, f: impl FnOnce(&mut Leaf)) {
    let mut l = Leaf::decode(e.leaf.clone()).unwrap();
    f(&mut l);
    e.leaf = Bytes::from(encode_leaf(&l));
}

/// Rebuilds prev_hash links and HMAC tags after edits (the insider case).
fn reseal(recs: &mut [Decoded], key: &HmacKey, edit: impl Fn(u64, &mut Leaf)) {
    let mut prev = [0u8; 32];
    for r in recs.iter_mut() {
        let Decoded::Entry(e) = r else { continue };
        let mut l = Leaf::decode(e.leaf.clone()).unwrap();
        edit(l.seq, &mut l);
        l.prev_hash = prev.to_vec();
        e.leaf = Bytes::from(encode_leaf(&l));
        prev = leaf_hash(&e.leaf);
        e.hmac = Bytes::copy_from_slice(&key.tag(&prev));
    }
}

fn run(fx: &Fixture, journal: &Path, trusted: Option<&str>) -> Report {
    verify(&VerifyInput {
        journal_dir: journal,
        vkeys: &fx.vkeys,
        hmac_keys: Some(&fx.hmac),
        trusted_checkpoint: trusted,
        progress: None,
        start: None,
    })
    .unwrap()
}

/// Verifies the fixture's journal with an auditor's own HMAC key file.
fn run_with_keys(fx: &Fixture, keys: &HmacKeySet) -> Report {
    verify(&VerifyInput {
        journal_dir: &fx.data.join("journal"),
        vkeys: &fx.vkeys,
        hmac_keys: Some(keys),
        trusted_checkpoint: None,
        progress: None,
        start: None,
    })
    .unwrap()
}

/// (kind, seq) of every finding.
fn found(r: &Report) -> Vec<(K, Option<u64>)> {
    r.findings.iter().map(|f| (f.kind, f.seq)).collect()
}

/// (kind, seq) of every finding except checkpoint mismatches after `from`
/// (which any change to the tree must cause, since the attacker cannot sign).
fn found_besides_checkpoints(r: &Report, from: u64) -> Vec<(K, Option<u64>)> {
    for f in r.of_kind(K::CheckpointMismatch) {
        assert!(f.seq.unwrap() > from, "checkpoint before the change flagged: {f:?}");
    }
    assert!(!r.of_kind(K::CheckpointMismatch).is_empty(), "the checkpoints after the change must disagree");
    r.findings.iter().filter(|f| f.kind != K::CheckpointMismatch).map(|f| (f.kind, f.seq)).collect()
}

#[test]
fn untouched_journal_is_valid() {
    let fx = fixture();
    let r = run(&fx, &fx.data.join("journal"), Some(&fx.latest));
    assert!(r.ok, "{}", r.to_text());
    assert_eq!((r.entries, r.checkpoints, r.hmac_checked), (50, 5, 50));
    assert_eq!((r.warning_count, r.warnings.len(), r.warning_counts.len()), (0, 0, 0), "{}", r.to_text());
}

#[test]
fn payload_byte_changed() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let e = entry_mut(recs, 5);
        let mut p = e.payload.to_vec();
        p[2] ^= 1;
        e.payload = p.into();
    });
    assert_eq!(found(&run(&fx, &j, None)), vec![(K::PayloadMismatch, Some(5))]);
}

#[test]
fn raw_byte_flip_is_a_corrupt_frame() {
    let fx = fixture();
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    std::fs::create_dir_all(&j).unwrap();
    let (_, src) = &list_segments(&fx.data.join("journal")).unwrap()[0];
    let mut b = std::fs::read(src).unwrap();
    b[100] ^= 0x40;
    std::fs::write(j.join(src.file_name().unwrap()), b).unwrap();
    let r = run(&fx, &j, Some(&fx.latest));
    assert_eq!(r.findings[0].kind, K::FrameCorrupt);
    assert!(r.findings[0].detail.contains("offset 16"), "{}", r.findings[0].detail);
    assert_eq!(r.entries, 0, "nothing after a damaged frame is trusted in that segment");
    assert!(found(&r).contains(&(K::Truncated, Some(0))));
}

#[test]
fn leaf_field_changed() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| set_leaf(entry_mut(recs, 5), |l| l.category = "override".into()));
    let r = run(&fx, &j, None);
    assert_eq!(found_besides_checkpoints(&r, 5), vec![(K::HmacMismatch, Some(5)), (K::PrevHashMismatch, Some(6))]);
}

#[test]
fn entry_deleted() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let i = pos_of(recs, 5);
        recs.remove(i);
    });
    let r = run(&fx, &j, None);
    assert_eq!(r.findings[0].kind, K::SeqMismatch);
    assert_eq!(r.findings[0].seq, Some(5));
    assert!(r.findings[0].detail.contains("expected seq 5, found seq 6"), "{}", r.findings[0].detail);
    assert_eq!(found_besides_checkpoints(&r, 5)[..2], [(K::SeqMismatch, Some(5)), (K::PrevHashMismatch, Some(6))]);
}

#[test]
fn two_entries_swapped() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let (a, b) = (pos_of(recs, 5), pos_of(recs, 6));
        recs.swap(a, b);
    });
    let r = run(&fx, &j, None);
    assert_eq!(r.findings[0].kind, K::SeqMismatch);
    assert_eq!(r.findings[0].seq, Some(5));
    assert!(r.findings[0].detail.contains("found seq 6"));
}

#[test]
fn entry_inserted() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let i = pos_of(recs, 5);
        let Decoded::Entry(mut forged) = recs[i].clone() else { unreachable!() };
        let payload = br#"{"step":5,"note":"forged"}"#.to_vec();
        set_leaf(&mut forged, |l| {
            l.payload_sha256 = sha256(&payload).to_vec();
            l.payload_size = payload.len() as u64;
        });
        forged.payload = payload.into();
        recs.insert(i, Decoded::Entry(forged));
    });
    let r = run(&fx, &j, None);
    assert_eq!(r.findings[0].kind, K::HmacMismatch, "{}", r.to_text());
    assert_eq!(r.findings[0].seq, Some(5));
    assert!(found(&r).contains(&(K::SeqMismatch, Some(6))));
}

#[test]
fn tail_truncated_below_a_trusted_checkpoint() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let i = pos_of(recs, 40);
        recs.truncate(i);
    });
    assert_eq!(found(&run(&fx, &j, Some(&fx.latest))), vec![(K::Truncated, Some(40))]);
    assert!(run(&fx, &j, None).ok, "without a trusted checkpoint a clean truncation is undetectable");
}

#[test]
fn hmac_tag_forged() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| entry_mut(recs, 5).hmac = Bytes::from(vec![7u8; 32]));
    assert_eq!(found(&run(&fx, &j, None)), vec![(K::HmacMismatch, Some(5))]);
}

#[test]
fn an_hmac_key_used_outside_its_validity_is_reported_per_entry() {
    let fx = fixture();
    // The log's own HMAC key, but with a validity window that starts after
    // every entry was recorded.
    let ring = std::fs::read_to_string(fx.data.join("keys/keyring.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&ring).unwrap();
    for k in v["keys"].as_array_mut().unwrap() {
        if k["kind"] == "hmac-sha256" {
            k["created_at_ns"] = serde_json::json!(9_000_000_000_000_000_000i64);
            k["not_after_ns"] = serde_json::json!(9_100_000_000_000_000_000i64);
        }
    }
    let keys = HmacKeySet::from_json(Path::new("auditor.json"), &v.to_string()).unwrap();
    let r = run_with_keys(&fx, &keys);
    assert_eq!((r.hmac_checked, r.finding_count), (50, 50), "{}", r.to_text());
    assert_eq!(r.finding_counts.get(&K::HmacKeyNotValid), Some(&50));
    assert_eq!(found(&r)[..2], [(K::HmacKeyNotValid, Some(0)), (K::HmacKeyNotValid, Some(1))]);
    assert!(r.findings[0].detail.contains("was not valid at recorded_at"), "{}", r.findings[0].detail);
}

#[test]
fn wrong_hmac_key() {
    let fx = fixture();
    let other = HmacKey::new([9u8; 32]);
    let json = format!(
        r#"{{"version":1,"keys":[{{"id":"{}","kind":"hmac-sha256","secret":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=","created_at_ns":0,"not_after_ns":9000000000000000000,"state":"active"}}]}}"#,
        other.id()
    );
    let keys = HmacKeySet::from_json(Path::new("auditor.json"), &json).unwrap();
    let r = run_with_keys(&fx, &keys);
    assert_eq!(r.finding_count, 50);
    assert_eq!(r.finding_counts.get(&K::HmacKeyUnknown), Some(&50));
    assert_eq!(r.findings[0].seq, Some(0));
    // A key file that claims the log's key id with another secret is refused outright.
    let forged = json.replace(other.id(), fx.hmac_key.id());
    let err = HmacKeySet::from_json(Path::new("auditor.json"), &forged).unwrap_err();
    assert!(err.to_string().contains("id does not match the key"), "{err}");
}

#[test]
fn checkpoint_signed_by_an_unknown_key() {
    let fx = fixture();
    let stranger = NoteSigner::from_seed("ledger.test/default", &[5u8; 32]).unwrap();
    let (_t, j) = tampered(&fx, |recs| {
        let i = recs.iter().position(|r| matches!(r, Decoded::Checkpoint(_))).unwrap();
        let Decoded::Checkpoint(n) = &recs[i] else { unreachable!() };
        let cp = Checkpoint::open(n, &fx.vkeys).unwrap();
        recs[i] = Decoded::Checkpoint(cp.sign(&[&stranger]));
    });
    assert_eq!(found(&run(&fx, &j, None)), vec![(K::CheckpointUntrusted, Some(10))]);
}

#[test]
fn time_going_backwards() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        reseal(recs, &fx.hmac_key, |seq, l| {
            if seq == 5 {
                l.recorded_at -= 1
            }
        })
    });
    assert_eq!(found_besides_checkpoints(&run(&fx, &j, None), 5), vec![(K::TimeBackwards, Some(5))]);
}

#[test]
fn subject_chain_broken() {
    let fx = fixture();
    // seq 12 has subject INC-5, whose previous entry is seq 5 (subject_prev 6).
    let (_t, j) = tampered(&fx, |recs| {
        reseal(recs, &fx.hmac_key, |seq, l| {
            if seq == 12 {
                l.subject_prev = 0
            }
        })
    });
    let r = run(&fx, &j, None);
    assert_eq!(found_besides_checkpoints(&r, 12), vec![(K::SubjectChainBroken, Some(12))]);
    assert!(r.findings.iter().any(|f| f.detail.contains("previous entry of this subject is seq 5")));
}

#[test]
fn two_inconsistent_checkpoints_split_view() {
    let fx = fixture();
    // The log (its own key) signs a checkpoint of another history at size 30.
    let fork = Checkpoint { origin: "ledger.test/default".into(), size: 30, root: sha256(b"another history") }
        .sign(&[&fx.signer]);
    assert_eq!(found(&run(&fx, &fx.data.join("journal"), Some(&fork))), vec![(K::SplitView, Some(30))]);
    // Two checkpoints in the journal itself that disagree with each other.
    let (_t, j) = tampered(&fx, |recs| {
        let i = recs.iter().rposition(|r| matches!(r, Decoded::Checkpoint(_))).unwrap();
        let c = Checkpoint { origin: "ledger.test/default".into(), size: 50, root: sha256(b"fork") };
        recs[i] = Decoded::Checkpoint(c.sign(&[&fx.signer]));
    });
    assert_eq!(found(&run(&fx, &j, None)), vec![(K::CheckpointMismatch, Some(50))]);
}

#[test]
fn non_canonical_leaf_is_rejected() {
    let fx = fixture();
    let (_t, j) = tampered(&fx, |recs| {
        let e = entry_mut(recs, 5);
        let mut b = e.leaf.to_vec();
        // Field 1 (version) written again at the end: decodes to the same leaf.
        b.extend_from_slice(&[0x08, 0x01]);
        e.leaf = b.into();
    });
    let r = run(&fx, &j, None);
    assert_eq!(r.findings[0].kind, K::LeafNotCanonical);
    assert_eq!(r.findings[0].seq, Some(5));
}

#[test]
fn payload_stripped_with_a_forged_redaction_mark() {
    let fx = fixture();
    // Entry 7 claims to be redacted by entry 9, which is an ordinary entry;
    // entry 12 claims a redaction entry beyond the journal's end.
    let (_t, j) = tampered(&fx, |recs| {
        for (seq, by) in [(7u64, 10u64), (12, 1_000)] {
            let e = entry_mut(recs, seq);
            e.payload = Bytes::new();
            e.redacted_by = by;
        }
    });
    let r = run(&fx, &j, None);
    assert_eq!(found(&r), vec![(K::RedactionUnbacked, Some(7)), (K::RedactionUnbacked, Some(12))]);
    let seqs: Vec<u64> = r.redacted.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, vec![7, 12], "listed as redacted, and each flagged as unbacked");
}

#[test]
fn a_redaction_mark_pointing_backwards_is_unbacked() {
    let fx = fixture();
    // Entry 20 claims to be redacted by entry 3, which came before it.
    let (_t, j) = tampered(&fx, |recs| {
        let e = entry_mut(recs, 20);
        e.payload = Bytes::new();
        e.redacted_by = 4;
    });
    let r = run(&fx, &j, None);
    assert_eq!(found(&r), vec![(K::RedactionUnbacked, Some(20))]);
    assert!(r.findings[0].detail.contains("which is not after this entry"), "{}", r.findings[0].detail);
}
