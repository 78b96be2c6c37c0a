//! The keyring of one log (FORMAT.md §9): Ed25519 checkpoint keys and HMAC
//! keys with validity windows, keys staged for the next rotation, rotation
//! (activating a staged pair, or generating one), activation by key ids (a
//! rotation decided on another node), reloading the file, status, and public
//! export.
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
    /// A rotation names keys that the key file does not hold.
    #[error(
        "key file {path}: the rotation names keys not in this file ({}); copy the keyring holding the staged keys from the node that staged them to this node",
        .ids.join(", ")
    )]
    Missing {
        /// the file
        path: PathBuf,
        /// the ids of the keys it lacks
        ids: Vec<String>,
    },
    /// Keys are staged already; a second pair would not be used.
    #[error(
        "key file {path}: keys {} are staged for the next rotation already; rotate (ledger keys rotate --reason …) before staging again",
        .ids.join(", ")
    )]
    AlreadyStaged {
        /// the file
        path: PathBuf,
        /// the ids of the staged keys
        ids: Vec<String>,
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

impl KeyKind {
    /// The name used in the keyring file.
    fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::HmacSha256 => "hmac-sha256",
        }
    }
}

/// Whether a key is used for new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// held for the next rotation: verifies, but signs / tags nothing until
    /// a rotation activates it
    Staged,
    /// signs / tags new data
    Active,
    /// kept to verify history
    Retired,
}

