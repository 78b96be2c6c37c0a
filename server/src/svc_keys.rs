//! `ledger.v1.KeyService`: key status with verdicts, rotation (written as a
//! `key_rotation` entry; under dual control only requested, `dual`), public
//! keys.

use std::sync::Arc;

use ledger::keys::{KeyKind, KeyState, Verdict};
use ledger_proto::v1 as pb;
use ledger_proto::v1::key_service_server::{KeyService, KeyServiceServer};
use tonic::{Request, Response, Status};

use crate::config::Role;
use crate::svc_ledger::blocking;
use crate::{State, convert, dual, status};

/// The service.
pub struct KeySvc {
    state: Arc<State>,
}

/// The service.
pub fn service(state: Arc<State>) -> KeyServiceServer<KeySvc> {
    KeyServiceServer::new(KeySvc { state })
}

fn kind(k: KeyKind) -> String {
    match k {
        KeyKind::Ed25519 => "ed25519".into(),
        KeyKind::HmacSha256 => "hmac-sha256".into(),
    }
}

fn state_name(s: KeyState) -> String {
    match s {
        KeyState::Staged => "staged".into(),
        KeyState::Active => "active".into(),
        KeyState::Retired => "retired".into(),
    }
}

#[tonic::async_trait]
impl KeyService for KeySvc {
    async fn status(&self, req: Request<pb::KeyStatusRequest>) -> Result<Response<pb::KeyStatusResponse>, Status> {
        let (_, _, log) = self.state.authorized_log(req, &[Role::Reader, Role::Auditor, Role::Admin])?;
        let reader = log.reader();
        let now = (ledger::log::system_clock())();
        let keys = reader
            .key_status(now)
            .into_iter()
            .map(|k| pb::KeyStatus {
                id: k.id,
                kind: kind(k.kind),
                state: state_name(k.state),
                created_at: k.created_at_ns,
                not_after: k.not_after_ns,
                age_days: k.age_days,
                days_to_expiry: k.days_to_expiry,
                verdict: match k.verdict {
                    Verdict::Ok => "ok",
                    Verdict::Warn => "warn",
                    Verdict::Fail => "fail",
                }
                .into(),
                reason: k.reason.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::KeyStatusResponse { keys }))
    }

    async fn rotate(&self, req: Request<pb::RotateRequest>) -> Result<Response<pb::RotateResponse>, Status> {
        let (actor, r, log) = self.state.admin(req)?;
        log.writable()?;
        if r.reason.trim().is_empty() {
            return Err(status::invalid(
                "reason",
                "is empty; say why the keys are rotated (e.g. the 30-day rotation, a suspected leak)",
            ));
        }
        if let Some(within) = dual::under_dual_control(&self.state, &log.name) {
            let action = ledger::approval::dual::AdminAction::RotateKeys;
            let receipt = dual::request(&self.state, &log, actor, action, &r.reason, within).await?;
            let (receipt, request_seq) = (Some(convert::receipt(&receipt)), receipt.seq);
            return Ok(Response::new(pb::RotateResponse { receipt, pending: true, request_seq, ..Default::default() }));
        }
        let (ledger, shared) = (log.ledger().clone(), log.replication.is_some());
        let (receipt, rot) = blocking(move || {
            // nodes that share one keyring rotate only to keys every node already holds
            let done = if shared {
                ledger.rotate_to_staged_keys(&actor, &r.reason)
            } else {
                ledger.rotate_keys(&actor, &r.reason)
            };
            done.map_err(|e| status::append(&e))
        })
        .await?;
        log.published();
        tracing::warn!(log = %log.name, new_ed25519 = %rot.new_ed25519_id, new_hmac = %rot.new_hmac_id, seq = receipt.seq, "keys rotated");
        Ok(Response::new(pb::RotateResponse {
            receipt: Some(convert::receipt(&receipt)),
            new_vkey: rot.new_vkey,
            new_hmac_key_id: rot.new_hmac_id,
            retired: rot.retired,
            ..Default::default()
        }))
    }

    async fn public_keys(
        &self,
        req: Request<pb::PublicKeysRequest>,
    ) -> Result<Response<pb::PublicKeysResponse>, Status> {
        let roles = [Role::Writer, Role::Reader, Role::Auditor, Role::Admin];
        let (_, _, log) = self.state.authorized_log(req, &roles)?;
        let reader = log.reader();
        let keys = reader
            .public_keys()
            .into_iter()
            .map(|k| pb::PublicKey {
                vkey: k.vkey.unwrap_or_default(),
                id: k.id,
                kind: kind(k.kind),
                state: state_name(k.state),
                created_at: k.created_at_ns,
                not_after: k.not_after_ns,
                retired_at: k.retired_at_ns.unwrap_or(0),
            })
            .collect();
        let lc = self.state.config.logs.iter().find(|l| l.name == log.name);
        let witness_vkeys = lc.map(|l| l.witnesses.iter().map(|w| w.vkey.clone()).collect()).unwrap_or_default();
        let witness_quorum = lc.and_then(|l| l.witness_quorum).unwrap_or(0) as u32;
        Ok(Response::new(pb::PublicKeysResponse { keys, witness_vkeys, witness_quorum }))
    }
}
