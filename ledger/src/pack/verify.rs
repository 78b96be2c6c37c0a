//! Checking a pack (FORMAT.md §14.5), part one: the manifest, the signed
//! checkpoint and every entry line (leaf, inclusion proof, payload). The
//! cross-entry checks (subject chain, roles, redactions, artifacts, the
//! trusted checkpoint) are in `checks`.
//!
//! Owns: the order of the checks and the report. Must not: stop at the
//! first finding (every check runs on what could be read) or trust the
//! manifest's claims about the log.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_proto::v1::Leaf;

use super::types::files;
use super::{Manifest, PACK_VERSION, PackError, PackLine, PackReport, PackSource, checks};
use crate::hash::{Hash, leaf_hash, sha256};
use crate::keys::HmacKeySet;
use crate::leaf::{LeafError, decode_leaf};
use crate::merkle::verify_inclusion;
use crate::note::{Checkpoint, Note, NoteVerifier};
use crate::verify::produce::{HmacOutcome, hmac_outcome};
use crate::verify::{Finding, FindingKind, Redacted, Report};

/// One entry line as read: the line, and its leaf and payload when they
/// decoded.
pub(super) struct Item {
    pub line: PackLine,
    pub leaf: Option<Leaf>,
    pub payload: Option<Vec<u8>>,
}

/// Adds a finding.
pub(super) fn finding(r: &mut Report, kind: FindingKind, seq: Option<u64>, detail: impl Into<String>) {
    r.add(Finding { kind, seq, detail: detail.into() });
}

/// Reads a file of the pack, mapping I/O errors.
pub(super) fn read(src: &dyn PackSource, name: &str) -> Result<Option<Vec<u8>>, PackError> {
    src.read(name).map_err(|source| PackError::Io { name: name.to_owned(), source })
}

/// Verifies the pack in `src` with the trusted `vkeys`; `trusted` (a
/// checkpoint note) replaces the pack's `trusted-checkpoint`; with
/// `hmac_keys` (an auditor holding the log's HMAC keys) each entry's tag is
/// checked too (FORMAT.md §5).
pub fn verify(
    src: &dyn PackSource,
    vkeys: &[NoteVerifier],
    trusted: Option<&str>,
    hmac_keys: Option<&HmacKeySet>,
) -> Result<PackReport, PackError> {
    if vkeys.is_empty() {
        return Err(PackError::NoKeys);
    }
    let manifest = manifest(src)?;
    let mut out = PackReport { subject: manifest.subject.clone(), ..Default::default() };
    checks::files(src, &manifest, &mut out.report)?;
    let cp = checkpoint(src, vkeys, &manifest, &mut out.report)?;
    let items = entries(src, &manifest, (cp.as_ref(), hmac_keys), &mut out.report)?;
    out.subject_entries = checks::roles(&manifest, &items, &mut out.report);
    checks::chain(&manifest.subject, &items, &mut out.report);
    checks::redactions(&items, &mut out.report);
    checks::artifacts(src, &manifest, &items, &mut out)?;
    checks::trusted(src, vkeys, trusted, &manifest, cp.as_ref(), &mut out)?;
    out.report.ok = out.report.finding_count == 0;
    Ok(out)
}

/// `pack.json`, refused (an error, not a finding) when absent, malformed or
/// of another version.
fn manifest(src: &dyn PackSource) -> Result<Manifest, PackError> {
    let bytes = read(src, files::MANIFEST)?.ok_or(PackError::NotAPack)?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| PackError::Manifest { reason: format!("not JSON: {e}") })?;
    let version = v.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(PACK_VERSION)) {
        return match version {
            Some(found) => Err(PackError::Version { found: u32::try_from(found).unwrap_or(u32::MAX) }),
            None => Err(PackError::Manifest { reason: "field version: missing or not a number".into() }),
        };
    }
    serde_json::from_value(v).map_err(|e| PackError::Manifest { reason: e.to_string() })
}

