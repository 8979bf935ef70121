//! Outreach campaigns: the tenant's `outreach` settings (when outreach is
//! allowed, each campaign's channel, queue, window, pacing and retries) and
//! the pure rules the campaigns service applies to them: whether a campaign
//! may contact a member at an instant (the tenant's outreach hours, the
//! campaign's own window, its end date, all in the tenant's time zone, so
//! right across daylight-saving changes), how many contacts pacing lets be
//! in progress, and what follows an attempt's result.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::hours::{self, BusinessHours};
use crate::tenant::{OpeningHours, TenantConfig};
use crate::{Channel, Error, Language};

/// When a tenant may reach out, and its campaigns.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutreachSettings {
    /// Hours (tenant's time zone) in which any campaign may contact members;
    /// required once a campaign is configured. The tenant's holidays apply.
    pub hours: Vec<OpeningHours>,
    /// Days a member reached by one campaign is not contacted by any campaign.
    pub reached_suppress_days: u32,
    /// The tenant's campaigns.
    pub campaigns: Vec<CampaignConfig>,
}

/// Default [`OutreachSettings::reached_suppress_days`].
pub const DEFAULT_REACHED_SUPPRESS_DAYS: u32 = 30;
/// Longest suppression after a member was reached (a year).
pub const MAX_REACHED_SUPPRESS_DAYS: u32 = 365;
/// Most campaigns one tenant may configure.
pub const MAX_CAMPAIGNS: usize = 64;

impl Default for OutreachSettings {
    fn default() -> Self {
        Self {
            hours: Vec::new(),
            reached_suppress_days: DEFAULT_REACHED_SUPPRESS_DAYS,
            campaigns: Vec::new(),
        }
    }
}

impl OutreachSettings {
    /// The campaign with `code`.
    pub fn campaign(&self, code: &str) -> Option<&CampaignConfig> {
        self.campaigns.iter().find(|c| c.code == code)
    }
}

/// One campaign: who it is routed to, when, how fast, how often retried.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Unique code, `[a-z0-9_-]`, 1-64: named in every call, and the code
    /// inbound interactions carry for attribution (attribute `campaign`).
    pub code: String,
    /// Name for people.
    pub name: String,
    /// `voice` (preview call-backs offered to agents) or `email`.
    pub channel: Channel,
    /// Voice: the queue whose agents (its skills) take the outbound contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Language of a target that names none; unset: the tenant's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// The campaign's own hours, within the outreach hours; none: the outreach hours.
    #[serde(default)]
    pub window: Vec<OpeningHours>,
    /// Last local day the campaign contacts anyone; unset: no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<NaiveDate>,
    /// How fast it may go.
    #[serde(default)]
    pub pacing: Pacing,
    /// Retries after no answer or busy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Email: the notifications template sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The tenant's call-back campaign: `RequestCallback` adds targets to it.
    #[serde(default)]
    pub callback: bool,
}

/// How fast a campaign may go.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pacing {
    /// Contacts started and not yet reported, at most.
    pub max_in_progress: u32,
    /// Contacts started per clock hour, at most.
    pub max_per_hour: u32,
    /// Voice: percent of the logged-in agents serving the queue that outbound
    /// contacts in progress may occupy (the rest stays for inbound).
    pub agent_share_percent: u32,
}

/// Default [`Pacing`]: a cautious start.
impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_in_progress: 5,
            max_per_hour: 100,
            agent_share_percent: 30,
        }
    }
}

/// Most contacts in progress a campaign may allow.
pub const MAX_IN_PROGRESS: u32 = 10_000;
/// Most contacts per hour a campaign may allow.
pub const MAX_PER_HOUR: u32 = 100_000;

/// Retries after no answer or busy.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Seconds from a no-answer or busy to the next attempt.
    pub spacing_secs: u64,
}

/// Default [`RetryPolicy`]: three attempts, four hours apart.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            spacing_secs: 4 * 60 * 60,
        }
    }
}

/// Most attempts per target.
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest retry spacing (a week).
pub const MAX_RETRY_SPACING_SECS: u64 = 7 * 24 * 60 * 60;

