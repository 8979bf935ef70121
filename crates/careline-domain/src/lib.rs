//! Careline's domain: pure types and rules, no I/O.
//!
//! - [`channel`]: channels, languages and priorities.
//! - [`targets`]: routing targets (queues and their overflow steps) and who may serve them.
//! - [`tenant`]: the tenant configuration document and its validation.

#![forbid(unsafe_code)]

pub mod channel;
pub mod targets;
pub mod tenant;

pub use channel::{Channel, Language, Priority};
