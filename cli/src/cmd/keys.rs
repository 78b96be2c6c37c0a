//! `ledger keys status|rotate|public|generate|stage`.

use std::path::Path;

use ledger_proto::v1 as pb;
use serde_json::json;

use crate::cli::KeysCmd;
use crate::client::{Ctx, print_json, rfc3339};
use crate::error::{CliError, CliResult};

/// Runs the command.
pub async fn run(ctx: &Ctx, cmd: KeysCmd) -> CliResult {
    match cmd {
        KeysCmd::Status => status(ctx).await,
        KeysCmd::Rotate { reason } => {
            let req = pb::RotateRequest { log: ctx.log.clone(), reason, actor: ctx.actor.clone() };
            // on the leader: a node list's follower names it
            let r = ctx.write_on_leader(|ch| rotate(ch, req.clone())).await?;
            if r.pending {
                return super::admin::print_pending(ctx, "the key rotation", r.receipt, json!({}));
            }
            let receipt = r.receipt.unwrap_or_default();
            if ctx.json() {
                print_json(
                    &json!({"pending": false, "new_vkey": r.new_vkey, "new_hmac_key_id": r.new_hmac_key_id, "retired": r.retired, "receipt": crate::render::receipt_json(&receipt)}),
                );
            } else {
                println!(
                    "rotated: retired {}\nnew vkey {}\nnew HMAC key {}\nkey_rotation entry {}",
                    r.retired.join(", "),
                    r.new_vkey,
                    r.new_hmac_key_id,
                    receipt.seq
                );
            }
            Ok(())
        }
        KeysCmd::Public => {
            let keys =
                ctx.keys().await?.public_keys(pb::PublicKeysRequest { log: ctx.log.clone() }).await?.into_inner().keys;
            if ctx.json() {
                let v: Vec<_> = keys.iter().map(|k| json!({"id": k.id, "kind": k.kind, "state": k.state, "vkey": k.vkey, "created_at": k.created_at, "not_after": k.not_after, "retired_at": k.retired_at})).collect();
                print_json(&json!({"keys": v}));
            } else {
                for k in keys.iter().filter(|k| !k.vkey.is_empty()) {
                    println!("{}", k.vkey);
                }
            }
            Ok(())
        }
        KeysCmd::Witnesses => {
            let r = ctx.keys().await?.public_keys(pb::PublicKeysRequest { log: ctx.log.clone() }).await?.into_inner();
            if ctx.json() {
                let quorum = (r.witness_quorum > 0).then_some(r.witness_quorum);
                print_json(&json!({"quorum": quorum, "vkeys": r.witness_vkeys}));
            } else {
                if r.witness_quorum > 0 {
                    println!("quorum {}", r.witness_quorum);
                }
                for v in &r.witness_vkeys {
                    println!("{v}");
                }
            }
            Ok(())
        }
        KeysCmd::Generate { data_dir, origin_prefix } => {
            let dir = ledger::layout::log_dir(&data_dir, &ctx.log);
            let ring = ledger::layout::keyring(&dir);
            if ring.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists: this log has keys already (rotate them with `ledger keys rotate`)",
                    ring.display()
                )));
            }
            let origin = format!("{origin_prefix}/{}", ctx.log);
            let now = (ledger::log::system_clock())();
            let (r, _) = ledger::keys::Keyring::open_or_create(&ring, &origin, now, &Default::default())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let vkeys: Vec<String> = r.verifiers().iter().map(|v| v.to_vkey()).collect();
            if ctx.json() {
                print_json(&json!({"keyring": ring, "origin": origin, "vkeys": vkeys}));
            } else {
                println!("created {} (mode 0600)\n{}", ring.display(), vkeys.join("\n"));
            }
            Ok(())
        }
        KeysCmd::Stage { data_dir } => stage(ctx, &data_dir),
    }
}

/// `ledger keys stage`: adds the next rotation's keys to the log's keyring
/// file, offline.
fn stage(ctx: &Ctx, data_dir: &Path) -> CliResult {
    let ring = ledger::layout::keyring(&ledger::layout::log_dir(data_dir, &ctx.log));
    if !ring.exists() {
        return Err(CliError::Usage(format!(
            "{}: no keyring: log {} has no keys yet (create them with `ledger keys generate`)",
            ring.display(),
            ctx.log
        )));
    }
    let key_error = |e: ledger::keys::KeyError| CliError::Usage(e.to_string());
    let mut keys = ledger::keys::Keyring::load(&ring).map_err(key_error)?;
    let now = (ledger::log::system_clock())();
    let s = keys.stage(now, &Default::default()).map_err(key_error)?;
    if ctx.json() {
        print_json(&json!({"keyring": ring, "ed25519_id": s.ed25519_id, "hmac_id": s.hmac_id, "vkey": s.vkey}));
    } else {
        println!(
            "staged in {} (mode 0600): ed25519 key {}, HMAC key {}\nvkey {}\n\
             next: copy {} to the log's keyring on every node of log {} (same path under each node's data \
             directory, mode 0600), then run `ledger keys rotate --reason …` against the leader",
            ring.display(),
            s.ed25519_id,
            s.hmac_id,
            s.vkey,
            ring.display(),
            ctx.log
        );
    }
    Ok(())
}

async fn status(ctx: &Ctx) -> CliResult {
    let keys = ctx.keys().await?.status(pb::KeyStatusRequest { log: ctx.log.clone() }).await?.into_inner().keys;
    let worst = keys.iter().filter(|k| k.state == "active").map(|k| k.verdict.as_str()).max_by_key(|v| match *v {
        "fail" => 2,
        "warn" => 1,
        _ => 0,
    });
    if ctx.json() {
        let v: Vec<_> = keys.iter().map(|k| json!({"id": k.id, "kind": k.kind, "state": k.state, "created_at": k.created_at,
            "not_after": k.not_after, "age_days": k.age_days, "days_to_expiry": k.days_to_expiry, "verdict": k.verdict, "reason": k.reason})).collect();
        print_json(&json!({"verdict": worst.unwrap_or("ok"), "keys": v}));
    } else {
        println!("{:<18} {:<12} {:<8} {:>4} {:>7}  {:<24} verdict", "id", "kind", "state", "age", "expires", "created");
        for k in &keys {
            let reason = if k.reason.is_empty() { String::new() } else { format!(" ({})", k.reason) };
            println!(
                "{:<18} {:<12} {:<8} {:>3}d {:>6}d  {:<24} {}{reason}",
                k.id,
                k.kind,
                k.state,
                k.age_days,
                k.days_to_expiry,
                rfc3339(k.created_at),
                k.verdict
            );
        }
    }
    match worst {
        Some("fail") => Err(CliError::Negative("a key must be rotated now: ledger keys rotate --reason '…'".into())),
        _ => Ok(()),
    }
}

async fn rotate(ch: tonic::transport::Channel, req: pb::RotateRequest) -> CliResult<pb::RotateResponse> {
    Ok(ledger_proto::v1::key_service_client::KeyServiceClient::new(ch).rotate(req).await?.into_inner())
}
