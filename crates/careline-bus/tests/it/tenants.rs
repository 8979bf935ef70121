//! The tenant KV bucket and the live directory that watches it.

use std::time::Duration;

use careline_bus::{BusError, TenantDirectory, TenantStore};
use careline_testkit::assert_eventually;
use tokio_util::sync::CancellationToken;

use crate::{DEMO_API_KEY, demo_tenant, jetstream};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn directory_follows_the_bucket_live() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    TenantStore::open(&js, None).await?;
    let shutdown = CancellationToken::new();
    let directory = TenantDirectory::start(&store, &shutdown).await?;
    assert!(directory.tenant_ids().is_empty());
    let changes = directory.changes();

    let demo = demo_tenant();
    store.put(&demo).await?;
    let seen = directory.wait_for("demo-health", WAIT).await?;
    assert_eq!(*seen, demo);
    assert!(*changes.borrow() >= 1, "the change counter moved");

    let mut renamed = demo.clone();
    renamed.name = "Demo Health Plan (renamed)".into();
    store.put(&renamed).await?;
    assert_eventually!(
        directory
            .get("demo-health")
            .is_some_and(|t| t.name == renamed.name),
        "the renamed demo tenant"
    );

    // A value written around the store's validation must not stop the watcher.
    store.bucket().put("broken", "{not json".into()).await?;
    let mut other = demo.clone();
    other.id = "other-health".into();
    other.api_keys.clear();
    store.put(&other).await?;
    directory.wait_for("other-health", WAIT).await?;
    assert!(directory.get("broken").is_none());
    assert_eq!(directory.tenant_ids(), ["demo-health", "other-health"]);

    store.delete("other-health").await?;
    assert_eventually!(
        directory.get("other-health").is_none(),
        "other-health removed"
    );
    Ok(())
}

#[tokio::test]
async fn api_keys_resolve_to_their_tenant_only() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    store.put(&demo_tenant()).await?;
    let directory = TenantDirectory::start(&store, &CancellationToken::new()).await?;

    let tenant = directory
        .tenant_for_api_key(DEMO_API_KEY)
        .expect("the demo key is known");
    assert_eq!(tenant.id, "demo-health");
    assert!(
        directory
            .tenant_for_api_key("demo-health-key-0000000000000001")
            .is_none()
    );
    assert!(directory.tenant_for_api_key("").is_none());
    Ok(())
}

#[tokio::test]
async fn a_new_directory_loads_existing_tenants_before_returning() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    store.put(&demo_tenant()).await?;
    store.bucket().put("broken", "[]".into()).await?;

    let directory = TenantDirectory::start(&store, &CancellationToken::new()).await?;
    assert_eq!(directory.tenant_ids(), ["demo-health"]);
    Ok(())
}

#[tokio::test]
async fn invalid_configurations_are_never_written() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let demo = demo_tenant();
    store.put(&demo).await?;

    let mut bad = demo.clone();
    bad.time_zone = "Mars/Olympus_Mons".into();
    let err = store.put(&bad).await.unwrap_err();
    assert!(matches!(err, BusError::InvalidTenantConfig { .. }), "{err}");
    assert!(err.to_string().contains("time_zone"), "{err}");

    assert_eq!(store.get("demo-health").await?, Some(demo.clone()));
    store.bucket().put("broken", "{}".into()).await?;
    assert!(matches!(
        store.get("broken").await,
        Err(BusError::StoredTenantConfig { .. })
    ));
    assert_eq!(store.list().await?, vec![demo]);
    Ok(())
}

#[tokio::test]
async fn directory_keeps_following_after_nats_restarts() -> anyhow::Result<()> {
    let mut server = careline_testkit::NatsServer::start().await?;
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await?);
    let store = TenantStore::open(&js, None).await?;
    store.put(&demo_tenant()).await?;
    let directory = TenantDirectory::start(&store, &CancellationToken::new()).await?;
    assert_eq!(directory.tenant_ids(), ["demo-health"]);

    server.restart().await?;
    let mut other = demo_tenant();
    other.id = "other-health".into();
    other.api_keys.clear();
    // The client reconnects by itself; retry the write until it is accepted.
    assert_eventually!(store.put(&other).await.is_ok(), "write after restart");
    directory.wait_for("other-health", WAIT).await?;
    assert_eq!(directory.tenant_ids(), ["demo-health", "other-health"]);
    Ok(())
}

#[tokio::test]
async fn revisions_tell_which_tenant_changed_and_which_was_removed() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let demo = demo_tenant();
    let mut other = demo.clone();
    other.id = "other-health".into();
    other.api_keys.clear();
    store.put(&demo).await?;
    store.put(&other).await?;
    let directory = TenantDirectory::start(&store, &CancellationToken::new()).await?;
    let before = directory.revisions();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["demo-health", "other-health"]
    );

    let mut renamed = demo.clone();
    renamed.name = "Demo Health Plan (renamed)".into();
    let written = store.put(&renamed).await?;
    assert_eventually!(
        directory.revisions()["demo-health"] == written,
        "demo-health at the revision just written"
    );
    assert_eq!(
        directory.revisions()["other-health"],
        before["other-health"],
        "a change to demo-health leaves other-health's revision alone"
    );

    // A value written around the store's validation changes nothing.
    store
        .bucket()
        .put("demo-health", "{not json".into())
        .await?;
    store.delete("other-health").await?;
    assert_eventually!(
        !directory.revisions().contains_key("other-health"),
        "the removed tenant has no revision"
    );
    assert_eq!(
        directory.revisions()["demo-health"],
        written,
        "an invalid write keeps the previous configuration and its revision"
    );
    Ok(())
}
