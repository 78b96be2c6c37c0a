//! The request-id index (FORMAT.md §10): a fixed number of sled keys
//! (buckets), so the index's key count — and sled's memory — does not grow
//! with the log. Bucket = the top 16 bits of `h = u64le(BLAKE3(request_id)[0..8])`;
//! its value is a list of 16-byte records `h (u64le) ‖ seq (u64le)`, in seq
//! order. A lookup returns the seqs whose `h` matches; the caller confirms
//! each against the entry's leaf (hash collisions are possible, wrong
//! answers are not).

use super::IndexError;

/// Bytes per record.
const RECORD: usize = 16;

/// The 64-bit hash of a request id.
pub fn hash(request_id: &str) -> u64 {
    let h = blake3::hash(request_id.as_bytes());
    u64::from_le_bytes(h.as_bytes()[0..8].try_into().expect("8 bytes"))
}

/// The bucket key of a hash.
pub(super) fn bucket(h: u64) -> [u8; 2] {
    ((h >> 48) as u16).to_be_bytes()
}

/// The seqs recorded under `h` in a bucket's value.
pub(super) fn lookup(value: &[u8], h: u64) -> Result<Vec<u64>, IndexError> {
    if !value.len().is_multiple_of(RECORD) {
        return Err(IndexError::Decode { tree: "request", reason: format!("bucket of {} bytes", value.len()) });
    }
    Ok(value
        .chunks_exact(RECORD)
        .filter(|r| u64::from_le_bytes(r[0..8].try_into().expect("8")) == h)
        .map(|r| u64::from_le_bytes(r[8..16].try_into().expect("8")))
        .collect())
}

/// `value` with `records` (ascending seqs) appended, skipping those at or
/// below the bucket's last seq (a catch-up that replays a batch sled
/// already holds changes nothing).
pub(super) fn append(value: &[u8], records: &[(u64, u64)]) -> Vec<u8> {
    let last = value.rchunks_exact(RECORD).next().map(|r| u64::from_le_bytes(r[8..16].try_into().expect("8")));
    let mut out = Vec::with_capacity(value.len() + records.len() * RECORD);
    out.extend_from_slice(value);
    for &(h, seq) in records.iter().filter(|(_, s)| last.is_none_or(|l| *s > l)) {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_append_idempotently_and_look_up_by_hash() {
        let v = append(&[], &[(7, 1), (9, 4)]);
        let v = append(&v, &[(9, 4), (7, 8)]);
        assert_eq!(v.len(), 3 * RECORD, "the replayed seq 4 is not added twice");
        assert_eq!(lookup(&v, 7).unwrap(), vec![1, 8]);
        assert_eq!(lookup(&v, 9).unwrap(), vec![4]);
        assert!(lookup(&v, 5).unwrap().is_empty());
        assert!(lookup(&v[..5], 7).is_err());
        assert_eq!(bucket(hash("req-1")), bucket(hash("req-1")));
    }
}
