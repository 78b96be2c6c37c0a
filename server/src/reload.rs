//! Re-reading the configuration while serving (`ledger admin reload-policy`
//! for one log, SIGHUP for every log): each log's category policy and
//! `[[logs.access]]` grants, and the server's `[tls] client_crl`.
//!
//! Each log reloaded gets a `policy_reload` entry first, naming who, why,
//! the categories, the grants added and removed, and the serials newly
//! revoked or no longer revoked; only then do the new policy and table take
//! effect (docs/SECURITY.md "Admin actions"). Anything unreadable or
//! invalid changes nothing. Changes that need a restart (new logs, the TLS
//! certificate, key or CA) are left as they are.
//!
//! Owns: the order of a reload and the description of what changed. Must
//! not: parse the files itself (`config`, `tls`) or decide access (`auth`).

use std::collections::BTreeSet;

use ledger::entry::Actor;
use ledger::log::Receipt;
use serde_json::{Map, Value, json};
use tonic::Status;

use crate::auth::Clients;
use crate::config::{Config, Grant};
use crate::replicated::DeferredReload;
use crate::svc_ledger::blocking;
use crate::tls::Revocation;
use crate::{State, status};

/// One log reloaded.
pub struct Reloaded {
    /// the log
    pub log: String,
    /// its `policy_reload` entry; none on a follower, which writes it when
    /// it leads (`replicated::DeferredReload`)
    pub receipt: Option<Receipt>,
    /// the categories now declared
    pub categories: Vec<String>,
}

/// An approved dual-control request being carried out: its seq (each
/// entry names it) and the SHA-256 of the configuration file it asked to
/// load (a file that changed since is refused).
#[derive(Clone, Copy)]
pub struct Requested<'a> {
    /// the `admin_request` entry
    pub seq: u64,
    /// hex SHA-256 of the file's bytes at the request
    pub config_sha256: &'a str,
}

/// Reads the configuration file of `state` and validates it; returns it
/// with the hex SHA-256 of the bytes read (the same bytes parsed), or
/// FAILED_PRECONDITION when `expect` is given and differs.
pub async fn read_config(state: &State, expect: Option<&str>) -> Result<(Config, String), Status> {
    let path = state.config.source.clone().ok_or_else(status::no_policy_file)?;
    let expect = expect.map(str::to_owned);
    blocking(move || {
        let (c, sha) = Config::load_with_sha256(&path).map_err(status::policy_not_reloaded)?;
        let sha = hex::encode(sha);
        if let Some(want) = expect.filter(|w| *w != sha) {
            return Err(status::config_changed(&path, &want, &sha));
        }
        c.validate().map_err(status::policy_not_reloaded)?;
        Ok((c, sha))
    })
    .await
}

/// Whether `fresh` can be reloaded for `log`: it configures the log and
/// its revocation list loads (what `reload` refuses before writing).
pub fn can_reload(state: &State, fresh: &Config, log: &str) -> Result<(), Status> {
    let path = fresh.source.clone().unwrap_or_default();
    fresh.logs.iter().find(|l| l.name == log).ok_or_else(|| status::log_not_configured(&path, log))?;
    fresh_clients(state, fresh).map(|_| ())
}

/// Reloads `only` that log, or every hosted log, as `actor` for `reason`;
/// `request`: carrying out that approved dual-control request.
pub async fn reload(
    state: &State,
    only: Option<&str>,
    actor: &Actor,
    reason: &str,
    request: Option<Requested<'_>>,
) -> Result<Vec<Reloaded>, Status> {
    let _one_at_a_time = state.reloading.lock().await;
    let (fresh, _) = read_config(state, request.map(|r| r.config_sha256)).await?;
    let request_seq = request.map(|r| r.seq);
    let clients = fresh_clients(state, &fresh)?;
    let names: Vec<String> = match only {
        Some(n) => vec![state.logs.get(n)?.name.clone()],
        None => state.logs.names(),
    };
    let mut done = Vec::new();
    for name in names {
        let one = Origin { actor, reason, request_seq };
        done.push(reload_one(state, &fresh, &name, clients.clone(), one).await?);
    }
    Ok(done)
}

/// The certificate checks with the CRLs the fresh configuration names
/// (under TLS; the CA itself is not re-read).
fn fresh_clients(state: &State, fresh: &Config) -> Result<Option<Clients>, Status> {
    let Some(ca) = &state.client_ca else { return Ok(None) };
    let crl = fresh.tls.as_ref().and_then(|t| t.client_crl.as_deref());
    let revocation = Revocation::load(crl, ca).map_err(status::policy_not_reloaded)?;
    let verifier = ca.verifier(&revocation).map_err(status::policy_not_reloaded)?;
    Ok(Some(Clients { verifier, revocation }))
}

/// Who reloads, why, and for which approved request.
struct Origin<'a> {
    actor: &'a Actor,
    reason: &'a str,
    request_seq: Option<u64>,
}

