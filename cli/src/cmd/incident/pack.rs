//! `ledger incident pack INC --out DIR`: the evidence pack of FORMAT.md §14
//! — the subject's entries and the alerts they acknowledge, each with its
//! inclusion proof in one signed checkpoint (the subject's proofs come with
//! its Query pages: `proof_tree_size`), the consistency proof from the
//! auditor's checkpoint, the artifacts, the vkeys and the reports.
//!
//! Owns: what goes in the pack and fetching it. Must not: encode the
//! files itself (`ledger::pack::PackWriter` does, the encoding the
//! verifier reads back).

use std::path::Path;
use std::time::Instant;

use ledger::pack::types::files;
use ledger::pack::{Consistency, Manifest, PackError, PackLine, PackWriter, Role, TreeHead};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use serde_json::json;
use tonic::transport::Channel;

use super::{fetch, report};
use crate::cli::IncidentPackArgs;
use crate::client::{Ctx, print_json, read_text};
use crate::error::{CliError, CliResult};

const README: &str = include_str!("README.txt");

pub(super) fn pack_error(dir: &Path, e: PackError) -> CliError {
    match e {
        PackError::Io { name, source } => CliError::io(dir.join(name), source),
        other => CliError::Usage(other.to_string()),
    }
}

fn prepare(out: &Path) -> CliResult {
    if out.exists() && std::fs::read_dir(out).map_err(|e| CliError::io(out, e))?.next().is_some() {
        return Err(CliError::Usage(format!(
            "--out {}: exists and is not empty; choose a new directory",
            out.display()
        )));
    }
    Ok(())
}

/// `--trusted-checkpoint FILE`: its note and tree head (its signature is
/// the verifier's to check, with the auditor's keys).
fn trusted(p: &Path) -> CliResult<(String, ledger::note::Checkpoint)> {
    let note = read_text(p)?;
    let bad = |e: ledger::note::NoteError| {
        CliError::Usage(format!("--trusted-checkpoint {}: not a signed checkpoint note: {e}", p.display()))
    };
    let cp = ledger::note::Checkpoint::parse_body(&ledger::note::Note::parse(&note).map_err(bad)?.text).map_err(bad)?;
    Ok((note, cp))
}

/// What the pack holds, fetched.
struct Gathered {
    read: fetch::Read,
    /// the subject's entries and the alerts, in seq order, with their role
    all: Vec<(Role, pb::Entry)>,
    trusted: Option<(String, ledger::note::Checkpoint, Consistency)>,
    vkeys: String,
}

/// Fetches everything but the artifacts.
async fn gather(ctx: &Ctx, a: &IncidentPackArgs) -> CliResult<Gathered> {
    let trusted = a.trusted_checkpoint.as_deref().map(trusted).transpose()?;
    let read = fetch::read(ctx, &a.subject, a.as_of, true).await?;
    let size = read.checkpoint.size;
    if read.entries.is_empty() {
        let why = format!("incident {:?}: no entries with this subject in the tree of size {size}", a.subject);
        return Err(CliError::Usage(why));
    }
    let mut client = ctx.ledger().await?;
    let alerts = alert_entries(ctx, &mut client, &read.entries, size).await?;
    let trusted = match trusted {
        Some((note, t)) => {
            let c = consistency(ctx, &mut client, &t, size).await?;
            Some((note, t, c))
        }
        None => None,
    };
    let mut all: Vec<(Role, pb::Entry)> = read.entries.iter().map(|e| (Role::Subject, e.clone())).collect();
    all.extend(alerts.into_iter().map(|e| (Role::Alert, e)));
    all.sort_by_key(|(_, e)| e.seq);
    Ok(Gathered { read, all, trusted, vkeys: vkeys(ctx).await? })
}

/// Runs the command.
pub async fn run(ctx: &Ctx, a: IncidentPackArgs) -> CliResult {
    let started = Instant::now();
    prepare(&a.out)?;
    let g = gather(ctx, &a).await?;
    let mut w = PackWriter::create(&a.out).map_err(|e| pack_error(&a.out, e))?;
    let entries: Vec<pb::Entry> = g.all.iter().map(|(_, e)| e.clone()).collect();
    let artifacts = super::artifacts::fetch(ctx, &mut w, &entries, a.max_artifact_bytes, &a.out).await?;
    write_files(&mut w, &a, &g).map_err(|e| pack_error(&a.out, e))?;
    let cp = &g.read.checkpoint;
    let manifest = Manifest {
        version: ledger::pack::PACK_VERSION,
        subject: a.subject.clone(),
        origin: cp.origin.clone(),
        tree_size: cp.size,
        root: hex::encode(&cp.root),
        created_at: now_ns(),
        entries: g.all.len() as u64,
        subject_entries: g.read.entries.len() as u64,
        max_artifact_bytes: a.max_artifact_bytes,
        artifacts,
        trusted: g.trusted.as_ref().map(|(_, t, _)| TreeHead { size: t.size, root: hex::encode(t.root) }),
        files: Default::default(),
    };
    let m = w.finish(manifest).map_err(|e| pack_error(&a.out, e))?;
    print_summary(ctx, &a.out, &m, started.elapsed().as_secs_f64());
    Ok(())
}

