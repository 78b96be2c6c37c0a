//! A PostgreSQL 15 cluster run by Patroni, for tests: one etcd (v3 API)
//! and `n` Patroni members, each with its PostgreSQL, in one temporary
//! directory, on loopback ports chosen by the OS. Debian's `patroni` and
//! `etcd-server` (`.ci/run` installs them when missing) and
//! `/usr/lib/postgresql/15/bin`; Patroni, hence PostgreSQL, runs as the
//! `postgres` user when the tests run as root.
//!
//! The cluster runs with `synchronous_mode` and `synchronous_mode_strict`
//! (a commit waits for a synchronous standby; with none, writes wait), a
//! leader key TTL of 10 s, `loop_wait` 1 s and `retry_timeout` 4 s
//! (Patroni wants `loop_wait + 2 * retry_timeout <= ttl`), `use_pg_rewind`.
//! The superuser is `ledger`, every connection on 127.0.0.1 is trusted.
//!
//! [`Patroni::lose`] SIGKILLs a member's Patroni, its postmaster and the
//! postmaster's children at once (each SIGSTOPped first, so none reacts to
//! the others' death): the machine is lost; Patroni promotes another member
//! on its own. On drop every Patroni gets SIGTERM (it stops its
//! PostgreSQL), then SIGKILL if it is still there after 20 s; any
//! postmaster whose pid file is in the directory is then stopped by that
//! pid (SIGQUIT, then SIGKILL); etcd last. Every wait is bounded.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{free_port, run_as};

const PATRONI: &str = "/usr/bin/patroni";
const ETCD: &str = "/usr/bin/etcd";
const BIN: &str = "/usr/lib/postgresql/15/bin";
const SCOPE: &str = "ledger-test";
/// Patroni's leader key TTL: how long a lost primary holds the leader key.
pub const TTL: u64 = 10;

/// One Patroni member.
pub struct Member {
    /// its name in Patroni (`pg0`, `pg1`, …)
    pub name: String,
    /// its PostgreSQL's port on 127.0.0.1
    pub port: u16,
    /// its REST API's port on 127.0.0.1
    pub api: u16,
    /// its PostgreSQL data directory
    pub data: PathBuf,
    config: PathBuf,
    /// Patroni's output (its PostgreSQL's log too)
    pub log: PathBuf,
    child: Option<Child>,
}

/// etcd and the Patroni members.
pub struct Patroni {
    dir: tempfile::TempDir,
    etcd: Option<Child>,
    etcd_port: u16,
    /// the members, in the order of the URL's hosts
    pub members: Vec<Member>,
}

