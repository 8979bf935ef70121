//! Failed attempts are counted: an attempt whose lease runs out without a
//! result, and one the router cannot be asked for (stopped).

use careline_campaigns::store::ATTEMPT_LEASE;
use careline_routing::AgentStatus;

use crate::harness::{Platform, TENANT, tenant, voice_campaign};

#[tokio::test]
async fn attempts_that_run_out_of_lease_or_cannot_reach_the_router_are_counted() {
    // Call-backs: their attempts go straight to the router's create (no queue
    // figures read first), so a stopped router fails the attempt itself.
    let mut callbacks = voice_campaign("callbacks", 1);
    callbacks.callback = true;
    let mut platform = Platform::start(tenant(vec![callbacks])).await;
    platform.login(&["ana"], AgentStatus::Away).await;
    let core = platform.core(platform.clock()).await;
    core.request_callback(TENANT, "m-1", "", "+15550001111", 0)
        .await
        .unwrap();
    assert_eq!(core.run_due(TENANT).await.unwrap(), 1);
    let stats = core.stats(TENANT, "callbacks").await.unwrap();
    assert!(stats.failed_by_reason.is_empty(), "{stats:?}");

    // Nobody reports a result for a day; meanwhile the router is down.
    platform.advance_ms(careline_campaigns::store::ms(ATTEMPT_LEASE) + 60_000);
    platform.stop_router().await;
    assert_eq!(core.run_due(TENANT).await.unwrap(), 0);
    let stats = core.stats(TENANT, "callbacks").await.unwrap();
    assert_eq!(
        stats.failed_by_reason,
        [
            ("lease_expired".to_owned(), 1),
            ("not_started".to_owned(), 1)
        ]
        .into(),
        "{stats:?}"
    );
    assert_eq!(stats.attempts, 1, "the same attempt, made again");
    platform.stop().await;
}
