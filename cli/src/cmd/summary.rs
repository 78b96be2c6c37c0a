//! `ledger summary`: the compliance summary, with the Stage5
//! `decision_engine_summary` fields.

use ledger_proto::v1 as pb;
use serde_json::Value;

use crate::cli::SummaryArgs;
use crate::client::{Ctx, print_json, rfc3339, time_arg};
use crate::error::{CliError, CliResult};

/// Fetches the summary as JSON.
pub async fn fetch(ctx: &Ctx, a: &SummaryArgs) -> CliResult<Value> {
    let req = pb::SummarizeRequest {
        log: ctx.log.clone(),
        category: a.category.clone().unwrap_or_default(),
        subject: a.subject.clone().unwrap_or_default(),
        since: a.since.as_deref().map(|s| time_arg("--since", s)).transpose()?.unwrap_or(0),
        until: a.until.as_deref().map(|s| time_arg("--until", s)).transpose()?.unwrap_or(0),
        history: a.include_history.unwrap_or(0),
    };
    let r = ctx.ledger().await?.summarize(req).await?.into_inner();
    serde_json::from_str(&r.json)
        .map_err(|e| CliError::Usage(format!("the server sent a summary that is not JSON: {e}")))
}

/// Runs the command.
pub async fn run(ctx: &Ctx, a: SummaryArgs) -> CliResult {
    let s = fetch(ctx, &a).await?;
    if ctx.json() {
        print_json(&s);
        return Ok(());
    }
    println!(
        "summary at checkpoint size {} root {}",
        s["checkpoint"]["size"],
        s["checkpoint"]["root"].as_str().unwrap_or("")
    );
    println!("entries: {}", s["entries"]);
    for (k, v) in s["by_category"].as_object().into_iter().flatten() {
        println!("  {k:<24} {v}");
    }
    for (k, c) in s["required_fields"].as_object().into_iter().flatten() {
        println!(
            "required fields of {k}: {}/{} complete ({:.1}%), missing {}",
            c["complete"],
            c["entries"],
            c["coverage"].as_f64().unwrap_or(0.0) * 100.0,
            c["missing"]
        );
    }
    let d = &s["decision_engine"];
    println!(
        "decision_engine_summary: total {} accepted {} acceptance_rate {:.3} latest_model {}",
        d["total"],
        d["accepted"],
        d["acceptance_rate"].as_f64().unwrap_or(0.0),
        d["latest_model"].as_str().unwrap_or("-")
    );
    for r in d["top_rejection_reasons"].as_array().into_iter().flatten() {
        println!("  rejected for {}: {}", r[0].as_str().unwrap_or("?"), r[1]);
    }
    for e in d["history"].as_array().into_iter().flatten() {
        println!(
            "  #{} {} {} accepted={} {}",
            e["seq"],
            rfc3339(e["recorded_at"].as_i64().unwrap_or(0)),
            e["model"].as_str().unwrap_or("-"),
            e["accepted"],
            e["reasons"]
        );
    }
    let f = &s["freshness"];
    println!(
        "last key rotation: {} ({} days ago); newest entry {}",
        f["last_key_rotation_at"].as_i64().map_or("never".to_owned(), rfc3339),
        f["days_since_key_rotation"],
        f["newest_entry_at"].as_i64().map_or("-".to_owned(), rfc3339)
    );
    Ok(())
}
