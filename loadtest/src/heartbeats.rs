//! Offer latency while every online agent's heartbeat arrives at once: the
//! open-loop creates-only latency run, first quiet, then while all N agents
//! send a heartbeat together every [`BURST_EVERY`] (in production each agent
//! beats every few seconds; clients that reconnected together keep beating
//! together). Flat in N is the aim: a heartbeat must be cheap enough that
//! thousands of them in one burst barely delay an offer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use careline_domain::tenant::TenantConfig;
use careline_routing::RoutingStore;
use futures::{StreamExt, TryStreamExt};

use crate::phases::{self, Clients, Latency};
use crate::server;

/// Time between two bursts of every agent's heartbeat.
const BURST_EVERY: Duration = Duration::from_secs(1);
/// Heartbeats in flight at once within a burst (several presence replicas
/// with many sessions each).
const BURST_CONCURRENCY: usize = 64;

/// What one agent count measured.
pub struct HeartbeatRow {
    pub agents: usize,
    pub quiet: Latency,
    pub bursting: Latency,
    /// Redis time per heartbeat script, measured on a burst alone.
    pub server_us_per_heartbeat: f64,
    /// Wall time of one burst alone, all N heartbeats.
    pub burst_alone: Duration,
    /// Bursts sent during the bursting latency run, and the slowest of them.
    pub bursts: u32,
    pub slowest_burst: Duration,
}

/// Sends every agent's heartbeat once, `BURST_CONCURRENCY` at a time.
async fn burst(store: &RoutingStore, config: &TenantConfig) -> anyhow::Result<Duration> {
    let started = Instant::now();
    futures::stream::iter(config.agents.iter())
        .map(|agent| async move {
            let session = format!("bench-{}", agent.id);
            store
                .agent_heartbeat(&config.id, &agent.id, &session)
                .await
                .with_context(|| format!("heartbeat of {}", agent.id))
        })
        .buffer_unordered(BURST_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(started.elapsed())
}

/// Measures one agent count on an installed tenant (every agent logged in
/// with the sessions `tenant::install` opens).
pub async fn measure(
    clients: &Clients,
    store: &RoutingStore,
    admin: &mut redis::aio::MultiplexedConnection,
    config: &TenantConfig,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<HeartbeatRow> {
    server::reset_stats(admin).await?;
    let burst_alone = burst(store, config).await?;
    let stats = server::command_stats(admin).await?;
    let (scripts, script_us) = stats.get("evalsha").copied().unwrap_or_default();
    let server_us_per_heartbeat = script_us as f64 / scripts.max(1) as f64;

    let quiet = phases::latency(clients, rate, duration, false).await?;

    let stop = AtomicBool::new(false);
    let beating = async {
        let mut bursts = 0u32;
        let mut slowest = Duration::ZERO;
        let mut every = tokio::time::interval(BURST_EVERY);
        while !stop.load(Ordering::Relaxed) {
            every.tick().await;
            slowest = slowest.max(burst(store, config).await?);
            bursts += 1;
        }
        anyhow::Ok((bursts, slowest))
    };
    let measuring = async {
        let latency = phases::latency(clients, rate, duration, false).await;
        stop.store(true, Ordering::Relaxed);
        latency
    };
    let (bursting, beaten) = tokio::join!(measuring, beating);
    let (bursts, slowest_burst) = beaten?;
    Ok(HeartbeatRow {
        agents: config.agents.len(),
        quiet,
        bursting: bursting?,
        server_us_per_heartbeat,
        burst_alone,
        bursts,
        slowest_burst,
    })
}

/// Prints the rows as a table.
pub fn print_table(rows: &[HeartbeatRow]) {
    println!(
        "\n| online agents | heartbeat script us (Redis) | one burst of all, alone (ms) | create->offer p50 / p99 ms, quiet | p50 / p99 ms, every agent beating together each {}s | bursts (slowest ms) |",
        BURST_EVERY.as_secs()
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let ms = |l: &Latency, q: f64| l.offer_us.value_at_quantile(q) as f64 / 1000.0;
    for row in rows {
        println!(
            "| {} | {:.1} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} | {} ({:.0}) |",
            row.agents,
            row.server_us_per_heartbeat,
            row.burst_alone.as_secs_f64() * 1000.0,
            ms(&row.quiet, 0.5),
            ms(&row.quiet, 0.99),
            ms(&row.bursting, 0.5),
            ms(&row.bursting, 0.99),
            row.bursts,
            row.slowest_burst.as_secs_f64() * 1000.0,
        );
    }
}
