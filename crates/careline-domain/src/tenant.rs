//! Tenant configuration: the YAML document an operator applies with
//! `careline config apply -f FILE`, stored in the NATS KV bucket and watched
//! by every service.
//!
//! - this file: the schema (serde types, limits) and lookups on a parsed config.
//! - `parse`: YAML / JSON in and out; a YAML file's problems are all reported at once.
//! - `validate`: every rule beyond the types, each problem naming the field and line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::campaign::OutreachSettings;
pub use crate::error::{ConfigError, Problem};
use crate::hours::{self, BusinessHours};
use crate::{Channel, Language, Priority};

#[cfg(test)]
mod fixture;
mod parse;
#[cfg(feature = "schema")]
mod schema;
mod validate;

pub use validate::is_email_like;

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
    /// How mail to `inbound_email_addresses` becomes interactions.
    #[serde(default)]
    pub email: EmailSettings,
    /// The chat channel: widget keys and where they may be embedded.
    #[serde(default)]
    pub chat: ChatSettings,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    #[serde(default)]
    pub routing: RoutingSettings,
    pub queues: Vec<QueueConfig>,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Request rates the tenant's integrations may use.
    #[serde(default)]
    pub limits: Limits,
    /// Post-resolution email surveys (off until `channels` names one).
    #[serde(default)]
    pub surveys: SurveySettings,
    /// Outreach campaigns and the hours they may contact members.
    #[serde(default)]
    pub outreach: OutreachSettings,
    /// Quality review: the rubric supervisors score resolved contacts against.
    #[serde(default)]
    pub quality: QualitySettings,
}

/// Quality review: the tenant's rubric and how long scores and coaching notes are kept.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualitySettings {
    /// The criteria a review scores, each 1-5 ([`MIN_QUALITY_SCORE`]-[`MAX_QUALITY_SCORE`]).
    pub rubric: Vec<QualityCriterion>,
    /// Days quality scores and coaching notes are kept on the event log.
    pub retention_days: u32,
}

/// One criterion of a quality rubric.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityCriterion {
    /// 1-32 of `[a-z0-9_]`, starting with a letter (e.g. `accuracy`).
    pub id: String,
    /// What supervisors read, in English and in Spanish.
    pub label: CriterionLabel,
}

/// A criterion's label in both of Careline's languages.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionLabel {
    pub en: String,
    pub es: String,
}

/// Lowest score of a quality criterion.
pub const MIN_QUALITY_SCORE: u32 = 1;
/// Highest score of a quality criterion.
pub const MAX_QUALITY_SCORE: u32 = 5;
/// Most criteria one rubric may have.
pub const MAX_QUALITY_CRITERIA: usize = 20;
/// Longest criterion id.
pub const MAX_CRITERION_ID_LEN: usize = 32;
/// Longest criterion label.
pub const MAX_CRITERION_LABEL_LEN: usize = 80;
/// Default [`QualitySettings::retention_days`]: two years of reviews for coaching trends.
pub const DEFAULT_QUALITY_RETENTION_DAYS: u32 = 730;
/// Longest quality retention a tenant may configure.
pub const MAX_QUALITY_RETENTION_DAYS: u32 = 6 * 365;

impl Default for QualitySettings {
    fn default() -> Self {
        Self {
            rubric: Vec::new(),
            retention_days: DEFAULT_QUALITY_RETENTION_DAYS,
        }
    }
}

impl QualitySettings {
    /// The rubric's criterion `id`, if it has one.
    pub fn criterion(&self, id: &str) -> Option<&QualityCriterion> {
        self.rubric.iter().find(|c| c.id == id)
    }
}

