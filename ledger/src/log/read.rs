//! The read path: entries, proofs, checkpoints and queries. Reads see only
//! what the latest checkpoint covers, and never take the writer's lock.

use std::sync::Arc;

use bytes::Bytes;

use super::{LedgerError, LedgerReader, Receipt, SignedCheckpoint, StoreNodes};
use crate::hash::Hash;
use crate::keys::{HmacKeySet, KeyStatus};
use crate::leaf::Leaf;
use crate::merkle::{consistency_proof, inclusion_proof, range_root};
use crate::note::NoteVerifier;
use crate::record::{self, Checked};
use crate::store::{ArtifactRow, BlobStore, BundlePart, LeafMeta, Secondary};
use crate::sync::read as read_lock;

/// Candidates fetched from an index per round of a query.
const QUERY_CHUNK: usize = 256;
/// Entries examined at most for one page (a page may come back short,
/// with a cursor, when filters are very selective).
const QUERY_SCAN_LIMIT: usize = 20_000;
/// Payload and leaf bytes after which a query page ends (the page's
/// memory bound; docs/SECURITY.md "Limits").
pub const QUERY_PAGE_BYTES: usize = 1 << 20;

/// One stored entry, as the journal has it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// position
    pub seq: u64,
    /// the stored leaf bytes
    pub leaf_bytes: Bytes,
    /// the decoded leaf
    pub leaf: Leaf,
    /// `H(0x00 ‖ leaf)`
    pub leaf_hash: Hash,
    /// payload JSON text (empty when redacted)
    pub payload: Bytes,
    /// HMAC key id
    pub hmac_key_id: String,
    /// HMAC tag
    pub hmac: Bytes,
    /// seq + 1 of the redaction entry, 0 if not redacted
    pub redacted_by: u64,
}

/// A query over the secondary indexes. Bounds are half-open `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// category equals
    pub category: Option<String>,
    /// subject equals
    pub subject: Option<String>,
    /// actor equals
    pub actor: Option<String>,
    /// recorded_at ≥ this (unix ns)
    pub since: Option<i64>,
    /// recorded_at < this (unix ns)
    pub until: Option<i64>,
    /// seq ≥ this
    pub from_seq: Option<u64>,
    /// seq < this
    pub to_seq: Option<u64>,
    /// top-level payload fields that must equal these JSON values
    pub fields: Vec<(String, serde_json::Value)>,
    /// newest first
    pub desc: bool,
    /// most entries per page (0 = 100)
    pub limit: usize,
    /// where to resume: the `next_cursor` of the previous page
    pub cursor: Option<u64>,
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// matching entries in order
    pub entries: Vec<StoredEntry>,
    /// give this back as `cursor` for the next page; `None` at the end
    pub next_cursor: Option<u64>,
}

