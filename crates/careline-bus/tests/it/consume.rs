//! Work-queue deliveries: decoding, ack, retry, dead-lettering.

use std::time::Duration;

use careline_bus::{
    BusError, Deliveries, Delivery, Publisher, Subject, deliveries, ensure_consumer, ensure_streams,
};
use futures::StreamExt;

use crate::{event, jetstream};

async fn next(deliveries: &mut Deliveries) -> Result<Delivery, BusError> {
    tokio::time::timeout(Duration::from_secs(10), deliveries.next())
        .await
        .expect("a delivery within 10 s")
        .expect("the stream stays open")
}

#[tokio::test]
async fn a_retried_delivery_comes_back_counted() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let consumer = ensure_consumer(
        &js,
        "notifications",
        &Subject::tenant_all("acme")?,
        &Default::default(),
    )
    .await?;
    let sent = event("acme", 1);
    Publisher::new(js.clone())
        .publish(&Subject::new("acme", "interaction", "resolved")?, &sent)
        .await?;

    let mut deliveries = deliveries(&consumer).await?;
    let first = next(&mut deliveries).await?;
    assert_eq!(first.delivered, 1);
    first.ack.retry_after(Duration::ZERO).await?;

    let second = next(&mut deliveries).await?;
    assert_eq!(second.event, sent);
    assert_eq!(second.delivered, 2);
    second.ack.ack().await?;
    Ok(())
}

#[tokio::test]
async fn an_undecodable_message_is_reported_and_the_next_event_still_arrives() -> anyhow::Result<()>
{
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let consumer = ensure_consumer(
        &js,
        "reports",
        &Subject::tenant_all("acme")?,
        &Default::default(),
    )
    .await?;
    js.publish(
        "careline.acme.interaction.created",
        "not protobuf \u{ff}".into(),
    )
    .await?
    .await?;
    let sent = event("acme", 2);
    Publisher::new(js.clone())
        .publish(&Subject::new("acme", "interaction", "created")?, &sent)
        .await?;

    let mut deliveries = deliveries(&consumer).await?;
    let err = next(&mut deliveries).await.unwrap_err();
    assert!(matches!(err, BusError::Decode { .. }), "{err}");
    let delivery = next(&mut deliveries).await?;
    assert_eq!(delivery.event, sent);
    Ok(())
}

#[tokio::test]
async fn a_dead_lettered_event_is_parked_and_not_redelivered() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let work = ensure_consumer(
        &js,
        "notifications",
        &Subject::entity_all("interaction")?,
        &Default::default(),
    )
    .await?;
    let parked = ensure_consumer(
        &js,
        "dlq-reader",
        &Subject::entity_all("dlq")?,
        &Default::default(),
    )
    .await?;
    let publisher = Publisher::new(js.clone());
    let sent = event("acme", 9);
    publisher
        .publish(&Subject::new("acme", "interaction", "resolved")?, &sent)
        .await?;

    let mut work_queue = deliveries(&work).await?;
    let failed = next(&mut work_queue).await?;
    publisher.dead_letter("notifications", &failed).await?;

    let mut dead_letters = deliveries(&parked).await?;
    let parked = next(&mut dead_letters).await?;
    assert_eq!(parked.event, sent);
    assert_eq!(parked.subject.as_str(), "careline.acme.dlq.notifications");

    let info = work.clone().info().await?.clone();
    assert_eq!(info.num_ack_pending, 0, "the work queue moved on");
    assert_eq!(info.num_pending, 0);
    Ok(())
}

#[tokio::test]
async fn a_consumer_of_several_events_gets_only_those_in_order() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let ends = [
        Subject::event_all("interaction", "resolved")?,
        Subject::event_all("interaction", "abandoned")?,
    ];
    let consumer =
        careline_bus::ensure_consumer_of_all(&js, "ends", &ends, &Default::default()).await?;
    let publisher = Publisher::new(js.clone());
    let kinds = ["created", "resolved", "assigned", "abandoned"];
    for (sequence, kind) in (1..).zip(kinds) {
        publisher
            .publish(
                &Subject::new("acme", "interaction", kind)?,
                &event("acme", sequence),
            )
            .await?;
    }

    let mut deliveries = deliveries(&consumer).await?;
    let resolved = next(&mut deliveries).await?;
    let abandoned = next(&mut deliveries).await?;
    assert_eq!(resolved.event, event("acme", 2));
    assert_eq!(abandoned.event, event("acme", 4));
    resolved.ack.ack().await?;
    abandoned.ack.ack().await?;
    let mut consumer = consumer;
    assert_eq!(consumer.info().await?.num_pending, 0, "nothing else waits");
    Ok(())
}
