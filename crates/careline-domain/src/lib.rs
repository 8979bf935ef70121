//! Careline's domain: pure types and rules, no I/O.
//!
//! - [`ids`]: validated ids (tenant, agent, queue, interaction, offer) safe in NATS subjects and Redis keys.
//! - [`channel`]: channels, languages and priorities.
//! - [`skills`]: proficiencies and whether an agent's skills meet a queue's requirements.
//! - [`hours`]: business hours in the tenant's time zone, holidays and overnight windows.
//! - [`classify`]: language (EN/ES), urgency and topic of a member's text.
//! - [`targets`]: routing targets (queues and their overflow steps) and who may serve them.
//! - [`campaign`]: outreach campaigns: their settings, outreach window, pacing and retries.
//! - [`survey`]: survey eligibility, answer scales and the NPS arithmetic.
//! - [`tenant`]: the tenant configuration document, its parsing and validation.
//! - [`secret`]: [`secret::constant_time_eq`], how every key digest is compared.
//! - [`error`]: the crate's errors, including [`ConfigError`] with every problem found.

#![forbid(unsafe_code)]

pub mod campaign;
pub mod channel;
pub mod classify;
pub mod error;
pub mod hours;
pub mod ids;
pub mod secret;
pub mod skills;
pub mod survey;
pub mod targets;
pub mod tenant;
mod yaml_lines;

pub use channel::{Channel, Language, Priority};
pub use classify::{Classification, UrgentReason};
pub use error::{ConfigError, Error, Problem};
pub use hours::BusinessHours;
pub use ids::{AgentId, InteractionId, OfferId, QueueId, TenantId};
pub use skills::Proficiency;
pub use tenant::TenantConfig;
