//! Stream and consumer set-up is idempotent, also when run concurrently.

use std::time::Duration;

use careline_bus::streams::DUPLICATE_WINDOW;
use careline_bus::{
    EVENTS_STREAM, StreamSettings, Subject, ensure_consumer, ensure_streams, ensure_streams_with,
};

use crate::jetstream;

#[tokio::test]
async fn ensure_streams_is_idempotent_and_safe_concurrently() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let replicas = (0..4).map(|_| ensure_streams(&js));
    for result in futures::future::join_all(replicas).await {
        result?;
    }
    ensure_streams(&js).await?;

    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.subjects, vec!["careline.>".to_owned()]);
    assert_eq!(info.config.duplicate_window, DUPLICATE_WINDOW);
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    Ok(())
}

#[tokio::test]
async fn ensure_streams_applies_a_new_retention() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let one_day = Duration::from_secs(24 * 3600);
    ensure_streams_with(
        &js,
        &StreamSettings {
            max_age: one_day,
            ..Default::default()
        },
    )
    .await?;
    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.max_age, one_day);
    Ok(())
}

#[tokio::test]
async fn ensure_consumer_is_idempotent() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let filter = Subject::entity_all("interaction")?;
    let settings = Default::default();
    let (a, b) = tokio::join!(
        ensure_consumer(&js, "surveys", &filter, &settings),
        ensure_consumer(&js, "surveys", &filter, &settings),
    );
    a?;
    let mut consumer = b?;
    ensure_consumer(&js, "surveys", &filter, &settings).await?;
    let info = consumer.info().await?;
    assert_eq!(info.config.max_deliver, 5);
    assert_eq!(info.config.filter_subject, "careline.*.interaction.>");
    Ok(())
}

#[tokio::test]
async fn consumer_names_that_nats_would_misread_are_refused() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let filter = Subject::tenant_all("acme")?;
    let err = ensure_consumer(&js, "bad.name", &filter, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("consumer"), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_event_stream_made_before_atomic_batches_gains_them_on_set_up() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: EVENTS_STREAM.to_owned(),
        subjects: vec!["careline.>".to_owned()],
        ..Default::default()
    })
    .await?;

    ensure_streams(&js).await?;

    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    assert!(info.config.allow_atomic_publish);
    Ok(())
}
