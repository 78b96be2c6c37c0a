//! `ledger-bench`: measurements of the ledger (docs/BENCHMARKS.md).
//!
//! `ledger-bench lib-append [N] [BATCH] [SUBJECTS]` appends N entries with
//! 512-byte JSON payloads, request ids and SUBJECTS distinct subjects
//! through the library (no gRPC), every batch fdatasynced, and prints the
//! throughput and the disk used per entry by the journal and the index
//! (`BENCH_NO_REQUEST_ID=1` leaves the request ids out, for memory probes;
//! `BENCH_KEEP=1` keeps the log directory, e.g. for `ledger verify`;
//! `BENCH_NO_PIPELINE=1` waits for each batch's sync before sequencing the
//! next, as before the pipelined group commit).
//! `load`, `pg`, `soak`, `tiles`, `alertmanager`, `witness`, `pack` (an incident's evidence pack), `rules` (the Stage5 acceptance rules), and `fsync` and `randread` (the disk's floors): see
//! their modules.

mod alertmanager;
mod disk;
mod load;
mod pack;
mod pg;
mod rules;
mod soak;
mod tiles;
mod witness;

use std::time::Instant;

/// jemalloc: 1.6× the appends of glibc's malloc at the same memory
/// (docs/BENCHMARKS-HISTORY.md, "What changed on 2026-11-22").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn du(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| {
            let m = e.metadata().ok();
            // allocated bytes, not the length: the request tables are sparse files
            if m.as_ref().is_some_and(|m| m.is_dir()) { du(&e.path()) } else { m.map_or(0, |m| m.blocks() * 512) }
        })
        .sum()
}

