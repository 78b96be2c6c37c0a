//! ledgerd's configuration: one struct, unknown fields refused, validated
//! once at startup. `docs/ledgerd.example.toml` documents every field with
//! its default and a test keeps the two in sync.
//!
//! Owns: parsing, `LEDGER_*` environment overrides, validation. Must not:
//! open files or sockets other than reading the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use ledger::entry::Limits;
use ledger::keys::KeyPolicy;
use ledger::policy::Policy;
use serde::{Deserialize, Serialize};

/// A configuration error, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config file {path}: {source}")]
    Read {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("config file {path}: {message}")]
    Parse {
        /// the file
        path: PathBuf,
        /// what toml said (line, column, field)
        message: String,
    },
    /// A value is out of range.
    #[error("config: {field}: {reason}")]
    Invalid {
        /// the field
        field: String,
        /// why
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), reason: reason.into() }
}

/// `[witness]`: ledgerd cosigns other logs' checkpoints (c2sp.org/tlog-witness).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// the cosigner name (a schema-less URL, e.g. `witness.example/w1`)
    pub name: String,
    /// the file holding its Ed25519 seed (base64), mode 0600; relative to
    /// data_dir; created when missing
    #[serde(default = "default_witness_key")]
    pub key: PathBuf,
    /// the logs it cosigns
    #[serde(default)]
    pub logs: Vec<WitnessedLogConfig>,
}

fn default_witness_key() -> PathBuf {
    PathBuf::from("witness/key")
}

/// One log a witness cosigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLogConfig {
    /// its checkpoint origin line
    pub origin: String,
    /// its vkeys (`ledger keys public`)
    pub vkeys: Vec<String>,
}