/// Fails, naming what to install, when a program the cluster runs is
/// missing: this test does not skip.
fn require() {
    for (path, package) in [
        (PATRONI.to_owned(), "patroni"),
        (ETCD.to_owned(), "etcd-server"),
        (format!("{BIN}/postgres"), "postgresql-15"),
        (format!("{BIN}/pg_rewind"), "postgresql-15"),
    ] {
        assert!(
            Path::new(&path).exists(),
            "{path} is missing: this test runs Patroni + etcd for real; install Debian's {package} \
             (.ci/run installs patroni, etcd-server and postgresql-15 when missing)"
        );
    }
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0, 2 s at most): the status and
/// the body parsed as JSON (`Null` when it is not JSON).
pub fn get(port: u16, path: &str) -> Option<(u16, serde_json::Value)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state follows the command name in parentheses
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The children of `pid`.
fn children(pid: i32) -> Vec<i32> {
    let out = Command::new("pgrep").args(["-P", &pid.to_string()]).output().expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

impl Member {
    /// The pid of the postmaster running on its data directory, if any:
    /// the pid file's, when that process is a postgres on this directory.
    fn postmaster(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (alive(pid) && cmdline.contains("postgres") && cmdline.contains(self.data.to_str().unwrap())).then_some(pid)
    }

    fn spawn(&mut self, dir: &Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut c = Command::new(PATRONI);
        c.arg(&self.config).current_dir(dir).env("HOME", dir);
        if let Some((uid, gid)) = run_as() {
            c.uid(uid).gid(gid);
        }
        c.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(c.spawn().expect("patroni starts"));
    }

    /// Whether its Patroni runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGTERM to its Patroni (it stops its PostgreSQL).
    fn terminate(&self) {
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }

    /// Waits until its Patroni exited (until `deadline`, then SIGKILL), then
    /// stops a postmaster left on its data directory, by its pid.
    fn reap(&mut self, deadline: Instant) {
        if let Some(mut c) = self.child.take() {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.postmaster() {
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let until = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Whether its log shows that it ran pg_rewind successfully.
    pub fn rewound(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains("pg_rewind exit code=0"))
    }
}

impl Patroni {
    /// etcd and `n` Patroni members; returns once one member leads, one is
    /// its synchronous standby streaming from it and every other one is a
    /// running replica (60 s at most).
    pub fn start(n: usize) -> Self {
        require();
        let dir = tempfile::Builder::new().prefix("ledger-patroni").tempdir_in("/tmp").unwrap();
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let (etcd_port, peer) = (free_port(), free_port());
        let etcd_log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let client_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let etcd = Command::new(ETCD)
            .args(["--name", "etcd0", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("etcd0={peer_url}"), "--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(etcd_log.try_clone().unwrap())
            .stderr(etcd_log)
            .spawn()
            .expect("etcd starts");
        let mut cluster = Self { dir, etcd: Some(etcd), etcd_port, members: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !get(etcd_port, "/health").is_some_and(|(s, b)| s == 200 && b["health"] == "true") {
            assert!(Instant::now() < deadline, "etcd did not become healthy in 20 s: {}", cluster.tail("etcd.log"));
            std::thread::sleep(Duration::from_millis(100));
        }
        for i in 0..n {
            let name = format!("pg{i}");
            let member = Member {
                port: free_port(),
                api: free_port(),
                data: cluster.dir.path().join(&name),
                config: cluster.dir.path().join(format!("{name}.yml")),
                log: cluster.dir.path().join(format!("{name}.log")),
                name,
                child: None,
            };
            std::fs::write(&member.config, cluster.config(&member)).unwrap();
            cluster.members.push(member);
        }
        let dir = cluster.dir.path().to_owned();
        for m in &mut cluster.members {
            m.spawn(&dir);
        }
        cluster.healthy(n, Duration::from_secs(60));
        cluster
    }

    /// A member's patroni.yml.
    fn config(&self, m: &Member) -> String {
        let dir = self.dir.path().display();
        format!(
            r#"scope: {SCOPE}
name: {name}
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
etcd3:
  hosts: 127.0.0.1:{etcd}
watchdog:
  mode: "off"
bootstrap:
  dcs:
    ttl: {TTL}
    loop_wait: 1
    retry_timeout: 4
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
  initdb:
  - auth: trust
  - no-sync
postgresql:
  listen: 127.0.0.1:{port}
  connect_address: 127.0.0.1:{port}
  data_dir: {data}
  bin_dir: {BIN}
  pgpass: {dir}/pgpass-{name}
  authentication:
    superuser:
      username: ledger
    replication:
      username: replicator
    rewind:
      username: ledger
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
  parameters:
    unix_socket_directories: {dir}
"#,
            name = m.name,
            api = m.api,
            etcd = self.etcd_port,
            port = m.port,
            data = m.data.display(),
        )
    }

    /// The libpq URL with every member's PostgreSQL, as ledgerd takes it.
    pub fn url(&self) -> String {
        let hosts = vec!["127.0.0.1"; self.members.len()].join(",");
        let ports: Vec<String> = self.members.iter().map(|m| m.port.to_string()).collect();
        format!("host={hosts} port={} user=ledger dbname=postgres", ports.join(","))
    }

    /// `GET /cluster` from the first running member that answers.
    pub fn members_view(&self) -> Option<serde_json::Value> {
        self.members.iter().filter(|m| m.running()).find_map(|m| get(m.api, "/cluster").map(|(_, v)| v))
    }

    fn index(&self, name: &str) -> usize {
        self.members.iter().position(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The member leading, as Patroni reports it, if one does and runs.
    pub fn leader(&self) -> Option<usize> {
        let view = self.members_view()?;
        let members = view["members"].as_array()?;
        let leader = members.iter().find(|m| m["role"] == "leader" && m["state"] == "running")?;
        Some(self.index(leader["name"].as_str()?))
    }

    /// The leader and its synchronous standby when `want` members run, one
    /// leads, one is its synchronous standby and, per the leader's
    /// PostgreSQL (`pg_stat_replication` via Patroni's `GET /patroni`),
    /// streams from it as `sync`, and the others run as replicas.
    fn settled(&self, want: usize) -> Option<(usize, usize)> {
        let view = self.members_view()?;
        let members = view["members"].as_array()?;
        if members.len() != want || members.iter().any(|m| m["state"] != "running") {
            return None;
        }
        let name = |role: &str| members.iter().find(|m| m["role"] == role).and_then(|m| m["name"].as_str());
        let (leader, sync) = (self.index(name("leader")?), self.index(name("sync_standby")?));
        let (_, status) = get(self.members[leader].api, "/patroni")?;
        let streaming = status["replication"].as_array()?.iter().any(|r| {
            r["application_name"] == self.members[sync].name.as_str()
                && r["state"] == "streaming"
                && r["sync_state"] == "sync"
        });
        streaming.then_some((leader, sync))
    }

    /// Waits (`limit` at most) until [`Self::settled`] with `want` members;
    /// the leader's index.
    pub fn healthy(&self, want: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((leader, _)) = self.settled(want) {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "Patroni: no leader with a streaming synchronous standby and {want} members running within {limit:?}: \
                 {:#?}\n{}",
                self.members_view(),
                self.members.iter().map(|m| self.tail(m.log.file_name().unwrap())).collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Loses member `i`'s machine: its Patroni, its postmaster and the
    /// postmaster's children are SIGSTOPped, then SIGKILLed, all at once.
    pub fn lose(&mut self, i: usize) {
        let m = &mut self.members[i];
        let mut pids: Vec<i32> = m.child.iter().map(|c| c.id() as i32).collect();
        if let Some(pm) = m.postmaster() {
            pids.push(pm);
            pids.extend(children(pm));
        }
        for &p in &pids {
            unsafe { libc::kill(p, libc::SIGSTOP) };
        }
        for &p in &pids {
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        if let Some(mut c) = m.child.take() {
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| alive(p)) {
            assert!(Instant::now() < deadline, "the processes of {} did not die within 10 s of SIGKILL", m.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (`limit` at most) until a member other than `old` leads, as
    /// Patroni reports it; its index.
    pub fn promoted(&self, old: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.leader().filter(|&i| i != old) {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "Patroni promoted no member within {limit:?}: {:#?}",
                self.members_view()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts member `i`'s Patroni again on its data directory (after
    /// [`Self::lose`]): it rejoins as a replica, rewinding its data
    /// directory when it diverged.
    pub fn restart(&mut self, i: usize) {
        let dir = self.dir.path().to_owned();
        self.members[i].spawn(&dir);
    }

    /// The last lines of a file in the cluster's directory.
    pub fn tail(&self, name: impl AsRef<Path>) -> String {
        let path = self.dir.path().join(name.as_ref());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("== {}\n{}", path.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    /// The directory holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Patroni {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.members.iter().map(|m| m.log.file_name().unwrap().to_owned());
            for name in logs.chain([std::ffi::OsString::from("etcd.log")]) {
                eprintln!("{}", self.tail(name));
            }
        }
        for m in &self.members {
            m.terminate();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for m in &mut self.members {
            m.reap(deadline);
        }
        if let Some(mut etcd) = self.etcd.take() {
            unsafe { libc::kill(etcd.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while etcd.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
    }
}
