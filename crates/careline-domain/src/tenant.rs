//! Tenant configuration: the YAML document an operator applies with
//! `careline config apply -f FILE`, stored in the NATS KV bucket and watched
//! by every service.
//!
//! Parsing validates everything and reports errors naming the field and line.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use crate::error::{ConfigError, Problem};
use crate::hours::{self, BusinessHours};
use crate::ids::{AgentId, QueueId, TenantId};
use crate::skills::Proficiency;
use crate::yaml_lines::LineIndex;
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
    /// How long a contact waits for one agent (a transfer to that agent, a
    /// follow-up returning to it) before it falls back to its queue.
    pub personal_fallback_secs: u32,
    pub aging: Option<Aging>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            urgent_queue: None,
            offer_timeout_secs: PerChannel {
                voice: 20,
                chat: 60,
                email: 60,
            },
            capacity: PerChannel {
                voice: 1,
                chat: 3,
                email: 5,
            },
            voice_exclusive: true,
            wrap_up_secs: 30,
            heartbeat_ttl_secs: 15,
            reconnect_grace_secs: 60,
            personal_fallback_secs: 120,
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

/// Most interactions of one channel an agent may hold at once.
pub const MAX_CAPACITY: u32 = 100;
/// Shortest heartbeat TTL: agents' desktops beat every second or so.
pub const MIN_HEARTBEAT_TTL_SECS: u32 = 3;

impl TenantConfig {
    /// Parses a YAML document and validates it; problems name the field and line.
    pub fn from_yaml(text: &str) -> Result<TenantConfig, ConfigError> {
        let config: TenantConfig = serde_yaml_ng::from_str(text).map_err(|e| yaml_problem(&e))?;
        let lines = LineIndex::new(text);
        config.check(Some(&lines))?;
        Ok(config)
    }

