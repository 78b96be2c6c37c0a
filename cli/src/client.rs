//! Connecting to ledgerd, and small helpers shared by the commands.

use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_client::ArtifactServiceClient;
use ledger_proto::v1::key_service_client::KeyServiceClient;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::cli::{Cli, Output};
use crate::error::{CliError, CliResult};

/// What every command gets.
pub struct Ctx {
    /// server address
    pub server: String,
    /// log name
    pub log: String,
    /// claimed actor
    pub actor: String,
    /// output format
    pub output: Output,
    /// TLS: (CA, optional client certificate and key)
    pub tls: Option<Tls>,
}

/// The TLS files of `--ca --cert --key`.
#[derive(Clone, Debug)]
pub struct Tls {
    ca: std::path::PathBuf,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Tls {
    fn config(&self) -> CliResult<ClientTlsConfig> {
        let pem = |flag: &str, p: &std::path::Path, marker: &str| -> CliResult<Vec<u8>> {
            let b = read_file(p)?;
            if !String::from_utf8_lossy(&b).contains(marker) {
                return Err(CliError::Usage(format!("{flag} {}: no PEM {marker} block in the file", p.display())));
            }
            Ok(b)
        };
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem("--ca", &self.ca, "CERTIFICATE")?));
        if let Some((cert, key)) = &self.identity {
            let id = Identity::from_pem(pem("--cert", cert, "CERTIFICATE")?, pem("--key", key, "PRIVATE KEY")?);
            c = c.identity(id);
        }
        Ok(c)
    }
}

impl Ctx {
    /// From the parsed command line.
    pub fn new(cli: &Cli) -> Self {
        let tls = cli.ca.clone().map(|ca| Tls { ca, identity: cli.cert.clone().zip(cli.key.clone()) });
        TLS_IN_USE.store(tls.is_some(), std::sync::atomic::Ordering::Relaxed);
        Self { server: cli.server.clone(), log: cli.log.clone(), actor: cli.actor.clone(), output: cli.output, tls }
    }

    /// A channel to the server.
    pub async fn channel(&self) -> CliResult<Channel> {
        let mut server = self.server.clone();
        if self.tls.is_some()
            && let Some(rest) = server.strip_prefix("http://")
        {
            server = format!("https://{rest}");
        }
        let mut ep = Endpoint::from_shared(server.clone())
            .map_err(|e| CliError::Usage(format!("invalid --server {:?}: {e}", self.server)))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(t) = &self.tls {
            ep = ep.tls_config(t.config()?).map_err(|e| CliError::Usage(format!("TLS: {}", source_chain(&e))))?;
        }
        ep.connect().await.map_err(|e| CliError::Unreachable { server, detail: tls_hint(source_chain(&e)) })
    }

    /// The ledger service.
    pub async fn ledger(&self) -> CliResult<LedgerServiceClient<Channel>> {
        Ok(LedgerServiceClient::new(self.channel().await?).max_decoding_message_size(16 << 20))
    }

    /// The artifact service.
    pub async fn artifacts(&self) -> CliResult<ArtifactServiceClient<Channel>> {
        Ok(ArtifactServiceClient::new(self.channel().await?))
    }

    /// The key service.
    pub async fn keys(&self) -> CliResult<KeyServiceClient<Channel>> {
        Ok(KeyServiceClient::new(self.channel().await?))
    }

    /// A copy.
    pub fn clone_ctx(&self) -> Self {
        Self {
            server: self.server.clone(),
            log: self.log.clone(),
            actor: self.actor.clone(),
            output: self.output,
            tls: self.tls.clone(),
        }
    }

