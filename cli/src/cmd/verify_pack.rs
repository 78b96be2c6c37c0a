//! `ledger verify-pack DIR --vkey FILE` (offline): checks an evidence pack
//! (FORMAT.md §14.5) with `ledger::pack::verify`, the same code the pack
//! was written for. Exits 0 when valid, 1 on any finding, 2 on usage or
//! I/O errors (as `ledger verify`). This module only reads the keys and
//! prints.

use ledger::keys::HmacKeySet;
use ledger::pack::{DirSource, PackError};

use crate::cli::VerifyPackArgs;
use crate::client::{Ctx, print_json, read_text};
use crate::cmd::prove::load_vkeys;
use crate::error::{CliError, CliResult};

/// Runs the command.
pub fn run(ctx: &Ctx, a: VerifyPackArgs) -> CliResult {
    if !a.dir.is_dir() {
        return Err(CliError::Usage(format!("{}: not a directory (give the pack's directory)", a.dir.display())));
    }
    let keys = load_vkeys(&a.vkeys)?;
    let trusted = a.trusted_checkpoint.as_deref().map(read_text).transpose()?;
    let hmac = match &a.hmac_key {
        Some(p) => Some(HmacKeySet::from_json(p, &read_text(p)?).map_err(|e| CliError::Usage(e.to_string()))?),
        None => None,
    };
    let src = DirSource::new(&a.dir);
    let report = ledger::pack::verify(&src, &keys, trusted.as_deref(), hmac.as_ref()).map_err(|e| match e {
        PackError::Io { name, source } => CliError::io(a.dir.join(name), source),
        other => CliError::Usage(format!("{}: {other}", a.dir.display())),
    })?;
    if ctx.json() {
        print_json(&serde_json::to_value(&report).expect("serialisable"));
    } else {
        print!("{}", report.to_text());
    }
    if report.report.ok { Ok(()) } else { Err(CliError::Negative(format!("{} findings", report.report.finding_count))) }
}
