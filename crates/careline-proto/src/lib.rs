//! Generated code for Careline's public gRPC API and its bus events.
//!
//! - [`v1`]: messages, enums, and tonic clients/servers of `proto/careline/v1`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, served by gRPC reflection.

#![allow(clippy::all, missing_docs)]

/// `careline.v1`: the stable, versioned API (see `proto/README.md`).
pub mod v1 {
    tonic::include_proto!("careline.v1");
}

/// Encoded `FileDescriptorSet` of every Careline proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("careline_descriptor");