/// The signed checkpoint: its signature (a finding when it fails, the body
/// is still used for the proofs) and its agreement with the manifest.
fn checkpoint(
    src: &dyn PackSource,
    vkeys: &[NoteVerifier],
    m: &Manifest,
    r: &mut Report,
) -> Result<Option<Checkpoint>, PackError> {
    let Some(bytes) = read(src, files::CHECKPOINT)? else {
        finding(r, FindingKind::CheckpointUntrusted, None, "the pack has no checkpoint file");
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match Note::parse(&text).and_then(|n| Checkpoint::parse_body(&n.text)) {
        Ok(b) => b,
        Err(e) => {
            finding(r, FindingKind::CheckpointUntrusted, None, format!("checkpoint: {e}"));
            return Ok(None);
        }
    };
    if let Err(e) = Checkpoint::open(&text, vkeys) {
        finding(r, FindingKind::CheckpointUntrusted, Some(body.size), format!("checkpoint: {e}"));
    }
    r.checkpoints += 1;
    r.tree_size = body.size;
    r.root = hex::encode(body.root);
    let named = (m.origin.as_str(), m.tree_size, m.root.as_str());
    if named != (body.origin.as_str(), body.size, r.root.as_str()) {
        let detail = format!(
            "pack.json names {} size {} root {}, the checkpoint {} size {} root {}",
            m.origin, m.tree_size, m.root, body.origin, body.size, r.root
        );
        finding(r, FindingKind::ManifestMismatch, None, detail);
    }
    Ok(Some(body))
}

/// Every line of `entries.jsonl`, each checked on its own.
fn entries(src: &dyn PackSource, m: &Manifest, against: Against<'_>, r: &mut Report) -> Result<Vec<Item>, PackError> {
    let Some(bytes) = read(src, files::ENTRIES)? else {
        finding(r, FindingKind::ManifestMismatch, None, "the pack has no entries.jsonl");
        return Ok(Vec::new());
    };
    let mut items: Vec<Item> = Vec::new();
    for (i, text) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        let line: PackLine = match serde_json::from_str(text) {
            Ok(l) => l,
            Err(e) => {
                finding(r, FindingKind::ManifestMismatch, None, format!("entries.jsonl line {}: {e}", i + 1));
                continue;
            }
        };
        if items.last().is_some_and(|p| p.line.seq >= line.seq) {
            let detail = format!("entries.jsonl line {}: seq {} is not above the line before", i + 1, line.seq);
            finding(r, FindingKind::ManifestMismatch, Some(line.seq), detail);
            continue;
        }
        items.push(entry(line, against, r));
    }
    r.entries = items.len() as u64;
    r.first_seq = items.first().map_or(0, |i| i.line.seq);
    if m.entries != r.entries {
        let detail = format!("pack.json counts {} entries, entries.jsonl holds {}", m.entries, r.entries);
        finding(r, FindingKind::ManifestMismatch, None, detail);
    }
    Ok(items)
}

/// What entries are checked against: the checkpoint (when it parsed) and
/// the auditor's HMAC keys (when given).
type Against<'a> = (Option<&'a Checkpoint>, Option<&'a HmacKeySet>);

/// One entry: its leaf decodes canonically with the line's seq, its proof
/// leads to the checkpoint's root, its payload is the one the leaf names,
/// its HMAC tag verifies (with the keys).
fn entry(line: PackLine, (cp, keys): Against<'_>, r: &mut Report) -> Item {
    let seq = line.seq;
    let leaf = match B64.decode(&line.leaf) {
        Ok(bytes) => {
            if let Some(cp) = cp {
                inclusion(seq, &bytes, &line.proof, cp, r);
            }
            let leaf = decoded(seq, &bytes, r);
            if let (Some(keys), Some(l)) = (keys, &leaf) {
                hmac(keys, &line, &bytes, l, r);
            }
            leaf
        }
        Err(e) => {
            finding(r, FindingKind::LeafInvalid, Some(seq), format!("leaf is not base64: {e}"));
            None
        }
    };
    let payload = payload(&line, leaf.as_ref(), r);
    Item { line, leaf, payload }
}

