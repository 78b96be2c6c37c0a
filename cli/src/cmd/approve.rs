//! `ledger approve SEQ --reason R [--as ROLE]`: a second person's approval
//! (or sign-off) of an entry, as an `approval` entry naming its seq and
//! leaf hash; ledgerd checks the four-eyes rules when it is appended
//! (docs/SECURITY.md "Four eyes").
//!
//! Owns: the approval payload. Must not: check the rules itself (ledgerd
//! does, with the grants this client cannot see).

use ledger_proto::v1 as pb;
use serde_json::{Map, Value, json};

use crate::cli::ApproveArgs;
use crate::client::{Ctx, new_request_id};
use crate::error::CliResult;

/// Runs the command.
pub async fn run(ctx: &Ctx, a: ApproveArgs) -> CliResult {
    let req = pb::GetRequest { log: ctx.log.clone(), seq: a.seq, with_proof: false };
    let e = ctx.ledger().await?.get(req).await?.into_inner().entry.unwrap_or_default();
    let subject = e.decoded.as_ref().map(|l| l.subject.clone()).unwrap_or_default();
    let mut p = Map::new();
    p.insert("approved_seq".into(), json!(a.seq));
    p.insert("approved_leaf_hash".into(), json!(hex::encode(&e.leaf_hash)));
    p.insert("reason".into(), json!(a.reason));
    if let Some(role) = &a.role {
        p.insert("role".into(), json!(role));
    }
    let request_id = new_request_id();
    let entry = pb::EntryInput {
        category: "approval".into(),
        subject,
        payload: serde_json::to_vec(&Value::Object(p)).expect("serialisable"),
        occurred_at: 0,
        request_id: request_id.clone(),
        artifacts: Vec::new(),
    };
    let r = super::append::send(ctx, entry).await?;
    super::append::print(ctx, &r, request_id, None)
}
