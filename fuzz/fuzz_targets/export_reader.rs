//! The export reader: `ledger::verify` over a journal directory whose
//! segment holds arbitrary bytes after a valid header. Never panics, and
//! never reports such a journal valid unless it really holds valid entries
//! (here: no key signed anything, so any checkpoint frame is a finding).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = ledger::journal::segment_header(0).to_vec();
    seg.extend_from_slice(data);
    std::fs::write(dir.path().join(ledger::journal::segment_name(0)), &seg).unwrap();
    let signer = ledger::note::NoteSigner::from_seed("fuzz.example/log", &[7u8; 32]).unwrap();
    let keys = [signer.verifier()];
    let input = ledger::verify::VerifyInput {
        journal_dir: dir.path(),
        vkeys: &keys,
        hmac_keys: None,
        trusted_checkpoint: None,
        progress: None,
        start: None,
    };
    let report = ledger::verify::verify(&input).unwrap();
    if report.checkpoints > 0 {
        assert!(!report.ok, "a checkpoint no trusted key signed was accepted");
    }
});
