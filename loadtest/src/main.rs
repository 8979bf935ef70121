//! `careline-bench`: how many routing decisions per second the Redis routing
//! state machine makes, and how long create -> offer takes at a fixed rate,
//! with 100 to 10,000 agents, beside `redis-benchmark` running reference
//! scripts on the same server. It prints numbers; it is not a test.
//!
//! A routing decision is one `create_interaction` script: it queues the new
//! interaction and matches it with the longest-idle free agent atomically.

mod durability;
mod heartbeats;
mod phases;
mod queued;
mod relay_r3;
mod server;
mod tenant;
mod tenants;

use std::time::Duration;

use anyhow::Context;
use careline_localdev::RedisServer;
use clap::Parser;

use crate::phases::{Clients, Latency, Throughput};
use crate::server::Reference;

/// Chat capacity in the burst phase (the configuration maximum), so that
/// every create in the burst finds a free agent without anyone resolving.
const BURST_CHAT_CAPACITY: u32 = careline_domain::tenant::MAX_CAPACITY;
/// Chat capacity in the sustained phases, the demo tenant's.
const CHAT_CAPACITY: u32 = 3;
/// Commands listed in a per-script breakdown.
const TOP_COMMANDS: usize = 8;
/// Requests per `redis-benchmark` run.
const REDIS_BENCHMARK_REQUESTS: u64 = 50_000;

#[derive(Debug, Parser)]
#[command(
    name = "careline-bench",
    about = "Routing decisions/s and create->offer latency"
)]
struct Args {
    /// Agent counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,7500,10000")]
    agents: Vec<usize>,
    /// Upper bound on each throughput phase, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Upper bound on creates in each throughput phase.
    #[arg(long, default_value_t = 50_000)]
    max_creates: u64,
    /// Creates per second in the open-loop latency phase.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Length of the latency phase, in seconds.
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Concurrent client tasks in the throughput phases (and redis-benchmark -c).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Multiplexed Redis connections the tasks share (like router replicas).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Use this Redis instead of starting one. Its database is FLUSHED.
    #[arg(long)]
    redis_url: Option<String>,
    /// Instead of the agent phases: what idle tenants cost one replica's
    /// background worker, for each count given (e.g. 1,500).
    #[arg(long, value_delimiter = ',')]
    idle_tenants: Vec<usize>,
    /// Instead of the agent phases: create->offer latency at `--rate` while
    /// every online agent's heartbeat arrives at once, for each agent count
    /// given (e.g. 200,7500,20000).
    #[arg(long, value_delimiter = ',')]
    heartbeat_agents: Vec<usize>,
    /// Instead of the agent phases: one tenant with this many contacts
    /// queued, for each depth given (e.g. 1000,100000): a create behind
    /// them, a match of the head, GetQueueStats and ListInteractions.
    #[arg(long, value_delimiter = ',')]
    queued: Vec<usize>,
    /// Instead of the agent phases: creates/s with the outbox relay
    /// publishing vs NATS paused, and with Redis appendfsync always +
    /// JetStream sync always vs the defaults (`--duration-secs` each).
    #[arg(long)]
    durability: bool,
    /// Instead of the agent phases: events/s of one relay draining a
    /// backlog to an R3 stream on a 3-node NATS cluster, atomic batches on
    /// vs off.
    #[arg(long)]
    relay_r3: bool,
}