/// Every file but the artifacts and the manifest (FORMAT.md §14.1).
fn write_files(w: &mut PackWriter, a: &IncidentPackArgs, g: &Gathered) -> Result<(), PackError> {
    let lines: Vec<PackLine> = g.all.iter().map(|(r, e)| line(*r, e)).collect();
    w.file(files::CHECKPOINT, g.read.checkpoint.note.as_bytes())?;
    w.entries(&lines)?;
    w.file(files::VKEYS, g.vkeys.as_bytes())?;
    if let Some((note, _, c)) = &g.trusted {
        w.file(files::TRUSTED, note.as_bytes())?;
        w.file(files::CONSISTENCY, &serde_json::to_vec_pretty(c).expect("serialises"))?;
    }
    let t = &g.read.timeline;
    w.file("report.json", &serde_json::to_vec_pretty(t).expect("serialises"))?;
    w.file("report.md", report::markdown(t).as_bytes())?;
    w.file("report.html", report::html(t).as_bytes())?;
    w.file("entries.csv", report::csv(&g.read.entries).as_bytes())?;
    w.file("README.txt", README.replace("{subject}", &a.subject).as_bytes())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn line(role: Role, e: &pb::Entry) -> PackLine {
    let payload = (e.redacted_by == 0).then_some(e.payload.as_slice());
    let bytes = ledger::pack::StoredBytes {
        seq: e.seq,
        leaf: &e.leaf,
        payload,
        redacted_by: e.redacted_by,
        hmac_key_id: &e.hmac_key_id,
        hmac: &e.hmac,
        proof: &e.proof,
    };
    ledger::pack::line_for(role, &bytes)
}

/// The alert entries the subject's `alert_ack`s name (`alert_seq`) that
/// are not the subject's, each with its inclusion proof in the tree of `size`.
async fn alert_entries(
    ctx: &Ctx,
    client: &mut LedgerServiceClient<Channel>,
    entries: &[pb::Entry],
    size: u64,
) -> CliResult<Vec<pb::Entry>> {
    let held: std::collections::BTreeSet<u64> = entries.iter().map(|e| e.seq).collect();
    let mut wanted = std::collections::BTreeSet::new();
    for e in entries.iter().filter(|e| e.decoded.as_ref().is_some_and(|l| l.category == "alert_ack")) {
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap_or_default();
        if let Some(s) =
            v.get("alert_seq").and_then(serde_json::Value::as_u64).filter(|s| *s < size && !held.contains(s))
        {
            wanted.insert(s);
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for seq in wanted {
        let g = client.get(pb::GetRequest { log: ctx.log.clone(), seq, with_proof: false }).await?.into_inner();
        let p =
            client.prove_inclusion(pb::ProveInclusionRequest { log: ctx.log.clone(), seq, tree_size: size }).await?;
        let mut e = g.entry.unwrap_or_default();
        e.proof = p.into_inner().proof;
        out.push(e);
    }
    Ok(out)
}

/// The consistency proof from the trusted checkpoint to the tree of `size`.
async fn consistency(
    ctx: &Ctx,
    client: &mut LedgerServiceClient<Channel>,
    t: &ledger::note::Checkpoint,
    size: u64,
) -> CliResult<Consistency> {
    if t.size > size {
        return Err(CliError::Usage(format!(
            "--trusted-checkpoint: its tree (size {}) is larger than the pack's (size {size}); use a later --as-of",
            t.size
        )));
    }
    if t.size == 0 || t.size == size {
        return Ok(Consistency { old_size: t.size, new_size: size, proof: Vec::new() });
    }
    let req = pb::ProveConsistencyRequest { log: ctx.log.clone(), old_size: t.size, new_size: size };
    let p = client.prove_consistency(req).await?.into_inner();
    Ok(Consistency { old_size: t.size, new_size: size, proof: p.proof.iter().map(hex::encode).collect() })
}

/// The log's vkeys, one per line.
async fn vkeys(ctx: &Ctx) -> CliResult<String> {
    let keys = ctx.keys().await?.public_keys(pb::PublicKeysRequest { log: ctx.log.clone() }).await?.into_inner();
    Ok(keys.keys.iter().filter(|k| !k.vkey.is_empty()).map(|k| format!("{}\n", k.vkey)).collect())
}

fn print_summary(ctx: &Ctx, out: &Path, m: &Manifest, seconds: f64) {
    let included = m.artifacts.iter().filter(|a| a.included).count();
    if ctx.json() {
        print_json(&json!({
            "out": out, "subject": m.subject, "entries": m.entries, "subject_entries": m.subject_entries,
            "tree_size": m.tree_size, "root": m.root, "artifacts_included": included,
            "artifacts_omitted": m.artifacts.len() - included, "trusted": m.trusted, "seconds": seconds,
        }));
    } else {
        println!(
            "wrote the evidence pack of {} to {}: {} entries ({} of the subject), {} artifacts ({} by hash only), checkpoint size {}",
            m.subject,
            out.display(),
            m.entries,
            m.subject_entries,
            m.artifacts.len(),
            m.artifacts.len() - included,
            m.tree_size
        );
        println!("verify offline: ledger verify-pack {} --vkey <the log's vkeys you trust>", out.display());
    }
}
