//! One trace from publisher to consumer through NATS headers.

use std::time::Duration;

use careline_bus::{Publisher, Subject, deliveries, ensure_consumer, ensure_streams};
use futures::StreamExt;
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::{event, jetstream};

fn trace_id(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

#[tokio::test]
async fn consumer_span_continues_the_publishers_trace() -> anyhow::Result<()> {
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("careline-bus-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let consumer = ensure_consumer(
        &js,
        "trace-test",
        &Subject::tenant_all("demo-health")?,
        &Default::default(),
    )
    .await?;

    let request = tracing::info_span!("handle_request");
    let publisher_trace = trace_id(&request);
    assert_ne!(
        publisher_trace,
        TraceId::INVALID,
        "the test subscriber traces spans"
    );

    let sent = event("demo-health", 1);
    let subject = Subject::new("demo-health", "interaction", "created")?;
    Publisher::new(js.clone())
        .publish(&subject, &sent)
        .instrument(request)
        .await?;

    let mut deliveries = deliveries(&consumer).await?;
    let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
        .await?
        .expect("the stream stays open")?;
    assert_eq!(delivery.event, sent);
    assert_eq!(delivery.subject, subject);
    assert_eq!(trace_id(&delivery.span), publisher_trace);
    delivery.ack.ack().await?;
    Ok(())
}

#[tokio::test]
async fn untraced_publish_still_delivers_with_a_fresh_span() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    ensure_streams(&js).await?;
    let consumer = ensure_consumer(
        &js,
        "untraced",
        &Subject::entity_all("agent")?,
        &Default::default(),
    )
    .await?;
    let sent = event("acme", 7);
    Publisher::new(js.clone())
        .publish(&Subject::new("acme", "agent", "logged_in")?, &sent)
        .await?;
    let mut deliveries = deliveries(&consumer).await?;
    let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
        .await?
        .expect("the stream stays open")?;
    assert_eq!(delivery.event, sent);
    Ok(())
}
