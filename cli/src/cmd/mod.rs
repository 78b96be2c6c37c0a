//! One module per subcommand.

pub mod ack;
pub mod admin;
pub mod append;
pub mod approvals;
pub mod approve;
pub mod artifact;
pub mod compliance;
pub mod export;
pub mod import;
pub mod incident;
pub mod keys;
pub mod mirror;
pub mod prove;
pub mod query;
pub mod status;
pub mod summary;
pub mod verify;
pub mod verify_pack;
