//! tlog-proof parsing (FORMAT.md §8): never panics; an accepted proof
//! writes back to exactly its input; verification never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = ledger::receipt::TlogProof::parse(text) {
        assert_eq!(p.to_text(), text);
        let signer = ledger::note::NoteSigner::from_seed("fuzz.example/log", &[7u8; 32]).unwrap();
        let _ = p.verify(&[signer.verifier()], None);
    }
});
