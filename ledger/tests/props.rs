//! Property tests: leaf encoding round trips, and proofs over random tree
//! sizes against a naive RFC 6962 reference.

use std::collections::HashMap;

use ledger::hash::{Hash, empty_root, leaf_hash, node_hash};
use ledger::leaf::{Leaf, decode_leaf, encode_leaf};
use ledger::merkle::{
    CompactRange, NodeSource, ProofError, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
};
use ledger_proto::v1::ArtifactRef;
use proptest::prelude::*;

fn arb_artifact() -> impl Strategy<Value = ArtifactRef> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<u64>(), "[a-z]{1,12}\\.pdf", "[a-z]{0,10}/[a-z]{0,10}").prop_map(
        |(b, s, size, name, media_type)| ArtifactRef { blake3: b.to_vec(), sha256: s.to_vec(), size, name, media_type },
    )
}

prop_compose! {
    fn arb_leaf()(seq in any::<u64>(), recorded_at in any::<i64>(), prev in any::<[u8; 32]>(), category in "[a-z0-9_.-]{1,64}",
                  subject in ".{0,40}", actor in ".{1,40}", request_id in "[!-~]{0,40}", occurred_at in any::<i64>(),
                  payload in any::<[u8; 32]>(), payload_size in 0u64..65536, artifacts in prop::collection::vec(arb_artifact(), 0..4),
                  subject_prev in any::<u64>()) -> Leaf {
        Leaf { version: 1, seq, recorded_at, prev_hash: prev.to_vec(), category, subject, actor, request_id, occurred_at,
               payload_sha256: payload.to_vec(), payload_size, artifacts, subject_prev }
    }
}

proptest! {
    #[test]
    fn leaf_encoding_round_trips_and_is_canonical(leaf in arb_leaf()) {
        let bytes = encode_leaf(&leaf);
        let back = decode_leaf(&bytes).unwrap();
        prop_assert_eq!(&back, &leaf);
        prop_assert_eq!(encode_leaf(&back), bytes);
    }

    #[test]
    fn any_trailing_duplicate_field_makes_a_leaf_non_canonical(leaf in arb_leaf(), seq in 1u64..1000) {
        let mut bytes = encode_leaf(&leaf);
        bytes.push(0x10); // field 2 (seq), varint
        bytes.push(seq as u8 & 0x7f);
        prop_assert!(decode_leaf(&bytes).is_err());
    }
}

/// Naive MTH over a slice of leaf hashes (RFC 6962 §2.1).
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

struct Mem(HashMap<(u8, u64), Hash>);

impl NodeSource for Mem {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.0.get(&(level, index)).copied().ok_or(ProofError::MissingNode { level, index })
    }
}

fn build(n: u64) -> (Vec<Hash>, Mem, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let mut mem = Mem(HashMap::new());
    let mut range = CompactRange::new();
    let mut roots = vec![range.root()];
    for h in &leaves {
        range.push(*h, |l, i, x| {
            mem.0.insert((l, i), *x);
        });
        roots.push(range.root());
    }
    (leaves, mem, roots)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compact_range_roots_match_the_reference(n in 0u64..600) {
        let (leaves, _, roots) = build(n);
        for s in 0..=n as usize {
            prop_assert_eq!(roots[s], mth(&leaves[..s]));
        }
    }

    #[test]
    fn inclusion_and_consistency_proofs_verify(n in 1u64..2000, a in any::<u64>(), b in any::<u64>()) {
        let (leaves, mem, roots) = build(n);
        let size = 1 + a % n;
        let idx = b % size;
        let p = inclusion_proof(&mem, idx, size).unwrap();
        verify_inclusion(idx, size, &leaves[idx as usize], &p, &roots[size as usize]).unwrap();
        // A proof for another leaf or another root fails.
        if size > 1 {
            let other = (idx + 1) % size;
            prop_assert!(verify_inclusion(idx, size, &leaves[other as usize], &p, &roots[size as usize]).is_err());
        }
        let old = 1 + b % size;
        let c = consistency_proof(&mem, old, size).unwrap();
        verify_consistency(old, size, &roots[old as usize], &roots[size as usize], &c).unwrap();
        if old < size {
            prop_assert!(verify_consistency(old, size, &roots[old as usize - 1], &roots[size as usize], &c).is_err());
        }
    }
}
