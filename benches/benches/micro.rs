//! criterion micro-benchmarks of the ledger core (docs/BENCHMARKS.md):
//! `cargo bench -p ledger-bench --bench micro`. Proofs run over an in-memory
//! tree of 1M and 10M leaves (every perfect-subtree hash kept, as the flat
//! index files keep them).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ledger::hash::{Hash, leaf_hash};
use ledger::merkle::{CompactRange, NodeSource, ProofError, consistency_proof, inclusion_proof};

/// The allocator the shipped binaries use (docs/BENCHMARKS-HISTORY.md, "What changed on 2026-11-22").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    fn new(n: u64) -> Self {
        let mut levels: Vec<Vec<Hash>> = vec![Vec::with_capacity(n as usize)];
        let mut range = CompactRange::new();
        for i in 0..n {
            let h = leaf_hash(&i.to_le_bytes());
            levels[0].push(h);
            range.push(h, |l, _, node| {
                let l = l as usize;
                if levels.len() <= l {
                    levels.resize_with(l + 1, Vec::new);
                }
                levels[l].push(*node);
            });
        }
        Self { levels }
    }
}

impl NodeSource for MemTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::MissingNode { level, index })
    }
}

fn entry() -> ledger::NewEntry {
    let payload = format!(r#"{{"step":"ack","note":"{}"}}"#, "x".repeat(480));
    ledger::EntryInput {
        category: "alert_ack".into(),
        subject: "INC-42".into(),
        payload: payload.into_bytes(),
        request_id: "req-42".into(),
        ..Default::default()
    }
    .validate("svc-bench", &Default::default())
    .unwrap()
}

fn leaf(c: &mut Criterion) {
    let e = entry();
    let key = ledger::hmac_tag::HmacKey::new([7; 32]);
    let seqn = ledger::leaf::Sequencing {
        seq: 1_000_000,
        recorded_at: 1_767_225_600_000_000_000,
        prev_hash: [1; 32],
        subject_prev: 999_990,
    };
    c.bench_function("leaf encode + hash + hmac", |b| {
        b.iter(|| {
            let l = ledger::leaf::build_leaf(black_box(&e), seqn);
            let bytes = ledger::leaf::encode_leaf(&l);
            let h = leaf_hash(&bytes);
            black_box(key.tag(&h))
        })
    });
}

fn merkle(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle");
    g.throughput(Throughput::Elements(1));
    let leaves: Vec<Hash> = (0..1024u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    g.bench_function("append (compact range push)", |b| {
        let mut r = CompactRange::new();
        let mut i = 0;
        b.iter(|| {
            r.push(leaves[i & 1023], |_, _, n| {
                black_box(n);
            });
            i += 1;
        })
    });
    for n in [1_000_000u64, 10_000_000] {
        let t = MemTree::new(n);
        g.bench_with_input(BenchmarkId::new("inclusion proof", n), &n, |b, &n| {
            let mut i = 0u64;
            b.iter(|| {
                i = (i + 7_919) % n;
                black_box(inclusion_proof(&t, i, n).unwrap())
            })
        });
        g.bench_with_input(BenchmarkId::new("consistency proof", n), &n, |b, &n| {
            let mut i = 1u64;
            b.iter(|| {
                i = 1 + (i + 7_919) % (n - 1);
                black_box(consistency_proof(&t, i, n).unwrap())
            })
        });
    }
    g.finish();
}

fn checkpoint(c: &mut Criterion) {
    let signer = ledger::note::NoteSigner::from_seed("bench.local/default", &[9; 32]).unwrap();
    let cp = ledger::note::Checkpoint { origin: "bench.local/default".into(), size: 10_000_000, root: [3; 32] };
    c.bench_function("checkpoint sign (ed25519 note)", |b| b.iter(|| black_box(cp.sign(&[&signer]))));
}

fn journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut j = ledger::store::file::Journal::open(&dir.path().join("journal"), 1 << 40).unwrap();
    let mut batch = Vec::new();
    let record = vec![0x5a; 640];
    for _ in 0..1024 {
        ledger::journal::encode_frame(&record, &mut batch);
    }
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1024));
    g.sample_size(20);
    g.bench_function("append 1024 frames + fdatasync (group commit)", |b| {
        b.iter(|| {
            j.append(&batch).unwrap();
            j.sync().unwrap();
        })
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let (l, _) = ledger::store::file::open(&data, ledger::LogOptions::new("bench.local/verify")).unwrap();
    const N: u64 = 100_000;
    for chunk in 0..N / 1000 {
        let batch: Vec<_> = (0..1000)
            .map(|i| {
                let payload = format!(r#"{{"i":{},"note":"{}"}}"#, chunk * 1000 + i, "v".repeat(480));
                ledger::EntryInput {
                    category: "alert_ack".into(),
                    subject: format!("INC-{}", i % 100),
                    payload: payload.into_bytes(),
                    ..Default::default()
                }
                .validate("svc-bench", &Default::default())
                .unwrap()
            })
            .collect();
        for r in l.append_batch(batch) {
            r.unwrap();
        }
    }
    l.close().unwrap();
    let (vkeys, hmac) = (l.verifiers(), l.hmac_keys());
    drop(l);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("offline verify, 100k entries (chain + Merkle + HMAC + checkpoints)", |b| {
        b.iter(|| {
            let input = ledger::verify::VerifyInput {
                journal_dir: &data.join("journal"),
                vkeys: &vkeys,
                hmac_keys: Some(&hmac),
                trusted_checkpoint: None,
                progress: None,
                start: None,
            };
            let r = ledger::verify::verify(&input).unwrap();
            assert!(r.ok && r.entries == N);
        })
    });
    g.finish();
}

criterion_group!(benches, leaf, merkle, checkpoint, journal, verify);
criterion_main!(benches);
