//! Tenant configuration: the YAML document an operator applies with
//! `careline config apply -f FILE`, stored in the NATS KV bucket and watched
//! by every service.
//!
//! Parsing validates everything and reports errors naming the field and line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Channel, Language, Priority};

/// A tenant (health plan) and everything routing needs to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub name: String,
    /// IANA time zone name, e.g. `America/Denver`.
    pub time_zone: String,
    pub languages: Vec<Language>,
    #[serde(default)]
    pub hours: Vec<OpeningHours>,
    #[serde(default)]
    pub holidays: Vec<chrono::NaiveDate>,
    /// Language code (`en`, `es`) -> message.
    #[serde(default)]
    pub after_hours_message: BTreeMap<String, String>,
    pub contact_email: String,
    #[serde(default)]
    pub portal_url: String,
    #[serde(default)]
    pub inbound_email_addresses: Vec<String>,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    #[serde(default)]
    pub routing: RoutingSettings,
    pub queues: Vec<QueueConfig>,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

/// One opening window on some weekdays; `close` before `open` means overnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    pub days: Vec<chrono::Weekday>,
    /// `HH:MM`, local time.
    pub open: String,
    /// `HH:MM`, local time.
    pub close: String,
}

/// A tenant API key, stored as the hex SHA-256 of the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub sha256: String,
}

/// How an agent is chosen among the eligible ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    LongestIdle,
    MostSkilled,
    RoundRobin,
}

/// Per-channel numbers (seconds, capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerChannel {
    pub voice: u32,
    pub chat: u32,
    pub email: u32,
}

impl PerChannel {
    /// The value for `channel`.
    pub fn get(&self, channel: Channel) -> u32 {
        match channel {
            Channel::Voice => self.voice,
            Channel::Chat => self.chat,
            Channel::Email => self.email,
        }
    }
}

/// Partial per-channel override (an agent's own capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerChannelOverride {
    pub voice: Option<u32>,
    pub chat: Option<u32>,
    pub email: Option<u32>,
}

/// Priority aging: after `after_secs` of waiting, one step up, at most to `max_priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aging {
    pub after_secs: u32,
    pub max_priority: Priority,
}

/// Tenant-wide routing behaviour, with defaults that suit a small contact center.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    pub strategy: Strategy,
    /// Urgent interactions go to this queue when set (a dedicated clinical queue).
    pub urgent_queue: Option<String>,
    pub offer_timeout_secs: PerChannel,
    pub capacity: PerChannel,
    /// An agent on a voice call gets nothing else, and voice only when free of other work.
    pub voice_exclusive: bool,
    pub wrap_up_secs: u32,
    pub heartbeat_ttl_secs: u32,
    pub reconnect_grace_secs: u32,
    pub aging: Option<Aging>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            urgent_queue: None,
            offer_timeout_secs: PerChannel { voice: 20, chat: 60, email: 60 },
            capacity: PerChannel { voice: 1, chat: 3, email: 5 },
            voice_exclusive: true,
            wrap_up_secs: 30,
            heartbeat_ttl_secs: 15,
            reconnect_grace_secs: 60,
            aging: None,
        }
    }
}

/// A required skill at a minimum proficiency (1-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillRequirement {
    pub skill: String,
    pub min_proficiency: u8,
}

/// A queue and the skills its agents need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub skills: Vec<SkillRequirement>,
    /// Answer-within threshold for the service level.
    #[serde(default = "default_service_level_secs")]
    pub service_level_secs: u32,
    /// Steps applied in order as an interaction keeps waiting.
    #[serde(default)]
    pub overflow: Vec<OverflowStep>,
}

fn default_service_level_secs() -> u32 {
    30
}

/// After `after_secs` in the queue, exactly one of: lower every minimum
/// proficiency by `relax_by`, also accept agents of `widen_to`, or move to `move_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowStep {
    pub after_secs: u32,
    pub relax_by: Option<u8>,
    pub widen_to: Option<String>,
    pub move_to: Option<String>,
}

/// An agent who may log in to this tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    /// Hex SHA-256 of the agent's key.
    pub key_sha256: String,
    /// Skill name -> proficiency (1-10).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<Language>,
    #[serde(default)]
    pub capacity: PerChannelOverride,
}
