//! `ledger append`: build the payload, upload attachments, append, print
//! the receipt.

use ledger_proto::v1 as pb;
use serde_json::{Map, Value};

use crate::cli::AppendArgs;
use crate::client::{Ctx, field, ledger_client, new_request_id, print_json, read_file, time_arg};
use crate::error::{CliError, CliResult};
use crate::render;

fn payload(args: &AppendArgs) -> CliResult<Vec<u8>> {
    let mut obj = match &args.json {
        None => Map::new(),
        Some(src) => {
            let bytes = if src == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| CliError::io("<stdin>", e))?;
                b
            } else {
                read_file(std::path::Path::new(src))?
            };
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(o)) => o,
                Ok(_) => return Err(CliError::Usage(format!("--json {src}: the payload must be a JSON object"))),
                Err(e) => return Err(CliError::Usage(format!("--json {src}: not valid JSON: {e}"))),
            }
        }
    };
    for f in &args.fields {
        let (k, v) = field(f)?;
        obj.insert(k, v);
    }
    Ok(serde_json::to_vec(&Value::Object(obj)).expect("serialisable"))
}

/// Runs the command.
pub async fn run(ctx: &Ctx, args: AppendArgs) -> CliResult {
    let payload = payload(&args)?;
    let occurred_at = args.occurred_at.as_deref().map(|t| time_arg("--occurred-at", t)).transpose()?.unwrap_or(0);
    let mut artifacts = Vec::new();
    for path in &args.attach {
        let up = super::artifact::upload(ctx, path, args.subject.as_deref(), None).await?;
        artifacts.push(up.0);
    }
    // Every append carries a request_id, so a retry on another node returns
    // the original receipt instead of writing the entry twice.
    let request_id = args.request_id.filter(|r| !r.is_empty()).unwrap_or_else(new_request_id);
    let entry = pb::EntryInput {
        category: args.category,
        subject: args.subject.unwrap_or_default(),
        payload,
        occurred_at,
        request_id: request_id.clone(),
        artifacts,
    };
    let r = send(ctx, entry).await?;
    print(ctx, &r, request_id, args.proof_out.as_deref())
}

/// Appends `entry` (on the leader, retried as `--write-retry` says) and
/// returns its receipt.
pub async fn send(ctx: &Ctx, entry: pb::EntryInput) -> CliResult<pb::Receipt> {
    let req = pb::AppendRequest { log: ctx.log.clone(), entry: Some(entry), actor: ctx.actor.clone() };
    ctx.write(|ch| {
        let req = req.clone();
        async move { Ok(ledger_client(ch).append(req).await?.into_inner()) }
    })
    .await?
    .receipt
    .ok_or_else(|| CliError::Usage("the server sent no receipt".into()))
}

/// Prints a receipt (and writes its .tlog-proof to `proof_out`).
pub fn print(ctx: &Ctx, r: &pb::Receipt, request_id: String, proof_out: Option<&std::path::Path>) -> CliResult {
    if let Some(p) = proof_out {
        std::fs::write(p, &r.tlog_proof).map_err(|e| CliError::io(p, e))?;
    }
    if ctx.json() {
        let mut v = render::receipt_json(r);
        v["request_id"] = Value::String(request_id);
        print_json(&v);
    } else {
        println!("{}\nrequest id {request_id}", render::receipt_text(r));
        if let Some(p) = proof_out {
            println!("proof written to {}", p.display());
        }
    }
    Ok(())
}