/// The record's HMAC tag under the auditor's keys (FORMAT.md §5), as
/// `ledger verify` checks it.
fn hmac(keys: &HmacKeySet, line: &PackLine, leaf_bytes: &[u8], l: &Leaf, r: &mut Report) {
    let (id, seq) = (&line.hmac_key_id, line.seq);
    let tag = hex::decode(&line.hmac).unwrap_or_default();
    let (kind, detail) = match hmac_outcome(keys, id, &leaf_hash(leaf_bytes), &tag, l) {
        HmacOutcome::Ok => {
            r.hmac_checked += 1;
            return;
        }
        HmacOutcome::UnknownKey => (FindingKind::HmacKeyUnknown, format!("HMAC key {id} is not in the key file given")),
        HmacOutcome::Mismatch => (FindingKind::HmacMismatch, format!("the tag does not verify under HMAC key {id}")),
        HmacOutcome::KeyNotValid => {
            (FindingKind::HmacKeyNotValid, format!("HMAC key {id} was not valid at recorded_at {}", l.recorded_at))
        }
    };
    if kind != FindingKind::HmacKeyUnknown {
        r.hmac_checked += 1;
    }
    finding(r, kind, Some(seq), detail);
}

fn decoded(seq: u64, bytes: &[u8], r: &mut Report) -> Option<Leaf> {
    match decode_leaf(bytes) {
        Ok(l) if l.seq == seq => Some(l),
        Ok(l) => {
            finding(r, FindingKind::LeafInvalid, Some(seq), format!("the leaf's seq is {}, the line's {seq}", l.seq));
            None
        }
        Err(LeafError::NotCanonical) => {
            finding(r, FindingKind::LeafNotCanonical, Some(seq), "re-encoding the leaf gives other bytes");
            None
        }
        Err(e) => {
            finding(r, FindingKind::LeafInvalid, Some(seq), e.to_string());
            None
        }
    }
}

fn inclusion(seq: u64, leaf: &[u8], proof: &[String], cp: &Checkpoint, r: &mut Report) {
    let hashes: Option<Vec<Hash>> =
        proof.iter().map(|h| hex::decode(h).ok().and_then(|b| crate::hash::from_slice(&b))).collect();
    let Some(hashes) = hashes else {
        finding(r, FindingKind::InclusionFailed, Some(seq), "a proof hash is not 32 bytes of hex");
        return;
    };
    if let Err(e) = verify_inclusion(seq, cp.size, &leaf_hash(leaf), &hashes, &cp.root) {
        finding(
            r,
            FindingKind::InclusionFailed,
            Some(seq),
            format!("not in the checkpoint's tree of size {}: {e}", cp.size),
        );
    }
}

/// The payload bytes, checked against the leaf's hash and size; a redacted
/// record is listed instead.
fn payload(line: &PackLine, leaf: Option<&Leaf>, r: &mut Report) -> Option<Vec<u8>> {
    let seq = line.seq;
    if line.redacted_by != 0 && line.payload.is_none() {
        r.redacted.push(Redacted { seq, redaction_seq: line.redacted_by - 1 });
        return None;
    }
    let Some(text) = &line.payload else {
        finding(r, FindingKind::PayloadMismatch, Some(seq), "no payload and not redacted");
        return None;
    };
    let Ok(bytes) = B64.decode(text) else {
        finding(r, FindingKind::PayloadMismatch, Some(seq), "the payload is not base64");
        return None;
    };
    if let Some(l) = leaf
        && (sha256(&bytes).as_slice() != l.payload_sha256.as_slice() || bytes.len() as u64 != l.payload_size)
    {
        let detail = format!(
            "payload sha256 {} ({} bytes), the leaf names {} ({} bytes)",
            hex::encode(sha256(&bytes)),
            bytes.len(),
            hex::encode(&l.payload_sha256),
            l.payload_size
        );
        finding(r, FindingKind::PayloadMismatch, Some(seq), detail);
    }
    Some(bytes)
}
