//! The acceptance-rules part of `ledger compliance check`: the rules of
//! `--rules FILE` (read and validated here, sent as JSON) or the server's
//! policy, evaluated by the server's `CheckRules` (now, or `--as-of SIZE`).
//!
//! Owns: reading a rules file and printing the outcomes. Must not:
//! evaluate rules (the server does, with `ledger::rules`).

use std::path::Path;

use ledger_proto::v1 as pb;
use serde_json::{Value, json};

use crate::client::{Ctx, rfc3339};
use crate::error::{CliError, CliResult};

/// The rules of a `[[policy.rules]]` file, as the JSON `CheckRules` takes.
pub fn read(path: &Path) -> CliResult<String> {
    let text = crate::client::read_text(path)?;
    let file: ledger::rules::RulesFile = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("--rules {}: {}", path.display(), e.to_string().trim_end())))?;
    Ok(serde_json::to_string(&file.policy.rules).expect("rules serialise"))
}

/// Asks the server to evaluate.
pub async fn evaluate(ctx: &Ctx, rules_json: String, as_of: Option<u64>) -> CliResult<pb::CheckRulesResponse> {
    let req = pb::CheckRulesRequest { log: ctx.log.clone(), as_of: as_of.unwrap_or(0), rules_json };
    Ok(ctx.ledger().await?.check_rules(req).await?.into_inner())
}

/// The outcomes as `compliance check --output json` writes them.
pub fn to_json(r: &pb::CheckRulesResponse) -> Value {
    let outcomes: Vec<Value> = r
        .outcomes
        .iter()
        .map(|o| {
            json!({"rule": o.rule, "kind": o.kind, "verdict": o.verdict, "detail": o.detail, "seq": o.seq,
                   "description": o.description})
        })
        .collect();
    json!({"size": r.size, "evaluated_at": rfc3339(r.evaluated_at), "verdict": r.verdict, "outcomes": outcomes})
}

/// The outcomes as lines.
pub fn print(r: &pb::CheckRulesResponse) {
    if r.outcomes.is_empty() {
        println!("no acceptance rules in the policy (evaluate a profile with --rules docs/policy/stage5.toml)");
        return;
    }
    println!("acceptance rules over the first {} entries, at {}:", r.size, rfc3339(r.evaluated_at));
    let width = r.outcomes.iter().map(|o| o.rule.len()).max().unwrap_or(0);
    for o in &r.outcomes {
        println!("{:<5} {:<width$} {}", o.verdict.to_uppercase(), o.rule, o.detail);
    }
}
