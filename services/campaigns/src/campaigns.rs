//! [`Campaigns`], the core that knows nothing of gRPC: adds targets, runs
//! each campaign's due targets (claim, suppression, pacing, the outbound
//! voice interaction or the email), records attempt results and retries,
//! suppresses members, takes call-back requests, attributes resolutions and
//! reads the figures. The tenant's `outreach` settings and the domain's rules
//! (`careline_domain::campaign`) decide; the store makes every step atomic
//! across replicas. Member references and contact hints never reach a log,
//! a span or an event: events carry the opaque member key.

use std::collections::BTreeMap;
use std::sync::Arc;

use careline_bus::{Publisher, Subject, TenantDirectory};
use careline_domain::campaign::{self, AttemptResult, CampaignConfig, NextStep, Schedule};
use careline_domain::channel::MAX_QUEUED_SINCE_AGE_MS;
use careline_domain::{Channel, Language, Priority, TenantConfig};
use careline_proto::v1;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::CampaignError;
use crate::router::RouterGateway;
use crate::store::{Attempt, CampaignStore, NewTarget, Started, member_key};
use crate::validate;

/// The time, in ms since the Unix epoch (tests set it to a chosen instant).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Entity token of campaign events: `careline.<tenant>.campaign.<kind>`.
pub const CAMPAIGN_ENTITY: &str = "campaign";
/// The interaction attribute naming its campaign (outbound, and inbound for attribution).
pub const CAMPAIGN_ATTRIBUTE: &str = "campaign";
/// Targets claimed per campaign per pass of the worker, so one big campaign
/// (or tenant) cannot hold up the others.
pub const CLAIM_BUDGET: usize = 32;
/// Attempts of one pass started at once.
pub const ATTEMPT_CONCURRENCY: usize = 8;
/// How long a target whose member is in an open interaction waits before
/// it is looked at again (no attempt is used).
pub const OPEN_INTERACTION_DEFER_MS: i64 = 15 * 60 * 1000;
/// Outbound contacts are routed at this priority: below every inbound
/// contact (inbound is normal or above; urgent is always first).
pub const OUTBOUND_PRIORITY: v1::Priority = v1::Priority::Low;
/// Campaign steps counted, by step and outcome.
pub const STEPS_METRIC: &str = "careline_campaign_steps_total";
/// Failed attempts counted, by tenant, campaign and reason (`not_started`, `lease_expired`).
pub const FAILED_METRIC: &str = "careline_campaign_attempts_failed_total";
/// Reason of an attempt the router refused or could not be asked for.
pub const FAILED_NOT_STARTED: &str = "not_started";
/// Reason of an attempt whose lease ran out without a result.
pub const FAILED_LEASE_EXPIRED: &str = "lease_expired";

/// The campaigns service's core; cheap to clone.
#[derive(Clone)]
pub struct Campaigns {
    pub(crate) store: CampaignStore,
    pub(crate) tenants: Arc<TenantDirectory>,
    pub(crate) router: RouterGateway,
    pub(crate) js: async_nats::jetstream::Context,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Campaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaigns").finish_non_exhaustive()
    }
}

/// A campaign's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignStats {
    pub targets: u64,
    pub due: u64,
    pub in_progress: u64,
    pub attempts: u64,
    pub results: BTreeMap<String, u64>,
    pub dispositions: BTreeMap<String, u64>,
    pub outcome_tags: BTreeMap<String, u64>,
    pub in_window: bool,
    /// Failed attempts by reason (`not_started`, `lease_expired`).
    pub failed_by_reason: BTreeMap<String, u64>,
}

