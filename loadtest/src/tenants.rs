//! What many tenants cost when they are idle: one routing replica (the real
//! background worker: tenant sync, timer checks, outbox relay, housekeeping)
//! against a real Redis and NATS holding N tenants with nothing to do, and
//! the Redis commands and CPU it spends per second once settled.

use std::time::{Duration, Instant};

use anyhow::Context;
use careline_bus::TenantStore;
use careline_kit::config::CommonConfig;
use careline_localdev::{NatsServer, RedisServer};
use careline_routing::Backend;
use tokio_util::sync::CancellationToken;

use crate::server;

/// How long the worker gets to apply every tenant before measuring.
const SETTLE: Duration = Duration::from_secs(5);

/// One measured tenant count.
pub struct IdleCost {
    pub tenants: usize,
    pub commands_per_sec: f64,
    pub redis_cpu_ms_per_sec: f64,
    pub worker_cpu_ms_per_sec: f64,
    /// The commands called most, with calls per second.
    pub top_commands: Vec<(String, f64)>,
}

/// How many commands [`IdleCost::top_commands`] lists.
const TOP_COMMANDS: usize = 6;

/// Starts a Redis and a NATS, writes `tenants` copies of the demo tenant
/// (one agent each) to the configuration bucket, runs one replica's worker
/// and measures it for `measure`.
pub async fn idle_cost(tenants: usize, measure: Duration) -> anyhow::Result<IdleCost> {
    let redis = RedisServer::start()
        .await
        .context("starting redis-server")?;
    let nats = NatsServer::start().await.context("starting nats-server")?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let store = TenantStore::open(&js, None).await?;
    let base = crate::tenant::synthetic(1, 3)?;
    for n in 0..tenants {
        let mut config = base.clone();
        config.id = format!("idle-{n:04}");
        config.api_keys.clear();
        config.inbound_email_addresses = vec![format!("members@idle-{n:04}.example")];
        store.put(&config).await.context("writing a tenant")?;
    }
    let shutdown = CancellationToken::new();
    let common = CommonConfig {
        redis_url: redis.url(),
        nats_url: nats.url(),
        outbox_max_events: u64::MAX,
        ..CommonConfig::default()
    };
    let backend = Backend::start(&common, "bench", &shutdown).await?;
    tokio::time::sleep(SETTLE).await;

    let mut admin = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    crate::server::reset_stats(&mut admin).await?;
    let (commands_before, redis_cpu_before) = redis_counters(&mut admin).await?;
    let worker_cpu_before = process_cpu_ms();
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let secs = started.elapsed().as_secs_f64();
    let (commands_after, redis_cpu_after) = redis_counters(&mut admin).await?;
    let worker_cpu_after = process_cpu_ms();
    let mut top_commands: Vec<(String, f64)> = crate::server::command_stats(&mut admin)
        .await?
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config" | "slowlog"))
        .map(|(name, (calls, _))| (name, calls as f64 / secs))
        .collect();
    top_commands.sort_by(|a, b| b.1.total_cmp(&a.1));
    top_commands.truncate(TOP_COMMANDS);
    shutdown.cancel();
    backend.stopped().await;
    Ok(IdleCost {
        tenants,
        // The two INFO calls themselves are not the worker's.
        commands_per_sec: (commands_after - commands_before).saturating_sub(2) as f64 / secs,
        redis_cpu_ms_per_sec: (redis_cpu_after - redis_cpu_before) / secs,
        worker_cpu_ms_per_sec: (worker_cpu_after - worker_cpu_before) / secs,
        top_commands,
    })
}

/// Commands processed and CPU used (ms, user + system) by the server so far.
async fn redis_counters(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<(u64, f64)> {
    let info: String = redis::cmd("INFO").arg("all").query_async(conn).await?;
    let field = |name: &str| server::info_field(&info, name);
    let commands = field("total_commands_processed").context("total_commands_processed")?;
    let cpu = field("used_cpu_user").unwrap_or(0.0) + field("used_cpu_sys").unwrap_or(0.0);
    Ok((commands as u64, cpu * 1000.0))
}

/// CPU time (ms, user + system) this process has used, from /proc.
fn process_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after ')'.
    (ticks(11) + ticks(12)) * 1000.0 / CLOCK_TICKS_PER_SEC
}

/// `sysconf(_SC_CLK_TCK)` on Linux.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
