//! Dual control of admin actions (docs/SECURITY.md "Dual control"): on a
//! log with `dual_control = true`, Redact, Rotate and ReloadPolicy write an
//! `admin_request` entry instead of acting ([`request`]);
//! AdminService.Approve by another admin ([`approve`]) writes the
//! `approval` entry, then carries the action out, its entry naming the
//! request in `request_seq`. So the log holds request → approval → effect.
//!
//! A rerun of Approve after a failure between the approval and the effect
//! completes the effect without a second approval; after the effect it
//! writes nothing and answers with the earlier receipts.
//!
//! Owns: that order, finding what of it is already written, and the checks
//! that refuse (writing nothing) an action that could not be carried out.
//! Must not: decide the rules (`ledger::approval::dual`), word refusals
//! (`status`) or carry the actions out itself (the ledger and `reload` do).

use std::sync::Arc;

use ledger::LedgerReader;
use ledger::approval::dual::{
    ADMIN_REQUEST, ADMIN_ROLE, AdminAction, AdminRequest, Requested, approval_request_id, check_admin_approval,
};
use ledger::entry::{Actor, EntryInput};
use ledger::hash::Hash;
use ledger::keys::Rotation;
use ledger::log::{Query, Receipt};
use serde_json::json;
use tonic::Status;

use crate::logs::LogHandle;
use crate::svc_ledger::blocking;
use crate::{State, status};

/// How long a request of `log` may wait (`Some(None)`: no limit), when the
/// log is under dual control.
pub fn under_dual_control<'a>(state: &'a State, log: &str) -> Option<Option<&'a str>> {
    let lc = state.config.logs.iter().find(|l| l.name == log && l.dual_control)?;
    Some(lc.dual_control_within.as_deref())
}

/// Records `action`, asked for by `actor` for `reason`, as an
/// `admin_request` entry; refuses, writing nothing, what could not be
/// carried out now.
pub async fn request(
    state: &State,
    log: &Arc<LogHandle>,
    actor: Actor,
    action: AdminAction,
    reason: &str,
    within: Option<&str>,
) -> Result<Receipt, Status> {
    let req = AdminRequest::new(action, reason, within).map_err(|e| status::validation(&e))?;
    can_act(state, log, &req.action).await?;
    let (ledger, name) = (log.ledger().clone(), req.action.name());
    let who = actor.as_str().to_owned();
    let receipt = blocking(move || ledger.request_admin_action(&actor, &req).map_err(|e| status::append(&e))).await?;
    log.published();
    tracing::warn!(log = %log.name, action = name, request = receipt.seq, actor = %who, "admin action requested: waits for a second admin (dual control)");
    Ok(receipt)
}

/// What could not be carried out now: a redaction's target (missing,
/// redacted already, a redaction itself, a record too short), a rotation
/// of a shared keyring with no staged pair, a reload without a config
/// file, of one that is unreadable, invalid, changed since the request, no
/// longer configures the log, or names a revocation list that does not load.
async fn can_act(state: &State, log: &LogHandle, action: &AdminAction) -> Result<(), Status> {
    match *action {
        AdminAction::Redact { target_seq } => {
            let ledger = log.ledger().clone();
            blocking(move || ledger.check_redactable(target_seq).map_err(|e| status::redact(&e))).await
        }
        AdminAction::ReloadPolicy { ref config_sha256 } => {
            let (fresh, _) = crate::reload::read_config(state, Some(config_sha256)).await?;
            crate::reload::can_reload(state, &fresh, &log.name)
        }
        AdminAction::RotateKeys => {
            let (ledger, shared) = (log.ledger().clone(), log.replication.is_some());
            blocking(move || ledger.check_rotatable(shared).map_err(|e| status::append(&e))).await
        }
    }
}

/// An approved request, carried out.
pub struct Done {
    /// the request
    pub request: AdminRequest,
    /// its `approval` entry (`duplicate`: written before)
    pub approval: Receipt,
    /// the action's entry (`duplicate`: written before)
    pub effect: Receipt,
    /// a rotation carried out now: its keys
    pub rotation: Option<Rotation>,
    /// a reload carried out now: the categories declared
    pub categories: Vec<String>,
}

/// The request at a seq and what of its approval is written.
struct Found {
    request: AdminRequest,
    requester: String,
    recorded_at: i64,
    leaf_hash: Hash,
    approval: Option<u64>,
    effect: Option<u64>,
}

/// Approves request `seq` as `approver` for `reason` and carries it out.
pub async fn approve(
    state: &State,
    log: &Arc<LogHandle>,
    approver: Actor,
    seq: u64,
    reason: String,
) -> Result<Done, Status> {
    if reason.trim().is_empty() {
        return Err(status::invalid("reason", "is empty; say what you checked before approving"));
    }
    let _one_at_a_time = state.approving.lock().await;
    let reader = log.reader();
    let found = blocking(move || find(&reader, seq)).await?;
    let now = found.approval.is_none().then(|| (ledger::log::system_clock())());
    let requested =
        Requested { seq, request: &found.request, requester: &found.requester, recorded_at: found.recorded_at };
    check_admin_approval(&requested, approver.as_str(), now).map_err(|e| status::dual_control(&e))?;
    let reader = log.reader();
    if let (Some(a), Some(e)) = (found.approval, found.effect) {
        let (approval, effect) = blocking(move || Ok((rerun_receipt(&reader, a)?, rerun_receipt(&reader, e)?))).await?;
        return Ok(Done { request: found.request, approval, effect, rotation: None, categories: Vec::new() });
    }
    let approval = match found.approval {
        Some(a) => blocking(move || rerun_receipt(&reader, a)).await?,
        None => {
            can_act(state, log, &found.request.action).await?;
            write_approval(log, &approver, seq, &found.leaf_hash, &reason).await?
        }
    };
    let (effect, rotation, categories) = carry_out(state, log, approver, seq, &found.request)
        .await
        .map_err(|s| status::effect_failed(approval.seq, seq, &s))?;
    Ok(Done { request: found.request, approval, effect, rotation, categories })
}

