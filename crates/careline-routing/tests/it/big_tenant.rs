//! A configuration change of a 20,000-agent tenant, applied while another
//! tenant's offers keep timing out: how late those offer timeouts run, before
//! and while the big tenant's agents are re-synced (printed, never asserted;
//! what is asserted is that they keep running). Each lateness is exact: the
//! Redis time the timeout ran (the missed agent's `state_since`) less the
//! offer's deadline.

use std::time::{Duration, Instant};

use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Language, Priority};
use careline_routing::AgentStatus;
use careline_routing::keys::prefix;
use careline_testkit::big_tenant;
use futures::StreamExt;

use crate::env::{agent, interaction_request};
use crate::worker::{Replica, tenant};

const WITHIN: Duration = Duration::from_secs(60);
const BIG_AGENTS: usize = 20_000;
const BIG_QUEUES: usize = 50;
/// Agents of the small tenant: each gets one chat offer per round, which times out.
const SMALL_AGENTS: usize = 10;
/// Logins in flight at once while preparing the big tenant.
const LOGINS_IN_FLIGHT: usize = 64;
/// Big-tenant agents whose profile is watched to tell when the re-sync is done.
const SAMPLE_EVERY: usize = 100;
/// Heartbeat TTL of both tenants' agents: longer than the test.
const SESSION_TTL_SECS: u32 = 3_600;
/// Rounds of offer timeouts measured before the change.
const IDLE_ROUNDS: usize = 3;

fn small_agent(n: usize) -> String {
    format!("small-{n}")
}

/// Lateness (ms) of offer timeouts in the small tenant, round by round.
struct OfferTimeouts {
    round: u64,
    chats: Vec<String>,
}

impl OfferTimeouts {
    /// One round: every small agent available, one new chat each, all offers
    /// left to time out; returns how late each timeout ran.
    async fn round(&mut self, replica: &Replica, small: &TenantConfig) -> Vec<i64> {
        let store = &replica.store;
        for chat in self.chats.drain(..) {
            store.abandon(&small.id, &chat).await.unwrap();
        }
        for n in 0..SMALL_AGENTS {
            let id = small_agent(n);
            store
                .agent_set_state(
                    &small.id,
                    &id,
                    &format!("s-{id}"),
                    AgentStatus::Available,
                    "",
                )
                .await
                .unwrap();
        }
        let mut offers = Vec::new();
        for _ in 0..SMALL_AGENTS {
            self.round += 1;
            let request = interaction_request(
                "billing",
                Channel::Chat,
                Language::En,
                Priority::Normal,
                self.round,
            );
            let chat = store
                .create_interaction(&small.id, &request)
                .await
                .unwrap()
                .interaction_id;
            let offered = store.get_interaction(&small.id, &chat).await.unwrap();
            // Not offered (yet, or its offer already timed out): not measured.
            if !offered.offer_id.is_empty() {
                offers.push((offered.agent_id, offered.offer_deadline_ms));
            }
            self.chats.push(chat);
        }
        let mut lateness = Vec::new();
        for (agent_id, deadline_ms) in offers {
            let key = format!("{}agent:{agent_id}", prefix(&small.id));
            let until = Instant::now() + WITHIN;
            let ran_at: i64 = loop {
                // The store's connection waits up to its response timeout,
                // the sandbox's only 500 ms: a slow reply is measured, not fatal.
                let (reason, since): (Option<String>, Option<i64>) = redis::cmd("HMGET")
                    .arg(&key)
                    .arg("reason")
                    .arg("state_since")
                    .query_async(&mut replica.store.connection())
                    .await
                    .unwrap();
                match (reason.as_deref(), since) {
                    (Some("missed"), Some(since)) if since >= deadline_ms => break since,
                    _ => {}
                }
                assert!(Instant::now() < until, "{agent_id}'s offer never timed out");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            lateness.push(ran_at - deadline_ms);
        }
        lateness
    }
}

/// The stored profiles of every [`SAMPLE_EVERY`]-th agent of the big tenant.
async fn sampled_profiles(replica: &Replica, big: &TenantConfig) -> Vec<Option<String>> {
    let mut read = redis::pipe();
    for agent in big.agents.iter().step_by(SAMPLE_EVERY) {
        read.hget(format!("{}agent:{}", prefix(&big.id), agent.id), "profile");
    }
    read.query_async(&mut replica.store.connection())
        .await
        .unwrap()
}

fn summary(lateness: &mut [i64]) -> String {
    lateness.sort_unstable();
    let at = |q: f64| lateness[((lateness.len() - 1) as f64 * q) as usize];
    format!(
        "{} timeouts, late by p50 {} ms, p90 {} ms, max {} ms",
        lateness.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

/// Writes `config` from a thread and runtime of its own, as `careline config
/// apply` does from its own process: its validation and encoding (seconds of
/// CPU in a debug build) must not run on the service's runtime.
async fn apply_elsewhere(nats_url: String, config: TenantConfig) -> Duration {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = async_nats::connect(nats_url).await.unwrap();
            let store = careline_bus::TenantStore::open(&async_nats::jetstream::new(client), None)
                .await
                .unwrap();
            let started = Instant::now();
            store.put(&config).await.unwrap();
            started.elapsed()
        })
    })
    .await
    .unwrap()
}