    /// True for --output json.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// Set when this run talks TLS (a closed connection then most likely means
/// the server refused the client certificate: TLS 1.3 reports that only by
/// closing).
static TLS_IN_USE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Adds what to do to a TLS failure's text.
pub fn tls_hint(detail: String) -> String {
    let tls = TLS_IN_USE.load(std::sync::atomic::Ordering::Relaxed);
    let hint = if detail.contains("UnknownIssuer") || detail.contains("BadSignature") {
        " — ledgerd's certificate is not signed by the CA given with --ca"
    } else if detail.contains("NotValidForName") {
        " — ledgerd's certificate does not name the host in --server"
    } else if detail.contains("Expired") {
        " — a certificate has expired"
    } else if detail.contains("CertificateRequired") {
        " — ledgerd requires a client certificate: pass --cert and --key"
    } else if detail.contains("UnknownCA") || detail.contains("DecryptError") || detail.contains("BadCertificate") {
        " — ledgerd refused your client certificate (not signed by its client CA)"
    } else if detail.contains("InvalidContentType") || detail.contains("CorruptMessage") {
        " — the server does not speak TLS (drop --ca, or use a TLS-enabled ledgerd)"
    } else if tls
        && ["connection closed", "broken pipe", "Connection reset", "connection was not ready"]
            .iter()
            .any(|m| detail.contains(m))
    {
        " — ledgerd closed the connection: it refused your client certificate or got none (pass --cert and --key, issued by its client CA)"
    } else {
        ""
    };
    detail + hint
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Follows Query pages for `filter` (newest first with `desc`), calling `f`
/// for each entry, up to `max` entries; returns how many were seen.
pub async fn scan(ctx: &Ctx, filter: pb::Filter, desc: bool, max: u64, mut f: impl FnMut(pb::Entry)) -> CliResult<u64> {
    let mut client = ctx.ledger().await?;
    let (mut seen, mut cursor) = (0u64, None);
    while seen < max {
        let limit = (max - seen).min(1000) as u32;
        let req = pb::QueryRequest {
            log: ctx.log.clone(),
            filter: Some(filter.clone()),
            desc,
            limit,
            cursor,
            ..Default::default()
        };
        let mut st = client.query(req).await?.into_inner();
        cursor = None;
        while let Some(m) = st.message().await? {
            match m.item {
                Some(pb::query_response::Item::Entry(e)) => {
                    seen += 1;
                    f(e);
                }
                Some(pb::query_response::Item::NextCursor(c)) => cursor = Some(c),
                None => {}
            }
        }
        if cursor.is_none() {
            break;
        }
    }
    Ok(seen)
}

/// `k=v` → (k, JSON value): v as JSON when it parses, else a string.
pub fn field(kv: &str) -> CliResult<(String, serde_json::Value)> {
    let (k, v) = kv.split_once('=').ok_or_else(|| CliError::Usage(format!("--field {kv:?}: expected K=V")))?;
    if k.is_empty() {
        return Err(CliError::Usage(format!("--field {kv:?}: the key is empty")));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

/// A time: RFC 3339, or a duration meaning "that long ago" (`24h`, `7d`).
pub fn time_arg(name: &str, s: &str) -> CliResult<i64> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return nanos(t).ok_or_else(|| CliError::Usage(format!("{name} {s:?}: before 1970")));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let t = std::time::SystemTime::now().checked_sub(d);
        return t.and_then(nanos).ok_or_else(|| CliError::Usage(format!("{name} {s:?}: too far back")));
    }
    Err(CliError::Usage(format!(
        "{name} {s:?}: expected an RFC 3339 time (2026-11-21T10:00:00Z) or a duration ago (24h, 7d)"
    )))
}

fn nanos(t: std::time::SystemTime) -> Option<i64> {
    t.duration_since(std::time::UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_nanos()).ok())
}

/// Unix ns as RFC 3339 (UTC).
pub fn rfc3339(ns: i64) -> String {
    if ns <= 0 {
        return "-".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Prints a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string(v).expect("serialisable"));
}

/// Reads a whole file with a clear error.
pub fn read_file(p: &std::path::Path) -> CliResult<Vec<u8>> {
    std::fs::read(p).map_err(|e| CliError::io(p, e))
}

/// Reads a text file with a clear error.
pub fn read_text(p: &std::path::Path) -> CliResult<String> {
    std::fs::read_to_string(p).map_err(|e| CliError::io(p, e))
}
