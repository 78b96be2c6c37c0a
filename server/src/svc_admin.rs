//! `ledger.v1.AdminService`: audited redaction, policy reload and reindex (role
//! `admin`). Each writes its entry — who, what, why — before it takes
//! effect (docs/SECURITY.md "Admin actions").

use std::sync::Arc;

use ledger::entry::{Actor, Limits};
use ledger_proto::v1 as pb;
use ledger_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use tonic::{Request, Response, Status};

use crate::config::{Config, Role};
use crate::svc_ledger::blocking;
use crate::{State, convert, status};

/// The service.
pub struct AdminSvc {
    state: Arc<State>,
}

/// The service.
pub fn service(state: Arc<State>) -> AdminServiceServer<AdminSvc> {
    AdminServiceServer::new(AdminSvc { state })
}

fn actor(identity: &str) -> Result<Actor, Status> {
    Actor::new(identity, &Limits::default()).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    async fn redact(&self, req: Request<pb::RedactRequest>) -> Result<Response<pb::RedactResponse>, Status> {
        let caller = self.state.authorize(&req, &req.get_ref().actor, &req.get_ref().log, &[Role::Admin])?;
        let r = req.into_inner();
        let log = self.state.logs.get(&r.log)?.clone();
        let who = actor(&caller.identity)?;
        let ledger = log.ledger().clone();
        let (seq, reason) = (r.seq, r.reason);
        let receipt = blocking(move || ledger.redact(&who, seq, &reason).map_err(|e| status::redact(&e))).await?;
        tracing::warn!(log = %log.name, target = seq, redaction = receipt.seq, actor = %caller.identity, "payload redacted");
        Ok(Response::new(pb::RedactResponse { receipt: Some(convert::receipt(&receipt)) }))
    }

    async fn reload_policy(
        &self,
        req: Request<pb::ReloadPolicyRequest>,
    ) -> Result<Response<pb::ReloadPolicyResponse>, Status> {
        let caller = self.state.authorize(&req, &req.get_ref().actor, &req.get_ref().log, &[Role::Admin])?;
        let r = req.into_inner();
        let log = self.state.logs.get(&r.log)?.clone();
        let Some(path) = self.state.config.source.clone() else {
            return Err(Status::failed_precondition(
                "ledgerd was started without --config: there is no policy file to reload",
            ));
        };
        let fresh = Config::load(&path)
            .and_then(|c| c.validate().map(|_| c))
            .map_err(|e| Status::failed_precondition(format!("the policy was not reloaded: {e}")))?;
        let lc = fresh.logs.iter().find(|l| l.name == log.name).ok_or_else(|| {
            Status::failed_precondition(format!("{} no longer configures log {:?}", path.display(), log.name))
        })?;
        let policy = fresh.policy_of(lc);
        let categories: Vec<String> = policy.categories.keys().cloned().collect();
        let who = actor(&caller.identity)?;
        let ledger = log.ledger().clone();
        let receipt =
            blocking(move || ledger.reload_policy(&who, policy, &r.reason).map_err(|e| status::append(&e))).await?;
        tracing::warn!(log = %log.name, seq = receipt.seq, actor = %caller.identity, "policy reloaded");
        Ok(Response::new(pb::ReloadPolicyResponse { receipt: Some(convert::receipt(&receipt)), categories }))
    }

    async fn reindex(&self, req: Request<pb::ReindexRequest>) -> Result<Response<pb::ReindexResponse>, Status> {
        let caller = self.state.authorize(&req, &req.get_ref().actor, &req.get_ref().log, &[Role::Admin])?;
        let r = req.into_inner();
        let log = self.state.logs.get(&r.log)?.clone();
        let who = actor(&caller.identity)?;
        let ledger = log.ledger().clone();
        let receipt = blocking(move || ledger.request_reindex(&who, &r.reason).map_err(|e| status::append(&e))).await?;
        tracing::warn!(log = %log.name, seq = receipt.seq, actor = %caller.identity, "index rebuild requested for the next start");
        Ok(Response::new(pb::ReindexResponse { receipt: Some(convert::receipt(&receipt)) }))
    }
}
