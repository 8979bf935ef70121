//! Routing on a Redis Cluster when the primary that holds a tenant fails:
//! calls fail while it is down, the store reconnects by itself once the node
//! is back, and what was acknowledged before the crash is still there.

use careline_domain::{Channel, Language, Priority};
use careline_routing::{RoutingStore, keys};
use careline_testkit::TestRedis;

use crate::env::{interaction_request, test_tenant};

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
