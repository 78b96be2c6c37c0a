//! How entries, receipts and proofs print: text for people, stable JSON
//! for programs (field names documented in docs/CLI.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_proto::v1 as pb;
use serde_json::{Value, json};

use crate::client::rfc3339;

/// An entry as JSON: everything an auditor needs to recompute its hashes.
pub fn entry_json(e: &pb::Entry) -> Value {
    let l = e.decoded.clone().unwrap_or_default();
    let payload: Value =
        if e.payload.is_empty() { Value::Null } else { serde_json::from_slice(&e.payload).unwrap_or(Value::Null) };
    json!({
        "seq": e.seq,
        "leaf": B64.encode(&e.leaf),
        "leaf_hash": hex::encode(&e.leaf_hash),
        "recorded_at": l.recorded_at,
        "recorded_at_rfc3339": rfc3339(l.recorded_at),
        "category": l.category,
        "subject": l.subject,
        "actor": l.actor,
        "request_id": l.request_id,
        "occurred_at": l.occurred_at,
        "prev_hash": hex::encode(&l.prev_hash),
        "subject_prev": l.subject_prev,
        "payload": payload,
        "payload_sha256": hex::encode(&l.payload_sha256),
        "payload_size": l.payload_size,
        "artifacts": l.artifacts.iter().map(|a| json!({
            "blake3": hex::encode(&a.blake3), "sha256": hex::encode(&a.sha256), "size": a.size, "name": a.name, "media_type": a.media_type,
        })).collect::<Vec<_>>(),
        "hmac_key_id": e.hmac_key_id,
        "hmac": hex::encode(&e.hmac),
        "redacted_by": e.redacted_by,
    })
}

/// An entry on one line of text.
pub fn entry_text(e: &pb::Entry) -> String {
    let l = e.decoded.clone().unwrap_or_default();
    let subject = if l.subject.is_empty() { "-".to_owned() } else { l.subject.clone() };
    let payload = if e.redacted_by != 0 {
        format!("<redacted by entry {}>", e.redacted_by - 1)
    } else {
        String::from_utf8_lossy(&e.payload).into_owned()
    };
    format!("{:>8}  {}  {:<20} {:<16} {:<14} {}", e.seq, rfc3339(l.recorded_at), l.category, subject, l.actor, payload)
}

/// A receipt as JSON.
pub fn receipt_json(r: &pb::Receipt) -> Value {
    let cp =
        ledger::note::Note::parse(&r.checkpoint).ok().and_then(|n| ledger::note::Checkpoint::parse_body(&n.text).ok());
    json!({
        "seq": r.seq,
        "leaf_hash": hex::encode(&r.leaf_hash),
        "duplicate": r.duplicate,
        "tree_size": cp.as_ref().map(|c| c.size),
        "root": cp.as_ref().map(|c| hex::encode(c.root)),
        "checkpoint": r.checkpoint,
        "tlog_proof": r.tlog_proof,
    })
}

/// A receipt as text.
pub fn receipt_text(r: &pb::Receipt) -> String {
    let v = receipt_json(r);
    let dup = if r.duplicate { " (already recorded: original receipt)" } else { "" };
    format!(
        "appended seq {}{dup}\nleaf hash {}\ncheckpoint size {} root {}",
        r.seq,
        v["leaf_hash"].as_str().unwrap_or(""),
        v["tree_size"],
        v["root"].as_str().unwrap_or("")
    )
}
