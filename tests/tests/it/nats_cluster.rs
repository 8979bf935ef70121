//! A NATS node dies mid-load: two routers and a presence replica over a
//! 3-node NATS cluster, the event stream and the tenant bucket kept on all
//! three nodes (`--nats-replicas 3`), serve 20 agents answering at random
//! while 3,000 interactions arrive. Once a third are created, the node leading
//! the event stream is killed (`kill -9`); the tenant's configuration must
//! still read back with it down. At two thirds it is started again on its
//! ports and store, and must catch up. The event log must then show every
//! interaction created once, every event stored exactly once (numbered 1..N,
//! distinct ids), none assigned twice, no agent over capacity.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use careline_bus::{EVENTS_STREAM, TENANTS_BUCKET, TenantStore, read_tenant_events};
use careline_domain::tenant::PerChannel;
use careline_e2e::Platform;
use careline_e2e::audit::{Audit, complete_log};
use careline_e2e::desk::{Desks, Mix, count};
use careline_e2e::routers::{self, CreateTally, Routers};
use careline_e2e::seed::RunSeed;
use careline_e2e::tenant::{self, API_KEY, TENANT};
use careline_testkit::NatsCluster;

const NODES: usize = 3;
const ROUTERS: usize = 2;
const AGENTS: usize = 20;
const INTERACTIONS: usize = 3_000;
/// Creates in flight at once.
const CREATES_IN_FLIGHT: usize = 16;
/// The event stream's leader node is killed once this many interactions were created...
const KILL_NODE_AFTER: usize = INTERACTIONS / 3;
/// ... and started again once this many.
const RESTART_NODE_AFTER: usize = INTERACTIONS * 2 / 3;
const HEARTBEAT_TTL_SECS: u32 = 10;
const OFFER_TIMEOUT_SECS: u32 = 2;
/// Capacity of every agent per channel.
const CAPACITY: PerChannel = PerChannel {
    voice: 1,
    chat: 3,
    email: 5,
};
/// How agents answer: 80% of offers accepted, 10% rejected, the rest
/// ignored; accepted work is resolved after 20-200 ms.
fn answers() -> Mix {
    Mix {
        accept_percent: 80,
        reject_percent: 10,
        transfer_to_queue_percent: 0,
        transfer_to_agent_percent: 0,
        pending_percent: 0,
        handle_ms: 20..200,
        pending_ms: 0..1,
    }
}
/// How long all agents may take to log in.
const LOGIN_DEADLINE: Duration = Duration::from_secs(30);
/// How long a read of the tenant bucket may take while the client finds a live node.
const READ_DEADLINE: Duration = Duration::from_secs(15);
/// How long the restarted node may take to hold current copies of both streams.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);
/// The whole test, start-up included.
const TEST_DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_or_doubled_when_a_nats_node_dies_under_load() {
    tokio::time::timeout(TEST_DEADLINE, scenario())
        .await
        .unwrap_or_else(|_| panic!("the scenario took longer than {TEST_DEADLINE:?}"));
}

/// The index of the node named `name` (`n0`, ...).
fn node_index(cluster: &NatsCluster, name: &str) -> usize {
    (0..cluster.size())
        .find(|&index| cluster.name(index) == name)
        .unwrap_or_else(|| panic!("no node named {name}"))
}

/// The stream's leader and how many replicas are current, when the leader answers.
async fn stream_state(js: &jetstream::Context, stream: &str) -> Option<(String, usize)> {
    let mut stream = js.get_stream(stream).await.ok()?;
    let info = stream.info().await.ok()?;
    let cluster = info.cluster.as_ref()?;
    let current = 1 + cluster.replicas.iter().filter(|r| r.current).count();
    Some((cluster.leader.clone()?, current))
}

