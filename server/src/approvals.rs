//! Four eyes at append time: an `approval` entry is accepted only when
//! `ledger::approval::check` passes against the approved entry as this log
//! holds it and the approver roles the caller's grants give
//! (docs/SECURITY.md "Four eyes").
//!
//! An `admin_request` (dual control) is not approved here: AdminService.Approve
//! approves and carries it out (`dual`), so there is one path that executes.
//!
//! Owns: looking the approved entry and its category's rule up. Must not:
//! decide the rules (the `ledger` crate does) or word the refusals
//! (`status` does).

use ledger::NewEntry;
use ledger::approval::{Approved, Claim, check as check_rules};
use tonic::Status;

use crate::auth::{Access, Caller};
use crate::logs::LogHandle;
use crate::status;

/// Checks the approval `e` that `caller` appends to `log`.
pub fn check(access: &Access, caller: &Caller, log: &LogHandle, e: &NewEntry) -> Result<(), Status> {
    let claim = Claim::parse(e.payload.bytes()).map_err(|v| status::validation(&v))?;
    let reader = log.reader();
    let approved = reader.get(claim.seq).map_err(|err| status::ledger(&err))?;
    if approved.leaf.category == ledger::approval::dual::ADMIN_REQUEST {
        return Err(status::admin_request_by_append(claim.seq));
    }
    let policy = reader.policy();
    let rule = policy
        .categories
        .get(approved.leaf.category.as_str())
        .and_then(|c| c.requires_approval.as_ref())
        .filter(|r| r.applies(&approved.payload));
    let target = Approved {
        leaf_hash: approved.leaf_hash,
        actor: &approved.leaf.actor,
        recorded_at: approved.leaf.recorded_at,
        rule,
    };
    let now = (ledger::log::system_clock())();
    check_rules(&claim, &target, &caller.identity, |role| access.approves(caller, &log.name, role), now)
        .map(|_| ())
        .map_err(|err| status::approval(&err))
}
