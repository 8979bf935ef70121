//! Careline's domain: pure types and rules, no I/O.
//!
//! - [`channel`]: channels, languages and priorities.
//! - [`tenant`]: the tenant configuration document and its validation.

#![forbid(unsafe_code)]

pub mod channel;
pub mod tenant;

pub use channel::{Channel, Language, Priority};