async fn reload_one(
    state: &State,
    fresh: &Config,
    name: &str,
    clients: Option<Clients>,
    origin: Origin<'_>,
) -> Result<Reloaded, Status> {
    let Origin { actor, reason, request_seq } = origin;
    let path = fresh.source.clone().unwrap_or_default();
    let lc = fresh.logs.iter().find(|l| l.name == name).ok_or_else(|| status::log_not_configured(&path, name))?;
    let policy = fresh.policy_of(lc);
    let categories: Vec<String> = policy.categories.keys().cloned().collect();
    let old = state.access.current();
    let revoked = clients.as_ref().map(|c| &c.revocation.serials);
    let mut also = changes(old.grants_on(name), &lc.access, &old.revoked(), revoked);
    if let Some(r) = request_seq {
        also.insert("request_seq".into(), r.into());
    }
    let log = state.logs.get(name)?.clone();
    if let Some(r) = log.replication.as_ref().filter(|r| r.writable(name).is_err()) {
        state.access.replace(old.revised(name, lc.access.clone(), clients));
        let reason = format!("{reason} (read on {} while it followed; recorded when it took the lead)", r.node_name());
        r.defer_reload(DeferredReload { actor: actor.clone(), policy, reason, also });
        tracing::warn!(log = %name, "reloaded on a follower: grants and revocations in force now, the policy with its entry when this node leads");
        return Ok(Reloaded { log: name.to_owned(), receipt: None, categories });
    }
    let (ledger, who, why) = (log.ledger().clone(), actor.clone(), reason.to_owned());
    let receipt =
        blocking(move || ledger.reload_policy(&who, policy, &why, also).map_err(|e| status::append(&e))).await?;
    log.published();
    state.access.replace(old.revised(name, lc.access.clone(), clients));
    tracing::warn!(log = %name, seq = receipt.seq, actor = %actor.as_str(), "policy, grants and revocation list reloaded");
    Ok(Reloaded { log: name.to_owned(), receipt: Some(receipt), categories })
}

/// What a reload changes besides the policy, as the entry records it:
/// `access.added` / `access.removed` (grants, a changed grant being both),
/// and under TLS `revoked_serials.added` / `.removed` (lowercase hex).
fn changes(
    old: &[Grant],
    new: &[Grant],
    old_revoked: &BTreeSet<String>,
    new_revoked: Option<&BTreeSet<String>>,
) -> Map<String, Value> {
    let added: Vec<&Grant> = new.iter().filter(|g| !old.contains(g)).collect();
    let removed: Vec<&Grant> = old.iter().filter(|g| !new.contains(g)).collect();
    let mut m = Map::new();
    m.insert("access".into(), json!({"added": added, "removed": removed}));
    if let Some(now) = new_revoked {
        let added: Vec<&String> = now.difference(old_revoked).collect();
        let removed: Vec<&String> = old_revoked.difference(now).collect();
        m.insert("revoked_serials".into(), json!({"added": added, "removed": removed}));
    }
    m
}

/// Reloads every log on SIGHUP until `stop` turns true.
pub async fn on_sighup(state: std::sync::Arc<State>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::error!("SIGHUP cannot be handled: reload with `ledger admin reload-policy`");
        return;
    };
    let mut stop = state.shutdown.clone();
    let actor = Actor::new("ledgerd", &ledger::entry::Limits::default()).expect("a valid actor");
    loop {
        tokio::select! {
            got = hup.recv() => if got.is_none() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        match reload(&state, None, &actor, "SIGHUP: the configuration file was read again", None).await {
            Ok(done) => {
                let logs: Vec<&str> = done.iter().map(|d| d.log.as_str()).collect();
                tracing::warn!(?logs, "SIGHUP: reloaded");
            }
            Err(s) => tracing::error!(error = %s.message(), "SIGHUP: nothing was reloaded past this error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn g(id: &str, roles: &[Role]) -> Grant {
        Grant { identity: id.into(), roles: roles.to_vec(), categories: vec![], approves: vec![] }
    }

    #[test]
    fn the_entry_names_grants_added_and_removed_and_serials_revoked() {
        let old = [g("a", &[Role::Reader]), g("b", &[Role::Writer])];
        let new = [g("a", &[Role::Reader]), g("b", &[Role::Reader]), g("c", &[Role::Admin])];
        let was: BTreeSet<String> = ["01".to_owned()].into();
        let now: BTreeSet<String> = ["02".to_owned()].into();
        let m = Value::Object(changes(&old, &new, &was, Some(&now)));
        assert_eq!(
            m["access"]["added"],
            json!([{"identity": "b", "roles": ["reader"]}, {"identity": "c", "roles": ["admin"]}])
        );
        assert_eq!(m["access"]["removed"], json!([{"identity": "b", "roles": ["writer"]}]));
        assert_eq!(m["revoked_serials"], json!({"added": ["02"], "removed": ["01"]}));
        let plain = Value::Object(changes(&old, &old, &was, None));
        assert_eq!(plain["access"], json!({"added": [], "removed": []}));
        assert!(plain.get("revoked_serials").is_none(), "without TLS there is no revocation list");
    }
}
