//! `ledger compliance check`: the audit step of the playbooks as pass /
//! warn / fail with reasons — the log verifies, the latest checkpoint is
//! fresh, no key expired or older than the rotation limit, required fields
//! present in incident categories, every referenced artifact present and
//! intact (docs/OPERATIONS.md "Playbook commands"; docs/ARCHITECTURE.md
//! "Design decisions: The playbooks"); then the acceptance rules (`rules`),
//! alone with `--as-of`.

mod rules;

use ledger_proto::v1 as pb;
use serde_json::{Value, json};

use crate::cli::{ComplianceCmd, ExportArgs, Profile, SummaryArgs, VerifyArgs};
use crate::client::{Ctx, print_json};
use crate::error::{CliError, CliResult};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    Pass,
    Warn,
    Fail,
}

impl V {
    fn name(self) -> &'static str {
        match self {
            V::Pass => "pass",
            V::Warn => "warn",
            V::Fail => "fail",
        }
    }
}

struct Check {
    name: &'static str,
    verdict: V,
    detail: String,
}

/// Runs the command.
pub async fn run(ctx: &Ctx, cmd: ComplianceCmd) -> CliResult {
    let ComplianceCmd::Check { profile, max_checkpoint_age, rules: rules_file, as_of } = cmd;
    let max_age = humantime::parse_duration(&max_checkpoint_age)
        .map_err(|e| CliError::Usage(format!("--max-checkpoint-age {max_checkpoint_age:?}: {e}")))?;
    let rules_json = rules_file.as_deref().map(rules::read).transpose()?.unwrap_or_default();
    let checks = if as_of.is_some() {
        Vec::new()
    } else {
        let checks = vec![
            verify_log(ctx).await?,
            keys(ctx).await?,
            fields_and_freshness(ctx, profile, max_age).await?,
            artifacts(ctx).await?,
        ];
        checks.into_iter().flatten().collect()
    };
    let ruled = rules::evaluate(ctx, rules_json, as_of).await?;
    let of_rules = match ruled.verdict.as_str() {
        "pass" => V::Pass,
        "warn" => V::Warn,
        _ => V::Fail,
    };
    let verdict = checks.iter().map(|c| c.verdict).chain([of_rules]).max().unwrap_or(V::Pass);
    if ctx.json() {
        let cs: Vec<Value> =
            checks.iter().map(|c| json!({"check": c.name, "verdict": c.verdict.name(), "detail": c.detail})).collect();
        print_json(&json!({"profile": format!("{profile:?}").to_lowercase(), "verdict": verdict.name(), "checks": cs,
                           "rules": rules::to_json(&ruled)}));
    } else {
        for c in &checks {
            println!("{:<5} {:<22} {}", c.verdict.name().to_uppercase(), c.name, c.detail);
        }
        rules::print(&ruled);
        println!("{}", verdict.name().to_uppercase());
    }
    if verdict == V::Fail { Err(CliError::Negative("compliance check failed".into())) } else { Ok(()) }
}

async fn verify_log(ctx: &Ctx) -> CliResult<Vec<Check>> {
    let dir = tempfile_dir()?;
    let quiet = Ctx { output: crate::cli::Output::Json, ..ctx.clone_ctx() };
    let out = dir.join("export");
    crate::cmd::export::run_quiet(&quiet, ExportArgs { out: out.clone(), from: 0 }).await?;
    let args = VerifyArgs {
        path: out.clone(),
        tiles: false,
        vkeys: vec![out.join("vkeys")],
        hmac_key: None,
        trusted_checkpoint: None,
        witness_vkeys: Vec::new(),
        witness_quorum: None,
    };
    let report = crate::cmd::verify::report(&args);
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    let (verdict, detail) = if report.ok && report.warning_count > 0 {
        let first = report.warnings.first().map(describe).unwrap_or_default();
        (
            V::Warn,
            format!("no finding, {} warnings (payloads written before a rule); first: {first}", report.warning_count),
        )
    } else if report.ok {
        (V::Pass, format!("{} entries, {} checkpoints, no finding", report.entries, report.checkpoints))
    } else {
        let first = report.findings.first().map(describe).unwrap_or_default();
        (V::Fail, format!("{} findings; first: {first}", report.finding_count))
    };
    Ok(vec![Check { name: "log verifies", verdict, detail }])
}

/// `kind at seq N: detail` (`at seq -` for a finding of no entry).
fn describe(f: &ledger::verify::Finding) -> String {
    let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
    format!("{} at seq {seq}: {}", f.kind.name(), f.detail)
}

