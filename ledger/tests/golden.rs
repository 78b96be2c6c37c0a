//! Our own golden vectors (tests/vectors/ledger-v1.json): a deterministic
//! five-entry log with fixed keys and times, every byte an independent
//! verifier needs. This test regenerates them and diffs; set
//! LEDGER_REGENERATE_VECTORS=1 to rewrite the file after a deliberate change
//! (which is a format change: see docs/FORMAT.md).

use std::path::Path;

use ledger::entry::{ArtifactRef, EntryInput, Limits};
use ledger::hash::{leaf_hash, sha256};
use ledger::hmac_tag::HmacKey;
use ledger::journal::{encode_frame, segment_header};
use ledger::leaf::{Sequencing, build_leaf, encode_leaf};
use ledger::merkle::{CompactRange, NodeSource, ProofError, consistency_proof, inclusion_proof};
use ledger::note::{Checkpoint, NoteSigner};
use ledger::receipt::TlogProof;
use ledger::record::{EntryRecord, encode_checkpoint, encode_entry};
use serde_json::json;

struct Mem(std::collections::HashMap<(u8, u64), [u8; 32]>);
impl NodeSource for Mem {
    fn node(&self, level: u8, index: u64) -> Result<[u8; 32], ProofError> {
        self.0.get(&(level, index)).copied().ok_or(ProofError::MissingNode { level, index })
    }
}