/// Whether `id` is a valid criterion id (it becomes part of KPI field names).
pub fn is_criterion_id(id: &str) -> bool {
    (1..=MAX_CRITERION_ID_LEN).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Post-resolution surveys: who is asked, when, and how long answers are kept.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveySettings {
    /// Channels whose resolved contacts are surveyed; none: no surveys.
    pub channels: Vec<Channel>,
    /// Dispositions never surveyed (compared without case).
    pub excluded_dispositions: Vec<String>,
    /// Urgent contacts get no survey.
    pub exclude_urgent: bool,
    /// Seconds between the resolution and the survey email (0: at once).
    pub delay_secs: u64,
    /// At most one survey per member in this many days (from when one was sent).
    pub window_days: u32,
    /// Days a survey link stays valid.
    pub link_valid_days: u32,
    /// Days answers are kept.
    pub retention_days: u32,
}

/// Default [`SurveySettings::delay_secs`]: an hour after the resolution.
pub const DEFAULT_SURVEY_DELAY_SECS: u64 = 60 * 60;
/// Longest survey delay a tenant may configure (7 days).
pub const MAX_SURVEY_DELAY_SECS: u64 = 7 * 24 * 60 * 60;
/// Default [`SurveySettings::window_days`]: one survey per member per 90 days.
pub const DEFAULT_SURVEY_WINDOW_DAYS: u32 = 90;
/// Longest survey window (about 3 years).
pub const MAX_SURVEY_WINDOW_DAYS: u32 = 1_100;
/// Default [`SurveySettings::link_valid_days`].
pub const DEFAULT_SURVEY_LINK_DAYS: u32 = 14;
/// Longest a survey link may stay valid.
pub const MAX_SURVEY_LINK_DAYS: u32 = 90;
/// Default [`SurveySettings::retention_days`]: a year of answers for trends.
pub const DEFAULT_SURVEY_RETENTION_DAYS: u32 = 365;
/// Longest survey answer retention (HIPAA: minimum necessary).
pub const MAX_SURVEY_RETENTION_DAYS: u32 = 3 * 365;
/// Dispositions excluded unless the tenant says otherwise.
pub const DEFAULT_EXCLUDED_DISPOSITIONS: [&str; 4] =
    ["transferred_out", "abandoned", "urgent", "clinical"];

impl Default for SurveySettings {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            excluded_dispositions: DEFAULT_EXCLUDED_DISPOSITIONS.map(str::to_owned).to_vec(),
            exclude_urgent: true,
            delay_secs: DEFAULT_SURVEY_DELAY_SECS,
            window_days: DEFAULT_SURVEY_WINDOW_DAYS,
            link_valid_days: DEFAULT_SURVEY_LINK_DAYS,
            retention_days: DEFAULT_SURVEY_RETENTION_DAYS,
        }
    }
}

/// Per-tenant request rates, each a token bucket shared by every router
/// replica: `*_per_sec` tokens a second, up to `*_burst` saved. Past them a
/// call is refused with RESOURCE_EXHAUSTED and how long to wait (RetryInfo).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// `CreateInteraction` calls a second.
    pub creates_per_sec: u32,
    /// Creates saved up for a burst.
    pub creates_burst: u32,
    /// Every other Router call a second (reads, offers, transfers, watches opened).
    pub calls_per_sec: u32,
    /// Other calls saved up for a burst.
    pub calls_burst: u32,
}

/// Default [`Limits`]: well above a large plan's storm on one platform, so
/// that only a runaway client meets them.
impl Default for Limits {
    fn default() -> Self {
        Self {
            creates_per_sec: 1_000,
            creates_burst: 2_000,
            calls_per_sec: 5_000,
            calls_burst: 10_000,
        }
    }
}

/// Highest rate a tenant may configure for any limit (a second).
pub const MAX_RATE_PER_SEC: u32 = 1_000_000;

/// The email channel of a tenant.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// Queue of new email interactions; unset: the tenant's first queue.
    pub queue: Option<String>,
    /// Days an email thread (bodies included) is kept after its interaction ends (0: removed when it ends).
    pub retention_days: u32,
    /// Template name (`receipt`, `after_hours`, `urgent_guidance`, `agent_reply`, `survey`, `outreach`) ->
    /// language -> the tenant's own words for it;
    /// what is not set keeps the shipped EN/ES text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, BTreeMap<Language, TemplateOverride>>,
}

/// A tenant's version of one email template in one language: minijinja
/// templates over the request's variables (`tenant_name`, `interaction_id`,
/// `portal_url`, `contact_email`, `body`, ...). An unset part keeps the shipped
/// one; without `html`, the HTML part is the text in the shipped layout.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverride {
    /// The subject line (a request's own subject still wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The plain-text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A whole HTML document for the HTML part (variables are HTML-escaped; `subject` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// The email templates notifications sends, as named in
/// `NotificationRequested.template` and under `email.templates`.
pub const EMAIL_TEMPLATES: [&str; 6] = [
    "receipt",
    "after_hours",
    "urgent_guidance",
    "agent_reply",
    "survey",
    "outreach",
];
/// Longest part (subject, text or html) of a tenant's template, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

