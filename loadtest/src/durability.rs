//! `--durability`: what durable events cost the create rate. Two stacks run
//! side by side in this process, each a Redis, a NATS and one replica's
//! backend (its outbox relay, timers and tenant sync, as a router runs them):
//! the defaults (Redis AOF with `appendfsync everysec`, JetStream's default
//! sync) and both durable settings (`appendfsync always`, JetStream
//! `sync_interval: always`, and the relay's long batches sent as atomic
//! batches, `CARELINE_NATS_ATOMIC_BATCHES`, which pay only when JetStream
//! syncs every write). Each stack is measured with its relay publishing
//! and with its NATS paused (SIGSTOP: the relay stalls on acks that do not
//! come, everything else runs as before), alternately, in rounds.
//!
//! Besides creates/s, each measurement reads what it cost Redis: its
//! main-thread CPU time per create, over the burst and over the drain that
//! follows it (a paused stack relays its burst's events only then), so that
//! the comparison is Redis' CPU for creating and relaying the same events. On
//! a shared machine the create rate mostly measures who gets the cores; the
//! CPU per create is what bounds a shard, whose Redis has a core to itself.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use async_nats::jetstream;
use careline_bus::{EVENTS_STREAM, TenantStore};
use careline_domain::tenant::TenantConfig;
use careline_kit::config::CommonConfig;
use careline_localdev::{AppendFsync, JetStreamSync, NatsServer, RedisServer};
use careline_routing::{AgentStatus, Backend, RoutingStore};
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use crate::phases::{self, Clients};
use crate::server::{self, CommandStats, RedisCpu};
use crate::tenant;

/// Agents of the tenant, all available with the largest chat capacity, so
/// that every create of the run ends in an offer.
const AGENTS: usize = 2_000;
/// Rounds of the four measurements (alternating, to spread machine noise).
const ROUNDS: usize = 3;
/// Most creates one measurement makes: nobody resolves, so each holds a
/// unit of the agents' capacity for the rest of the run, and every create
/// must still find a free agent in the last measurement. A measurement that
/// reaches it ends early (its rate stays creates over its own time).
const MAX_CREATES_PER_MEASUREMENT: u64 =
    AGENTS as u64 * crate::BURST_CHAT_CAPACITY as u64 / (2 * ROUNDS as u64);
/// Longest wait for a relay to publish its backlog after a measurement.
const DRAIN_DEADLINE: Duration = Duration::from_secs(180);
/// How often the backlog is read while draining.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// Longer than any run: no offer, heartbeat or aging timer comes due while
/// measuring (the background worker runs timers; the measurement is of creates).
const QUIET_SECS: u32 = 3_600;
/// How long each Redis is watched idle at the start, to show what its
/// background work (server cron, the worker's sweeps, the drain's polls)
/// costs per second of a drain.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);
/// The creates' commands: routing library functions.
const CREATE_COMMANDS: [&str; 1] = ["fcall"];
/// The relay's commands: it reads the outbox (XREADGROUP; XAUTOCLAIM for
/// entries of dead replicas) and acknowledges and deletes what JetStream
/// stored with a script (EVALSHA, which also counts the timer worker's
/// checks: a few small scripts per second, in both cells). A script's inner
/// commands are counted apart too, so they are not added again.
const RELAY_COMMANDS: [&str; 3] = ["xreadgroup", "xautoclaim", "evalsha"];

/// One stack: servers, the replica's backend and the clients that use it.
struct Stack {
    name: &'static str,
    redis: RedisServer,
    nats: NatsServer,
    backend: Backend,
    shutdown: CancellationToken,
    clients: Clients,
    js: jetstream::Context,
    tenant: String,
    /// The benchmark's own connection, for INFO.
    admin: MultiplexedConnection,
}

/// What a Redis has done since it started.
struct RedisUsage {
    cpu: RedisCpu,
    commands: CommandStats,
}

