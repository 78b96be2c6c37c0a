//! Shares of a capacity per client identity (`[per_identity]`,
//! docs/SECURITY.md "Limits"): how many of a log's queued appends, or of the
//! server's read streams, one identity may hold at once, so one noisy client
//! cannot starve the others.
//!
//! Owns: the per-identity counts and the slots that hold them. Must not:
//! decide who the identity is (that is `auth`) or word the refusal (that is
//! `status`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Per-identity counts against one limit. An identity holding nothing has
/// no entry, so the map stays as small as the set of active callers.
#[derive(Debug)]
pub struct Shares {
    held: Mutex<HashMap<String, usize>>,
    limit: usize,
    freed: Notify,
}

/// One unit of an identity's share, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    shares: Arc<Shares>,
    identity: String,
}

impl Shares {
    /// `limit` units per identity (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { held: Mutex::default(), limit: limit.max(1), freed: Notify::new() })
    }

    /// The per-identity limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What `identity` holds now.
    pub fn held(&self, identity: &str) -> usize {
        self.lock().get(identity).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for `identity`, or `None` when it holds its whole share.
    pub fn try_take(self: &Arc<Self>, identity: &str) -> Option<Slot> {
        let mut held = self.lock();
        match held.get_mut(identity) {
            Some(n) if *n >= self.limit => return None,
            Some(n) => *n += 1,
            None => {
                held.insert(identity.to_owned(), 1);
            }
        }
        Some(Slot { shares: self.clone(), identity: identity.to_owned() })
    }

    /// A slot for `identity`, waiting while it holds its whole share (for
    /// streams, whose flow control then slows the client down).
    pub async fn take(self: &Arc<Self>, identity: &str) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(s) = self.try_take(identity) {
                return s;
            }
            freed.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.shares.lock();
        if let Some(n) = held.get_mut(&self.identity) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.identity);
            }
        }
        drop(held);
        self.shares.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_gets_its_share_and_no_more_and_others_are_not_affected() {
        let s = Shares::new(2);
        let a1 = s.try_take("a").expect("first");
        let _a2 = s.try_take("a").expect("second");
        assert!(s.try_take("a").is_none(), "a third is over the share");
        let _b = s.try_take("b").expect("another identity has its own share");
        drop(a1);
        assert_eq!(s.held("a"), 1);
        assert!(s.try_take("a").is_some(), "a freed slot can be taken again");
    }

    #[test]
    fn an_identity_that_holds_nothing_leaves_no_entry() {
        let s = Shares::new(1);
        drop(s.try_take("gone"));
        assert!(s.lock().is_empty());
    }

    #[tokio::test]
    async fn a_waiting_take_gets_the_slot_when_one_is_given_back() {
        let s = Shares::new(1);
        let held = s.try_take("a").unwrap();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.take("a").await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "it waits while the share is held");
        drop(held);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        assert_eq!(got.identity, "a");
    }
}
