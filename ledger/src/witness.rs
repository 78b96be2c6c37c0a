//! A c2sp.org/tlog-witness `add-checkpoint` decided (FORMAT.md §13): the
//! request parsed, the checkpoint's log known and its signature trusted,
//! the old size the witness's own, the consistency proof verified; the
//! answer is the state to persist before cosigning, or the refusal with the
//! spec's meaning.
//!
//! Owns: those checks, in the spec's order. Must not: persist, sign or
//! speak HTTP (the server does, atomically with the check).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::note::{Checkpoint, Note, NoteVerifier};

/// A log this witness cosigns: its origin and the keys it trusts for it.
#[derive(Debug, Clone)]
pub struct WitnessedLog {
    /// the checkpoint origin line
    pub origin: String,
    /// the log's keys
    pub vkeys: Vec<NoteVerifier>,
}

/// The latest checkpoint the witness cosigned for one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witnessed {
    /// its tree size
    pub size: u64,
    /// its root
    #[serde(with = "hex_hash")]
    pub root: Hash,
}

/// Why a checkpoint was not cosigned; each is one HTTP status of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The body is not an add-checkpoint request (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The old size is larger than the checkpoint's (400).
    #[error("old size {old} is larger than the checkpoint's size {size}")]
    OldBeyond {
        /// the request's old size
        old: u64,
        /// the checkpoint's size
        size: u64,
    },
    /// The origin is not one this witness cosigns (404).
    #[error("unknown log origin {origin:?}")]
    UnknownLog {
        /// the checkpoint's origin
        origin: String,
    },
    /// No signature by a key trusted for the origin (403).
    #[error("the checkpoint of {origin:?} is not signed by a trusted key: {reason}")]
    Untrusted {
        /// the origin
        origin: String,
        /// what the verification said
        reason: String,
    },
    /// The old size is not the size this witness cosigned last (409, body:
    /// that size).
    #[error("the witness's latest checkpoint of this log has size {size}, not the request's old size")]
    Conflict {
        /// the size the witness holds
        size: u64,
    },
    /// Same size as the witness's, another root: a split view (409).
    #[error("the checkpoint has the size {size} the witness cosigned, with another root: the log shows two histories")]
    SameSizeOtherRoot {
        /// the size
        size: u64,
    },
    /// The consistency proof does not verify (422).
    #[error("the consistency proof from size {old} to {size} does not verify: {reason}")]
    BadProof {
        /// the old size
        old: u64,
        /// the checkpoint's size
        size: u64,
        /// why
        reason: String,
    },
}

/// A parsed `add-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// the old size line
    pub old: u64,
    /// the consistency proof
    pub proof: Vec<Hash>,
    /// the signed checkpoint note
    pub note: String,
}

impl AddCheckpoint {
    /// Parses `old N\n`, proof lines, a blank line, the checkpoint.
    pub fn parse(body: &str) -> Result<Self, WitnessError> {
        let bad = |m: &str| WitnessError::Malformed(m.to_owned());
        let (head, note) = body.split_once("\n\n").ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line is not `old <size>`"))?;
        let canonical =
            !old.is_empty() && old.bytes().all(|b| b.is_ascii_digit()) && (old == "0" || !old.starts_with('0'));
        let old = old.parse::<u64>().ok().filter(|_| canonical).ok_or_else(|| bad("the old size is not a decimal"))?;
        let mut proof = Vec::new();
        for l in lines {
            let h = B64.decode(l).ok().and_then(|v| Hash::try_from(v).ok());
            proof.push(h.ok_or_else(|| bad("a proof line is not a base64 hash"))?);
        }
        if proof.len() > 63 {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(Self { old, proof, note: note.to_owned() })
    }

    /// Encodes the request (the log side).
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }
}

/// Decides a request against the witnessed logs and the state held for
/// the checkpoint's origin (`held`, looked up by the caller with
/// [`origin_of`]). On success: the checkpoint and the state to persist
/// before the cosignature is returned.
pub fn decide(
    req: &AddCheckpoint,
    logs: &[WitnessedLog],
    held: Option<Witnessed>,
) -> Result<(Checkpoint, Witnessed), WitnessError> {
    let note = Note::parse(&req.note).map_err(|e| WitnessError::Malformed(format!("checkpoint: {e}")))?;
    let cp = Checkpoint::parse_body(&note.text).map_err(|e| WitnessError::Malformed(format!("checkpoint: {e}")))?;
    let log = logs
        .iter()
        .find(|l| l.origin == cp.origin)
        .ok_or_else(|| WitnessError::UnknownLog { origin: cp.origin.clone() })?;
    note.verify(&log.vkeys)
        .map_err(|e| WitnessError::Untrusted { origin: cp.origin.clone(), reason: e.to_string() })?;
    if req.old > cp.size {
        return Err(WitnessError::OldBeyond { old: req.old, size: cp.size });
    }
    let held_size = held.map_or(0, |h| h.size);
    if req.old != held_size {
        return Err(WitnessError::Conflict { size: held_size });
    }
    let bad = |reason: String| WitnessError::BadProof { old: req.old, size: cp.size, reason };
    match held {
        None if !req.proof.is_empty() => return Err(bad("the proof must be empty from size 0".into())),
        None => {}
        Some(h) if h.size == cp.size && h.root != cp.root => {
            return Err(WitnessError::SameSizeOtherRoot { size: cp.size });
        }
        Some(h) if h.size == cp.size => {}
        Some(h) => crate::merkle::verify_consistency(h.size, cp.size, &h.root, &cp.root, &req.proof)
            .map_err(|e| bad(e.to_string()))?,
    }
    let state = Witnessed { size: cp.size, root: cp.root };
    Ok((cp, state))
}

/// The origin of the request's checkpoint, to look its state up (`None`
/// when the checkpoint does not parse: `decide` says why).
pub fn origin_of(req: &AddCheckpoint) -> Option<String> {
    let note = Note::parse(&req.note).ok()?;
    Checkpoint::parse_body(&note.text).ok().map(|c| c.origin)
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into().map_err(|_| serde::de::Error::custom("not 32 bytes"))
    }
}
