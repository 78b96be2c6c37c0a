//! A real PostgreSQL 15 for tests: a primary and, optionally, one
//! synchronous standby (`synchronous_standby_names = '*'`), each in a
//! temporary directory, on loopback ports, started from Debian's
//! `/usr/lib/postgresql/15/bin` (`.ci/run` installs it when missing) as the
//! `postgres` user when the tests run as root. Every server is stopped by
//! its pid when the cluster is dropped; every wait is bounded.
#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const USER: &str = "ledger";

/// One running postgres.
pub struct Node {
    /// its port on 127.0.0.1
    pub port: u16,
    /// its data directory
    pub data: PathBuf,
    child: Option<Child>,
}

/// A primary and its standby.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// the primary
    pub primary: Node,
    /// the synchronous standby
    pub standby: Option<Node>,
}

/// The uid and gid to run postgres as (it refuses to run as root).
pub fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().expect("a postgres user (Debian's package makes it)")
    };
    Some((id("-u"), id("-g")))
}

fn cmd(name: &str) -> Command {
    let bin = Path::new(BIN).join(name);
    assert!(bin.exists(), "{} is missing: install Debian's postgresql-15 (.ci/run does)", bin.display());
    let mut c = Command::new(bin);
    if let Some((uid, gid)) = run_as() {
        c.uid(uid).gid(gid);
    }
    c
}

fn run(c: &mut Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Node {
    fn start(data: &Path, sockets: &Path, port: u16, sync_standby: bool) -> Self {
        let mut c = cmd("postgres");
        c.arg("-D").arg(data).args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"]);
        c.arg("-c").arg(format!("unix_socket_directories={}", sockets.display()));
        c.args(["-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "wal_level=replica"]);
        c.args(["-c", "max_wal_senders=4", "-c", "hot_standby=on", "-c", "wal_sender_timeout=5s"]);
        if sync_standby {
            c.args(["-c", "synchronous_standby_names=*"]);
        }
        let child =
            c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("postgres starts");
        let node = Self { port, data: data.to_owned(), child: Some(child) };
        node.wait_ready();
        node
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            let ok = Command::new(Path::new(BIN).join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("postgres on port {} did not become ready in 10 s", self.port);
    }

    /// The libpq connection string.
    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user={USER} dbname=postgres", self.port)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` and, unless it is SIGSTOP/SIGCONT, waits (bounded).
    pub fn signal(&mut self, signal: i32) {
        let Some(child) = self.child.as_mut() else { return };
        unsafe { libc::kill(child.id() as i32, signal) };
        if signal == libc::SIGSTOP || signal == libc::SIGCONT {
            return;
        }
        for _ in 0..200 {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        self.child = None;
    }
}

impl Node {
    /// SIGSTOPs (`true`) or SIGCONTs the server and all its processes (the
    /// walreceiver of a standby among them): a server that is there but
    /// does not answer.
    pub fn freeze(&self, stop: bool) {
        let pid = self.pid();
        let out = Command::new("pgrep").args(["-P", &pid.to_string()]).output().expect("pgrep runs");
        let children = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect::<Vec<i32>>();
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        for p in std::iter::once(pid as i32).chain(children) {
            unsafe { libc::kill(p, sig) };
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal(libc::SIGINT);
    }
}

impl Cluster {
    /// A primary; with `standby`, one synchronous standby streaming from it.
    pub fn start(standby: bool) -> Self {
        let dir = tempfile::Builder::new().prefix("ledger-pg").tempdir_in("/tmp").unwrap();
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let p_data = dir.path().join("primary");
        run(
            cmd("initdb").arg("-D").arg(&p_data).args(["--auth=trust", "-U", USER, "--no-sync"]).stdout(Stdio::null()),
            "initdb",
        );
        let primary = Node::start(&p_data, dir.path(), free_port(), standby);
        let standby = standby.then(|| {
            let s_data = dir.path().join("standby");
            run(
                cmd("pg_basebackup")
                    .args(["-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", USER, "-R", "-X", "stream"])
                    .arg("-D")
                    .arg(&s_data),
                "pg_basebackup",
            );
            Node::start(&s_data, dir.path(), free_port(), false)
        });
        Self { dir, primary, standby }
    }

    /// Promotes the standby (`pg_ctl promote`) and waits until it accepts
    /// writes; it becomes the primary.
    pub fn promote(&mut self) {
        let s = self.standby.take().expect("a standby");
        run(cmd("pg_ctl").arg("promote").arg("-w").arg("-D").arg(&s.data), "pg_ctl promote");
        let old = std::mem::replace(&mut self.primary, s);
        drop(old);
    }

    /// The directory holding both data directories.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A client of `node` with its connection driven on this runtime.
pub async fn connect(node: &Node) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&node.conninfo(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}