impl EmailSettings {
    /// The tenant's own version of `template` in `language`, if it has one.
    pub fn template(&self, template: &str, language: Language) -> Option<&TemplateOverride> {
        self.templates.get(template)?.get(&language)
    }
}

/// Default [`EmailSettings::retention_days`]: a month covers a follow-up.
pub const DEFAULT_EMAIL_RETENTION_DAYS: u32 = 30;
/// Longest email retention a tenant may configure (HIPAA: minimum necessary).
pub const MAX_EMAIL_RETENTION_DAYS: u32 = 365;

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            queue: None,
            retention_days: DEFAULT_EMAIL_RETENTION_DAYS,
            templates: BTreeMap::new(),
        }
    }
}

/// The chat channel of a tenant.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    /// Widgets that may start chats for this tenant; none: no chat.
    pub widgets: Vec<ChatWidget>,
    /// Queue of a chat whose topic no rule (routing.topics) matches; unset: the tenant's first queue.
    pub queue: Option<String>,
    /// Days a chat transcript is kept after its last message.
    pub retention_days: u32,
}

/// Default [`ChatSettings::retention_days`]: a month covers a follow-up.
pub const DEFAULT_CHAT_RETENTION_DAYS: u32 = 30;
/// Longest chat transcript retention a tenant may configure (HIPAA: minimum necessary).
pub const MAX_CHAT_RETENTION_DAYS: u32 = 365;
/// Most chat widgets one tenant may configure.
pub const MAX_CHAT_WIDGETS: usize = 32;
/// Most allowed origins of one chat widget.
pub const MAX_WIDGET_ORIGINS: usize = 32;
/// Shortest widget key: it is public (it is in the page) but must not be guessable
/// by trying short strings.
pub const MIN_WIDGET_KEY_LEN: usize = 8;
/// Longest widget key.
pub const MAX_WIDGET_KEY_LEN: usize = 128;

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            widgets: Vec::new(),
            queue: None,
            retention_days: DEFAULT_CHAT_RETENTION_DAYS,
        }
    }
}

/// A chat widget: its public key (the `data-key` of the script tag) and the pages that may use it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatWidget {
    /// Public key, unique across tenants: 8-128 of `[A-Za-z0-9_-]`.
    pub key: String,
    /// Origins (`https://host[:port]`) whose pages may open chats with this key;
    /// `"*"` allows any origin and clients that send none (tests, native apps).
    pub allowed_origins: Vec<String>,
}

impl ChatWidget {
    /// Whether a WebSocket from `origin` (`None`: the client sent no Origin header)
    /// may use this widget. Origins compare case-insensitively, as browsers
    /// serialise them in lower case.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        self.allowed_origins.iter().any(|allowed| {
            allowed == "*" || origin.is_some_and(|o| o.eq_ignore_ascii_case(allowed))
        })
    }
}

/// One opening window on some weekdays; `close` before `open` means overnight.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    #[cfg_attr(feature = "schema", schemars(with = "Vec<schema::Weekday>"))]
    pub days: Vec<chrono::Weekday>,
    /// `HH:MM`, local time.
    pub open: String,
    /// `HH:MM`, local time.
    pub close: String,
}

/// A tenant API key, stored as the hex SHA-256 of the key, with what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub sha256: String,
    /// What the key may do; at least one (validation refuses a key without scopes).
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

/// What an API key may do (least privilege: give each integration only what it needs).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Create contacts, watch them, and say the member left (IVR, web forms, intake).
    Intake,
    /// Accept, reject, transfer, set pending and resolve on behalf of any agent (CRM
    /// integrations); agents themselves act through their own session instead.
    AgentActions,
    /// Read contacts, queue and agent statistics, and watch the floor.
    Supervisor,
    /// Everything, including operations such as replaying dead-lettered mail.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are documented.
    pub const ALL: [Scope; 4] = [
        Scope::Intake,
        Scope::AgentActions,
        Scope::Supervisor,
        Scope::Admin,
    ];

    /// Whether a key with the scopes `have` may do what any of `needed` allows
    /// (`admin` allows everything).
    pub fn permits(have: &[Scope], needed: &[Scope]) -> bool {
        have.iter()
            .any(|scope| *scope == Scope::Admin || needed.contains(scope))
    }

    /// The name used in the tenant configuration and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Intake => "intake",
            Scope::AgentActions => "agent_actions",
            Scope::Supervisor => "supervisor",
            Scope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an agent is chosen among the eligible ones.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    LongestIdle,
    MostSkilled,
    RoundRobin,
}

