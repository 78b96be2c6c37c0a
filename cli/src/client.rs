//! Connecting to ledgerd, and small helpers shared by the commands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_proto::v1 as pb;
use ledger_proto::v1::artifact_service_client::ArtifactServiceClient;
use ledger_proto::v1::key_service_client::KeyServiceClient;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::cli::{Cli, Output};
use crate::error::{CliError, CliResult};

/// What every command gets.
pub struct Ctx {
    /// `--server` as given: one node URL, or a comma-separated list of them
    pub server: String,
    /// log name
    pub log: String,
    /// claimed actor
    pub actor: String,
    /// output format
    pub output: Output,
    /// TLS: (CA, optional client certificate and key)
    pub tls: Option<Tls>,
    /// the node of the list that last accepted a connection (later connections try it first)
    pub first_up: Arc<AtomicUsize>,
    /// the node that last took a write (a node of the list or a leader a follower named)
    pub writer: Arc<Mutex<Option<String>>>,
    /// how long a write keeps retrying on UNAVAILABLE (`--write-retry`)
    pub write_retry: Duration,
}

/// The metadata key in which a follower answering a write with
/// `UNAVAILABLE` names the leader's URL (absent while there is no leader).
pub const LEADER_KEY: &str = "ledger-leader";
/// Metadata on a follower's refusal of a write (server/src/status.rs).
pub const REFUSED_KEY: &str = "ledger-refused-by";