impl WitnessConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() || self.name.contains(['+', ' ', '\n']) {
            return Err(invalid("witness.name", "must be non-empty, without '+', spaces or newlines"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.logs.iter().enumerate() {
            if !seen.insert(&l.origin) {
                return Err(invalid(format!("witness.logs[{i}].origin"), format!("{:?} is listed twice", l.origin)));
            }
            if l.vkeys.is_empty() {
                return Err(invalid(format!("witness.logs[{i}].vkeys"), "at least one vkey is needed"));
            }
            for (j, v) in l.vkeys.iter().enumerate() {
                ledger::note::NoteVerifier::from_vkey(v)
                    .map_err(|e| invalid(format!("witness.logs[{i}].vkeys[{j}]"), e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// human text
    #[default]
    Text,
    /// one JSON object per line
    Json,
}

/// One hosted log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// the log's name, e.g. `default` or `stage5/prod`
    pub name: String,
    /// a policy for this log instead of the server-wide one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// who may do what on this log (mTLS identities to roles); needs `[tls]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<Grant>,
    /// serve the log's C2SP tiles (checkpoint, tiles, entry bundles: leaves
    /// with categories, subjects and actors, never payloads) on the HTTP
    /// listener under /tlog/<name>/, to anyone who reaches it: an explicit
    /// opt-in (docs/FORMAT.md §12, docs/SECURITY.md)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public_tiles: bool,
    /// witnesses that cosign the log's checkpoints (docs/FORMAT.md §13)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<LogWitness>,
    /// how many of `witnesses` must cosign a checkpoint for `ledger verify`
    /// and `ledger verify-proof` (the policy travels in exports and in
    /// `ledger keys witnesses`, docs/FORMAT.md §13)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_quorum: Option<usize>,
    /// take Alertmanager's webhook notifications at
    /// POST /alertmanager/v1/<name> on the HTTP listener (docs/API.md)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// dual control: `admin redact`, `keys rotate` and `admin
    /// reload-policy` write an `admin_request` entry and take effect only
    /// when a second admin approves it (docs/SECURITY.md "Dual control").
    /// Read at startup only: a policy reload cannot turn it off
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dual_control: bool,
    /// how long a dual-control request may wait for its approval (e.g.
    /// `"24h"`: a whole number of s, m, h or d); absent: no limit
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_control_within: Option<String>,
}

/// A log's Alertmanager receiver (docs/API.md "Alertmanager webhook").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// the alert label whose value is the entry's subject (the incident id);
    /// an alert without it gets `<alertname>/<fingerprint>`
    #[serde(default = "default_subject_label")]
    pub subject_label: String,
    /// a file holding the bearer token Alertmanager must send
    /// (`authorization.credentials_file`); mode 0600. Needed with `[tls]`
    /// unless `http_tls` lets Alertmanager present a client certificate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

fn default_subject_label() -> String {
    "incident".into()
}

impl AlertmanagerConfig {
    fn validate(&self, field: &str, c: &Config) -> Result<(), ConfigError> {
        if self.subject_label.is_empty() || self.subject_label.chars().any(|ch| ch.is_control() || ch == ' ') {
            return Err(invalid(format!("{field}.subject_label"), "must be a label name (non-empty, no spaces)"));
        }
        if c.tls.is_some() && !c.http_tls && self.token_file.is_none() {
            return Err(invalid(
                format!("{field}.token_file"),
                "is needed with [tls] when http_tls is off: the HTTP listener is then plaintext and has no client \
                 certificate to authenticate Alertmanager by",
            ));
        }
        Ok(())
    }
}

/// A witness of a log: its name, its vkey, its submission prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogWitness {
    /// the witness's name (the vkey's name)
    pub name: String,
    /// its vkey: cosignature/v1 (type 0x04) or Ed25519 note (0x01)
    pub vkey: String,
    /// its submission prefix: `add-checkpoint` is posted under it (http://)
    pub url: String,
}

impl LogConfig {
    fn validate_dual_control(&self, i: usize) -> Result<(), ConfigError> {
        let Some(w) = &self.dual_control_within else { return Ok(()) };
        let field = format!("logs[{i}].dual_control_within");
        if !self.dual_control {
            return Err(invalid(field, "is set but dual_control is off: set dual_control = true, or remove it"));
        }
        ledger::approval::duration_ns(w).map(|_| ()).map_err(|r| invalid(field, r))
    }

    /// The log's witness policy as the file `--witness-vkey` reads: a
    /// `quorum K` line, then the witnesses' vkeys; `None` without
    /// `witness_quorum`.
    pub fn witness_policy(&self) -> Option<String> {
        let k = self.witness_quorum?;
        Some(format!("quorum {k}\n") + &self.witnesses.iter().map(|w| w.vkey.clone() + "\n").collect::<String>())
    }
}

impl LogWitness {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        let v = ledger::cosign::CosignatureVerifier::from_vkey(&self.vkey)
            .map_err(|e| invalid(format!("{field}.vkey"), e.to_string()))?;
        if v.name() != self.name {
            return Err(invalid(
                format!("{field}.name"),
                format!("{:?} is not the vkey's name {:?}", self.name, v.name()),
            ));
        }
        if !self.url.starts_with("http://") || self.url.contains(' ') {
            return Err(invalid(format!("{field}.url"), format!("{:?} is not an http:// URL", self.url)));
        }
        Ok(())
    }
}

/// A role on a log (docs/SECURITY.md "Roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Append and AppendStream (optionally limited to categories), artifact upload
    Writer,
    /// Get, Query, Tail, GetCheckpoint, proofs, NodeStatus, artifact download and stat
    Reader,
    /// Export, Summarize, key status
    Auditor,
    /// key rotation, redaction, reindex, policy reload, key status
    Admin,
}

impl Role {
    /// The lowercase name used in config and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Writer => "writer",
            Self::Reader => "reader",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

/// Roles granted to one client identity on one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// the certificate identity (SAN URI, else SAN DNS, else subject CN); `*` = any client the CA signed
    pub identity: String,
    /// the roles
    pub roles: Vec<Role>,
    /// for `writer`: the only categories it may append (empty = every category)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// approver roles it holds (e.g. `risk_officer`, `incident_manager`), for
    /// `approval` entries (docs/SECURITY.md "Four eyes")
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approves: Vec<String>,
}

/// TLS for the gRPC listener. With it every client must present a
/// certificate signed by `client_ca` (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// the server's certificate chain (PEM)
    pub cert: PathBuf,
    /// the server's private key (PEM; must not be group or world readable)
    pub key: PathBuf,
    /// the CA that signs client certificates (PEM)
    pub client_ca: PathBuf,
    /// certificate revocation lists from the client CA (PEM); re-read with the
    /// grants on `admin reload-policy` and SIGHUP
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_crl: Option<PathBuf>,
}

/// What one client identity may hold of the server's shared capacity
/// (docs/SECURITY.md "Limits"): a share of each log's append queue and of
/// the read streams. Without TLS the identity is the declared actor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerIdentity {
    /// of a log's `queue_depth`: appends one identity may have waiting
    pub queue_share: f64,
    /// of `max_read_streams`: read streams one identity may hold open
    pub read_stream_share: f64,
}

