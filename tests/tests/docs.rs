//! docs/OPERATIONS.md's playbook commands, run as written (every line of
//! every ```` ```sh tested ```` block, in order, through bash) against a
//! real ledgerd. A line must exit 0 unless it ends with `# exit N`.

use std::path::Path;

use ledger_e2e::{Ledgerd, bin_dir};

fn tested_lines(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        let t = line.trim();
        if !inside && t == "```sh tested" {
            inside = true;
        } else if inside && t == "```" {
            inside = false;
        } else if inside && !t.is_empty() && !t.starts_with('#') {
            out.push(t.to_owned());
        }
    }
    out
}

/// The files operators would attach (reports, signatures, slides): created
/// here with stand-in content wherever a line attaches a file.
fn create_attachments(line: &str, cwd: &Path) {
    let words: Vec<&str> = line.split_whitespace().collect();
    for w in words.windows(2).filter(|w| w[0] == "--attach") {
        let p = cwd.join(w[1]);
        if !p.exists() {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("stand-in content of {}\n", w[1])).unwrap();
        }
    }
}

fn expected_exit(line: &str) -> i32 {
    line.rsplit_once("# exit ").and_then(|(_, n)| n.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn operations_playbook_commands_run_as_written() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/OPERATIONS.md")).unwrap();
    let lines = tested_lines(&doc);
    assert!(lines.len() >= 30, "expected the playbook blocks, found {} lines", lines.len());
    let dir = tempfile::tempdir().unwrap();
    let mut d = Ledgerd::start(&dir.path().join("data"), &[]);
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    for (i, line) in lines.iter().enumerate() {
        create_attachments(line, dir.path());
        let out = std::process::Command::new("bash")
            .args(["-c", line])
            .env("PATH", &path)
            .env("LEDGER_SERVER", &d.url)
            .env("LEDGER_ACTOR", "ops-oncall")
            .env_remove("LEDGER_LOG")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            expected_exit(line),
            "line {i}: {line}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the blocks produced is what the playbooks ask for.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let de = &summary["decision_engine"];
    assert_eq!(
        (de["total"].as_u64(), de["accepted"].as_u64(), de["latest_model"].as_str()),
        (Some(2), Some(1), Some("autotrader-v3"))
    );
    assert_eq!(de["top_rejection_reasons"][0][0], "ai_degraded");
    let compliance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("compliance.json")).unwrap()).unwrap();
    assert_eq!(compliance["verdict"], "pass");
    assert_eq!(d.stop(), Some(0));
}
