//! The keyring of one log (FORMAT.md §9): Ed25519 checkpoint keys and HMAC
//! keys with validity windows, rotation, status, and public export.
//!
//! Owns: `keys/keyring.json` (mode 0600) and every secret in it. Must not:
//! let a secret reach `Debug`, an error or an export of public keys.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::hmac_tag::HmacKey;
use crate::note::{NoteSigner, NoteVerifier};

/// Nanoseconds in a day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// A keyring failure.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The key file is readable by group or others.
    #[error("key file {path} has mode {mode:04o}: it must not be readable by group or others (chmod 600 {path})")]
    Permissions {
        /// the file
        path: PathBuf,
        /// its permission bits
        mode: u32,
    },
    /// The key file does not parse or holds an invalid key.
    #[error("key file {path}: {reason}")]
    Invalid {
        /// the file
        path: PathBuf,
        /// what is wrong (never the secret)
        reason: String,
    },
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    /// Ed25519 checkpoint signing key.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// HMAC-SHA256 record tag key.
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

/// Whether a key is used for new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// signs / tags new data
    Active,
    /// kept to verify history
    Retired,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// One key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// note key id (hex) or HMAC key id
    pub id: String,
    /// kind
    pub kind: KeyKind,
    /// note key name (the origin) for Ed25519 keys
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// base64 of the 32 secret bytes
    pub secret: Secret,
    /// creation time, unix ns
    pub created_at_ns: i64,
    /// end of validity, unix ns
    pub not_after_ns: i64,
    /// when it was retired, unix ns
    #[serde(default)]
    pub retired_at_ns: Option<i64>,
    /// active or retired
    pub state: KeyState,
}

impl KeyEntry {
    fn secret_bytes(&self, path: &Path) -> Result<[u8; 32], KeyError> {
        let raw = B64.decode(&self.secret.0).ok();
        raw.and_then(|r| r.try_into().ok()).ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
            reason: format!("key {}: secret is not 32 bytes of base64", self.id),
        })
    }

    /// Whether the key was valid at `t` (FORMAT.md §5).
    pub fn valid_at(&self, t: i64) -> bool {
        let end = self.retired_at_ns.map_or(self.not_after_ns, |r| r.min(self.not_after_ns));
        self.created_at_ns <= t && t <= end
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    keys: Vec<KeyEntry>,
}

/// How key ages are judged (the playbooks: rotate every 30 days, warn 7
/// days before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyPolicy {
    /// days a key may be used before it must be rotated
    pub rotate_after_days: i64,
    /// days before that (or before expiry) to warn
    pub warn_days: i64,
    /// validity of a new key, days
    pub lifetime_days: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self { rotate_after_days: 30, warn_days: 7, lifetime_days: 90 }
    }
}

/// A verdict on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// fine
    Ok,
    /// act soon
    Warn,
    /// act now
    Fail,
}

/// The status of one key (no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyStatus {
    /// key id
    pub id: String,
    /// kind
    pub kind: KeyKind,
    /// state
    pub state: KeyState,
    /// creation time, unix ns
    pub created_at_ns: i64,
    /// end of validity, unix ns
    pub not_after_ns: i64,
    /// age in whole days
    pub age_days: i64,
    /// whole days until not_after (negative when expired)
    pub days_to_expiry: i64,
    /// verdict under the policy (retired keys are always ok)
    pub verdict: Verdict,
    /// why, when not ok
    pub reason: Option<String>,
}

/// The public side of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// the note verifier key, for Ed25519 keys
    pub vkey: Option<String>,
    /// key id (for HMAC keys, its fingerprint)
    pub id: String,
    /// kind
    pub kind: KeyKind,
    /// state
    pub state: KeyState,
    /// creation, unix ns
    pub created_at_ns: i64,
    /// end of validity, unix ns
    pub not_after_ns: i64,
    /// retirement, unix ns
    pub retired_at_ns: Option<i64>,
}

/// What a rotation did (public data only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// the new Ed25519 key's vkey
    pub new_vkey: String,
    /// the new Ed25519 key id
    pub new_ed25519_id: String,
    /// the new HMAC key id (= fingerprint)
    pub new_hmac_id: String,
    /// ids retired by this rotation
    pub retired: Vec<String>,
}

/// The keys of one log, loaded.
pub struct Keyring {
    path: PathBuf,
    file: KeyringFile,
    signers: Vec<(usize, NoteSigner)>,
    hmacs: HashMap<String, (usize, HmacKey)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("path", &self.path).field("keys", &self.file.keys.len()).finish()
    }
}

fn random_secret() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// Reads a secret file (a keyring, a TLS private key), refusing one that
/// group or others can read.
pub fn read_private(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io = |e| KeyError::Io { path: path.to_owned(), source: e };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode: mode & 0o7777 });
    }
    std::fs::read(path).map_err(io)
}

