//! `ledger admin redact|reload-policy|reindex`: audited admin actions. Each
//! prints the receipt of the entry that records it.

use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_client::AdminServiceClient;
use serde_json::json;
use tonic::transport::Channel;

use crate::cli::AdminCmd;
use crate::client::{Ctx, print_json};
use crate::error::CliResult;

/// Runs the command on the leader (`Ctx::write`: with `--server a,b,c`
/// a follower's answer names it).
pub async fn run(ctx: &Ctx, cmd: AdminCmd) -> CliResult {
    let (log, actor) = (ctx.log.clone(), ctx.actor.clone());
    let (what, receipt, extra) = match cmd {
        AdminCmd::Redact { seq, reason } => {
            let req = pb::RedactRequest { log, seq, reason, actor };
            let r = ctx.write_on_leader(|ch| redact(ch, req.clone())).await?;
            (format!("entry {seq} redacted"), r.receipt, json!({"redacted_seq": seq}))
        }
        AdminCmd::ReloadPolicy { reason } => {
            let req = pb::ReloadPolicyRequest { log, reason, actor };
            let r = ctx.write_on_leader(|ch| reload_policy(ch, req.clone())).await?;
            let text = format!("policy reloaded: {}", r.categories.join(", "));
            (text, r.receipt, json!({"categories": r.categories}))
        }
        AdminCmd::Reindex { reason } => {
            let req = pb::ReindexRequest { log, reason, actor };
            let r = ctx.write_on_leader(|ch| reindex(ch, req.clone())).await?;
            ("index rebuild requested: it runs at the server's next start".to_owned(), r.receipt, json!({}))
        }
    };
    let receipt = receipt.unwrap_or_default();
    if ctx.json() {
        let mut v = extra;
        v["receipt"] = crate::render::receipt_json(&receipt);
        print_json(&v);
    } else {
        let category = ledger::leaf::decode_leaf(&receipt.leaf).map(|l| l.category).unwrap_or_default();
        println!("{what}; recorded as {category} entry {}", receipt.seq);
    }
    Ok(())
}

async fn redact(ch: Channel, req: pb::RedactRequest) -> CliResult<pb::RedactResponse> {
    Ok(AdminServiceClient::new(ch).redact(req).await?.into_inner())
}

async fn reload_policy(ch: Channel, req: pb::ReloadPolicyRequest) -> CliResult<pb::ReloadPolicyResponse> {
    Ok(AdminServiceClient::new(ch).reload_policy(req).await?.into_inner())
}

async fn reindex(ch: Channel, req: pb::ReindexRequest) -> CliResult<pb::ReindexResponse> {
    Ok(AdminServiceClient::new(ch).reindex(req).await?.into_inner())
}