fn generate() -> serde_json::Value {
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap().try_into().unwrap();
    let origin = "ledger.local/vectors";
    let signer = NoteSigner::from_seed(origin, &seed).unwrap();
    let hmac = HmacKey::new([0x11; 32]);
    let t0: i64 = 1_767_225_600_000_000_000;
    let art =
        ArtifactRef::new(0, blake3::hash(b"slides").as_bytes(), &sha256(b"slides"), 6, "slides.pdf", "application/pdf")
            .unwrap();
    let inputs = [
        (
            "stage5_incident",
            "INC-1",
            r#"{"tco_kpi":1.25,"decision_path":"rollback","rotation_event_id":"rot-7"}"#,
            "",
            0,
            vec![],
        ),
        ("alert_ack", "INC-1", r#"{"alert":"stage5_tco_cost_spike"}"#, "ack-1", t0 - 5_000_000_000, vec![]),
        ("stage5_training", "", r#"{"topic":"lessons learned"}"#, "", 0, vec![art]),
        (
            "decision_evaluation",
            "strat-9",
            r#"{"model":"autotrader-v3","accepted":false,"reasons":["ai_degraded"]}"#,
            "",
            0,
            vec![],
        ),
        (
            "stage5_incident",
            "INC-1",
            r#"{"tco_kpi":0.9,"decision_path":"resume","rotation_event_id":"rot-7"}"#,
            "",
            0,
            vec![],
        ),
    ];
    let mut journal = segment_header(0).to_vec();
    let (mut prev, mut range, mut mem) = ([0u8; 32], CompactRange::new(), Mem(Default::default()));
    let mut last_by_subject = std::collections::HashMap::new();
    let mut entries = Vec::new();
    for (seq, (category, subject, payload, request_id, occurred_at, artifacts)) in inputs.into_iter().enumerate() {
        let seq = seq as u64;
        let input = EntryInput {
            category: category.into(),
            subject: subject.into(),
            payload: payload.as_bytes().to_vec(),
            occurred_at,
            request_id: request_id.into(),
            artifacts,
        };
        let e = input.validate("svc-decisions", &Limits::default()).unwrap();
        let subject_prev = if subject.is_empty() { 0 } else { last_by_subject.get(subject).map_or(0, |s| s + 1) };
        let leaf =
            build_leaf(&e, Sequencing { seq, recorded_at: t0 + seq as i64 * 1000, prev_hash: prev, subject_prev });
        let bytes = encode_leaf(&leaf);
        let h = leaf_hash(&bytes);
        let tag = hmac.tag(&h);
        let mut frame = Vec::new();
        let rec = EntryRecord {
            leaf: bytes.clone().into(),
            payload: payload.as_bytes().to_vec().into(),
            hmac_key_id: hmac.id().into(),
            hmac: tag.to_vec().into(),
            redacted_by: 0,
            padding: Default::default(),
        };
        encode_frame(&encode_entry(rec), &mut frame);
        journal.extend_from_slice(&frame);
        range.push(h, |l, i, x| {
            mem.0.insert((l, i), *x);
        });
        if !subject.is_empty() {
            last_by_subject.insert(subject, seq);
        }
        prev = h;
        entries.push(json!({
            "seq": seq, "payload": payload, "leaf_hex": hex::encode(&bytes), "leaf_hash_hex": hex::encode(h),
            "payload_sha256_hex": hex::encode(sha256(payload.as_bytes())), "hmac_key_id": hmac.id(), "hmac_hex": hex::encode(tag),
            "frame_hex": hex::encode(&frame),
        }));
    }
    let cp = Checkpoint { origin: origin.into(), size: 5, root: range.root() };
    let note = cp.sign(&[&signer]);
    encode_frame(&encode_checkpoint(&note), &mut journal);
    let proof = inclusion_proof(&mem, 2, 5).unwrap();
    let tlog = TlogProof {
        extra: Some(hex::decode(entries[2]["leaf_hex"].as_str().unwrap()).unwrap()),
        index: 2,
        proof,
        checkpoint: note.clone(),
    };
    json!({
        "format": "ledger v1 (docs/FORMAT.md)",
        "origin": origin,
        "vkey": signer.verifier().to_vkey(),
        "ed25519_seed_hex": hex::encode(seed),
        "hmac_key_hex": hex::encode([0x11u8; 32]),
        "hmac_key_id": hmac.id(),
        "actor": "svc-decisions",
        "entries": entries,
        "root_hex": hex::encode(cp.root),
        "checkpoint_note": note,
        "receipt_seq2_tlog_proof": tlog.to_text(),
        "consistency_3_to_5_hex": consistency_proof(&mem, 3, 5).unwrap().iter().map(hex::encode).collect::<Vec<_>>(),
        "root_at_3_hex": hex::encode(ledger::merkle::range_root(&mem, 0, 3).unwrap()),
        "segment_file_name": ledger::journal::segment_name(0),
        "segment_hex": hex::encode(&journal),
    })
}

#[test]
fn golden_vectors_are_reproduced_byte_for_byte() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/ledger-v1.json");
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("LEDGER_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let stored = std::fs::read_to_string(&path)
        .expect("tests/vectors/ledger-v1.json (regenerate with LEDGER_REGENERATE_VECTORS=1)");
    assert_eq!(stored, fresh, "the format changed: if deliberate, bump the format version and regenerate");
}

#[test]
fn golden_journal_verifies_and_its_receipt_verifies() {
    let v = generate();
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal");
    std::fs::create_dir_all(&j).unwrap();
    std::fs::write(
        j.join(v["segment_file_name"].as_str().unwrap()),
        hex::decode(v["segment_hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let vkeys = [ledger::note::NoteVerifier::from_vkey(v["vkey"].as_str().unwrap()).unwrap()];
    let keys_json = json!({"version":1,"keys":[{"id": v["hmac_key_id"], "kind":"hmac-sha256",
        "secret": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0x11u8; 32]),
        "created_at_ns": 0, "not_after_ns": i64::MAX, "state":"active"}]});
    let hk = ledger::keys::HmacKeySet::from_json(Path::new("k"), &keys_json.to_string()).unwrap();
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &j,
        vkeys: &vkeys,
        hmac_keys: Some(&hk),
        trusted_checkpoint: v["checkpoint_note"].as_str(),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!((rep.entries, rep.checkpoints, rep.hmac_checked), (5, 1, 5));
    let p = TlogProof::parse(v["receipt_seq2_tlog_proof"].as_str().unwrap()).unwrap().verify(&vkeys, None).unwrap();
    assert_eq!(p.leaf.unwrap().artifacts[0].name, "slides.pdf");
}
