//! `ledger-store-pg`: PostgreSQL as the replicated commit log and the fence
//! of a replicated ledgerd (docs/HA.md, issue 17). This crate is the first
//! part of it: the schema, the per-log head row with its lease, and the one
//! transaction per batch that either commits a batch at the head under the
//! writer's epoch or commits nothing.
//!
//! Owns: the SQL and its outcomes ([`FenceError`]). Must not: sequence,
//! sign or verify entries (the `ledger` crate does, and the batch's journal
//! frames arrive here already made), or read its own rows to serve clients
//! (every node serves from its local replica).
//!
//! Not built yet: the `LogStore`/`LogWriter` engine that drives these from
//! the ledger's writer, the followers' replicas, forwarding, failover.

pub mod fence;
pub mod schema;

pub use fence::{Batch, FenceError, Head, Lease};
