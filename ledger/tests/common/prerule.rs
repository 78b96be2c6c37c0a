//! A log holding entries written before payload rule 2 (FORMAT.md §3.4).
//! The writer refuses such payloads now, so a stopped log written under
//! rule 2 is rewritten as a writer of rule 1 would have written it: each
//! chosen payload replaced, its leaf's payload hash and size, the hash
//! chain, the HMAC tags and every checkpoint (signed with the log's own key)
//! rebuilt. Nothing in the library is weakened for it.
//!
//! Shared with the CLI's tests (`#[path]`), so it uses only ledger's public
//! API and std.

use std::path::Path;

use ledger::hash::{leaf_hash, sha256};
use ledger::journal::{read_records, write_records};
use ledger::keys::Keyring;
use ledger::leaf::{decode_leaf, encode_leaf};
use ledger::merkle::CompactRange;
use ledger::note::Checkpoint;
use ledger::record::Decoded;

/// Rewrites the journal of the stopped log at `log_dir` in place, with the
/// payload of each `(seq, bytes)` in `payloads` as its stored payload;
/// returns the latest checkpoint's note.
pub fn rewrite_as_rule_1(log_dir: &Path, payloads: &[(u64, &[u8])]) -> String {
    let ring = Keyring::load(&ledger::layout::keyring(log_dir)).unwrap();
    let (signer, hmac, vkeys) = (ring.active_signers()[0].clone(), ring.active_hmac().clone(), ring.verifiers());
    let journal = ledger::layout::journal(log_dir);
    let mut segments = read_records(&journal).unwrap();
    let (mut prev, mut range, mut latest) = ([0u8; 32], CompactRange::new(), String::new());
    for record in segments.iter_mut().flat_map(|(_, records)| records.iter_mut()) {
        match record {
            Decoded::Entry(e) => {
                let mut leaf = decode_leaf(&e.leaf).unwrap();
                if let Some((_, payload)) = payloads.iter().find(|(seq, _)| *seq == leaf.seq) {
                    e.payload = payload.to_vec().into();
                    leaf.payload_sha256 = sha256(payload).to_vec();
                    leaf.payload_size = payload.len() as u64;
                }
                leaf.prev_hash = prev.to_vec();
                e.leaf = encode_leaf(&leaf).into();
                prev = leaf_hash(&e.leaf);
                e.hmac = hmac.tag(&prev).to_vec().into();
                range.push(prev, |_, _, _| {});
            }
            Decoded::Checkpoint(note) => {
                let old = Checkpoint::open(note, &vkeys).unwrap();
                assert_eq!(old.size, range.size(), "a checkpoint of the entries before it");
                *note = Checkpoint { root: range.root(), ..old }.sign(&[&signer]);
                latest = note.clone();
            }
        }
    }
    write_records(&journal, &segments).unwrap();
    latest
}