impl Default for PerIdentity {
    fn default() -> Self {
        Self { queue_share: 0.5, read_stream_share: 0.5 }
    }
}

impl PerIdentity {
    /// `share` of `total`, rounded up, at least 1.
    pub fn of(share: f64, total: usize) -> usize {
        ((share * total as f64).ceil() as usize).clamp(1, total.max(1))
    }
}

/// Where a log's source of truth lives (docs/HA.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// the file store in `data_dir` (one ledgerd)
    #[default]
    Local,
    /// a PostgreSQL database (several ledgerd nodes, one leader per log);
    /// each node keeps a verified replica in `data_dir`
    Postgres,
}

/// `[storage]`: where the logs' source of truth lives.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` or `postgres`
    pub kind: StorageKind,
    /// libpq URL or key=value string, several hosts allowed (env LEDGER_STORAGE_URL)
    pub url: String,
    /// this node's name in the lease ("" = the host name)
    pub node: String,
    /// how clients and other nodes reach this node ("" = http(s)://<listen>)
    pub advertise: String,
    /// the leader's lease, e.g. "10s"
    pub lease: String,
    /// TLS to PostgreSQL: the CA that signs the server's certificate (PEM); required when set
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// TLS client certificate chain (PEM), with `key`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// TLS client private key (PEM), with `cert`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Local,
            url: String::new(),
            node: String::new(),
            advertise: String::new(),
            lease: "10s".into(),
            ca: None,
            cert: None,
            key: None,
        }
    }
}

