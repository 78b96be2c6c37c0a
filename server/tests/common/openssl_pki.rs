//! A CA run with the `openssl` command line: certificates with chosen
//! serials and SAN URIs, revocation, and CRLs (`openssl ca -revoke`,
//! `-gencrl`), as an operator would make them.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA in a directory, with its `openssl ca` database.
pub struct OpensslCa {
    dir: PathBuf,
    name: String,
    /// the CA certificate (PEM)
    pub ca_pem: PathBuf,
    /// the CRL file ledgerd reads (rewritten by [`OpensslCa::write_crl`])
    pub crl: PathBuf,
}

/// A certificate and key on disk.
#[derive(Clone, Debug)]
pub struct Issued {
    /// certificate (PEM)
    pub cert: PathBuf,
    /// key (PEM, mode 0600)
    pub key: PathBuf,
    /// its serial, lowercase hex as ledgerd records it
    pub serial: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("the openssl command runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl OpensslCa {
    /// A new self-signed CA `name` (P-256) and an empty CRL.
    pub fn new(dir: &Path, name: &str) -> Self {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        let cnf = format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {0}/index.txt\ncrlnumber = {0}/crlnumber\n\
             certificate = {0}/ca.pem\nprivate_key = {0}/ca.key\ndefault_md = sha256\ndefault_crl_days = 30\n",
            dir.display()
        );
        std::fs::write(dir.join("ca.cnf"), cnf).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let ca = Self { ca_pem: dir.join("ca.pem"), crl: dir.join("clients.crl"), dir, name: name.to_owned() };
        ca.write_crl();
        ca
    }

    /// A certificate for `file` with `serial` (hex), subject CN `cn` and
    /// the extensions `ext` (openssl extension lines).
    fn issue(&self, file: &str, serial: &str, cn: &str, ext: &str) -> Issued {
        std::fs::write(self.dir.join(format!("{file}.ext")), ext).unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{file}.key"),
                "-out",
                &format!("{file}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{file}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                "30",
                "-out",
                &format!("{file}.pem"),
                "-extfile",
                &format!("{file}.ext"),
            ],
        );
        let key = self.dir.join(format!("{file}.key"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Issued { cert: self.dir.join(format!("{file}.pem")), key, serial: serial.to_lowercase() }
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self) -> Issued {
        let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n";
        self.issue("server", "5e", "ledgerd", ext)
    }

    /// A client certificate whose identity is the SAN URI `uri`.
    pub fn client(&self, file: &str, serial: &str, uri: &str) -> Issued {
        let ext = format!("subjectAltName=URI:{uri}\nextendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n");
        self.issue(file, serial, file, &ext)
    }

    /// Revokes `cert` in the CA's database (the CRL changes at the next
    /// [`OpensslCa::write_crl`]).
    pub fn revoke(&self, cert: &Issued) {
        openssl(&self.dir, &["ca", "-config", "ca.cnf", "-revoke", cert.cert.to_str().unwrap()]);
    }

    /// Writes the CRL of everything revoked so far to [`OpensslCa::crl`].
    pub fn write_crl(&self) {
        openssl(&self.dir, &["ca", "-config", "ca.cnf", "-gencrl", "-out", self.crl.to_str().unwrap()]);
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
