//! The durable JetStream consumers of email-intake: received messages, handed
//! to [`Intake::handle`], and the ends of interactions, handed to
//! [`Intake::ended`] (a thread's bodies expire the tenant's retention after its
//! interaction ended). Every replica pulls from the same durable consumers, so
//! each event is handled by one replica at a time; it is acknowledged only
//! after it was handled, and redelivered with a growing delay while a peer
//! (router, Redis) is away, so a message answered 250 is never lost.

use std::time::Duration;

use careline_bus::{Delivery, Subject, SubjectFilter, WorkQueueSettings, ensure_consumer_of_all};
use careline_kit::Shutdown;
use careline_proto::v1;
use futures::StreamExt;
use tracing::Instrument;

use crate::error::EmailError;
use crate::intake::Intake;

/// Name of the durable consumer of received messages every replica shares.
pub const CONSUMER: &str = "email-intake";
/// Name of the durable consumer of interaction ends every replica shares.
pub const ENDED_CONSUMER: &str = "email-intake-ended";
/// The router's events after which an interaction is closed for good
/// (`careline.<tenant>.interaction.<event>`); pending is still open.
pub const ENDING_EVENTS: [&str; 3] = ["resolved", "abandoned", "transferred_external"];
/// Events handled at once per replica and consumer.
pub const MAX_IN_FLIGHT: usize = 16;
/// Time to handle a message before JetStream redelivers it.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// Deliveries before a message is given up on and dead-lettered: with the
/// delays below, about a day of an unreachable router.
pub const MAX_DELIVER: i64 = 300;
/// First redelivery delay; doubles per delivery up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest redelivery delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);
/// Pause before pulling again after the consumer failed.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Received messages handled, by result (ok, retry, dead_letter).
pub const MESSAGES_HANDLED: &str = "careline_email_messages_handled_total";
/// Interaction ends handled, by result (ok, retry, dead_letter).
pub const ENDS_HANDLED: &str = "careline_email_ends_handled_total";

/// What a consumer reads and what it does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Received messages (`careline.<tenant>.email.received`).
    Received,
    /// Interactions that ended ([`ENDING_EVENTS`]).
    Ended,
}

impl Work {
    fn durable(self) -> &'static str {
        match self {
            Work::Received => CONSUMER,
            Work::Ended => ENDED_CONSUMER,
        }
    }

    fn handled_metric(self) -> &'static str {
        match self {
            Work::Received => MESSAGES_HANDLED,
            Work::Ended => ENDS_HANDLED,
        }
    }

    fn filters(self) -> Vec<SubjectFilter> {
        let filter = match self {
            Work::Received => vec![Subject::entity_all(crate::inbox::RECEIVED_ENTITY)],
            Work::Ended => ENDING_EVENTS
                .iter()
                .map(|event| Subject::event_all("interaction", event))
                .collect(),
        };
        filter
            .into_iter()
            .map(|filter| filter.expect("constant subject parts are valid"))
            .collect()
    }

    async fn handle(self, intake: &Intake, delivery: &Delivery) -> Result<(), EmailError> {
        let event = &delivery.event;
        match (self, &event.payload) {
            (Work::Received, Some(v1::event::Payload::EmailReceived(received))) => intake
                .handle(&event.tenant_id, received, event.occurred_at_ms)
                .await
                .map(|_| ()),
            (Work::Ended, Some(v1::event::Payload::Interaction(ended))) => {
                // Other channels have no thread here.
                if ended.channel != v1::Channel::Email as i32 {
                    return Ok(());
                }
                intake
                    .ended(
                        &event.tenant_id,
                        &ended.interaction_id,
                        event.occurred_at_ms,
                    )
                    .await
            }
            (Work::Received, _) => Err(EmailError::Invalid("not an EmailReceived event".into())),
            (Work::Ended, _) => Err(EmailError::Invalid("not an InteractionEvent".into())),
        }
    }
}

/// The delay before delivery `delivered + 1`.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY_DELAY)
}

/// Consumes received messages and interaction ends until `shutdown`.
pub async fn run(js: async_nats::jetstream::Context, intake: Intake, shutdown: Shutdown) {
    tokio::join!(
        consume(Work::Received, &js, &intake, &shutdown),
        consume(Work::Ended, &js, &intake, &shutdown),
    );
}

async fn consume(
    work: Work,
    js: &async_nats::jetstream::Context,
    intake: &Intake,
    shutdown: &Shutdown,
) {
    let publisher = careline_bus::Publisher::new(js.clone());
    let filters = work.filters();
    let settings = WorkQueueSettings {
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
    };
    while !shutdown.is_triggered() {
        let deliveries = async {
            let consumer = ensure_consumer_of_all(js, work.durable(), &filters, &settings).await?;
            careline_bus::deliveries(&consumer).await
        }
        .await;
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, consumer = work.durable(), "consumer not started; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => continue,
                }
            }
        };
        let handled =
            deliveries
                .take_until(shutdown.wait())
                .for_each_concurrent(MAX_IN_FLIGHT, |delivery| {
                    let publisher = &publisher;
                    async move {
                        match delivery {
                            Ok(delivery) => settle(work, intake, publisher, js, delivery).await,
                            Err(error) => {
                                tracing::warn!(%error, consumer = work.durable(), "delivery failed")
                            }
                        }
                    }
                });
        handled.await;
    }
}

async fn settle(
    work: Work,
    intake: &Intake,
    publisher: &careline_bus::Publisher,
    js: &async_nats::jetstream::Context,
    delivery: Delivery,
) {
    let span = delivery.span.clone();
    async {
        let result = work.handle(intake, &delivery).await;
        let consumer = work.durable();
        let retry = matches!(&result, Err(error) if error.is_transient() && delivery.delivered < MAX_DELIVER);
        let settled = match result {
            Ok(()) => {
                metrics::counter!(work.handled_metric(), "result" => "ok").increment(1);
                delivery.ack.ack().await
            }
            Err(error) if retry => {
                metrics::counter!(work.handled_metric(), "result" => "retry").increment(1);
                tracing::warn!(%error, consumer, delivered = delivery.delivered, "event not handled yet; will retry");
                delivery.ack.retry_after(retry_delay(delivery.delivered)).await
            }
            Err(error) => {
                metrics::counter!(work.handled_metric(), "result" => "dead_letter").increment(1);
                tracing::error!(%error, consumer, delivered = delivery.delivered, "event given up on; dead-lettered");
                publisher.dead_letter(consumer, &delivery).await.map(|_| ())
            }
        };
        match settled {
            // Not settled: JetStream redelivers after the ack wait.
            Err(error) => tracing::warn!(%error, consumer, "could not settle a delivery"),
            // A received message handled or dead-lettered (with its own
            // copy): the raw message (the member's address and text) leaves
            // the event stream.
            Ok(()) if work == Work::Received && !retry => {
                if let Err(error) = careline_bus::forget_event(js, delivery.stream_sequence).await {
                    tracing::warn!(%error, "could not delete a handled email from the event stream");
                }
            }
            Ok(()) => {}
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
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(5), Duration::from_secs(16));
        assert_eq!(retry_delay(100), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }
}