/// What a Redis did in one window.
#[derive(Debug, Default, Clone, Copy)]
struct RedisWork {
    cpu: RedisCpu,
    /// Server time of the creates' commands, us.
    creates_us: u64,
    /// Server time of the relay's commands, us.
    relay_us: u64,
}

impl RedisWork {
    fn between(before: &RedisUsage, after: &RedisUsage) -> Self {
        let usec = |names: &[&str]| -> u64 {
            names
                .iter()
                .map(|name| {
                    let of = |stats: &CommandStats| stats.get(*name).map_or(0, |(_, us)| *us);
                    of(&after.commands).saturating_sub(of(&before.commands))
                })
                .sum()
        };
        Self {
            cpu: after.cpu.since(&before.cpu),
            creates_us: usec(&CREATE_COMMANDS),
            relay_us: usec(&RELAY_COMMANDS),
        }
    }

    fn plus(&self, other: &RedisWork) -> Self {
        Self {
            cpu: RedisCpu {
                main_thread_us: self.cpu.main_thread_us + other.cpu.main_thread_us,
                process_us: self.cpu.process_us + other.cpu.process_us,
            },
            creates_us: self.creates_us + other.creates_us,
            relay_us: self.relay_us + other.relay_us,
        }
    }
}

/// One measurement.
struct Cell {
    stack: &'static str,
    paused: bool,
    round: usize,
    creates: u64,
    creates_per_sec: f64,
    errors: u64,
    relayed_per_sec: f64,
    backlog_after: u64,
    drained_in: Duration,
    /// Share of the events written during the measurement that the relay
    /// published in it (1.0: it kept up; 0 while paused).
    kept_up: f64,
    /// Redis' work during the burst of creates.
    burst_redis: RedisWork,
    /// Redis' work from the end of the burst until the outbox was empty.
    drain_redis: RedisWork,
}

impl Cell {
    /// The create rate the relay could sustain: beyond it the outbox grows
    /// until its bound refuses creates.
    fn sustainable(&self) -> f64 {
        self.creates_per_sec * self.kept_up.min(1.0)
    }

    /// Redis' work for creating this cell's interactions and relaying their
    /// events: the burst plus the drain, where a paused stack relays them.
    fn redis(&self) -> RedisWork {
        self.burst_redis.plus(&self.drain_redis)
    }

    fn per_create(&self, us: f64) -> f64 {
        us / self.creates.max(1) as f64
    }
}

/// Starts both stacks, measures them in [`ROUNDS`] rounds of `duration` per
/// measurement, prints the table and the ratios.
pub async fn run(duration: Duration, concurrency: usize) -> anyhow::Result<()> {
    let config = quiet_tenant()?;
    let defaults = Stack::start(
        "defaults",
        AppendFsync::EverySec,
        JetStreamSync::Default,
        &config,
    )
    .await?;
    let durable = Stack::start(
        "durable",
        AppendFsync::Always,
        JetStreamSync::Always,
        &config,
    )
    .await?;
    println!(
        "durability: creates (each ending in an offer) by {concurrency} tasks for {}s (or {MAX_CREATES_PER_MEASUREMENT} creates) per measurement, \
         {AGENTS} agents; defaults = Redis AOF appendfsync everysec + JetStream default sync, \
         durable = appendfsync always + JetStream sync_interval always + the relay's long \
         batches as atomic batches (CARELINE_NATS_ATOMIC_BATCHES, off in defaults); \
         \"paused\" = that stack's \
         nats-server stopped with SIGSTOP during the measurement (its relay stalls), resumed and \
         drained after it",
        duration.as_secs()
    );
    for stack in [&defaults, &durable] {
        println!(
            "{}: Redis idle (no creates, outbox empty): {:.0} us main-thread CPU per second",
            stack.name,
            stack.idle_cpu_us_per_sec().await?
        );
    }
    let mut cells = Vec::new();
    for round in 1..=ROUNDS {
        // Odd rounds measure relaying first, even rounds paused first.
        let order = if round % 2 == 1 {
            [false, true]
        } else {
            [true, false]
        };
        for stack in [&defaults, &durable] {
            for paused in order {
                println!(
                    "round {round}, {}, {} (load average {})",
                    stack.name,
                    if paused {
                        "NATS paused"
                    } else {
                        "relay publishing"
                    },
                    crate::load_average()
                );
                let cell = stack.measure(round, paused, duration, concurrency).await?;
                println!(
                    "  {:.0} creates/s ({} errors), {:.0} events relayed/s, {} events in the outbox at the end, drained {:.1}s later",
                    cell.creates_per_sec,
                    cell.errors,
                    cell.relayed_per_sec,
                    cell.backlog_after,
                    cell.drained_in.as_secs_f64()
                );
                println!(
                    "  Redis main-thread CPU per create: {:.1} us in the burst + {:.1} us in the drain",
                    cell.per_create(cell.burst_redis.cpu.main_thread_us),
                    cell.per_create(cell.drain_redis.cpu.main_thread_us),
                );
                cells.push(cell);
            }
        }
    }
    print_table(&cells);
    defaults.stop().await;
    durable.stop().await;
    Ok(())
}

