//! Sandbox: both servers (or Redis and a NATS cluster) and their ready-made clients.

use careline_testkit::{Sandbox, TestRedis};
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

#[tokio::test]
async fn a_cluster_sandbox_client_moves_to_another_node_when_its_node_dies() -> anyhow::Result<()> {
    let mut sandbox = Sandbox::start_with_nats_cluster(TestRedis::single(), 3).await?;
    assert_eq!(sandbox.nats_url().split(',').count(), 3);
    let nats = sandbox.nats().await?;
    let first = nats.server_info().port;
    let index = (0..3)
        .find(|&i| sandbox.nats.port(i) == first)
        .expect("the client is connected to a node of the cluster");

    sandbox.nats.kill(index);
    careline_testkit::assert_eventually!(
        nats.server_info().port != first && nats.flush().await.is_ok(),
        "the client reconnected to a live node"
    );
    let mut sub = nats.subscribe("careline.test").await?;
    nats.publish("careline.test", "ping".into()).await?;
    let msg = futures_next(&mut sub).await;
    assert_eq!(msg.as_deref(), Some(&b"ping"[..]));
    Ok(())
}