impl Campaigns {
    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default()
    }

    fn config(&self, tenant: &str) -> Result<Arc<TenantConfig>, CampaignError> {
        self.tenants.get(tenant).ok_or_else(|| {
            CampaignError::Unavailable(format!("tenant {tenant:?} is not loaded yet; try again"))
        })
    }

    fn campaign<'a>(
        config: &'a TenantConfig,
        code: &str,
    ) -> Result<&'a CampaignConfig, CampaignError> {
        config
            .outreach
            .campaign(code)
            .ok_or_else(|| CampaignError::UnknownCampaign(code.to_owned()))
    }

    /// Adds `targets` to campaign `code`; returns (added, already known).
    pub async fn add_targets(
        &self,
        tenant: &str,
        code: &str,
        targets: &[v1::CampaignTarget],
    ) -> Result<(u32, u32), CampaignError> {
        let config = self.config(tenant)?;
        Self::campaign(&config, code)?;
        validate::batch(targets.len())?;
        // Check the whole batch first: a bad target adds nothing.
        let mut checked = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            let at = |e: CampaignError| CampaignError::Invalid(format!("targets[{i}]: {e}"));
            let member_ref = validate::member_ref(&target.member_ref).map_err(at)?;
            let contact_hint = validate::contact_hint(&target.contact_hint).map_err(at)?;
            let language = validate::language(target.language).map_err(at)?;
            let priority = validate::priority(target.priority).map_err(at)?;
            checked.push((member_ref, contact_hint, language, priority));
        }
        let now = self.now_ms();
        let (mut added, mut known) = (0, 0);
        for (member_ref, contact_hint, language, priority) in checked {
            let new = NewTarget {
                member_ref,
                contact_hint,
                language: language.map(Language::as_str).unwrap_or_default(),
                high: priority.band() <= Priority::High.band(),
                priority: priority_name(priority),
                due_ms: now,
                queued_since_ms: 0,
            };
            if self.store.add_target(tenant, code, &new).await? {
                added += 1;
                self.publish(
                    tenant,
                    code,
                    &member_key(tenant, member_ref),
                    "target_added",
                    0,
                    "",
                )
                .await;
            } else {
                known += 1;
            }
        }
        metrics::counter!(STEPS_METRIC, "step" => "target_added").increment(u64::from(added));
        Ok((added, known))
    }

    /// `member_ref` is contacted by no campaign of `tenant`.
    pub async fn suppress(&self, tenant: &str, member_ref: &str) -> Result<(), CampaignError> {
        let member_ref = validate::member_ref(member_ref)?;
        let member = member_key(tenant, member_ref);
        self.store.suppress(tenant, &member).await?;
        self.publish(tenant, "", &member, "suppressed", 0, "opted_out")
            .await;
        Ok(())
    }

    /// Adds a call-back target for `member_ref` to the tenant's call-back
    /// campaign, placed by the waiting interaction's creation time and band
    /// (now and normal without an interaction: the chat widget when closed).
    pub async fn request_callback(
        &self,
        tenant: &str,
        member_ref: &str,
        interaction_id: &str,
        contact_hint: &str,
        language: i32,
    ) -> Result<(String, bool), CampaignError> {
        let config = self.config(tenant)?;
        let code = config
            .outreach
            .campaigns
            .iter()
            .find(|c| c.callback)
            .map(|c| c.code.clone())
            .ok_or(CampaignError::NoCallbackCampaign)?;
        let member_ref = validate::member_ref(member_ref)?;
        let contact_hint = validate::contact_hint(contact_hint)?;
        let language = validate::language(language)?;
        // The place in line is when the member first queued, in the band they
        // queued at: call-backs are made in that order, and the router queues
        // each at that place among the inbound contacts.
        let (queued_at, priority) = if interaction_id.trim().is_empty() {
            (self.now_ms(), Priority::Normal)
        } else {
            self.router
                .get(tenant, interaction_id.trim())
                .await?
                .filter(|ix| ix.member_ref == member_ref)
                .map(|ix| {
                    let band = validate::priority(ix.priority).unwrap_or(Priority::Normal);
                    (ix.created_at_ms, band)
                })
                .ok_or_else(|| {
                    CampaignError::Invalid(format!(
                        "interaction_id {:?} is not an interaction of this member",
                        interaction_id.trim()
                    ))
                })?
        };
        let new = NewTarget {
            member_ref,
            contact_hint,
            language: language.map(Language::as_str).unwrap_or_default(),
            high: false,
            priority: priority_name(priority),
            due_ms: queued_at,
            queued_since_ms: queued_at,
        };
        let added = self.store.add_target(tenant, &code, &new).await?;
        if added {
            self.publish(
                tenant,
                &code,
                &member_key(tenant, member_ref),
                "callback_requested",
                0,
                "",
            )
            .await;
        }
        Ok((code, added))
    }

    /// Records the result of the member's attempt in campaign `code`; returns
    /// the next attempt's time (0: none) and the target's state.
    pub async fn report(
        &self,
        tenant: &str,
        code: &str,
        member_ref: &str,
        result: AttemptResult,
    ) -> Result<(i64, &'static str), CampaignError> {
        let config = self.config(tenant)?;
        let campaign = Self::campaign(&config, code)?;
        let member_ref = validate::member_ref(member_ref)?;
        let member = member_key(tenant, member_ref);
        let attempt = self
            .store
            .active_attempt(tenant, code, &member)
            .await?
            .ok_or_else(|| CampaignError::NoAttempt(code.to_owned()))?;
        let now = self.now_ms();
        let (next_ms, state) = match campaign::next_step(&campaign.retry, attempt, result, now) {
            NextStep::RetryAt(at) => (at, "due"),
            NextStep::Done(outcome) => (0, outcome),
        };
        let reached_ms = i64::from(config.outreach.reached_suppress_days)
            .saturating_mul(crate::store::HOUR_MS * 24);
        let recorded = self
            .store
            .report(
                tenant,
                code,
                &member,
                attempt,
                result.as_str(),
                next_ms,
                state,
                reached_ms,
            )
            .await?;
        if !recorded {
            return Err(CampaignError::NoAttempt(code.to_owned()));
        }
        metrics::counter!(STEPS_METRIC, "step" => "attempt_result", "outcome" => result.as_str())
            .increment(1);
        tracing::info!(
            tenant,
            campaign = code,
            attempt,
            result = result.as_str(),
            state,
            "attempt result recorded"
        );
        self.publish(
            tenant,
            code,
            &member,
            "attempt_result",
            attempt,
            result.as_str(),
        )
        .await;
        Ok((next_ms, state))
    }

    /// Campaign `code`'s figures.
    pub async fn stats(&self, tenant: &str, code: &str) -> Result<CampaignStats, CampaignError> {
        let config = self.config(tenant)?;
        let campaign = Self::campaign(&config, code)?;
        let stored = self.store.stats(tenant, code).await?;
        let mut stats = CampaignStats {
            due: stored.due,
            in_progress: stored.in_progress,
            in_window: Schedule::new(&config, campaign).is_ok_and(|s| s.allows(self.now())),
            ..CampaignStats::default()
        };
        for (name, count) in stored.counters {
            if let Some(result) = name.strip_prefix("r:") {
                stats.results.insert(result.to_owned(), count);
            } else if let Some(disposition) = name.strip_prefix("d:") {
                stats.dispositions.insert(disposition.to_owned(), count);
            } else if let Some(tag) = name.strip_prefix("o:") {
                stats.outcome_tags.insert(tag.to_owned(), count);
            } else if let Some(reason) = name.strip_prefix("f:") {
                stats.failed_by_reason.insert(reason.to_owned(), count);
            } else if name == "targets" {
                stats.targets = count;
            } else if name == "attempts" {
                stats.attempts = count;
            }
        }
        Ok(stats)
    }

    /// Runs `tenant`'s campaigns once: each one inside its window claims its
    /// due targets within pacing and attempts them. Returns attempts started.
    pub async fn run_due(&self, tenant: &str) -> Result<usize, CampaignError> {
        let Some(config) = self.tenants.get(tenant) else {
            return Ok(0);
        };
        let now = self.now();
        let mut started = 0;
        for campaign in &config.outreach.campaigns {
            let schedule = match Schedule::new(&config, campaign) {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::warn!(%error, tenant, campaign = %campaign.code, "campaign schedule unreadable; skipped");
                    continue;
                }
            };
            if !schedule.allows(now) {
                continue;
            }
            match self.run_campaign(&config, campaign).await {
                Ok(n) => started += n,
                Err(error) => {
                    tracing::warn!(%error, tenant, campaign = %campaign.code, "campaign pass failed; retrying next pass")
                }
            }
        }
        Ok(started)
    }

    async fn run_campaign(
        &self,
        config: &TenantConfig,
        campaign: &CampaignConfig,
    ) -> Result<usize, CampaignError> {
        let tenant = config.id.as_str();
        let agents_serving = match (&campaign.channel, &campaign.queue) {
            // Call-backs are inbound contacts kept for later: they queue at
            // their members' places among the others, so neither waiting
            // inbound contacts nor the agent share hold them back.
            (Channel::Voice, Some(_)) if campaign.callback => None,
            (Channel::Voice, Some(queue)) => {
                let load = self.router.queue_load(tenant, queue).await?;
                // Inbound contacts waiting: every free agent is theirs first.
                if load.inbound_waiting > 0 {
                    return Ok(0);
                }
                Some(load.agents_serving)
            }
            _ => None,
        };
        let cap = campaign::in_progress_cap(&campaign.pacing, agents_serving);
        let now = self.now_ms();
        let claimed = self
            .store
            .claim_due(
                tenant,
                &campaign.code,
                now,
                cap,
                campaign.pacing.max_per_hour,
                CLAIM_BUDGET,
            )
            .await?;
        // A pass's attempts run side by side (each is a few Redis calls and
        // one router create), at most ATTEMPT_CONCURRENCY at once; call-backs
        // one by one, so the router queues them in the order members first queued.
        let concurrency = if campaign.callback {
            1
        } else {
            ATTEMPT_CONCURRENCY
        };
        let started = futures::stream::iter(claimed)
            .map(|member| self.start_one(config, campaign, member, now))
            .buffer_unordered(concurrency)
            .try_fold(0, |n, started| async move { Ok(n + usize::from(started)) })
            .await?;
        Ok(started)
    }

    /// Starts (or settles, or defers) one claimed target; true when an attempt started.
    async fn start_one(
        &self,
        config: &TenantConfig,
        campaign: &CampaignConfig,
        member: String,
        now: i64,
    ) -> Result<bool, CampaignError> {
        let tenant = config.id.as_str();
        let step = self
            .store
            .start_attempt(
                tenant,
                &campaign.code,
                &member,
                now,
                OPEN_INTERACTION_DEFER_MS,
            )
            .await?;
        match step {
            Started::Attempt(attempt) => {
                if attempt.lease_expired {
                    // Counted by the store as it took the target back.
                    tracing::warn!(tenant, campaign = %campaign.code, attempt = attempt.attempt, "attempt's lease ran out without a result; made again");
                    failed_metric(tenant, &campaign.code, FAILED_LEASE_EXPIRED);
                }
                // A failure leaves the claim to run out; the same attempt is tried again.
                match self.attempt(config, campaign, &attempt).await {
                    Ok(()) => return Ok(true),
                    Err(error) => {
                        tracing::warn!(%error, tenant, campaign = %campaign.code, attempt = attempt.attempt, "attempt not started; retried after the claim lease");
                        failed_metric(tenant, &campaign.code, FAILED_NOT_STARTED);
                        self.store
                            .attempt_failed(tenant, &campaign.code, FAILED_NOT_STARTED)
                            .await?;
                    }
                }
            }
            Started::Skipped(why) => {
                metrics::counter!(STEPS_METRIC, "step" => "skipped", "outcome" => why.clone())
                    .increment(1);
                self.publish(tenant, &campaign.code, &member, "suppressed", 0, &why)
                    .await;
            }
        }
        Ok(false)
    }

    async fn attempt(
        &self,
        config: &TenantConfig,
        campaign: &CampaignConfig,
        attempt: &Attempt,
    ) -> Result<(), CampaignError> {
        let tenant = config.id.as_str();
        let code = campaign.code.as_str();
        let language = Language::from_code(&attempt.language)
            .or(campaign.language)
            .or_else(|| config.languages.first().copied())
            .unwrap_or(Language::En);
        let key = format!("campaign:{code}:{}:{}", attempt.member_key, attempt.attempt);
        let detail = match campaign.channel {
            Channel::Email => {
                let request = v1::NotificationRequested {
                    notification_id: key.clone(),
                    tenant_id: tenant.to_owned(),
                    template: campaign.template.clone().unwrap_or_default(),
                    language: language.as_str().to_owned(),
                    to_address: attempt.contact_hint.clone(),
                    variables: [("campaign_name".to_owned(), campaign.name.clone())].into(),
                    ..Default::default()
                };
                // The notification id is the idempotency key: a retry after a
                // crash here asks notifications for the same one email.
                careline_bus::notification::publish_request(&self.js, &request, &key).await?;
                self.store
                    .attempt_started(tenant, code, &attempt.member_key, self.now_ms(), None)
                    .await?;
                self.store
                    .report(
                        tenant,
                        code,
                        &attempt.member_key,
                        attempt.attempt,
                        "emailed",
                        0,
                        "emailed",
                        0,
                    )
                    .await?;
                key
            }
            _ => {
                let create = outbound_interaction(campaign, attempt, language, key, self.now_ms());
                let created = self.router.create(tenant, create).await?;
                let id = created.interaction.map(|ix| ix.id).unwrap_or_default();
                self.store
                    .attempt_started(tenant, code, &attempt.member_key, self.now_ms(), Some(&id))
                    .await?;
                id
            }
        };
        metrics::counter!(STEPS_METRIC, "step" => "attempt_started", "outcome" => campaign.channel.as_str()).increment(1);
        tracing::info!(tenant, campaign = code, attempt = attempt.attempt, detail = %detail, "attempt started");
        self.publish(
            tenant,
            code,
            &attempt.member_key,
            "attempt_started",
            attempt.attempt,
            &detail,
        )
        .await;
        Ok(())
    }

    /// An interaction event: keeps the members' open interactions and adds
    /// resolutions of campaign interactions (outbound, or inbound carrying a
    /// campaign code) to their campaign's figures.
    pub async fn interaction_event(
        &self,
        tenant: &str,
        event: &v1::InteractionEvent,
    ) -> Result<(), CampaignError> {
        use v1::InteractionEventKind as Kind;
        let Some(config) = self.tenants.get(tenant) else {
            return Ok(());
        };
        if config.outreach.campaigns.is_empty() {
            return Ok(());
        }
        let kind = Kind::try_from(event.kind).unwrap_or(Kind::Unspecified);
        let member = (!event.member_ref.is_empty()).then(|| member_key(tenant, &event.member_ref));
        match kind {
            Kind::Created => {
                if let Some(member) = &member {
                    self.store
                        .set_open(tenant, member, &event.interaction_id, true)
                        .await?;
                }
            }
            Kind::Resolved | Kind::Abandoned | Kind::TransferredExternal => {
                if let Some(member) = &member {
                    self.store
                        .set_open(tenant, member, &event.interaction_id, false)
                        .await?;
                }
                if kind == Kind::Resolved {
                    self.attribute(&config, event).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn attribute(
        &self,
        config: &TenantConfig,
        event: &v1::InteractionEvent,
    ) -> Result<(), CampaignError> {
        let tenant = config.id.as_str();
        let code = match self
            .store
            .campaign_of(tenant, &event.interaction_id)
            .await?
        {
            Some(code) => Some(code),
            // Inbound: the attribute its intake (IVR number, link) set.
            None if self.router.has_key(tenant) => self
                .router
                .get(tenant, &event.interaction_id)
                .await?
                .and_then(|ix| ix.context)
                .and_then(|context| context.attributes.get(CAMPAIGN_ATTRIBUTE).cloned()),
            None => None,
        };
        let Some(code) = code.filter(|code| config.outreach.campaign(code).is_some()) else {
            return Ok(());
        };
        if self
            .store
            .attribute(
                tenant,
                &code,
                &event.interaction_id,
                &event.detail,
                &event.outcome_tags,
            )
            .await?
        {
            tracing::info!(tenant, campaign = %code, interaction_id = %event.interaction_id, "resolution attributed");
        }
        Ok(())
    }

    /// Publishes a campaign step. The step is already stored; a bus failure is
    /// logged, not turned into a failed step.
    async fn publish(
        &self,
        tenant: &str,
        code: &str,
        member: &str,
        kind: &str,
        attempt: u32,
        detail: &str,
    ) {
        let event = v1::Event {
            event_id: format!("campaign:{code}:{member}:{kind}:{attempt}"),
            tenant_id: tenant.to_owned(),
            occurred_at_ms: self.now_ms(),
            sequence: 0,
            payload: Some(v1::event::Payload::Campaign(v1::CampaignEvent {
                campaign_code: code.to_owned(),
                kind: kind.to_owned(),
                member_key: member.to_owned(),
                attempt,
                detail: detail.to_owned(),
            })),
        };
        let published = match Subject::new(tenant, CAMPAIGN_ENTITY, kind) {
            Ok(subject) => Publisher::new(self.js.clone())
                .publish(&subject, &event)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = published {
            tracing::warn!(%error, tenant, campaign = code, kind, "campaign step stored but its event not published");
        }
    }
}

/// The router request of a voice attempt: preview mode, the campaign's
/// queue, below every inbound contact (a call-back: at its member's place
/// among them), the contact hint for the agent's telephony in the
/// attributes, one interaction per attempt (idempotency key).
fn outbound_interaction(
    campaign: &CampaignConfig,
    attempt: &Attempt,
    language: Language,
    idempotency_key: String,
    now_ms: i64,
) -> v1::CreateInteractionRequest {
    let language = match language {
        Language::En => v1::Language::En,
        Language::Es => v1::Language::Es,
    };
    // A call-back older than the router accepts queues as new, at its band.
    let (priority, queued_since_ms) = if campaign.callback {
        let queued = attempt.queued_since_ms;
        let kept = queued > 0 && now_ms - queued < MAX_QUEUED_SINCE_AGE_MS;
        (
            routed_priority(&attempt.priority),
            if kept { queued } else { 0 },
        )
    } else {
        (OUTBOUND_PRIORITY, 0)
    };
    let attributes = [
        (CAMPAIGN_ATTRIBUTE.to_owned(), campaign.code.clone()),
        ("direction".to_owned(), "outbound".to_owned()),
        ("attempt".to_owned(), attempt.attempt.to_string()),
        ("contact_hint".to_owned(), attempt.contact_hint.clone()),
        ("target_priority".to_owned(), attempt.priority.clone()),
    ];
    v1::CreateInteractionRequest {
        channel: v1::Channel::Voice as i32,
        queue_id: campaign.queue.clone().unwrap_or_default(),
        language: language as i32,
        urgent: false,
        priority: priority as i32,
        member_ref: attempt.member_ref.clone(),
        context: Some(v1::InteractionContext {
            reason: format!("Outreach: {}", campaign.name),
            attributes: attributes.into_iter().collect(),
            ..Default::default()
        }),
        idempotency_key,
        queued_since_ms,
    }
}

fn failed_metric(tenant: &str, code: &str, reason: &'static str) {
    metrics::counter!(FAILED_METRIC, "tenant" => tenant.to_owned(), "campaign" => code.to_owned(), "reason" => reason)
        .increment(1);
}

/// A target's priority as stored, and as the router takes it.
const PRIORITIES: [(Priority, &str, v1::Priority); 4] = [
    (Priority::Low, "low", v1::Priority::Low),
    (Priority::Normal, "normal", v1::Priority::Normal),
    (Priority::High, "high", v1::Priority::High),
    (Priority::Urgent, "urgent", v1::Priority::Urgent),
];

fn priority_name(priority: Priority) -> &'static str {
    PRIORITIES
        .iter()
        .find(|(p, _, _)| *p == priority)
        .map_or("normal", |(_, name, _)| name)
}

/// The router priority of a stored priority name (normal if unknown).
fn routed_priority(name: &str) -> v1::Priority {
    PRIORITIES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map_or(v1::Priority::Normal, |(_, _, routed)| *routed)
}