    /// Checks every rule again (e.g. a config read back from storage); lines are `None`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(None)
    }

    /// The JSON form stored in the configuration KV bucket.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a tenant config always serializes to JSON")
    }

    /// Parses and validates the JSON form stored in the configuration KV bucket.
    pub fn from_json(text: &str) -> Result<TenantConfig, ConfigError> {
        let config: TenantConfig = serde_json::from_str(text)
            .map_err(|e| ConfigError::single("", Some(e.line()), e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The queue with id `id`.
    pub fn queue(&self, id: &str) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| q.id == id)
    }

    /// The agent with id `id`.
    pub fn agent(&self, id: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// The agent's capacity per channel: its own override, else the tenant default.
    pub fn agent_capacity(&self, agent: &AgentConfig) -> PerChannel {
        let default = self.routing.capacity;
        PerChannel {
            voice: agent.capacity.voice.unwrap_or(default.voice),
            chat: agent.capacity.chat.unwrap_or(default.chat),
            email: agent.capacity.email.unwrap_or(default.email),
        }
    }

    /// Whether `key_sha256_hex` (hex SHA-256 of a presented key, any case) is one of
    /// this tenant's API keys. Compares without early exit.
    pub fn api_key_tenant_matches(&self, key_sha256_hex: &str) -> bool {
        let presented = key_sha256_hex.to_ascii_lowercase();
        self.api_keys.iter().fold(false, |found, key| {
            found | crate::secret::constant_time_eq(key.sha256.as_bytes(), presented.as_bytes())
        })
    }

    /// The business hours. On a validated config this cannot fail; otherwise an
    /// unknown zone falls back to UTC and windows with bad times are dropped.
    pub fn hours(&self) -> BusinessHours {
        BusinessHours::from_config(self).unwrap_or_else(|_| BusinessHours {
            time_zone: hours::parse_time_zone(&self.time_zone).unwrap_or(chrono_tz::UTC),
            windows: self
                .hours
                .iter()
                .filter_map(|h| {
                    Some(hours::Window {
                        days: h.days.clone(),
                        open: hours::parse_time_of_day(&h.open).ok()?,
                        close: hours::parse_time_of_day(&h.close).ok()?,
                    })
                })
                .collect(),
            holidays: self.holidays.iter().copied().collect(),
        })
    }

    /// The after-hours message in `lang`, else in the tenant's first language
    /// that has one, else any; empty when none is configured.
    pub fn after_hours_message(&self, lang: Language) -> &str {
        std::iter::once(lang)
            .chain(self.languages.iter().copied())
            .find_map(|l| self.after_hours_message.get(l.as_str()))
            .or_else(|| self.after_hours_message.values().next())
            .map_or("", String::as_str)
    }

    fn check(&self, lines: Option<&LineIndex>) -> Result<(), ConfigError> {
        let mut c = Checker {
            lines,
            problems: Vec::new(),
        };
        self.check_tenant(&mut c);
        self.check_routing(&mut c);
        self.check_queues(&mut c);
        self.check_agents(&mut c);
        if c.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: c.problems,
            })
        }
    }

    fn check_tenant(&self, c: &mut Checker<'_>) {
        if let Err(e) = TenantId::new(self.id.as_str()) {
            c.problem("id".into(), e.to_string());
        }
        if self.name.trim().is_empty() {
            c.problem("name".into(), "name must not be empty".into());
        }
        if let Err(e) = hours::parse_time_zone(&self.time_zone) {
            c.problem("time_zone".into(), e.to_string());
        }
        if self.languages.is_empty() {
            c.problem(
                "languages".into(),
                "at least one language is required, e.g. [en]".into(),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, lang) in self.languages.iter().enumerate() {
            let field = format!("languages[{i}]");
            if let Some(first) = seen.insert(lang.as_str(), &field) {
                c.duplicate(field, "language", lang.as_str(), &first);
            }
        }
        for (i, h) in self.hours.iter().enumerate() {
            if h.days.is_empty() {
                c.problem(
                    format!("hours[{i}].days"),
                    "list at least one day, e.g. [mon, tue]".into(),
                );
            }
            for (name, value) in [("open", &h.open), ("close", &h.close)] {
                if let Err(e) = hours::parse_time_of_day(value) {
                    c.problem(format!("hours[{i}].{name}"), e.to_string());
                }
            }
        }
        for key in self.after_hours_message.keys() {
            if !self.languages.iter().any(|l| l.as_str() == key) {
                c.problem(
                    format!("after_hours_message.{key}"),
                    format!(
                        "{key:?} is not one of the tenant's languages ({})",
                        language_list(&self.languages)
                    ),
                );
            }
        }
        if !is_email_like(&self.contact_email) {
            c.problem(
                "contact_email".into(),
                format!(
                    "{:?} is not an email address: use one '@' with text on both sides",
                    self.contact_email
                ),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, key) in self.api_keys.iter().enumerate() {
            let field = format!("api_keys[{i}].id");
            if key.id.is_empty() {
                c.problem(field.clone(), "api key id must not be empty".into());
            } else if let Some(first) = seen.insert(&key.id, &field) {
                c.duplicate(field, "api key id", &key.id, &first);
            }
            if !is_sha256_hex(&key.sha256) {
                c.problem(format!("api_keys[{i}].sha256"), SHA256_RULE.into());
            }
        }
    }

    fn check_routing(&self, c: &mut Checker<'_>) {
        let r = &self.routing;
        if let Some(urgent) = &r.urgent_queue
            && self.queue(urgent).is_none()
        {
            c.problem(
                "routing.urgent_queue".into(),
                format!("queue {urgent:?} is not defined under queues"),
            );
        }
        for channel in Channel::ALL {
            if r.offer_timeout_secs.get(channel) < 1 {
                c.problem(
                    format!("routing.offer_timeout_secs.{}", channel.as_str()),
                    "offer timeout must be at least 1 second".into(),
                );
            }
            if r.capacity.get(channel) > MAX_CAPACITY {
                c.problem(
                    format!("routing.capacity.{}", channel.as_str()),
                    format!(
                        "capacity {} is too high: use 0-{MAX_CAPACITY}",
                        r.capacity.get(channel)
                    ),
                );
            }
        }
        if r.heartbeat_ttl_secs < MIN_HEARTBEAT_TTL_SECS {
            c.problem(
                "routing.heartbeat_ttl_secs".into(),
                format!(
                    "{} is too short: use at least {MIN_HEARTBEAT_TTL_SECS} seconds",
                    r.heartbeat_ttl_secs
                ),
            );
        }
        if r.personal_fallback_secs == 0 {
            c.problem(
                "routing.personal_fallback_secs".into(),
                "a contact must wait at least 1 second for its agent before falling back to its queue"
                    .into(),
            );
        }
        if r.aging.is_some_and(|a| a.after_secs == 0) {
            c.problem(
                "routing.aging.after_secs".into(),
                "aging must wait at least 1 second".into(),
            );
        }
    }

    fn check_queues(&self, c: &mut Checker<'_>) {
        if self.queues.is_empty() {
            c.problem("queues".into(), "at least one queue is required".into());
        }
        let mut seen = FirstSeen::default();
        for (i, q) in self.queues.iter().enumerate() {
            let field = format!("queues[{i}].id");
            if let Err(e) = QueueId::new(q.id.as_str()) {
                c.problem(field, e.to_string());
            } else if let Some(first) = seen.insert(&q.id, &field) {
                c.duplicate(field, "queue id", &q.id, &first);
            }
            for (j, req) in q.skills.iter().enumerate() {
                if req.skill.trim().is_empty() {
                    c.problem(
                        format!("queues[{i}].skills[{j}].skill"),
                        "skill name must not be empty".into(),
                    );
                }
                if let Err(e) = Proficiency::new(req.min_proficiency) {
                    c.problem(
                        format!("queues[{i}].skills[{j}].min_proficiency"),
                        e.to_string(),
                    );
                }
            }
            let mut previous_after: Option<u32> = None;
            for (k, step) in q.overflow.iter().enumerate() {
                let at = format!("queues[{i}].overflow[{k}]");
                let actions = [
                    step.relax_by.is_some(),
                    step.widen_to.is_some(),
                    step.move_to.is_some(),
                ];
                if actions.iter().filter(|&&set| set).count() != 1 {
                    c.problem(
                        at.clone(),
                        "set exactly one of relax_by, widen_to or move_to".into(),
                    );
                }
                if let Some(prev) = previous_after
                    && step.after_secs <= prev
                {
                    c.problem(
                        format!("{at}.after_secs"),
                        format!(
                            "{} must be greater than the previous step's {prev}",
                            step.after_secs
                        ),
                    );
                }
                previous_after = Some(step.after_secs);
                if step
                    .relax_by
                    .is_some_and(|by| !(1..Proficiency::MAX.get()).contains(&by))
                {
                    c.problem(
                        format!("{at}.relax_by"),
                        "relax_by must be from 1 to 9".into(),
                    );
                }
                for (name, target) in [("widen_to", &step.widen_to), ("move_to", &step.move_to)] {
                    let Some(target) = target else { continue };
                    if target == &q.id {
                        c.problem(
                            format!("{at}.{name}"),
                            format!("queue {target:?} cannot overflow to itself"),
                        );
                    } else if self.queue(target).is_none() {
                        c.problem(
                            format!("{at}.{name}"),
                            format!("queue {target:?} is not defined under queues"),
                        );
                    }
                }
            }
        }
    }

    fn check_agents(&self, c: &mut Checker<'_>) {
        let mut seen = FirstSeen::default();
        for (i, a) in self.agents.iter().enumerate() {
            let field = format!("agents[{i}].id");
            if let Err(e) = AgentId::new(a.id.as_str()) {
                c.problem(field, e.to_string());
            } else if let Some(first) = seen.insert(&a.id, &field) {
                c.duplicate(field, "agent id", &a.id, &first);
            }
            if !is_sha256_hex(&a.key_sha256) {
                c.problem(format!("agents[{i}].key_sha256"), SHA256_RULE.into());
            }
            for (skill, &level) in &a.skills {
                if let Err(e) = Proficiency::new(level) {
                    c.problem(format!("agents[{i}].skills.{skill}"), e.to_string());
                }
            }
            if a.languages.is_empty() {
                c.problem(
                    format!("agents[{i}].languages"),
                    "at least one language is required".into(),
                );
            }
            for (j, lang) in a.languages.iter().enumerate() {
                if !self.languages.contains(lang) {
                    c.problem(
                        format!("agents[{i}].languages[{j}]"),
                        format!(
                            "{:?} is not one of the tenant's languages ({})",
                            lang.as_str(),
                            language_list(&self.languages)
                        ),
                    );
                }
            }
            for channel in Channel::ALL {
                let value = match channel {
                    Channel::Voice => a.capacity.voice,
                    Channel::Chat => a.capacity.chat,
                    Channel::Email => a.capacity.email,
                };
                if let Some(value) = value.filter(|&v| v > MAX_CAPACITY) {
                    c.problem(
                        format!("agents[{i}].capacity.{}", channel.as_str()),
                        format!("capacity {value} is too high: use 0-{MAX_CAPACITY}"),
                    );
                }
            }
        }
    }
}

const SHA256_RULE: &str = "use the SHA-256 of the key as 64 lowercase hex characters";

/// Collects problems, attaching lines when the source YAML is known.
struct Checker<'a> {
    lines: Option<&'a LineIndex>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: String, message: String) {
        let line = self.lines.and_then(|l| l.line(&field));
        self.problems.push(Problem {
            field,
            line,
            message,
        });
    }

    fn duplicate(&mut self, field: String, what: &str, value: &str, first_field: &str) {
        let first = match self.lines.and_then(|l| l.line(first_field)) {
            Some(line) => format!("first defined on line {line}"),
            None => format!("first defined at {first_field}"),
        };
        self.problem(field, format!("duplicate {what} {value:?} ({first})"));
    }
}

