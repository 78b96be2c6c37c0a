//! The tables (docs/HA.md "Schema"): one head row per log, one row per
//! committed batch part holding the batch's journal frames verbatim
//! (FORMAT.md §6.2), so that every node's replica and export is the journal
//! `ledger verify` checks.
//!
//! Owns: the DDL and the session settings a writer needs. Must not: hold
//! data migrations (version 1 has none).

use tokio_postgres::Client;

/// Most bytes of frames in one `ledger_batch` row; a larger batch is split
/// into parts at frame boundaries.
pub const MAX_PART_BYTES: usize = 1 << 20;

/// Version 1 of the schema. `lease_until` is read and written with the
/// database's clock only (`clock_timestamp()`), never a node's.
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS ledger_head (
    log              text PRIMARY KEY,
    epoch            bigint NOT NULL,
    holder           text NOT NULL,
    lease_until      timestamptz NOT NULL,
    tree_size        bigint NOT NULL,
    root             bytea NOT NULL,
    checkpoint       text NOT NULL,
    last_recorded_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_batch (
    log       text NOT NULL,
    first_seq bigint NOT NULL,
    part      integer NOT NULL,
    entries   integer NOT NULL,
    epoch     bigint NOT NULL,
    frames    bytea NOT NULL,
    PRIMARY KEY (log, first_seq, part)
);
";

/// Creates the tables when missing.
pub async fn install(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(DDL).await
}

/// The settings of a writer's session: its COMMIT is the ack point, so it
/// waits for the synchronous standby (`synchronous_commit = on`) however
/// the database or role is configured, and no timeout of this session
/// cancels that wait (PostgreSQL reports a cancelled wait for a standby as
/// a success with a warning).
pub async fn writer_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("SET synchronous_commit = on; SET statement_timeout = 0;").await
}
