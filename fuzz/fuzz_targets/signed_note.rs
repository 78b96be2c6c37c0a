//! Signed-note and checkpoint parsing (FORMAT.md §7): never panics; an
//! accepted checkpoint body re-serialises to its text; verification with a
//! fixed key never accepts a note that key did not sign.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let signer = ledger::note::NoteSigner::from_seed("fuzz.example/log", &[7u8; 32]).unwrap();
    let keys = [signer.verifier()];
    if let Ok(note) = ledger::note::Note::parse(text) {
        if note.verify(&keys).is_ok() {
            // Only text we signed can verify: re-signing it gives the same line.
            assert!(text.contains(signer.sign_line(&note.text).trim_end()));
        }
        if let Ok(cp) = ledger::note::Checkpoint::parse_body(&note.text) {
            assert!(note.text.starts_with(&cp.body()[..cp.body().len() - 1]));
        }
    }
});
