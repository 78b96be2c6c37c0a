//! Who is calling and what they may do (docs/SECURITY.md "Identities" and
//! "Roles").
//!
//! With `[tls]` every connection carries a client certificate the
//! configured CA signed (rustls refuses the handshake otherwise); its
//! identity — the first SAN URI, else the first SAN DNS name, else the
//! subject CN — is the caller, and the per-log grants decide. Without TLS
//! (loopback only, or `--insecure-listen`) there is no authentication: the
//! caller is the request's self-declared `actor` and has every role.
//!
//! Owns: identity extraction, the grant table and its verdicts
//! (UNAUTHENTICATED, PERMISSION_DENIED; `status` words them), loading the
//! TLS material. Must not: read request bodies beyond the log name and
//! category it is handed.

use std::collections::HashMap;

use tonic::{Request, Status};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::config::{Config, Grant, Role, TlsConfig};
use crate::status;

/// The authenticated (or, without TLS, self-declared) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// recorded as the entries' `actor`
    pub identity: String,
    /// true when the identity comes from a verified certificate
    pub authenticated: bool,
}

impl Caller {
    /// A self-declared caller (no TLS): the claim, or "anonymous".
    pub fn declared(claimed: &str) -> Self {
        let identity = if claimed.is_empty() { "anonymous".to_owned() } else { claimed.to_owned() };
        Self { identity, authenticated: false }
    }
}

/// The grant table, built once from the configuration.
#[derive(Debug, Default)]
pub struct Access {
    /// mutual TLS is on: grants apply
    enforced: bool,
    by_log: HashMap<String, Vec<Grant>>,
}

impl Access {
    /// From the configuration (validated).
    pub fn new(config: &Config) -> Self {
        Self {
            enforced: config.tls.is_some(),
            by_log: config.logs.iter().map(|l| (l.name.clone(), l.access.clone())).collect(),
        }
    }

    /// The caller of a request. `claimed` is the request's `actor` field,
    /// used only without TLS.
    pub fn caller<T>(&self, req: &Request<T>, claimed: &str) -> Result<Caller, Status> {
        if !self.enforced {
            return Ok(Caller::declared(claimed));
        }
        let certs = req.peer_certs().ok_or_else(status::no_client_certificate)?;
        let leaf = certs.first().ok_or_else(status::empty_certificate_chain)?;
        let identity = identity_of(leaf.as_ref()).map_err(status::no_identity)?;
        Ok(Caller { identity, authenticated: true })
    }

    fn grants<'a>(&'a self, caller: &'a Caller, log: &str) -> impl Iterator<Item = &'a Grant> {
        self.by_log.get(log).into_iter().flatten().filter(move |g| g.identity == "*" || g.identity == caller.identity)
    }

    /// Succeeds when `caller` holds one of `roles` on `log`.
    pub fn require(&self, caller: &Caller, log: &str, roles: &[Role]) -> Result<(), Status> {
        if !self.enforced || self.grants(caller, log).any(|g| g.roles.iter().any(|r| roles.contains(r))) {
            return Ok(());
        }
        Err(status::lacks_role(&caller.identity, log, roles))
    }

    /// Succeeds when `caller` may append `category` to `log`: a writer
    /// grant that lists no categories, or lists this one.
    pub fn require_writer(&self, caller: &Caller, log: &str, category: &str) -> Result<(), Status> {
        if !self.enforced {
            return Ok(());
        }
        self.require(caller, log, &[Role::Writer])?;
        let writers: Vec<&Grant> = self.grants(caller, log).filter(|g| g.roles.contains(&Role::Writer)).collect();
        if writers.iter().any(|g| g.categories.is_empty() || g.categories.iter().any(|c| c == category)) {
            return Ok(());
        }
        let allowed: Vec<&str> = writers.iter().flat_map(|g| g.categories.iter().map(String::as_str)).collect();
        Err(status::lacks_category(&caller.identity, log, category, &allowed))
    }
}

/// The identity in a DER certificate: first SAN URI, else first SAN DNS
/// name, else the subject's CN.
pub fn identity_of(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("unreadable client certificate: {e}"))?;
    let mut dns = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::URI(u) => return Ok((*u).to_owned()),
                GeneralName::DNSName(d) if dns.is_none() => dns = Some((*d).to_owned()),
                _ => {}
            }
        }
    }
    if let Some(d) = dns {
        return Ok(d);
    }
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok().map(str::to_owned));
    cn.filter(|c| !c.is_empty())
        .ok_or_else(|| "the client certificate has no SAN URI, SAN DNS name or subject CN to identify it".to_owned())
}

/// A TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file cannot be read.
    #[error("tls.{field} {path}: {source}")]
    Read {
        /// the config field
        field: &'static str,
        /// the file
        path: std::path::PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The private key file is unusable (missing, or readable by others).
    #[error("tls.key: {0}")]
    Key(#[from] ledger::keys::KeyError),
    /// A file holds no PEM block of the expected kind.
    #[error("tls.{field} {path}: {reason}")]
    Pem {
        /// the config field
        field: &'static str,
        /// the file
        path: std::path::PathBuf,
        /// what is missing
        reason: &'static str,
    },
}

/// Loads the server's TLS configuration (mutual TLS, client certificate
/// required), refusing a private key that group or others can read.
pub fn server_tls(t: &TlsConfig) -> Result<tonic::transport::ServerTlsConfig, TlsError> {
    let read = |field: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TlsError::Read { field, path: path.to_owned(), source })
    };
    let cert = read("cert", &t.cert)?;
    let ca = read("client_ca", &t.client_ca)?;
    let key = ledger::keys::read_private(&t.key)?;
    let pem_check = |field, path: &std::path::Path, bytes: &[u8], marker: &str, reason| {
        if String::from_utf8_lossy(bytes).contains(marker) {
            Ok(())
        } else {
            Err(TlsError::Pem { field, path: path.to_owned(), reason })
        }
    };
    pem_check("cert", &t.cert, &cert, "-----BEGIN CERTIFICATE-----", "no PEM certificate in the file")?;
    pem_check("client_ca", &t.client_ca, &ca, "-----BEGIN CERTIFICATE-----", "no PEM certificate in the file")?;
    pem_check("key", &t.key, &key, "PRIVATE KEY-----", "no PEM private key in the file")?;
    Ok(tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key))
        .client_ca_root(tonic::transport::Certificate::from_pem(ca))
        .client_auth_optional(false)
        .timeout(std::time::Duration::from_secs(10)))
}
