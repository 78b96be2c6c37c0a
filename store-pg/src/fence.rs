//! The lease and the fence (docs/HA.md "The fence").
//!
//! Leadership of a log is a lease in its head row, timed by the database's
//! clock; taking it increments the epoch. Every batch is one transaction:
//! insert its frames, lock the head (`SELECT … FOR UPDATE`), check that the
//! head's epoch is the writer's and its tree size is the batch's first seq,
//! update size, root, checkpoint and lease, COMMIT. A writer whose check
//! fails is fenced: nothing of its batch is committed. Safety comes from the
//! fence, liveness from the lease.
//!
//! Owns: those transactions and the meaning of their outcomes. Must not:
//! retry a COMMIT whose outcome is unknown ([`FenceError::Ambiguous`]: the
//! caller re-reads the head), or cancel one.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::schema::MAX_PART_BYTES;

/// Why a lease or a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// Another node holds an unexpired lease.
    #[error("log {log}: the lease is held by {holder:?} (epoch {epoch}) for another {remaining_ms} ms")]
    Held {
        /// the log
        log: String,
        /// the node holding it
        holder: String,
        /// its epoch
        epoch: i64,
        /// until it expires, by the database's clock
        remaining_ms: i64,
    },
    /// The head is not where this writer's batch goes: another epoch, or
    /// another size. Nothing of the batch was committed; stop writing.
    #[error(
        "log {log}: fenced: the head is at epoch {head_epoch}, size {head_size}; this writer holds epoch {epoch} \
         and its batch starts at seq {first_seq}: nothing of it was committed"
    )]
    Fenced {
        /// the log
        log: String,
        /// this writer's epoch
        epoch: i64,
        /// the batch's first seq
        first_seq: u64,
        /// the head's epoch
        head_epoch: i64,
        /// the head's tree size
        head_size: u64,
    },
    /// The connection failed during COMMIT: the batch may or may not be
    /// committed. Acknowledge nothing, stop writing, re-read the head.
    #[error("log {log}: the outcome of COMMIT is unknown ({}): acknowledge nothing and re-read the head", crate::schema::detail(.source))]
    Ambiguous {
        /// the log
        log: String,
        /// what the client saw
        source: tokio_postgres::Error,
    },
    /// A redaction's rewrite of a stored frame failed: nothing of the batch
    /// (which carries the redaction entry) was committed.
    #[error("log {log}: rewriting the stored frame of entry {seq} for its redaction: {reason}: nothing was committed")]
    Rewrite {
        /// the log
        log: String,
        /// the redacted entry
        seq: u64,
        /// why
        reason: String,
    },
    /// A part of the batch is larger than a row holds.
    #[error("log {log}: batch part {part} holds {bytes} bytes, more than {MAX_PART_BYTES}")]
    PartTooLarge {
        /// the log
        log: String,
        /// which part
        part: usize,
        /// its size
        bytes: usize,
    },
    /// The database refused or failed a statement (before COMMIT).
    #[error("log {log}: {context}: {}", crate::schema::detail(.source))]
    Db {
        /// the log
        log: String,
        /// what was being done
        context: &'static str,
        /// the error
        source: tokio_postgres::Error,
    },
}

/// A log's head row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// incremented by every lease taken
    pub epoch: i64,
    /// the node that took it last
    pub holder: String,
    /// how clients reach that node (its `storage.advertise`)
    pub holder_addr: String,
    /// milliseconds until the lease expires (≤ 0: expired), database clock
    pub remaining_ms: i64,
    /// entries committed
    pub tree_size: u64,
    /// their Merkle root
    pub root: Vec<u8>,
    /// the latest signed checkpoint (note text)
    pub checkpoint: String,
    /// the latest entry's recorded_at (leaders keep it non-decreasing)
    pub last_recorded_at: i64,
}

/// A lease held: this node may commit batches under `epoch` until fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// the log
    pub log: String,
    /// this node
    pub node: String,
    /// the epoch it took
    pub epoch: i64,
    /// how long each renewal lasts
    pub length: Duration,
}

/// One sequenced, signed batch, as the ledger made it.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// seq of its first entry: must be the head's tree size
    pub first_seq: u64,
    /// entries in it
    pub entries: u32,
    /// its journal frames, split at frame boundaries into parts of at most
    /// [`MAX_PART_BYTES`]
    pub parts: &'a [&'a [u8]],
    /// the tree's root after it
    pub root: &'a [u8],
    /// the checkpoint signed for it
    pub checkpoint: &'a str,
    /// its last entry's recorded_at
    pub last_recorded_at: i64,
    /// stored frames its redaction entries rewrite (`crate::redact`)
    pub rewrites: &'a [crate::redact::Rewrite],
}

