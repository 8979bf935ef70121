//! The KPI materialiser: a durable JetStream consumer of the interaction,
//! agent, survey-answer and quality-review events of every tenant, each applied to the tenant's KPIs once
//! ([`KpiStore::apply`]). Every replica pulls from the same durable consumer;
//! an event is acknowledged only after it was applied and redelivered with a
//! growing delay while Redis is away, so no event is lost or counted twice.
//!
//! It also counts the headline figures for Prometheus (per tenant and queue),
//! each once, when the event that completes it is applied.

use std::sync::Arc;
use std::time::Duration;

use careline_bus::{
    Delivery, Subject, SubjectFilter, TenantDirectory, WorkQueueSettings, ensure_consumer_of_all,
};
use careline_domain::survey::{NpsGroup, nps_group};
use careline_kit::Shutdown;
use careline_proto::v1;
use futures::StreamExt;
use tracing::Instrument;

use crate::error::ConsoleError;
use crate::store::{KpiEvent, KpiRules, KpiStore};

/// Entity of survey answers on the log (`careline.<tenant>.survey.answered`).
pub const SURVEY_ENTITY: &str = "survey";
/// Entity of quality reviews and coaching marks (`careline.<tenant>.quality.*`).
pub const QUALITY_ENTITY: &str = "quality";
/// Name of the durable consumer every replica shares.
pub const CONSUMER: &str = "console-kpis";
/// Events applied at once per replica.
pub const MAX_IN_FLIGHT: usize = 32;
/// Time to apply an event before JetStream redelivers it.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Deliveries before an event is given up on (about a day of Redis away).
pub const MAX_DELIVER: i64 = 300;
/// First redelivery delay; doubles per delivery up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest redelivery delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);
/// Pause before pulling again after the consumer failed.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Events handled, by result (applied, duplicate, retry, dropped).
pub const EVENTS_HANDLED: &str = "careline_kpi_events_total";
/// Prefix of the KPI counters (`careline_kpi_answered_total`, ...).
const KPI_METRIC_PREFIX: &str = "careline_kpi_";

/// What the materialiser needs per event.
#[derive(Clone)]
pub struct Materialiser {
    pub store: KpiStore,
    pub tenants: Arc<TenantDirectory>,
    pub short_abandon: Duration,
    pub fcr_window: Duration,
}

impl Materialiser {
    /// Applies one event; `Ok(false)` when it was applied before.
    pub async fn apply(&self, event: &v1::Event) -> Result<bool, ConsoleError> {
        let Some(kpi_event) = kpi_event(event) else {
            return Ok(true);
        };
        let tenant = &event.tenant_id;
        let config = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ConsoleError::UnknownTenant(tenant.clone()))?;
        let service_level_secs = config
            .queues
            .iter()
            .find(|q| q.id == kpi_event.queue_id)
            .map_or(30, |q| q.service_level_secs);
        let rules = KpiRules {
            time_zone: config.hours().time_zone,
            service_level: Duration::from_secs(u64::from(service_level_secs)),
            short_abandon: self.short_abandon,
            fcr_window: self.fcr_window,
        };
        let Some(applied) = self.store.apply(tenant, &kpi_event, &rules).await? else {
            return Ok(false);
        };
        for (name, value) in applied {
            let labels = [
                ("tenant", tenant.clone()),
                ("queue", kpi_event.queue_id.clone()),
            ];
            match name.strip_suffix("_ms") {
                Some(seconds) => {
                    metrics::histogram!(format!("{KPI_METRIC_PREFIX}{seconds}_seconds"), &labels)
                        .record(value as f64 / 1000.0)
                }
                None => metrics::counter!(format!("{KPI_METRIC_PREFIX}{name}_total"), &labels)
                    .increment(u64::try_from(value).unwrap_or(0)),
            }
        }
        Ok(true)
    }
}

