//! Tenants too big for one NATS message (tens of thousands of agents): they are
//! stored as agent chunks plus a document, readers only ever see whole tenants,
//! and the chunks of replaced versions are purged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use careline_bus::{TENANTS_BUCKET, TenantDirectory, TenantStore};
use careline_domain::TenantConfig;
use careline_testkit::{assert_eventually, big_tenant};
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::jetstream;

const WAIT: Duration = Duration::from_secs(60);
/// The size the platform must take: an outsourced hub's biggest plan, and then some.
const BIG: usize = 20_000;
const QUEUES: usize = 50;

/// The agent-chunk keys stored for `tenant`, grouped by the write that made them.
async fn chunk_versions(js: &async_nats::jetstream::Context, tenant: &str) -> BTreeSet<String> {
    let stream = js.get_stream(format!("KV_{TENANTS_BUCKET}")).await.unwrap();
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(format!("$KV.{TENANTS_BUCKET}.{tenant}.agents.>"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    subjects
        .into_iter()
        .map(|(subject, _)| subject.split('.').nth(4).unwrap().to_owned())
        .collect()
}

/// `config` renamed, to tell versions apart.
fn version(config: &TenantConfig, name: &str, agents: usize) -> TenantConfig {
    let mut config = config.clone();
    config.name = name.into();
    config.agents.truncate(agents);
    config
}

#[tokio::test]
async fn a_tenant_of_20000_agents_applies_and_a_directory_sees_it_whole() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let directory = TenantDirectory::start(&store, &CancellationToken::new()).await?;
    let big = big_tenant("hub-plan", BIG, QUEUES);
    let stored_bytes = big.to_json().len();

    let started = Instant::now();
    let revision = store.put(&big).await?;
    let put = started.elapsed();
    let seen = directory.wait_for("hub-plan", WAIT).await?;
    let visible = started.elapsed();
    assert_eq!(*seen, big, "the directory holds every agent");
    assert_eq!(directory.revisions()["hub-plan"], revision);
    assert_eq!(store.get("hub-plan").await?.as_ref(), Some(&big));
    assert_eq!(
        store.list().await?,
        vec![big.clone()],
        "chunks are not tenants"
    );
    assert_eq!(chunk_versions(&js, "hub-plan").await.len(), 1);

    let started = Instant::now();
    let later = TenantDirectory::start(&store, &CancellationToken::new()).await?;
    let loaded = started.elapsed();
    assert_eq!(later.get("hub-plan").as_deref(), Some(&big));
    println!(
        "{BIG} agents, {QUEUES} queues, {stored_bytes} bytes stored: put {put:?}, \
         seen by a watching directory after {visible:?}, loaded by a new one in {loaded:?}"
    );
    Ok(())
}

#[tokio::test]
async fn re_applying_a_smaller_version_purges_the_chunks_of_the_old_one() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let big = big_tenant("hub-plan", BIG, QUEUES);
    store.put(&big).await?;
    let first = chunk_versions(&js, "hub-plan").await;
    assert_eq!(first.len(), 1, "one write's chunks: {first:?}");

    let smaller = version(&big, "Smaller", BIG / 2);
    store.put(&smaller).await?;
    let second = chunk_versions(&js, "hub-plan").await;
    assert_eq!(second.len(), 1, "only the new write's chunks: {second:?}");
    assert_ne!(first, second);
    assert_eq!(store.get("hub-plan").await?, Some(smaller));

    // Small enough for one message: stored whole, no chunks left at all.
    let small = version(&big, "Small", 100);
    store.put(&small).await?;
    assert!(chunk_versions(&js, "hub-plan").await.is_empty());
    assert_eq!(store.get("hub-plan").await?, Some(small));

    store.put(&big).await?;
    store.delete("hub-plan").await?;
    assert!(chunk_versions(&js, "hub-plan").await.is_empty());
    assert_eq!(store.get("hub-plan").await?, None);
    Ok(())
}

