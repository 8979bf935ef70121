//! A message answered 250 is routed even when the replica that took it dies
//! before routing it.

use std::time::Duration;

use crate::harness::{DEMO_ADDRESS, Platform, RawSmtp, mail};

#[tokio::test]
async fn smtp_server_killed_after_250_the_message_is_still_routed() {
    let platform = Platform::start().await;
    // This replica takes mail but cannot reach any router: it keeps the
    // message in JetStream, unacknowledged, and is then stopped.
    let doomed = platform
        .intake_with(|config| config.router_url = "http://127.0.0.1:9".into())
        .await;
    let mut smtp = RawSmtp::connect(doomed.smtp).await;
    let raw = mail(
        "durable@member.example",
        "pat@member.example",
        "Durable",
        "Still here?",
    );
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &raw).await, 250);
    drop(smtp);
    doomed.stop().await;
    assert!(platform.email_interactions().await.is_empty());

    let survivor = platform.intake().await;
    careline_testkit::assert_eventually!(
        within: Duration::from_secs(90),
        platform.email_interactions().await.len() == 1,
        "the message taken by the stopped replica is routed"
    );
    // Once routed, the raw message (the member's address and text) leaves
    // the event stream.
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.expect("nats"));
    let stream = js
        .get_stream(careline_bus::EVENTS_STREAM)
        .await
        .expect("event stream");
    careline_testkit::assert_eventually!(
        stream
            .get_last_raw_message_by_subject("careline.demo-health.email.received")
            .await
            .is_err(),
        "the routed email is deleted from the stream"
    );
    survivor.stop().await;
    platform.stop().await;
}
