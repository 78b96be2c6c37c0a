//! `ledger incident show INC [--as-of SIZE]`: the subject's entries in
//! order with the milestones, clocks and findings (docs/CLI.md "ledger
//! incident"). Findings are reported, not an error: the exit code is 0.

use crate::cli::IncidentShowArgs;
use crate::client::{Ctx, print_json};
use crate::error::{CliError, CliResult};

use super::{fetch, report};

/// Runs the command.
pub async fn run(ctx: &Ctx, a: IncidentShowArgs) -> CliResult {
    let read = fetch::read(ctx, &a.subject, a.as_of, false).await?;
    if read.entries.is_empty() {
        return Err(CliError::Usage(format!(
            "incident {:?}: no entries with this subject in the tree of size {} (check the id, or --as-of)",
            a.subject, read.checkpoint.size
        )));
    }
    if ctx.json() {
        print_json(&serde_json::to_value(&read.timeline).expect("the timeline serialises"));
    } else {
        print!("{}", report::text(&read.timeline));
    }
    Ok(())
}
