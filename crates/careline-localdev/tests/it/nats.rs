//! NatsServer: JetStream answers, restart keeps port and data, drop stops it,
//! a paused server answers again once resumed, sync-always stores.

use std::time::Duration;

use async_nats::jetstream;
use careline_localdev::{JetStreamSync, NatsServer};
use careline_testkit::assert_eventually;

use crate::port_accepts;

#[tokio::test]
async fn nats_server_runs_jetstream_and_is_gone_after_drop() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let port = server.port();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));

    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let ack = js.publish("nothing.listens", "x".into()).await?.await;
    assert!(ack.is_err(), "no stream should exist on a fresh server");
    js.create_stream(jetstream::stream::Config {
        name: "FRESH".into(),
        subjects: vec!["fresh.>".into()],
        ..Default::default()
    })
    .await?;
    js.publish("fresh.one", "1".into()).await?.await?;

    drop(server);
    assert!(
        !port_accepts(port),
        "nats-server still listening on {port} after drop"
    );
    Ok(())
}

#[tokio::test]
async fn nats_restart_keeps_port_and_streams() -> anyhow::Result<()> {
    let mut server = NatsServer::start().await?;
    let port = server.port();
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    js.create_stream(jetstream::stream::Config {
        name: "KEPT".into(),
        subjects: vec!["kept.>".into()],
        ..Default::default()
    })
    .await?;
    js.publish("kept.one", "1".into()).await?.await?;

    server.kill();
    assert!(!port_accepts(port), "killed nats-server still listening");

    server.restart().await?;
    assert_eq!(server.port(), port);
    // The same client reconnects and finds the stream and its message on disk.
    assert_eventually!(
        match js.get_stream("KEPT").await {
            Ok(mut stream) => matches!(stream.info().await, Ok(info) if info.state.messages == 1),
            Err(_) => false,
        },
        "stream KEPT with its one message after restart"
    );
    Ok(())
}

/// How long a publish to a paused server is given before it counts as unanswered.
const PAUSED_ACK_WAIT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_paused_nats_server_leaves_publishes_unacknowledged_until_resumed() -> anyhow::Result<()>
{
    let server = NatsServer::start().await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    js.create_stream(jetstream::stream::Config {
        name: "PAUSED".into(),
        subjects: vec!["paused.>".into()],
        ..Default::default()
    })
    .await?;

    server.pause()?;
    let stalled = tokio::time::timeout(PAUSED_ACK_WAIT, async {
        js.publish("paused.one", "1".into()).await?.await
    })
    .await;
    assert!(
        stalled.is_err(),
        "a paused server acknowledged a publish: {stalled:?}"
    );

    server.resume()?;
    assert_eventually!(
        match js.get_stream("PAUSED").await {
            Ok(mut stream) => matches!(stream.info().await, Ok(info) if info.state.messages == 1),
            Err(_) => false,
        },
        "the publish sent while paused stored once resumed"
    );
    Ok(())
}

#[tokio::test]
async fn a_sync_always_server_stores_and_keeps_streams_across_a_kill() -> anyhow::Result<()> {
    let mut server = NatsServer::start_with_sync(JetStreamSync::Always).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    js.create_stream(jetstream::stream::Config {
        name: "SYNCED".into(),
        subjects: vec!["synced.>".into()],
        ..Default::default()
    })
    .await?;
    js.publish("synced.one", "1".into()).await?.await?;

    // The restart passes the same configuration: the server must come back.
    server.kill();
    server.restart().await?;
    assert_eventually!(
        match js.get_stream("SYNCED").await {
            Ok(mut stream) => matches!(stream.info().await, Ok(info) if info.state.messages == 1),
            Err(_) => false,
        },
        "stream SYNCED with its one message after a kill"
    );
    Ok(())
}
