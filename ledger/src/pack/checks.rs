//! Checking a pack (FORMAT.md §14.5), part two: what spans entries or
//! files — the manifest's file digests, the entries' roles, the subject's
//! chain, redactions, artifacts, and the consistency with the auditor's
//! trusted checkpoint.
//!
//! Owns: those checks. Must not: re-check single entries (`verify` did).

use std::collections::{BTreeSet, HashMap};

use super::types::files;
use super::verify::{Item, finding, read};
use super::{Consistency, Manifest, Omitted, PackError, PackReport, PackSource, Role};
use crate::hash::Hash;
use crate::merkle::verify_consistency;
use crate::note::{Checkpoint, Note, NoteVerifier};
use crate::verify::{FindingKind as K, Report};

/// Every file the manifest lists has its digest; the checkpoint and the
/// entries are listed.
pub(super) fn files(src: &dyn PackSource, m: &Manifest, r: &mut Report) -> Result<(), PackError> {
    for name in [files::CHECKPOINT, files::ENTRIES] {
        if !m.files.contains_key(name) {
            finding(r, K::ManifestMismatch, None, format!("pack.json does not list {name}"));
        }
    }
    for (name, want) in &m.files {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p == ".") {
            finding(r, K::ManifestMismatch, None, format!("pack.json lists {name:?}, not a file name inside the pack"));
            continue;
        }
        match read(src, name)? {
            None => finding(r, K::ManifestMismatch, None, format!("{name}: listed in pack.json, missing")),
            Some(b) if super::FileDigest::of(&b) != *want => {
                let got = super::FileDigest::of(&b);
                let detail = format!(
                    "{name}: sha256 {} ({} bytes), pack.json lists {} ({} bytes)",
                    got.sha256, got.size, want.sha256, want.size
                );
                finding(r, K::ManifestMismatch, None, detail);
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The alert seqs the pack's `alert_ack` entries name (payload `alert_seq`).
fn acknowledged(items: &[Item]) -> BTreeSet<u64> {
    items
        .iter()
        .filter(|i| i.leaf.as_ref().is_some_and(|l| l.category == "alert_ack"))
        .filter_map(|i| serde_json::from_slice::<serde_json::Value>(i.payload.as_ref()?).ok())
        .filter_map(|v| v.get("alert_seq").and_then(serde_json::Value::as_u64))
        .collect()
}

/// Subject entries are of the subject, alert entries are named by an
/// acknowledgement of the pack, every named alert is there; returns the
/// subject entries counted.
pub(super) fn roles(m: &Manifest, items: &[Item], r: &mut Report) -> u64 {
    let acked = acknowledged(items);
    let mut count = 0;
    for i in items {
        let seq = i.line.seq;
        match (i.line.role, &i.leaf) {
            (Role::Subject, leaf) => {
                count += 1;
                if let Some(l) = leaf.as_ref().filter(|l| l.subject != m.subject) {
                    let detail = format!("an entry of subject {:?} among those of {:?}", l.subject, m.subject);
                    finding(r, K::SubjectMismatch, Some(seq), detail);
                }
            }
            (Role::Alert, _) if !acked.contains(&seq) => {
                finding(r, K::SubjectMismatch, Some(seq), "an alert entry no alert_ack of the pack names");
            }
            (Role::Alert, _) => {}
        }
    }
    let held: BTreeSet<u64> = items.iter().map(|i| i.line.seq).collect();
    for a in acked.difference(&held) {
        finding(
            r,
            K::ManifestMismatch,
            Some(*a),
            "an alert_ack of the pack names this alert entry, absent from the pack",
        );
    }
    if m.subject_entries != count {
        let detail = format!("pack.json counts {} subject entries, entries.jsonl holds {count}", m.subject_entries);
        finding(r, K::ManifestMismatch, None, detail);
    }
    count
}

/// The subject's entries, in seq order, form its chain from its first
/// entry (`subject_prev` 0) on, each naming the one before (FORMAT.md §3).
pub(super) fn chain(subject: &str, items: &[Item], r: &mut Report) {
    let mut prev: Option<u64> = None;
    for i in items.iter().filter(|i| i.line.role == Role::Subject) {
        let Some(l) = i.leaf.as_ref().filter(|l| l.subject == subject) else { continue };
        let want = prev.map_or(0, |p| p + 1);
        if l.subject_prev != want {
            let detail = match (prev, l.subject_prev) {
                (None, p) => format!("the subject's first entry is missing: subject_prev names seq {}", p - 1),
                (Some(b), 0) => format!("subject_prev is 0 (a first entry), but seq {b} of the subject comes before"),
                (Some(b), p) => {
                    format!("subject_prev names seq {}, absent from the pack; the entry before is seq {b}", p - 1)
                }
            };
            finding(r, K::SubjectChainBroken, Some(i.line.seq), detail);
        }
        prev = Some(i.line.seq);
    }
}

/// Each redacted record is backed by its `redaction` entry in the pack
/// (request id `redaction/<seq>`, FORMAT.md §6.4).
pub(super) fn redactions(items: &[Item], r: &mut Report) {
    let by_seq: HashMap<u64, &Item> = items.iter().map(|i| (i.line.seq, i)).collect();
    for i in items.iter().filter(|i| i.line.redacted_by != 0) {
        let seq = i.line.seq;
        let backed = by_seq
            .get(&(i.line.redacted_by - 1))
            .and_then(|b| b.leaf.as_ref())
            .is_some_and(|l| l.category == "redaction" && l.request_id == format!("redaction/{seq}"));
        if !backed {
            let detail = format!(
                "redacted_by names seq {}, not a redaction entry of this seq in the pack",
                i.line.redacted_by - 1
            );
            finding(r, K::RedactionUnbacked, Some(seq), detail);
        }
    }
}

/// Every artifact a leaf references: its bytes hash to the reference, or
/// the manifest says why they are not in the pack.
pub(super) fn artifacts(
    src: &dyn PackSource,
    m: &Manifest,
    items: &[Item],
    out: &mut PackReport,
) -> Result<(), PackError> {
    let listed: HashMap<&str, &super::ManifestArtifact> = m.artifacts.iter().map(|a| (a.blake3.as_str(), a)).collect();
    let mut seen = BTreeSet::new();
    for i in items {
        for a in i.leaf.iter().flat_map(|l| l.artifacts.iter()) {
            let b3 = hex::encode(&a.blake3);
            if seen.insert(b3.clone()) {
                artifact(src, listed.get(b3.as_str()).copied(), a, i.line.seq, out)?;
            }
        }
    }
    for a in m.artifacts.iter().filter(|a| !seen.contains(&a.blake3)) {
        finding(
            &mut out.report,
            K::ManifestMismatch,
            None,
            format!("pack.json lists artifact {}, no leaf references it", a.blake3),
        );
    }
    Ok(())
}

fn artifact(
    src: &dyn PackSource,
    listed: Option<&super::ManifestArtifact>,
    a: &ledger_proto::v1::ArtifactRef,
    seq: u64,
    out: &mut PackReport,
) -> Result<(), PackError> {
    let b3 = hex::encode(&a.blake3);
    let r = &mut out.report;
    let Some(entry) = listed else {
        finding(r, K::ArtifactMissing, Some(seq), format!("artifact {} ({b3}) is not listed in pack.json", a.name));
        return Ok(());
    };
    if !entry.included {
        let o = Omitted { blake3: b3, name: a.name.clone(), size: a.size, reason: entry.reason.clone() };
        out.artifacts_omitted.push(o);
        return Ok(());
    }
    let Some(bytes) = read(src, &format!("{}/{b3}", files::ARTIFACTS))? else {
        finding(r, K::ArtifactMissing, Some(seq), format!("artifacts/{b3} ({}) is not in the pack", a.name));
        return Ok(());
    };
    let mut h = crate::artifacts::BlobHasher::default();
    h.update(&bytes);
    let b = h.finish();
    let got = (b.blake3.to_vec(), b.sha256.to_vec(), b.size);
    if got != (a.blake3.clone(), a.sha256.clone(), a.size) {
        let detail = format!(
            "artifacts/{b3} ({}): blake3 {} sha256 {} {} bytes, the leaf names sha256 {} {} bytes",
            a.name,
            hex::encode(&got.0),
            hex::encode(&got.1),
            got.2,
            hex::encode(&a.sha256),
            a.size
        );
        finding(r, K::ArtifactMismatch, Some(seq), detail);
        return Ok(());
    }
    out.artifacts_checked += 1;
    Ok(())
}

/// With a trusted checkpoint (given, else the pack's): signed by a trusted
/// key, and the pack's tree extends it (the consistency proof).
pub(super) fn trusted(
    src: &dyn PackSource,
    vkeys: &[NoteVerifier],
    given: Option<&str>,
    m: &Manifest,
    cp: Option<&Checkpoint>,
    out: &mut PackReport,
) -> Result<(), PackError> {
    let r = &mut out.report;
    let note = match given {
        Some(n) => Some(n.to_owned()),
        None => read(src, files::TRUSTED)?.map(|b| String::from_utf8_lossy(&b).into_owned()),
    };
    let Some(note) = note else {
        if m.trusted.is_some() {
            finding(r, K::ManifestMismatch, None, "pack.json names a trusted checkpoint, the pack has none");
        }
        return Ok(());
    };
    let t = match Checkpoint::open(&note, vkeys) {
        Ok(t) => t,
        Err(e) => {
            let size = Note::parse(&note).ok().and_then(|n| Checkpoint::parse_body(&n.text).ok()).map(|c| c.size);
            finding(r, K::CheckpointUntrusted, size, format!("trusted checkpoint: {e}"));
            return Ok(());
        }
    };
    r.checkpoints += 1;
    out.trusted_size = Some(t.size);
    let named = m.trusted.as_ref().map(|h| (h.size, h.root.clone()));
    if given.is_none() && named != Some((t.size, hex::encode(t.root))) {
        finding(r, K::ManifestMismatch, None, "pack.json's trusted size and root are not trusted-checkpoint's");
    }
    if let Some(cp) = cp {
        let proof = read(src, files::CONSISTENCY)?;
        if let Err(detail) = consistent(&t, cp, proof.as_deref()) {
            finding(r, K::SplitView, Some(t.size), detail);
        }
    }
    Ok(())
}

/// Whether the tree of `cp` extends that of `t`, by the pack's proof.
fn consistent(t: &Checkpoint, cp: &Checkpoint, proof: Option<&[u8]>) -> Result<(), String> {
    if t.size == 0 {
        return Ok(());
    }
    if t.size > cp.size {
        return Err(format!("the trusted checkpoint (size {}) is larger than the pack's (size {})", t.size, cp.size));
    }
    let c: Consistency = if t.size == cp.size {
        Consistency { old_size: t.size, new_size: cp.size, proof: Vec::new() }
    } else {
        let bytes = proof.ok_or_else(|| format!("the pack holds no consistency proof from size {}", t.size))?;
        serde_json::from_slice(bytes).map_err(|e| format!("consistency.json: {e}"))?
    };
    if (c.old_size, c.new_size) != (t.size, cp.size) {
        return Err(format!(
            "the pack's consistency proof is from size {} to {}, not from {} to {}",
            c.old_size, c.new_size, t.size, cp.size
        ));
    }
    let hashes: Option<Vec<Hash>> =
        c.proof.iter().map(|h| hex::decode(h).ok().and_then(|b| crate::hash::from_slice(&b))).collect();
    let hashes = hashes.ok_or("consistency.json: a proof hash is not 32 bytes of hex")?;
    verify_consistency(t.size, cp.size, &t.root, &cp.root, &hashes).map_err(|e| {
        format!("the pack's tree (size {}) does not extend the trusted checkpoint (size {}): {e}", cp.size, t.size)
    })
}
