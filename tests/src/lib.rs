//! Harness for end-to-end tests: builds the real `ledgerd` and `ledger`
//! binaries (once per test process, with the test's own profile), starts
//! ledgerd on a loopback port chosen by the OS, and runs the CLI.
//!
//! Owns: process handling. Must not: call the server or CLI as libraries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory holding the freshly built binaries.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_owned();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "ledger-server", "-p", "ledger-cli", "--bins"]).current_dir(&root);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build for the binaries");
        assert!(st.success(), "building ledgerd and ledger failed");
        dir
    })
}

/// A running ledgerd (killed on drop if still running).
pub struct Ledgerd {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// its HTTP listener (`/metrics`, `/tlog/…`): `http://127.0.0.1:<port>`
    pub http: String,
    /// its data directory
    pub data: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Ledgerd {
    /// Starts the freshly built ledgerd on `data` with extra arguments;
    /// waits until it serves.
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        Self::start_binary(&bin_dir().join("ledgerd"), data, extra)
    }

    /// Starts the ledgerd binary at `binary` (e.g. a release build).
    pub fn start_binary(binary: &Path, data: &Path, extra: &[&str]) -> Self {
        Self::spawn(binary, data, "127.0.0.1:0", extra)
    }

    /// [`start`](Self::start) with the HTTP listener on `http` (an address
    /// another process must know before this one starts, e.g. a witness's).
    pub fn start_with_http(data: &Path, http: &str, extra: &[&str]) -> Self {
        Self::spawn(&bin_dir().join("ledgerd"), data, http, extra)
    }

    fn spawn(binary: &Path, data: &Path, http: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                http,
                "--log-format",
                "json",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ledgerd");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "ledgerd serving"
                {
                    let field = |k: &str| v["fields"][k].as_str().unwrap_or_default().to_owned();
                    let _ = tx.send((field("addr"), field("metrics")));
                }
                keep.lock().unwrap().push(line);
            }
        });
        let (addr, http) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("ledgerd did not start: {:?}", lines.lock().unwrap()));
        let (url, http) = (format!("http://{addr}"), format!("http://{http}"));
        Self { child: Some(child), url, http, data: data.to_owned(), stderr: lines }
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log directory of log `default`.
    pub fn log_dir(&self) -> PathBuf {
        ledger::layout::log_dir(&self.data, "default")
    }

    /// What ledgerd wrote to stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ledgerd did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ledgerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The result of one `ledger` run.
#[derive(Debug)]
pub struct Run {
    /// exit code
    pub code: i32,
    /// standard output
    pub stdout: String,
    /// standard error
    pub stderr: String,
}

impl Run {
    /// stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `ledger` with `args` against `url` in `cwd`.
pub fn ledger(url: &str, cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin_dir().join("ledger"))
        .args(args)
        .env("LEDGER_SERVER", url)
        .env("LEDGER_ACTOR", "e2e-tester")
        .env_remove("LEDGER_LOG")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run ledger");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