/// When a campaign may contact members: the tenant's outreach hours and
/// holidays, the campaign's window and end date, in the tenant's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    outreach: BusinessHours,
    window: BusinessHours,
    ends_on: Option<NaiveDate>,
}

impl Schedule {
    /// The schedule of `campaign` of `tenant`; fails on a bad zone or time.
    pub fn new(tenant: &TenantConfig, campaign: &CampaignConfig) -> Result<Schedule, Error> {
        let time_zone = hours::parse_time_zone(&tenant.time_zone)?;
        let holidays = tenant.holidays.iter().copied().collect();
        Ok(Schedule {
            outreach: BusinessHours {
                time_zone,
                windows: hours::windows(&tenant.outreach.hours)?,
                holidays,
            },
            window: BusinessHours {
                time_zone,
                windows: hours::windows(&campaign.window)?,
                holidays: Default::default(),
            },
            ends_on: campaign.ends_on,
        })
    }

    /// Whether the campaign may contact a member at `at`. No outreach hours:
    /// never (validation requires them; this keeps a gap from meaning 24/7).
    pub fn allows(&self, at: DateTime<Utc>) -> bool {
        let local_day = at.with_timezone(&self.outreach.time_zone).date_naive();
        !self.outreach.windows.is_empty()
            && self.ends_on.is_none_or(|last| local_day <= last)
            && self.outreach.is_open(at)
            && self.window.is_open(at)
    }

    /// Whether the campaign is past its end date at `at`.
    pub fn ended(&self, at: DateTime<Utc>) -> bool {
        let local_day = at.with_timezone(&self.outreach.time_zone).date_naive();
        self.ends_on.is_some_and(|last| local_day > last)
    }
}

/// Most contacts of a campaign in progress at once: its `max_in_progress`,
/// and for voice (`agents_serving`: the agents logged in to its queue) its
/// share of them, rounded down: with too few agents for one outbound
/// contact, outbound waits and inbound keeps every agent.
pub fn in_progress_cap(pacing: &Pacing, agents_serving: Option<u32>) -> u32 {
    let share = agents_serving.map_or(u64::MAX, |agents| {
        u64::from(agents) * u64::from(pacing.agent_share_percent) / 100
    });
    pacing
        .max_in_progress
        .min(u32::try_from(share).unwrap_or(u32::MAX))
}

/// What an agent (or the telephony) reports after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    Reached,
    NoAnswer,
    Busy,
    WrongNumber,
    Declined,
}

impl AttemptResult {
    /// Every result, in the documented order.
    pub const ALL: [AttemptResult; 5] = [
        AttemptResult::Reached,
        AttemptResult::NoAnswer,
        AttemptResult::Busy,
        AttemptResult::WrongNumber,
        AttemptResult::Declined,
    ];

    /// The name in stats and events.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Reached => "reached",
            AttemptResult::NoAnswer => "no_answer",
            AttemptResult::Busy => "busy",
            AttemptResult::WrongNumber => "wrong_number",
            AttemptResult::Declined => "declined",
        }
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    /// The target is done; the word says how (`reached`, `exhausted`, ...).
    Done(&'static str),
}