// Several workers, as the services run (`#[tokio::main]`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_timeouts_of_another_tenant_keep_running_while_a_20000_agent_tenant_is_re_synced() {
    // Nobody sends heartbeats here: sessions last the whole test.
    let mut big = big_tenant("a-big", BIG_AGENTS, BIG_QUEUES);
    big.routing.heartbeat_ttl_secs = SESSION_TTL_SECS;
    let small = tenant("b-small", |c| {
        c.routing.offer_timeout_secs.chat = 1;
        c.routing.capacity.chat = 1;
        c.routing.heartbeat_ttl_secs = SESSION_TTL_SECS;
        for n in 0..SMALL_AGENTS {
            c.agents
                .push(agent(&small_agent(n), &[("billing", 5)], &[Language::En]));
        }
    });
    let mut replica = Replica::new(&[&big, &small]).await;
    // Started first, its initial sync finds no agent online: the rounds
    // before the change measure a worker with nothing else to do.
    replica.start_worker().await;
    let store = &replica.store;
    store.sync_tenant(&big).await.unwrap();
    store.sync_tenant(&small).await.unwrap();
    let started = Instant::now();
    futures::stream::iter(&big.agents)
        .map(|agent| async {
            store
                .agent_login(
                    &big,
                    &agent.id,
                    &format!("s-{}", agent.id),
                    AgentStatus::Available,
                )
                .await
                .unwrap();
        })
        .buffer_unordered(LOGINS_IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    println!(
        "{BIG_AGENTS} agents of a-big logged in in {:?}",
        started.elapsed()
    );
    for n in 0..SMALL_AGENTS {
        let id = small_agent(n);
        store
            .agent_login(&small, &id, &format!("s-{id}"), AgentStatus::Available)
            .await
            .unwrap();
    }
    let mut timeouts = OfferTimeouts {
        round: 0,
        chats: Vec::new(),
    };
    let mut idle = Vec::new();
    for _ in 0..IDLE_ROUNDS {
        idle.extend(timeouts.round(&replica, &small).await);
    }

    // Every agent's proficiencies change: each logged-in agent is re-profiled.
    let before = sampled_profiles(&replica, &big).await;
    let mut changed = big.clone();
    for agent in &mut changed.agents {
        for level in agent.skills.values_mut() {
            *level += 1;
        }
    }
    println!("before the change: {}", summary(&mut idle));
    let started = Instant::now();
    let put = apply_elsewhere(replica.nats_url(), changed).await;
    let mut during = Vec::new();
    let mut rounds = 0;
    let synced = loop {
        let round = timeouts.round(&replica, &small).await;
        println!(
            "  round ending {:?} after the change: late by up to {} ms",
            started.elapsed(),
            round.iter().max().unwrap_or(&0)
        );
        during.extend(round);
        rounds += 1;
        let now = sampled_profiles(&replica, &big).await;
        if now.iter().zip(&before).all(|(now, before)| now != before) {
            break started.elapsed();
        }
        assert!(started.elapsed() < WITHIN * 5, "a-big was never re-synced");
    };
    println!(
        "a-big ({BIG_AGENTS} agents) changed: put {put:?}, re-synced after {synced:?}; b-small's offer timeouts:\n  \
         before: {}\n  during: {} ({rounds} rounds)",
        summary(&mut idle),
        summary(&mut during)
    );
    let slowest: redis::Value = replica.redis(redis::cmd("SLOWLOG").arg("GET").arg(5)).await;
    println!("slowest Redis commands: {slowest:?}");
    assert!(!during.is_empty(), "b-small's offers stopped timing out");
    replica.stop().await;
}
