//! Channels, languages and priorities: the small vocabularies routing keys on.

use serde::{Deserialize, Serialize};

/// How a member reached the tenant.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Voice,
    Chat,
    Email,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Email];

    /// Short lowercase name, as used in configuration and Redis keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
        }
    }
}

/// A language Careline routes on (agents carry it as `lang:<code>`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    En,
    Es,
}

impl Language {
    /// Every language Careline routes in.
    pub const ALL: [Language; 2] = [Language::En, Language::Es];

    /// ISO 639-1 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
        }
    }

    /// The language of an ISO 639-1 code (`en`, `es`, any case); `None` for others.
    pub fn from_code(code: &str) -> Option<Language> {
        Language::ALL
            .into_iter()
            .find(|language| language.as_str().eq_ignore_ascii_case(code.trim()))
    }
}

/// Queue priority, lowest to highest.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// Rank used in queue scores: urgent 0 (first) .. low 3 (last).
    pub fn band(self) -> u8 {
        match self {
            Priority::Urgent => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }

    /// The priority of a band (inverse of [`Priority::band`]); `None` outside 0..=3.
    pub fn from_band(band: u8) -> Option<Priority> {
        match band {
            0 => Some(Priority::Urgent),
            1 => Some(Priority::High),
            2 => Some(Priority::Normal),
            3 => Some(Priority::Low),
            _ => None,
        }
    }
}

/// Furthest back a new contact's queue-entry time may be set
/// (`CreateInteraction.queued_since_ms`, a call-back keeping its place).
pub const MAX_QUEUED_SINCE_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