fn channel_name(channel: i32) -> &'static str {
    match v1::Channel::try_from(channel) {
        Ok(v1::Channel::Voice) => "voice",
        Ok(v1::Channel::Chat) => "chat",
        Ok(v1::Channel::Email) => "email",
        _ => "",
    }
}

/// The event as the KPI script reads it; None for events KPIs do not use.
pub fn kpi_event(event: &v1::Event) -> Option<KpiEvent> {
    use v1::AgentEventKind as A;
    use v1::InteractionEventKind as I;
    let base = KpiEvent {
        event_id: event.event_id.clone(),
        at_ms: event.occurred_at_ms,
        sequence: event.sequence,
        ..KpiEvent::default()
    };
    match &event.payload {
        Some(v1::event::Payload::Interaction(ix)) => {
            let kind = match I::try_from(ix.kind).ok()? {
                I::Created => "created",
                I::Offered => "offered",
                I::Assigned => "assigned",
                I::Abandoned => "abandoned",
                I::Resolved => "resolved",
                I::Transferred | I::TransferredExternal => "transferred",
                I::OfferTimedOut => "offer_timed_out",
                _ => return None,
            };
            Some(KpiEvent {
                kind,
                interaction_id: ix.interaction_id.clone(),
                queue_id: ix.queue_id.clone(),
                agent_id: ix.agent_id.clone(),
                member_ref: ix.member_ref.clone(),
                channel: channel_name(ix.channel),
                outcome_tags: ix.outcome_tags.clone(),
                ..base
            })
        }
        Some(v1::event::Payload::Agent(agent)) => {
            let kind = match A::try_from(agent.kind).ok()? {
                A::LoggedIn | A::StateChanged | A::LoggedOut => "state",
                A::CapacityReleased => "capacity_released",
                A::Unspecified => return None,
            };
            Some(KpiEvent {
                kind,
                agent_id: agent.agent_id.clone(),
                channel: channel_name(agent.channel),
                state: agent.state.clone(),
                reason: agent.reason.clone(),
                ..base
            })
        }
        Some(v1::event::Payload::SurveyAnswered(answer)) => {
            let recommend = u8::try_from(answer.recommend).ok()?;
            let group = match nps_group(recommend) {
                NpsGroup::Promoter => "nps_promoters",
                NpsGroup::Detractor => "nps_detractors",
                NpsGroup::Passive => "nps_passives",
            };
            Some(KpiEvent {
                kind: "add",
                interaction_id: answer.interaction_id.clone(),
                queue_id: answer.queue_id.clone(),
                agent_id: answer.agent_id.clone(),
                adds: vec![(SURVEYS_ANSWERED.to_owned(), 1), (group.to_owned(), 1)],
                ..base
            })
        }
        Some(v1::event::Payload::QualityScored(scored)) => {
            let mut adds = vec![(QUALITY_REVIEWS.to_owned(), 1)];
            for score in &scored.scores {
                let criterion = &score.criterion_id;
                adds.push((format!("{QUALITY_CRITERION_N}{criterion}"), 1));
                adds.push((
                    format!("{QUALITY_CRITERION_SUM}{criterion}"),
                    i64::from(score.score),
                ));
            }
            Some(KpiEvent {
                kind: "add",
                interaction_id: scored.interaction_id.clone(),
                queue_id: scored.queue_id.clone(),
                agent_id: scored.agent_id.clone(),
                adds,
                ..base
            })
        }
        Some(v1::event::Payload::CoachingMarked(marked)) => Some(KpiEvent {
            kind: "add",
            interaction_id: marked.interaction_id.clone(),
            queue_id: marked.queue_id.clone(),
            agent_id: marked.agent_id.clone(),
            adds: vec![(COACHING_MARKED.to_owned(), 1)],
            ..base
        }),
        _ => None,
    }
}

