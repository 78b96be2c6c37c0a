//! `ledger`: the append-only signed audit ledger core.
//!
//! Owns the verifiable format (docs/FORMAT.md), its cryptography, keys, the
//! log logic over a storage seam ([`store`]: the file store, an in-memory
//! store and a fault-injecting one), proofs, the offline verifier and
//! compliance summaries. It is a pure library: no async runtime, no
//! network, no configuration files. The CLI's `ledger verify` runs
//! [`verify`]; ledgerd's reads check every record against its leaf hash
//! and serve proofs built by [`merkle`], the same code the verifier uses.

#![warn(missing_docs)]

pub mod approval;
pub mod artifacts;
pub mod cosign;
pub mod entry;
pub mod hash;
pub mod hmac_tag;
pub mod journal;
pub mod keys;
pub mod leaf;
pub mod log;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod receipt;
pub mod record;
pub mod rfc3339;
pub mod rules;
pub mod span;
pub mod store;
pub mod sync;
pub mod tiles;

pub use entry::{Actor, Category, EntryInput, NewEntry, RequestId, Subject, ValidationError};
pub use log::{AppendError, Ledger, LedgerError, LedgerReader, LogOptions, Receipt, SignedCheckpoint};
pub mod layout;
pub mod pack;
pub mod summary;
pub mod verify;
pub mod witness;

/// Hash maps on the write path and in the index thread: foldhash, seeded
/// per process, instead of SipHash (which was ~4 % of a library append's
/// samples). Keys include client-given strings; the per-process seed keeps
/// their collisions from being chosen in advance.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