/// One row of the final table.
struct Row {
    agents: usize,
    burst: Throughput,
    server_us_per_decision: f64,
    commands_per_decision: f64,
    lifecycle: Throughput,
    latency: Latency,
    create_only: Latency,
    slow_commands: u64,
    small_rps: Option<f64>,
    shaped_rps: Option<f64>,
    minimal_rps: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.idle_tenants.is_empty() {
        return idle_tenants(&args).await;
    }
    if args.relay_r3 {
        return relay_r3::run(args.concurrency).await;
    }
    if args.durability {
        return durability::run(Duration::from_secs(args.duration_secs), args.concurrency).await;
    }
    let (own_server, url) = match &args.redis_url {
        Some(url) => (None, url.clone()),
        None => {
            let server = RedisServer::start()
                .await
                .context("starting redis-server")?;
            let url = server.url();
            (Some(server), url)
        }
    };
    let (host, port) = host_port(&url)?;
    let mut admin = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    if own_server.is_some() {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(1000)
            .query_async::<()>(&mut admin)
            .await?;
    }
    if !args.queued.is_empty() {
        println!("careline-bench --queued against {url}");
        return queued::run(
            &url,
            &mut admin,
            &args.queued,
            args.concurrency,
            args.connections,
        )
        .await;
    }
    print_method(&args, &url);
    if !args.heartbeat_agents.is_empty() {
        return heartbeat_bursts(&args, &url, &mut admin).await;
    }

    let mut rows = Vec::new();
    for &agents in &args.agents {
        println!("\n== {agents} agents ==");
        rows.push(measure(&args, &url, &host, port, &mut admin, agents).await?);
    }
    print_table(&rows);
    drop(own_server);
    Ok(())
}

async fn heartbeat_bursts(
    args: &Args,
    url: &str,
    admin: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.latency_secs);
    let mut rows = Vec::new();
    for &agents in &args.heartbeat_agents {
        println!(
            "\n== {agents} agents online, load average {} ==",
            load_average()
        );
        let config = tenant::synthetic(agents, BURST_CHAT_CAPACITY)?;
        let clients = Clients::connect(url, args.connections, &config.id).await?;
        let store = careline_routing::RoutingStore::connect(url).await?;
        tenant::install(&store, admin, &config).await?;
        let row =
            heartbeats::measure(&clients, &store, admin, &config, args.rate, duration).await?;
        print_latency("quiet", args.rate, &row.quiet, 0);
        print_latency("every agent beating together", args.rate, &row.bursting, 0);
        rows.push(row);
    }
    heartbeats::print_table(&rows);
    Ok(())
}

async fn idle_tenants(args: &Args) -> anyhow::Result<()> {
    let measure = Duration::from_secs(args.duration_secs);
    println!(
        "idle tenants: one replica's background worker (tenant sync, timer checks, outbox relay, \
         housekeeping) with N idle tenants, measured for {}s after settling",
        measure.as_secs()
    );
    println!(
        "\n| tenants | Redis commands/s (incl. inside scripts) | Redis CPU ms/s | worker CPU ms/s | top commands/s |"
    );
    println!("|---:|---:|---:|---:|---|");
    for &count in &args.idle_tenants {
        let cost = tenants::idle_cost(count, measure).await?;
        let top: Vec<String> = cost
            .top_commands
            .iter()
            .map(|(name, per_sec)| format!("{name} {per_sec:.0}"))
            .collect();
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} |",
            cost.tenants,
            cost.commands_per_sec,
            cost.redis_cpu_ms_per_sec,
            cost.worker_cpu_ms_per_sec,
            top.join(", ")
        );
    }
    Ok(())
}

