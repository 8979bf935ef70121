//! Publishing: dedupe by event id, tenant and id checks.

use careline_bus::{BusError, EVENTS_STREAM, Publisher, Subject, ensure_streams};

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