impl Keyring {
    /// Loads `path`, or creates it with one active key of each kind named
    /// `origin`. Returns whether it was created.
    pub fn open_or_create(
        path: &Path,
        origin: &str,
        now_ns: i64,
        policy: &KeyPolicy,
    ) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let mut file = KeyringFile { version: 1, keys: Vec::new() };
        file.keys.push(new_ed25519(origin, now_ns, policy, path)?);
        file.keys.push(new_hmac(now_ns, policy));
        write_private(path, &file)?;
        Ok((Self::from_file(path, file)?, true))
    }

    /// Loads a keyring, refusing a file readable by group or others.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_private(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| KeyError::Invalid { path: path.to_owned(), reason: "not UTF-8 text".into() })?;
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            reason: format!("not a keyring: line {} column {}", e.line(), e.column()),
        })?;
        Self::from_file(path, file)
    }

    fn from_file(path: &Path, file: KeyringFile) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid { path: path.to_owned(), reason };
        if file.version != 1 {
            return Err(invalid(format!("keyring version {} is not 1", file.version)));
        }
        let (mut signers, mut hmacs) = (Vec::new(), HashMap::new());
        for (i, k) in file.keys.iter().enumerate() {
            let secret = k.secret_bytes(path)?;
            match k.kind {
                KeyKind::Ed25519 => {
                    let name = k
                        .name
                        .as_deref()
                        .ok_or_else(|| invalid(format!("key {}: an ed25519 key needs a name", k.id)))?;
                    let s = NoteSigner::from_seed(name, &secret).map_err(|e| invalid(format!("key {}: {e}", k.id)))?;
                    if format!("{:08x}", s.id()) != k.id {
                        return Err(invalid(format!("key {}: id does not match the key", k.id)));
                    }
                    signers.push((i, s));
                }
                KeyKind::HmacSha256 => {
                    let h = HmacKey::new(secret);
                    if h.id() != k.id {
                        return Err(invalid(format!("key {}: id does not match the key", k.id)));
                    }
                    hmacs.insert(k.id.clone(), (i, h));
                }
            }
        }
        let ring = Self { path: path.to_owned(), file, signers, hmacs };
        if ring.active_signers().is_empty() || ring.active_hmac_entry().is_none() {
            return Err(invalid("needs one active ed25519 key and one active hmac-sha256 key".into()));
        }
        Ok(ring)
    }

    /// The keyring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All keys (secrets print as `<secret>`).
    pub fn entries(&self) -> &[KeyEntry] {
        &self.file.keys
    }

    /// The Ed25519 keys that sign new checkpoints.
    pub fn active_signers(&self) -> Vec<&NoteSigner> {
        self.signers.iter().filter(|(i, _)| self.file.keys[*i].state == KeyState::Active).map(|(_, s)| s).collect()
    }

    /// The signer with note key id `id`, active or retired.
    pub fn signer(&self, id: u32) -> Option<&NoteSigner> {
        self.signers.iter().map(|(_, s)| s).find(|s| s.id() == id)
    }

    fn active_hmac_entry(&self) -> Option<&(usize, HmacKey)> {
        self.hmacs
            .values()
            .filter(|(i, _)| self.file.keys[*i].state == KeyState::Active)
            .max_by_key(|(i, _)| self.file.keys[*i].created_at_ns)
    }

    /// The HMAC key that tags new records.
    pub fn active_hmac(&self) -> &HmacKey {
        &self.active_hmac_entry().expect("checked on load").1
    }

    /// Every Ed25519 verifier key, active and retired.
    pub fn verifiers(&self) -> Vec<NoteVerifier> {
        self.signers.iter().map(|(_, s)| s.verifier()).collect()
    }

    /// The HMAC keys with their windows, for verification.
    pub fn hmac_keys(&self) -> HmacKeySet {
        let keys =
            self.hmacs.values().map(|(i, h)| (h.id().to_owned(), (h.clone(), self.file.keys[*i].clone()))).collect();
        HmacKeySet { keys }
    }

    /// The HMAC key file for auditors who hold the shared key (FORMAT.md §9).
    pub fn export_hmac_keys(&self) -> String {
        let keys = self.file.keys.iter().filter(|k| k.kind == KeyKind::HmacSha256).cloned().collect();
        serde_json::to_string_pretty(&KeyringFile { version: 1, keys }).expect("serialisable")
    }

    /// Retires the active keys and adds new ones; the file is replaced
    /// atomically. The caller writes the `key_rotation` entry.
    pub fn rotate(&mut self, now_ns: i64, policy: &KeyPolicy) -> Result<Rotation, KeyError> {
        let origin = self.active_signers()[0].name().to_owned();
        let mut file = self.file.clone();
        let mut retired = Vec::new();
        for k in file.keys.iter_mut().filter(|k| k.state == KeyState::Active) {
            k.state = KeyState::Retired;
            k.retired_at_ns = Some(now_ns);
            retired.push(k.id.clone());
        }
        let ed = new_ed25519(&origin, now_ns, policy, &self.path)?;
        let hm = new_hmac(now_ns, policy);
        let (new_ed25519_id, new_hmac_id) = (ed.id.clone(), hm.id.clone());
        file.keys.push(ed);
        file.keys.push(hm);
        write_private(&self.path, &file)?;
        *self = Self::from_file(&self.path, file)?;
        let new_vkey = self
            .signers
            .iter()
            .find(|(_, s)| format!("{:08x}", s.id()) == new_ed25519_id)
            .map(|(_, s)| s.verifier().to_vkey())
            .unwrap_or_default();
        Ok(Rotation { new_vkey, new_ed25519_id, new_hmac_id, retired })
    }

    /// Public information on every key: vkeys for Ed25519 keys, ids (which
    /// are fingerprints) for HMAC keys, and windows. No secret.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        self.file
            .keys
            .iter()
            .map(|k| PublicKeyInfo {
                vkey: self.signers.iter().find(|(i, _)| &self.file.keys[*i] == k).map(|(_, s)| s.verifier().to_vkey()),
                id: k.id.clone(),
                kind: k.kind,
                state: k.state,
                created_at_ns: k.created_at_ns,
                not_after_ns: k.not_after_ns,
                retired_at_ns: k.retired_at_ns,
            })
            .collect()
    }

    /// Status of every key under `policy` at `now_ns`.
    pub fn status(&self, now_ns: i64, policy: &KeyPolicy) -> Vec<KeyStatus> {
        self.file.keys.iter().map(|k| key_status(k, now_ns, policy)).collect()
    }
}

