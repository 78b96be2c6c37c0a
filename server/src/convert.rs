//! Conversions between the library's types and the `ledger.v1` messages.

use ledger::entry::{ArtifactRef, EntryInput, Limits, NewEntry};
use ledger::log::{Receipt, StoredEntry};
use ledger_proto::v1 as pb;
use tonic::Status;

use crate::status;

/// Validates a request entry; `actor` comes from the transport.
pub fn entry(input: Option<pb::EntryInput>, actor: &str, limits: &Limits) -> Result<NewEntry, Status> {
    let e = input.ok_or_else(|| status::invalid("entry", "is missing"))?;
    let mut artifacts = Vec::with_capacity(e.artifacts.len());
    for (i, a) in e.artifacts.iter().enumerate() {
        artifacts.push(
            ArtifactRef::new(i, &a.blake3, &a.sha256, a.size, &a.name, &a.media_type)
                .map_err(|v| status::validation(&v))?,
        );
    }
    let input = EntryInput {
        category: e.category,
        subject: e.subject,
        payload: e.payload,
        occurred_at: e.occurred_at,
        request_id: e.request_id,
        artifacts,
    };
    client_entry(input, actor, limits)
}

/// Validates an entry a client sends (Append, AppendStream, Upload): as
/// any entry, and its request id is not one ledgerd keeps for the admin
/// entries it writes itself (`redaction/…`, `admin_request/…`), so that no
/// client can take the id an admin action will need.
pub fn client_entry(input: EntryInput, actor: &str, limits: &Limits) -> Result<NewEntry, Status> {
    let reserved = ledger::log::SERVER_REQUEST_ID_PREFIXES.iter().any(|p| input.request_id.starts_with(p));
    if reserved {
        let why = "starts with a prefix ledgerd keeps for its own admin entries (redaction/, admin_request/)";
        return Err(status::invalid("request_id", why));
    }
    input.validate(actor, limits).map_err(|v| status::validation(&v))
}

/// A receipt message.
pub fn receipt(r: &Receipt) -> pb::Receipt {
    pb::Receipt {
        seq: r.seq,
        leaf_hash: r.leaf_hash.to_vec(),
        leaf: r.leaf.to_vec(),
        proof: r.proof.iter().map(|h| h.to_vec()).collect(),
        checkpoint: r.checkpoint.note.clone(),
        tlog_proof: r.tlog_proof().to_text(),
        duplicate: r.duplicate,
    }
}

/// A receipt whose checkpoint carries witnesses' cosignature `lines`
/// (appended to the note, in the checkpoint and in the tlog-proof).
pub fn cosigned_receipt(r: &Receipt, lines: String) -> pb::Receipt {
    let mut tp = r.tlog_proof();
    tp.checkpoint.push_str(&lines);
    pb::Receipt { checkpoint: tp.checkpoint.clone(), tlog_proof: tp.to_text(), ..receipt(r) }
}

/// An entry message.
pub fn stored(e: StoredEntry) -> pb::Entry {
    pb::Entry {
        seq: e.seq,
        leaf: e.leaf_bytes.to_vec(),
        decoded: Some(e.leaf),
        leaf_hash: e.leaf_hash.to_vec(),
        payload: e.payload.to_vec(),
        hmac_key_id: e.hmac_key_id,
        hmac: e.hmac.to_vec(),
        redacted_by: e.redacted_by,
        proof: Vec::new(),
    }
}

/// A query from request fields.
pub fn query(
    f: Option<pb::Filter>,
    from_seq: u64,
    to_seq: u64,
    desc: bool,
    limit: u32,
    cursor: Option<u64>,
) -> Result<ledger::log::Query, Status> {
    let f = f.unwrap_or_default();
    let opt = |s: String| (!s.is_empty()).then_some(s);
    let mut fields = Vec::with_capacity(f.fields.len());
    for (i, fe) in f.fields.into_iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&fe.json_value)
            .map_err(|e| status::invalid(&format!("filter.fields[{i}].json_value"), format!("not JSON: {e}")))?;
        fields.push((fe.key, v));
    }
    if limit > 10_000 {
        return Err(status::invalid("limit", format!("{limit} is above 10000")));
    }
    Ok(ledger::log::Query {
        category: opt(f.category),
        subject: opt(f.subject),
        actor: opt(f.actor),
        since: (f.since != 0).then_some(f.since),
        until: (f.until != 0).then_some(f.until),
        from_seq: (from_seq != 0).then_some(from_seq),
        to_seq: (to_seq != 0).then_some(to_seq),
        fields,
        desc,
        limit: limit as usize,
        cursor,
    })
}

/// A 32-byte hash from a request field.
pub fn hash32(field: &str, b: &[u8]) -> Result<[u8; 32], Status> {
    b.try_into().map_err(|_| status::invalid(field, format!("must be 32 bytes, got {}", b.len())))
}
