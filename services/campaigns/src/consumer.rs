//! The durable JetStream consumer of `careline.*.interaction.*` every replica
//! shares: created and ended interactions keep each member's open
//! interactions (a member in one is not called), resolutions of campaign
//! interactions add to their campaign's figures. Redis failures are
//! redelivered with a growing delay; after [`MAX_DELIVER`] deliveries an
//! event is dead-lettered on `careline.<tenant>.dlq.campaigns`.

use std::time::Duration;

use careline_bus::{Delivery, Subject, WorkQueueSettings};
use careline_kit::Shutdown;
use careline_proto::v1;
use futures::StreamExt;
use tracing::Instrument;

use crate::campaigns::Campaigns;

/// Name of the durable consumer every replica shares.
pub const CONSUMER: &str = "campaigns";
/// Time to handle an event before JetStream redelivers it.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Deliveries before an event is dead-lettered.
pub const MAX_DELIVER: i64 = 100;
/// Redelivery delay after a failure.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);
/// Pause before pulling again after the consumer failed.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Interaction events handled at once per replica.
pub const CONCURRENCY: usize = 32;

/// Consumes interaction events until `shutdown`.
pub async fn run(js: async_nats::jetstream::Context, campaigns: Campaigns, shutdown: Shutdown) {
    let publisher = careline_bus::Publisher::new(js.clone());
    let filter = Subject::entity_all("interaction").expect("constant subject parts");
    let settings = WorkQueueSettings {
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
    };
    while !shutdown.is_triggered() {
        let deliveries = async {
            let consumer = careline_bus::ensure_consumer(&js, CONSUMER, &filter, &settings).await?;
            careline_bus::deliveries(&consumer).await
        }
        .await;
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "campaigns consumer not started; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => continue,
                }
            }
        };
        deliveries
            .take_until(shutdown.wait())
            .for_each_concurrent(CONCURRENCY, |delivery| {
                let (publisher, campaigns) = (&publisher, &campaigns);
                async move {
                    match delivery {
                        Ok(delivery) => settle(campaigns, publisher, delivery).await,
                        Err(error) => tracing::warn!(%error, "campaigns delivery failed"),
                    }
                }
            })
            .await;
    }
}

async fn settle(campaigns: &Campaigns, publisher: &careline_bus::Publisher, delivery: Delivery) {
    let span = delivery.span.clone();
    async {
        let event = &delivery.event;
        let result = match &event.payload {
            Some(v1::event::Payload::Interaction(ix)) => {
                campaigns.interaction_event(&event.tenant_id, ix).await
            }
            _ => Ok(()),
        };
        let settled = match result {
            Ok(()) => delivery.ack.ack().await,
            Err(error) if delivery.delivered < MAX_DELIVER => {
                tracing::warn!(%error, delivered = delivery.delivered, "interaction event not handled yet; will retry");
                delivery.ack.retry_after(RETRY_DELAY).await
            }
            Err(error) => {
                tracing::error!(%error, delivered = delivery.delivered, "interaction event given up on; dead-lettered");
                publisher.dead_letter(CONSUMER, &delivery).await.map(|_| ())
            }
        };
        if let Err(error) = settled {
            tracing::warn!(%error, "could not settle an interaction event");
        }
    }
    .instrument(span)
    .await
}
