//! The storage seam: what a log needs from the engine that keeps it
//! (docs/ARCHITECTURE.md "The storage seam").
//!
//! Three coarse, object-safe traits, in the shape of one driver per
//! backend: [`LogStore`] (a log's durable state and every read of it, and
//! the durability steps the log's group sync drives), [`LogWriter`] (the
//! single writer: sequenced batches in, records replaced for a redaction,
//! the final checkpoint at close) and [`BlobStore`] (artifact content).
//! Batches cross the seam as logical data ([`WriteBatch`]: record bytes,
//! leaves, hashes, new Merkle nodes, checkpoints), never as bytes laid out
//! for one engine's files. Every engine reports failures as one
//! [`StoreError`].
//!
//! Owns: the traits, the data that crosses them, and [`Visibility`] (the
//! marks a log and its store share: acknowledged, readable, stopped).
//! Must not: know any engine's layout (that is `file`, `memory`, `fault`),
//! or decide anything a log decides (validation, sequencing, dedup
//! semantics, signing, the order of publication).
//!
//! Every engine passes one conformance suite (`ledger/tests/conformance.rs`);
//! a store that passes it works under a [`crate::Ledger`].

mod error;
pub mod fault;
pub mod file;
pub mod memory;
mod visibility;

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

pub use error::{StoreError, StoreErrorKind, is_disk_full};
pub use visibility::Visibility;

use crate::artifacts::StoredBlob;
use crate::hash::Hash;
use crate::leaf::Leaf;
use crate::log::SignedCheckpoint;

/// The 64-bit hash of a request id (FORMAT.md §10.3): what a store looks
/// request ids up by; the log confirms each candidate against its leaf.
pub fn request_hash(request_id: &str) -> u64 {
    let h = blake3::hash(request_id.as_bytes());
    u64::from_le_bytes(h.as_bytes()[0..8].try_into().expect("8 bytes"))
}

/// Which secondary index a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Secondary {
    /// by category
    Category,
    /// by subject
    Subject,
    /// by actor
    Actor,
}

/// What the store keeps of an entry besides its record: what proofs, the
/// chain and time queries need without reading the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafMeta {
    /// `H(0x00 ‖ leaf)` (Merkle level 0)
    pub leaf_hash: Hash,
    /// the leaf's recorded_at
    pub recorded_at: i64,
}

/// One row of the artifact index: the first registration of a blob.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode, serde::Serialize)]
pub struct ArtifactRow {
    /// SHA-256 of the content
    #[serde(with = "crate::entry::hex_array")]
    pub sha256: Hash,
    /// content length
    pub size: u64,
    /// file name
    pub name: String,
    /// media type
    pub media_type: String,
    /// subject of the registering entry
    pub subject: String,
    /// seq of the first entry that referenced it
    pub seq: u64,
}

/// One sequenced entry of a batch.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    /// the length of its frame in `WriteBatch::frames` (header included)
    pub frame_len: u32,
    /// the decoded leaf (the index keys: category, subject, actor, request
    /// id, artifacts, recorded_at)
    pub leaf: Leaf,
    /// `H(0x00 ‖ leaf bytes)`
    pub leaf_hash: Hash,
    /// the 64-bit hash of its request id, when it has one
    pub request_hash: Option<u64>,
}

/// One sequenced batch, as the log hands it to the store's writer.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    /// seq of the first entry (the log's size before the batch)
    pub first_seq: u64,
    /// the batch's journal frames (FORMAT.md §6.2), back to back: each
    /// entry's in seq order, then the history checkpoint's when `history`
    /// is set. Journal data, the same in every engine and in an export.
    pub frames: Vec<u8>,
    /// the entries, seq `first_seq + i`, their frames in order in `frames`
    pub entries: Vec<BatchEntry>,
    /// perfect-subtree hashes the batch completed, above level 0, in the
    /// order they were completed: (level, index, hash)
    pub nodes: Vec<(u8, u64, Hash)>,
    /// the history checkpoint framed after the entries (its size is the
    /// batch's end)
    pub history: Option<String>,
    /// the batch's signed checkpoint: readable once the store publishes it
    pub checkpoint: Arc<SignedCheckpoint>,
    /// the batch was sequenced elsewhere and is already committed at the
    /// store's source of truth: a replica applies it (`Ledger::apply_replica`).
    /// A store that keeps its commit log elsewhere (the PostgreSQL engine)
    /// writes such a batch to its local copy only; a local store ignores it.
    pub replicated: bool,
}