/// Remembers where each value was first seen, to report duplicates.
#[derive(Default)]
struct FirstSeen(HashMap<String, String>);

impl FirstSeen {
    /// Records `value` at `field`; returns the earlier field if already seen.
    fn insert(&mut self, value: &str, field: &str) -> Option<String> {
        match self.0.get(value) {
            Some(first) => Some(first.clone()),
            None => {
                self.0.insert(value.to_string(), field.to_string());
                None
            }
        }
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_email_like(text: &str) -> bool {
    let mut parts = text.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.trim().is_empty() && !domain.trim().is_empty()
    )
}

fn language_list(languages: &[Language]) -> String {
    languages
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns a serde_yaml_ng error ("queues[0]: unknown field `x`, ... at line 5 column 5")
/// into a problem with its field path and line.
fn yaml_problem(error: &serde_yaml_ng::Error) -> ConfigError {
    let line = error.location().map(|l| l.line());
    let mut text = error.to_string();
    if let Some(l) = error.location() {
        text = text.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
    }
    let (field, message) = match text.split_once(": ") {
        Some((path, rest)) if is_field_path(path) => (path.to_string(), rest.to_string()),
        _ => (String::new(), text),
    };
    ConfigError::single(field, line, message)
}

fn is_field_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../deploy/tenants/demo-health.yaml");
    const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// A valid config with known line numbers; cases edit it without moving lines.
    fn base() -> String {
        [
            "id: acme",                                               // 1
            "name: Acme Health",                                      // 2
            "time_zone: America/Denver",                              // 3
            "languages: [en, es]",                                    // 4
            "hours:",                                                 // 5
            "  - days: [mon, tue, wed, thu, fri]",                    // 6
            "    open: \"07:00\"",                                    // 7
            "    close: \"19:00\"",                                   // 8
            "holidays: [2026-12-25]",                                 // 9
            "after_hours_message:",                                   // 10
            "  en: Closed.",                                          // 11
            "  es: Cerrado.",                                         // 12
            "contact_email: help@acme.example",                       // 13
            "api_keys:",                                              // 14
            "  - id: integration",                                    // 15
            &format!("    sha256: {HEX_A}"),                          // 16
            "routing:",                                               // 17
            "  urgent_queue: clinical",                               // 18
            "  heartbeat_ttl_secs: 15",                               // 19
            "queues:",                                                // 20
            "  - id: general",                                        // 21
            "    skills:",                                            // 22
            "      - { skill: member_services, min_proficiency: 3 }", // 23
            "    overflow:",                                          // 24
            "      - { after_secs: 60, relax_by: 1 }",                // 25
            "      - { after_secs: 120, widen_to: clinical }",        // 26
            "  - id: clinical",                                       // 27
            "    skills:",                                            // 28
            "      - { skill: clinical, min_proficiency: 6 }",        // 29
            "agents:",                                                // 30
            "  - id: ana",                                            // 31
            &format!("    key_sha256: {HEX_A}"),                      // 32
            "    skills: { member_services: 8, clinical: 7 }",        // 33
            "    languages: [en, es]",                                // 34
            "    capacity: { chat: 2 }",                              // 35
        ]
        .join("\n")
            + "\n"
    }

    fn edited(from: &str, to: &str) -> String {
        let text = base();
        assert!(text.contains(from), "base has no {from:?}");
        text.replacen(from, to, 1)
    }

    #[test]
    fn demo_tenant_parses_and_validates() {
        let config = TenantConfig::from_yaml(DEMO).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.id, "demo-health");
        assert_eq!(config.queues.len(), 3);
        assert!(config.validate().is_ok());
        assert_eq!(
            config.hours().describe(),
            "Mon-Fri 07:00-19:00 America/Denver"
        );
    }