/// Whether `st` is a follower's refusal: nothing was done.
fn refused_by_follower(st: &tonic::Status) -> bool {
    st.metadata().get(REFUSED_KEY).is_some_and(|v| v.as_bytes() == b"follower")
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before the first retry of a write; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(200);
/// The longest pause between two attempts of a write.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

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

/// The nodes of `--server`: one URL or a comma-separated list; whitespace
/// around an item is ignored, an empty item is a usage error.
pub fn parse_nodes(server: &str) -> CliResult<Vec<String>> {
    let nodes: Vec<String> = server.split(',').map(|n| n.trim().to_owned()).collect();
    if let Some(i) = nodes.iter().position(String::is_empty) {
        return Err(CliError::Usage(format!(
            "--server {server:?}: node {} of the list is empty (expected URL or URL,URL,…, e.g. http://a:50051,http://b:50051)",
            i + 1
        )));
    }
    Ok(nodes)
}

/// Where the next attempt of a write goes.
enum Target {
    /// a leader named by a follower (or the node that took the last write)
    Url(String),
    /// the first node of the list, from this index on, that accepts a connection
    List(usize),
}

impl Ctx {
    /// The same settings, for the one node `node` only.
    pub fn for_node(&self, node: &str) -> Self {
        let mut one = self.clone_ctx();
        one.server = node.to_owned();
        one.first_up = Arc::default();
        one
    }

    /// From the parsed command line.
    pub fn new(cli: &Cli) -> Self {
        let tls = cli.ca.clone().map(|ca| Tls { ca, identity: cli.cert.clone().zip(cli.key.clone()) });
        TLS_IN_USE.store(tls.is_some(), std::sync::atomic::Ordering::Relaxed);
        Self {
            server: cli.server.clone(),
            log: cli.log.clone(),
            actor: cli.actor.clone(),
            output: cli.output,
            tls,
            first_up: Arc::default(),
            writer: Arc::default(),
            write_retry: Duration::from_secs(cli.write_retry),
        }
    }

    /// The endpoint of one node: its URL as used (`https://` with TLS) and
    /// the endpoint.
    fn endpoint(&self, node: &str) -> CliResult<(String, Endpoint)> {
        let mut url = node.to_owned();
        if self.tls.is_some()
            && let Some(rest) = url.strip_prefix("http://")
        {
            url = format!("https://{rest}");
        }
        let mut ep = Endpoint::from_shared(url.clone())
            .map_err(|e| CliError::Usage(format!("invalid --server {node:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(t) = &self.tls {
            ep = ep.tls_config(t.config()?).map_err(|e| CliError::Usage(format!("TLS: {}", source_chain(&e))))?;
        }
        Ok((url, ep))
    }

    /// Every node of `--server`, checked before any is contacted.
    fn endpoints(&self) -> CliResult<Vec<(String, Endpoint)>> {
        parse_nodes(&self.server)?.iter().map(|n| self.endpoint(n)).collect()
    }

    /// Connects to the first node, from `start` on (wrapping around), that
    /// accepts a connection; returns the channel and the node's index. When
    /// none does, the error names every node tried.
    async fn connect_from(&self, nodes: &[(String, Endpoint)], start: usize) -> CliResult<(Channel, usize)> {
        let mut failed = Vec::new();
        for k in 0..nodes.len() {
            let i = (start + k) % nodes.len();
            let (url, ep) = &nodes[i];
            match ep.connect().await {
                Ok(ch) => {
                    self.first_up.store(i, Ordering::Relaxed);
                    return Ok((ch, i));
                }
                Err(e) => failed.push((url.clone(), tls_hint(source_chain(&e)))),
            }
        }
        Err(unreachable(failed))
    }

    /// A channel to the first node of `--server` that accepts a connection.
    pub async fn channel(&self) -> CliResult<Channel> {
        let nodes = self.endpoints()?;
        Ok(self.connect_from(&nodes, self.first_up.load(Ordering::Relaxed)).await?.0)
    }

    /// Runs the write `rpc` on the leader: on `UNAVAILABLE` (a follower, or a
    /// node stopping) it retries on the leader the answer names in
    /// [`LEADER_KEY`], else on the next node of the list (a named leader that
    /// does not answer sends it back to the list). 200 ms before the first
    /// retry doubling up to 2 s, none started after `--write-retry` (15 s by
    /// default: a failover takes about the lease); then the last error. Any other error ends it at
    /// once. The write must be idempotent (carry a request_id): a node
    /// that fails mid-request may have written it.
    pub async fn write<T, F, Fut>(&self, rpc: F) -> CliResult<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = CliResult<T>>,
    {
        self.write_retrying(rpc, true).await
    }

    /// Runs a write that carries no request_id (admin actions, `keys
    /// rotate`) on the leader: sent again only after a follower's refusal
    /// (metadata [`REFUSED_KEY`]: it did nothing), never after a failure
    /// that may have left it done; else as [`Ctx::write`].
    pub async fn write_on_leader<T, F, Fut>(&self, rpc: F) -> CliResult<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = CliResult<T>>,
    {
        self.write_retrying(rpc, false).await
    }

    async fn write_retrying<T, F, Fut>(&self, mut rpc: F, idempotent: bool) -> CliResult<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = CliResult<T>>,
    {
        let nodes = self.endpoints()?;
        let deadline = Instant::now() + self.write_retry;
        let mut backoff = BACKOFF_START;
        let mut list_node = self.first_up.load(Ordering::Relaxed);
        let known = self.writer.lock().expect("writer lock").clone();
        let mut target = known.map_or(Target::List(list_node), Target::Url);
        let mut last = None;
        for attempt in 0.. {
            if attempt > 0 {
                if Instant::now() + backoff > deadline {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            let (ch, url) = match target {
                Target::Url(url) => {
                    let connected = match self.endpoint(&url) {
                        Ok((used, ep)) => ep
                            .connect()
                            .await
                            .map_err(|e| CliError::Unreachable { server: used, detail: tls_hint(source_chain(&e)) }),
                        Err(e) => Err(CliError::Unreachable {
                            server: url.clone(),
                            detail: format!("named as the leader: {e}"),
                        }),
                    };
                    match connected {
                        Ok(ch) => (ch, url),
                        Err(e) => {
                            last = Some(e);
                            target = Target::List(list_node);
                            continue;
                        }
                    }
                }
                Target::List(from) => match self.connect_from(&nodes, from).await {
                    Ok((ch, i)) => {
                        list_node = i;
                        (ch, nodes[i].0.clone())
                    }
                    // Nothing answers at all: as for a read.
                    Err(e) if attempt == 0 => return Err(e),
                    Err(e) => {
                        last = Some(e);
                        target = Target::List(from);
                        continue;
                    }
                },
            };
            match rpc(ch).await {
                Ok(v) => {
                    *self.writer.lock().expect("writer lock") = Some(url);
                    return Ok(v);
                }
                Err(CliError::Remote(st))
                    if st.code() == tonic::Code::Unavailable && (idempotent || refused_by_follower(&st)) =>
                {
                    target = match leader_of(&st) {
                        Some(leader) => Target::Url(leader),
                        None => {
                            list_node = (list_node + 1) % nodes.len();
                            Target::List(list_node)
                        }
                    };
                    last = Some(CliError::Remote(st));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt ran"))
    }

    /// The ledger service.
    pub async fn ledger(&self) -> CliResult<LedgerServiceClient<Channel>> {
        Ok(ledger_client(self.channel().await?))
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
            first_up: self.first_up.clone(),
            writer: self.writer.clone(),
            write_retry: self.write_retry,
        }
    }

    /// True for --output json.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// The ledger service on `ch`.
pub fn ledger_client(ch: Channel) -> LedgerServiceClient<Channel> {
    LedgerServiceClient::new(ch).max_decoding_message_size(16 << 20)
}

/// The leader a follower's `UNAVAILABLE` names, when it names one.
pub fn leader_of(st: &tonic::Status) -> Option<String> {
    let v = st.metadata().get(LEADER_KEY)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// A fresh idempotency key for a write given none: `cli-` and 32 hex digits
/// (128 random bits). Valid as a request_id (printable ASCII, 36 bytes).
pub fn new_request_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!("cli-{}", hex::encode(b))
}

/// The error for nodes that all refused a connection: (URL, why) each.
fn unreachable(mut failed: Vec<(String, String)>) -> CliError {
    if failed.len() == 1 {
        let (server, detail) = failed.pop().expect("one");
        return CliError::Unreachable { server, detail };
    }
    let server = format!("any of the {} nodes", failed.len());
    let detail = failed.iter().map(|(url, why)| format!("{url}: {why}")).collect::<Vec<_>>().join("; ");
    CliError::Unreachable { server, detail }
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

pub(crate) fn source_chain(e: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_are_split_on_commas_and_trimmed() {
        assert_eq!(parse_nodes("http://127.0.0.1:50051").unwrap(), ["http://127.0.0.1:50051"]);
        assert_eq!(
            parse_nodes(" http://a:1 ,http://b:2,\thttp://c:3 ").unwrap(),
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        for bad in ["", " ", "http://a:1,", ",http://a:1", "http://a:1,,http://b:2", "http://a:1, ,http://b:2"] {
            let e = parse_nodes(bad).unwrap_err();
            assert!(
                matches!(e, CliError::Usage(_))
                    && e.to_string().starts_with("--server ")
                    && e.to_string().contains("empty"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn generated_request_ids_are_valid_and_distinct() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.starts_with("cli-") && id.len() == 36, "{id}");
            ledger::entry::RequestId::new(&id, &Default::default()).unwrap();
        }
    }

    #[test]
    fn only_a_followers_refusal_lets_a_write_without_request_id_go_elsewhere() {
        let mut st = tonic::Status::unavailable("the connection was reset");
        assert!(!refused_by_follower(&st), "it may have been done");
        st.metadata_mut().insert(REFUSED_KEY, "follower".parse().unwrap());
        assert!(refused_by_follower(&st));
    }

    #[test]
    fn the_leader_is_read_from_the_status_metadata() {
        let mut st = tonic::Status::unavailable("not the leader");
        assert_eq!(leader_of(&st), None);
        st.metadata_mut().insert(LEADER_KEY, "http://127.0.0.1:50061".parse().unwrap());
        assert_eq!(leader_of(&st).as_deref(), Some("http://127.0.0.1:50061"));
    }
}