async fn measure(
    args: &Args,
    url: &str,
    host: &str,
    port: u16,
    admin: &mut redis::aio::MultiplexedConnection,
    agents: usize,
) -> anyhow::Result<Row> {
    let limit = Duration::from_secs(args.duration_secs);
    let latency_for = Duration::from_secs(args.latency_secs);
    println!("load average before: {}", load_average());

    // Burst: every create finds a free agent, nobody resolves.
    let config = tenant::synthetic(agents, BURST_CHAT_CAPACITY)?;
    let clients = Clients::connect(url, args.connections, &config.id).await?;
    let store = careline_routing::RoutingStore::connect(url).await?;
    tenant::install(&store, admin, &config).await?;
    let burst_total =
        (agents as u64 * u64::from(BURST_CHAT_CAPACITY) * 9 / 10).min(args.max_creates);
    server::reset_stats(admin).await?;
    let burst = phases::throughput(&clients, args.concurrency, burst_total, limit, false).await;
    let stats = server::command_stats(admin).await?;
    let (scripts, script_us, inner) = server::script_cost(&server::CommandStats::new(), &stats);
    let server_us_per_decision = script_us as f64 / scripts.max(1) as f64;
    let commands_per_decision = inner as f64 / scripts.max(1) as f64;
    println!(
        "burst (chat capacity {BURST_CHAT_CAPACITY}, no resolves): {} creates in {:.2}s = {:.0} decisions/s, \
         {:.1}% offered at once, {} errors; server {:.1} us and {:.1} commands per create script",
        burst.creates,
        burst.elapsed.as_secs_f64(),
        burst.per_sec(),
        burst.offered_pct(),
        burst.errors,
        server_us_per_decision,
        commands_per_decision,
    );
    print_top_commands(&stats, "create script", scripts, TOP_COMMANDS);

    // Sustained closed loop: create, and accept + resolve what was offered.
    let config = tenant::synthetic(agents, CHAT_CAPACITY)?;
    tenant::install(&store, admin, &config).await?;
    let lifecycle =
        phases::throughput(&clients, args.concurrency, args.max_creates, limit, true).await;
    println!(
        "lifecycle (chat capacity {CHAT_CAPACITY}, each offer accepted + resolved): {} creates in {:.2}s = \
         {:.0} decisions/s ({:.0} scripts/s incl. accept+resolve), {:.1}% offered at once, {} errors",
        lifecycle.creates,
        lifecycle.elapsed.as_secs_f64(),
        lifecycle.per_sec(),
        (lifecycle.creates + 2 * lifecycle.offered) as f64 / lifecycle.elapsed.as_secs_f64(),
        lifecycle.offered_pct(),
        lifecycle.errors,
    );

    // Open loop at a fixed rate, with the agents' accepts and resolves.
    tenant::install(&store, admin, &config).await?;
    server::reset_stats(admin).await?;
    let latency = phases::latency(&clients, args.rate, latency_for, true).await?;
    let slow_commands = server::slowlog_len(admin).await?;
    print_latency("latency, lifecycle", args.rate, &latency, slow_commands);

    // The same rate with creates only (burst capacity, nobody resolves).
    let config = tenant::synthetic(agents, BURST_CHAT_CAPACITY)?;
    tenant::install(&store, admin, &config).await?;
    let create_only = phases::latency(&clients, args.rate, latency_for, false).await?;
    print_latency("latency, creates only", args.rate, &create_only, 0);

    let mut rps = Vec::new();
    for (name, reference) in [
        ("small (10 calls)", Reference::Small),
        ("create-shaped", Reference::CreateShaped),
        ("minimal match", Reference::MinimalMatch),
    ] {
        let result = server::redis_benchmark(
            admin,
            host,
            port,
            reference,
            REDIS_BENCHMARK_REQUESTS,
            args.concurrency,
        )
        .await;
        rps.push(report_reference(name, result));
    }
    let (small_rps, shaped_rps, minimal_rps) = (rps[0], rps[1], rps[2]);
    if let Some(minimal) = minimal_rps {
        println!(
            "burst decisions/s vs the minimal match script's EVALSHA rate: {:.2}x",
            burst.per_sec() / minimal
        );
    }
    Ok(Row {
        agents,
        burst,
        server_us_per_decision,
        commands_per_decision,
        lifecycle,
        latency,
        create_only,
        slow_commands,
        small_rps,
        shaped_rps,
        minimal_rps,
    })
}

fn print_latency(name: &str, rate: u64, latency: &Latency, slow_commands: u64) {
    let ms = |q: f64| latency.offer_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name} ({rate} creates/s open loop, achieved {:.0}/s): {} issued, {:.1}% offered at once, \
         {} errors; create->offer p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         (from scheduled send: p99 {:.2} ms); slowlog entries >1 ms: {slow_commands}",
        latency.achieved_rate,
        latency.issued,
        latency.offered_pct(),
        latency.errors,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        latency.offer_us.max() as f64 / 1000.0,
        latency.scheduled_us.value_at_quantile(0.99) as f64 / 1000.0,
    );
    if let Some(e) = &latency.first_error {
        println!("  first error: {e}");
    }
}

