//! The durable JetStream consumer of received messages. Every replica pulls
//! from the same durable consumer, so each message is handled by one replica
//! at a time; it is acknowledged only after [`Intake::handle`] succeeded, and
//! redelivered with a growing delay while a peer (router, Redis) is away, so a
//! message answered 250 is never lost.

use std::time::Duration;

use careline_bus::{Delivery, Subject, WorkQueueSettings, ensure_consumer};
use careline_kit::Shutdown;
use careline_proto::v1;
use futures::StreamExt;
use tracing::Instrument;

use crate::error::EmailError;
use crate::intake::Intake;

/// Name of the durable consumer every replica shares.
pub const CONSUMER: &str = "email-intake";
/// Messages handled at once per replica.
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

/// The delay before delivery `delivered + 1`.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY_DELAY)
}

/// Consumes received messages until `shutdown`.
pub async fn run(js: async_nats::jetstream::Context, intake: Intake, shutdown: Shutdown) {
    let publisher = careline_bus::Publisher::new(js.clone());
    let filter = Subject::entity_all(crate::inbox::RECEIVED_ENTITY).expect("a valid entity name");
    let settings = WorkQueueSettings {
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
    };
    while !shutdown.is_triggered() {
        let deliveries = async {
            let consumer = ensure_consumer(&js, CONSUMER, &filter, &settings).await?;
            careline_bus::deliveries(&consumer).await
        }
        .await;
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "email consumer not started; retrying");
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
                    let intake = intake.clone();
                    let publisher = publisher.clone();
                    let js = js.clone();
                    async move {
                        match delivery {
                            Ok(delivery) => settle(&intake, &publisher, &js, delivery).await,
                            Err(error) => tracing::warn!(%error, "email delivery failed"),
                        }
                    }
                });
        handled.await;
    }
}

async fn settle(
    intake: &Intake,
    publisher: &careline_bus::Publisher,
    js: &async_nats::jetstream::Context,
    delivery: Delivery,
) {
    let span = delivery.span.clone();
    async {
        let result = match &delivery.event.payload {
            Some(v1::event::Payload::EmailReceived(received)) => intake
                .handle(&delivery.event.tenant_id, received, delivery.event.occurred_at_ms)
                .await
                .map(|_| ()),
            _ => Err(EmailError::Invalid("not an EmailReceived event".into())),
        };
        let retry = matches!(&result, Err(error) if error.is_transient() && delivery.delivered < MAX_DELIVER);
        let settled = match result {
            Ok(()) => {
                metrics::counter!("careline_email_messages_handled_total", "result" => "ok").increment(1);
                delivery.ack.ack().await
            }
            Err(error) if retry => {
                metrics::counter!("careline_email_messages_handled_total", "result" => "retry").increment(1);
                tracing::warn!(%error, delivered = delivery.delivered, "email not handled yet; will retry");
                delivery.ack.retry_after(retry_delay(delivery.delivered)).await
            }
            Err(error) => {
                metrics::counter!("careline_email_messages_handled_total", "result" => "dead_letter").increment(1);
                tracing::error!(%error, delivered = delivery.delivered, "email given up on; dead-lettered");
                publisher.dead_letter(CONSUMER, &delivery).await.map(|_| ())
            }
        };
        match settled {
            // Not settled: JetStream redelivers after the ack wait.
            Err(error) => tracing::warn!(%error, "could not settle an email delivery"),
            // Handled or dead-lettered (with its own copy): the raw message
            // (the member's address and text) leaves the event stream.
            Ok(()) if !retry => {
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
