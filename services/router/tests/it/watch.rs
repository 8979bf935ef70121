//! `WatchInteraction`: what a waiting member (chat widget, IVR) is told —
//! position, estimated wait, the offer, the end — as the queue moves.

use std::time::{Duration, Instant};

use careline_proto::v1;
use careline_routing::{AgentStatus, RoutingStore};
use futures::StreamExt;
use tonic::{Code, Streaming};

use crate::harness::{Client, DEMO_KEY, OTHER_KEY, Platform, create, demo};

/// How long a test waits for the next status before it fails.
const NEXT_STATUS_WITHIN: Duration = Duration::from_secs(30);
/// How long the test agent works on each voice call in the steady-state run.
const HANDLE: Duration = Duration::from_secs(1);

/// The demo tenant without wrap-up time: an agent's next call follows the last.
async fn start() -> Platform {
    let mut tenant = demo();
    tenant.routing.wrap_up_secs = 0;
    Platform::start_with_demo(tenant).await
}

async fn next(statuses: &mut Streaming<v1::InteractionStatus>) -> Option<v1::InteractionStatus> {
    tokio::time::timeout(NEXT_STATUS_WITHIN, statuses.next())
        .await
        .expect("a status within the deadline")
        .map(|status| status.expect("a status, not an error"))
}

fn state(status: &v1::InteractionStatus) -> i32 {
    status.interaction.as_ref().expect("interaction").state
}

async fn queue_calls(client: &mut Client, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let created = client
            .create_interaction(create(
                "general",
                v1::Channel::Voice,
                &format!("{prefix}-{i}"),
            ))
            .await
            .expect("created")
            .into_inner();
        assert_eq!(
            created.queue_position as usize,
            i + 1,
            "nobody is logged in yet"
        );
        ids.push(created.interaction.expect("interaction").id);
    }
    ids
}

async fn watch(client: &mut Client, id: &str) -> Streaming<v1::InteractionStatus> {
    client
        .watch_interaction(v1::WatchInteractionRequest {
            interaction_id: id.into(),
        })
        .await
        .expect("watching")
        .into_inner()
}

/// Logs agent `ana` in, available, and works as ana: accepts each offer it is
/// made, holds the call for `HANDLE`, resolves it; `calls` times. The
/// tenant has no wrap-up time (see [`start`]), so the next call follows at once. Follows the
/// tenant's events from before the login, so the first offer is not missed.
async fn login_and_work_calls(platform: &Platform, calls: usize) {
    let mut client = platform.client(DEMO_KEY).await;
    let mut events = client
        .watch_interactions(v1::WatchInteractionsRequest {})
        .await
        .expect("events")
        .into_inner();
    let store = RoutingStore::connect(&platform.sandbox.redis_url())
        .await
        .unwrap();
    store
        .agent_login(&demo(), "ana", "s-ana", AgentStatus::Available)
        .await
        .unwrap();
    let mut done = 0;
    while done < calls {
        let event = tokio::time::timeout(NEXT_STATUS_WITHIN, events.next())
            .await
            .expect("an event within the deadline")
            .expect("events go on")
            .expect("an event");
        let Some(v1::event::Payload::Interaction(ix)) = event.payload else {
            continue;
        };
        if ix.kind != v1::InteractionEventKind::Offered as i32 || ix.agent_id != "ana" {
            continue;
        }
        client
            .accept_offer(v1::AcceptOfferRequest {
                offer_id: ix.offer_id,
                agent_id: "ana".into(),
            })
            .await
            .expect("accepted");
        // The call itself: the steady pace the estimate must learn.
        tokio::time::sleep(HANDLE).await;
        client
            .resolve(v1::ResolveRequest {
                interaction_id: ix.interaction_id,
                agent_id: "ana".into(),
                disposition: "answered".into(),
                ..Default::default()
            })
            .await
            .expect("resolved");
        done += 1;
    }
}