fn db<'a>(log: &'a str, context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> FenceError + 'a {
    move |source| FenceError::Db { log: log.to_owned(), context, source }
}

/// The head of `log`, if it has one.
pub async fn head(client: &Client, log: &str) -> Result<Option<Head>, FenceError> {
    let row = client
        .query_opt(
            "SELECT epoch, holder, (extract(epoch FROM lease_until - clock_timestamp()) * 1000)::bigint, \
             tree_size, root, checkpoint, last_recorded_at, holder_addr FROM ledger_head WHERE log = $1",
            &[&log],
        )
        .await
        .map_err(db(log, "reading the head"))?;
    Ok(row.map(|r| Head {
        epoch: r.get(0),
        holder: r.get(1),
        remaining_ms: r.get(2),
        tree_size: r.get::<_, i64>(3) as u64,
        root: r.get(4),
        checkpoint: r.get(5),
        last_recorded_at: r.get(6),
        holder_addr: r.get(7),
    }))
}

/// Takes the lease of `log` for `node` (reached at `advertise`) unless
/// another node holds an unexpired one; the epoch goes up by one either way
/// it is taken (a node restarting fences its own former self).
pub async fn acquire(
    client: &mut Client,
    log: &str,
    node: &str,
    advertise: &str,
    length: Duration,
) -> Result<Lease, FenceError> {
    let tx = client.transaction().await.map_err(db(log, "beginning the lease transaction"))?;
    tx.execute(
        "INSERT INTO ledger_head VALUES ($1, 0, '', '', 'epoch', 0, '', '', 0) ON CONFLICT (log) DO NOTHING",
        &[&log],
    )
    .await
    .map_err(db(log, "creating the head"))?;
    let row = tx
        .query_one(
            "SELECT epoch, holder, (extract(epoch FROM lease_until - clock_timestamp()) * 1000)::bigint \
             FROM ledger_head WHERE log = $1 FOR UPDATE",
            &[&log],
        )
        .await
        .map_err(db(log, "locking the head"))?;
    let (epoch, holder, remaining_ms): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
    if remaining_ms > 0 && holder != node {
        return Err(FenceError::Held { log: log.to_owned(), holder, epoch, remaining_ms });
    }
    let ms = length.as_millis() as f64;
    let row = tx
        .query_one(
            "UPDATE ledger_head SET epoch = epoch + 1, holder = $2, holder_addr = $4, \
             lease_until = clock_timestamp() + $3 * interval '1 millisecond' WHERE log = $1 RETURNING epoch",
            &[&log, &node, &ms, &advertise],
        )
        .await
        .map_err(db(log, "taking the lease"))?;
    let epoch = row.get(0);
    tx.commit().await.map_err(|source| FenceError::Ambiguous { log: log.to_owned(), source })?;
    Ok(Lease { log: log.to_owned(), node: node.to_owned(), epoch, length })
}

/// Commits `batch` at the head under `lease`, renewing the lease; or
/// commits nothing ([`FenceError::Fenced`]). The returned `Ok` is the ack
/// point: COMMIT returned with `synchronous_commit = on`.
pub async fn commit(client: &mut Client, lease: &Lease, batch: &Batch<'_>) -> Result<(), FenceError> {
    let log = lease.log.as_str();
    for (part, bytes) in batch.parts.iter().enumerate() {
        if bytes.len() > MAX_PART_BYTES {
            return Err(FenceError::PartTooLarge { log: log.to_owned(), part, bytes: bytes.len() });
        }
    }
    let tx = client.transaction().await.map_err(db(log, "beginning the batch transaction"))?;
    let first = batch.first_seq as i64;
    let fenced = |head_epoch, head_size| FenceError::Fenced {
        log: log.to_owned(),
        epoch: lease.epoch,
        first_seq: batch.first_seq,
        head_epoch,
        head_size,
    };
    let row = tx
        .query_one("SELECT epoch, tree_size FROM ledger_head WHERE log = $1 FOR UPDATE", &[&log])
        .await
        .map_err(db(log, "locking the head"))?;
    let (head_epoch, head_size): (i64, i64) = (row.get(0), row.get(1));
    if head_epoch != lease.epoch || head_size != first {
        return Err(fenced(head_epoch, head_size as u64));
    }
    insert_parts(&tx, lease, batch).await.map_err(|e| match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => fenced(head_epoch, head_size as u64),
        _ => FenceError::Db { log: log.to_owned(), context: "inserting the batch", source: e },
    })?;
    for r in batch.rewrites {
        crate::redact::apply(&tx, log, r).await?;
    }
    let ms = lease.length.as_millis() as f64;
    let size = (batch.first_seq + u64::from(batch.entries)) as i64;
    tx.execute(
        "UPDATE ledger_head SET tree_size = $2, root = $3, checkpoint = $4, last_recorded_at = $5, \
         lease_until = clock_timestamp() + $6 * interval '1 millisecond' WHERE log = $1",
        &[&log, &size, &batch.root, &batch.checkpoint, &batch.last_recorded_at, &ms],
    )
    .await
    .map_err(db(log, "updating the head"))?;
    tx.commit().await.map_err(|source| FenceError::Ambiguous { log: log.to_owned(), source })
}