async fn scenario() {
    let run = RunSeed::for_test("nats_cluster::");
    let context = run.context.as_str();
    let started = Instant::now();
    let mut platform = Platform::builder()
        .tenant(tenant::under_load(
            AGENTS,
            CAPACITY,
            OFFER_TIMEOUT_SECS,
            HEARTBEAT_TTL_SECS,
        ))
        .routers(ROUTERS)
        .presence(1)
        .start_with_nats_cluster(NODES)
        .await
        .expect("platform over a NATS cluster starts");
    let kv_stream = format!("KV_{TENANTS_BUCKET}");
    for stream in [EVENTS_STREAM, kv_stream.as_str()] {
        let (_, current) = stream_state(&platform.jetstream, stream)
            .await
            .expect("stream info");
        assert_eq!(current, NODES, "{stream} is kept on every node{context}");
    }
    let routers = Routers::new(&platform.router_addrs(), API_KEY, run.seed);
    let desks = Desks::for_tenant(
        &platform.tenant,
        platform.presence_addrs(),
        routers.clone(),
        answers(),
    );
    let tally = desks.tally.clone();
    let running = desks.log_in_all(run.seed, LOGIN_DEADLINE, context).await;
    println!(
        "{AGENTS} agents logged in at {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let creating = Instant::now();
    let creates = Arc::new(CreateTally::default());
    let batch = uuid::Uuid::new_v4().simple().to_string();
    let creator = routers::spawn_creates(
        &routers,
        &creates,
        0..INTERACTIONS,
        CREATES_IN_FLIGHT,
        &batch,
        &run,
    );

    routers::wait_created(&creates, KILL_NODE_AFTER, &creator).await;
    let (leader, _) = stream_state(&platform.jetstream, EVENTS_STREAM)
        .await
        .expect("the event stream has a leader");
    let victim = node_index(&platform.sandbox.nats, &leader);
    platform.sandbox.nats.kill(victim);
    println!(
        "killed NATS node {leader} (leader of {EVENTS_STREAM}) at {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let store = TenantStore::open(&platform.jetstream, Some(NODES))
        .await
        .expect("the tenant bucket opens with a node down");
    let read_started = Instant::now();
    careline_testkit::eventually(
        READ_DEADLINE,
        "the tenant reads back with a node down",
        || {
            let store = store.clone();
            let expected = platform.tenant.clone();
            async move { matches!(store.get(TENANT).await, Ok(Some(config)) if config == expected) }
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}{context}"));
    println!(
        "tenant configuration read with {leader} down in {} ms",
        read_started.elapsed().as_millis()
    );

    routers::wait_created(&creates, RESTART_NODE_AFTER, &creator).await;
    platform
        .sandbox
        .nats
        .restart(victim)
        .await
        .expect("the killed node restarts");
    println!(
        "restarted NATS node {leader} at {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let created = creator.await.expect("every interaction created");
    let creation_secs = creating.elapsed().as_secs_f64();
    println!("{INTERACTIONS} interactions created in {creation_secs:.1}s");

    let queued = routers::await_settled(&routers, context)
        .await
        .unwrap_or_else(|unsettled| {
            panic!(
                "not settled: live interactions by state {:?}{context}",
                routers::state_counts(&unsettled)
            )
        });
    println!(
        "settled at {:.1}s with {queued} queued",
        started.elapsed().as_secs_f64()
    );
    desks.close(running, true, context).await;

    let mut redis = platform.sandbox.redis().await.expect("redis");
    let (events, sequence) = complete_log(&platform.jetstream, &mut redis, TENANT)
        .await
        .expect("the event log");
    let audit = Audit::replay(&events, CAPACITY);

    let catch_up_started = Instant::now();
    for stream in [EVENTS_STREAM, kv_stream.as_str()] {
        let what = format!("every copy of {stream} current after {leader} restarted");
        careline_testkit::eventually(CATCH_UP_DEADLINE, &what, || {
            let js = platform.jetstream.clone();
            async move { matches!(stream_state(&js, stream).await, Some((_, NODES))) }
        })
        .await
        .unwrap_or_else(|error| panic!("{error}{context}"));
    }
    // Every event the stream holds, also those after the audited sequence
    // (agents going offline once their desks stopped): each id stored once.
    let stored = read_tenant_events(&platform.jetstream, TENANT)
        .await
        .expect("the tenant's events");
    let distinct: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    let stored = stored.len();
    assert_eq!(
        distinct.len(),
        stored,
        "every event id is stored once{context}"
    );
    println!(
        "e2e nats cluster: {INTERACTIONS} interactions via {ROUTERS} routers over {NODES} NATS nodes \
         (R{NODES}), node {leader} killed and restarted (create retries {}, replayed {}); \
         offers seen {} accepted {} rejected {} ignored {}, resolved {}, desk reconnects {}; \
         routing events {} (sequence {sequence}), tenant events stored {stored} (distinct ids); offered {} assigned {} \
         timed_out {} resolved {}; copies current {} ms after the audit; creation {creation_secs:.1}s, \
         elapsed {:.1}s",
        count(&creates.retries),
        count(&creates.replayed),
        count(&tally.offers_seen),
        count(&tally.accepted),
        count(&tally.rejected),
        count(&tally.ignored),
        count(&tally.resolved),
        count(&tally.reconnects),
        events.len(),
        audit.count("INTERACTION_EVENT_KIND_OFFERED"),
        audit.count("INTERACTION_EVENT_KIND_ASSIGNED"),
        audit.count("INTERACTION_EVENT_KIND_OFFER_TIMED_OUT"),
        audit.count("INTERACTION_EVENT_KIND_RESOLVED"),
        catch_up_started.elapsed().as_millis(),
        started.elapsed().as_secs_f64(),
    );

    audit.assert_sound(events.len(), sequence, &created, INTERACTIONS, context);
    routers::assert_final_states(&routers, created.into_values(), &audit.last, context).await;
}
