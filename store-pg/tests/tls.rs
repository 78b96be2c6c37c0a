//! TLS to PostgreSQL (docs/HA.md "Configuration"): a real PostgreSQL 15 that
//! accepts TCP clients over TLS only, with a certificate made by the
//! `openssl` command line for 127.0.0.1. A store with the right CA reaches
//! it; without TLS, or with another CA, it is refused naming why; a CA file
//! with no certificate is refused naming the field.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{Cluster, connect};
use ledger_store_pg::{Db, Transport};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (.ci/run installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>.pem`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `server.pem`/`server.key` for 127.0.0.1, signed by CA `ca`.
fn server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn the_store_reaches_postgresql_over_tls_only_with_the_right_ca() {
    let cluster = Cluster::start(false);
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "pg-ca");
    make_ca(certs.path(), "other-ca");
    server_cert(certs.path(), "pg-ca");
    // The server's files go into its data directory, owned by the user it runs as.
    let data = &cluster.primary.data;
    for f in ["server.pem", "server.key"] {
        std::fs::copy(certs.path().join(f), data.join(f)).unwrap();
    }
    let owner = std::fs::metadata(data).unwrap();
    for f in ["server.pem", "server.key"] {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::os::unix::fs::chown(data.join(f), Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\nhostssl replication all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&cluster.primary).await; // in clear, before the reload
        for stmt in [
            "ALTER SYSTEM SET ssl = on",
            "ALTER SYSTEM SET ssl_cert_file = 'server.pem'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "SELECT pg_reload_conf()",
        ] {
            c.batch_execute(stmt).await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let url = cluster.primary.conninfo();
    let lease = Duration::from_secs(10);

    let plain = Db::new(&url, lease).unwrap();
    let e = plain.install().unwrap_err().to_string();
    assert!(e.contains("no encryption") || e.contains("rejects connection"), "{e}");

    let good = Transport::tls(&certs.path().join("pg-ca.pem"), None).unwrap();
    let db = Db::with_transport(&url, lease, good).unwrap();
    db.install().expect("TLS with the right CA");
    let lease = db.acquire("tls", "node-a", "https://node-a", lease).unwrap();
    assert_eq!(lease.epoch, 1);
    assert_eq!(db.head("tls").unwrap().unwrap().holder, "node-a");

    let wrong = Transport::tls(&certs.path().join("other-ca.pem"), None).unwrap();
    let e = Db::with_transport(&url, Duration::from_secs(10), wrong).unwrap().install().unwrap_err().to_string();
    assert!(e.contains("UnknownIssuer") || e.contains("certificate"), "{e}");

    std::fs::write(certs.path().join("empty.pem"), "not a certificate\n").unwrap();
    let e = Transport::tls(&certs.path().join("empty.pem"), None).unwrap_err().to_string();
    assert!(e.starts_with("storage.ca: ") && e.contains("no PEM certificate"), "{e}");
}
