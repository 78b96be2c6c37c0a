//! Witness cosignatures (FORMAT.md §13, c2sp.org/tlog-cosignature): a
//! cosigner's Ed25519 key, `cosignature/v1` lines (key id with algorithm
//! byte 0x04, a timestamped signature over `cosignature/v1\ntime <t>\n` and
//! the checkpoint body), and their verification; a plain Ed25519 note
//! signature (0x01) over the checkpoint, which some deployed witnesses still
//! return, is accepted from a witness whose vkey says so.
//!
//! Owns: the cosignature bytes. Must not: decide which witnesses count (the
//! caller passes them) or keep any state.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::note::{NoteError, key_id_of as key_id};

/// The algorithm byte of a `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The algorithm byte of a plain Ed25519 note key.
const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

/// What a witness's signature lines are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CosignatureKind {
    /// `cosignature/v1`, timestamped (0x04)
    V1,
    /// a plain Ed25519 note signature over the checkpoint (0x01)
    Note,
}

/// The message a `cosignature/v1` signs.
fn v1_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A witness's signing key (a secret).
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cosigner({})", self.name)
    }
}

impl Cosigner {
    /// A cosigner named `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !crate::note::valid_key_name(name) {
            return Err(NoteError::MalformedKey("key name is empty or has '+', spaces or control characters"));
        }
        Ok(Self { name: name.to_owned(), key: SigningKey::from_bytes(seed) })
    }

    /// The cosigner named `name` whose seed is in `path` (base64, a file
    /// readable by its owner only), created there (mode 0600) when missing.
    pub fn open_or_create(path: &std::path::Path, name: &str) -> Result<Self, crate::keys::KeyError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let invalid = |reason: String| crate::keys::KeyError::Invalid { path: path.to_owned(), reason };
        let io = |e: std::io::Error| invalid(e.to_string());
        let seed = if path.exists() {
            let raw = crate::keys::read_private(path)?;
            let seed = B64.decode(String::from_utf8_lossy(&raw).trim()).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
            seed.ok_or_else(|| invalid("not 32 bytes of base64".into()))?
        } else {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).expect("the OS random source works");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
            f.write_all(B64.encode(seed).as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
            seed
        };
        Self::from_seed(name, &seed).map_err(|e| invalid(e.to_string()))
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The vkey of its `cosignature/v1` key: `name+hexid+base64(0x04 ‖ pubkey)`.
    pub fn vkey(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut b = vec![ALG_COSIGNATURE_V1];
        b.extend_from_slice(&public);
        format!("{}+{:08x}+{}", self.name, key_id(&self.name, ALG_COSIGNATURE_V1, &public), B64.encode(b))
    }

    /// A `cosignature/v1` line (with its newline) over the checkpoint
    /// `body` (its text, ending in a newline) at `timestamp` (unix seconds).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let public = self.key.verifying_key().to_bytes();
        let sig = self.key.sign(v1_message(body, timestamp).as_bytes());
        let mut b = Vec::with_capacity(76);
        b.extend_from_slice(&key_id(&self.name, ALG_COSIGNATURE_V1, &public).to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&sig.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(b))
    }
}

