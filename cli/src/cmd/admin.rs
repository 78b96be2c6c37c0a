//! `ledger admin redact|reload-policy|reindex`: audited admin actions. Each
//! prints the receipt of the entry that records it.

use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_client::AdminServiceClient;
use serde_json::json;

use crate::cli::AdminCmd;
use crate::client::{Ctx, print_json};
use crate::error::CliResult;

/// Runs the command.
pub async fn run(ctx: &Ctx, cmd: AdminCmd) -> CliResult {
    let mut c = AdminServiceClient::new(ctx.channel().await?);
    let (log, actor) = (ctx.log.clone(), ctx.actor.clone());
    let (what, receipt, extra) = match cmd {
        AdminCmd::Redact { seq, reason } => {
            let r = c.redact(pb::RedactRequest { log, seq, reason, actor }).await?.into_inner();
            (format!("entry {seq} redacted"), r.receipt, json!({"redacted_seq": seq}))
        }
        AdminCmd::ReloadPolicy { reason } => {
            let r = c.reload_policy(pb::ReloadPolicyRequest { log, reason, actor }).await?.into_inner();
            let text = format!("policy reloaded: {}", r.categories.join(", "));
            (text, r.receipt, json!({"categories": r.categories}))
        }
        AdminCmd::Reindex { reason } => {
            let r = c.reindex(pb::ReindexRequest { log, reason, actor }).await?.into_inner();
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
