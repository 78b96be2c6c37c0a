//! Mutual TLS for the gRPC listener (and, with `http_tls`, the HTTP one): the server's certificate, the client
//! CA, the client CA's revocation lists (`[tls] client_crl`), and the
//! acceptor that runs handshakes (docs/SECURITY.md "Revocation").
//!
//! rustls' own verifier ([`WebPkiClientVerifier`] with CRLs) decides every
//! handshake and, through [`crate::auth::Access`], every call. The CRLs can
//! be re-read while serving: the handshake verifier asks the access table in
//! force for its verifier, so a reload takes effect for new connections at
//! once, and for open ones at their next call.
//!
//! Owns: reading the TLS files, CRL checks at load (each CRL parses and is
//! signed by a client CA certificate), the verifier, the handshake loop.
//! Must not: decide roles (that is `auth`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::DistinguishedName;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;

use crate::auth::AccessCell;
use crate::config::TlsConfig;

/// How long a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("tls.{field} {path}: {source}")]
    Read {
        /// the config field
        field: &'static str,
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The private key file is unusable (missing, or readable by others).
    #[error("tls.key: {0}")]
    Key(#[from] ledger::keys::KeyError),
    /// A file's content is unusable.
    #[error("tls.{field} {path}: {reason}")]
    Content {
        /// the config field
        field: &'static str,
        /// the file
        path: PathBuf,
        /// what is wrong
        reason: String,
    },
}

fn content(field: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Content { field, path: path.to_owned(), reason: reason.into() }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { field, path: path.to_owned(), source })
}

/// Every PEM block of type `T` in the file `field` names; `missing` when
/// there is none.
fn pem_all<T: PemObject>(field: &'static str, path: &Path, missing: &str) -> Result<Vec<T>, TlsError> {
    let pem = read(field, path)?;
    let items: Vec<T> = T::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| content(field, path, format!("unreadable PEM: {e}")))?;
    if items.is_empty() {
        return Err(content(field, path, missing));
    }
    Ok(items)
}

/// The client CA, fixed for the server's life (a new CA needs a restart).
#[derive(Debug)]
pub struct ClientCa {
    roots: Arc<RootCertStore>,
    certs: Vec<CertificateDer<'static>>,
    path: PathBuf,
}

impl ClientCa {
    /// Reads `tls.client_ca`.
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let certs: Vec<CertificateDer<'static>> = pem_all("client_ca", path, "no PEM certificate in the file")?;
        let mut roots = RootCertStore::empty();
        for (i, c) in certs.iter().enumerate() {
            roots.add(c.clone()).map_err(|e| content("client_ca", path, format!("certificate {i}: {e}")))?;
        }
        Ok(Self { roots: Arc::new(roots), certs, path: path.to_owned() })
    }

    /// The verifier for client certificates, checking `revocation` when it
    /// holds CRLs (then a client whose issuer has no CRL is refused).
    pub fn verifier(&self, revocation: &Revocation) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut b = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider);
        if !revocation.crls.is_empty() {
            b = b.with_crls(revocation.crls.iter().cloned()).only_check_end_entity_revocation();
        }
        b.build().map_err(|e| content("client_ca", &self.path, e.to_string()))
    }

    fn hints(&self) -> Vec<DistinguishedName> {
        self.roots.subjects()
    }
}

/// The revocation lists in force and the serials they revoke.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    crls: Vec<CertificateRevocationListDer<'static>>,
    /// revoked serial numbers, lowercase hex
    pub serials: BTreeSet<String>,
}

impl Revocation {
    /// Reads `tls.client_crl` (or nothing): every CRL must parse and be
    /// signed by a certificate of the client CA.
    pub fn load(path: Option<&Path>, ca: &ClientCa) -> Result<Self, TlsError> {
        let Some(path) = path else { return Ok(Self::default()) };
        let crls: Vec<CertificateRevocationListDer<'static>> =
            pem_all("client_crl", path, "no PEM CRL (-----BEGIN X509 CRL-----) in the file")?;
        let mut serials = BTreeSet::new();
        for (i, der) in crls.iter().enumerate() {
            let found = check_crl(der, ca).map_err(|r| content("client_crl", path, format!("CRL {i}: {r}")))?;
            serials.extend(found);
        }
        Ok(Self { crls, serials })
    }
}

/// The serials one CRL revokes, once it is known to be signed by a client
/// CA certificate.
fn check_crl(der: &[u8], ca: &ClientCa) -> Result<Vec<String>, String> {
    use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};
    let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| format!("not a CRL: {e}"))?;
    let signer = ca.certs.iter().find_map(|c| {
        let (_, cert) = X509Certificate::from_der(c.as_ref()).ok()?;
        (cert.subject() == crl.issuer()).then_some(cert)
    });
    let signer = signer.ok_or_else(|| format!("its issuer {} is not a certificate of tls.client_ca", crl.issuer()))?;
    crl.verify_signature(signer.public_key())
        .map_err(|e| format!("its signature does not verify with {} ({e})", crl.issuer()))?;
    Ok(crl.iter_revoked_certificates().map(|r| hex::encode(r.raw_serial())).collect())
}

/// The handshake's client verifier: whatever the access table in force
/// holds, so a reload changes it for the next handshake. (`signatures`
/// checks the handshake's signatures, which no CRL changes.)
#[derive(Debug)]
struct Current {
    access: Arc<AccessCell>,
    hints: Vec<DistinguishedName>,
    signatures: Arc<dyn ClientCertVerifier>,
    /// gRPC: every client shows a certificate; HTTP: one may
    mandatory: bool,
}

impl ClientCertVerifier for Current {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verifier = self
            .access
            .current()
            .verifier()
            .ok_or_else(|| rustls::Error::General("no client certificate verifier is in force".into()))?;
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// The server side of mutual TLS: the certificate and key from `t`, client
/// certificates required and checked by the access table in force.
pub fn server_config(
    t: &TlsConfig,
    ca: &ClientCa,
    access: Arc<AccessCell>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    build(t, ca, access, true, b"h2")
}

/// The HTTP listener's TLS (`http_tls`): the same certificate and client
/// checks, but a client certificate is optional (`/metrics` and public
/// tiles need none), and HTTP/1.1.
pub fn http_server_config(
    t: &TlsConfig,
    ca: &ClientCa,
    access: Arc<AccessCell>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    build(t, ca, access, false, b"http/1.1")
}

fn build(
    t: &TlsConfig,
    ca: &ClientCa,
    access: Arc<AccessCell>,
    mandatory: bool,
    alpn: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = pem_all("cert", &t.cert, "no PEM certificate in the file")?;
    let key_pem = ledger::keys::read_private(&t.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| content("key", &t.key, "no PEM private key in the file"))?;
    let verifier = Current { access, hints: ca.hints(), signatures: ca.verifier(&Revocation::default())?, mandatory };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| content("cert", &t.cert, e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(|e| content("key", &t.key, format!("does not match tls.cert: {e}")))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Accepted connections after their TLS handshake, each handshake run on
/// its own task (a slow client holds up nobody) and bounded by
/// [`HANDSHAKE_TIMEOUT`]. Ends when `stop` turns true or the stream is
/// dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
