//! The conformance suite (`suite/mod.rs`) over the file store and the
//! memory store.

mod engines;
#[macro_use]
mod suite;

conformance_all!(file_store, crate::engines::FileEngine::new());
conformance_all!(memory_store, crate::engines::MemoryEngine::new());
