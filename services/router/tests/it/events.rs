//! Events must never vanish: with NATS away the outbox keeps every event and
//! new contacts are refused past its bound; after Redis loses its data the
//! later events are still published (their ids do not repeat).

use std::time::{Duration, Instant};

use careline_proto::v1;
use careline_testkit::eventually;
use tonic::Code;

use crate::harness::{DEMO_KEY, Platform, create};

const TENANT: &str = "demo-health";
/// Longest wait for the outbox to drain once NATS is back.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// A number from the tenant's routing state in the sandbox Redis (`field`: of a hash).
async fn redis_get(platform: &Platform, command: &str, name: &str, field: &[&str]) -> u64 {
    let key = format!("{}{name}", careline_routing::keys::prefix(TENANT));
    let mut redis = platform.sandbox.redis().await.expect("redis connection");
    let value: Option<u64> = redis::cmd(command)
        .arg(key)
        .arg(field)
        .query_async(&mut redis)
        .await
        .expect("redis answers");
    value.unwrap_or(0)
}

/// The routing events stored for the demo tenant (not its `config_applied` announcements).
async fn stored_events(platform: &Platform) -> Vec<v1::Event> {
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.expect("nats client"));
    careline_bus::read_tenant_events(&js, TENANT)
        .await
        .expect("the event log reads back")
        .into_iter()
        .filter(|event| {
            matches!(
                event.payload,
                Some(v1::event::Payload::Interaction(_) | v1::event::Payload::Agent(_))
            )
        })
        .collect()
}

fn is_created(event: &v1::Event) -> bool {
    matches!(
        &event.payload,
        Some(v1::event::Payload::Interaction(ix))
            if ix.kind == v1::InteractionEventKind::Created as i32
    )
}

/// Waits until the tenant's outbox is empty; returns how long it took.
async fn drained(platform: &Platform) -> Duration {
    let started = Instant::now();
    eventually(DRAIN_DEADLINE, "the outbox drains", || async {
        redis_get(platform, "XLEN", "outbox", &[]).await == 0
    })
    .await
    .expect("the outbox drains once NATS is back");
    started.elapsed()
}

#[tokio::test]
async fn nats_down_for_a_minute_under_load_loses_no_event_and_refuses_creates_past_the_bound() {
    const OUTAGE: Duration = Duration::from_secs(60);
    const CREATES_PER_SEC: u32 = 100;
    const BOUND: u64 = 2_000;
    let _recorder = careline_kit::metrics::prometheus_handle().expect("metrics recorder");
    let mut platform = Platform::start_with(|c| c.outbox_max_events = BOUND).await;
    let mut client = platform.client(DEMO_KEY).await;
    let (mut ok, mut refused, mut refusal) = (0u64, 0u64, None);

    platform.sandbox.nats.kill();
    let outage = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_secs(1) / CREATES_PER_SEC);
    while outage.elapsed() < OUTAGE {
        pace.tick().await;
        let key = format!("outage-{}", ok + refused);
        match client
            .create_interaction(create("general", v1::Channel::Chat, &key))
            .await
        {
            Ok(_) => ok += 1,
            Err(status) if status.code() == Code::Unavailable => {
                refused += 1;
                refusal.get_or_insert(status.message().to_string());
            }
            Err(status) => panic!("create {key}: unexpected {status:?}"),
        }
    }
    // Every replica exports the lag while it builds up.
    let pending_metric = format!("careline_outbox_events_pending{{tenant=\"{TENANT}\"}} {BOUND}");
    careline_testkit::assert_eventually!(
        careline_kit::metrics::render()
            .unwrap()
            .contains(&pending_metric),
        "the outbox gauge shows the waiting events"
    );

    platform
        .sandbox
        .nats
        .restart()
        .await
        .expect("nats-server restarts");
    let drain = drained(&platform).await;
    let events = stored_events(&platform).await;
    let produced = redis_get(&platform, "HGET", "settings", &["seq"]).await;
    let created = events.iter().filter(|e| is_created(e)).count() as u64;
    println!(
        "NATS down {OUTAGE:?} at {CREATES_PER_SEC} creates/s, bound {BOUND}: {ok} created OK, \
         {refused} refused, {} events in JetStream of {produced} produced, drained in {drain:?}",
        events.len()
    );

    assert_eq!(
        ok, BOUND,
        "creates succeed up to the bound (one event each)"
    );
    assert!(refused > 0, "creates past the bound are refused");
    assert_eq!(
        refusal.as_deref(),
        Some(
            "events are not reaching NATS: 2000 events wait in the outbox; \
             new contacts are refused until it drains; retry shortly"
        )
    );
    assert_eq!(
        events.len() as u64,
        produced,
        "every event reached JetStream"
    );
    let mut sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    sequences.sort_unstable();
    assert!(
        sequences.iter().copied().eq(1..=produced),
        "no gap and no duplicate in the sequence"
    );
    assert_eq!(created, ok, "one created event per successful create");
    let accepted = client
        .create_interaction(create("general", v1::Channel::Chat, "after-the-outage"))
        .await;
    assert!(accepted.is_ok(), "creates work again: {accepted:?}");
    platform.stop().await;
}

#[tokio::test]
async fn events_after_redis_loses_its_data_are_still_published() {
    const BEFORE: u64 = 20;
    const AFTER: u64 = 15;
    let mut platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    for i in 0..BEFORE {
        client
            .create_interaction(create("general", v1::Channel::Chat, &format!("before-{i}")))
            .await
            .expect("created");
    }
    drained(&platform).await;
    careline_testkit::assert_eventually!(
        stored_events(&platform).await.len() as u64 == BEFORE,
        "the first events are stored"
    );

    // An empty Redis: the per-tenant `seq` counter starts again at 1.
    platform
        .sandbox
        .redis
        .restart()
        .await
        .expect("redis restarts");
    careline_testkit::assert_eventually!(
        client
            .create_interaction(create("general", v1::Channel::Chat, "after-0"))
            .await
            .is_ok(),
        "the worker restores the tenant's settings and creates work again"
    );
    for i in 1..AFTER {
        client
            .create_interaction(create("general", v1::Channel::Chat, &format!("after-{i}")))
            .await
            .expect("created");
    }
    drained(&platform).await;
    careline_testkit::assert_eventually!(
        stored_events(&platform).await.len() as u64 == BEFORE + AFTER,
        "every later event is stored, none dropped as a duplicate"
    );
    let events = stored_events(&platform).await;
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len() as u64, BEFORE + AFTER, "event ids are unique");
    platform.stop().await;
}
