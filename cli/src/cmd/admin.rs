//! `ledger admin redact|reload-policy|reindex|approve`: audited admin
//! actions. Each prints the receipt of the entry that records it; under
//! dual control redact and reload-policy print the request that waits for a
//! second admin, and `approve` carries a request out
//! (docs/SECURITY.md "Dual control").
//!
//! Owns: printing those answers. Must not: decide whether an action waits
//! (ledgerd's configuration does).

use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_client::AdminServiceClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::cli::AdminCmd;
use crate::client::{Ctx, print_json};
use crate::error::CliResult;
use crate::render::receipt_json;

/// Runs the command on the leader (`Ctx::write`: with `--server a,b,c`
/// a follower's answer names it).
pub async fn run(ctx: &Ctx, cmd: AdminCmd) -> CliResult {
    let (log, actor) = (ctx.log.clone(), ctx.actor.clone());
    let (what, receipt, extra) = match cmd {
        AdminCmd::Redact { seq, reason } => {
            let req = pb::RedactRequest { log, seq, reason, actor };
            let r = ctx.write_on_leader(|ch| redact(ch, req.clone())).await?;
            if r.pending {
                return print_pending(
                    ctx,
                    &format!("the redaction of entry {seq}"),
                    r.receipt,
                    json!({"target_seq": seq}),
                );
            }
            (format!("entry {seq} redacted"), r.receipt, json!({"redacted_seq": seq, "pending": false}))
        }
        AdminCmd::ReloadPolicy { reason } => {
            let req = pb::ReloadPolicyRequest { log, reason, actor };
            let r = ctx.write_on_leader(|ch| reload_policy(ch, req.clone())).await?;
            if r.pending {
                return print_pending(ctx, "the policy reload", r.receipt, json!({}));
            }
            let text = format!("policy reloaded: {}", r.categories.join(", "));
            (text, r.receipt, json!({"categories": r.categories, "pending": false}))
        }
        AdminCmd::Reindex { reason } => {
            let req = pb::ReindexRequest { log, reason, actor };
            let r = ctx.write_on_leader(|ch| reindex(ch, req.clone())).await?;
            ("index rebuild requested: it runs at the server's next start".to_owned(), r.receipt, json!({}))
        }
        AdminCmd::Approve { seq, reason } => {
            let req = pb::AdminApproveRequest { log, seq, reason, actor };
            let r = ctx.write_on_leader(|ch| approve(ch, req.clone())).await?;
            return print_approved(ctx, &r);
        }
    };
    let receipt = receipt.unwrap_or_default();
    if ctx.json() {
        let mut v = extra;
        v["receipt"] = receipt_json(&receipt);
        print_json(&v);
    } else {
        println!("{what}; recorded as {} entry {}", category_of(&receipt), receipt.seq);
    }
    Ok(())
}

fn category_of(r: &pb::Receipt) -> String {
    ledger::leaf::decode_leaf(&r.leaf).map(|l| l.category).unwrap_or_default()
}

/// Dual control: `what` is requested (the `admin_request` entry in
/// `receipt`) and waits for a second admin. Also used by `keys rotate`.
pub fn print_pending(ctx: &Ctx, what: &str, receipt: Option<pb::Receipt>, mut extra: Value) -> CliResult {
    let receipt = receipt.unwrap_or_default();
    let approve = format!("ledger --log {} admin approve {} --reason '…'", ctx.log, receipt.seq);
    if ctx.json() {
        extra["pending"] = json!(true);
        extra["request_seq"] = json!(receipt.seq);
        extra["approve_with"] = json!(approve);
        extra["receipt"] = receipt_json(&receipt);
        print_json(&extra);
    } else {
        println!(
            "dual control: {what} is requested, not done; recorded as admin_request entry {}\n\
             it waits for a second admin: {approve}",
            receipt.seq
        );
    }
    Ok(())
}

fn print_approved(ctx: &Ctx, r: &pb::AdminApproveResponse) -> CliResult {
    let (approval, effect) = (r.approval.clone().unwrap_or_default(), r.effect.clone().unwrap_or_default());
    let rerun = approval.duplicate && effect.duplicate;
    if ctx.json() {
        let mut v = json!({"request_seq": r.request_seq, "action": r.action, "already_done": rerun,
            "approval": receipt_json(&approval), "effect": receipt_json(&effect)});
        if let Some(rot) = &r.rotation {
            v["rotation"] =
                json!({"new_vkey": rot.new_vkey, "new_hmac_key_id": rot.new_hmac_key_id, "retired": rot.retired});
        }
        if r.action == "reload_policy" && !rerun {
            v["categories"] = json!(r.categories);
        }
        print_json(&v);
        return Ok(());
    }
    let done =
        if rerun { "was already approved and carried out (nothing new written)" } else { "approved and carried out" };
    println!(
        "admin request {} ({}) {done}: approval entry {}, {} entry {}",
        r.request_seq,
        r.action,
        approval.seq,
        category_of(&effect),
        effect.seq
    );
    if let Some(rot) = &r.rotation {
        println!("retired {}\nnew vkey {}\nnew HMAC key {}", rot.retired.join(", "), rot.new_vkey, rot.new_hmac_key_id);
    }
    if r.action == "reload_policy" && !rerun {
        println!("policy reloaded: {}", r.categories.join(", "));
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

async fn approve(ch: Channel, req: pb::AdminApproveRequest) -> CliResult<pb::AdminApproveResponse> {
    Ok(AdminServiceClient::new(ch).approve(req).await?.into_inner())
}