/// Reads the request at `seq` and looks for its approval and effect.
fn find(reader: &LedgerReader, seq: u64) -> Result<Found, Status> {
    let e = reader.get(seq).map_err(|err| status::ledger(&err))?;
    if e.leaf.category != ADMIN_REQUEST {
        let category = e.leaf.category.clone();
        return Err(status::dual_control(&ledger::approval::dual::DualControlError::NotARequest { seq, category }));
    }
    let request = AdminRequest::parse(&e.payload).map_err(|v| status::validation(&v))?;
    let approval = first_naming(reader, "approval", "approved_seq", seq)?;
    let effect = match approval {
        Some(_) => first_naming(reader, request.action.effect_category(), "request_seq", seq)?,
        None => None,
    };
    let (requester, recorded_at) = (e.leaf.actor.clone(), e.leaf.recorded_at);
    Ok(Found { request, requester, recorded_at, leaf_hash: e.leaf_hash, approval, effect })
}

/// The first entry of `category` after `seq` whose payload `field` is `seq`.
fn first_naming(reader: &LedgerReader, category: &str, field: &str, seq: u64) -> Result<Option<u64>, Status> {
    let q = Query {
        category: Some(category.to_owned()),
        from_seq: Some(seq + 1),
        fields: vec![(field.to_owned(), json!(seq))],
        limit: 100,
        ..Default::default()
    };
    let mut hit = None;
    reader
        .each(q, |e| {
            hit = Some(e.seq);
            Ok::<_, ledger::LedgerError>(false)
        })
        .map_err(|e| status::ledger(&e))?;
    Ok(hit)
}

fn rerun_receipt(reader: &LedgerReader, seq: u64) -> Result<Receipt, Status> {
    let mut r = reader.receipt(seq).map_err(|e| status::ledger(&e))?;
    r.duplicate = true;
    Ok(r)
}

/// Writes the standard `approval` entry of request `seq` (role `admin`).
async fn write_approval(
    log: &LogHandle,
    approver: &Actor,
    seq: u64,
    leaf_hash: &Hash,
    reason: &str,
) -> Result<Receipt, Status> {
    let payload = json!({
        "approved_seq": seq,
        "approved_leaf_hash": hex::encode(leaf_hash),
        "reason": reason,
        "role": ADMIN_ROLE,
    });
    let input = EntryInput {
        category: "approval".into(),
        payload: payload.to_string().into_bytes(),
        request_id: approval_request_id(seq),
        ..Default::default()
    };
    let ledger = log.ledger().clone();
    let entry =
        input.validate(approver.as_str(), &ledger.reader().options().limits).map_err(|e| status::validation(&e))?;
    let receipt = blocking(move || ledger.append(entry).map_err(|e| status::append(&e))).await?;
    log.published();
    Ok(receipt)
}

/// Carries the approved request `seq` out as `approver`: the action's
/// entry, with `request_seq`, and what it returns.
async fn carry_out(
    state: &State,
    log: &Arc<LogHandle>,
    approver: Actor,
    seq: u64,
    request: &AdminRequest,
) -> Result<(Receipt, Option<Rotation>, Vec<String>), Status> {
    let (ledger, reason) = (log.ledger().clone(), request.reason.clone());
    let who = approver.as_str().to_owned();
    let done = match request.action {
        AdminAction::Redact { target_seq } => {
            let r = blocking(move || {
                ledger.redact_as_requested(&approver, target_seq, &reason, seq).map_err(|e| status::redact(&e))
            })
            .await?;
            (r, None, Vec::new())
        }
        AdminAction::RotateKeys => {
            let shared = log.replication.is_some();
            let (r, rot) = blocking(move || {
                ledger.rotate_keys_as_requested(&approver, &reason, shared, seq).map_err(|e| status::append(&e))
            })
            .await?;
            (r, Some(rot), Vec::new())
        }
        AdminAction::ReloadPolicy { ref config_sha256 } => {
            let asked = crate::reload::Requested { seq, config_sha256 };
            let mut done = crate::reload::reload(state, Some(&log.name), &approver, &reason, Some(asked)).await?;
            let one = done.pop().ok_or_else(|| status::reload_deferred(&log.name))?;
            (one.receipt.ok_or_else(|| status::reload_deferred(&log.name))?, None, one.categories)
        }
    };
    log.published();
    tracing::warn!(log = %log.name, request = seq, effect = done.0.seq, action = request.action.name(), approver = %who, "admin request approved and carried out (dual control)");
    Ok(done)
}