/// The step after attempt number `attempt` (1-based) ended with `result` at `now_ms`.
pub fn next_step(
    retry: &RetryPolicy,
    attempt: u32,
    result: AttemptResult,
    now_ms: i64,
) -> NextStep {
    match result {
        AttemptResult::NoAnswer | AttemptResult::Busy if attempt < retry.attempts => {
            let spacing_ms = i64::try_from(retry.spacing_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            NextStep::RetryAt(now_ms.saturating_add(spacing_ms))
        }
        AttemptResult::NoAnswer | AttemptResult::Busy => NextStep::Done("exhausted"),
        other => NextStep::Done(other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tenant(zone: &str) -> TenantConfig {
        let mut config = crate::TenantConfig::from_yaml(include_str!(
            "../../../deploy/tenants/demo-health.yaml"
        ))
        .unwrap();
        config.time_zone = zone.into();
        config.holidays.clear();
        config.outreach.hours = vec![OpeningHours {
            days: vec![
                chrono::Weekday::Mon,
                chrono::Weekday::Tue,
                chrono::Weekday::Wed,
                chrono::Weekday::Thu,
                chrono::Weekday::Fri,
            ],
            open: "09:00".into(),
            close: "20:00".into(),
        }];
        config
    }

    fn campaign() -> CampaignConfig {
        CampaignConfig {
            code: "checkup".into(),
            name: "Check-up".into(),
            channel: Channel::Voice,
            queue: Some("general".into()),
            language: None,
            window: Vec::new(),
            ends_on: None,
            pacing: Pacing::default(),
            retry: RetryPolicy::default(),
            template: None,
            callback: false,
        }
    }

    #[test]
    fn the_outreach_window_follows_local_time_across_the_dst_change() {
        let schedule = Schedule::new(&tenant("America/New_York"), &campaign()).unwrap();
        // 13:30 UTC: 08:30 EST on Friday 6 March 2026 (closed), 09:30 EDT on
        // Monday 9 March, the first weekday after clocks moved forward (open).
        let before = Utc.with_ymd_and_hms(2026, 3, 6, 13, 30, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 9, 13, 30, 0).unwrap();
        assert!(!schedule.allows(before));
        assert!(schedule.allows(after));
        // Autumn: 00:30 UTC Tuesday 3 Nov 2026 is 19:30 EST (open); a week
        // earlier the same instant was 20:30 EDT (closed).
        assert!(schedule.allows(Utc.with_ymd_and_hms(2026, 11, 3, 0, 30, 0).unwrap()));
        assert!(!schedule.allows(Utc.with_ymd_and_hms(2026, 10, 27, 0, 30, 0).unwrap()));
    }

    #[test]
    fn a_campaign_window_only_narrows_the_outreach_hours_and_ends_on_its_last_day() {
        let mut c = campaign();
        c.window = vec![OpeningHours {
            days: vec![chrono::Weekday::Mon, chrono::Weekday::Sat],
            open: "08:00".into(),
            close: "12:00".into(),
        }];
        c.ends_on = NaiveDate::from_ymd_opt(2026, 3, 16);
        let schedule = Schedule::new(&tenant("America/Denver"), &c).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 3, d, h, 30, 0).unwrap();
        // Mondays 9 March, in MDT (UTC-6): 08:30 is before outreach opens, 10:30 inside both.
        assert!(!schedule.allows(at(9, 14)));
        assert!(schedule.allows(at(9, 16)));
        // Saturday is in the campaign window but not in the outreach hours.
        assert!(!schedule.allows(at(14, 16)));
        // The last day still counts; the next Monday is past the end.
        assert!(schedule.allows(at(16, 16)));
        assert!(!schedule.allows(at(23, 16)));
        assert!(schedule.ended(at(23, 16)));
    }

    #[test]
    fn the_agent_share_caps_voice_in_progress_rounding_down() {
        let pacing = Pacing {
            max_in_progress: 10,
            max_per_hour: 50,
            agent_share_percent: 30,
        };
        assert_eq!(in_progress_cap(&pacing, None), 10);
        // 10 agents, 30%: 3 outbound at once; 3 agents: none (inbound keeps them).
        assert_eq!(in_progress_cap(&pacing, Some(10)), 3);
        assert_eq!(in_progress_cap(&pacing, Some(3)), 0);
        assert_eq!(in_progress_cap(&pacing, Some(1_000)), 10);
    }

    #[test]
    fn no_answer_and_busy_retry_until_the_attempts_are_used_the_rest_settle() {
        let retry = RetryPolicy {
            attempts: 2,
            spacing_secs: 60,
        };
        assert_eq!(
            next_step(&retry, 1, AttemptResult::NoAnswer, 1_000),
            NextStep::RetryAt(61_000)
        );
        assert_eq!(
            next_step(&retry, 1, AttemptResult::Busy, 0),
            NextStep::RetryAt(60_000)
        );
        assert_eq!(
            next_step(&retry, 2, AttemptResult::Busy, 0),
            NextStep::Done("exhausted")
        );
        for result in [
            AttemptResult::Reached,
            AttemptResult::WrongNumber,
            AttemptResult::Declined,
        ] {
            assert_eq!(
                next_step(&retry, 1, result, 0),
                NextStep::Done(result.as_str())
            );
        }
    }
}
