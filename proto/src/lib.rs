//! `ledger-proto`: the generated protobuf types of package `ledger.v1`.
//!
//! Owns: the `.proto` files' Rust bindings. Must not: contain logic. The
//! format messages (`Leaf`, `Record`, …) are always present; the gRPC service
//! clients and servers only with feature `grpc`.

/// Package `ledger.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/ledger.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every `ledger.v1` file (for gRPC
/// reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ledger_descriptor.bin"));
