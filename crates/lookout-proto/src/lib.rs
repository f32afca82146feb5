//! Generated code for Lookout's wire contract (`proto/lookout/v1`).
//!
//! Nothing but generated types lives here; mapping between wire and domain types
//! belongs to the crates that own the domain (`lookout-server`, `lookout-node`).

#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("lookout.v1");
}

/// Encoded `FileDescriptorSet` for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lookout_descriptor");