/// A witness's public key, from its vkey (type 0x04, or 0x01 for a witness
/// that returns plain note signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    kind: CosignatureKind,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `name+hexid+base64(alg ‖ pubkey)`; the id must match.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected name+hexid+base64"));
        };
        let id = u32::from_str_radix(id, 16).ok().filter(|_| id.len() == 8);
        let id = id.ok_or(NoteError::MalformedKey("key id is not 8 hex digits"))?;
        let raw = B64.decode(key).map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        let (kind, public) = match raw.split_first() {
            Some((&ALG_COSIGNATURE_V1, rest)) => (CosignatureKind::V1, rest),
            Some((&ALG_ED25519, rest)) => (CosignatureKind::Note, rest),
            _ => return Err(NoteError::MalformedKey("not a cosignature/v1 (0x04) or Ed25519 (0x01) key")),
        };
        let public: [u8; 32] = public.try_into().map_err(|_| NoteError::MalformedKey("public key is not 32 bytes"))?;
        let alg = if kind == CosignatureKind::V1 { ALG_COSIGNATURE_V1 } else { ALG_ED25519 };
        if key_id(name, alg, &public) != id {
            return Err(NoteError::MalformedKey("key id does not match the key"));
        }
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        Ok(Self { name: name.to_owned(), id, kind, key })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which lines it makes.
    pub fn kind(&self) -> CosignatureKind {
        self.kind
    }

    /// Whether `line` (a signature line, with or without its newline) is
    /// this witness's valid cosignature of the checkpoint `body`; returns
    /// its timestamp (0 for a plain note signature). `None`: not its line,
    /// or it does not verify.
    pub fn verify_line(&self, body: &str, line: &str) -> Option<u64> {
        let rest = line.trim_end_matches('\n').strip_prefix(SIG_PREFIX)?;
        let (name, b64) = rest.split_once(' ')?;
        let raw = B64.decode(b64).ok()?;
        if name != self.name || raw.get(..4)? != self.id.to_be_bytes() {
            return None;
        }
        let (timestamp, msg, sig) = match self.kind {
            CosignatureKind::V1 => {
                let t = u64::from_be_bytes(raw.get(4..12)?.try_into().ok()?);
                (t, v1_message(body, t), raw.get(12..)?)
            }
            CosignatureKind::Note => (0, body.to_owned(), raw.get(4..)?),
        };
        let sig = Signature::from_bytes(&<[u8; 64]>::try_from(sig).ok()?);
        self.key.verify_strict(msg.as_bytes(), &sig).ok().map(|_| timestamp)
    }
}

/// A signed note's body (its text up to and including the blank line's
/// first newline) and its signature lines.
pub fn split_note(note: &str) -> Option<(&str, Vec<&str>)> {
    let at = note.rfind("\n\n")?;
    Some((&note[..at + 1], note[at + 2..].split_terminator('\n').collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn a_cosignature_verifies_under_its_vkey_only() {
        let w = Cosigner::from_seed("witness.example/w1", &[7; 32]).unwrap();
        let v = CosignatureVerifier::from_vkey(&w.vkey()).unwrap();
        assert_eq!(v.kind(), CosignatureKind::V1);
        let line = w.cosign(BODY, 1_679_315_147);
        assert!(line.starts_with("\u{2014} witness.example/w1 ") && line.ends_with('\n'));
        assert_eq!(v.verify_line(BODY, &line), Some(1_679_315_147));
        assert_eq!(v.verify_line(&BODY.replace("20852163", "20852164"), &line), None, "another checkpoint");
        let other = Cosigner::from_seed("witness.example/w1", &[8; 32]).unwrap();
        assert_eq!(v.verify_line(BODY, &other.cosign(BODY, 1)), None, "another key");
        // 76 bytes: key id, timestamp, signature
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        assert_eq!(B64.decode(b64).unwrap().len(), 76);
    }

    #[test]
    fn a_plain_note_signature_counts_for_a_witness_with_an_ed25519_vkey() {
        let s = crate::note::NoteSigner::from_seed("witness.example/old", &[9; 32]).unwrap();
        let v = CosignatureVerifier::from_vkey(&s.verifier().to_vkey()).unwrap();
        assert_eq!(v.kind(), CosignatureKind::Note);
        assert_eq!(v.verify_line(BODY, &s.sign_line(BODY)), Some(0));
    }

    #[test]
    fn vkeys_with_a_wrong_id_or_algorithm_are_refused() {
        let w = Cosigner::from_seed("w", &[1; 32]).unwrap();
        let vk = w.vkey();
        let parts: Vec<&str> = vk.splitn(3, '+').collect();
        let e = CosignatureVerifier::from_vkey(&format!("w+00000000+{}", parts[2])).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let mut raw = B64.decode(parts[2]).unwrap();
        raw[0] = 0x02;
        let e = CosignatureVerifier::from_vkey(&format!("w+{}+{}", parts[1], B64.encode(raw))).unwrap_err();
        assert!(e.to_string().contains("0x04"), "{e}");
    }

    #[test]
    fn a_note_splits_into_body_and_lines() {
        let note = format!("{BODY}\n\u{2014} a x\n\u{2014} b y\n");
        let (body, lines) = split_note(&note).unwrap();
        assert_eq!(body, BODY);
        assert_eq!(lines, ["\u{2014} a x", "\u{2014} b y"]);
    }
}