/// The URL may hold a password: never printed.
impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("kind", &self.kind)
            .field("url", &if self.url.is_empty() { "" } else { "(set)" })
            .field("node", &self.node)
            .field("advertise", &self.advertise)
            .field("lease", &self.lease)
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl StorageConfig {
    /// The lease's length.
    pub fn lease(&self) -> Result<std::time::Duration, ConfigError> {
        let d = humantime::parse_duration(&self.lease)
            .map_err(|e| invalid("storage.lease", format!("{:?}: {e}", self.lease)))?;
        if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(300) {
            return Err(invalid("storage.lease", format!("{:?} is outside 1s..=300s", self.lease)));
        }
        Ok(d)
    }

    /// How to reach the database: TLS when `ca` is set.
    pub fn transport(&self) -> Result<ledger_store_pg::Transport, ConfigError> {
        let Some(ca) = &self.ca else { return Ok(ledger_store_pg::Transport::Plain) };
        let identity = self.cert.as_deref().zip(self.key.as_deref());
        ledger_store_pg::Transport::tls(ca, identity)
            .map_err(|e| invalid(format!("storage.{}", e.field), format!("{}: {}", e.path.display(), e.reason)))
    }

    /// This node's name: `node`, else the host name.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ledgerd".into())
    }

    fn validate(&self, tls: bool) -> Result<(), ConfigError> {
        if self.kind == StorageKind::Local {
            return Ok(());
        }
        if self.url.trim().is_empty() {
            return Err(invalid("storage.url", "is needed with kind = \"postgres\" (or set LEDGER_STORAGE_URL)"));
        }
        self.lease()?;
        if self.node.chars().any(|c| c.is_control()) || self.node.len() > 128 {
            return Err(invalid("storage.node", "at most 128 characters, no control characters"));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(invalid("storage.cert", "cert and key go together (a client certificate and its key)"));
        }
        if self.cert.is_some() && self.ca.is_none() {
            return Err(invalid("storage.ca", "is needed with a client certificate (TLS to PostgreSQL)"));
        }
        if !self.advertise.is_empty() {
            let scheme_ok = self.advertise.starts_with("http://") || self.advertise.starts_with("https://");
            if !scheme_ok || self.advertise.contains([' ', ',']) {
                return Err(invalid(
                    "storage.advertise",
                    format!("{:?} is not an http:// or https:// URL", self.advertise),
                ));
            }
            if tls && self.advertise.starts_with("http://") {
                return Err(invalid("storage.advertise", "is http:// but [tls] is configured: use https://"));
            }
        }
        Ok(())
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// where the logs live
    pub data_dir: PathBuf,
    /// gRPC address
    pub listen: SocketAddr,
    /// Prometheus address ("" in TOML is not allowed; omit metrics with `metrics_enabled = false`)
    pub metrics_listen: SocketAddr,
    /// serve /metrics
    pub metrics_enabled: bool,
    /// checkpoint origins are `<origin_prefix>/<log name>`
    pub origin_prefix: String,
    /// log output format
    pub log_format: LogFormat,
    /// appends waiting per log before RESOURCE_EXHAUSTED
    pub queue_depth: usize,
    /// most entries per batch (one fdatasync, one signature)
    pub max_batch: usize,
    /// segment roll size, bytes
    pub segment_bytes: u64,
    /// a history checkpoint frame at least every this many entries
    pub checkpoint_interval: u64,
    /// largest artifact, bytes
    pub max_artifact_bytes: u64,
    /// appends get RESOURCE_EXHAUSTED while less than this is free on a log's filesystem
    pub min_free_bytes: u64,
    /// open Query, Tail, Export and Download streams, server-wide, before RESOURCE_EXHAUSTED
    pub max_read_streams: usize,
    /// input limits
    pub limits: Limits,
    /// each identity's share of the append queue and the read streams
    pub per_identity: PerIdentity,
    /// key ages and lifetimes
    pub keys: KeyPolicy,
    /// categories (server-wide default)
    pub policy: Policy,
    /// mutual TLS; without it gRPC is plaintext, unauthenticated, and loopback-only
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// allow plaintext on a non-loopback address (every client then has every role)
    pub insecure_listen: bool,
    /// the hosted logs
    pub logs: Vec<LogConfig>,
    /// where the logs' source of truth lives
    pub storage: StorageConfig,
    /// run as a c2sp.org/tlog-witness of other logs (docs/FORMAT.md §13)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessConfig>,
    /// serve the HTTP listener (metrics, tiles, witness, Alertmanager) over
    /// TLS with `[tls]`'s certificate; a client may present a certificate
    /// signed by `client_ca`, whose identity then has its grants there
    pub http_tls: bool,
    /// the file this was read from (policy reloads read it again)
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./ledger-data"),
            listen: "127.0.0.1:50051".parse().expect("valid"),
            metrics_listen: "127.0.0.1:9464".parse().expect("valid"),
            metrics_enabled: true,
            origin_prefix: "ledger.local".into(),
            log_format: LogFormat::Text,
            queue_depth: 8192,
            max_batch: 1024,
            segment_bytes: 64 << 20,
            checkpoint_interval: 1024,
            max_artifact_bytes: 1 << 30,
            min_free_bytes: 64 << 20,
            max_read_streams: 128,
            limits: Limits::default(),
            per_identity: PerIdentity::default(),
            keys: KeyPolicy::default(),
            policy: Policy::default(),
            tls: None,
            insecure_listen: false,
            logs: vec![LogConfig {
                name: "default".into(),
                policy: None,
                access: Vec::new(),
                public_tiles: false,
                witnesses: Vec::new(),
                witness_quorum: None,
                alertmanager: None,
                dual_control: false,
                dual_control_within: None,
            }],
            storage: StorageConfig::default(),
            witness: None,
            http_tls: false,
            source: None,
        }
    }
}

