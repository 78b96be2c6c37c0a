//! `ledger incident show|pack`: one incident's timeline, and its evidence
//! pack (FORMAT.md §14). One module per subcommand; `fetch` reads ledgerd,
//! `report` and `svg` render for people.

mod artifacts;
mod fetch;
mod pack;
mod report;
mod show;
mod svg;

use crate::cli::IncidentCmd;
use crate::client::Ctx;
use crate::error::CliResult;

/// Runs `ledger incident …`.
pub async fn run(ctx: &Ctx, cmd: IncidentCmd) -> CliResult {
    match cmd {
        IncidentCmd::Show(a) => show::run(ctx, a).await,
        IncidentCmd::Pack(a) => pack::run(ctx, a).await,
    }
}
