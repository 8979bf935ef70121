//! Replicated streams on a NATS cluster: the event stream and the tenant
//! bucket are kept on as many servers as configured, an existing stream is
//! moved to that count with its data, and a run without the setting leaves it.

use async_nats::jetstream::Context;
use careline_bus::{
    BusError, EVENTS_STREAM, Publisher, StreamSettings, Subject, TENANTS_BUCKET, TenantStore,
    ensure_streams, ensure_streams_with,
};
use careline_testkit::{NatsCluster, assert_eventually};

use crate::{demo_tenant, event, jetstream};

const NODES: usize = 3;

/// How many servers keep `stream`, once every copy is current (0 while one lags).
async fn current_replicas(js: &Context, stream: &str) -> usize {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return 0;
    };
    let Ok(info) = stream.info().await else {
        return 0;
    };
    match &info.cluster {
        Some(cluster) if cluster.leader.is_some() && cluster.replicas.iter().all(|r| r.current) => {
            1 + cluster.replicas.len()
        }
        _ => 0,
    }
}

#[tokio::test]
async fn streams_move_to_the_configured_replicas_and_an_unset_count_keeps_them()
-> anyhow::Result<()> {
    let cluster = NatsCluster::start(NODES).await?;
    let js = async_nats::jetstream::new(async_nats::connect(cluster.urls()).await?);
    let kv_stream = format!("KV_{TENANTS_BUCKET}");

    // Created before the setting was given: one copy each, with data in them.
    ensure_streams(&js).await?;
    let store = TenantStore::open(&js, None).await?;
    store.put(&demo_tenant()).await?;
    Publisher::new(js.clone())
        .publish(
            &Subject::new("acme", "interaction", "created")?,
            &event("acme", 1),
        )
        .await?;
    assert_eventually!(current_replicas(&js, EVENTS_STREAM).await == 1, "R1 events");
    assert_eventually!(current_replicas(&js, &kv_stream).await == 1, "R1 bucket");

    let three = StreamSettings {
        replicas: Some(NODES),
        ..StreamSettings::default()
    };
    ensure_streams_with(&js, &three).await?;
    let store = TenantStore::open(&js, Some(NODES)).await?;
    assert_eventually!(
        current_replicas(&js, EVENTS_STREAM).await == NODES,
        "the event stream on three current servers"
    );
    assert_eventually!(
        current_replicas(&js, &kv_stream).await == NODES,
        "the tenant bucket on three current servers"
    );

    // A service or CLI run without the setting leaves the count alone.
    ensure_streams(&js).await?;
    TenantStore::open(&js, None).await?;
    assert_eq!(current_replicas(&js, EVENTS_STREAM).await, NODES);
    assert_eq!(current_replicas(&js, &kv_stream).await, NODES);

    // The data moved with the streams.
    let stored = js
        .get_stream(EVENTS_STREAM)
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(stored, 1, "the event published at R1");
    let tenant = store.get(&demo_tenant().id).await?;
    assert_eq!(tenant, Some(demo_tenant()));
    Ok(())
}

#[tokio::test]
async fn more_replicas_than_servers_fail_naming_the_setting() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let err = ensure_streams_with(
        &js,
        &StreamSettings {
            replicas: Some(NODES),
            ..StreamSettings::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, BusError::Replicas { stream, replicas: NODES, .. } if stream == EVENTS_STREAM),
        "{err}"
    );
    assert!(err.to_string().contains("CARELINE_NATS_REPLICAS"), "{err}");
    let err = TenantStore::open(&js, Some(NODES)).await.unwrap_err();
    assert!(err.to_string().contains("CARELINE_NATS_REPLICAS"), "{err}");
    Ok(())
}