fn lib_append() {
    let (n, batch, subjects) = (arg(2, 200_000), arg(3, 1024), arg(4, 1000).max(1));
    let dir = std::env::temp_dir().join(format!("ledger-bench-{}", std::process::id()));
    let (l, _) = ledger::store::file::open(&dir, ledger::LogOptions::new("bench.local/lib")).expect("open");
    let filler = "x".repeat(480);
    let limits = ledger::entry::Limits::default();
    let make = |i: u64| {
        let payload = format!(r#"{{"seq_hint":{i:>10},"note":"{filler}"}}"#);
        let input = ledger::EntryInput {
            category: "alert_ack".into(),
            subject: format!("INC-{}", i % subjects),
            payload: payload.into_bytes(),
            request_id: if std::env::var_os("BENCH_NO_REQUEST_ID").is_some() {
                String::new()
            } else {
                format!("req-{i}")
            },
            ..Default::default()
        };
        input.validate("bench", &limits).expect("valid")
    };
    let started = Instant::now();
    append_all(&l, n, batch, std::env::var_os("BENCH_NO_PIPELINE").is_some(), make);
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .unwrap_or_default();
    l.close().expect("close");
    let (j, x) = (du(&dir.join("journal")), du(&dir.join("index")));
    println!("lib-append: {n} entries, batch {batch}, {subjects} subjects, payload 512 B");
    println!("  throughput  {:.0} entries/s ({secs:.2} s), peak RSS {rss} KiB", n as f64 / secs);
    println!(
        "  disk/entry  journal {:.0} B + index {:.0} B = payload + {:.0} B",
        j as f64 / n as f64,
        x as f64 / n as f64,
        (j + x) as f64 / n as f64 - 512.0
    );
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("  kept        {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Appends `make(0..n)` in batches of `batch` with the pipelined group
/// commit (this thread sequences the next batch while a second waits for
/// each batch's sync); `serial`: waits for each batch's sync first.
fn append_all(l: &ledger::Ledger, n: u64, batch: u64, serial: bool, make: impl Fn(u64) -> ledger::NewEntry) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<ledger::log::PendingBatch>(0);
    std::thread::scope(|s| {
        s.spawn(move || {
            for p in rx {
                for r in p.wait() {
                    r.expect("append");
                }
            }
        });
        let mut i = 0;
        while i < n {
            let entries: Vec<_> = (i..(i + batch).min(n)).map(&make).collect();
            if serial {
                for r in l.append_batch(entries) {
                    r.expect("append");
                }
            } else {
                tx.send(l.begin_batch(entries)).expect("the waiting thread runs");
            }
            i += batch;
        }
        drop(tx);
    });
}

/// Writes a JSON report to the file named (`-` or none: standard output).
fn emit(report: &serde_json::Value, to: Option<&String>) {
    let text = serde_json::to_string_pretty(report).expect("json");
    match to.filter(|p| p.as_str() != "-") {
        Some(p) => std::fs::write(p, text).expect("write the JSON report"),
        None => println!("{text}"),
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("lib-append") => lib_append(),
        Some("rules") => rules::run(arg(2, 1_000_000), arg(3, 3)),
        Some("soak") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let minutes: f64 = args.get(3).and_then(|m| m.parse().ok()).unwrap_or(10.0);
            let rate: u64 = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(1000);
            let preload: u64 = args.get(5).and_then(|r| r.parse().ok()).unwrap_or(0);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            if !rt.block_on(soak::run(&ledgerd, minutes, rate, preload)) {
                std::process::exit(1);
            }
        }
        Some("load") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let scenario = args.get(3).cloned().unwrap_or_else(|| "unary".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let (arg, seconds, arg2) = (num(4, 64), num(5, 20), num(7, 0));
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(load::run(&ledgerd, &scenario, arg, arg2, seconds as f64));
            load::print(&report);
            emit(&report, args.get(6));
        }
        Some("tiles") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(tiles::run(&ledgerd, num(3, 1000), num(4, 20) as f64, num(5, 10_000_000)));
            emit(&report, args.get(6));
        }
        Some("pack") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(pack::run(&ledgerd, num(3, 10_000), num(4, 1_000_000), num(5, 3)));
            emit(&report, args.get(6));
        }
        Some("alertmanager") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(alertmanager::run(&ledgerd, num(3, 200), num(4, 20) as f64));
            emit(&report, args.get(5));
        }
        Some("witness") => {
            let args: Vec<String> = std::env::args().collect();
            let ledgerd = args.get(2).cloned().unwrap_or_else(|| "target/release/ledgerd".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(witness::run(&ledgerd, num(3, 10_000), num(4, 30) as f64));
            emit(&report, args.get(5));
        }
        Some("fsync") => {
            let args: Vec<String> = std::env::args().collect();
            let dir = args.get(4).map_or_else(std::env::temp_dir, std::path::PathBuf::from);
            let report = disk::fsync_probe(arg(2, 1000), arg(3, 20) as f64, &dir);
            load::print(&report);
            println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        }
        Some("randread") => {
            let args: Vec<String> = std::env::args().collect();
            let file = args
                .get(2)
                .map(std::path::PathBuf::from)
                .expect("usage: ledger-bench randread FILE [SECONDS] [THREADS]");
            let report = disk::randread(&file, arg(3, 10) as f64, arg(4, 1));
            load::print(&report);
            println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        }
        Some("pg") => {
            let args: Vec<String> = std::env::args().collect();
            let conninfo = args.get(2).cloned().unwrap_or_else(|| "host=127.0.0.1 user=bench dbname=postgres".into());
            let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let report = rt.block_on(pg::run(&conninfo, num(3, 64), num(4, 20) as f64));
            load::print(&report);
            emit(&report, args.get(5));
        }
        _ => {
            eprintln!(
                "usage: ledger-bench lib-append [N] [BATCH] [SUBJECTS]\n       ledger-bench soak [LEDGERD] [MINUTES] [RATE] [PRELOAD]\n       ledger-bench load [LEDGERD] unary|rate|stream|reads|proofs|floor|floor-rate [N|RATE] [SECONDS] [JSON|-] [PRELOAD]\n       ledger-bench tiles [LEDGERD] [RATE] [SECONDS] [ENTRIES] [JSON|-]\n       ledger-bench alertmanager [LEDGERD] [RATE] [SECONDS] [JSON|-]\n       ledger-bench witness [LEDGERD] [RATE] [SECONDS] [JSON|-]\n       ledger-bench pack [LEDGERD] [INCIDENT] [OTHER] [RUNS] [JSON|-]\n       ledger-bench fsync [RATE] [SECONDS] [DIR]\n       ledger-bench randread FILE [SECONDS] [THREADS]\n       ledger-bench pg CONNINFO [CLIENTS] [SECONDS] [JSON|-]"
            );
            std::process::exit(2);
        }
    }
}