/// The synthetic tenant with no timer due within the run and no overflow.
pub(crate) fn quiet_tenant() -> anyhow::Result<TenantConfig> {
    let mut config = tenant::synthetic(AGENTS, crate::BURST_CHAT_CAPACITY)?;
    config.routing.offer_timeout_secs.voice = QUIET_SECS;
    config.routing.offer_timeout_secs.chat = QUIET_SECS;
    config.routing.offer_timeout_secs.email = QUIET_SECS;
    config.routing.heartbeat_ttl_secs = QUIET_SECS;
    config.routing.aging = None;
    for queue in &mut config.queues {
        queue.overflow.clear();
    }
    config.validate().context("quiet tenant is valid")?;
    Ok(config)
}

impl Stack {
    async fn start(
        name: &'static str,
        fsync: AppendFsync,
        sync: JetStreamSync,
        config: &TenantConfig,
    ) -> anyhow::Result<Self> {
        let redis = RedisServer::start_durable(fsync)
            .await
            .context("starting redis-server")?;
        let nats = NatsServer::start_with_sync(sync)
            .await
            .context("starting nats-server")?;
        let js = jetstream::new(async_nats::connect(nats.url()).await?);
        let admin = redis::Client::open(redis.url())?
            .get_multiplexed_async_connection()
            .await
            .context("connecting to redis-server for INFO")?;
        TenantStore::open(&js, None)
            .await?
            .put(config)
            .await
            .context("writing the tenant")?;
        let shutdown = CancellationToken::new();
        let common = CommonConfig {
            redis_url: redis.url(),
            nats_url: nats.url(),
            outbox_max_events: u64::MAX,
            // Atomic batches save disk syncs only where JetStream syncs every write.
            nats_atomic_batches: matches!(sync, JetStreamSync::Always),
            ..CommonConfig::default()
        };
        let backend = Backend::start(&common, "bench", &shutdown).await?;
        tenant::load(&backend.store, config, AgentStatus::Available).await?;
        let clients = Clients::shared(&backend.store, &config.id);
        let stack = Self {
            name,
            redis,
            nats,
            backend,
            shutdown,
            clients,
            js,
            tenant: config.id.clone(),
            admin,
        };
        stack.drain().await?;
        Ok(stack)
    }

