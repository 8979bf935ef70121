//! Sandbox: both servers and their ready-made clients.

use careline_testkit::Sandbox;
use futures::StreamExt;

#[tokio::test]
async fn sandbox_gives_working_clients_for_both_servers() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut redis = sandbox.redis().await?;
    let pong: String = redis::cmd("PING").query_async(&mut redis).await?;
    assert_eq!(pong, "PONG");

    let nats = sandbox.nats().await?;
    let mut sub = nats.subscribe("careline.test").await?;
    nats.publish("careline.test", "ping".into()).await?;
    let msg = futures_next(&mut sub).await;
    assert_eq!(msg.as_deref(), Some(&b"ping"[..]));
    Ok(())
}

async fn futures_next(sub: &mut async_nats::Subscriber) -> Option<Vec<u8>> {
    let msg = tokio::time::timeout(careline_testkit::DEFAULT_DEADLINE, sub.next())
        .await
        .ok()??;
    Some(msg.payload.to_vec())
}