    #[test]
    fn base_config_is_valid() {
        TenantConfig::from_yaml(&base()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn each_rule_names_the_field_and_line() {
        let dup_agent = format!(
            "capacity: {{ chat: 2 }}\n  - id: ana\n    key_sha256: {HEX_A}\n    languages: [en]"
        );
        let dup_key =
            format!("api_keys: [{{ id: k, sha256: {HEX_A} }}, {{ id: k, sha256: {HEX_A} }}]\n\n\n");
        let cases: &[(&str, &str, &str, usize, &str)] = &[
            // from, to, field, line, message contains
            (
                "id: acme",
                "id: Acme Health",
                "id",
                1,
                "tenant id \"Acme Health\" is invalid: use 1-64 lowercase letters, digits or '-', starting with a letter",
            ),
            (
                "name: Acme Health",
                "name: \"\"",
                "name",
                2,
                "must not be empty",
            ),
            (
                "America/Denver",
                "Mars/Olympus_Mons",
                "time_zone",
                3,
                "unknown time zone \"Mars/Olympus_Mons\"",
            ),
            (
                "languages: [en, es]",
                "languages: []",
                "languages",
                4,
                "at least one language",
            ),
            (
                "languages: [en, es]",
                "languages: [en, en]",
                "languages[1]",
                4,
                "duplicate language \"en\" (first defined on line 4)",
            ),
            (
                "[mon, tue, wed, thu, fri]",
                "[]",
                "hours[0].days",
                6,
                "at least one day",
            ),
            (
                "open: \"07:00\"",
                "open: \"7am\"",
                "hours[0].open",
                7,
                "time \"7am\" is invalid: use HH:MM",
            ),
            (
                "close: \"19:00\"",
                "close: \"24:00\"",
                "hours[0].close",
                8,
                "use HH:MM",
            ),
            (
                "  es: Cerrado.",
                "  fr: Fermé.",
                "after_hours_message.fr",
                12,
                "\"fr\" is not one of the tenant's languages (en, es)",
            ),
            (
                "help@acme.example",
                "help.acme.example",
                "contact_email",
                13,
                "one '@' with text on both sides",
            ),
            ("help@acme.example", "a@b@c", "contact_email", 13, "one '@'"),
            (
                "help@acme.example",
                "\"@acme.example\"",
                "contact_email",
                13,
                "one '@'",
            ),
            (
                &format!("    sha256: {HEX_A}"),
                "    sha256: ABC",
                "api_keys[0].sha256",
                16,
                "64 lowercase hex",
            ),
            (
                &format!("api_keys:\n  - id: integration\n    sha256: {HEX_A}\n"),
                &dup_key,
                "api_keys[1].id",
                14,
                "duplicate api key id \"k\" (first defined on line 14)",
            ),
            (
                "urgent_queue: clinical",
                "urgent_queue: nurses",
                "routing.urgent_queue",
                18,
                "queue \"nurses\" is not defined",
            ),
            (
                "  heartbeat_ttl_secs: 15",
                "  heartbeat_ttl_secs: 2",
                "routing.heartbeat_ttl_secs",
                19,
                "at least 3 seconds",
            ),
            (
                "  heartbeat_ttl_secs: 15",
                "  offer_timeout_secs: { voice: 0, chat: 60, email: 60 }",
                "routing.offer_timeout_secs.voice",
                19,
                "at least 1 second",
            ),
            (
                "  heartbeat_ttl_secs: 15",
                "  capacity: { voice: 1, chat: 101, email: 5 }",
                "routing.capacity.chat",
                19,
                "capacity 101 is too high: use 0-100",
            ),
            (
                "  - id: general",
                "  - id: General",
                "queues[0].id",
                21,
                "queue id \"General\" is invalid",
            ),
            (
                "  - id: clinical",
                "  - id: general",
                "queues[1].id",
                27,
                "duplicate queue id \"general\" (first defined on line 21)",
            ),
            (
                "min_proficiency: 6",
                "min_proficiency: 11",
                "queues[1].skills[0].min_proficiency",
                29,
                "proficiency 11 is invalid",
            ),
            (
                "min_proficiency: 3",
                "min_proficiency: 0",
                "queues[0].skills[0].min_proficiency",
                23,
                "proficiency 0 is invalid",
            ),
            (
                "{ after_secs: 60, relax_by: 1 }",
                "{ after_secs: 60, relax_by: 1, move_to: clinical }",
                "queues[0].overflow[0]",
                25,
                "exactly one of relax_by, widen_to or move_to",
            ),
            (
                "{ after_secs: 60, relax_by: 1 }",
                "{ after_secs: 60 }",
                "queues[0].overflow[0]",
                25,
                "exactly one",
            ),
            (
                "after_secs: 120",
                "after_secs: 60",
                "queues[0].overflow[1].after_secs",
                26,
                "60 must be greater than the previous step's 60",
            ),
            (
                "widen_to: clinical",
                "widen_to: billing",
                "queues[0].overflow[1].widen_to",
                26,
                "queue \"billing\" is not defined",
            ),
            (
                "widen_to: clinical",
                "move_to: general",
                "queues[0].overflow[1].move_to",
                26,
                "cannot overflow to itself",
            ),
            (
                "  - id: ana",
                "  - id: ana.b",
                "agents[0].id",
                31,
                "agent id \"ana.b\" is invalid",
            ),
            (
                "capacity: { chat: 2 }",
                &dup_agent,
                "agents[1].id",
                36,
                "duplicate agent id \"ana\" (first defined on line 31)",
            ),
            (
                &format!("    key_sha256: {HEX_A}"),
                "    key_sha256: 1234",
                "agents[0].key_sha256",
                32,
                "64 lowercase hex",
            ),
            (
                "clinical: 7 }",
                "clinical: 0 }",
                "agents[0].skills.clinical",
                33,
                "proficiency 0 is invalid",
            ),
            (
                "languages: [en, es]",
                "languages: [en]",
                "agents[0].languages[1]",
                34,
                "\"es\" is not one of the tenant's languages (en)",
            ),
            (
                "capacity: { chat: 2 }",
                "capacity: { chat: 200 }",
                "agents[0].capacity.chat",
                35,
                "capacity 200 is too high",
            ),
        ];
        for (from, to, field, line, message) in cases {
            let err = TenantConfig::from_yaml(&edited(from, to))
                .expect_err(&format!("{from:?} -> {to:?}"));
            let found = err.problems.iter().find(|p| p.field == *field);
            let Some(problem) = found else {
                panic!("no problem for {field}; got:\n{err}")
            };
            assert_eq!(problem.line, Some(*line), "{field}: {err}");
            assert!(
                problem.message.contains(message),
                "{field}: {:?} lacks {message:?}",
                problem.message
            );
        }
    }

    #[test]
    fn syntax_and_type_errors_name_the_field_and_line() {
        let cases: &[(&str, &str, &str, usize, &str)] = &[
            (
                "  - id: general",
                "  - id: general: oops",
                "",
                21,
                "mapping values are not allowed",
            ),
            (
                "  heartbeat_ttl_secs: 15",
                "  heartbeat_ttl: 15",
                "routing",
                19,
                "unknown field `heartbeat_ttl`",
            ),
            (
                "min_proficiency: 6",
                "min_proficiency: high",
                "queues[1].skills[0].min_proficiency",
                29,
                "invalid type: string \"high\", expected u8",
            ),
            (
                "languages: [en, es]",
                "languages: [en, fr]",
                "languages[1]",
                4,
                "unknown variant `fr`",
            ),
            (
                "contact_email: help@acme.example",
                "",
                "",
                1,
                "missing field `contact_email`",
            ),
        ];
        for (from, to, field, line, message) in cases {
            let err = TenantConfig::from_yaml(&edited(from, to))
                .expect_err(&format!("{from:?} -> {to:?}"));
            assert_eq!(err.problems.len(), 1, "{err}");
            let p = &err.problems[0];
            assert_eq!((p.field.as_str(), p.line), (*field, Some(*line)), "{err}");
            assert!(
                p.message.contains(message),
                "{:?} lacks {message:?}",
                p.message
            );
            assert!(
                !p.message.contains(" at line "),
                "location repeated in {:?}",
                p.message
            );
        }
    }

    #[test]
    fn problems_display_with_line_field_and_message() {
        let err =
            TenantConfig::from_yaml(&edited("  - id: clinical", "  - id: general")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "line 27: queues[1].id: duplicate queue id \"general\" (first defined on line 21)"
            ),
            "{text}"
        );
        assert!(
            text.lines().count() >= 2,
            "every problem is reported:\n{text}"
        );
    }

    #[test]
    fn at_least_one_queue_is_required() {
        let text =
            "id: a\nname: A\ntime_zone: UTC\nlanguages: [en]\ncontact_email: a@b\nqueues: []\n";
        let err = TenantConfig::from_yaml(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 6: queues: at least one queue is required"
        );
    }

    #[test]
    fn validate_rechecks_without_lines() {
        let mut config = TenantConfig::from_yaml(&base()).unwrap();
        config.queues[1].id = "general".into();
        let err = config.validate().unwrap_err();
        let p = err
            .problems
            .iter()
            .find(|p| p.field == "queues[1].id")
            .unwrap();
        assert_eq!(p.line, None);
        assert_eq!(
            p.message,
            "duplicate queue id \"general\" (first defined at queues[0].id)"
        );
    }

    #[test]
    fn json_round_trips_and_is_validated() {
        let config = TenantConfig::from_yaml(DEMO).unwrap();
        let json = config.to_json();
        assert_eq!(TenantConfig::from_json(&json).unwrap(), config);
        let broken = json.replace("\"America/Denver\"", "\"Nowhere\"");
        let err = TenantConfig::from_json(&broken).unwrap_err();
        assert_eq!(err.problems[0].field, "time_zone");
        assert!(TenantConfig::from_json("{").is_err());
    }

    #[test]
    fn lookups_and_defaults() {
        let config = TenantConfig::from_yaml(DEMO).unwrap();
        assert_eq!(
            config.queue("billing").map(|q| q.skills[0].min_proficiency),
            Some(4)
        );
        assert!(config.queue("nope").is_none());
        let luis = config.agent("luis").unwrap();
        assert!(config.agent("nobody").is_none());
        let cases = [
            (
                "ana",
                PerChannel {
                    voice: 1,
                    chat: 3,
                    email: 5,
                },
            ),
            (
                "luis",
                PerChannel {
                    voice: 1,
                    chat: 2,
                    email: 5,
                },
            ),
        ];
        for (id, want) in cases {
            assert_eq!(
                config.agent_capacity(config.agent(id).unwrap()),
                want,
                "{id}"
            );
        }
        assert_eq!(config.agent_capacity(luis).get(Channel::Chat), 2);
    }

    #[test]
    fn api_keys_match_by_hash_in_any_case() {
        let config = TenantConfig::from_yaml(DEMO).unwrap();
        let known = "9cb9368a43ed72fe5e725b38a149a85efb395fe898e284947181bc7fd64f920f";
        let cases = [
            (known.to_string(), true),
            (known.to_uppercase(), true),
            (HEX_A.to_string(), false),
            (String::new(), false),
        ];
        for (key, want) in cases {
            assert_eq!(config.api_key_tenant_matches(&key), want, "{key}");
        }
    }

    #[test]
    fn after_hours_message_falls_back_to_first_configured() {
        let mut config = TenantConfig::from_yaml(DEMO).unwrap();
        assert!(
            config
                .after_hours_message(Language::Es)
                .starts_with("Nuestras")
        );
        assert!(
            config
                .after_hours_message(Language::En)
                .starts_with("Our phone")
        );
        config.after_hours_message.remove("es");
        assert!(
            config
                .after_hours_message(Language::Es)
                .starts_with("Our phone")
        );
        config.after_hours_message.clear();
        assert_eq!(config.after_hours_message(Language::En), "");
    }
}

#[cfg(test)]
mod hostile_input {
    use rand::{Rng, SeedableRng};

    use super::TenantConfig;

    /// Thousands of damaged copies of the demo file: every one is parsed to a
    /// config or to an error naming a line, and nothing panics.
    #[test]
    fn damaged_files_give_errors_never_panics() {
        let demo = include_str!("../../../deploy/tenants/demo-health.yaml").as_bytes();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b" \t\n:-[]{}#&*!|>'\"%@`,?0123456789abcxyz\xc3\xa9";
        for _ in 0..3000 {
            let mut text = demo.to_vec();
            for _ in 0..rng.random_range(1..8) {
                if text.is_empty() {
                    break;
                }
                let at = rng.random_range(0..text.len());
                match rng.random_range(0..3) {
                    0 => text[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        text.remove(at);
                    }
                    _ => text.truncate(at.max(1)),
                }
            }
            let text = String::from_utf8_lossy(&text);
            if let Err(error) = TenantConfig::from_yaml(&text) {
                assert!(!error.problems.is_empty(), "an error lists its problems");
                assert!(!error.to_string().is_empty());
            }
        }
    }
}
