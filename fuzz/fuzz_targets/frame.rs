//! Frame decoding (FORMAT.md §6.2): never panics; an accepted frame lies
//! inside the input, re-encodes to the same bytes, and its record decodes or
//! is refused cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((record, n))) = ledger::journal::parse_frame(data) {
        assert!(n <= data.len());
        let mut again = Vec::new();
        ledger::journal::encode_frame(record, &mut again);
        assert_eq!(&again[..], &data[..n]);
        let _ = ledger::record::decode(bytes::Bytes::copy_from_slice(record));
    }
});
