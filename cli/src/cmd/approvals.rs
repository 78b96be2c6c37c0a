//! `ledger approvals pending [--category C]`: the entries still waiting for
//! a four-eyes approval, as ledgerd's policy says (PendingApprovals).
//!
//! Owns: printing the list. Must not: compute it (ledgerd does).

use ledger_proto::v1 as pb;
use serde_json::json;

use crate::cli::ApprovalsCmd;
use crate::client::{Ctx, print_json, rfc3339};
use crate::error::CliResult;
use crate::render;

/// Runs the command.
pub async fn run(ctx: &Ctx, c: ApprovalsCmd) -> CliResult {
    let ApprovalsCmd::Pending { category } = c;
    let req = pb::PendingApprovalsRequest { log: ctx.log.clone(), category: category.unwrap_or_default() };
    let r = ctx.ledger().await?.pending_approvals(req).await?.into_inner();
    if ctx.json() {
        let pending: Vec<_> = r
            .pending
            .iter()
            .map(|p| json!({"entry": render::entry_json(p.entry.as_ref().unwrap_or(&Default::default())), "role": p.role, "due": (p.due != 0).then_some(p.due)}))
            .collect();
        print_json(&json!({"pending": pending, "truncated": r.truncated}));
        return Ok(());
    }
    if r.pending.is_empty() {
        println!("nothing waits for an approval");
    }
    for p in &r.pending {
        let e = p.entry.clone().unwrap_or_default();
        let l = e.decoded.unwrap_or_default();
        let due = if p.due == 0 { "no limit".to_owned() } else { format!("due {}", rfc3339(p.due)) };
        println!("{} {} {} by {}: needs {} ({due})", e.seq, l.category, l.subject, l.actor, p.role);
    }
    if r.truncated {
        println!("(more are pending: the list stops at {})", r.pending.len());
    }
    Ok(())
}