/// The 1-minute load average: other work on the machine skews every number.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn report_reference(name: &str, result: anyhow::Result<f64>) -> Option<f64> {
    match result {
        Ok(rps) => {
            println!("redis-benchmark EVALSHA {name}: {rps:.0} requests/s");
            Some(rps)
        }
        Err(e) => {
            println!("redis-benchmark EVALSHA {name}: not run: {e:#}");
            None
        }
    }
}

/// The `shown` commands the scripts spent most calls on, per `unit` (`count` of them).
fn print_top_commands(stats: &server::CommandStats, unit: &str, count: u64, shown: usize) {
    let mut by_calls: Vec<_> = stats
        .iter()
        .filter(|(name, _)| !server::outside_scripts(name))
        .collect();
    by_calls.sort_by_key(|(_, (calls, _))| std::cmp::Reverse(*calls));
    let top: Vec<String> = by_calls
        .iter()
        .take(shown)
        .map(|(name, (calls, usec))| {
            format!(
                "{name} {:.1} calls {:.2}us/call",
                *calls as f64 / count.max(1) as f64,
                *usec as f64 / (*calls).max(1) as f64
            )
        })
        .collect();
    println!("  per {unit}: {}", top.join(", "));
}

fn print_method(args: &Args, url: &str) {
    println!(
        "careline-bench against {url} ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "decision = one create_interaction script (queue + match + offer, atomic).\n\
         burst: {c} tasks, back-to-back creates, chat capacity {BURST_CHAT_CAPACITY} so every create takes the full offer path; \
         bounded by min(0.9 x agents x capacity, {max}) creates or {d}s.\n\
         lifecycle: {c} tasks, chat capacity {CHAT_CAPACITY}; each offered create is read, accepted and resolved (wrap-up 0) by the same task \
         before its next create; decisions/s counts creates only.\n\
         latency: open loop, {rate} creates/s for {l}s, each create in its own task; latency = call start -> reply for creates offered at once.\n\
         Client, Redis and redis-benchmark share the machine; timers are not run during the phases.",
        c = args.concurrency,
        max = args.max_creates,
        d = args.duration_secs,
        rate = args.rate,
        l = args.latency_secs,
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| agents | decisions/s (burst) | server us/decision | cmds/decision | decisions/s (lifecycle) | offered % (latency) | p50 ms | p90 ms | p99 ms | max ms | slowlog >1ms | creates-only p50 / p99 ms | redis-benchmark EVALSHA rps (10 calls / create-shaped / minimal match) | burst / minimal |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rps = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
    for row in rows {
        let h = &row.latency.offer_us;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} / {:.2} | {} / {} / {} | {} |",
            row.agents,
            row.burst.per_sec(),
            row.server_us_per_decision,
            row.commands_per_decision,
            row.lifecycle.per_sec(),
            row.latency.offered_pct(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            h.max() as f64 / 1000.0,
            row.slow_commands,
            row.create_only.offer_us.value_at_quantile(0.5) as f64 / 1000.0,
            row.create_only.offer_us.value_at_quantile(0.99) as f64 / 1000.0,
            rps(row.small_rps),
            rps(row.shaped_rps),
            rps(row.minimal_rps),
            row.minimal_rps.map_or("n/a".to_string(), |m| format!(
                "{:.2}x",
                row.burst.per_sec() / m
            )),
        );
    }
}

/// Host and port of a `redis://[user:pass@]host:port[/db]` URL, for redis-benchmark.
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url}: only redis:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let hostport = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().context("port in --redis-url")?),
        None => (hostport, 6379),
    };
    Ok((host.to_string(), port))
}
