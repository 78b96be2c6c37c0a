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
//! The table can change while serving (`admin reload-policy`, SIGHUP):
//! [`AccessCell`] holds the one in force and tells open streams when it
//! changes. A certificate is checked again, against the revocation lists in
//! force, on every call (cached per table for a minute), so a revoked
//! client is refused on its next call even over a connection opened before.
//!
//! Owns: identity extraction, the grant table and its verdicts
//! (UNAUTHENTICATED, PERMISSION_DENIED; `status` words them). Must not:
//! read request bodies beyond the log name and category it is handed, or
//! read files (`tls` loads the TLS material).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use tokio::sync::watch;
use tonic::{Request, Status};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::config::{Config, Grant, Role};
use crate::status;
use crate::tls::Revocation;

/// How long a certificate's verdict is reused before it is checked again
/// (its expiry, chiefly: a reload starts a new table and a new cache).
const RECHECK_AFTER: Duration = Duration::from_secs(60);
/// Most verdicts cached per table.
const MAX_CACHED: usize = 4096;

/// The authenticated (or, without TLS, self-declared) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// recorded as the entries' `actor`
    pub identity: String,
    /// true when the identity comes from a verified certificate
    pub authenticated: bool,
    /// the certificate chain it presented (checked again after a reload)
    pub chain: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl Caller {
    /// A self-declared caller (no TLS): the claim, or "anonymous".
    pub fn declared(claimed: &str) -> Self {
        let identity = if claimed.is_empty() { "anonymous".to_owned() } else { claimed.to_owned() };
        Self { identity, authenticated: false, chain: None }
    }
}

/// How client certificates are checked under mutual TLS: rustls' verifier
/// with the revocation lists in force.
#[derive(Debug, Clone)]
pub struct Clients {
    /// the verifier (client CA + CRLs)
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// the CRLs it checks
    pub revocation: Revocation,
}

/// One grant table with its certificate checks; replaced whole on reload.
#[derive(Debug, Default)]
pub struct Access {
    /// mutual TLS is on: grants apply
    enforced: bool,
    by_log: HashMap<String, Vec<Grant>>,
    clients: Option<Clients>,
    verdicts: Mutex<HashMap<CertificateDer<'static>, Verdict>>,
}

/// When a certificate was checked, and the identity or the refusal.
type Verdict = (Instant, Result<String, Status>);

impl Access {
    /// From the configuration (validated) and, under TLS, the certificate
    /// checks.
    pub fn new(config: &Config, clients: Option<Clients>) -> Self {
        Self {
            enforced: config.tls.is_some(),
            by_log: config.logs.iter().map(|l| (l.name.clone(), l.access.clone())).collect(),
            clients,
            verdicts: Mutex::default(),
        }
    }

    /// This table with `log`'s grants replaced and, when given, new
    /// certificate checks.
    pub fn revised(&self, log: &str, grants: Vec<Grant>, clients: Option<Clients>) -> Self {
        let mut by_log = self.by_log.clone();
        by_log.insert(log.to_owned(), grants);
        Self {
            enforced: self.enforced,
            by_log,
            clients: clients.or_else(|| self.clients.clone()),
            verdicts: Mutex::default(),
        }
    }

    /// Mutual TLS is on: certificates and grants decide (fixed for the
    /// server's life).
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// The grants on `log`.
    pub fn grants_on(&self, log: &str) -> &[Grant] {
        self.by_log.get(log).map_or(&[], Vec::as_slice)
    }

    /// The serials revoked by the CRLs in force (empty without TLS or CRLs).
    pub fn revoked(&self) -> BTreeSet<String> {
        self.clients.as_ref().map(|c| c.revocation.serials.clone()).unwrap_or_default()
    }

