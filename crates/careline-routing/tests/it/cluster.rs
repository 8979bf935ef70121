//! Routing on a Redis Cluster when the primary that holds a tenant fails:
//! calls fail while it is down, the store reconnects by itself once the node
//! is back or its replica has taken over, and what was acknowledged (and, for
//! a replica, replicated) before the crash is still there.

use std::time::Duration;

use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{AgentStatus, RoutingStore, keys};
use careline_testkit::{RedisCluster, TestRedis};

use crate::env::{agent, interaction_request, test_tenant};

/// How long a replica may take to be promoted once its primary dies (the
/// test cluster's node timeout is 1.5 s, then an election).
const FAILOVER_DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_store_reconnects_after_the_tenants_primary_is_killed_and_restarted() {
    let mut redis = TestRedis::cluster().await.expect("the cluster starts");
    let config = test_tenant(|_| {});
    let tenant = config.id.as_str();
    let store = RoutingStore::connect(&redis.url()).await.expect("connects");
    store.sync_tenant(&config).await.expect("tenant synced");
    let request =
        |n| interaction_request("billing", Channel::Chat, Language::En, Priority::Normal, n);
    let before = store
        .create_interaction(tenant, &request(1))
        .await
        .expect("created before the crash");

    let TestRedis::Cluster(cluster) = &mut redis else {
        unreachable!("started as a cluster")
    };
    let primary = cluster
        .primary_of(&keys::prefix(tenant))
        .await
        .expect("the tenant's primary");
    cluster.node(primary).kill();
    assert!(
        store.create_interaction(tenant, &request(2)).await.is_err(),
        "a create fails while the tenant's primary is down"
    );
    cluster.node(primary).restart().await.expect("restarts");
    cluster.wait_ready().await.expect("the cluster heals");

    careline_testkit::assert_eventually!(
        store.create_interaction(tenant, &request(3)).await.is_ok(),
        "creates work again once the primary is back"
    );
    let kept = store
        .get_interaction(tenant, &before.interaction_id)
        .await
        .expect("what was acknowledged before the crash is still there");
    assert_eq!(kept.id, before.interaction_id);
    let checks = store
        .timer_check(&[tenant.to_string()])
        .await
        .expect("timers are checked again");
    assert!(!checks[0].settings_lost, "{checks:?}");
}

#[tokio::test]
async fn routing_carries_on_on_the_replica_promoted_when_the_tenants_primary_dies() {
    let mut cluster = RedisCluster::start(3, 1).await.expect("the cluster starts");
    let config = test_tenant(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    });
    let tenant = config.id.as_str();
    let store = RoutingStore::connect(&cluster.url())
        .await
        .expect("connects");
    store.sync_tenant(&config).await.expect("tenant synced");
    store
        .agent_login(&config, "a1", "s1", AgentStatus::Available)
        .await
        .expect("a1 logs in");
    let mut before = Vec::new();
    for n in 0..10 {
        let request =
            interaction_request("billing", Channel::Chat, Language::En, Priority::Normal, n);
        let created = store
            .create_interaction(tenant, &request)
            .await
            .expect("created");
        before.push(
            store
                .get_interaction(tenant, &created.interaction_id)
                .await
                .unwrap(),
        );
    }
    let offered: Vec<&v1::Interaction> = before
        .iter()
        .filter(|ix| ix.state == v1::InteractionState::Offered as i32)
        .collect();
    assert!(!offered.is_empty(), "a1 was offered work before the crash");
    let sequence_before = store.event_sequence(tenant).await.unwrap();

    let prefix = keys::prefix(tenant);
    let primary = cluster
        .primary_of(&prefix)
        .await
        .expect("the tenant's primary");
    cluster
        .wait_replicated(primary)
        .await
        .expect("its replica has every write");
    cluster.node(primary).kill();
    careline_testkit::assert_eventually!(
        within: FAILOVER_DEADLINE,
        cluster.primary_of(&prefix).await.is_ok_and(|p| p != primary),
        "a replica takes over the tenant's slot"
    );

    let request = interaction_request("billing", Channel::Chat, Language::En, Priority::Normal, 99);
    careline_testkit::assert_eventually!(
        within: FAILOVER_DEADLINE,
        store.create_interaction(tenant, &request).await.is_ok(),
        "creates work again on the promoted replica"
    );
    for ix in &before {
        let kept = store
            .get_interaction(tenant, &ix.id)
            .await
            .expect("every replicated interaction is still there");
        assert_eq!((kept.state, &kept.offer_id), (ix.state, &ix.offer_id));
    }
    // Answering and resolving run scripts the promoted node never loaded.
    let first = offered[0];
    store
        .accept_offer(tenant, &first.offer_id, "a1")
        .await
        .expect("an offer made before the crash is accepted after it");
    store
        .resolve(tenant, &first.id, "a1", "done", &[], None)
        .await
        .expect("and resolved");
    let waiting: Vec<&v1::Interaction> = before
        .iter()
        .filter(|ix| ix.state == v1::InteractionState::Queued as i32)
        .collect();
    let next = store.get_interaction(tenant, &waiting[0].id).await.unwrap();
    assert_eq!(
        (next.state, next.agent_id.as_str()),
        (v1::InteractionState::Offered as i32, "a1"),
        "the freed capacity takes the oldest waiting contact"
    );
    assert!(
        store.event_sequence(tenant).await.unwrap() > sequence_before,
        "events go on being numbered from where they were"
    );
    let checks = store.timer_check(&[tenant.to_string()]).await.unwrap();
    assert!(!checks[0].settings_lost, "{checks:?}");
}