    async fn measure(
        &self,
        round: usize,
        paused: bool,
        duration: Duration,
        concurrency: usize,
    ) -> anyhow::Result<Cell> {
        let stored_before = self.events_stored().await?;
        let backlog_before = self.backlog().await?;
        if paused {
            self.nats.pause()?;
        }
        let start = self.redis_usage().await?;
        let burst = phases::throughput(
            &self.clients,
            concurrency,
            MAX_CREATES_PER_MEASUREMENT,
            duration,
            false,
        )
        .await;
        let burst_end = self.redis_usage().await?;
        let backlog_after = self.backlog().await?;
        if paused {
            self.nats.resume()?;
        }
        let relayed = self.events_stored().await? - stored_before;
        ensure!(
            burst.offered == burst.creates,
            "{}: {} of {} creates were offered; every create should find a free agent",
            self.name,
            burst.offered,
            burst.creates
        );
        let drained_in = self.drain().await?;
        let drained = self.redis_usage().await?;
        let grew = backlog_after.saturating_sub(backlog_before);
        let kept_up = if paused {
            0.0
        } else {
            relayed as f64 / (relayed + grew).max(1) as f64
        };
        Ok(Cell {
            stack: self.name,
            paused,
            round,
            creates: burst.creates,
            creates_per_sec: burst.per_sec(),
            errors: burst.errors,
            relayed_per_sec: if paused {
                0.0
            } else {
                relayed as f64 / burst.elapsed.as_secs_f64()
            },
            backlog_after,
            drained_in,
            kept_up,
            burst_redis: RedisWork::between(&start, &burst_end),
            drain_redis: RedisWork::between(&burst_end, &drained),
        })
    }

    /// Redis' CPU time and command stats so far.
    async fn redis_usage(&self) -> anyhow::Result<RedisUsage> {
        let mut admin = self.admin.clone();
        Ok(RedisUsage {
            cpu: server::redis_cpu(&mut admin).await?,
            commands: server::command_stats(&mut admin).await?,
        })
    }

    /// Redis' main-thread CPU per second while nothing is created: what a
    /// drain's seconds cost besides the relaying.
    async fn idle_cpu_us_per_sec(&self) -> anyhow::Result<f64> {
        let before = self.redis_usage().await?;
        let start = Instant::now();
        tokio::time::sleep(IDLE_SAMPLE).await;
        let after = self.redis_usage().await?;
        Ok(after.cpu.since(&before.cpu).main_thread_us / start.elapsed().as_secs_f64())
    }

    async fn events_stored(&self) -> anyhow::Result<u64> {
        events_stored(&self.js).await
    }

    async fn backlog(&self) -> anyhow::Result<u64> {
        backlog(&self.backend.store, &self.tenant).await
    }

    async fn drain(&self) -> anyhow::Result<Duration> {
        drain(&self.backend.store, &self.tenant, self.name).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.backend.stopped().await;
        drop((self.redis, self.nats));
    }
}

/// Messages in the event stream.
pub(crate) async fn events_stored(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(EVENTS_STREAM).await?;
    Ok(stream.info().await?.state.messages)
}

/// Events waiting in the tenant's outbox.
pub(crate) async fn backlog(store: &RoutingStore, tenant: &str) -> anyhow::Result<u64> {
    let mut conn = store.connection();
    Ok(careline_routing::outbox_lag(&mut conn, tenant)
        .await?
        .events)
}

