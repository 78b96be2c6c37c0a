//! `ledger verify` (offline): PATH is an export bundle or a stopped
//! server's log directory. Exits 0 when valid, 1 on any finding, 2 on usage
//! or I/O errors; warnings (stored payloads that break the payload rules,
//! FORMAT.md §11) are printed and leave the exit code 0. Uses
//! `ledger::verify`, the same code as the server.

use std::path::{Path, PathBuf};

use ledger::keys::HmacKeySet;
use ledger::verify::{VerifyInput, verify};

use crate::cli::VerifyArgs;
use crate::client::{Ctx, print_json, read_text};
use crate::cmd::prove::load_vkeys;
use crate::error::{CliError, CliResult};

fn journal_dir(path: &Path) -> CliResult<PathBuf> {
    let j = ledger::layout::journal(path);
    if j.is_dir() {
        return Ok(j);
    }
    if path.file_name().is_some_and(|n| n == "journal") && path.is_dir() {
        return Ok(path.to_owned());
    }
    Err(CliError::Usage(format!(
        "{}: no journal/ directory here; give an export (ledger export --out DIR) or a log directory (<data_dir>/logs/<name>)",
        path.display()
    )))
}

/// The trusted keys: the given files, else the bundle's own (warned).
fn vkeys(a: &VerifyArgs) -> CliResult<(Vec<ledger::note::NoteVerifier>, Option<String>)> {
    if !a.vkeys.is_empty() {
        return Ok((load_vkeys(&a.vkeys)?, None));
    }
    let bundle = a.path.join("vkeys");
    if bundle.is_file() {
        let warn = format!(
            "no --vkey given: trusting the vkeys inside the bundle ({}); pass the keys you obtained independently",
            bundle.display()
        );
        return Ok((load_vkeys(&[bundle])?, Some(warn)));
    }
    let ring = ledger::layout::keyring(&a.path);
    if ring.is_file() {
        let r = ledger::keys::Keyring::load(&ring).map_err(|e| CliError::Usage(e.to_string()))?;
        let warn = format!("no --vkey given: using the public halves of {}", ring.display());
        return Ok((r.verifiers(), Some(warn)));
    }
    Err(CliError::Usage("no trusted keys: pass --vkey FILE (the log's vkeys, e.g. from `ledger keys public`)".into()))
}

/// Runs the command.
pub fn run(ctx: &Ctx, a: VerifyArgs) -> CliResult {
    let (keys, warning) = vkeys(&a)?;
    if let Some(w) = &warning {
        eprintln!("warning: {w}");
    }
    let hmac_given = a.hmac_key.is_some();
    let report = verify_with(&a, &keys, true)?;
    let cosigned_by = witnesses(&a)?;
    if ctx.json() {
        let mut v = serde_json::to_value(&report).expect("serialisable");
        v["hmac_checked_with_key"] = serde_json::json!(hmac_given);
        v["keys_from_bundle"] = serde_json::json!(warning.is_some());
        v["cosigned_by"] = serde_json::json!(cosigned_by);
        print_json(&v);
    } else {
        print!("{}", report.to_text());
        if !hmac_given {
            println!("note: HMAC tags not checked (no --hmac-key)");
        }
    }
    if report.ok { Ok(()) } else { Err(CliError::Negative(format!("{} findings", report.finding_count))) }
}

/// With `--witness-vkey`: the witnesses that cosigned the checkpoint the
/// journal is checked against (an error below the quorum).
/// Without `--witness-vkey`, an export's `witnesses.vkey` (the log's
/// witness policy) is used when present.
fn witnesses(a: &VerifyArgs) -> CliResult<Vec<String>> {
    let bundled = a.path.join("witnesses.vkey");
    let files = if a.witness_vkeys.is_empty() && bundled.is_file() { vec![bundled] } else { a.witness_vkeys.clone() };
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let file = a.trusted_checkpoint.clone().unwrap_or_else(|| a.path.join("checkpoint"));
    crate::cmd::prove::cosigners(&files, a.witness_quorum, &read_text(&file)?)
}

/// Verifies and returns the report (no output, no progress bar).
pub fn report(a: &VerifyArgs) -> CliResult<ledger::verify::Report> {
    let (keys, _) = vkeys(a)?;
    verify_with(a, &keys, false)
}

fn verify_with(
    a: &VerifyArgs,
    keys: &[ledger::note::NoteVerifier],
    show_progress: bool,
) -> CliResult<ledger::verify::Report> {
    let journal = journal_dir(&a.path)?;
    let hmac = match &a.hmac_key {
        Some(p) => Some(HmacKeySet::from_json(p, &read_text(p)?).map_err(|e| CliError::Usage(e.to_string()))?),
        None => None,
    };
    let trusted = match &a.trusted_checkpoint {
        Some(p) => Some(read_text(p)?),
        None => {
            let c = a.path.join("checkpoint");
            if c.is_file() { Some(read_text(&c)?) } else { None }
        }
    };
    let start_file = a.path.join("start.json");
    let start: Option<ledger::verify::StartState> = if start_file.is_file() {
        let text = read_text(&start_file)?;
        Some(serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", start_file.display())))?)
    } else {
        None
    };
    let total: u64 = ledger::journal::list_segments(&journal)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = if show_progress {
        crate::progress::bytes_bar(Some(total), "verifying")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let input = VerifyInput {
        journal_dir: &journal,
        vkeys: keys,
        hmac_keys: hmac.as_ref(),
        trusted_checkpoint: trusted.as_deref(),
        progress: Some(&progress),
        start: start.as_ref(),
    };
    let report = verify(&input).map_err(|e| match e {
        ledger::verify::VerifyError::TrustedCheckpoint(n) => {
            CliError::Negative(format!("INVALID: the trusted checkpoint does not verify with the given keys: {n}"))
        }
        other => CliError::Usage(other.to_string()),
    })?;
    bar.finish_and_clear();
    Ok(report)
}