impl WriteBatch {
    /// Entries in the log once this batch is durable.
    pub fn end(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }
}

/// One file of an export bundle: a journal segment (FORMAT.md §6) whose
/// first `len` bytes are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePart {
    /// its name in the bundle, e.g. `journal/00000000000000000000.seg`
    pub name: String,
    /// the seq of its first entry
    pub first_seq: u64,
    /// its durable length in bytes
    pub len: u64,
}

/// What opening a store found and did, in words an operator can act on
/// (locations are the engine's own: paths for the file store).
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// keys were generated because there were none
    pub keys_created: bool,
    /// a torn tail was cut: (where, new length, bytes removed)
    pub truncated: Option<(String, u64, u64)>,
    /// entries added to derived data (the index) from the source of truth
    pub caught_up: u64,
    /// entries in the log (the store's: durable entries at open)
    pub size: u64,
    /// derived data was rebuilt: (where the old copy went, and why)
    pub index_rebuilt: Option<(String, String)>,
    /// redactions whose payload removal a crash interrupted, finished now
    pub redactions_finished: u64,
}

/// A store just opened: its shared side, its writer (the single-writer
/// lease), and what the open did.
pub struct Opened {
    /// reads and durability
    pub store: Arc<dyn LogStore>,
    /// the single writer
    pub writer: Box<dyn LogWriter>,
    /// what the open found
    pub report: OpenReport,
}

/// A log's durable state and its reads. Shared by every reader and the
/// log's group sync; never waits for the writer.
///
/// Reads answer for entries the store has published (see `publish`); the
/// log decides who may ask for what.
pub trait LogStore: Send + Sync {
    /// Starts the store's background work (e.g. an index thread), which
    /// reports through `vis` what is readable and whether it failed.
    fn start(&self, vis: Arc<Visibility>) -> Result<(), StoreError>;
    /// Stops the background work after it finished what was published.
    fn stop(&self);

