//! HMAC-SHA256 record tags (FORMAT.md §5).
//!
//! Owns: the tag input and key ids. Must not: know where keys are stored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::hash::{HMAC_KEY_ID_LABEL, Hash, RECORD_HMAC_LABEL};

/// An HMAC key ready to tag or check records. Its secret never leaves it
/// except through [`HmacKey::secret`] (for the keyring file).
#[derive(Clone)]
pub struct HmacKey {
    id: String,
    secret: [u8; 32],
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacKey({})", self.id)
    }
}

/// The id (and public fingerprint) of an HMAC key.
pub fn hmac_key_id(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(HMAC_KEY_ID_LABEL);
    h.update(secret);
    let d: Hash = h.finalize().into();
    hex::encode(&d[..8])
}

impl HmacKey {
    /// A key from its 32 secret bytes.
    pub fn new(secret: [u8; 32]) -> Self {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).expect("HMAC accepts any key length");
        Self { id: hmac_key_id(&secret), secret, mac }
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret bytes (only for persisting the keyring).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The tag of a record whose leaf hash is `leaf_hash`.
    pub fn tag(&self, leaf_hash: &Hash) -> Hash {
        let mut m = self.mac.clone();
        m.update(RECORD_HMAC_LABEL);
        m.update(leaf_hash);
        m.finalize().into_bytes().into()
    }

    /// Checks a tag in constant time.
    pub fn verify(&self, leaf_hash: &Hash, tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(RECORD_HMAC_LABEL);
        m.update(leaf_hash);
        m.verify_slice(tag).is_ok()
    }
}

/// Plain HMAC-SHA256 (for the RFC 4231 / Wycheproof vectors).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Hash {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}