    /// The client certificate verifier in force (under TLS).
    pub fn verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.clients.as_ref().map(|c| c.verifier.clone())
    }

    /// The caller of a request. `claimed` is the request's `actor` field,
    /// used only without TLS.
    pub fn caller<T>(&self, req: &Request<T>, claimed: &str) -> Result<Caller, Status> {
        if !self.enforced {
            return Ok(Caller::declared(claimed));
        }
        let chain = req.peer_certs().ok_or_else(status::no_client_certificate)?;
        let identity = self.check_chain(&chain)?;
        Ok(Caller { identity, authenticated: true, chain: Some(chain) })
    }

    /// The caller of an HTTP request (`http_tls`): the identity of the
    /// chain it presented, `None` when it presented none.
    pub fn caller_of_chain(&self, chain: Option<&Arc<Vec<CertificateDer<'static>>>>) -> Result<Option<Caller>, Status> {
        let Some(chain) = chain else { return Ok(None) };
        let identity = self.check_chain(chain)?;
        Ok(Some(Caller { identity, authenticated: true, chain: Some(chain.clone()) }))
    }

    /// The identity in a certificate chain that verifies now, against the
    /// revocation lists in force.
    fn check_chain(&self, chain: &[CertificateDer<'static>]) -> Result<String, Status> {
        let leaf = chain.first().ok_or_else(status::empty_certificate_chain)?;
        let lock = || self.verdicts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, v)) = lock().get(leaf)
            && at.elapsed() < RECHECK_AFTER
        {
            return v.clone();
        }
        // Verified outside the lock: after a reload every connection's next
        // call verifies once, and they need not wait for each other.
        let verdict = self.verify(leaf, &chain[1..]);
        let mut verdicts = lock();
        if verdicts.len() >= MAX_CACHED {
            verdicts.clear();
        }
        verdicts.insert(leaf.clone(), (Instant::now(), verdict.clone()));
        verdict
    }

    fn verify(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<String, Status> {
        let identity = identity_of(leaf.as_ref()).map_err(status::no_identity)?;
        let Some(clients) = &self.clients else { return Ok(identity) };
        match clients.verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            Ok(_) => Ok(identity),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)) => {
                Err(status::certificate_revoked(&identity, &serial_of(leaf.as_ref())))
            }
            Err(e) => Err(status::certificate_refused(&identity, &e)),
        }
    }

    /// Checks again that `caller` may go on holding one of `roles` on `log`
    /// (`None`: on some hosted log), for open streams after a reload: its
    /// certificate still verifies and a grant still gives the role.
    pub fn recheck(&self, caller: &Caller, log: Option<&str>, roles: &[Role]) -> Result<(), Status> {
        if !self.enforced {
            return Ok(());
        }
        if let Some(chain) = &caller.chain {
            self.check_chain(chain)?;
        }
        match log {
            Some(log) => self.require(caller, log, roles),
            None if self.by_log.keys().any(|l| self.require(caller, l, roles).is_ok()) => Ok(()),
            None => Err(status::lacks_role(&caller.identity, "(any)", roles)),
        }
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

    /// Whether `caller` holds the approver role `role` on `log` (without
    /// TLS every caller holds every role).
    pub fn approves(&self, caller: &Caller, log: &str, role: &str) -> bool {
        !self.enforced || self.grants(caller, log).any(|g| g.approves.iter().any(|r| r == role))
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

/// The access table in force, replaced whole by a reload; open streams
/// watch [`AccessCell::changes`] to check their caller again.
#[derive(Debug)]
pub struct AccessCell {
    current: RwLock<Arc<Access>>,
    changes: watch::Sender<u64>,
}

impl AccessCell {
    /// Starts with `access`.
    pub fn new(access: Access) -> Self {
        Self { current: RwLock::new(Arc::new(access)), changes: watch::Sender::new(0) }
    }

    /// The table in force.
    pub fn current(&self) -> Arc<Access> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Puts `access` in force and tells the watchers.
    pub fn replace(&self, access: Access) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(access);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Changes each time a table is put in force.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// The serial number of a DER certificate, lowercase hex ("" if unreadable).
pub fn serial_of(der: &[u8]) -> String {
    X509Certificate::from_der(der).map(|(_, c)| hex::encode(c.raw_serial())).unwrap_or_default()
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
