//! [`Surveys`], the core that knows nothing of gRPC or HTTP: schedules a
//! survey when an interaction is resolved, sends the due ones through the
//! notifications service, records answers once, adds up the scores, and
//! keeps members' contacts and opt-outs. The tenant's `surveys` settings and
//! the domain's policy (`careline_domain::survey`) decide; the store makes
//! every decision atomic across replicas.

use std::sync::Arc;

use careline_bus::{Publisher, Subject, TenantDirectory};
use careline_domain::survey::{self, Ineligible, Resolved, Scores, Tally};
use careline_domain::tenant::SurveySettings;
use careline_domain::{Language, TenantConfig};
use careline_proto::v1;

use crate::SurveyError;
use crate::store::{DAY_MS, Decision, Job, NewAnswer, Recorded, SurveyStore, member_key};
use crate::token::{LinkClaims, LinkKeys};
use crate::validate;

/// The time, in ms since the Unix epoch (tests move it by days).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Entity token of survey events: `careline.<tenant>.survey.answered`.
pub const SURVEY_ENTITY: &str = "survey";
/// Event token of an answer.
pub const ANSWERED: &str = "answered";
/// Notification template of the survey email.
pub const SURVEY_TEMPLATE: &str = "survey";
/// Surveys sent per tenant per pass of the due worker, so one busy tenant
/// cannot hold up the others.
pub const SEND_BUDGET: usize = 64;
/// Surveys counted, by outcome.
pub const SURVEYS_METRIC: &str = "careline_surveys_total";

/// What happened to a resolved interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// Scheduled for its due time.
    Due,
    /// Already scheduled (a redelivery or a second copy).
    Known,
    /// Not surveyed.
    Ineligible(Ineligible),
    /// The tenant is unknown here (deleted, or not yet seen).
    UnknownTenant,
}

/// What a survey page shows for a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLink {
    pub claims: LinkClaims,
    pub tenant_name: String,
    pub answered: bool,
}

/// The survey service's core; cheap to clone.
#[derive(Clone)]
pub struct Surveys {
    pub(crate) store: SurveyStore,
    pub(crate) tenants: Arc<TenantDirectory>,
    pub(crate) keys: LinkKeys,
    pub(crate) link_base: String,
    pub(crate) js: async_nats::jetstream::Context,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Surveys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surveys").finish_non_exhaustive()
    }
}

impl Surveys {
    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    fn settings(&self, tenant: &str) -> Option<Arc<TenantConfig>> {
        self.tenants.get(tenant)
    }

    /// Schedules the survey of a resolved interaction, when the tenant's
    /// settings allow it, at resolution + the tenant's delay.
    pub async fn resolved(
        &self,
        tenant: &str,
        event: &v1::InteractionEvent,
        occurred_at_ms: i64,
    ) -> Result<Scheduled, SurveyError> {
        let Some(config) = self.settings(tenant) else {
            return Ok(Scheduled::UnknownTenant);
        };
        let settings = &config.surveys;
        let facts = Resolved {
            channel: careline_routing::convert::channel_from_proto(event.channel),
            disposition: &event.detail,
            urgent: event.urgent,
            member_ref: &event.member_ref,
        };
        if let Err(why) = survey::eligibility(settings, &facts) {
            return Ok(Scheduled::Ineligible(why));
        }
        let resolved_at = if occurred_at_ms > 0 {
            occurred_at_ms
        } else {
            self.now_ms()
        };
        let job = Job {
            interaction_id: event.interaction_id.clone(),
            member_key: member_key(tenant, &event.member_ref),
            agent_id: event.agent_id.clone(),
            queue_id: event.queue_id.clone(),
            due_ms: resolved_at.saturating_add(secs_ms(settings.delay_secs)),
        };
        Ok(if self.store.enqueue(tenant, &job).await? {
            Scheduled::Due
        } else {
            Scheduled::Known
        })
    }