fn key_status(k: &KeyEntry, now: i64, p: &KeyPolicy) -> KeyStatus {
    let age_days = (now - k.created_at_ns).div_euclid(DAY_NS);
    let days_to_expiry = (k.not_after_ns - now).div_euclid(DAY_NS);
    let (verdict, reason) = if k.state == KeyState::Retired {
        (Verdict::Ok, None)
    } else if now > k.not_after_ns {
        (Verdict::Fail, Some("expired".to_owned()))
    } else if age_days >= p.rotate_after_days {
        (Verdict::Fail, Some(format!("not rotated for {age_days} days (limit {})", p.rotate_after_days)))
    } else if days_to_expiry < p.warn_days {
        (Verdict::Warn, Some(format!("expires in {days_to_expiry} days")))
    } else if age_days >= p.rotate_after_days - p.warn_days {
        (Verdict::Warn, Some(format!("rotation due in {} days", p.rotate_after_days - age_days)))
    } else {
        (Verdict::Ok, None)
    };
    KeyStatus {
        id: k.id.clone(),
        kind: k.kind,
        state: k.state,
        created_at_ns: k.created_at_ns,
        not_after_ns: k.not_after_ns,
        age_days,
        days_to_expiry,
        verdict,
        reason,
    }
}

fn new_ed25519(origin: &str, now_ns: i64, p: &KeyPolicy, path: &Path) -> Result<KeyEntry, KeyError> {
    let secret = random_secret();
    let s = NoteSigner::from_seed(origin, &secret)
        .map_err(|e| KeyError::Invalid { path: path.to_owned(), reason: e.to_string() })?;
    Ok(KeyEntry {
        id: format!("{:08x}", s.id()),
        kind: KeyKind::Ed25519,
        name: Some(origin.to_owned()),
        secret: Secret(B64.encode(secret)),
        created_at_ns: now_ns,
        not_after_ns: now_ns + p.lifetime_days * DAY_NS,
        retired_at_ns: None,
        state: KeyState::Active,
    })
}

fn new_hmac(now_ns: i64, p: &KeyPolicy) -> KeyEntry {
    let secret = random_secret();
    KeyEntry {
        id: HmacKey::new(secret).id().to_owned(),
        kind: KeyKind::HmacSha256,
        name: None,
        secret: Secret(B64.encode(secret)),
        created_at_ns: now_ns,
        not_after_ns: now_ns + p.lifetime_days * DAY_NS,
        retired_at_ns: None,
        state: KeyState::Active,
    }
}

/// Writes `file` to `path` with mode 0600 via a temp file, fsync and rename.
fn write_private(path: &Path, file: &KeyringFile) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e| KeyError::Io { path: path.to_owned(), source: e };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(serde_json::to_string_pretty(file).expect("serialisable").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// HMAC keys by id with their validity windows (what the verifier needs).
#[derive(Debug, Clone, Default)]
pub struct HmacKeySet {
    keys: HashMap<String, (HmacKey, KeyEntry)>,
}

impl HmacKeySet {
    /// Parses an HMAC key file (the keyring format; non-HMAC keys ignored).
    pub fn from_json(path: &Path, text: &str) -> Result<Self, KeyError> {
        let file: KeyringFile = serde_json::from_str(text).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            reason: format!("not an HMAC key file: line {} column {}", e.line(), e.column()),
        })?;
        let mut keys = HashMap::new();
        for k in file.keys.into_iter().filter(|k| k.kind == KeyKind::HmacSha256) {
            let h = HmacKey::new(k.secret_bytes(path)?);
            if h.id() != k.id {
                return Err(KeyError::Invalid {
                    path: path.to_owned(),
                    reason: format!("key {}: id does not match the key", k.id),
                });
            }
            keys.insert(k.id.clone(), (h, k));
        }
        Ok(Self { keys })
    }

    /// The key with `id` and its stored entry.
    pub fn get(&self, id: &str) -> Option<&(HmacKey, KeyEntry)> {
        self.keys.get(id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
