//! The chaos run: the platform as deployed — two `careline-router` and two
//! `careline-presence` processes over a Redis with its append-only file on
//! and NATS JetStream — takes 10,000 interactions while 50 agents accept,
//! reject, ignore, transfer (to a queue and to an agent), park and resolve
//! them. After a steady phase without faults, a random replica is killed
//! with `kill -9` every few seconds and started again on its port; Redis is
//! killed and restarted twice (the first time syncing its append-only file
//! every second, the second time on every write) and NATS once (same store
//! and port). The event log must then show every interaction created once
//! and ending resolved or queued, none offered or assigned to two agents at
//! once, no agent over capacity, and the events numbered 1..N with distinct
//! ids. Every random choice comes from one seed, printed with how to replay.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use careline_domain::tenant::PerChannel;
use careline_e2e::ProcessPlatform;
use careline_e2e::audit::{Audit, complete_log, histories, reassigned_to_same_agent};
use careline_e2e::desk::{Desks, Mix, count};
use careline_e2e::routers::{self, CreateTally, Routers};
use careline_e2e::seed::RunSeed;
use careline_e2e::tenant::{self, API_KEY, TENANT};
use careline_proto::v1;
use careline_testkit::AppendFsync;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

/// Interactions created, unless [`INTERACTIONS_ENV`] says otherwise.
const DEFAULT_INTERACTIONS: usize = 10_000;
/// Scales the run down (or up) for a quick local try.
const INTERACTIONS_ENV: &str = "CARELINE_CHAOS_INTERACTIONS";
/// Percent of the interactions created in the steady phase, before any fault.
const STEADY_PERCENT: usize = 20;
const ROUTERS: usize = 2;
const PRESENCE: usize = 2;
const AGENTS: usize = 50;
/// Creates in flight at once.
const CREATES_IN_FLIGHT: usize = 16;
const HEARTBEAT_TTL_SECS: u32 = 10;
const OFFER_TIMEOUT_SECS: u32 = 2;
/// Capacity of every agent per channel.
const CAPACITY: PerChannel = PerChannel {
    voice: 1,
    chat: 3,
    email: 5,
};
/// How long work sent to one agent (a follow-up back to its agent, a
/// transfer to an agent) waits for that agent before it goes back to its
/// queue; short, so the run settles soon after the creates end.
const PERSONAL_FALLBACK_SECS: u32 = 10;
/// Time between two replica kills, drawn from the seed.
const KILL_EVERY_MS: std::ops::Range<u64> = 2_000..5_000;
/// How long a killed replica stays down before it is started again.
const DOWN_FOR_MS: std::ops::Range<u64> = 200..1_500;
/// Progress of the faulty phase (percent of its creates) at which Redis is
/// restarted under `appendfsync everysec`, Redis again under `always`, and
/// NATS.
const REDIS_EVERYSEC_RESTART_AT: usize = 20;
const REDIS_ALWAYS_RESTART_AT: usize = 50;
const NATS_RESTART_AT: usize = 75;
/// How long all agents may take to log in.
const LOGIN_DEADLINE: Duration = Duration::from_secs(30);
/// The whole test, start-up included: the creates outrun the agents, and
/// the backlog they leave (about 8,000 queued on 2 cores) drains at the
/// agents' pace, 2-3 minutes here.
const TEST_DEADLINE: Duration = Duration::from_secs(480);

/// How agents answer: offers 70% accepted, 15% rejected, 15% ignored (they
/// time out); accepted work 10% transferred to a queue, 5% to another
/// agent, 10% parked for a 0.5-3 s follow-up, the rest resolved.
fn answers() -> Mix {
    Mix {
        accept_percent: 70,
        reject_percent: 15,
        transfer_to_queue_percent: 10,
        transfer_to_agent_percent: 5,
        pending_percent: 10,
        handle_ms: 20..300,
        pending_ms: 500..3_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_interaction_is_lost_or_double_assigned_when_processes_redis_and_nats_crash() {
    let run = RunSeed::for_test("chaos::");
    tokio::time::timeout(TEST_DEADLINE, scenario(&run))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the scenario took longer than {TEST_DEADLINE:?}{}",
                run.context
            )
        });
}

