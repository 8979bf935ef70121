//! Replicas die mid-load: three routers and two presence replicas serve 50
//! agents answering at random while 5,000 interactions arrive; one router and
//! later one presence replica are killed without a drain. The event log must
//! then show every interaction created once, never offered or assigned twice
//! at once, no agent over capacity, and no event lost or doubled. The run is
//! made on a single Redis and on a Redis Cluster of three primaries, where
//! the primary holding the tenant is also killed mid-load and restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use careline_domain::tenant::PerChannel;
use careline_e2e::audit::{Audit, complete_log};
use careline_e2e::desk::{Desks, Mix, count};
use careline_e2e::routers::{self, CreateTally, Routers};
use careline_e2e::seed::RunSeed;
use careline_e2e::tenant::{self, API_KEY, TENANT};
use careline_e2e::{Platform, Replica};
use careline_testkit::TestRedis;

const AGENTS: usize = 50;
const INTERACTIONS: usize = 5_000;
/// Creates in flight at once.
const CREATES_IN_FLIGHT: usize = 16;
/// A router is killed once this many interactions were created...
const KILL_ROUTER_AFTER: usize = INTERACTIONS / 3;
/// ... and a presence replica once this many.
const KILL_PRESENCE_AFTER: usize = INTERACTIONS * 2 / 3;
const HEARTBEAT_TTL_SECS: u32 = 10;
const OFFER_TIMEOUT_SECS: u32 = 2;
/// Capacity of every agent per channel.
const CAPACITY: PerChannel = PerChannel {
    voice: 1,
    chat: 3,
    email: 5,
};
/// How agents answer: 70% of offers accepted, 20% rejected, the rest
/// ignored; accepted work is resolved after 20-200 ms.
fn answers() -> Mix {
    Mix {
        accept_percent: 70,
        reject_percent: 20,
        transfer_to_queue_percent: 0,
        transfer_to_agent_percent: 0,
        pending_percent: 0,
        handle_ms: 20..200,
        pending_ms: 0..1,
    }
}
/// How long all agents may take to log in.
const LOGIN_DEADLINE: Duration = Duration::from_secs(30);
/// The whole test, start-up included.
const TEST_DEADLINE: Duration = Duration::from_secs(240);

fn kill(replica: &mut Replica, started: Instant) {
    replica.kill();
    println!(
        "killed {} ({}) at {:.1}s",
        replica.name,
        replica.addr,
        started.elapsed().as_secs_f64()
    );
}

/// How long the tenant's Redis primary stays down in the cluster run.
const PRIMARY_OUTAGE: Duration = Duration::from_secs(2);

/// Kills (SIGKILL) the cluster primary that owns the tenant's slot, and
/// starts it again on its port after [`PRIMARY_OUTAGE`]: it reloads its
/// append-only file (fsynced on every write) and the cluster heals.
async fn fail_tenant_primary(platform: &mut Platform, started: Instant) {
    let TestRedis::Cluster(cluster) = &mut platform.sandbox.redis else {
        unreachable!("the cluster run starts a cluster")
    };
    let key = format!("{}outbox", careline_routing::keys::prefix(TENANT));
    let primary = cluster
        .primary_of(&key)
        .await
        .expect("the tenant's primary");
    cluster.node(primary).kill();
    println!(
        "killed the tenant's Redis primary (node {primary}) at {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(PRIMARY_OUTAGE).await;
    cluster
        .node(primary)
        .restart()
        .await
        .expect("the primary restarts");
    cluster.wait_ready().await.expect("the cluster heals");
    println!(
        "the primary is back and the cluster ok at {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_interaction_is_lost_or_double_assigned_when_a_replica_dies() {
    tokio::time::timeout(TEST_DEADLINE, scenario(false))
        .await
        .unwrap_or_else(|_| panic!("the scenario took longer than {TEST_DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_interaction_is_lost_or_double_assigned_when_a_replica_dies_on_a_redis_cluster() {
    tokio::time::timeout(TEST_DEADLINE, scenario(true))
        .await
        .unwrap_or_else(|_| panic!("the scenario took longer than {TEST_DEADLINE:?}"));
}

async fn scenario(redis_cluster: bool) {
    let run = RunSeed::for_test("replicas::");
    let context = run.context.as_str();
    let started = Instant::now();
    let mut platform = Platform::builder()
        .redis_cluster(redis_cluster)
        .tenant(tenant::under_load(
            AGENTS,
            CAPACITY,
            OFFER_TIMEOUT_SECS,
            HEARTBEAT_TTL_SECS,
        ))
        .routers(3)
        .presence(2)
        .start()
        .await
        .expect("platform starts");
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
    routers::wait_created(&creates, KILL_ROUTER_AFTER, &creator).await;
    kill(&mut platform.routers[2], started);
    routers::wait_created(&creates, KILL_PRESENCE_AFTER, &creator).await;
    kill(&mut platform.presence[1], started);
    if redis_cluster {
        fail_tenant_primary(&mut platform, started).await;
    }
    let created = creator.await.expect("every interaction created");
    let creation_secs = creating.elapsed().as_secs_f64();
    println!("{INTERACTIONS} interactions created in {creation_secs:.1}s");

    // Settle: nothing offered, assigned or pending; only work no agent can take waits.
    let queued = routers::await_settled(&routers, context)
        .await
        .unwrap_or_else(|unsettled| {
            panic!(
                "not settled (held work unchanged for {:?}, or no interaction ended for {:?}): live interactions by state {:?}{context}",
                routers::STALL,
                routers::NO_PROGRESS,
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
    println!(
        "e2e replicas (Redis {}): {INTERACTIONS} interactions via 3 routers (create retries {}, replayed {}), \
         {AGENTS} agents on 2 presence (reconnects {}); offers seen {} (late {}, max lag {} ms) accepted {} rejected {} ignored {}; \
         resolved {} (refused {}, retries {}), notices {}; events {}: offered {} assigned {} \
         rejected {} timed_out {} revoked {} requeued {} resolved {} capacity_released {}; \
         creation {creation_secs:.1}s, elapsed {:.1}s",
        if redis_cluster { "cluster" } else { "single" },
        count(&creates.retries),
        count(&creates.replayed),
        count(&tally.reconnects),
        count(&tally.offers_seen),
        count(&tally.offers_late),
        count(&tally.offer_lag_max_ms),
        count(&tally.accepted),
        count(&tally.rejected),
        count(&tally.ignored),
        count(&tally.resolved),
        count(&tally.finish_refused),
        count(&tally.finish_retries),
        count(&tally.notices),
        events.len(),
        audit.count("INTERACTION_EVENT_KIND_OFFERED"),
        audit.count("INTERACTION_EVENT_KIND_ASSIGNED"),
        audit.count("INTERACTION_EVENT_KIND_OFFER_REJECTED"),
        audit.count("INTERACTION_EVENT_KIND_OFFER_TIMED_OUT"),
        audit.count("INTERACTION_EVENT_KIND_OFFER_REVOKED"),
        audit.count("INTERACTION_EVENT_KIND_REQUEUED"),
        audit.count("INTERACTION_EVENT_KIND_RESOLVED"),
        audit.count("AGENT_EVENT_KIND_CAPACITY_RELEASED"),
        started.elapsed().as_secs_f64(),
    );

    audit.assert_sound(events.len(), sequence, &created, INTERACTIONS, context);
    routers::assert_final_states(&routers, created.into_values(), &audit.last, context).await;
}
