//! A throwaway PKI for tests: a CA, a server certificate for loopback and
//! client certificates with chosen identities (rcgen, ring).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A CA that writes its files into a directory.
pub struct Pki {
    dir: PathBuf,
    name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// the CA certificate (PEM)
    pub ca_pem: PathBuf,
}

/// A certificate and its private key on disk.
#[derive(Clone, Debug)]
pub struct Pair {
    /// certificate (PEM)
    pub cert: PathBuf,
    /// private key (PEM, mode 0600)
    pub key: PathBuf,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

impl Pki {
    /// A new CA called `name`, its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        Self { dir: dir.to_owned(), name: name.to_owned(), ca, ca_pem }
    }

    fn issue(&self, file: &str, cn: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> Pair {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn);
        p.subject_alt_names = sans;
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let pair = Pair { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")) };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        pair
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Pair {
        let sans =
            vec![SanType::DnsName("localhost".try_into().unwrap()), SanType::IpAddress("127.0.0.1".parse().unwrap())];
        self.issue(&format!("{}-server", self.name), "ledgerd", sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate whose identity is the SAN URI `uri`.
    pub fn client_uri(&self, file: &str, uri: &str) -> Pair {
        let sans = vec![SanType::URI(uri.try_into().unwrap())];
        self.issue(file, "ignored-cn", sans, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client certificate with only a subject CN.
    pub fn client_cn(&self, file: &str, cn: &str) -> Pair {
        self.issue(file, cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// ledgerd's `[tls]` section: `server`'s certificate, clients of this CA.
    pub fn tls_section(&self, server: &Pair) -> String {
        format!("[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n", server.cert, server.key, self.ca_pem)
    }
}

impl Pair {
    /// The `ledger` flags that present this certificate to a server of `ca`.
    pub fn cli_args<'a>(&'a self, ca: &'a Path) -> [&'a str; 6] {
        let s = |p: &'a Path| p.to_str().unwrap();
        ["--ca", s(ca), "--cert", s(&self.cert), "--key", s(&self.key)]
    }
}