/// Creates answered before the kill, and after it, in the mid-load run.
const CREATED_BEFORE_KILL: usize = 150;
const CREATED_AFTER_KILL: usize = 150;
/// Tasks creating at once in the mid-load run.
const CREATORS: usize = 8;

#[tokio::test]
async fn with_replica_acks_no_answered_create_is_lost_when_the_primary_dies_mid_load() {
    let mut cluster = RedisCluster::start(3, 1).await.expect("the cluster starts");
    let config = test_tenant(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    });
    let tenant = config.id.clone();
    let store = RoutingStore::connect(&cluster.url())
        .await
        .expect("connects")
        .with_replica_acks(1);
    store.sync_tenant(&config).await.expect("tenant synced");
    store
        .agent_login(&config, "a1", "s1", AgentStatus::Available)
        .await
        .expect("a1 logs in");

    // Each creator retries a create (same request, same idempotency key)
    // until it is answered, then records the answer.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut creators = tokio::task::JoinSet::new();
    for creator in 0..CREATORS as u64 {
        let (store, tenant, answered, stop) = (
            store.clone(),
            tenant.clone(),
            answered.clone(),
            stop.clone(),
        );
        creators.spawn(async move {
            let mut n = creator;
            while !stop.is_cancelled() {
                let request = interaction_request(
                    "billing",
                    Channel::Chat,
                    Language::En,
                    Priority::Normal,
                    n,
                );
                match store.create_interaction(&tenant, &request).await {
                    Ok(created) => {
                        answered.lock().unwrap().push((n, created.interaction_id));
                        n += CREATORS as u64;
                    }
                    // The primary is down or being replaced: try again.
                    Err(_) => tokio::time::sleep(careline_testkit::POLL_INTERVAL).await,
                }
            }
        });
    }
    let count = || answered.lock().unwrap().len();
    careline_testkit::assert_eventually!(
        count() >= CREATED_BEFORE_KILL,
        "creates are answered before the kill"
    );
    let primary = cluster
        .primary_of(&keys::prefix(&tenant))
        .await
        .expect("the tenant's primary");
    cluster.node(primary).kill();
    let at_kill = count();
    careline_testkit::assert_eventually!(
        within: FAILOVER_DEADLINE,
        count() >= at_kill + CREATED_AFTER_KILL,
        "creates are answered again on the promoted replica"
    );
    stop.cancel();
    while creators.join_next().await.is_some() {}

    let answered = answered.lock().unwrap().clone();
    let mut requests: Vec<u64> = answered.iter().map(|(n, _)| *n).collect();
    requests.sort_unstable();
    requests.dedup();
    assert_eq!(requests.len(), answered.len(), "each request answered once");
    let mut lost = Vec::new();
    for (_, id) in &answered {
        if store.get_interaction(&tenant, id).await.is_err() {
            lost.push(id.clone());
        }
    }
    println!(
        "{} creates answered ({at_kill} before the primary was killed), {} lost",
        answered.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "answered creates lost in the failover: {lost:?}"
    );
}