/// Per-channel numbers (seconds, capacity).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerChannelOverride {
    pub voice: Option<u32>,
    pub chat: Option<u32>,
    pub email: Option<u32>,
}

/// Priority aging: after `after_secs` of waiting, one step up, at most to `max_priority`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aging {
    pub after_secs: u32,
    pub max_priority: Priority,
}

/// Tenant-wide routing behaviour, with defaults that suit a small contact center.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// An offer shows the agent the member's last resolved contacts (no
    /// bodies or transcripts): at most `member_history_count` (0: none)...
    pub member_history_count: u32,
    /// ...resolved within this many days.
    pub member_history_days: u32,
    /// Days an ended contact (resolved, abandoned, transferred out) stays readable
    /// through GetInteraction and ListInteractions; the background worker removes it
    /// after. The event log keeps the record for its own retention.
    pub history_retention_days: u32,
    /// Topic rules, tried in order: a contact created without a queue goes to
    /// the queue of the first topic its text is about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicRule>,
}

/// Routes contacts whose text is about one topic to a queue.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// A built-in topic (claims, billing, password, provider_search,
    /// appointment, coverage, pcp_change, complaint) or a topic of your own.
    pub topic: String,
    /// The queue its contacts go to.
    pub queue: String,
    /// Phrases (any language) added to the built-in ones; a topic of your own
    /// needs at least one. `|` separates alternatives for one word, a trailing
    /// `*` matches any ending: `reembolso*`, `lost|stolen card`.
    #[serde(default)]
    pub keywords: Vec<String>,
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
            member_history_count: 5,
            member_history_days: 90,
            history_retention_days: DEFAULT_HISTORY_RETENTION_DAYS,
            topics: Vec::new(),
        }
    }
}

/// A required skill at a minimum proficiency (1-10).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillRequirement {
    pub skill: String,
    pub min_proficiency: u8,
}

/// A queue and the skills its agents need.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// This queue's own opening windows (the tenant's holidays still close
    /// it); without them it keeps the tenant's `hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Vec<OpeningHours>>,
    /// Open around the clock, holidays included (a nurse line); excludes `hours`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_24_7: bool,
    /// At most this many contacts wait in the queue; past it new (non-urgent)
    /// contacts are refused with the other ways to reach the plan. None: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting: Option<u32>,
}

fn default_service_level_secs() -> u32 {
    30
}

/// After `after_secs` in the queue, exactly one of: lower every minimum
/// proficiency by `relax_by`, also accept agents of `widen_to`, or move to `move_to`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowStep {
    pub after_secs: u32,
    pub relax_by: Option<u8>,
    pub widen_to: Option<String>,
    pub move_to: Option<String>,
}

/// An agent who may log in to this tenant.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
/// Most agents one tenant may configure (20,000 are measured in the tests).
pub const MAX_AGENTS: usize = 50_000;
/// Largest stored (JSON) form of one agent: an agent is never split between
/// two NATS messages, so it must fit well within one (1 MiB by default).
pub const MAX_AGENT_JSON_BYTES: usize = 16 * 1024;
/// Largest stored (JSON) form of a tenant without its agents: it is one NATS
/// message, with room left for the list of agent chunks.
pub const MAX_SETTINGS_JSON_BYTES: usize = 256 * 1024;
/// Largest stored (JSON) form of a whole tenant, agents included: every service
/// holds it in memory and parses it on each change.
pub const MAX_TENANT_JSON_BYTES: usize = 32 * 1024 * 1024;
/// Most past contacts an offer may show (`routing.member_history_count`).
pub const MAX_MEMBER_HISTORY_COUNT: u32 = 20;
/// Longest a resolved contact may stay in a member's history (`routing.member_history_days`).
pub const MAX_MEMBER_HISTORY_DAYS: u32 = 730;
/// Default [`RoutingSettings::history_retention_days`]: a week of ended contacts.
pub const DEFAULT_HISTORY_RETENTION_DAYS: u32 = 7;
/// Longest [`RoutingSettings::history_retention_days`]: every ended contact of the
/// period stays in Redis (about 2 KiB each), so longer history belongs in the event log.
pub const MAX_HISTORY_RETENTION_DAYS: u32 = 90;
/// Most topic rules one tenant may configure.
pub const MAX_TOPIC_RULES: usize = 64;
/// Most keywords one topic rule may add.
pub const MAX_TOPIC_KEYWORDS: usize = 100;