#[tokio::test]
async fn a_waiting_member_sees_the_position_fall_then_the_offer_then_the_end() {
    let platform = start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let ids = queue_calls(&mut client, "fall", 3).await;
    let mut statuses = watch(&mut client, &ids[2]).await;
    let first = next(&mut statuses).await.expect("a first status at once");
    assert_eq!(state(&first), v1::InteractionState::Queued as i32);
    assert_eq!(first.queue_position, 3);
    assert!(!first.wait_estimated, "no offer seen yet: no estimate");

    let worker = login_and_work_calls(&platform, 3);
    let follow = async {
        let mut positions = vec![first.queue_position];
        let offered = loop {
            let status = next(&mut statuses).await.expect("statuses until the offer");
            if state(&status) == v1::InteractionState::Queued as i32 {
                positions.push(status.queue_position);
                continue;
            }
            break status;
        };
        (positions, offered)
    };
    let ((positions, offered), ()) = tokio::join!(follow, worker);
    assert!(
        positions.windows(2).all(|w| w[1] < w[0]),
        "each status says the member moved up: {positions:?}"
    );
    assert!(
        positions.contains(&2) || positions.contains(&1),
        "{positions:?}"
    );
    assert_eq!(offered.queue_position, 0, "no position once offered");
    let offered_state = state(&offered);
    assert!(
        [
            v1::InteractionState::Offered as i32,
            v1::InteractionState::Assigned as i32
        ]
        .contains(&offered_state),
        "{offered:?}"
    );
    // The worker resolved it: the last status says so, and the stream ends.
    let mut last = offered;
    while let Some(status) = next(&mut statuses).await {
        last = status;
    }
    assert_eq!(state(&last), v1::InteractionState::Resolved as i32);
    platform.stop().await;
}

#[tokio::test]
async fn the_estimated_wait_in_a_steady_queue_is_within_a_fifth_of_the_real_wait() {
    let platform = start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let ids = queue_calls(&mut client, "steady", 12).await;
    let mut statuses = watch(&mut client, &ids[11]).await;
    let worker = login_and_work_calls(&platform, 12);
    let follow = async {
        // The first estimate made once a few calls set the pace, and when.
        let mut estimate: Option<(u32, Duration, Instant)> = None;
        loop {
            let status = next(&mut statuses).await.expect("statuses until the offer");
            if state(&status) != v1::InteractionState::Queued as i32 {
                break;
            }
            if estimate.is_none() && status.wait_estimated && status.queue_position <= 8 {
                estimate = Some((
                    status.queue_position,
                    Duration::from_secs(status.estimated_wait_secs.into()),
                    Instant::now(),
                ));
            }
        }
        let (position, estimated, at) = estimate.expect("an estimate while it waited");
        (position, estimated, at.elapsed())
    };
    let ((position, estimated, actual), ()) = tokio::join!(follow, worker);
    let error = estimated.as_secs_f64() / actual.as_secs_f64() - 1.0;
    println!(
        "at position {position}: estimated {estimated:?}, waited {actual:?} ({:+.0}%)",
        error * 100.0
    );
    // The estimate is in whole seconds (rounded): half a second on top.
    let tolerance = actual.as_secs_f64() * 0.2 + 0.5;
    assert!(
        (estimated.as_secs_f64() - actual.as_secs_f64()).abs() <= tolerance,
        "estimated {estimated:?} for a wait of {actual:?} at position {position}"
    );
    platform.stop().await;
}

#[tokio::test]
async fn nobody_watches_an_interaction_of_another_tenant_or_one_that_does_not_exist() {
    let platform = start().await;
    let mut demo_client = platform.client(DEMO_KEY).await;
    let ids = queue_calls(&mut demo_client, "iso", 1).await;
    let mut other = platform.client(OTHER_KEY).await;
    let cases = [
        (ids[0].as_str(), Code::NotFound),
        ("ix_00000000000000000000000000", Code::NotFound),
        ("not an id!", Code::InvalidArgument),
    ];
    for (id, code) in cases {
        let refused = other
            .watch_interaction(v1::WatchInteractionRequest {
                interaction_id: id.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), code, "{id}: {refused:?}");
    }
    platform.stop().await;
}
