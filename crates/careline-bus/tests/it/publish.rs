//! Publishing: dedupe by event id, tenant and id checks.

use careline_bus::publish::ATOMIC_BATCH_MIN;
use careline_bus::{BusError, EVENTS_STREAM, Outgoing, Publisher, Subject, ensure_streams};
use careline_proto::v1::Event;
use prost::Message as _;

use crate::{event, jetstream};

#[tokio::test]
async fn publishing_the_same_event_id_twice_stores_it_once() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let publisher = Publisher::new(js.clone());
    let subject = Subject::new("demo-health", "interaction", "resolved")?;
    let sent = event("demo-health", 42);

    let first = publisher.publish(&subject, &sent).await?;
    let second = publisher.publish(&subject, &sent).await?;
    assert!(!first.duplicate);
    assert!(second.duplicate, "the retry is recognised as a duplicate");
    assert_eq!(second.sequence, first.sequence);

    let other = publisher
        .publish(&subject, &event("demo-health", 43))
        .await?;
    assert!(!other.duplicate);

    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    assert_eq!(info.state.messages, 2);
    Ok(())
}

#[tokio::test]
async fn events_without_id_or_for_another_tenant_are_refused() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let publisher = Publisher::new(js.clone());
    let subject = Subject::new("demo-health", "interaction", "created")?;

    let mut no_id = event("demo-health", 1);
    no_id.event_id.clear();
    let err = publisher.publish(&subject, &no_id).await.unwrap_err();
    assert!(matches!(err, BusError::MissingEventId), "{err}");

    let foreign = event("acme", 1);
    let err = publisher.publish(&subject, &foreign).await.unwrap_err();
    assert!(matches!(err, BusError::TenantMismatch { .. }), "{err}");

    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    assert_eq!(info.state.messages, 0, "nothing was published");
    Ok(())
}

/// `count` events of demo-health from sequence `from` on, as the relay hands them over.
fn outgoing(from: u64, count: u64) -> Vec<Outgoing> {
    (from..from + count)
        .map(|sequence| Outgoing {
            subject: Subject::new("demo-health", "interaction", "created").expect("valid subject"),
            event: event("demo-health", sequence),
            traceparent: String::new(),
            cause: String::new(),
        })
        .collect()
}

/// The event sequences the stream holds, in stream order.
async fn stored_sequences(js: &async_nats::jetstream::Context) -> anyhow::Result<Vec<u64>> {
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let last = stream.get_info().await?.state.last_sequence;
    let mut sequences = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await?;
        sequences.push(Event::decode(message.payload)?.sequence);
    }
    Ok(sequences)
}

/// A publisher with atomic batches on, as the durable stack runs it.
fn atomic_publisher(js: &async_nats::jetstream::Context) -> Publisher {
    Publisher::new(js.clone()).with_atomic_batches(true)
}

/// Publishes a long batch with atomic batches on or off and checks that it is
/// acked and stored in order at consecutive sequences.
async fn a_long_batch_is_stored_in_order(atomic_batches: bool) -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let publisher = Publisher::new(js.clone()).with_atomic_batches(atomic_batches);
    let count = (ATOMIC_BATCH_MIN * 3) as u64;

    let results = publisher.publish_in_order(&outgoing(1, count)).await;

    let acks = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let sequences: Vec<u64> = acks.iter().map(|ack| ack.sequence).collect();
    assert_eq!(sequences, (1..=count).collect::<Vec<_>>());
    assert!(acks.iter().all(|ack| !ack.duplicate));
    assert_eq!(
        stored_sequences(&js).await?,
        (1..=count).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn a_long_atomic_batch_is_stored_in_order_with_consecutive_sequences() -> anyhow::Result<()> {
    a_long_batch_is_stored_in_order(true).await
}

#[tokio::test]
async fn a_long_batch_without_atomic_batches_is_stored_in_order_with_consecutive_sequences()
-> anyhow::Result<()> {
    a_long_batch_is_stored_in_order(false).await
}

#[tokio::test]
async fn a_batch_published_again_after_a_partial_failure_stores_each_event_once_in_order()
-> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let publisher = atomic_publisher(&js);
    let count = (ATOMIC_BATCH_MIN * 2) as u64;
    let batch = outgoing(1, count);
    // The first attempt stored a prefix, then failed (e.g. NATS went away).
    let stored_first = 40;
    for outgoing in &batch[..stored_first] {
        publisher
            .publish(&outgoing.subject, &outgoing.event)
            .await?;
    }

    let retry = publisher.publish_in_order(&batch).await;
    let acks = retry.into_iter().collect::<Result<Vec<_>, _>>()?;
    assert!(
        acks[..stored_first].iter().all(|ack| ack.duplicate),
        "the prefix is reported as stored before"
    );
    assert!(acks[stored_first..].iter().all(|ack| !ack.duplicate));
    let sequences: Vec<u64> = acks.iter().map(|ack| ack.sequence).collect();
    assert_eq!(
        sequences,
        (1..=count).collect::<Vec<_>>(),
        "each event acked at its one stored place"
    );

    // And once more, as after an ack lost in flight: nothing new is stored.
    let again = publisher.publish_in_order(&batch).await;
    assert!(
        again
            .iter()
            .all(|ack| matches!(ack, Ok(ack) if ack.duplicate))
    );
    assert_eq!(
        stored_sequences(&js).await?,
        (1..=count).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn a_long_batch_stops_at_an_invalid_event_with_the_events_before_it_stored()
-> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let publisher = atomic_publisher(&js);
    let valid = ATOMIC_BATCH_MIN + 6;
    let mut batch = outgoing(1, (valid + 10) as u64);
    batch[valid].event.event_id.clear();

    let results = publisher.publish_in_order(&batch).await;

    assert!(results[..valid].iter().all(Result::is_ok));
    assert!(matches!(results[valid], Err(BusError::MissingEventId)));
    assert!(
        results[valid + 1..]
            .iter()
            .all(|r| matches!(r, Err(BusError::NotSent(_))))
    );
    assert_eq!(
        stored_sequences(&js).await?,
        (1..=valid as u64).collect::<Vec<_>>()
    );
    Ok(())
}
