//! `--relay-r3`: how fast one replica's outbox relay publishes a backlog to
//! the event stream replicated on 3 JetStream servers (R3, a 3-node cluster
//! on this machine, JetStream's default sync), with its long batches sent as
//! atomic batches (`CARELINE_NATS_ATOMIC_BATCHES`) vs event by event. The
//! backlog is written while no relay runs, then a replica's backend starts
//! and its relay drains it: the rate is events stored per second from the
//! backend's start to an empty outbox. A first backend starts and stops
//! before, so every measurement finds the stream and the relay's consumer
//! group made.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use async_nats::jetstream;
use careline_bus::TenantStore;
use careline_kit::config::CommonConfig;
use careline_localdev::{NatsCluster, RedisServer};
use careline_routing::{AgentStatus, Backend, RoutingStore};
use tokio_util::sync::CancellationToken;

use crate::durability::{backlog, drain, events_stored, quiet_tenant};
use crate::phases::{self, Clients};
use crate::tenant;

/// Servers of the cluster, and replicas of its event stream.
const NODES: usize = 3;
/// Creates written before each drain (2 events each: created, offered);
/// all rounds' creates together stay within the agents' capacity, so each
/// ends in an offer.
const BACKLOG_CREATES: u64 = 40_000;
/// Rounds of the two measurements, alternating which goes first.
const ROUNDS: usize = 2;
/// Longest the backlog may take to write (it takes seconds).
const BACKLOG_DEADLINE: Duration = Duration::from_secs(120);

/// One drain.
struct Drain {
    atomic: bool,
    round: usize,
    events: u64,
    elapsed: Duration,
}

impl Drain {
    fn per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Starts Redis and a 3-node NATS cluster, drains a backlog of
/// [`BACKLOG_CREATES`] creates with atomic batches off and on, in
/// [`ROUNDS`] rounds, and prints the rates.
pub async fn run(concurrency: usize) -> anyhow::Result<()> {
    let config = quiet_tenant()?;
    let redis = RedisServer::start()
        .await
        .context("starting redis-server")?;
    let cluster = NatsCluster::start(NODES)
        .await
        .context("starting a 3-node nats-server cluster")?;
    let js = jetstream::new(async_nats::connect(cluster.urls()).await?);
    TenantStore::open(&js, Some(NODES))
        .await?
        .put(&config)
        .await
        .context("writing the tenant")?;
    let store = RoutingStore::connect(&redis.url())
        .await?
        .with_outbox_max_events(u64::MAX);
    tenant::load(&store, &config, AgentStatus::Available).await?;
    let clients = Clients::shared(&store, &config.id);
    let shutdown = CancellationToken::new();
    let warm_up = Backend::start(&common(&redis, &cluster, false), "bench", &shutdown).await?;
    shutdown.cancel();
    warm_up.stopped().await;
    println!(
        "relay on R3: {NODES}-node JetStream cluster (default sync), event stream with {NODES} \
         replicas; per measurement {BACKLOG_CREATES} creates ({} events) written with no relay \
         running, then one replica's backend starts and its relay publishes them",
        2 * BACKLOG_CREATES
    );
    let mut drains = Vec::new();
    for round in 1..=ROUNDS {
        let order = if round % 2 == 1 {
            [false, true]
        } else {
            [true, false]
        };
        for atomic in order {
            let written = phases::throughput(
                &clients,
                concurrency,
                BACKLOG_CREATES,
                BACKLOG_DEADLINE,
                false,
            )
            .await;
            ensure!(
                written.creates == BACKLOG_CREATES && written.errors == 0,
                "wrote {} of {BACKLOG_CREATES} creates ({} errors)",
                written.creates,
                written.errors
            );
            let waiting = backlog(&store, &config.id).await?;
            let (events, elapsed) =
                measure(&common(&redis, &cluster, atomic), &js, &store, &config.id).await?;
            let drain = Drain {
                atomic,
                round,
                events,
                elapsed,
            };
            println!(
                "round {round}, atomic batches {}: {waiting} events waiting; {} stored in {:.2}s = {:.0} events/s (load average {})",
                on_off(atomic),
                drain.events,
                drain.elapsed.as_secs_f64(),
                drain.per_sec(),
                crate::load_average()
            );
            drains.push(drain);
        }
    }
    print_table(&drains);
    Ok(())
}

/// One replica's settings, with atomic batches `atomic`.
fn common(redis: &RedisServer, cluster: &NatsCluster, atomic: bool) -> CommonConfig {
    CommonConfig {
        redis_url: redis.url(),
        nats_url: cluster.url(),
        nats_replicas: Some(NODES),
        nats_atomic_batches: atomic,
        outbox_max_events: u64::MAX,
        ..CommonConfig::default()
    }
}

/// Starts a backend and counts the events its relay stores from then until
/// the outbox is empty (what it published while starting is left out), and
/// how long that took.
async fn measure(
    common: &CommonConfig,
    js: &jetstream::Context,
    store: &RoutingStore,
    tenant: &str,
) -> anyhow::Result<(u64, Duration)> {
    let shutdown = CancellationToken::new();
    let backend = Backend::start(common, "bench", &shutdown).await?;
    let start = Instant::now();
    let stored_before = events_stored(js).await?;
    drain(store, tenant, "relay on R3").await?;
    let elapsed = start.elapsed();
    let events = events_stored(js).await? - stored_before;
    shutdown.cancel();
    backend.stopped().await;
    Ok((events, elapsed))
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn print_table(drains: &[Drain]) {
    println!("\n| atomic batches | round | events | drained in s | events/s |");
    println!("|---|---:|---:|---:|---:|");
    for d in drains {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} |",
            on_off(d.atomic),
            d.round,
            d.events,
            d.elapsed.as_secs_f64(),
            d.per_sec()
        );
    }
    let rate = |atomic: bool| {
        let of = || drains.iter().filter(|d| d.atomic == atomic);
        of().map(|d| d.events).sum::<u64>() as f64
            / of().map(|d| d.elapsed.as_secs_f64()).sum::<f64>()
    };
    let (on, off) = (rate(true), rate(false));
    println!(
        "\natomic batches on vs off, R3: {on:.0} / {off:.0} events/s = {:.2}x",
        on / off
    );
}
