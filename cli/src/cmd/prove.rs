//! `ledger checkpoint`, `ledger prove`, `ledger verify-proof`.

use std::path::Path;

use ledger::receipt::TlogProof;
use ledger_proto::v1 as pb;
use serde_json::json;

use crate::cli::{ProveArgs, VerifyProofArgs};
use crate::client::{Ctx, print_json, read_file, read_text};
use crate::error::{CliError, CliResult};

/// `ledger checkpoint`.
pub async fn checkpoint(ctx: &Ctx) -> CliResult {
    let c = ctx
        .ledger()
        .await?
        .get_checkpoint(pb::GetCheckpointRequest { log: ctx.log.clone(), size: 0 })
        .await?
        .into_inner();
    if ctx.json() {
        print_json(&json!({"origin": c.origin, "size": c.size, "root": hex::encode(&c.root), "note": c.note}));
    } else {
        print!("{}", c.note);
    }
    Ok(())
}

/// `ledger prove`.
pub async fn prove(ctx: &Ctx, a: ProveArgs) -> CliResult {
    let mut client = ctx.ledger().await?;
    if let Some(c) = a.consistency {
        let req = pb::ProveConsistencyRequest { log: ctx.log.clone(), old_size: c[0], new_size: c[1] };
        let p = client.prove_consistency(req).await?.into_inner();
        let proof: Vec<String> = p.proof.iter().map(hex::encode).collect();
        if ctx.json() {
            print_json(
                &json!({"old_size": p.old_size, "new_size": p.new_size, "old_root": hex::encode(&p.old_root), "new_root": hex::encode(&p.new_root), "proof": proof}),
            );
        } else {
            println!(
                "consistency {} -> {}\nold root {}\nnew root {}",
                p.old_size,
                p.new_size,
                hex::encode(&p.old_root),
                hex::encode(&p.new_root)
            );
            proof.iter().for_each(|h| println!("{h}"));
        }
        return Ok(());
    }
    let seq = a.seq.ok_or_else(|| CliError::Usage("give SEQ or --consistency OLD NEW".into()))?;
    let p = client
        .prove_inclusion(pb::ProveInclusionRequest { log: ctx.log.clone(), seq, tree_size: a.size.unwrap_or(0) })
        .await?
        .into_inner();
    let proof: Vec<String> = p.proof.iter().map(hex::encode).collect();
    if ctx.json() {
        print_json(
            &json!({"seq": p.seq, "tree_size": p.tree_size, "leaf_hash": hex::encode(&p.leaf_hash), "proof": proof, "tlog_proof": p.tlog_proof}),
        );
    } else if !p.tlog_proof.is_empty() {
        print!("{}", p.tlog_proof);
    } else {
        println!("inclusion of seq {} in tree size {}\nleaf hash {}", p.seq, p.tree_size, hex::encode(&p.leaf_hash));
        proof.iter().for_each(|h| println!("{h}"));
    }
    Ok(())
}

/// Reads vkey files (one vkey per line, blank lines and # comments ignored).
pub fn load_vkeys(files: &[impl AsRef<Path>]) -> CliResult<Vec<ledger::note::NoteVerifier>> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        for (i, line) in read_text(f)?.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let v = ledger::note::NoteVerifier::from_vkey(line)
                .map_err(|e| CliError::Usage(format!("{} line {}: {e}", f.display(), i + 1)))?;
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage("no vkeys in the given files".into()));
    }
    Ok(out)
}

/// `ledger verify-proof` (offline).
pub fn verify_proof(ctx: &Ctx, a: VerifyProofArgs) -> CliResult {
    let keys = load_vkeys(&a.vkeys)?;
    let text = read_text(&a.file)?;
    let proof = TlogProof::parse(&text).map_err(|e| CliError::Usage(format!("{}: {e}", a.file.display())))?;
    let v = proof.verify(&keys, None).map_err(|e| CliError::Negative(format!("INVALID: {}: {e}", a.file.display())))?;
    let leaf = v.leaf.clone().unwrap_or_default();
    let witnesses = cosigners(&a.witness_vkeys, a.witness_quorum, &proof.checkpoint)?;
    if let Some(p) = &a.entry {
        let payload = read_file(p)?;
        let h = ledger::hash::sha256(&payload);
        if h.to_vec() != leaf.payload_sha256 {
            return Err(CliError::Negative(format!(
                "INVALID: {} does not hash to the payload the leaf commits to",
                p.display()
            )));
        }
    }
    if ctx.json() {
        print_json(
            &json!({"valid": true, "seq": proof.index, "leaf_hash": hex::encode(v.leaf_hash), "origin": v.checkpoint.origin,
            "tree_size": v.checkpoint.size, "root": hex::encode(v.checkpoint.root), "category": leaf.category, "subject": leaf.subject,
            "actor": leaf.actor, "recorded_at": leaf.recorded_at, "payload_checked": a.entry.is_some(),
            "cosigned_by": witnesses}),
        );
    } else {
        println!(
            "VALID: entry {} ({} {}) is in {} at tree size {}",
            proof.index, leaf.category, leaf.subject, v.checkpoint.origin, v.checkpoint.size
        );
        if a.entry.is_some() {
            println!("payload matches the leaf");
        }
        if !witnesses.is_empty() {
            println!("cosigned by {}", witnesses.join(", "));
        }
    }
    Ok(())
}

/// The given witnesses whose cosignatures on `note` verify; an error when
/// fewer than the quorum did, naming the missing ones. The quorum is
/// `quorum`, else the largest `quorum K` line of the files (a log's witness
/// policy: `ledger keys witnesses`, an export's `witnesses.vkey`), else all.
pub fn cosigners(files: &[std::path::PathBuf], quorum: Option<usize>, note: &str) -> CliResult<Vec<String>> {
    let (mut verifiers, mut policy) = (Vec::new(), None::<usize>);
    for f in files {
        for (i, line) in read_text(f)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let at = || format!("{} line {}", f.display(), i + 1);
            if let Some(k) = line.strip_prefix("quorum ") {
                let k: usize =
                    k.trim().parse().map_err(|_| CliError::Usage(format!("{}: quorum {k:?} is not a number", at())))?;
                policy = Some(policy.map_or(k, |p| p.max(k)));
                continue;
            }
            let v = ledger::cosign::CosignatureVerifier::from_vkey(line)
                .map_err(|e| CliError::Usage(format!("{}: {e}", at())))?;
            verifiers.push(v);
        }
    }
    let quorum = quorum.or(policy).unwrap_or(verifiers.len());
    if quorum > verifiers.len() {
        return Err(CliError::Usage(format!(
            "a quorum of {quorum} witness cosignatures is more than the {} witness vkeys given",
            verifiers.len()
        )));
    }
    let (body, lines) = ledger::cosign::split_note(note).unwrap_or((note, Vec::new()));
    let (ok, missing): (Vec<_>, Vec<_>) =
        verifiers.iter().partition(|v| lines.iter().any(|l| v.verify_line(body, l).is_some()));
    let ok: Vec<String> = ok.iter().map(|v| v.name().to_owned()).collect();
    if ok.len() < quorum {
        let missing: Vec<&str> = missing.iter().map(|v| v.name()).collect();
        return Err(CliError::Negative(format!(
            "INVALID: {} of the {quorum} witness cosignatures required; missing: {}",
            ok.len(),
            missing.join(", ")
        )));
    }
    Ok(ok)
}