impl Config {
    /// Parses TOML text (`path` only names the file in errors).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        Self::load_with_sha256(path).map(|(c, _)| c)
    }

    /// [`load`](Self::load), with the SHA-256 of the bytes it parsed (a
    /// dual-control reload is bound to them).
    pub fn load_with_sha256(path: &std::path::Path) -> Result<(Self, ledger::hash::Hash), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.to_owned(), source: e })?;
        let mut c = Self::from_toml(path, &text)?;
        c.source = Some(path.to_owned());
        Ok((c, ledger::hash::sha256(text.as_bytes())))
    }

    /// Applies `LEDGER_DATA_DIR`, `LEDGER_LISTEN`, `LEDGER_METRICS_LISTEN`,
    /// `LEDGER_ORIGIN_PREFIX`, `LEDGER_LOG_FORMAT`, `LEDGER_QUEUE_DEPTH`,
    /// `LEDGER_MAX_BATCH`, `LEDGER_STORAGE_URL` from `vars` (normally `std::env::vars()`).
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (k, v) in vars {
            let parse_err = |e: &dyn std::fmt::Display| invalid(k.clone(), format!("{v:?}: {e}"));
            match k.as_str() {
                "LEDGER_DATA_DIR" => self.data_dir = PathBuf::from(&v),
                "LEDGER_LISTEN" => self.listen = v.parse().map_err(|e| parse_err(&e))?,
                "LEDGER_METRICS_LISTEN" => self.metrics_listen = v.parse().map_err(|e| parse_err(&e))?,
                "LEDGER_ORIGIN_PREFIX" => self.origin_prefix = v.clone(),
                "LEDGER_LOG_FORMAT" => {
                    self.log_format = <LogFormat as clap::ValueEnum>::from_str(&v, true).map_err(|e| parse_err(&e))?
                }
                "LEDGER_QUEUE_DEPTH" => self.queue_depth = v.parse().map_err(|e| parse_err(&e))?,
                "LEDGER_MAX_BATCH" => self.max_batch = v.parse().map_err(|e| parse_err(&e))?,
                "LEDGER_STORAGE_URL" => self.storage.url = v.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every value; the first problem is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.logs.is_empty() {
            return Err(invalid("logs", "at least one log is needed"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.logs.iter().enumerate() {
            check_log_name(&l.name).map_err(|r| invalid(format!("logs[{i}].name"), r))?;
            if !seen.insert(&l.name) {
                return Err(invalid(format!("logs[{i}].name"), format!("{:?} is configured twice", l.name)));
            }
            self.check_access(i, l)?;
            for (j, w) in l.witnesses.iter().enumerate() {
                w.validate(&format!("logs[{i}].witnesses[{j}]"))?;
            }
            if let Some(k) = l.witness_quorum
                && (k == 0 || k > l.witnesses.len())
            {
                let n = l.witnesses.len();
                return Err(invalid(
                    format!("logs[{i}].witness_quorum"),
                    format!("{k} is outside 1..={n} (its witnesses)"),
                ));
            }
            if let Some(a) = &l.alertmanager {
                a.validate(&format!("logs[{i}].alertmanager"), self)?;
            }
            l.validate_dual_control(i)?;
        }
        self.check_listen(self.listen)?;
        if self.origin_prefix.is_empty() || self.origin_prefix.contains(['+', ' ', '\n']) {
            return Err(invalid("origin_prefix", "must be non-empty, without '+', spaces or newlines"));
        }
        for (field, v, min, max) in [
            ("queue_depth", self.queue_depth as u64, 1, 1 << 20),
            ("max_batch", self.max_batch as u64, 1, 65_536),
            ("max_read_streams", self.max_read_streams as u64, 1, 65_536),
            ("segment_bytes", self.segment_bytes, 4096, 1 << 40),
            ("checkpoint_interval", self.checkpoint_interval, 1, u64::MAX),
            ("limits.max_payload_bytes", self.limits.max_payload_bytes as u64, 2, 16 << 20),
            ("limits.max_payload_depth", self.limits.max_payload_depth as u64, 1, 1024),
            ("limits.max_artifacts", self.limits.max_artifacts as u64, 0, 1024),
            ("keys.lifetime_days", self.keys.lifetime_days.max(0) as u64, 1, 36_500),
        ] {
            if v < min || v > max {
                return Err(invalid(field, format!("{v} is outside {min}..={max}")));
            }
        }
        if self.http_tls && self.tls.is_none() {
            return Err(invalid(
                "http_tls",
                "needs a [tls] section: its certificate and client CA serve the HTTP listener",
            ));
        }
        self.storage.validate(self.tls.is_some())?;
        if let Some(w) = &self.witness {
            w.validate()?;
        }
        for (field, share) in [
            ("per_identity.queue_share", self.per_identity.queue_share),
            ("per_identity.read_stream_share", self.per_identity.read_stream_share),
        ] {
            if !(share > 0.0 && share <= 1.0) {
                return Err(invalid(field, format!("{share} is outside (0, 1]: a share of the capacity")));
            }
        }
        Ok(())
    }

    fn check_access(&self, i: usize, l: &LogConfig) -> Result<(), ConfigError> {
        if !l.access.is_empty() && self.tls.is_none() {
            return Err(invalid(
                format!("logs[{i}].access"),
                "needs a [tls] section with client_ca: without mutual TLS there is no identity to grant roles to",
            ));
        }
        let policy = self.policy_of(l);
        for (name, c) in &policy.categories {
            if let Some(r) = &c.requires_approval {
                let field = format!("policy.categories.{name}.requires_approval");
                r.within_ns().map_err(|e| invalid(field.clone(), e))?;
                if r.role.trim().is_empty() {
                    return Err(invalid(format!("{field}.role"), "is empty"));
                }
            }
        }
        policy.check_rules().map_err(|e| {
            let table = if l.policy.is_some() { format!("logs[{i}].policy") } else { "policy".to_owned() };
            let field = format!("{table}.rules[{}].{}", e.index, e.field);
            invalid(field, format!("rule {:?}: {}", e.name, e.reason))
        })?;
        for (j, g) in l.access.iter().enumerate() {
            let field = format!("logs[{i}].access[{j}]");
            if g.identity.trim().is_empty() {
                return Err(invalid(format!("{field}.identity"), "is empty"));
            }
            if g.roles.is_empty() {
                return Err(invalid(format!("{field}.roles"), "is empty; grant at least one role"));
            }
            if !g.categories.is_empty() && !g.roles.contains(&Role::Writer) {
                return Err(invalid(format!("{field}.categories"), "limits the writer role, which is not granted"));
            }
            if let Some(c) =
                g.categories.iter().find(|c| !policy.allow_undeclared && !policy.categories.contains_key(*c))
            {
                return Err(invalid(format!("{field}.categories"), format!("{c:?} is not a declared category")));
            }
        }
        Ok(())
    }

    /// Plaintext is refused on a non-loopback address unless
    /// `insecure_listen` says so.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if self.tls.is_none() && !addr.ip().is_loopback() && !self.insecure_listen {
            return Err(invalid(
                "listen",
                format!(
                    "{addr} is not a loopback address and [tls] is not configured: plaintext gRPC lets anyone \
                     append as any actor; configure [tls] (mutual TLS) or pass --insecure-listen"
                ),
            ));
        }
        Ok(())
    }

    /// How clients reach this node: `storage.advertise`, else the listen
    /// address (https under `[tls]`).
    pub fn advertise(&self) -> String {
        if !self.storage.advertise.is_empty() {
            return self.storage.advertise.clone();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.listen)
    }

    /// The policy of a log.
    pub fn policy_of(&self, log: &LogConfig) -> Policy {
        log.policy.clone().unwrap_or_else(|| self.policy.clone())
    }
}

/// `part(/part)*`, each part `[a-z0-9][a-z0-9_.-]*`, at most 128 bytes.
pub fn check_log_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    for part in name.split('/') {
        let mut chars = part.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || !chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-')) {
            return Err(format!("{name:?}: each '/'-separated part must match [a-z0-9][a-z0-9_.-]*"));
        }
    }
    Ok(())
}
