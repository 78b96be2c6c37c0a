//! C2SP signed notes with Ed25519 keys, and tlog checkpoints (FORMAT.md §7).
//!
//! Owns: note text, signature lines, key ids, vkey / skey encodings and the
//! checkpoint body. Must not: decide which keys are trusted (callers pass
//! them) or touch files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// The algorithm byte of an Ed25519 note key.
const ALG_ED25519: u8 = 0x01;
/// The em dash that starts a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note, key or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key string is not a well-formed vkey or skey.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// A known key's signature does not verify.
    #[error("invalid signature by {name}+{key_id:08x}")]
    BadSignature {
        /// key name
        name: String,
        /// key id
        key_id: u32,
    },
    /// No signature by any of the given keys.
    #[error("no signature by a trusted key")]
    NoTrustedSignature,
    /// The checkpoint body does not parse.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// The C2SP key id: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[0..4]` as a big-endian u32.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    key_id_of(name, ALG_ED25519, public)
}

/// The C2SP key id of a key with algorithm byte `alg` (0x01 note keys,
/// 0x04 cosignature/v1 keys): `SHA-256(name ‖ 0x0A ‖ alg ‖ pubkey)[0..4]`.
pub fn key_id_of(name: &str, alg: u8, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

pub(crate) fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An Ed25519 note signer.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::MalformedKey("key name is empty or has '+', spaces or control characters"));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// Parses Go's `PRIVATE+KEY+name+hexid+base64(0x01 ‖ seed)`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let rest = skey.trim().strip_prefix("PRIVATE+KEY+").ok_or(NoteError::MalformedKey("missing PRIVATE+KEY+"))?;
        let (name, id, key) = split_key(rest)?;
        let seed: [u8; 32] = key.try_into().map_err(|_| NoteError::MalformedKey("seed is not 32 bytes"))?;
        let signer = Self::from_seed(name, &seed)?;
        if signer.id != id {
            return Err(NoteError::MalformedKey("key id does not match the key"));
        }
        Ok(signer)
    }

    /// Go's skey encoding of this signer (a secret).
    pub fn to_skey(&self) -> String {
        let mut b = vec![ALG_ED25519];
        b.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(b))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// One signature line (with its final newline) over `text`.
    pub fn sign_line(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut b = Vec::with_capacity(68);
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&sig.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(b))
    }
}

/// An Ed25519 note verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a vkey `name+hexid+base64(0x01 ‖ pubkey)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, id, key) = split_key(vkey.trim())?;
        if !valid_key_name(name) {
            return Err(NoteError::MalformedKey("bad key name"));
        }
        let public: [u8; 32] = key.try_into().map_err(|_| NoteError::MalformedKey("public key is not 32 bytes"))?;
        if key_id(name, &public) != id {
            return Err(NoteError::MalformedKey("key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::MalformedKey("not an Ed25519 point"))?;
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        let mut b = vec![ALG_ED25519];
        b.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(b))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn verify(&self, text: &str, sig: &[u8]) -> bool {
        verify_bytes(self, text.as_bytes(), sig)
    }
}

/// Verifies an Ed25519 signature over raw bytes exactly as notes are
/// verified (strict: canonical encodings, no small-order keys).
pub fn verify_bytes(key: &NoteVerifier, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.key.verify_strict(msg, &Signature::from_bytes(&sig)).is_ok()
}

/// Splits `name+hexid+base64` and checks the algorithm byte.
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    // The name has no '+', the base64 key may: split from the left.
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey("expected name+hexid+base64"));
    };
    if id.len() != 8 {
        return Err(NoteError::MalformedKey("key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::MalformedKey("key id is not hex"))?;
    let raw = B64.decode(key).map_err(|_| NoteError::MalformedKey("key is not base64"))?;
    match raw.split_first() {
        Some((&ALG_ED25519, rest)) => Ok((name, id, rest.to_vec())),
        _ => Err(NoteError::MalformedKey("not an Ed25519 key (algorithm byte 0x01)")),
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// key name
    pub name: String,
    /// key id
    pub key_id: u32,
    /// signature bytes (after the id)
    pub sig: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note: text, a blank line (the last one), signature lines.
    pub fn parse(msg: &str) -> Result<Self, NoteError> {
        if !msg.ends_with('\n') {
            return Err(NoteError::Malformed("does not end with a newline"));
        }
        if msg.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("contains control characters"));
        }
        let split = msg.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        let mut signatures = Vec::new();
        for line in sigs.split_terminator('\n') {
            signatures.push(parse_sig_line(line)?);
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// Verifies against `keys`: unknown signers are ignored, a known key's
    /// bad signature rejects the note, and at least one known key must have
    /// signed. Returns the keys that verified.
    pub fn verify<'k>(&self, keys: &'k [NoteVerifier]) -> Result<Vec<&'k NoteVerifier>, NoteError> {
        let mut ok = Vec::new();
        for s in &self.signatures {
            let Some(k) = keys.iter().find(|k| k.name == s.name && k.id == s.key_id) else {
                continue;
            };
            if !k.verify(&self.text, &s.sig) {
                return Err(NoteError::BadSignature { name: s.name.clone(), key_id: s.key_id });
            }
            if !ok.iter().any(|o: &&NoteVerifier| o.id == k.id) {
                ok.push(k);
            }
        }
        if ok.is_empty() {
            return Err(NoteError::NoTrustedSignature);
        }
        Ok(ok)
    }
}

fn parse_sig_line(line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed("signature line does not start with '— '"))?;
    let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed("signature line has no key name"))?;
    if !valid_key_name(name) {
        return Err(NoteError::Malformed("bad key name in a signature line"));
    }
    let raw = B64.decode(b64).map_err(|_| NoteError::Malformed("signature is not base64"))?;
    if raw.len() < 5 {
        return Err(NoteError::Malformed("signature too short"));
    }
    let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Ok(NoteSignature { name: name.to_owned(), key_id, sig: raw[4..].to_vec() })
}

/// Signs `text` (which must end in a newline) with every signer, in order.
pub fn sign_note(text: &str, signers: &[&NoteSigner]) -> String {
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 120);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        out.push_str(&s.sign_line(text));
    }
    out
}

/// A tree head: the body of a C2SP tlog checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// the log's origin line
    pub origin: String,
    /// number of leaves
    pub size: u64,
    /// Merkle root
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parses a checkpoint body (extension lines after the root are kept out).
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split_terminator('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(NoteError::MalformedCheckpoint("no origin line"))?;
        let size = lines.next().ok_or(NoteError::MalformedCheckpoint("no size line"))?;
        if size.is_empty() || (size.len() > 1 && size.starts_with('0')) || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NoteError::MalformedCheckpoint("size is not a decimal without leading zeros"));
        }
        let size = size.parse().map_err(|_| NoteError::MalformedCheckpoint("size overflows"))?;
        let root = lines.next().ok_or(NoteError::MalformedCheckpoint("no root line"))?;
        let root = B64.decode(root).map_err(|_| NoteError::MalformedCheckpoint("root is not base64"))?;
        let root = root.try_into().map_err(|_| NoteError::MalformedCheckpoint("root is not 32 bytes"))?;
        Ok(Self { origin: origin.to_owned(), size, root })
    }

    /// Parses and verifies a signed checkpoint note.
    pub fn open(note: &str, keys: &[NoteVerifier]) -> Result<Self, NoteError> {
        let n = Note::parse(note)?;
        n.verify(keys)?;
        Self::parse_body(&n.text)
    }

    /// Signs this checkpoint.
    pub fn sign(&self, signers: &[&NoteSigner]) -> String {
        sign_note(&self.body(), signers)
    }
}
