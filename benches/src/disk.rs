//! `ledger-bench fsync [RATE] [SECONDS] [DIR]`: the disk's floor under the
//! unary latency target. Writes one journal-sized frame (715 bytes, what
//! one 512-byte-payload entry takes) and `fdatasync`s it, RATE times a
//! second, the way ledgerd's writer commits a batch of one (in place in a
//! zero-filled tail, 1 MiB written ahead at a time, FORMAT.md §6.1), and
//! prints the distribution of the write + `fdatasync` time. No gRPC, no
//! ledger: what is left of a 1 ms p99 after the disk is what every other
//! part of an append may take.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The bytes one bench entry takes in the journal (docs/BENCHMARKS.md).
const FRAME: usize = 715;
/// Zero bytes written ahead at a time, as the journal writer does.
const AHEAD: u64 = 1 << 20;

/// Runs the probe; returns its JSON report.
pub fn fsync_probe(per_sec: u64, seconds: f64, dir: &std::path::Path) -> serde_json::Value {
    let path = dir.join(format!("ledger-bench-fsync-{}", std::process::id()));
    let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).expect("create the probe file");
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let frame = vec![0x5a_u8; FRAME];
    let (mut at, mut alloc) = (0u64, 0u64);
    let period = Duration::from_secs_f64(1.0 / per_sec.max(1) as f64);
    let start = Instant::now();
    for n in 0u32.. {
        let scheduled = start + period * n;
        if scheduled.duration_since(start).as_secs_f64() >= seconds {
            break;
        }
        if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        if at + FRAME as u64 > alloc {
            file.write_all_at(&vec![0u8; AHEAD as usize], at + FRAME as u64).expect("write ahead");
            alloc = at + FRAME as u64 + AHEAD;
        }
        file.write_all_at(&frame, at).expect("write");
        file.sync_data().expect("fdatasync");
        at += FRAME as u64;
        let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    serde_json::json!({
        "scenario": "fsync", "arg": per_sec, "seconds": seconds,
        "results": [{
            "what": "write + fdatasync",
            "ok": hist.len(), "errors": 0, "per_sec": (hist.len() as f64 / seconds).round(),
            "latency_us": {
                "p50": hist.value_at_quantile(0.5), "p90": hist.value_at_quantile(0.9),
                "p99": hist.value_at_quantile(0.99), "p999": hist.value_at_quantile(0.999), "max": hist.max(),
            },
        }],
    })
}
