//! NatsServer: JetStream answers, restart keeps port and data, drop stops it.

use async_nats::jetstream;
use careline_localdev::NatsServer;
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