    /// Sends `tenant`'s surveys due now, at most [`SEND_BUDGET`]; returns how
    /// many were settled.
    pub async fn send_due(&self, tenant: &str) -> Result<usize, SurveyError> {
        let Some(config) = self.settings(tenant) else {
            return Ok(0);
        };
        let now = self.now_ms();
        let claimed = self.store.claim_due(tenant, now, SEND_BUDGET).await?;
        let mut settled = 0;
        for interaction_id in &claimed {
            match self.send_one(&config, interaction_id, now).await {
                Ok(outcome) => {
                    settled += 1;
                    metrics::counter!(SURVEYS_METRIC, "outcome" => outcome).increment(1);
                    tracing::info!(tenant, interaction_id, outcome, "survey settled");
                }
                // Still claimed: another pass takes it again when the lease ends.
                Err(error) => {
                    tracing::warn!(%error, tenant, interaction_id, "survey not sent yet; retrying after the lease")
                }
            }
        }
        Ok(settled)
    }

    async fn send_one(
        &self,
        config: &TenantConfig,
        interaction_id: &str,
        now: i64,
    ) -> Result<&'static str, SurveyError> {
        let settings = &config.surveys;
        let tenant = config.id.as_str();
        let decision = self
            .store
            .decide(
                tenant,
                interaction_id,
                now,
                days_ms(settings.window_days),
                days_ms(settings.link_valid_days),
            )
            .await?;
        let (address, language, agent_id) = match decision {
            Decision::Send {
                address,
                language,
                agent_id,
            } => (address, language, agent_id),
            Decision::Skip(outcome) => return Ok(outcome_word(&outcome)),
        };
        let language = Language::from_code(&language)
            .or_else(|| config.languages.first().copied())
            .unwrap_or(Language::En);
        let token = self.keys.sign(&LinkClaims {
            tenant: tenant.to_owned(),
            interaction_id: interaction_id.to_owned(),
            agent_id,
            expires_at_ms: now.saturating_add(days_ms(settings.link_valid_days)),
            language,
        })?;
        let request = v1::NotificationRequested {
            notification_id: notification_id(interaction_id),
            tenant_id: tenant.to_owned(),
            template: SURVEY_TEMPLATE.to_owned(),
            language: language.as_str().to_owned(),
            to_address: address,
            interaction_id: interaction_id.to_owned(),
            variables: [(
                "survey_url".to_owned(),
                format!("{}/s/{token}", self.link_base),
            )]
            .into(),
            ..Default::default()
        };
        // The notification id is the idempotency key: a retry after a crash
        // here asks notifications for the same one email.
        careline_bus::notification::publish_request(&self.js, &request, &request.notification_id)
            .await?;
        self.store.finish(tenant, interaction_id).await?;
        Ok("sent")
    }

    /// What the page shows for `token`: forged or expired links are errors.
    pub async fn open(&self, token: &str) -> Result<OpenLink, SurveyError> {
        let claims = self.keys.verify(token, self.now_ms())?;
        let tenant_name = self
            .settings(&claims.tenant)
            .map(|config| config.name.clone())
            .unwrap_or_default();
        let answered = self
            .store
            .answered(&claims.tenant, &claims.interaction_id)
            .await?;
        Ok(OpenLink {
            claims,
            tenant_name,
            answered,
        })
    }

    /// Records the answer to the survey of `token`; `caller` (the API key's
    /// tenant, for gRPC) must be the token's tenant. Nothing is stored for a
    /// forged, expired or answered survey.
    pub async fn submit(
        &self,
        caller: Option<&str>,
        token: &str,
        scores: Scores,
        comment: &str,
    ) -> Result<LinkClaims, SurveyError> {
        let now = self.now_ms();
        let claims = self.keys.verify(token, now)?;
        if caller.is_some_and(|caller| caller != claims.tenant) {
            return Err(SurveyError::OtherTenant);
        }
        let comment = validate::comment(comment)?;
        let retention = self
            .settings(&claims.tenant)
            .map(|config| config.surveys.retention_days)
            .unwrap_or(SurveySettings::default().retention_days);
        let keep_ms = days_ms(retention);
        let recorded = self
            .store
            .record_answer(
                &claims.tenant,
                &claims.interaction_id,
                &NewAnswer {
                    scores,
                    comment,
                    now_ms: now,
                    keep_ms,
                    oldest_ms: now.saturating_sub(keep_ms),
                },
            )
            .await?;
        match recorded {
            Recorded::New { queue_id, agent_id } => {
                self.publish_answer(
                    &claims,
                    &queue_id,
                    &agent_id,
                    scores,
                    !comment.is_empty(),
                    now,
                )
                .await;
                metrics::counter!(SURVEYS_METRIC, "outcome" => "answered").increment(1);
                tracing::info!(tenant = %claims.tenant, interaction_id = %claims.interaction_id, "survey answered");
                Ok(claims)
            }
            Recorded::Already => Err(SurveyError::AlreadyAnswered),
            // The link is genuine but its survey record is gone: its time is up.
            Recorded::Unknown => Err(SurveyError::Expired),
        }
    }

    /// Publishes the answer for the supervisors' KPIs. The answer is already
    /// stored; a bus failure is logged, not turned into a failed answer.
    async fn publish_answer(
        &self,
        claims: &LinkClaims,
        queue_id: &str,
        agent_id: &str,
        scores: Scores,
        has_comment: bool,
        now: i64,
    ) {
        let event = v1::Event {
            event_id: format!("survey:{}", claims.interaction_id),
            tenant_id: claims.tenant.clone(),
            occurred_at_ms: now,
            sequence: 0,
            payload: Some(v1::event::Payload::SurveyAnswered(v1::SurveyAnswered {
                interaction_id: claims.interaction_id.clone(),
                queue_id: queue_id.to_owned(),
                agent_id: agent_id.to_owned(),
                recommend: scores.recommend.into(),
                hire_agent: scores.hire_agent.into(),
                ease: scores.ease.into(),
                has_comment,
            })),
        };
        let published = match Subject::new(&claims.tenant, SURVEY_ENTITY, ANSWERED) {
            Ok(subject) => Publisher::new(self.js.clone())
                .publish(&subject, &event)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = published {
            tracing::error!(%error, interaction_id = %claims.interaction_id, "survey answer stored but not published");
        }
    }

    /// Scores of `tenant`'s answers in `[from_ms, to_ms)` (`to_ms` 0: now),
    /// optionally of one queue or agent; true when truncated.
    pub async fn stats(
        &self,
        tenant: &str,
        queue_id: &str,
        agent_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Tally, bool), SurveyError> {
        let to_ms = if to_ms > 0 {
            to_ms
        } else {
            self.now_ms().saturating_add(1)
        };
        if from_ms < 0 || from_ms >= to_ms {
            return Err(SurveyError::Invalid(format!(
                "from_ms ({from_ms}) must be at least 0 and before to_ms ({to_ms})"
            )));
        }
        let (answers, truncated) = self.store.answers(tenant, from_ms, to_ms).await?;
        let mut tally = Tally::default();
        answers
            .iter()
            .filter(|a| queue_id.is_empty() || a.queue_id == queue_id)
            .filter(|a| agent_id.is_empty() || a.agent_id == agent_id)
            .for_each(|a| tally.add(a.scores));
        Ok((tally, truncated))
    }

    /// `member_ref` of `tenant` gets no more surveys.
    pub async fn opt_out(&self, tenant: &str, member_ref: &str) -> Result<(), SurveyError> {
        let member_ref = validate::member_ref(member_ref)?;
        self.store
            .opt_out(tenant, &member_key(tenant, member_ref))
            .await
    }

    /// Where `member_ref`'s surveys go; kept the tenant's survey retention.
    pub async fn set_contact(
        &self,
        tenant: &str,
        member_ref: &str,
        address: &str,
        language: &str,
    ) -> Result<(), SurveyError> {
        let member_ref = validate::member_ref(member_ref)?;
        let address = validate::address(address)?;
        let language = validate::language(language)?;
        let retention = self
            .settings(tenant)
            .map(|config| config.surveys.retention_days)
            .unwrap_or(SurveySettings::default().retention_days);
        self.store
            .set_contact(
                tenant,
                &member_key(tenant, member_ref),
                address,
                language.map(Language::as_str).unwrap_or_default(),
                days_ms(retention),
            )
            .await
    }
}

/// The notification id of `interaction_id`'s survey email.
pub fn notification_id(interaction_id: &str) -> String {
    format!("survey:{interaction_id}")
}

fn outcome_word(outcome: &str) -> &'static str {
    match outcome {
        "throttled" => "throttled",
        "opted_out" => "opted_out",
        "no_contact" => "no_contact",
        "done" => "done",
        _ => "gone",
    }
}

fn days_ms(days: u32) -> i64 {
    i64::from(days).saturating_mul(DAY_MS)
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}
