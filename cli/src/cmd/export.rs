//! `ledger export`: a self-contained bundle for offline verification.
//!
//! Layout: `journal/*.seg`, `vkeys` (one per line), `hmac-keys.json` (ids and
//! windows, no secrets), `checkpoint` (the latest signed note, covered by
//! the journal).

use std::io::Write as _;
use std::path::Path;

use ledger_proto::v1 as pb;
use serde_json::json;

use crate::cli::ExportArgs;
use crate::client::{Ctx, print_json};
use crate::error::{CliError, CliResult};

fn prepare(out: &Path) -> CliResult {
    if out.exists() && std::fs::read_dir(out).map_err(|e| CliError::io(out, e))?.next().is_some() {
        return Err(CliError::Usage(format!("{}: exists and is not empty; choose a new directory", out.display())));
    }
    std::fs::create_dir_all(ledger::layout::journal(out)).map_err(|e| CliError::io(out, e))
}

/// Runs the command.
pub async fn run(ctx: &Ctx, a: ExportArgs) -> CliResult {
    let (files, bytes, size) = run_quiet(ctx, ExportArgs { out: a.out.clone(), from: a.from }).await?;
    if ctx.json() {
        print_json(&json!({"out": a.out, "segments": files, "bytes": bytes, "tree_size": size}));
    } else {
        println!("exported {files} segments ({bytes} bytes) and the checkpoint of size {size} to {}", a.out.display());
        println!("verify offline: ledger verify {} --vkey <the log's vkeys you trust>", a.out.display());
    }
    Ok(())
}

/// Writes the bundle; returns (segments, bytes, tree size).
pub async fn run_quiet(ctx: &Ctx, a: ExportArgs) -> CliResult<(u64, u64, String)> {
    prepare(&a.out)?;
    let req = pb::ExportRequest { log: ctx.log.clone(), from_seq: a.from };
    let mut st = ctx.ledger().await?.export(req).await?.into_inner();
    let (mut files, mut bytes, mut checkpoint) = (0u64, 0u64, String::new());
    let mut current: Option<(String, std::fs::File)> = None;
    let bar = crate::progress::bytes_bar(None, "exporting");
    while let Some(m) = st.message().await? {
        match m.item {
            Some(pb::export_chunk::Item::File(c)) => {
                let rel = Path::new(&c.name);
                if rel.components().count() != 2 || !c.name.starts_with("journal/") || !c.name.ends_with(".seg") {
                    return Err(CliError::Usage(format!("the server sent an unexpected file name {:?}", c.name)));
                }
                if current.as_ref().is_none_or(|(n, _)| n != &c.name) {
                    let p = a.out.join(rel);
                    current = Some((c.name.clone(), std::fs::File::create(&p).map_err(|e| CliError::io(&p, e))?));
                    files += 1;
                }
                let (n, f) = current.as_mut().expect("just set");
                f.write_all(&c.data).map_err(|e| CliError::io(a.out.join(n.as_str()), e))?;
                bytes += c.data.len() as u64;
                bar.inc(c.data.len() as u64);
            }
            Some(pb::export_chunk::Item::Vkeys(v)) => write(&a.out, "vkeys", &v)?,
            Some(pb::export_chunk::Item::HmacFingerprints(h)) => write(&a.out, "hmac-keys.json", &h)?,
            Some(pb::export_chunk::Item::Start(s)) => write(&a.out, "start.json", &s)?,
            Some(pb::export_chunk::Item::Witnesses(w)) => write(&a.out, "witnesses.vkey", &w)?,
            Some(pb::export_chunk::Item::Checkpoint(c)) => {
                write(&a.out, "checkpoint", &c)?;
                checkpoint = c;
            }
            None => {}
        }
    }
    if let Some((n, f)) = current {
        f.sync_all().map_err(|e| CliError::io(a.out.join(n), e))?;
    }
    bar.finish_and_clear();
    if checkpoint.is_empty() {
        return Err(CliError::Usage("the export ended without a checkpoint: it is incomplete".into()));
    }
    let size = checkpoint.lines().nth(1).unwrap_or("?").to_owned();
    Ok((files, bytes, size))
}

fn write(dir: &Path, name: &str, text: &str) -> CliResult {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| CliError::io(&p, e))
}
