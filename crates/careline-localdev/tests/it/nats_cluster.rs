//! NatsCluster: three nodes hold an R3 stream, one killed node does not stop
//! publishing, a restarted node catches up, drop stops every node.

use async_nats::jetstream;
use careline_localdev::NatsCluster;
use careline_testkit::assert_eventually;

use crate::port_accepts;

const NODES: usize = 3;

/// Whether every replica of `stream` is current and it holds `messages` messages.
async fn replicas_current(js: &jetstream::Context, stream: &str, messages: u64) -> bool {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return false;
    };
    let Ok(info) = stream.info().await else {
        return false;
    };
    let Some(cluster) = &info.cluster else {
        return false;
    };
    info.state.messages == messages
        && cluster.leader.is_some()
        && cluster.replicas.len() == NODES - 1
        && cluster.replicas.iter().all(|peer| peer.current)
}

/// Publishes `id` on `subject` with `id` as its message id; whether JetStream acknowledged it.
async fn publish_acknowledged(js: &jetstream::Context, subject: &'static str, id: &str) -> bool {
    let message = jetstream::message::PublishMessage::build()
        .payload(id.to_owned().into())
        .message_id(id);
    match js.send_publish(subject, message).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_three_node_cluster_keeps_an_r3_stream_through_a_killed_node() -> anyhow::Result<()> {
    let mut cluster = NatsCluster::start(NODES).await?;
    assert_eq!(cluster.size(), NODES);
    assert_eq!(cluster.url().split(',').count(), NODES);
    let ports: Vec<u16> = (0..NODES).map(|i| cluster.port(i)).collect();

    let client = async_nats::connect(cluster.urls()).await?;
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "REPLICATED".into(),
        subjects: vec!["replicated.>".into()],
        num_replicas: NODES,
        ..Default::default()
    })
    .await?;
    // A just-created R3 stream may not have elected its leader yet: the
    // first publish is retried (the message id makes a retry a no-op).
    assert_eventually!(
        publish_acknowledged(&js, "replicated.one", "one").await,
        "the first publish acknowledged"
    );
    assert_eventually!(
        replicas_current(&js, "REPLICATED", 1).await,
        "REPLICATED on three current replicas"
    );

    cluster.kill(1);
    assert!(!port_accepts(ports[1]), "killed node still listening");
    // Two of three nodes keep a quorum: publishing goes on (retried while the
    // client moves off a dead node or a new stream leader is elected; the
    // message id makes a retry of a stored but unacknowledged publish a no-op).
    assert_eventually!(
        publish_acknowledged(&js, "replicated.two", "two").await,
        "a publish acknowledged with one node down"
    );

    cluster.restart(1).await?;
    assert_eq!(cluster.port(1), ports[1]);
    assert_eventually!(
        replicas_current(&js, "REPLICATED", 2).await,
        "the restarted node caught up with both messages"
    );

    drop(cluster);
    for port in ports {
        assert!(
            !port_accepts(port),
            "a node still listens on {port} after drop"
        );
    }
    Ok(())
}