/// The interactions the run creates: [`INTERACTIONS_ENV`] or the default.
fn interactions(context: &str) -> usize {
    match std::env::var(INTERACTIONS_ENV) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{INTERACTIONS_ENV}={value:?} is not a count{context}")),
        Err(_) => DEFAULT_INTERACTIONS,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A span of wall-clock time, to count what the event log says happened in it.
#[derive(Debug, Clone, Copy)]
struct Window {
    from_ms: i64,
    to_ms: i64,
}

impl Window {
    fn secs(self) -> f64 {
        (self.to_ms - self.from_ms) as f64 / 1000.0
    }

    /// Routing decisions (offers made: an interaction matched to an agent)
    /// and every routing event, per second within the window.
    fn rates(self, events: &[v1::Event]) -> (f64, f64) {
        let inside: Vec<&v1::Event> = events
            .iter()
            .filter(|e| (self.from_ms..self.to_ms).contains(&e.occurred_at_ms))
            .collect();
        let offers = inside
            .iter()
            .filter(|e| {
                matches!(&e.payload, Some(v1::event::Payload::Interaction(ix))
                    if ix.kind == v1::InteractionEventKind::Offered as i32)
            })
            .count();
        (
            offers as f64 / self.secs(),
            inside.len() as f64 / self.secs(),
        )
    }
}

/// The faults, one at a time so a replica never restarts while Redis or
/// NATS is down: every few seconds a random replica is killed and started
/// again on its port; at set points of the faulty phase Redis (twice) and
/// NATS (once) are killed and restarted instead. Ends when `done` fires,
/// after the server faults not yet run.
async fn inject_faults(
    platform: &mut ProcessPlatform,
    creates: &CreateTally,
    (first_index, total): (usize, usize),
    done: CancellationToken,
    run: &RunSeed,
    started: Instant,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(run.seed.rotate_left(17));
    let mut log = Vec::new();
    let mut infra = [
        (
            REDIS_EVERYSEC_RESTART_AT,
            Infra::Redis(AppendFsync::EverySec),
        ),
        (REDIS_ALWAYS_RESTART_AT, Infra::Redis(AppendFsync::Always)),
        (NATS_RESTART_AT, Infra::Nats),
    ]
    .into_iter()
    .peekable();
    let mut note = |what: String| {
        let line = format!("{:6.1}s {what}", started.elapsed().as_secs_f64());
        println!("fault: {line}");
        log.push(line);
    };
    loop {
        let pause = Duration::from_millis(rng.random_range(KILL_EVERY_MS));
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        let progress = (creates.created.load(Ordering::Relaxed) - first_index) * 100 / total.max(1);
        if let Some((_, what)) = infra.next_if(|(at, _)| progress >= *at) {
            let outage = restart_server(platform, &what, run).await;
            note(format!("{outage} at {progress}% of the faulty phase"));
            continue;
        }
        let index = rng.random_range(0..platform.replica_count());
        let down_for = Duration::from_millis(rng.random_range(DOWN_FOR_MS));
        let replica = platform.replica_mut(index);
        replica.kill();
        tokio::time::sleep(down_for).await;
        let back = Instant::now();
        replica
            .restart(TENANT)
            .await
            .unwrap_or_else(|e| panic!("restarting {}: {e:#}{}", replica.name, run.context));
        note(format!(
            "{} kill -9, down {} ms, serving again {} ms after its start",
            replica.name,
            down_for.as_millis(),
            back.elapsed().as_millis()
        ));
    }
    // A small run may end its creates before every server fault came due:
    // they happen now, while the agents still work.
    for (_, what) in infra {
        let outage = restart_server(platform, &what, run).await;
        note(format!("{outage} after the creates ended"));
    }
    log
}

/// Kills and restarts a server every replica depends on; says how long it
/// was out.
async fn restart_server(platform: &mut ProcessPlatform, what: &Infra, run: &RunSeed) -> String {
    let outage = Instant::now();
    match what {
        Infra::Redis(fsync) => {
            let mut redis = platform.sandbox.redis().await.expect("redis");
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("appendfsync")
                .arg(fsync.as_str())
                .query_async::<()>(&mut redis)
                .await
                .unwrap_or_else(|e| panic!("CONFIG SET appendfsync: {e}{}", run.context));
            platform
                .sandbox
                .redis
                .restart()
                .await
                .unwrap_or_else(|e| panic!("redis-server restart: {e:#}{}", run.context));
            format!(
                "redis-server killed (appendfsync {}) and back in {} ms",
                fsync.as_str(),
                outage.elapsed().as_millis()
            )
        }
        Infra::Nats => {
            platform
                .sandbox
                .nats
                .restart()
                .await
                .unwrap_or_else(|e| panic!("nats-server restart: {e:#}{}", run.context));
            format!(
                "nats-server killed and back in {} ms",
                outage.elapsed().as_millis()
            )
        }
    }
}

/// A fault of a server every replica depends on.
#[derive(Debug)]
enum Infra {
    /// Redis, with its append-only file synced this way when killed.
    Redis(AppendFsync),
    Nats,
}

async fn scenario(run: &RunSeed) {
    let context = run.context.as_str();
    let total = interactions(context);
    let steady = total * STEADY_PERCENT / 100;
    let started = Instant::now();
    let mut tenant = tenant::under_load(AGENTS, CAPACITY, OFFER_TIMEOUT_SECS, HEARTBEAT_TTL_SECS);
    tenant.routing.personal_fallback_secs = PERSONAL_FALLBACK_SECS;
    let mut platform = ProcessPlatform::start(tenant, ROUTERS, PRESENCE, AppendFsync::EverySec)
        .await
        .unwrap_or_else(|e| panic!("the platform starts: {e:#}{context}"));
    println!(
        "{ROUTERS} routers + {PRESENCE} presence processes serving at {:.1}s (logs in {})",
        started.elapsed().as_secs_f64(),
        platform.log_dir().display()
    );
    let routers = Routers::new(&platform.router_addrs(), API_KEY, run.seed);
    let desks = Desks::for_tenant(
        &platform.tenant,
        platform.presence_addrs(),
        routers.clone(),
        answers(),
    );
    let tally = desks.tally.clone();
    let running = desks.log_in_all(run.seed, LOGIN_DEADLINE, context).await;

    // Steady state: no faults.
    let batch = uuid::Uuid::new_v4().simple().to_string();
    let creates = Arc::new(CreateTally::default());
    let steady_from = now_ms();
    let mut created = routers::spawn_creates(
        &routers,
        &creates,
        0..steady,
        CREATES_IN_FLIGHT,
        &batch,
        run,
    )
    .await
    .expect("steady creates");
    let steady_window = Window {
        from_ms: steady_from,
        to_ms: now_ms(),
    };
    println!(
        "steady phase: {steady} interactions in {:.1}s",
        steady_window.secs()
    );

    // Faults while the rest arrives.
    let chaos_from = now_ms();
    let creator = routers::spawn_creates(
        &routers,
        &creates,
        steady..total,
        CREATES_IN_FLIGHT,
        &batch,
        run,
    );
    let done = CancellationToken::new();
    let faults = {
        let done = done.clone();
        let creates = creates.clone();
        let platform = &mut platform;
        async move {
            inject_faults(
                platform,
                &creates,
                (steady, total - steady),
                done,
                run,
                started,
            )
            .await
        }
    };
    let finish = async {
        let batch = creator.await.expect("faulty-phase creates");
        done.cancel();
        batch
    };
    let (fault_log, chaos_batch) = tokio::join!(faults, finish);
    let chaos_window = Window {
        from_ms: chaos_from,
        to_ms: now_ms(),
    };
    created.extend(chaos_batch);
    println!(
        "faulty phase: {} interactions in {:.1}s, {} faults",
        total - steady,
        chaos_window.secs(),
        fault_log.len()
    );

    // Not settling is checked after the log audit, whose findings come first.
    let settled = routers::await_settled(&routers, context).await;
    let queued = settled.as_ref().copied().unwrap_or(0);
    println!(
        "settle {} at {:.1}s",
        if settled.is_ok() { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    desks.close(running, settled.is_ok(), context).await;

    let mut redis = platform.sandbox.redis().await.expect("redis");
    let (events, sequence) = complete_log(&platform.jetstream, &mut redis, TENANT)
        .await
        .unwrap_or_else(|e| panic!("reading the event log: {e:#}{context}"));
    let audit = Audit::replay(&events, CAPACITY);
    let (steady_decisions, steady_events) = steady_window.rates(&events);
    let (chaos_decisions, chaos_events) = chaos_window.rates(&events);
    let restarts: u32 = platform
        .routers
        .iter()
        .chain(&platform.presence)
        .map(|r| r.restarts)
        .sum();
    println!(
        "e2e chaos (seed {}): {total} interactions via {ROUTERS} router processes (create retries {}, replayed {}), \
         {AGENTS} agents on {PRESENCE} presence processes (reconnects {}); {restarts} replica kills, 2 redis and 1 nats restarts; \
         offers seen {} (late {}, max lag {} ms) accepted {} rejected {} ignored {}; resolved {} transferred to queue {} \
         to agent {} pending {} (refused {}, retries {}), notices {}; events {}: offered {} assigned {} rejected {} \
         timed_out {} revoked {} requeued {} transferred {} pending {} overflowed {} resolved {}; left queued {queued}; \
         elapsed {:.1}s",
        run.seed,
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
        count(&tally.transferred_to_queue),
        count(&tally.transferred_to_agent),
        count(&tally.pending),
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
        audit.count("INTERACTION_EVENT_KIND_TRANSFERRED"),
        audit.count("INTERACTION_EVENT_KIND_PENDING"),
        audit.count("INTERACTION_EVENT_KIND_OVERFLOWED"),
        audit.count("INTERACTION_EVENT_KIND_RESOLVED"),
        started.elapsed().as_secs_f64(),
    );
    println!(
        "e2e chaos throughput: steady {:.0} creates/s, {steady_decisions:.0} routing decisions/s \
         ({steady_events:.0} events/s); under faults {:.0} creates/s, {chaos_decisions:.0} routing \
         decisions/s ({chaos_events:.0} events/s)",
        steady as f64 / steady_window.secs(),
        (total - steady) as f64 / chaos_window.secs(),
    );

    audit.assert_sound(events.len(), sequence, &created, total, context);
    if let Err(unsettled) = settled {
        let ids: Vec<String> = unsettled.iter().map(|ix| ix.id.clone()).collect();
        panic!(
            "not settled (held work unchanged for {:?}, or no interaction ended for {:?}): {} interactions still held, by state {:?}; \
             {} of them were assigned a second time to an agent that had held them before; \
             what the log says of the first ones:{}{context}",
            routers::STALL,
            routers::NO_PROGRESS,
            unsettled.len(),
            routers::state_counts(&unsettled),
            reassigned_to_same_agent(&events, &ids).len(),
            histories(&events, &ids)
        );
    }
    routers::assert_final_states(&routers, created.into_values(), &audit.last, context).await;
}