/// Counter of survey answers (the Prometheus counter `careline_kpi_surveys_answered_total`).
pub const SURVEYS_ANSWERED: &str = "surveys_answered";
/// Counter of quality reviews.
pub const QUALITY_REVIEWS: &str = "quality_reviews";
/// Counter of interactions marked for coaching.
pub const COACHING_MARKED: &str = "coaching_marked";
/// Prefix of a criterion's count of scores (`qn:<criterion>`).
pub const QUALITY_CRITERION_N: &str = "qn:";
/// Prefix of a criterion's sum of scores (`qs:<criterion>`).
pub const QUALITY_CRITERION_SUM: &str = "qs:";

/// The delay before delivery `delivered + 1`.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY_DELAY)
}

/// The subjects the materialiser reads.
pub fn filters() -> Vec<SubjectFilter> {
    ["interaction", "agent", SURVEY_ENTITY, QUALITY_ENTITY]
        .iter()
        .map(|entity| Subject::entity_all(entity).expect("constant subject parts are valid"))
        .collect()
}

/// Applies events until `shutdown`.
pub async fn run(
    js: async_nats::jetstream::Context,
    materialiser: Materialiser,
    shutdown: Shutdown,
) {
    let filters = filters();
    let settings = WorkQueueSettings {
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
    };
    while !shutdown.is_triggered() {
        let deliveries = async {
            let consumer = ensure_consumer_of_all(&js, CONSUMER, &filters, &settings).await?;
            careline_bus::deliveries(&consumer).await
        }
        .await;
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, consumer = CONSUMER, "consumer not started; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => continue,
                }
            }
        };
        deliveries
            .take_until(shutdown.wait())
            .for_each_concurrent(MAX_IN_FLIGHT, |delivery| {
                let materialiser = &materialiser;
                async move {
                    match delivery {
                        Ok(delivery) => settle(materialiser, delivery).await,
                        Err(error) => {
                            tracing::warn!(%error, consumer = CONSUMER, "delivery failed")
                        }
                    }
                }
            })
            .await;
    }
}

async fn settle(materialiser: &Materialiser, delivery: Delivery) {
    let span = delivery.span.clone();
    async {
        let result = materialiser.apply(&delivery.event).await;
        let settled = match result {
            Ok(fresh) => {
                let result = if fresh { "applied" } else { "duplicate" };
                metrics::counter!(EVENTS_HANDLED, "result" => result).increment(1);
                delivery.ack.ack().await
            }
            Err(error) if error.is_transient() && delivery.delivered < MAX_DELIVER => {
                metrics::counter!(EVENTS_HANDLED, "result" => "retry").increment(1);
                tracing::warn!(%error, delivered = delivery.delivered, "event not applied yet; will retry");
                delivery
                    .ack
                    .retry_after(retry_delay(delivery.delivered))
                    .await
            }
            Err(error) => {
                metrics::counter!(EVENTS_HANDLED, "result" => "dropped").increment(1);
                tracing::error!(%error, event_id = %delivery.event.event_id, "event given up on; KPIs miss it");
                delivery.ack.reject().await
            }
        };
        if let Err(error) = settled {
            tracing::warn!(%error, "could not settle a delivery");
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(4));
        assert_eq!(retry_delay(100), MAX_RETRY_DELAY);
    }

    #[test]
    fn away_reason_is_part_of_the_state_and_queue_events_are_ignored() {
        let event = v1::Event {
            event_id: "t:1".into(),
            tenant_id: "t".into(),
            occurred_at_ms: 5,
            sequence: 3,
            payload: Some(v1::event::Payload::Agent(v1::AgentEvent {
                kind: v1::AgentEventKind::StateChanged as i32,
                agent_id: "ana".into(),
                state: "away".into(),
                reason: "lunch".into(),
                channel: 0,
            })),
        };
        let kpi = kpi_event(&event).unwrap();
        assert_eq!(kpi.kind, "state");
        assert_eq!(kpi.reason, "lunch");
        let requeued = v1::Event {
            payload: Some(v1::event::Payload::Interaction(v1::InteractionEvent {
                kind: v1::InteractionEventKind::Requeued as i32,
                ..Default::default()
            })),
            ..event
        };
        assert!(kpi_event(&requeued).is_none());
    }
}
