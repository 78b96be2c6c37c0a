//! The pack verifier on packs built from a real file-store log: a clean
//! pack verifies, and each damage gives exactly its finding (kind, seq).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::types::files;
use super::*;
use crate::note::{Checkpoint, NoteVerifier};
use crate::verify::FindingKind as K;

type Files = BTreeMap<String, Vec<u8>>;

const ART: &[u8] = b"grafana screenshot bytes";

/// A log: INC-1 (seqs 1, 2, 4, 5, 7; seq 2 acks alert seq 1, seq 4
/// references an artifact) among INC-2 entries.
struct Fixture {
    _dir: tempfile::TempDir,
    log: crate::Ledger,
    vkeys: Vec<NoteVerifier>,
    keyring: crate::keys::Keyring,
}

fn input(category: &str, subject: &str, payload: &str, art: bool) -> crate::NewEntry {
    let artifacts = if art {
        let r = crate::entry::ArtifactRef::new(
            0,
            blake3::hash(ART).as_bytes(),
            &crate::hash::sha256(ART),
            ART.len() as u64,
            "shot.png",
            "image/png",
        );
        vec![r.unwrap()]
    } else {
        Vec::new()
    };
    let e = crate::EntryInput {
        category: category.into(),
        subject: subject.into(),
        payload: payload.as_bytes().to_vec(),
        artifacts,
        ..Default::default()
    };
    e.validate("tester", &Default::default()).unwrap()
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = crate::store::file::open(dir.path(), crate::LogOptions::new("test.local/pack")).unwrap();
        let entries = [
            ("stage4_incident", "INC-2", r#"{"step":"x"}"#, false),
            ("alert_fired", "INC-1", r#"{"fingerprint":"f1"}"#, false),
            ("alert_ack", "INC-1", r#"{"alert_seq":1}"#, false),
            ("stage4_incident", "INC-2", r#"{"step":"y"}"#, false),
            ("stage4_incident", "INC-1", r#"{"step":"L1.1","escalated_to":"l2"}"#, true),
            ("stage4_incident", "INC-1", r#"{"step":"L2.1"}"#, false),
            ("stage4_incident", "INC-2", r#"{"step":"z"}"#, false),
            ("alert_resolved", "INC-1", r#"{"fingerprint":"f1","status":"resolved"}"#, false),
        ];
        for (c, s, p, a) in entries {
            log.append(input(c, s, p, a)).unwrap();
        }
        let keyring = crate::keys::Keyring::load(&crate::layout::keyring(dir.path())).unwrap();
        Self { vkeys: keyring.verifiers(), _dir: dir, log, keyring }
    }

    /// The pack of INC-1 at the latest checkpoint (optionally from `trusted`).
    fn pack(&self, trusted: Option<(&str, u64)>) -> Files {
        let r = self.log.reader();
        let cp = r.latest_checkpoint();
        let size = cp.checkpoint.size;
        let mut f = Files::new();
        let lines: Vec<PackLine> = [1u64, 2, 4, 5, 7]
            .iter()
            .map(|&seq| {
                let e = r.get(seq).unwrap();
                let proof: Vec<Vec<u8>> =
                    r.prove_inclusion(seq, Some(size)).unwrap().0.iter().map(|h| h.to_vec()).collect();
                let bytes = StoredBytes {
                    seq,
                    leaf: &e.leaf_bytes,
                    payload: Some(&e.payload),
                    redacted_by: 0,
                    hmac_key_id: &e.hmac_key_id,
                    hmac: &e.hmac,
                    proof: &proof,
                };
                line_for(Role::Subject, &bytes)
            })
            .collect();
        f.insert(files::CHECKPOINT.into(), cp.note.clone().into_bytes());
        f.insert(files::VKEYS.into(), self.vkeys.iter().map(|v| v.to_vkey() + "\n").collect::<String>().into_bytes());
        f.insert(files::ENTRIES.into(), entries_text(&lines).into_bytes());
        f.insert(format!("artifacts/{}", blake3::hash(ART).to_hex()), ART.to_vec());
        let mut trusted_head = None;
        if let Some((note, old)) = trusted {
            let proof: Vec<String> = r.prove_consistency(old, Some(size)).unwrap().0.iter().map(hex::encode).collect();
            let c = Consistency { old_size: old, new_size: size, proof };
            f.insert(files::CONSISTENCY.into(), serde_json::to_vec(&c).unwrap());
            f.insert(files::TRUSTED.into(), note.as_bytes().to_vec());
            let t = Checkpoint::parse_body(&crate::note::Note::parse(note).unwrap().text).unwrap();
            trusted_head = Some(TreeHead { size: t.size, root: hex::encode(t.root) });
        }
        let manifest = manifest_for(&cp.checkpoint, trusted_head);
        seal(&mut f, manifest);
        f
    }

    fn findings(&self, f: &Files) -> Vec<(K, Option<u64>)> {
        let rep = verify(f, &self.vkeys, None, None).unwrap();
        rep.report.findings.iter().map(|x| (x.kind, x.seq)).collect()
    }
}

/// The manifest of the fixture's INC-1 pack at checkpoint `cp`.
fn manifest_for(cp: &Checkpoint, trusted: Option<TreeHead>) -> Manifest {
    Manifest {
        version: 1,
        subject: "INC-1".into(),
        origin: cp.origin.clone(),
        tree_size: cp.size,
        root: hex::encode(cp.root),
        created_at: 1,
        entries: 5,
        subject_entries: 5,
        max_artifact_bytes: 1 << 24,
        artifacts: vec![ManifestArtifact {
            blake3: blake3::hash(ART).to_hex().to_string(),
            sha256: hex::encode(crate::hash::sha256(ART)),
            size: ART.len() as u64,
            name: "shot.png".into(),
            included: true,
            reason: String::new(),
        }],
        trusted,
        files: BTreeMap::new(),
    }
}

/// (Re)writes pack.json with the digests of every file but the artifacts,
/// as an attacker who edits a pack would.
fn seal(f: &mut Files, mut m: Manifest) {
    m.files = f
        .iter()
        .filter(|(n, _)| n.as_str() != files::MANIFEST && !n.starts_with("artifacts/"))
        .map(|(n, b)| (n.clone(), FileDigest::of(b)))
        .collect();
    f.insert(files::MANIFEST.into(), serde_json::to_vec(&m).unwrap());
}

fn manifest(f: &Files) -> Manifest {
    serde_json::from_slice(&f[files::MANIFEST]).unwrap()
}

fn edit_lines(f: &mut Files, edit: impl FnOnce(&mut Vec<PackLine>)) {
    let mut lines: Vec<PackLine> =
        String::from_utf8_lossy(&f[files::ENTRIES]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    edit(&mut lines);
    let mut m = manifest(f);
    m.entries = lines.len() as u64;
    m.subject_entries = m.entries;
    f.insert(files::ENTRIES.into(), entries_text(&lines).into_bytes());
    seal(f, m);
}

#[test]
fn lines_carry_lowercase_hex() {
    let b = StoredBytes {
        seq: 1,
        leaf: b"l",
        payload: None,
        redacted_by: 2,
        hmac_key_id: "k",
        hmac: &[0xab, 0x01],
        proof: &[vec![0xff, 0x0a]],
    };
    let l = line_for(Role::Alert, &b);
    assert_eq!((l.hmac.as_str(), l.proof[0].as_str(), l.payload), ("ab01", "ff0a", None));
}

#[test]
fn a_clean_pack_verifies() {
    let fx = Fixture::new();
    let f = fx.pack(None);
    let rep = verify(&f, &fx.vkeys, None, None).unwrap();
    assert!(rep.report.ok, "{}", rep.to_text());
    assert_eq!((rep.report.entries, rep.subject_entries, rep.artifacts_checked), (5, 5, 1));
}

#[test]
fn hmac_tags_are_checked_with_the_auditors_keys() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    let keys = fx.keyring.hmac_keys();
    let rep = verify(&f, &fx.vkeys, None, Some(&keys)).unwrap();
    assert!(rep.report.ok && rep.report.hmac_checked == 5, "{}", rep.to_text());
    edit_lines(&mut f, |l| l[1].hmac = "00".repeat(32));
    let rep = verify(&f, &fx.vkeys, None, Some(&keys)).unwrap();
    let got: Vec<_> = rep.report.findings.iter().map(|x| (x.kind, x.seq)).collect();
    assert_eq!(got, [(K::HmacMismatch, Some(2))]);
    assert!(verify(&f, &fx.vkeys, None, None).unwrap().report.ok, "without keys tags are not checked");
}

#[test]
fn a_changed_payload_byte_is_a_payload_mismatch() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    edit_lines(&mut f, |l| l[2].payload = Some(B64.encode(br#"{"step":"L1.2","escalated_to":"l2"}"#)));
    assert_eq!(fx.findings(&f), [(K::PayloadMismatch, Some(4))]);
}

#[test]
fn a_removed_middle_entry_breaks_the_subject_chain() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    edit_lines(&mut f, |l| {
        l.remove(3);
    });
    assert_eq!(fx.findings(&f), [(K::SubjectChainBroken, Some(7))]);
    let mut f = fx.pack(None);
    edit_lines(&mut f, |l| {
        l.remove(0);
    });
    let got = fx.findings(&f);
    assert!(got.contains(&(K::SubjectChainBroken, Some(2))), "the first entry missing: {got:?}");
}

#[test]
fn a_changed_leaf_byte_fails_its_inclusion_proof() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    edit_lines(&mut f, |l| {
        let mut leaf = B64.decode(&l[3].leaf).unwrap();
        let at = leaf.windows(6).position(|w| w == b"tester").unwrap();
        leaf[at] = b'T';
        l[3].leaf = B64.encode(leaf);
    });
    assert_eq!(fx.findings(&f), [(K::InclusionFailed, Some(5))]);
}

#[test]
fn a_swapped_signature_or_unknown_key_is_untrusted() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    let note = String::from_utf8(f[files::CHECKPOINT].clone()).unwrap();
    let other = fx.log.reader().checkpoint_note(0).unwrap().unwrap();
    let sig = |n: &str| n.lines().find(|l| l.starts_with('\u{2014}')).unwrap().to_owned();
    let mut bad = sig(&other).into_bytes();
    let last = bad.len() - 2;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let swapped = note.replace(&sig(&note), &String::from_utf8(bad).unwrap());
    f.insert(files::CHECKPOINT.into(), swapped.into_bytes());
    let m = manifest(&f);
    seal(&mut f, m);
    let size = fx.log.reader().size();
    assert_eq!(fx.findings(&f), [(K::CheckpointUntrusted, Some(size))]);
    let stranger = crate::note::NoteSigner::from_seed("test.local/pack", &[7; 32]).unwrap().verifier();
    let rep = verify(&fx.pack(None), &[stranger], None, None).unwrap();
    assert_eq!(
        rep.report.findings.iter().map(|x| (x.kind, x.seq)).collect::<Vec<_>>(),
        [(K::CheckpointUntrusted, Some(size))]
    );
}

#[test]
fn a_changed_or_missing_artifact_is_named_with_its_entry() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    let name = format!("artifacts/{}", blake3::hash(ART).to_hex());
    f.insert(name.clone(), b"another screenshot".to_vec());
    assert_eq!(fx.findings(&f), [(K::ArtifactMismatch, Some(4))]);
    f.remove(&name);
    assert_eq!(fx.findings(&f), [(K::ArtifactMissing, Some(4))]);
    let mut m = manifest(&f);
    (m.artifacts[0].included, m.artifacts[0].reason) = (false, "larger than max_artifact_bytes".into());
    seal(&mut f, m);
    let rep = verify(&f, &fx.vkeys, None, None).unwrap();
    assert!(rep.report.ok && rep.artifacts_omitted.len() == 1, "{}", rep.to_text());
}

#[test]
fn the_trusted_checkpoint_must_be_extended_by_the_packs_tree() {
    let fx = Fixture::new();
    let early = fx.log.reader().checkpoint_note(0).unwrap().unwrap();
    fx.log.append(input("stage4_incident", "INC-2", r#"{"step":"w"}"#, false)).unwrap();
    let f = fx.pack(Some((&early, 8)));
    let rep = verify(&f, &fx.vkeys, None, None).unwrap();
    assert!(rep.report.ok && rep.trusted_size == Some(8), "{}", rep.to_text());
    // the same key signing another root of size 8: a fork
    let signer = fx.keyring.active_signers()[0].clone();
    let fork = Checkpoint { origin: "test.local/pack".into(), size: 8, root: [9; 32] }.sign(&[&signer]);
    assert_eq!(
        verify(&f, &fx.vkeys, Some(&fork), None)
            .unwrap()
            .report
            .findings
            .iter()
            .map(|x| (x.kind, x.seq))
            .collect::<Vec<_>>(),
        [(K::SplitView, Some(8))]
    );
}

#[test]
fn a_stale_manifest_and_other_versions_are_caught() {
    let fx = Fixture::new();
    let mut f = fx.pack(None);
    f.insert(files::VKEYS.into(), b"edited after the pack was written\n".to_vec());
    assert_eq!(fx.findings(&f), [(K::ManifestMismatch, None)]);
    let mut v: serde_json::Value = serde_json::from_slice(&f[files::MANIFEST]).unwrap();
    v["version"] = 2.into();
    f.insert(files::MANIFEST.into(), serde_json::to_vec(&v).unwrap());
    assert!(matches!(verify(&f, &fx.vkeys, None, None), Err(PackError::Version { found: 2 })));
    assert!(matches!(verify(&Files::new(), &fx.vkeys, None, None), Err(PackError::NotAPack)));
}

#[test]
fn a_pages_proofs_are_the_single_proofs() {
    let fx = Fixture::new();
    let r = fx.log.reader();
    let seqs: Vec<u64> = (0..r.size()).collect();
    for size in 1..=r.size() {
        let page = r.prove_inclusions(&seqs[..size as usize], size).unwrap();
        let single: Vec<_> = (0..size).map(|s| r.prove_inclusion(s, Some(size)).unwrap().0).collect();
        assert_eq!(page, single, "tree size {size}");
    }
    assert!(r.prove_inclusions(&[0], r.size() + 1).is_err(), "a tree beyond the log");
}