    /// The leaf hash and time of entry `seq` (`None` past what is readable).
    fn leaf_meta(&self, seq: u64) -> Result<Option<LeafMeta>, StoreError>;
    /// The record of entry `seq` (FORMAT.md §6.2), integrity-checked, with
    /// its leaf hash and time (`None` past what is readable).
    fn record(&self, seq: u64) -> Result<Option<(LeafMeta, Bytes)>, StoreError>;
    /// The perfect-subtree hash at (level, index); level 0 is the leaf hash.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError>;
    /// Seqs that may hold a request id with this 64-bit hash, ascending (the
    /// caller confirms each against the leaf).
    fn request_candidates(&self, hash: u64) -> Result<Vec<u64>, StoreError>;
    /// Seqs with `value` in a secondary index within `[from, to)`, ascending
    /// or (`desc`) descending, at most `limit`. The log finds a subject's
    /// previous entry with a descending scan of limit 1: a wrong order breaks
    /// the subject chain, not only queries.
    fn scan(
        &self,
        by: Secondary,
        value: &str,
        from: u64,
        to: u64,
        desc: bool,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError>;
    /// History checkpoints with size in `[from, to]`, ascending.
    fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, StoreError>;
    /// The artifact row of a BLAKE3 hash.
    fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, StoreError>;
    /// Every artifact row.
    fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, StoreError>;
    /// The artifact blobs.
    fn blobs(&self) -> &dyn BlobStore;

    /// The journal as export-bundle files, durable parts only, in order.
    fn bundle_parts(&self) -> Result<Vec<BundlePart>, StoreError>;
    /// Reads bytes of a bundle part at `offset` (at most `buf.len()`, never
    /// past the part's `len`); 0 at its end.
    fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError>;

    /// Makes every batch written before this call durable (it may cover
    /// batches written during it too: the log publishes those with a later
    /// sync). On failure nothing it would have covered may be published.
    fn sync(&self) -> Result<(), StoreError>;
    /// Every written batch through `end` is durable: make them readable (now
    /// or in the background; `Visibility::publish` tells when). The log
    /// calls it once per batch, in write order, with that batch's end.
    fn publish(&self, end: u64);
    /// A sync failed: drop every batch written since the last durable
    /// point, so no unacknowledged record stays in front of later ones.
    fn discard_unsynced(&self);
    /// How long the last sync took, in nanoseconds.
    fn last_sync_nanos(&self) -> u64;
    /// Rebuild derived data from the source of truth at the next open (an
    /// audited reindex; `by` is the seq of its entry).
    fn request_rebuild(&self, by: u64) -> Result<(), StoreError>;
}

/// The single writer of a log (held under the log's writer lock).
pub trait LogWriter: Send {
    /// Writes a sequenced batch, not yet durable (`LogStore::sync` makes it
    /// so). On failure nothing of it stays.
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError>;
    /// True when the writer asks for a durable point: the log then makes
    /// every written batch durable and published, and calls `durable_point`.
    fn wants_durable_point(&self) -> bool;
    /// After the batches written so far are durable and published: a chance
    /// to seal or compact (the file store rolls its segment here).
    fn durable_point(&mut self) -> Result<(), StoreError>;
    /// Replaces the record of a durable entry with one of the same length
    /// (a redaction, FORMAT.md §6.4).
    fn replace_record(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError>;
    /// Keeps `history` (a checkpoint note at `size`) and makes everything
    /// durable for a clean shutdown. The log calls it only after every
    /// written batch is durable and published.
    fn close(&mut self, history: Option<(u64, String)>) -> Result<(), StoreError>;
}

/// Artifact content, addressed by BLAKE3, checked against it when read.
pub trait BlobStore: Send + Sync {
    /// Starts a blob of at most `limit` bytes, written as it arrives.
    fn begin(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StoreError>;
    /// Checks a stored blob against its hash.
    fn verify(&self, blake3: &Hash) -> Result<StoredBlob, StoreError>;
    /// Opens a stored blob for streaming (checked by `verify` first).
    fn open(&self, blake3: &Hash) -> Result<Box<dyn Read + Send>, StoreError>;
}

/// A blob being written.
pub trait BlobWriter: Send {
    /// Appends content.
    fn write(&mut self, b: &[u8]) -> Result<(), StoreError>;
    /// Makes it durable under its hash (a blob already stored stays).
    fn finish(self: Box<Self>) -> Result<StoredBlob, StoreError>;
}

impl dyn BlobStore + '_ {
    /// Streams `content` into the store (at most `limit` bytes).
    pub fn put(&self, mut content: impl Read, limit: u64) -> Result<StoredBlob, StoreError> {
        let mut w = self.begin(limit)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = content.read(&mut buf).map_err(|e| StoreError::io("reading the artifact's content", e))?;
            if n == 0 {
                return w.finish();
            }
            w.write(&buf[..n])?;
        }
    }

    /// Reads a whole blob, checked against its hash.
    pub fn get(&self, blake3: &Hash) -> Result<Vec<u8>, StoreError> {
        self.verify(blake3)?;
        let mut out = Vec::new();
        self.open(blake3)?.read_to_end(&mut out).map_err(|e| StoreError::io("reading an artifact", e))?;
        Ok(out)
    }
}
