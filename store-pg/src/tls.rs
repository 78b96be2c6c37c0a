//! TLS to PostgreSQL (`[storage] ca`, `cert`, `key`): rustls on the ring
//! provider, the server's certificate checked against the given CA and the
//! URL's host name, and optionally a client certificate. With TLS
//! configured the connection requires it (`sslmode=require` is forced: a
//! server without TLS is refused, never used in clear).
//!
//! Owns: reading those PEM files and the connector. Must not: fall back to
//! plaintext.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS files could not be used; the field is named.
#[derive(Debug, thiserror::Error)]
#[error("storage.{field}: {}: {reason}", path.display())]
pub struct TlsError {
    /// `ca`, `cert` or `key`
    pub field: &'static str,
    /// the file
    pub path: std::path::PathBuf,
    /// why
    pub reason: String,
}

/// How a connection is made: in clear (loopback, a trusted network), or
/// TLS with the server checked.
#[derive(Clone, Default)]
pub enum Transport {
    /// no TLS
    #[default]
    Plain,
    /// TLS, required
    Tls(MakeRustlsConnect),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "Plain",
            Self::Tls(_) => "Tls",
        })
    }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError { field, path: path.to_owned(), reason: e.to_string() })
}

impl Transport {
    /// TLS trusting the CA certificates in `ca` (PEM), with the client
    /// certificate chain and key of `identity` when given.
    pub fn tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let bad = |field, path: &Path, reason: String| TlsError { field, path: path.to_owned(), reason };
        let mut roots = rustls::RootCertStore::empty();
        let pem = read("ca", ca)?;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| bad("ca", ca, e.to_string()))?;
            roots.add(c).map_err(|e| bad("ca", ca, e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("ca", ca, "no PEM certificate in the file".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("ca", ca, e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let pem = read("cert", cert)?;
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad("cert", cert, e.to_string()))?;
                if chain.is_empty() {
                    return Err(bad("cert", cert, "no PEM certificate in the file".into()));
                }
                let k = PrivateKeyDer::from_pem_slice(&read("key", key)?)
                    .map_err(|e| bad("key", key, format!("no usable PEM private key: {e}")))?;
                builder.with_client_auth_cert(chain, k).map_err(|e| bad("key", key, e.to_string()))?
            }
        };
        Ok(Self::Tls(MakeRustlsConnect::new(config)))
    }
}
