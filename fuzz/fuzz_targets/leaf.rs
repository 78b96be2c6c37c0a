//! Leaf decoding (FORMAT.md §3.1): an accepted leaf re-encodes to exactly
//! the input bytes (one canonical form per leaf).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(leaf) = ledger::leaf::decode_leaf(data) {
        assert_eq!(ledger::leaf::encode_leaf(&leaf), data);
    }
});
