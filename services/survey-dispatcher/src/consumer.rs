//! The durable JetStream consumer of `careline.*.interaction.resolved` every
//! replica shares: each resolved event is scheduled as a survey (or found
//! ineligible) and acknowledged only then; while Redis is away it is
//! redelivered with a growing delay, and after [`MAX_DELIVER`] deliveries
//! dead-lettered on `careline.<tenant>.dlq.survey-dispatcher`. Scheduling is
//! idempotent per interaction, so redeliveries and replicas schedule once.

use std::time::Duration;

use careline_bus::{Delivery, Subject, WorkQueueSettings};
use careline_kit::Shutdown;
use careline_proto::v1;
use futures::StreamExt;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::SurveyError;
use crate::surveys::{Scheduled, Surveys};

/// Name of the durable consumer every replica shares.
pub const CONSUMER: &str = "survey-dispatcher";
/// Time to handle an event before JetStream redelivers it.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Deliveries before an event is dead-lettered (about a day of Redis away).
pub const MAX_DELIVER: i64 = 300;
/// First redelivery delay; doubles per delivery up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest redelivery delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);
/// Pause before pulling again after the consumer failed.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Resolved events handled, by result.
pub const RESOLVED_METRIC: &str = "careline_survey_resolved_total";

/// The delay before delivery `delivered + 1`.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY_DELAY)
}

/// Work-queue settings of [`CONSUMER`].
pub fn settings() -> WorkQueueSettings {
    WorkQueueSettings {
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
    }
}

/// Consumes resolved events until `shutdown`, `concurrency` at a time;
/// `scheduled` is told when a survey was scheduled (the due worker looks at once).
pub async fn run(
    js: async_nats::jetstream::Context,
    surveys: Surveys,
    concurrency: usize,
    scheduled: std::sync::Arc<Notify>,
    shutdown: Shutdown,
) {
    let publisher = careline_bus::Publisher::new(js.clone());
    let filter = Subject::event_all("interaction", "resolved").expect("constant subject parts");
    while !shutdown.is_triggered() {
        let deliveries = async {
            let consumer =
                careline_bus::ensure_consumer(&js, CONSUMER, &filter, &settings()).await?;
            careline_bus::deliveries(&consumer).await
        }
        .await;
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "survey consumer not started; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => continue,
                }
            }
        };
        deliveries
            .take_until(shutdown.wait())
            .for_each_concurrent(concurrency, |delivery| {
                let (publisher, surveys, scheduled) = (&publisher, &surveys, &scheduled);
                async move {
                    match delivery {
                        Ok(delivery) => settle(surveys, publisher, scheduled, delivery).await,
                        Err(error) => tracing::warn!(%error, "survey delivery failed"),
                    }
                }
            })
            .await;
    }
}

async fn handle(surveys: &Surveys, delivery: &Delivery) -> Result<Scheduled, SurveyError> {
    let event = &delivery.event;
    match &event.payload {
        Some(v1::event::Payload::Interaction(resolved)) => {
            surveys
                .resolved(&event.tenant_id, resolved, event.occurred_at_ms)
                .await
        }
        _ => Err(SurveyError::Invalid("not an InteractionEvent".into())),
    }
}

async fn settle(
    surveys: &Surveys,
    publisher: &careline_bus::Publisher,
    scheduled: &Notify,
    delivery: Delivery,
) {
    let span = delivery.span.clone();
    async {
        let result = handle(surveys, &delivery).await;
        let settled = match result {
            Ok(outcome) => {
                let word = match outcome {
                    Scheduled::Due => {
                        scheduled.notify_one();
                        "scheduled"
                    }
                    Scheduled::Known => "known",
                    Scheduled::Ineligible(why) => why.reason(),
                    Scheduled::UnknownTenant => "unknown_tenant",
                };
                metrics::counter!(RESOLVED_METRIC, "result" => word).increment(1);
                delivery.ack.ack().await
            }
            Err(error) if error.is_transient() && delivery.delivered < MAX_DELIVER => {
                metrics::counter!(RESOLVED_METRIC, "result" => "retry").increment(1);
                tracing::warn!(%error, delivered = delivery.delivered, "resolved event not handled yet; will retry");
                delivery.ack.retry_after(retry_delay(delivery.delivered)).await
            }
            Err(error) => {
                metrics::counter!(RESOLVED_METRIC, "result" => "dead_letter").increment(1);
                tracing::error!(%error, delivered = delivery.delivered, "resolved event given up on; dead-lettered");
                publisher.dead_letter(CONSUMER, &delivery).await.map(|_| ())
            }
        };
        if let Err(error) = settled {
            // Not settled: JetStream redelivers after the ack wait.
            tracing::warn!(%error, "could not settle a resolved event");
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
}
