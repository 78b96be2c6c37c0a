//! A follower of the PostgreSQL mode as its own log's witness (docs/HA.md
//! "A follower as witness", docs/FORMAT.md §13): a real PostgreSQL 15, a
//! leader and a follower with `[witness]`. The follower cosigns the
//! leader's checkpoint once its own verified copy holds it; a checkpoint
//! signed with the same keys over another history (a fork from a copied
//! keyring) is refused 422 naming the split view, and one beyond its copy
//! 503 (the log retries) — neither is cosigned nor recorded.

#[path = "../../store-pg/tests/common/cluster.rs"]
mod cluster;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ledger::cosign::{CosignatureVerifier, Cosigner};
use ledger::witness::AddCheckpoint;
use ledger_e2e::{Ledgerd, ledger};

const SEED: [u8; 32] = [7; 32];

/// One raw POST: (status, body).
fn post(http: &str, path: &str, body: &str) -> (u16, String) {
    let mut c = std::net::TcpStream::connect(http.trim_start_matches("http://")).unwrap();
    write!(c, "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

fn append(url: &str, cwd: &Path, n: usize, tag: &str) {
    for i in 0..n {
        let r = ledger(
            url,
            cwd,
            &["append", "--category", "stage4_incident", "--subject", "INC-1", "--field", &format!("step={tag}{i}")],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

fn checkpoint(url: &str, cwd: &Path) -> String {
    let r = ledger(url, cwd, &["checkpoint", "--output", "json"]);
    r.json()["note"].as_str().unwrap().to_owned()
}

fn keyring(dir: &Path, node: &str) -> std::path::PathBuf {
    ledger::layout::keyring(&ledger::layout::log_dir(&dir.join(node), "default"))
}

#[test]
fn a_follower_cosigns_what_its_verified_copy_holds_and_refuses_a_split_view() {
    let pg = cluster::Cluster::start(false);
    let url = pg.primary.conninfo();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let made =
        ledger("http://127.0.0.1:1", root, &["keys", "generate", "--data-dir", root.join("node-a").to_str().unwrap()]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let log_vkey = made.stdout.lines().last().unwrap().trim().to_owned();
    for other in ["node-b", "fork"] {
        std::fs::create_dir_all(keyring(root, other).parent().unwrap()).unwrap();
        std::fs::copy(keyring(root, "node-a"), keyring(root, other)).unwrap();
    }
    let storage =
        |node: &str| format!("[storage]\nkind = \"postgres\"\nurl = \"{url}\"\nnode = \"{node}\"\nlease = \"2s\"\n");
    std::fs::write(root.join("a.toml"), storage("node-a")).unwrap();
    let a = Ledgerd::start(&root.join("node-a"), &["--config", root.join("a.toml").to_str().unwrap()]);
    append(&a.url, root, 5, "real");

    // the follower's witness key (so the test knows its vkey)
    let key = root.join("witness.key");
    std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode(SEED)).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cosigner =
        CosignatureVerifier::from_vkey(&Cosigner::from_seed("follower.test/b", &SEED).unwrap().vkey()).unwrap();
    let b_config = format!(
        "{}\n[witness]\nname = \"follower.test/b\"\nkey = {:?}\n[[witness.logs]]\norigin = \"ledger.local/default\"\nvkeys = [\"{log_vkey}\"]\n",
        storage("node-b"),
        key.display().to_string()
    );
    std::fs::write(root.join("b.toml"), b_config).unwrap();
    let b = Ledgerd::start(&root.join("node-b"), &["--config", root.join("b.toml").to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint(&b.url, root) != checkpoint(&a.url, root) {
        assert!(Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // a fork from the copied keyring: same origin and key, another history
    let fork = Ledgerd::start(&root.join("fork"), &[]);
    append(&fork.url, root, 5, "forged");
    let forged5 = checkpoint(&fork.url, root);
    let add = |note: &str| {
        post(
            &b.http,
            "/witness/add-checkpoint",
            &AddCheckpoint { old: 0, proof: vec![], note: note.to_owned() }.encode(),
        )
    };
    let (code, why) = add(&forged5);
    assert!(code == 422 && why.contains("split view"), "{code} {why}");
    append(&fork.url, root, 3, "ahead");
    let forged8 = checkpoint(&fork.url, root);
    let t0 = Instant::now();
    let (code, why) = add(&forged8);
    assert!(code == 503 && why.contains("not yet 8"), "{code} {why}");
    assert!(t0.elapsed() >= Duration::from_secs(4), "it waited for its copy first");

    // the leader's own checkpoint: cosigned, and the refusals recorded nothing (it starts from 0)
    let real = checkpoint(&a.url, root);
    let (code, line) = add(&real);
    assert_eq!(code, 200, "{line}");
    let body = ledger::cosign::split_note(&real).unwrap().0;
    assert!(cosigner.verify_line(body, &line).is_some(), "{line}");
    assert!(b.logs().iter().any(|l| l.contains("differs from this node's verified copy")));
}
