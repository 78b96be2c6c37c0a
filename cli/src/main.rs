//! `ledger`: parse the command line, run one command, map its error to an
//! exit code and a one-line message. Everything else lives in the modules.

mod bulk;
mod cli;
mod client;
mod cmd;
mod error;
mod http;
mod progress;
mod render;

use clap::{CommandFactory as _, Parser as _};
use cli::{Cli, Command};
use error::CliResult;

/// jemalloc: 1.6× the appends of glibc's malloc at the same memory
/// (docs/BENCHMARKS-HISTORY.md, "What changed on 2026-11-22").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn dispatch(cli: Cli) -> CliResult {
    let ctx = client::Ctx::new(&cli);
    match cli.command {
        Command::Append(a) => cmd::append::run(&ctx, a).await,
        Command::Ack(a) => cmd::ack::run(&ctx, a).await,
        Command::Approve(a) => cmd::approve::run(&ctx, a).await,
        Command::Approvals(a) => cmd::approvals::run(&ctx, a).await,
        Command::Import(a) => cmd::import::run(&ctx, a).await,
        Command::Get(a) => cmd::query::get(&ctx, a).await,
        Command::Query(a) => cmd::query::query(&ctx, a).await,
        Command::Tail(a) => cmd::query::tail(&ctx, a).await,
        Command::Checkpoint => cmd::prove::checkpoint(&ctx).await,
        Command::Status => cmd::status::run(&ctx).await,
        Command::Prove(a) => cmd::prove::prove(&ctx, a).await,
        Command::Artifact(a) => cmd::artifact::run(&ctx, a).await,
        Command::Summary(a) => cmd::summary::run(&ctx, a).await,
        Command::Export(a) => cmd::export::run(&ctx, a).await,
        Command::Verify(a) if a.tiles => cmd::mirror::verify(&ctx, a).await,
        Command::Verify(a) => cmd::verify::run(&ctx, a),
        Command::Mirror(a) => cmd::mirror::run(&ctx, a).await,
        Command::VerifyProof(a) => cmd::prove::verify_proof(&ctx, a),
        Command::Incident(a) => cmd::incident::run(&ctx, a).await,
        Command::VerifyPack(a) => cmd::verify_pack::run(&ctx, a),
        Command::Keys(a) => cmd::keys::run(&ctx, a).await,
        Command::Compliance(a) => cmd::compliance::run(&ctx, a).await,
        Command::Admin(a) => cmd::admin::run(&ctx, a).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ledger", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rt.block_on(dispatch(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