fn tempfile_dir() -> CliResult<std::path::PathBuf> {
    let mut r = [0u8; 8];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| CliError::io("/dev/urandom", e))?,
        &mut r,
    )
    .map_err(|e| CliError::io("/dev/urandom", e))?;
    let d = std::env::temp_dir().join(format!("ledger-compliance-{}", hex::encode(r)));
    std::fs::create_dir_all(&d).map_err(|e| CliError::io(&d, e))?;
    Ok(d)
}

async fn keys(ctx: &Ctx) -> CliResult<Vec<Check>> {
    let keys = ctx.keys().await?.status(pb::KeyStatusRequest { log: ctx.log.clone() }).await?.into_inner().keys;
    let mut out = Vec::new();
    for k in keys.iter().filter(|k| k.state == "active") {
        let verdict = match k.verdict.as_str() {
            "fail" => V::Fail,
            "warn" => V::Warn,
            _ => V::Pass,
        };
        let why = if k.reason.is_empty() { String::new() } else { format!(": {}", k.reason) };
        out.push(Check {
            name: "key rotation",
            verdict,
            detail: format!(
                "{} key {} is {} days old, expires in {} days{why}",
                k.kind, k.id, k.age_days, k.days_to_expiry
            ),
        });
    }
    Ok(out)
}

async fn fields_and_freshness(ctx: &Ctx, profile: Profile, max_age: std::time::Duration) -> CliResult<Vec<Check>> {
    let s = crate::cmd::summary::fetch(
        ctx,
        &SummaryArgs { category: None, subject: None, since: None, until: None, include_history: None },
    )
    .await?;
    let mut out = Vec::new();
    let newest = s["freshness"]["newest_entry_at"].as_i64();
    let now = (ledger::log::system_clock())();
    out.push(match newest {
        None => Check { name: "checkpoint freshness", verdict: V::Warn, detail: "the log is empty".into() },
        Some(t) => {
            let age = std::time::Duration::from_nanos((now - t).max(0) as u64);
            let verdict = if age > max_age { V::Warn } else { V::Pass };
            let size = &s["checkpoint"]["size"];
            Check {
                name: "checkpoint freshness",
                verdict,
                detail: format!(
                    "latest checkpoint (size {size}) covers an entry from {} ago (limit {})",
                    humantime::format_duration(round(age)),
                    humantime::format_duration(max_age)
                ),
            }
        }
    });
    let categories: &[&str] = match profile {
        Profile::Stage4 => &["stage4_incident"],
        Profile::Stage5 => &["stage5_incident", "stage5_training", "decision_evaluation"],
    };
    for cat in categories {
        let c = &s["required_fields"][cat];
        if c.is_null() {
            continue;
        }
        let (entries, complete) = (c["entries"].as_u64().unwrap_or(0), c["complete"].as_u64().unwrap_or(0));
        let verdict = if complete == entries { V::Pass } else { V::Fail };
        let missing = c["missing"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} in {v}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let detail = if verdict == V::Pass {
            format!("{cat}: {complete}/{entries} entries have {}", c["required"])
        } else {
            format!("{cat}: {complete}/{entries} complete; missing {missing}")
        };
        out.push(Check { name: "required fields", verdict, detail });
    }
    if out.len() == 1 {
        out.push(Check {
            name: "required fields",
            verdict: V::Pass,
            detail: "no entries in the profile's incident categories".into(),
        });
    }
    Ok(out)
}

fn round(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs())
}

async fn artifacts(ctx: &Ctx) -> CliResult<Vec<Check>> {
    let mut refs = Vec::new();
    crate::client::scan(ctx, pb::Filter::default(), false, u64::MAX, |e| {
        for a in e.decoded.unwrap_or_default().artifacts {
            refs.push((e.seq, a));
        }
    })
    .await?;
    let mut arts = ctx.artifacts().await?;
    let mut bad = Vec::new();
    for (seq, a) in &refs {
        let s = arts.stat(pb::StatRequest { log: ctx.log.clone(), blake3: a.blake3.clone() }).await?.into_inner();
        if !(s.present && s.intact) {
            let what = if s.present { "altered" } else { "missing" };
            bad.push(format!("{} ({}, entry {seq}) {what}", a.name, hex::encode(&a.blake3)));
        }
    }
    let (verdict, detail) = if bad.is_empty() {
        (V::Pass, format!("{} references, all present and intact", refs.len()))
    } else {
        (V::Fail, bad.join("; "))
    };
    Ok(vec![Check { name: "artifacts", verdict, detail }])
}