impl LedgerReader {
    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.s.vis.latest()
    }

    /// Why the log stopped taking writes, if it did (a failed sync).
    pub fn stopped(&self) -> Option<String> {
        self.s.vis.stopped()
    }

    /// Entries in the log (acknowledged). Every read sees them: one that
    /// needs the index beyond what the index thread has applied waits for
    /// it (a batch's application, milliseconds).
    pub fn size(&self) -> u64 {
        self.latest_checkpoint().checkpoint.size
    }

    /// The newest checkpoint whose entries the index already holds: a proof
    /// or receipt in it never waits for the index thread. It is the latest
    /// checkpoint, or a few batches behind it while the index thread applies
    /// them (docs/ARCHITECTURE.md "The read path").
    pub fn readable_checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.s.vis.readable()
    }

    /// A receipt for a stored entry in "the latest" checkpoint: the
    /// readable one when it covers `seq`, else the latest (an entry that new
    /// waits for the index).
    pub fn receipt(&self, seq: u64) -> Result<Receipt, LedgerError> {
        let readable = self.readable_checkpoint();
        let checkpoint = if seq < readable.checkpoint.size { readable } else { self.latest_checkpoint() };
        self.receipt_at(seq, &checkpoint)
    }

    /// Entries the index holds (≤ `size`; equal once the index thread is idle).
    pub fn indexed_size(&self) -> u64 {
        self.s.vis.indexed()
    }

    /// How long the last batch's sync took, in nanoseconds.
    pub fn last_sync_nanos(&self) -> u64 {
        self.s.store.last_sync_nanos()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.s.opts.origin
    }

    /// The category policy in force.
    pub fn policy(&self) -> Arc<crate::policy::Policy> {
        read_lock(&self.s.policy).clone()
    }

    /// The options the log was opened with (its `policy` is the one it
    /// was opened with; [`Self::policy`] is the one in force).
    pub fn options(&self) -> &super::LogOptions {
        &self.s.opts
    }

    /// Waits for the store to serve `seq`; refuses a seq beyond the log.
    fn readable(&self, seq: u64) -> Result<u64, LedgerError> {
        self.s.vis.reach_for_read(seq.saturating_add(1));
        let size = self.size();
        if seq >= size {
            return Err(LedgerError::NotFound { seq, size });
        }
        Ok(size)
    }

    fn position(&self, seq: u64) -> Result<LeafMeta, LedgerError> {
        let size = self.readable(seq)?;
        self.s.store.leaf_meta(seq)?.ok_or(LedgerError::IndexAhead { indexed: size, missing: seq })
    }

    /// The leaf hash of a stored entry, from the index (no journal read).
    pub fn leaf_hash(&self, seq: u64) -> Result<Hash, LedgerError> {
        Ok(self.position(seq)?.leaf_hash)
    }

    /// Reads one entry from the store, checked against its leaf hash.
    pub fn get(&self, seq: u64) -> Result<StoredEntry, LedgerError> {
        let size = self.readable(seq)?;
        let (pos, bytes) = self.s.store.record(seq)?.ok_or(LedgerError::IndexAhead { indexed: size, missing: seq })?;
        let bad = |reason: String| LedgerError::BadRecord { seq, reason };
        let Checked::Entry { record: e, leaf, leaf_hash: h } = record::decode_at(bytes, seq).map_err(bad)? else {
            return Err(bad("the store holds a checkpoint record in its place".into()));
        };
        if h != pos.leaf_hash {
            return Err(bad(format!("the record does not hold entry {seq} as indexed (another leaf hash)")));
        }
        Ok(StoredEntry {
            seq,
            leaf_bytes: e.leaf,
            leaf,
            leaf_hash: h,
            payload: e.payload,
            hmac_key_id: e.hmac_key_id,
            hmac: e.hmac,
            redacted_by: e.redacted_by,
        })
    }

    /// Inclusion proof of `seq` in the tree of `size` (default: latest).
    pub fn prove_inclusion(&self, seq: u64, size: Option<u64>) -> Result<(Vec<Hash>, u64), LedgerError> {
        let size = self.bounded(size)?;
        Ok((inclusion_proof(&StoreNodes(self.s.store.as_ref()), seq, size)?, size))
    }

    /// Inclusion proofs of `seqs` in the tree of `size`, in order, sharing
    /// the nodes they have in common ([`crate::merkle::MemoNodes`]): a Query
    /// page's proofs (docs/API.md, `proof_tree_size`).
    pub fn prove_inclusions(&self, seqs: &[u64], size: u64) -> Result<Vec<Vec<Hash>>, LedgerError> {
        let size = self.bounded(Some(size))?;
        let memo = crate::merkle::MemoNodes::new(StoreNodes(self.s.store.as_ref()));
        seqs.iter().map(|&seq| Ok(inclusion_proof(&memo, seq, size)?)).collect()
    }

    /// Consistency proof from `old` to `new` (default: latest).
    pub fn prove_consistency(&self, old: u64, new: Option<u64>) -> Result<(Vec<Hash>, u64), LedgerError> {
        let new = self.bounded(new)?;
        Ok((consistency_proof(&StoreNodes(self.s.store.as_ref()), old, new)?, new))
    }

    /// The Merkle root of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        let size = self.bounded(Some(size))?;
        Ok(range_root(&StoreNodes(self.s.store.as_ref()), 0, size)?)
    }

    /// The Merkle root of the leaves `start..end` (a perfect subtree when
    /// aligned: one stored node), within the latest tree.
    pub fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, LedgerError> {
        self.bounded(Some(end))?;
        Ok(range_root(&StoreNodes(self.s.store.as_ref()), start, end)?)
    }

    fn bounded(&self, size: Option<u64>) -> Result<u64, LedgerError> {
        let latest = self.size();
        self.s.vis.reach_for_read(size.unwrap_or(latest));
        match size {
            None => Ok(latest),
            Some(s) if s <= latest => Ok(s),
            Some(s) => Err(crate::merkle::ProofError::SizeBeyondLog { size: s, available: latest }.into()),
        }
    }

    /// A receipt for a stored entry against `checkpoint`.
    pub fn receipt_at(&self, seq: u64, checkpoint: &Arc<SignedCheckpoint>) -> Result<Receipt, LedgerError> {
        self.s.vis.reach_for_read(checkpoint.checkpoint.size);
        let e = self.get(seq)?;
        let proof = inclusion_proof(&StoreNodes(self.s.store.as_ref()), seq, checkpoint.checkpoint.size)?;
        Ok(Receipt {
            seq,
            leaf_hash: e.leaf_hash,
            leaf: e.leaf_bytes,
            proof,
            checkpoint: checkpoint.clone(),
            duplicate: false,
        })
    }

    /// Kept history checkpoints with size in `[from, to]`.
    pub fn checkpoint_history(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>, LedgerError> {
        self.s.vis.reach_for_read(to.min(self.size()));
        Ok(self.s.store.checkpoints(from, to)?)
    }

    /// The artifact index row of a BLAKE3 hash.
    pub fn artifact(&self, blake3: &Hash) -> Result<Option<ArtifactRow>, LedgerError> {
        Ok(self.s.store.artifact(blake3)?)
    }

    /// Every artifact index row.
    pub fn artifact_rows(&self) -> Result<Vec<(Hash, ArtifactRow)>, LedgerError> {
        Ok(self.s.store.artifact_rows()?)
    }

    /// The artifact blobs.
    pub fn blobs(&self) -> &dyn BlobStore {
        self.s.store.blobs()
    }

    /// The journal as export-bundle files (FORMAT.md §6), durable parts
    /// only, in order: sealed segments whole, the open one cut at its last
    /// sync. What an export copies.
    pub fn bundle_parts(&self) -> Result<Vec<BundlePart>, LedgerError> {
        Ok(self.s.store.bundle_parts()?)
    }

    /// Reads bytes of a bundle part at `offset` (0 at its end).
    pub fn read_part(&self, part: &BundlePart, offset: u64, buf: &mut [u8]) -> Result<usize, LedgerError> {
        Ok(self.s.store.read_part(part, offset, buf)?)
    }

    /// The state before entry `first_seq` (for verifying a journal that
    /// starts there).
    pub fn start_state(&self, first_seq: u64) -> Result<crate::verify::StartState, LedgerError> {
        self.s.vis.reach_for_read(first_seq);
        let range = crate::merkle::CompactRange::from_source(&StoreNodes(self.s.store.as_ref()), first_seq)?;
        let (prev, time) = match first_seq.checked_sub(1) {
            None => ([0u8; 32], i64::MIN),
            Some(p) => {
                let pos = self.position(p)?;
                (pos.leaf_hash, pos.recorded_at)
            }
        };
        Ok(crate::verify::StartState {
            first_seq,
            prev_hash: hex::encode(prev),
            prev_recorded_at: time,
            compact_range: range.nodes().iter().map(hex::encode).collect(),
        })
    }

    /// The public keys of the log, with their windows (no secrets).
    pub fn public_keys(&self) -> Vec<crate::keys::PublicKeyInfo> {
        read_lock(&self.s.keyring).public_keys()
    }

    /// Status of every key at `now_ns`.
    pub fn key_status(&self, now_ns: i64) -> Vec<KeyStatus> {
        read_lock(&self.s.keyring).status(now_ns, &self.s.opts.key_policy)
    }

    /// Every checkpoint verifier key of the log (active and retired).
    pub fn verifiers(&self) -> Vec<NoteVerifier> {
        read_lock(&self.s.keyring).verifiers()
    }

    /// The HMAC keys with their secrets, for in-process verification (tests,
    /// tools on the server host). Never sent over the network.
    pub fn hmac_keys(&self) -> HmacKeySet {
        read_lock(&self.s.keyring).hmac_keys()
    }

    /// The HMAC key file for auditors who hold the shared key.
    pub fn export_hmac_keys(&self) -> String {
        read_lock(&self.s.keyring).export_hmac_keys()
    }

    /// The first seq whose recorded_at ≥ `t` (binary search: time never
    /// decreases along seq).
    pub fn seq_at_time(&self, t: i64) -> Result<u64, LedgerError> {
        let (mut lo, mut hi) = (0, self.size());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.position(mid)?.recorded_at < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Runs a query, one page at a time. A page ends at `limit` entries,
    /// after scanning QUERY_SCAN_LIMIT entries, or once it holds
    /// QUERY_PAGE_BYTES of payload and leaves (so one page of a slow client
    /// costs the server a bounded amount of memory); `next_cursor` resumes.
    pub fn query(&self, q: &Query) -> Result<Page, LedgerError> {
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let (mut lo, mut hi) = (q.from_seq.unwrap_or(0), q.to_seq.unwrap_or(u64::MAX).min(self.size()));
        self.s.vis.reach_for_read(hi);
        if let Some(t) = q.since {
            lo = lo.max(self.seq_at_time(t)?);
        }
        if let Some(t) = q.until {
            hi = hi.min(self.seq_at_time(t)?);
        }
        match (q.cursor, q.desc) {
            (Some(c), false) => lo = lo.max(c),
            (Some(c), true) => hi = hi.min(c),
            _ => {}
        }
        let driver =
            [(Secondary::Subject, &q.subject), (Secondary::Category, &q.category), (Secondary::Actor, &q.actor)]
                .into_iter()
                .find_map(|(s, v)| v.as_deref().map(|v| (s, v)));
        let mut page = Page::default();
        let (mut scanned, mut bytes) = (0, 0usize);
        while lo < hi {
            let seqs = match driver {
                Some((s, v)) => self.s.store.scan(s, v, lo, hi, q.desc, QUERY_CHUNK)?,
                None if q.desc => (hi.saturating_sub(QUERY_CHUNK as u64).max(lo)..hi).rev().collect(),
                None => (lo..hi.min(lo + QUERY_CHUNK as u64)).collect(),
            };
            if seqs.is_empty() {
                break;
            }
            for seq in seqs {
                (lo, hi) = if q.desc { (lo, seq) } else { (seq + 1, hi) };
                scanned += 1;
                let e = self.get(seq)?;
                if matches(&e, q) {
                    bytes += e.payload.len() + e.leaf_bytes.len();
                    page.entries.push(e);
                }
                if page.entries.len() >= limit || scanned >= QUERY_SCAN_LIMIT || bytes >= QUERY_PAGE_BYTES {
                    page.next_cursor = (lo < hi).then_some(if q.desc { hi } else { lo });
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }

    /// Calls `f` with every entry `q` matches, page after page (a page may
    /// end short of the next match: the cursor is followed to the end),
    /// until `f` returns `Ok(false)`.
    pub fn each<E: From<LedgerError>>(
        &self,
        mut q: Query,
        mut f: impl FnMut(StoredEntry) -> Result<bool, E>,
    ) -> Result<(), E> {
        loop {
            let page = self.query(&q)?;
            for e in page.entries {
                if !f(e)? {
                    return Ok(());
                }
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(()),
            }
        }
    }
}

fn matches(e: &StoredEntry, q: &Query) -> bool {
    let l = &e.leaf;
    if q.category.as_deref().is_some_and(|c| c != l.category)
        || q.subject.as_deref().is_some_and(|s| s != l.subject)
        || q.actor.as_deref().is_some_and(|a| a != l.actor)
    {
        return false;
    }
    if q.fields.is_empty() {
        return true;
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(&e.payload) else {
        return false;
    };
    q.fields.iter().all(|(k, v)| obj.get(k) == Some(v))
}
