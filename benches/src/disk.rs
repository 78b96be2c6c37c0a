//! The disk's floors. `ledger-bench fsync [RATE] [SECONDS] [DIR]`: the floor
//! under the unary latency target. Writes one journal-sized frame (715 bytes, what
//! one 512-byte-payload entry takes) and `fdatasync`s it, RATE times a
//! second, the way ledgerd's writer commits a batch of one (in place in a
//! zero-filled tail, 1 MiB written ahead at a time, FORMAT.md §6.1), and
//! prints the distribution of the write + `fdatasync` time. No gRPC, no
//! ledger: what is left of a 1 ms p99 after the disk is what every other
//! part of an append may take.
//!
//! `ledger-bench randread FILE [SECONDS] [THREADS]`: the floor under reads
//! of a log the page cache does not hold. THREADS threads read 4 KiB at
//! random 4 KiB-aligned offsets of FILE with `O_DIRECT` (the device, not
//! the page cache) and it prints the reads per second and their latency.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The bytes one bench entry takes in the journal (docs/BENCHMARKS.md, "Disk per entry").
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
    report("fsync", per_sec, seconds, "write + fdatasync", &hist)
}

/// The report of one probe, in the load generator's shape (`load::print`).
fn report(scenario: &str, arg: u64, seconds: f64, what: &str, hist: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario, "arg": arg, "seconds": seconds,
        "results": [{
            "what": what,
            "ok": hist.len(), "errors": 0, "per_sec": (hist.len() as f64 / seconds).round(),
            "latency_us": {
                "p50": hist.value_at_quantile(0.5), "p90": hist.value_at_quantile(0.9),
                "p99": hist.value_at_quantile(0.99), "p999": hist.value_at_quantile(0.999), "max": hist.max(),
            },
        }],
    })
}

/// Random 4 KiB `O_DIRECT` reads of `path` from `threads` threads for
/// `seconds`; returns the JSON report.
pub fn randread(path: &std::path::Path, seconds: f64, threads: u64) -> serde_json::Value {
    const BLOCK: usize = 4096;
    let file = std::sync::Arc::new(
        OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).expect("open the file with O_DIRECT"),
    );
    let blocks = file.metadata().expect("metadata").len() / BLOCK as u64;
    assert!(blocks > 0, "{} is smaller than one 4 KiB block", path.display());
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                // O_DIRECT needs an aligned buffer: a 4 KiB-aligned slice of a larger one
                let mut raw = vec![0u8; 2 * BLOCK];
                let skip = raw.as_ptr().align_offset(BLOCK);
                let buf = &mut raw[skip..skip + BLOCK];
                let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ (t + 1);
                while Instant::now() < until {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17; // xorshift64
                    let t0 = Instant::now();
                    file.read_exact_at(buf, (x % blocks) * BLOCK as u64).expect("read");
                    let _ = hist.record(t0.elapsed().as_micros().max(1) as u64);
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    for w in workers {
        hist.add(w.join().expect("reader")).expect("same bounds");
    }
    report("randread", threads, seconds, "4 KiB O_DIRECT read", &hist)
}
