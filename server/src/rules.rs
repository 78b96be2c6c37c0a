//! `LedgerService.CheckRules`: the policy's acceptance rules (or rules the
//! caller sends, e.g. a profile under docs/policy/) evaluated over the log
//! now, or over a past prefix (`as_of`) at the time of its last entry
//! (docs/OPERATIONS.md "Acceptance rules").
//!
//! Owns: reading the request's rules and prefix, and the response. Must
//! not: evaluate rules (`ledger::rules` does) or word refusals (`status`).

use ledger::rules::{AsOf, Outcome, Rule, Verdict, evaluate};
use ledger_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::config::Role;
use crate::svc_ledger::blocking;
use crate::{State, status};

/// The most rules one request may send.
const MAX_RULES: usize = 200;

/// Answers one request.
pub async fn check(
    state: &State,
    req: Request<pb::CheckRulesRequest>,
) -> Result<Response<pb::CheckRulesResponse>, Status> {
    let (caller, r, log) = state.authorized_log(req, &[Role::Reader, Role::Auditor])?;
    let permit = state.read_stream(&caller)?;
    let reader = log.reader();
    let policy = reader.policy();
    let rules = if r.rules_json.is_empty() { policy.rules.clone() } else { sent(&r.rules_json, &policy)? };
    blocking(move || {
        let _held = permit;
        let size = reader.size();
        let at = match r.as_of {
            0 => AsOf::current(&reader, (ledger::log::system_clock())()),
            n if n > size => return Err(status::invalid("as_of", format!("{n} is beyond the log's size {size}"))),
            n => AsOf::past(&reader, n).map_err(|e| status::ledger(&e))?,
        };
        let outcomes = evaluate(&reader, &rules, at).map_err(|e| status::ledger(&e))?;
        Ok(Response::new(response(&rules, outcomes, at)))
    })
    .await
}

/// The rules of `rules_json`, validated as the policy's would be.
fn sent(text: &str, policy: &ledger::policy::Policy) -> Result<Vec<Rule>, Status> {
    let rules: Vec<Rule> = serde_json::from_str(text).map_err(|e| status::invalid("rules_json", e))?;
    if rules.len() > MAX_RULES {
        return Err(status::invalid("rules_json", format!("{} rules; at most {MAX_RULES} per request", rules.len())));
    }
    policy.check_rule_set(&rules).map_err(|e| status::invalid("rules_json", e))?;
    Ok(rules)
}

fn response(rules: &[Rule], outcomes: Vec<Outcome>, at: AsOf) -> pb::CheckRulesResponse {
    let verdict = outcomes.iter().map(|o| o.verdict).max().unwrap_or(Verdict::Pass);
    let outcomes = outcomes
        .into_iter()
        .zip(rules)
        .map(|(o, rule)| pb::RuleOutcome {
            rule: o.rule,
            kind: o.kind.to_owned(),
            verdict: o.verdict.name().to_owned(),
            detail: o.detail,
            seq: o.seq,
            description: rule.description.clone().unwrap_or_default(),
        })
        .collect();
    pb::CheckRulesResponse { outcomes, size: at.size, evaluated_at: at.now, verdict: verdict.name().to_owned() }
}
