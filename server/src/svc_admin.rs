//! `ledger.v1.AdminService`: audited redaction, policy reload and reindex (role
//! `admin`). Each writes its entry — who, what, why — before it takes
//! effect (docs/SECURITY.md "Admin actions"). Under dual control, Redact and
//! ReloadPolicy only request (`dual`), and Approve carries a request out.

use std::sync::Arc;

use ledger::approval::dual::AdminAction;
use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use tonic::{Request, Response, Status};

use crate::svc_ledger::blocking;
use crate::{State, convert, dual, status};

/// The service.
pub struct AdminSvc {
    state: Arc<State>,
}

/// The service.
pub fn service(state: Arc<State>) -> AdminServiceServer<AdminSvc> {
    AdminServiceServer::new(AdminSvc { state })
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    async fn redact(&self, req: Request<pb::RedactRequest>) -> Result<Response<pb::RedactResponse>, Status> {
        let (who, r, log) = self.state.admin(req)?;
        log.writable()?;
        if let Some(within) = dual::under_dual_control(&self.state, &log.name) {
            let action = AdminAction::Redact { target_seq: r.seq };
            let receipt = dual::request(&self.state, &log, who, action, &r.reason, within).await?;
            let (receipt, request_seq) = (Some(convert::receipt(&receipt)), receipt.seq);
            return Ok(Response::new(pb::RedactResponse { receipt, pending: true, request_seq }));
        }
        let (ledger, identity) = (log.ledger().clone(), who.as_str().to_owned());
        let (seq, reason) = (r.seq, r.reason);
        let receipt = blocking(move || ledger.redact(&who, seq, &reason).map_err(|e| status::redact(&e))).await?;
        log.published();
        tracing::warn!(log = %log.name, target = seq, redaction = receipt.seq, actor = %identity, "payload redacted");
        Ok(Response::new(pb::RedactResponse { receipt: Some(convert::receipt(&receipt)), ..Default::default() }))
    }

    async fn reload_policy(
        &self,
        req: Request<pb::ReloadPolicyRequest>,
    ) -> Result<Response<pb::ReloadPolicyResponse>, Status> {
        let (who, r, log) = self.state.admin(req)?;
        log.writable()?;
        if let Some(within) = dual::under_dual_control(&self.state, &log.name) {
            let (_, config_sha256) = crate::reload::read_config(&self.state, None).await?;
            let action = AdminAction::ReloadPolicy { config_sha256 };
            let receipt = dual::request(&self.state, &log, who, action, &r.reason, within).await?;
            let (receipt, request_seq) = (Some(convert::receipt(&receipt)), receipt.seq);
            return Ok(Response::new(pb::ReloadPolicyResponse {
                receipt,
                pending: true,
                request_seq,
                categories: vec![],
            }));
        }
        let mut done = crate::reload::reload(&self.state, Some(&log.name), &who, &r.reason, None).await?;
        let one = done.pop().ok_or_else(|| status::log_not_configured(std::path::Path::new(""), &log.name))?;
        Ok(Response::new(pb::ReloadPolicyResponse {
            receipt: one.receipt.as_ref().map(convert::receipt),
            categories: one.categories,
            ..Default::default()
        }))
    }

    async fn reindex(&self, req: Request<pb::ReindexRequest>) -> Result<Response<pb::ReindexResponse>, Status> {
        let (who, r, log) = self.state.admin(req)?;
        log.writable()?;
        let (ledger, identity) = (log.ledger().clone(), who.as_str().to_owned());
        let receipt = blocking(move || ledger.request_reindex(&who, &r.reason).map_err(|e| status::append(&e))).await?;
        log.published();
        tracing::warn!(log = %log.name, seq = receipt.seq, actor = %identity, "index rebuild requested for the next start");
        Ok(Response::new(pb::ReindexResponse { receipt: Some(convert::receipt(&receipt)) }))
    }

    async fn approve(
        &self,
        req: Request<pb::AdminApproveRequest>,
    ) -> Result<Response<pb::AdminApproveResponse>, Status> {
        let (who, r, log) = self.state.admin(req)?;
        log.writable()?;
        let done = dual::approve(&self.state, &log, who, r.seq, r.reason).await?;
        let rotation = done.rotation.map(|rot| pb::RotateResponse {
            new_vkey: rot.new_vkey,
            new_hmac_key_id: rot.new_hmac_id,
            retired: rot.retired,
            ..Default::default()
        });
        Ok(Response::new(pb::AdminApproveResponse {
            approval: Some(convert::receipt(&done.approval)),
            effect: Some(convert::receipt(&done.effect)),
            action: done.request.action.name().into(),
            request_seq: r.seq,
            rotation,
            categories: done.categories,
        }))
    }
}