impl TenantConfig {
    /// A copy of everything but the agents, which are stored apart when a
    /// tenant is too big for one NATS message.
    pub fn without_agents(&self) -> TenantConfig {
        // Spelled out (no `..`) so a new field cannot be forgotten here.
        let TenantConfig {
            id,
            name,
            time_zone,
            languages,
            hours,
            holidays,
            after_hours_message,
            contact_email,
            portal_url,
            inbound_email_addresses,
            email,
            chat,
            api_keys,
            routing,
            queues,
            agents: _,
            limits,
            surveys,
            outreach,
            quality,
        } = self;
        TenantConfig {
            id: id.clone(),
            name: name.clone(),
            time_zone: time_zone.clone(),
            languages: languages.clone(),
            hours: hours.clone(),
            holidays: holidays.clone(),
            after_hours_message: after_hours_message.clone(),
            contact_email: contact_email.clone(),
            portal_url: portal_url.clone(),
            inbound_email_addresses: inbound_email_addresses.clone(),
            email: email.clone(),
            chat: chat.clone(),
            api_keys: api_keys.clone(),
            routing: routing.clone(),
            queues: queues.clone(),
            agents: Vec::new(),
            limits: *limits,
            surveys: surveys.clone(),
            outreach: outreach.clone(),
            quality: quality.clone(),
        }
    }

    /// The queue new email interactions go to: the configured one, else the first queue.
    pub fn email_queue(&self) -> Option<&str> {
        self.email
            .queue
            .as_deref()
            .or_else(|| self.queues.first().map(|q| q.id.as_str()))
    }

    /// Whether `address` is one of the tenant's inbound addresses (case-insensitive).
    pub fn receives_email_at(&self, address: &str) -> bool {
        self.inbound_email_addresses
            .iter()
            .any(|own| own.eq_ignore_ascii_case(address))
    }

    /// The queue of a chat no topic rule matches: the configured one, else the first queue.
    pub fn chat_queue(&self) -> Option<&str> {
        self.chat
            .queue
            .as_deref()
            .or_else(|| self.queues.first().map(|q| q.id.as_str()))
    }

    /// The queue of the topic rule for `topic` (as the member chose it in the widget).
    pub fn topic_queue(&self, topic: &str) -> Option<&str> {
        self.routing
            .topics
            .iter()
            .find(|rule| rule.topic == topic)
            .map(|rule| rule.queue.as_str())
    }

    /// The chat widget with public key `key`.
    pub fn chat_widget(&self, key: &str) -> Option<&ChatWidget> {
        self.chat.widgets.iter().find(|w| w.key == key)
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
        self.api_key(key_sha256_hex).is_some()
    }

    /// This tenant's API key whose hex SHA-256 is `key_sha256_hex` (any case).
    /// Compares against every key without early exit.
    pub fn api_key(&self, key_sha256_hex: &str) -> Option<&ApiKey> {
        let presented = key_sha256_hex.to_ascii_lowercase();
        self.api_keys.iter().fold(None, |found, key| {
            let same = crate::secret::constant_time_eq(key.sha256.as_bytes(), presented.as_bytes());
            if same { Some(key) } else { found }
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

    /// The hours of queue `queue_id`: open around the clock when it says
    /// `open_24_7`, its own windows (with the tenant's holidays) when it has
    /// some, else the tenant's hours.
    pub fn queue_hours(&self, queue_id: &str) -> BusinessHours {
        let tenant = self.hours();
        match self.queue(queue_id) {
            Some(q) if q.open_24_7 => BusinessHours {
                windows: Vec::new(),
                holidays: Default::default(),
                ..tenant
            },
            Some(QueueConfig {
                hours: Some(own), ..
            }) => BusinessHours {
                windows: hours::windows(own).unwrap_or_default(),
                ..tenant
            },
            _ => tenant,
        }
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
}

#[cfg(test)]
mod tests {
    use super::fixture::{DEMO, HEX_A};
    use super::*;

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