/// Waits until a relay has published the tenant's whole outbox; returns how
/// long it took.
pub(crate) async fn drain(
    store: &RoutingStore,
    tenant: &str,
    label: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let backlog = backlog(store, tenant).await?;
        if backlog == 0 {
            return Ok(start.elapsed());
        }
        ensure!(
            start.elapsed() < DRAIN_DEADLINE,
            "{label}: {backlog} events still in the outbox after {DRAIN_DEADLINE:?}"
        );
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn print_table(cells: &[Cell]) {
    println!(
        "\nRedis us/create: Redis CPU time per create, main thread unless said (burst + drain = \
         creating the burst's interactions and relaying their events); FCALL and relay \
         commands: their server time (INFO commandstats) in burst + drain, per create"
    );
    println!(
        "\n| settings | NATS | round | creates/s | errors | events relayed/s | outbox at the end | drained after s | relay kept up | sustainable creates/s | Redis us/create burst | drain | burst + drain | process, burst + drain | FCALL | relay commands |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in cells {
        let redis = c.redis();
        println!(
            "| {} | {} | {} | {:.0} | {} | {:.0} | {} | {:.1} | {:.0}% | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            c.stack,
            if c.paused {
                "paused"
            } else {
                "relay publishing"
            },
            c.round,
            c.creates_per_sec,
            c.errors,
            c.relayed_per_sec,
            c.backlog_after,
            c.drained_in.as_secs_f64(),
            100.0 * c.kept_up,
            c.sustainable(),
            c.per_create(c.burst_redis.cpu.main_thread_us),
            c.per_create(c.drain_redis.cpu.main_thread_us),
            c.per_create(redis.cpu.main_thread_us),
            c.per_create(redis.cpu.process_us),
            c.per_create(redis.creates_us as f64),
            c.per_create(redis.relay_us as f64),
        );
    }
    let rate = |stack: &str, paused: bool| {
        mean(
            cells
                .iter()
                .filter(|c| c.stack == stack && c.paused == paused)
                .map(|c| c.creates_per_sec),
        )
    };
    let (defaults_relay, defaults_paused) = (rate("defaults", false), rate("defaults", true));
    let (durable_relay, durable_paused) = (rate("durable", false), rate("durable", true));
    println!("\nmeans over the rounds:");
    println!(
        "- relay publishing vs NATS paused, defaults: {defaults_relay:.0} / {defaults_paused:.0} = {:.2}x (aim >= 0.90x)",
        defaults_relay / defaults_paused
    );
    println!(
        "- relay publishing vs NATS paused, durable: {durable_relay:.0} / {durable_paused:.0} = {:.2}x",
        durable_relay / durable_paused
    );
    println!(
        "- both durable settings vs defaults, relay publishing: {durable_relay:.0} / {defaults_relay:.0} = {:.2}x (aim >= 0.70x)",
        durable_relay / defaults_relay
    );
    println!(
        "- Redis appendfsync always alone (NATS paused in both): {durable_paused:.0} / {defaults_paused:.0} = {:.2}x",
        durable_paused / defaults_paused
    );
    let sustainable = |stack: &str| {
        mean(
            cells
                .iter()
                .filter(|c| c.stack == stack && !c.paused)
                .map(Cell::sustainable),
        )
    };
    let (defaults_kept, durable_kept) = (sustainable("defaults"), sustainable("durable"));
    println!(
        "- sustainable (creates/s x share the relay kept up with), durable vs defaults: \
         {durable_kept:.0} / {defaults_kept:.0} = {:.2}x",
        durable_kept / defaults_kept
    );
    for stack in ["defaults", "durable"] {
        print_redis_cost(cells, stack);
    }
}

/// Redis CPU per create of one stack, relay publishing vs NATS paused, over
/// all its rounds (total CPU over total creates).
fn print_redis_cost(cells: &[Cell], stack: &str) {
    let pooled = |paused: bool, part: fn(&Cell) -> f64| {
        let of_stack = || {
            cells
                .iter()
                .filter(move |c| c.stack == stack && c.paused == paused)
        };
        of_stack().map(part).sum::<f64>() / of_stack().map(|c| c.creates).sum::<u64>().max(1) as f64
    };
    let total = |paused| pooled(paused, |c| c.redis().cpu.main_thread_us);
    let burst = |paused| pooled(paused, |c| c.burst_redis.cpu.main_thread_us);
    let creates = |paused| pooled(paused, |c| c.redis().creates_us as f64);
    let relay = |paused| pooled(paused, |c| c.redis().relay_us as f64);
    let (relaying, paused) = (total(false), total(true));
    println!(
        "- Redis CPU per create (main thread, burst + drain), relay publishing vs NATS paused, \
         {stack}: {relaying:.1} us / {paused:.1} us = creates per Redis-CPU-second ratio {:.2}x \
         (aim >= 0.90x); the burst alone: {:.1} us / {:.1} us (a paused stack relays in its drain)",
        paused / relaying,
        burst(false),
        burst(true),
    );
    println!(
        "  of which FCALL (the creates) {:.1} / {:.1} us, relay commands {:.1} / {:.1} us, \
         the rest (network I/O, parsing, cron, timer checks) {:.1} / {:.1} us",
        creates(false),
        creates(true),
        relay(false),
        relay(true),
        relaying - creates(false) - relay(false),
        paused - creates(true) - relay(true),
    );
}
