//! `ledger-store-pg`: PostgreSQL as the replicated commit log and the fence
//! of a replicated ledgerd (docs/HA.md, issue 17): the schema, the per-log
//! head row with its lease, the one transaction per batch that either
//! commits a batch at the head under the writer's epoch or commits nothing
//! ([`fence`]); the engine behind the `ledger` crate's storage seam that
//! commits the leader's batches there and keeps a verified local replica
//! ([`engine`]); and each log's role on a node ([`node`]).
//!
//! Owns: the SQL and its outcomes ([`FenceError`]), the order commit →
//! replica → publish, leading and following. Must not: sequence, sign or
//! verify entries itself (the `ledger` crate does: the batch's journal
//! frames arrive here already made, and a replica checks them with the
//! verifier's replay), or serve clients from its rows (every node serves
//! from its local replica).

pub mod db;
pub mod engine;
pub mod fence;
pub mod node;
pub mod redact;
pub mod schema;
pub mod tls;

pub use db::{Db, DbError};
pub use engine::PgStore;
pub use fence::{Batch, FenceError, Head, Lease, Stored};
pub use node::{Identity, Node, State, Stepped};
pub use tls::{TlsError, Transport};
