//! The witness's decision on `add-checkpoint` (c2sp.org/tlog-witness,
//! FORMAT.md §13), each refusal with its meaning: an honest log's
//! checkpoints are taken in order with consistency proofs; a fork signed
//! with a copied keyring (a split view) is refused at the same size (409)
//! and past it (422).

mod common;

use ledger::Ledger;
use ledger::witness::{AddCheckpoint, WitnessError, Witnessed, WitnessedLog, decide};

fn req(old: u64, proof: Vec<[u8; 32]>, note: &str) -> AddCheckpoint {
    AddCheckpoint { old, proof, note: note.to_owned() }
}

fn logs(l: &Ledger) -> Vec<WitnessedLog> {
    vec![WitnessedLog { origin: l.latest_checkpoint().checkpoint.origin.clone(), vkeys: l.verifiers() }]
}

#[test]
fn checkpoints_are_cosigned_in_order_and_a_fork_from_a_copied_keyring_is_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let honest = common::open(d1.path(), common::options());
    common::fill(&honest, 10, 10);
    let cp10 = honest.latest_checkpoint().note.clone();
    common::fill(&honest, 20, 10);
    let cp30 = honest.latest_checkpoint().note.clone();
    let w = logs(&honest);

    // the request's text round-trips
    let r = req(10, honest.prove_consistency(10, Some(30)).unwrap().0, &cp30);
    assert_eq!(AddCheckpoint::parse(&r.encode()).unwrap(), r);

    let (_, s10) = decide(&req(0, vec![], &cp10), &w, None).unwrap();
    assert_eq!(s10.size, 10);
    assert_eq!(decide(&req(0, vec![], &cp30), &w, Some(s10)).unwrap_err(), WitnessError::Conflict { size: 10 });
    let proof = honest.prove_consistency(10, Some(30)).unwrap().0;
    let (_, s30) = decide(&req(10, proof.clone(), &cp30), &w, Some(s10)).unwrap();
    assert_eq!(s30, Witnessed { size: 30, root: honest.latest_checkpoint().checkpoint.root });
    let mut bent = proof.clone();
    bent[0][0] ^= 1;
    assert!(matches!(
        decide(&req(10, bent, &cp30), &w, Some(s10)),
        Err(WitnessError::BadProof { old: 10, size: 30, .. })
    ));
    assert_eq!(
        decide(&req(40, vec![], &cp30), &w, Some(s30)).unwrap_err(),
        WitnessError::OldBeyond { old: 40, size: 30 }
    );

    // the same keys sign another history (a forged fork)
    let ring = ledger::layout::keyring(d1.path());
    std::fs::create_dir_all(ledger::layout::keyring(d2.path()).parent().unwrap()).unwrap();
    std::fs::copy(&ring, ledger::layout::keyring(d2.path())).unwrap();
    let fork = common::open(d2.path(), common::options());
    common::fill(&fork, 30, 7);
    let fork30 = fork.latest_checkpoint().note.clone();
    assert_ne!(fork30, cp30);
    assert_eq!(
        decide(&req(30, vec![], &fork30), &w, Some(s30)).unwrap_err(),
        WitnessError::SameSizeOtherRoot { size: 30 }
    );
    common::fill(&fork, 10, 10);
    let fork40 = fork.latest_checkpoint().note.clone();
    let fork_proof = fork.prove_consistency(30, Some(40)).unwrap().0;
    assert!(matches!(
        decide(&req(30, fork_proof, &fork40), &w, Some(s30)),
        Err(WitnessError::BadProof { old: 30, size: 40, .. })
    ));

    // a log it does not witness, a key it does not trust, a malformed body
    let other = tempfile::tempdir().unwrap();
    let stranger = common::open(other.path(), ledger::LogOptions::new("ledger.test/other"));
    common::fill(&stranger, 3, 3);
    let e = decide(&req(0, vec![], &stranger.latest_checkpoint().note), &w, None).unwrap_err();
    assert_eq!(e, WitnessError::UnknownLog { origin: "ledger.test/other".into() });
    let impostor = tempfile::tempdir().unwrap();
    let same_origin = common::open(impostor.path(), common::options());
    common::fill(&same_origin, 3, 3);
    let e = decide(&req(0, vec![], &same_origin.latest_checkpoint().note), &w, None).unwrap_err();
    assert!(matches!(e, WitnessError::Untrusted { .. }), "{e:?}");
    assert!(matches!(AddCheckpoint::parse("old 01\n\nx"), Err(WitnessError::Malformed(_))));
    assert!(matches!(AddCheckpoint::parse("old 1\nnot-base64\n\nx"), Err(WitnessError::Malformed(_))));
}