async fn insert_parts(
    tx: &tokio_postgres::Transaction<'_>,
    lease: &Lease,
    batch: &Batch<'_>,
) -> Result<(), tokio_postgres::Error> {
    let (first, entries) = (batch.first_seq as i64, batch.entries as i32);
    for (part, bytes) in batch.parts.iter().enumerate() {
        let checkpoint = if part == 0 { batch.checkpoint } else { "" };
        tx.execute(
            "INSERT INTO ledger_batch (log, first_seq, part, entries, epoch, frames, checkpoint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&lease.log, &first, &(part as i32), &entries, &lease.epoch, bytes, &checkpoint],
        )
        .await?;
    }
    Ok(())
}

/// Extends the lease while idle; fenced when another epoch took the head.
pub async fn renew(client: &Client, lease: &Lease) -> Result<(), FenceError> {
    let ms = lease.length.as_millis() as f64;
    let n = client
        .execute(
            "UPDATE ledger_head SET lease_until = clock_timestamp() + $3 * interval '1 millisecond' \
             WHERE log = $1 AND epoch = $2",
            &[&lease.log, &lease.epoch, &ms],
        )
        .await
        .map_err(db(&lease.log, "renewing the lease"))?;
    if n == 1 {
        return Ok(());
    }
    let h = head(client, &lease.log).await?;
    Err(FenceError::Fenced {
        log: lease.log.clone(),
        epoch: lease.epoch,
        first_seq: h.as_ref().map_or(0, |h| h.tree_size),
        head_epoch: h.as_ref().map_or(0, |h| h.epoch),
        head_size: h.map_or(0, |h| h.tree_size),
    })
}

/// Gives the lease up (a clean shutdown): it expires now, so another node
/// takes it at once. Nothing happens when another epoch holds the head.
pub async fn release(client: &Client, lease: &Lease) -> Result<(), FenceError> {
    client
        .execute(
            "UPDATE ledger_head SET lease_until = clock_timestamp() WHERE log = $1 AND epoch = $2",
            &[&lease.log, &lease.epoch],
        )
        .await
        .map_err(db(&lease.log, "releasing the lease"))?;
    Ok(())
}

/// One committed batch as stored: what a replica applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// seq of its first entry
    pub first_seq: u64,
    /// its journal frames, the parts joined
    pub frames: Vec<u8>,
    /// the checkpoint signed for it (its size is the batch's end)
    pub checkpoint: String,
}

/// The committed batches of `log` from `from_seq` on, in order, at most
/// `max_batches`.
pub async fn batches(client: &Client, log: &str, from_seq: u64, max_batches: i64) -> Result<Vec<Stored>, FenceError> {
    let rows = client
        .query(
            "SELECT first_seq, frames, checkpoint FROM ledger_batch WHERE log = $1 AND first_seq IN \
             (SELECT first_seq FROM ledger_batch WHERE log = $1 AND first_seq >= $2 AND part = 0 \
              ORDER BY first_seq LIMIT $3) ORDER BY first_seq, part",
            &[&log, &(from_seq as i64), &max_batches],
        )
        .await
        .map_err(db(log, "reading batches"))?;
    let mut out: Vec<Stored> = Vec::new();
    for r in rows {
        let (first, bytes, checkpoint): (i64, Vec<u8>, String) = (r.get(0), r.get(1), r.get(2));
        match out.last_mut() {
            Some(s) if s.first_seq == first as u64 => s.frames.extend_from_slice(&bytes),
            _ => out.push(Stored { first_seq: first as u64, frames: bytes, checkpoint }),
        }
    }
    Ok(out)
}