#[tokio::test]
async fn readers_never_see_a_partial_tenant_while_it_is_rewritten() -> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let big = big_tenant("hub-plan", BIG, QUEUES);
    let versions = [
        version(&big, "Version A", BIG),
        version(&big, "Version B", BIG * 3 / 4),
        version(&big, "Version C", 50),
    ];
    store.put(&versions[0]).await?;
    let directory = Arc::new(TenantDirectory::start(&store, &CancellationToken::new()).await?);
    let whole = |config: &TenantConfig| versions.contains(config);

    let writing = Arc::new(AtomicBool::new(true));
    // A service's view: every change the directory publishes is one whole version.
    let watcher = tokio::spawn({
        let (directory, writing, versions) = (
            Arc::clone(&directory),
            Arc::clone(&writing),
            versions.clone(),
        );
        async move {
            let mut changes = directory.changes();
            let mut seen = BTreeSet::new();
            while writing.load(Ordering::SeqCst) {
                let config = directory.get("hub-plan").expect("never absent");
                assert!(
                    versions.contains(&*config),
                    "the directory showed a partial tenant: {:?} with {} agents",
                    config.name,
                    config.agents.len()
                );
                seen.insert(config.name.clone());
                let _ = tokio::time::timeout(Duration::from_millis(20), changes.changed()).await;
            }
            seen
        }
    });
    // A reader polling the bucket directly.
    let poller = tokio::spawn({
        let (store, writing, versions) = (store.clone(), Arc::clone(&writing), versions.clone());
        async move {
            let mut reads = 0;
            while writing.load(Ordering::SeqCst) {
                let config = store.get("hub-plan").await.unwrap().expect("never absent");
                assert!(
                    versions.contains(&config),
                    "a read returned a partial tenant: {:?} with {} agents",
                    config.name,
                    config.agents.len()
                );
                reads += 1;
            }
            reads
        }
    });
    for round in 0..2 {
        for config in versions.iter().skip(usize::from(round == 0)) {
            store.put(config).await?;
            assert_eventually!(
                within: WAIT,
                directory.get("hub-plan").is_some_and(|seen| *seen == *config),
                "the directory shows {:?}", config.name
            );
        }
    }
    writing.store(false, Ordering::SeqCst);
    let seen = watcher.await?;
    let reads = poller.await?;
    println!("{reads} whole reads while rewriting; the directory showed {seen:?}");
    assert_eq!(seen.len(), versions.len(), "{seen:?}");
    assert!(reads > 0);
    assert!(whole(&directory.get("hub-plan").unwrap()));
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_leave_one_whole_tenant_and_only_its_chunks() -> anyhow::Result<()> {
    let (server, js) = jetstream().await?;
    let other_client = async_nats::connect(server.url()).await?;
    let stores = [
        TenantStore::open(&js, None).await?,
        TenantStore::open(&async_nats::jetstream::new(other_client), None).await?,
    ];
    let big = big_tenant("hub-plan", BIG, QUEUES);
    let a = version(&big, "Writer A", BIG);
    let b = version(&big, "Writer B", BIG - 1);
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(stores[0].put(&a), stores[1].put(&b));
        ra?;
        rb?;
        let stored = stores[0].get("hub-plan").await?.expect("stored");
        assert!(stored == a || stored == b, "{:?}", stored.name);
        assert_eq!(
            chunk_versions(&js, "hub-plan").await.len(),
            1,
            "the losing write's chunks and the replaced ones are purged"
        );
    }
    Ok(())
}

#[tokio::test]
async fn chunks_left_by_a_write_that_stopped_half_way_are_purged_by_the_next_write()
-> anyhow::Result<()> {
    let (_server, js) = jetstream().await?;
    let store = TenantStore::open(&js, None).await?;
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        - 3_600;
    let stopped = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, an_hour_ago, 0))
        .simple()
        .to_string();
    // A write in progress elsewhere: young, so left alone.
    let in_progress = uuid::Uuid::now_v7().simple().to_string();
    for version in [&stopped, &in_progress] {
        store
            .bucket()
            .put(format!("hub-plan.agents.{version}.0"), "[]".into())
            .await?;
    }

    store.put(&big_tenant("hub-plan", BIG, QUEUES)).await?;
    let left = chunk_versions(&js, "hub-plan").await;
    assert!(!left.contains(&stopped), "{left:?}");
    assert!(left.contains(&in_progress), "{left:?}");
    assert_eq!(
        left.len(),
        2,
        "the new write's chunks and the young ones: {left:?}"
    );
    Ok(())
}