impl KeyState {
    /// The name used in the keyring file.
    fn name(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    /// The order of the life of a key: staged, active, retired.
    fn rank(self) -> u8 {
        match self {
            Self::Staged => 0,
            Self::Active => 1,
            Self::Retired => 2,
        }
    }
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
    /// staged, active or retired
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
    /// verdict under the policy (staged and retired keys are always ok)
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

/// A key pair staged for the next rotation (public data only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// the staged Ed25519 key id
    pub ed25519_id: String,
    /// the staged HMAC key id (= fingerprint)
    pub hmac_id: String,
    /// the staged Ed25519 key's vkey
    pub vkey: String,
}

/// A keyring's keys at one moment ([`Keyring::snapshot`]).
#[derive(Debug, Clone)]
pub struct KeyringSnapshot(KeyringFile);

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
        file.keys.push(new_ed25519(origin, now_ns, policy, path, KeyState::Active)?);
        file.keys.push(new_hmac(now_ns, policy, KeyState::Active));
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
        ring.check_staged()?;
        Ok(ring)
    }

    /// Staged keys come as a pair: one ed25519 and one hmac-sha256 key.
    fn check_staged(&self) -> Result<(), KeyError> {
        let staged = |kind| self.file.keys.iter().filter(|k| k.state == KeyState::Staged && k.kind == kind).count();
        match (staged(KeyKind::Ed25519), staged(KeyKind::HmacSha256)) {
            (0, 0) | (1, 1) => Ok(()),
            _ => Err(KeyError::Invalid {
                path: self.path.clone(),
                reason: format!(
                    "keys {} are staged: staged keys come as one ed25519 and one hmac-sha256 key",
                    self.staged_ids().join(", ")
                ),
            }),
        }
    }

    /// Validates `file`, writes it atomically and makes it this keyring.
    fn replace(&mut self, file: KeyringFile) -> Result<(), KeyError> {
        let ring = Self::from_file(&self.path, file)?;
        write_private(&self.path, &ring.file)?;
        *self = ring;
        Ok(())
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

    /// The signer with note key id `id`, staged, active or retired.
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

    /// Every Ed25519 verifier key, staged, active and retired (a follower
    /// verifies a rotation's batch, signed by the new key, before it
    /// activates the key).
    pub fn verifiers(&self) -> Vec<NoteVerifier> {
        self.signers.iter().map(|(_, s)| s.verifier()).collect()
    }

    /// The HMAC keys with their windows, for verification; staged keys
    /// included, like `verifiers`.
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

    /// Retires the active keys and activates the staged pair, or, when
    /// none is staged, adds new keys; the file is replaced atomically. The
    /// caller writes the `key_rotation` entry.
    pub fn rotate(&mut self, now_ns: i64, policy: &KeyPolicy) -> Result<Rotation, KeyError> {
        if let Some((ed25519_id, hmac_id)) = self.staged_pair() {
            self.usable_at(&[&ed25519_id, &hmac_id], now_ns)?;
            return self.activate(&ed25519_id, &hmac_id, now_ns);
        }
        let origin = self.active_signers()[0].name().to_owned();
        let mut file = self.file.clone();
        let retired = retire_active(&mut file, now_ns, |_| false);
        let ed = new_ed25519(&origin, now_ns, policy, &self.path, KeyState::Active)?;
        let hm = new_hmac(now_ns, policy, KeyState::Active);
        let (new_ed25519_id, new_hmac_id) = (ed.id.clone(), hm.id.clone());
        file.keys.push(ed);
        file.keys.push(hm);
        self.replace(file)?;
        Ok(self.rotation(&new_ed25519_id, &new_hmac_id, retired))
    }

    /// Adds one Ed25519 key (named like the active one) and one HMAC key,
    /// both staged for the next rotation; the file is replaced atomically.
    /// Refused while a pair is staged already.
    pub fn stage(&mut self, now_ns: i64, policy: &KeyPolicy) -> Result<Staged, KeyError> {
        let staged = self.staged_ids();
        if !staged.is_empty() {
            return Err(KeyError::AlreadyStaged { path: self.path.clone(), ids: staged });
        }
        let origin = self.active_signers()[0].name().to_owned();
        let ed = new_ed25519(&origin, now_ns, policy, &self.path, KeyState::Staged)?;
        let hm = new_hmac(now_ns, policy, KeyState::Staged);
        let (ed25519_id, hmac_id) = (ed.id.clone(), hm.id.clone());
        let mut file = self.file.clone();
        file.keys.push(ed);
        file.keys.push(hm);
        self.replace(file)?;
        Ok(Staged { vkey: self.vkey(&ed25519_id), ed25519_id, hmac_id })
    }

    /// Applies a rotation decided elsewhere (a replayed `key_rotation`
    /// entry): the keys `ed25519_id` and `hmac_id`, staged or already
    /// active, become the active keys and every other active key is retired
    /// at `now_ns`; the file is replaced atomically when anything changed.
    /// Applying the same rotation again changes nothing (`retired` empty).
    pub fn activate(&mut self, ed25519_id: &str, hmac_id: &str, now_ns: i64) -> Result<Rotation, KeyError> {
        let wanted = [(ed25519_id, KeyKind::Ed25519), (hmac_id, KeyKind::HmacSha256)];
        let mut missing = Vec::new();
        for (id, kind) in wanted {
            if !self.activatable(id, kind)? {
                missing.push(id.to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(KeyError::Missing { path: self.path.clone(), ids: missing });
        }
        let chosen = |k: &KeyEntry| wanted.iter().any(|(id, kind)| k.id == *id && k.kind == *kind);
        let mut file = self.file.clone();
        let retired = retire_active(&mut file, now_ns, chosen);
        let mut changed = !retired.is_empty();
        for k in file.keys.iter_mut().filter(|k| chosen(k) && k.state == KeyState::Staged) {
            k.state = KeyState::Active;
            changed = true;
        }
        if changed {
            self.replace(file)?;
        }
        Ok(self.rotation(ed25519_id, hmac_id, retired))
    }

    /// Re-reads the file at `path()` (copied from another node, say) and
    /// takes it when it holds every key of this keyring with the same kind
    /// and secret, none in an earlier state; it may add keys. Returns
    /// whether anything changed. A key is never dropped or swapped under a
    /// running server.
    pub fn reload(&mut self) -> Result<bool, KeyError> {
        let fresh = Self::load(&self.path)?;
        for held in &self.file.keys {
            check_kept(held, &fresh.file.keys, &self.path)?;
        }
        let changed = fresh.file.keys != self.file.keys;
        *self = fresh;
        Ok(changed)
    }

    /// Refuses keys that would tag or sign outside their window at `now_ns`
    /// (staged too long ago, or on a node whose clock runs ahead).
    fn usable_at(&self, ids: &[&str], now_ns: i64) -> Result<(), KeyError> {
        for k in self.file.keys.iter().filter(|k| ids.contains(&k.id.as_str())) {
            if !k.valid_at(now_ns) {
                let reason = format!(
                    "staged key {} is valid from {} to {} (unix ns), not now ({now_ns}): stage a new pair",
                    k.id, k.created_at_ns, k.not_after_ns
                );
                return Err(KeyError::Invalid { path: self.path.clone(), reason });
            }
        }
        Ok(())
    }

    /// Whether a pair of keys is staged for the next rotation.
    pub fn has_staged(&self) -> bool {
        self.staged_pair().is_some()
    }

    /// The keyring as it is now, for [`Keyring::restore`].
    pub fn snapshot(&self) -> KeyringSnapshot {
        KeyringSnapshot(self.file.clone())
    }

    /// Puts back (in memory and in the file) the keyring of `snapshot`:
    /// a rotation whose entry was not written is undone, so this node
    /// does not retire keys the log still uses.
    pub fn restore(&mut self, snapshot: KeyringSnapshot) -> Result<(), KeyError> {
        write_private(&self.path, &snapshot.0)?;
        *self = Self::from_file(&self.path, snapshot.0)?;
        Ok(())
    }

    /// Whether the key `id` of `kind` is in the ring and may become active
    /// (staged or active); an error when it is retired or of another kind.
    fn activatable(&self, id: &str, kind: KeyKind) -> Result<bool, KeyError> {
        let Some(k) = self.file.keys.iter().find(|k| k.id == id) else { return Ok(false) };
        let invalid = |reason| Err(KeyError::Invalid { path: self.path.clone(), reason });
        if k.kind != kind {
            let (named, is) = (kind.name(), k.kind.name());
            return invalid(format!("key {id}: the rotation names it as an {named} key but it is an {is} key"));
        }
        if k.state == KeyState::Retired {
            return invalid(format!("key {id}: retired; a rotation never makes a retired key active again"));
        }
        Ok(true)
    }

    /// The ids of the staged keys.
    fn staged_ids(&self) -> Vec<String> {
        self.file.keys.iter().filter(|k| k.state == KeyState::Staged).map(|k| k.id.clone()).collect()
    }

    /// The staged Ed25519 and HMAC key ids, when a pair is staged.
    fn staged_pair(&self) -> Option<(String, String)> {
        let staged = |kind| self.file.keys.iter().find(|k| k.state == KeyState::Staged && k.kind == kind);
        Some((staged(KeyKind::Ed25519)?.id.clone(), staged(KeyKind::HmacSha256)?.id.clone()))
    }

    /// The vkey of the Ed25519 key `id` ("" when there is none).
    fn vkey(&self, id: &str) -> String {
        let signer = self.signers.iter().find(|(i, _)| self.file.keys[*i].id == id);
        signer.map(|(_, s)| s.verifier().to_vkey()).unwrap_or_default()
    }

    fn rotation(&self, ed25519_id: &str, hmac_id: &str, retired: Vec<String>) -> Rotation {
        Rotation {
            new_vkey: self.vkey(ed25519_id),
            new_ed25519_id: ed25519_id.to_owned(),
            new_hmac_id: hmac_id.to_owned(),
            retired,
        }
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
    let (verdict, reason) = if k.state != KeyState::Active {
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

/// Retires every active key of `file` that is not `kept`, at `now_ns`;
/// returns their ids.
fn retire_active(file: &mut KeyringFile, now_ns: i64, kept: impl Fn(&KeyEntry) -> bool) -> Vec<String> {
    let mut retired = Vec::new();
    for k in file.keys.iter_mut().filter(|k| k.state == KeyState::Active && !kept(k)) {
        k.state = KeyState::Retired;
        k.retired_at_ns = Some(now_ns);
        retired.push(k.id.clone());
    }
    retired
}

/// `held` is in `keys` with its kind and secret, in the same or a later
/// state (what a reload must find).
fn check_kept(held: &KeyEntry, keys: &[KeyEntry], path: &Path) -> Result<(), KeyError> {
    let invalid = |reason| Err(KeyError::Invalid { path: path.to_owned(), reason });
    let id = &held.id;
    let Some(k) = keys.iter().find(|k| k.id == *id) else {
        return invalid(format!("key {id}: in use here but not in the file; a reload never drops a key"));
    };
    if k.kind != held.kind || k.secret != held.secret {
        return invalid(format!("key {id}: the file holds another key under this id; a reload never swaps a key"));
    }
    if k.state.rank() < held.state.rank() {
        let (here, there) = (held.state.name(), k.state.name());
        return invalid(format!(
            "key {id}: {here} here but {there} in the file (an older copy?); a reload never moves a key back"
        ));
    }
    Ok(())
}

fn new_ed25519(origin: &str, now_ns: i64, p: &KeyPolicy, path: &Path, state: KeyState) -> Result<KeyEntry, KeyError> {
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
        state,
    })
}

fn new_hmac(now_ns: i64, p: &KeyPolicy, state: KeyState) -> KeyEntry {
    let secret = random_secret();
    KeyEntry {
        id: HmacKey::new(secret).id().to_owned(),
        kind: KeyKind::HmacSha256,
        name: None,
        secret: Secret(B64.encode(secret)),
        created_at_ns: now_ns,
        not_after_ns: now_ns + p.lifetime_days * DAY_NS,
        retired_at_ns: None,
        state,
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000 * DAY_NS;
    const T1: i64 = T0 + DAY_NS;
    const T2: i64 = T0 + 2 * DAY_NS;

    fn ring(dir: &tempfile::TempDir) -> Keyring {
        let path = dir.path().join("keys").join("keyring.json");
        Keyring::open_or_create(&path, "ledger.test/keys", T0, &KeyPolicy::default()).unwrap().0
    }

    fn ids(r: &Keyring, state: KeyState) -> Vec<String> {
        r.entries().iter().filter(|k| k.state == state).map(|k| k.id.clone()).collect()
    }

    fn file_of(path: &Path) -> KeyringFile {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn secrets(r: &Keyring) -> Vec<String> {
        r.entries().iter().map(|k| k.secret.0.clone()).collect()
    }

    #[test]
    fn staged_keys_verify_but_neither_sign_nor_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let (signer, hmac) = (r.active_signers()[0].id(), r.active_hmac().id().to_owned());
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        assert_eq!(ids(&r, KeyState::Staged), [s.ed25519_id.clone(), s.hmac_id.clone()]);
        assert_eq!(r.active_signers().iter().map(|s| s.id()).collect::<Vec<_>>(), [signer]);
        assert_eq!(r.active_hmac().id(), hmac);
        assert!(r.verifiers().iter().any(|v| v.to_vkey() == s.vkey), "a follower verifies the rotation's batch");
        let (_, entry) = r.hmac_keys().get(&s.hmac_id).cloned().expect("the staged HMAC key verifies");
        assert!(entry.valid_at(T1) && entry.state == KeyState::Staged);
        for st in r.status(T1 + 400 * DAY_NS, &KeyPolicy::default()).iter().filter(|k| k.state == KeyState::Staged) {
            assert_eq!((st.verdict, st.reason.as_deref()), (Verdict::Ok, None), "{st:?}");
        }
        let public: Vec<_> = r.public_keys().into_iter().filter(|k| k.state == KeyState::Staged).collect();
        assert_eq!(public.len(), 2);
        assert!(public.iter().any(|k| k.id == s.ed25519_id && k.vkey.as_deref() == Some(s.vkey.as_str())));
        assert!(public.iter().any(|k| k.id == s.hmac_id && k.vkey.is_none()));
    }

    #[test]
    fn staging_twice_is_refused_naming_the_staged_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        let before = std::fs::read(r.path()).unwrap();
        let e = r.stage(T2, &KeyPolicy::default()).unwrap_err();
        match &e {
            KeyError::AlreadyStaged { path, ids } => {
                assert_eq!(path, r.path());
                assert_eq!(ids, &[s.ed25519_id.clone(), s.hmac_id.clone()]);
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains(&s.ed25519_id) && msg.contains(&s.hmac_id) && msg.contains("ledger keys rotate"), "{msg}");
        assert_eq!(std::fs::read(r.path()).unwrap(), before, "the file is unchanged");
        assert_eq!(r.entries().len(), 4);
    }

    #[test]
    fn rotate_activates_the_staged_pair_and_retires_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let old = ids(&r, KeyState::Active);
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        let rot = r.rotate(T2, &KeyPolicy::default()).unwrap();
        assert_eq!(
            (rot.new_ed25519_id.as_str(), rot.new_hmac_id.as_str()),
            (s.ed25519_id.as_str(), s.hmac_id.as_str())
        );
        assert_eq!(rot.new_vkey, s.vkey);
        assert_eq!(rot.retired, old);
        assert_eq!(r.entries().len(), 4, "no key generated");
        assert_eq!(ids(&r, KeyState::Active), [s.ed25519_id.clone(), s.hmac_id.clone()]);
        assert!(ids(&r, KeyState::Staged).is_empty());
        for k in r.entries().iter().filter(|k| old.contains(&k.id)) {
            assert_eq!((k.state, k.retired_at_ns), (KeyState::Retired, Some(T2)));
        }
        assert_eq!(r.active_signers()[0].verifier().to_vkey(), s.vkey);
        assert_eq!(r.active_hmac().id(), s.hmac_id);
        assert_eq!(Keyring::load(r.path()).unwrap().entries(), r.entries(), "written to the file");
    }

    #[test]
    fn a_staged_pair_outside_its_window_is_not_activated() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        let late = T1 + 200 * DAY_NS;
        let e = r.rotate(late, &KeyPolicy::default()).unwrap_err().to_string();
        assert!(e.contains(&s.ed25519_id) && e.contains("stage a new pair"), "{e}");
        let early = r.rotate(T1 - DAY_NS, &KeyPolicy::default()).unwrap_err().to_string();
        assert!(early.contains("not now"), "{early}");
        assert_eq!(ids(&r, KeyState::Staged), [s.ed25519_id, s.hmac_id], "still staged");
    }

    #[test]
    fn rotate_without_a_staged_pair_generates_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let old = ids(&r, KeyState::Active);
        let rot = r.rotate(T1, &KeyPolicy::default()).unwrap();
        assert_eq!(rot.retired, old);
        assert_eq!(ids(&r, KeyState::Active), [rot.new_ed25519_id.clone(), rot.new_hmac_id.clone()]);
        assert_eq!(r.entries().len(), 4);
        assert_eq!(r.active_signers()[0].verifier().to_vkey(), rot.new_vkey);
    }

    #[test]
    fn activate_by_ids_on_a_copy_is_idempotent() {
        let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = ring(&leader_dir);
        let old = ids(&leader, KeyState::Active);
        let s = leader.stage(T1, &KeyPolicy::default()).unwrap();
        let copy = follower_dir.path().join("keyring.json");
        std::fs::copy(leader.path(), &copy).unwrap();
        let mut follower = Keyring::load(&copy).unwrap();
        let rot = leader.rotate(T2, &KeyPolicy::default()).unwrap();

        let applied = follower.activate(&rot.new_ed25519_id, &rot.new_hmac_id, T2).unwrap();
        assert_eq!(applied, rot, "the follower's rotation is the leader's");
        assert_eq!(follower.entries(), leader.entries());
        let bytes = std::fs::read(&copy).unwrap();
        let again = follower.activate(&s.ed25519_id, &s.hmac_id, T2 + 1).unwrap();
        assert_eq!(again, Rotation { retired: Vec::new(), ..rot.clone() });
        assert_eq!(std::fs::read(&copy).unwrap(), bytes, "nothing rewritten");
        assert_eq!(ids(&follower, KeyState::Retired), old);
    }

    #[test]
    fn activate_names_the_keys_missing_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let before = std::fs::read(r.path()).unwrap();
        let hmac = r.active_hmac().id().to_owned();
        let e = r.activate("0badc0de", &hmac, T1).unwrap_err();
        match &e {
            KeyError::Missing { path, ids } => {
                assert_eq!((path.as_path(), ids.as_slice()), (r.path(), &["0badc0de".to_owned()][..]))
            }
            other => panic!("{other:?}"),
        }
        let e = r.activate("0badc0de", "00112233aabbccdd", T1).unwrap_err();
        assert!(matches!(&e, KeyError::Missing { ids, .. } if ids == &["0badc0de", "00112233aabbccdd"]), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("not in this file") && msg.contains("from the node that staged them"), "{msg}");
        assert!(msg.contains(&r.path().display().to_string()), "{msg}");
        assert!(secrets(&r).iter().all(|s| !msg.contains(s.as_str())));
        assert_eq!(std::fs::read(r.path()).unwrap(), before);
    }

    #[test]
    fn activate_refuses_a_retired_key_or_a_key_of_another_kind() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let old = ids(&r, KeyState::Active);
        r.rotate(T1, &KeyPolicy::default()).unwrap();
        let e = r.activate(&old[0], &old[1], T2).unwrap_err();
        assert!(
            matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&old[0]) && reason.contains("retired")),
            "{e:?}"
        );
        let active = ids(&r, KeyState::Active);
        let e = r.activate(&active[1], &active[1], T2).unwrap_err();
        assert!(matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&active[1])), "{e:?}");
        assert_eq!(ids(&r, KeyState::Active), active);
    }

    #[test]
    fn reload_refuses_a_file_missing_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        r.rotate(T1, &KeyPolicy::default()).unwrap();
        let mut file = file_of(r.path());
        let dropped = file.keys.remove(0).id;
        write_private(r.path(), &file).unwrap();
        let e = r.reload().unwrap_err();
        assert!(
            matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&dropped) && reason.contains("never drops")),
            "{e:?}"
        );
        assert!(secrets(&r).iter().all(|s| !e.to_string().contains(s.as_str())));
        assert_eq!(r.entries().len(), 4, "the keyring in memory is kept");
    }

    #[test]
    fn reload_refuses_a_file_with_a_changed_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let mut file = file_of(r.path());
        let changed = file.keys[1].id.clone();
        file.keys[1].secret = Secret(B64.encode([7u8; 32]));
        write_private(r.path(), &file).unwrap();
        let e = r.reload().unwrap_err();
        assert!(matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&changed)), "{e:?}");
        assert!(!e.to_string().contains(&B64.encode([7u8; 32])));
        assert_eq!(r.active_hmac().id(), changed);
    }

    #[test]
    fn a_reload_check_refuses_another_secret_or_kind_under_a_held_id() {
        let dir = tempfile::tempdir().unwrap();
        let r = ring(&dir);
        let held = r.entries()[1].clone();
        let swapped = KeyEntry { secret: Secret(B64.encode([7u8; 32])), ..held.clone() };
        let e = check_kept(&held, &[swapped], r.path()).unwrap_err();
        assert!(
            matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&held.id) && reason.contains("never swaps")),
            "{e:?}"
        );
        let other_kind = KeyEntry { kind: KeyKind::Ed25519, ..held.clone() };
        assert!(check_kept(&held, &[other_kind], r.path()).is_err());
        let retired = KeyEntry { state: KeyState::Retired, retired_at_ns: Some(T1), ..held.clone() };
        check_kept(&held, &[retired], r.path()).unwrap();
    }

    #[test]
    fn reload_refuses_an_older_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        let staged_copy = std::fs::read(r.path()).unwrap();
        r.rotate(T2, &KeyPolicy::default()).unwrap();
        std::fs::write(r.path(), staged_copy).unwrap();
        let e = r.reload().unwrap_err();
        assert!(matches!(&e, KeyError::Invalid { reason, .. } if reason.contains("never moves a key back")), "{e:?}");
        assert_eq!(ids(&r, KeyState::Active), [s.ed25519_id, s.hmac_id]);
    }

    #[test]
    fn reload_takes_a_file_with_an_extra_staged_pair() {
        let dir = tempfile::tempdir().unwrap();
        let mut running = ring(&dir);
        assert!(!running.reload().unwrap(), "the same file: nothing changed");
        let s = Keyring::load(running.path()).unwrap().stage(T1, &KeyPolicy::default()).unwrap();
        assert!(ids(&running, KeyState::Staged).is_empty());
        assert!(running.reload().unwrap());
        assert_eq!(ids(&running, KeyState::Staged), [s.ed25519_id.clone(), s.hmac_id.clone()]);
        assert!(running.verifiers().iter().any(|v| v.to_vkey() == s.vkey));
        let rot = running.rotate(T2, &KeyPolicy::default()).unwrap();
        assert_eq!(rot.new_ed25519_id, s.ed25519_id, "the reloaded pair is the one rotated in");
    }

    #[test]
    fn a_keyring_with_a_staged_pair_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        r.stage(T1, &KeyPolicy::default()).unwrap();
        let text = std::fs::read_to_string(r.path()).unwrap();
        assert_eq!(text.matches(r#""state": "staged""#).count(), 2, "{}", text.len());
        assert_eq!(std::fs::metadata(r.path()).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = Keyring::load(r.path()).unwrap();
        assert_eq!(loaded.entries(), r.entries());
        assert_eq!(serde_json::to_string(&KeyState::Staged).unwrap(), r#""staged""#);
        assert_eq!(serde_json::from_str::<KeyState>(r#""staged""#).unwrap(), KeyState::Staged);
    }

    #[test]
    fn staged_keys_come_as_a_pair() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(&dir);
        let s = r.stage(T1, &KeyPolicy::default()).unwrap();
        let mut file = file_of(r.path());
        file.keys.retain(|k| k.id != s.hmac_id);
        write_private(r.path(), &file).unwrap();
        let e = Keyring::load(r.path()).unwrap_err();
        assert!(matches!(&e, KeyError::Invalid { reason, .. } if reason.contains(&s.ed25519_id)), "{e:?}");
    }
}
