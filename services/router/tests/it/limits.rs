//! Saying no clearly: a full queue refuses new contacts with the other ways
//! to reach the plan, and never an urgent one.

use careline_proto::v1;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{DEMO_KEY, Platform, create, demo};

#[tokio::test]
async fn a_full_queue_refuses_with_the_alternatives_and_takes_the_same_key_once_there_is_room() {
    let mut tenant = demo();
    for queue in &mut tenant.queues {
        queue.max_waiting = Some(2);
    }
    let platform = Platform::start_with_demo(tenant).await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut first = None;
    for key in ["cap-1", "cap-2"] {
        let created = client
            .create_interaction(create("general", v1::Channel::Email, key))
            .await
            .expect("room in the queue")
            .into_inner();
        first.get_or_insert(created.interaction.unwrap().id);
    }
    let refused = client
        .create_interaction(create("general", v1::Channel::Chat, "cap-3"))
        .await
        .expect_err("the queue is full");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("queue general is full")
            && refused.message().contains("help@demo-health.example"),
        "{}",
        refused.message()
    );
    let details = refused.get_error_details();
    let info = details.error_info().expect("error info");
    assert_eq!(info.reason, "QUEUE_FULL");
    assert_eq!(info.metadata["max_waiting"], "2");
    assert_eq!(
        info.metadata["portal_url"],
        "https://members.demo-health.example"
    );
    assert!(details.quota_failure().is_some(), "{details:?}");

    // A replay of an accepted key still answers; other queues have their own room.
    let replayed = client
        .create_interaction(create("general", v1::Channel::Email, "cap-1"))
        .await
        .expect("a replay is not a new contact")
        .into_inner();
    assert!(replayed.replayed);
    client
        .create_interaction(create("billing", v1::Channel::Email, "cap-billing"))
        .await
        .expect("billing has room");

    // An urgent contact is never refused for a full queue.
    let mut urgent = create("general", v1::Channel::Chat, "cap-urgent");
    urgent.context.as_mut().unwrap().reason = "chest pain".into();
    for key in ["cap-urgent-1", "cap-urgent-2", "cap-urgent-3"] {
        urgent.idempotency_key = key.into();
        client
            .create_interaction(urgent.clone())
            .await
            .expect("urgent contacts always get in");
    }

    // Room again: the refused key was not spent.
    client
        .abandon(v1::AbandonRequest {
            interaction_id: first.unwrap(),
        })
        .await
        .expect("the member left");
    client
        .create_interaction(create("general", v1::Channel::Chat, "cap-3"))
        .await
        .expect("taken once there is room");
    platform.stop().await;
}

#[tokio::test]
async fn creates_past_the_tenants_rate_are_refused_with_when_to_retry_and_other_tenants_are_not() {
    let mut tenant = demo();
    // One create a second, three saved up: a quick fourth is over the limit
    // unless the machine stalls for seconds between calls.
    tenant.limits.creates_per_sec = 1;
    tenant.limits.creates_burst = 3;
    let platform = Platform::start_with_demo(tenant).await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut refused = None;
    for i in 0..12 {
        match client
            .create_interaction(create("general", v1::Channel::Email, &format!("rate-{i}")))
            .await
        {
            Ok(_) => {}
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("twelve creates at once are over 1/s with a burst of 3");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("limit of 1 creates a second"),
        "{}",
        refused.message()
    );
    let details = refused.get_error_details();
    let retry = details.retry_info().expect("RetryInfo says when");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay > std::time::Duration::ZERO && delay <= std::time::Duration::from_secs(1),
        "{delay:?}"
    );
    assert_eq!(
        details.error_info().expect("error info").reason,
        "RATE_LIMITED"
    );

    // Other calls have their own budget, and other tenants their own buckets.
    client
        .get_queue_stats(v1::GetQueueStatsRequest::default())
        .await
        .expect("reads are not creates");
    let mut other = platform.client(crate::harness::OTHER_KEY).await;
    other
        .create_interaction(create("general", v1::Channel::Email, "other-1"))
        .await
        .expect("another tenant is not limited by this one");

    // Once the delay it said has passed, creates go through again.
    careline_testkit::assert_eventually!(
        client
            .create_interaction(create("general", v1::Channel::Email, "rate-after"))
            .await
            .is_ok(),
        "a create after the retry delay"
    );
    platform.stop().await;
}

#[tokio::test]
async fn a_replica_serving_its_maximum_of_supervisor_streams_refuses_one_more_until_one_closes() {
    let platform = Platform::start_router(|router| router.max_supervisor_streams = 1).await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut stats = client
        .watch_queue_stats(v1::WatchQueueStatsRequest::default())
        .await
        .expect("the first stream is served")
        .into_inner();
    assert!(stats.message().await.unwrap().is_some(), "first stats");
    let status = client
        .watch_interactions(v1::WatchInteractionsRequest::default())
        .await
        .expect_err("a second stream is one too many");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("maximum of 1 supervisor streams (CARELINE_ROUTER_MAX_SUPERVISOR_STREAMS)"),
        "{}",
        status.message()
    );
    drop(stats);
    careline_testkit::assert_eventually!(
        client
            .watch_interactions(v1::WatchInteractionsRequest::default())
            .await
            .is_ok(),
        "a closed stream frees its slot"
    );
    platform.stop().await;
}
