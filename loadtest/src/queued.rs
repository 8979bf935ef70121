//! `--queued`: one tenant with N contacts waiting in one queue and no free
//! agent, and what the operations a big backlog must not slow down cost at
//! that depth: a create behind them, a match (an agent becoming available
//! takes the head), GetQueueStats and ListInteractions (the first page and a
//! page in the middle). Issue 13 asks that they stay flat from 1k to 100k.
//!
//! Every depth is its own tenant in the same Redis, filled first; then each
//! round measures every depth in turn, so machine noise (2 shared cores)
//! falls on all depths alike, and after its turn a tenant's newest contacts
//! are abandoned until it holds its depth again.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use careline_domain::tenant::TenantConfig;
use careline_routing::list::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use careline_routing::{AgentStatus, ListFilter, RoutingStore};
use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;
use tokio::task::JoinSet;

use crate::phases::{self, Clients, micros};
use crate::server::{self, CommandStats};
use crate::tenant;

/// Agents of the tenant, all logged in away while the queue fills (queue
/// stats read every agent, so the count is the same at every depth).
const AGENTS: usize = 100;
/// Of those, the agents that become available, one match at a time each.
const MATCH_AGENTS: usize = 4;
/// Matches each of them makes per round.
const MATCHES_PER_AGENT: usize = 32;
/// Rounds over all depths.
const ROUNDS: usize = 3;
/// Chat capacity: one, so a state change to available takes exactly the head.
const CHAT_CAPACITY: u32 = 1;
/// Sequential calls of each read per round, measured one by one.
const READ_SAMPLES: usize = 100;
/// Creates of the closed-loop burst behind the backlog, per round.
const CREATE_BURST: u64 = 2_000;
/// The open-loop latency run behind the backlog: creates/s for this long.
const CREATE_RATE: u64 = 500;
const CREATE_LATENCY_FOR: Duration = Duration::from_secs(2);
/// Upper bound of the fill and of the burst.
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// A metric is called flat when its value at the deepest queue is within
/// this factor of its value at the shallowest.
const FLAT_WITHIN: f64 = 1.5;
/// Slow commands printed per depth and round.
const SLOWLOG_SHOWN: usize = 5;

/// One depth: its tenant and everything measured there, over all rounds.
pub struct Depth {
    queued: usize,
    config: TenantConfig,
    clients: Clients,
    /// Creates/s of each round's burst.
    burst_rates: Vec<f64>,
    create_us: Histogram<u64>,
    /// Commands (calls, us) Redis ran during the bursts, and the scripts run.
    create_commands: CommandStats,
    create_scripts: (u64, u64, u64),
    match_us: Histogram<u64>,
    /// Commands Redis ran during the match phases (each match also accepts,
    /// goes away and resolves: four scripts and a heartbeat per match).
    match_commands: CommandStats,
    stats_us: Histogram<u64>,
    list_first_us: Histogram<u64>,
    list_middle_us: Histogram<u64>,
    slow_commands: u64,
}

/// Fills one tenant per depth, measures them in rounds, prints the table,
/// the per-command breakdown and whether each metric stayed flat.
pub async fn run(
    url: &str,
    admin: &mut MultiplexedConnection,
    depths: &[usize],
    concurrency: usize,
    connections: usize,
) -> anyhow::Result<()> {
    redis::cmd("FLUSHDB").query_async::<()>(admin).await?;
    let store = RoutingStore::connect(url).await?;
    let mut rows = Vec::new();
    for &queued in depths {
        rows.push(Depth::fill(url, &store, queued, concurrency, connections).await?);
    }
    for round in 1..=ROUNDS {
        for row in &mut rows {
            println!(
                "\n== round {round}, {} queued (load average {}) ==",
                row.queued,
                crate::load_average()
            );
            row.measure(&store, admin, concurrency).await?;
            row.restore(&store, admin).await?;
        }
    }
    print_table(&rows);
    print_commands(&rows);
    Ok(())
}

impl Depth {
    /// A tenant of its own with `queued` contacts waiting in `general` and
    /// every agent away (not measured).
    async fn fill(
        url: &str,
        store: &RoutingStore,
        queued: usize,
        concurrency: usize,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let mut config = tenant::synthetic(AGENTS, CHAT_CAPACITY)?;
        config.id = format!("queued-{queued}");
        let clients = Clients::connect(url, connections, &config.id).await?;
        tenant::load(store, &config, AgentStatus::Away).await?;
        let fill =
            phases::throughput(&clients, concurrency, queued as u64, PHASE_LIMIT, false).await;
        ensure!(
            fill.creates == queued as u64 && fill.offered == 0 && fill.errors == 0,
            "filling the queue: {} created, {} offered, {} errors (want {queued} queued)",
            fill.creates,
            fill.offered,
            fill.errors
        );
        println!(
            "fill (not measured): {queued} creates queued in {:.1}s ({:.0}/s)",
            fill.elapsed.as_secs_f64(),
            fill.per_sec()
        );
        Ok(Self {
            queued,
            config,
            clients,
            burst_rates: Vec::new(),
            create_us: phases::histogram()?,
            create_commands: CommandStats::new(),
            create_scripts: (0, 0, 0),
            match_us: phases::histogram()?,
            match_commands: CommandStats::new(),
            stats_us: phases::histogram()?,
            list_first_us: phases::histogram()?,
            list_middle_us: phases::histogram()?,
            slow_commands: 0,
        })
    }

    /// One round at this depth: reads, matches, then creates.
    async fn measure(
        &mut self,
        store: &RoutingStore,
        admin: &mut MultiplexedConnection,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        server::reset_stats(admin).await?;
        let (config, queued) = (&self.config, self.queued);
        let tenant = config.id.as_str();

        // Reads first, while exactly `queued` contacts wait.
        let stats = store.queue_stats(config, Some("general")).await?;
        let waiting: u32 = stats.queues.iter().map(|q| q.waiting).sum();
        ensure!(
            waiting as usize == queued,
            "GetQueueStats counts {waiting} waiting, {queued} were queued"
        );
        let stats_us = timed(READ_SAMPLES, || store.queue_stats(config, Some("general"))).await?;
        let first = ListFilter::default();
        let list_first_us = timed(READ_SAMPLES, || store.list_interactions(tenant, &first)).await?;
        let middle = ListFilter {
            page_token: middle_token(store, tenant, queued).await?,
            ..ListFilter::default()
        };
        let (page, _) = store.list_interactions(tenant, &middle).await?;
        ensure!(
            page.len() == DEFAULT_PAGE_SIZE,
            "a page from the middle of {queued} holds {} interactions",
            page.len()
        );
        let list_middle_us =
            timed(READ_SAMPLES, || store.list_interactions(tenant, &middle)).await?;
        println!(
            "reads, {READ_SAMPLES} sequential calls each: GetQueueStats {}, ListInteractions first page {}, middle page {}",
            quantiles(&stats_us),
            quantiles(&list_first_us),
            quantiles(&list_middle_us)
        );

        let before = server::command_stats(admin).await?;
        let match_us = matches(store, tenant).await?;
        let after = server::command_stats(admin).await?;
        add(&mut self.match_commands, &before, &after);
        println!(
            "match: {MATCH_AGENTS} agents x {MATCHES_PER_AGENT}: away -> available, the head offered in the same script: {}",
            quantiles(&match_us)
        );

        let before = server::command_stats(admin).await?;
        let burst =
            phases::throughput(&self.clients, concurrency, CREATE_BURST, PHASE_LIMIT, false).await;
        let after = server::command_stats(admin).await?;
        ensure!(
            burst.offered == 0 && burst.errors == 0,
            "creates behind the queue: {} offered, {} errors",
            burst.offered,
            burst.errors
        );
        add(&mut self.create_commands, &before, &after);
        let (scripts, script_us, inner) = server::script_cost(&before, &after);
        let latency =
            phases::latency(&self.clients, CREATE_RATE, CREATE_LATENCY_FOR, false).await?;
        ensure!(
            latency.offered == 0 && latency.errors == 0,
            "open-loop creates behind the queue: {} offered, {} errors ({:?})",
            latency.offered,
            latency.errors,
            latency.first_error
        );
        println!(
            "creates behind the queue: burst of {} ({concurrency} tasks) {:.0}/s, server {:.1} us and \
             {:.1} commands per create script; open loop {CREATE_RATE}/s for {}s: {}",
            burst.creates,
            burst.per_sec(),
            script_us as f64 / scripts.max(1) as f64,
            inner as f64 / scripts.max(1) as f64,
            CREATE_LATENCY_FOR.as_secs(),
            quantiles(&latency.queued_us)
        );
        self.slow_commands += server::slowlog_len(admin).await?;
        for entry in server::slowlog(admin, SLOWLOG_SHOWN).await? {
            println!("  slowlog: {entry}");
        }

        self.burst_rates.push(burst.per_sec());
        let (s, u, i) = self.create_scripts;
        self.create_scripts = (s + scripts, u + script_us, i + inner);
        self.create_us.add(&latency.queued_us)?;
        self.match_us.add(&match_us)?;
        self.stats_us.add(&stats_us)?;
        self.list_first_us.add(&list_first_us)?;
        self.list_middle_us.add(&list_middle_us)?;
        Ok(())
    }

    /// Abandons the newest contacts until the tenant holds its depth again
    /// (a round adds creates and matches take heads); not measured.
    async fn restore(
        &self,
        store: &RoutingStore,
        admin: &mut MultiplexedConnection,
    ) -> anyhow::Result<()> {
        let tenant = self.config.id.as_str();
        let live = format!("{}live", careline_routing::keys::prefix(tenant));
        let count: usize = redis::cmd("ZCARD").arg(&live).query_async(admin).await?;
        let extra = count.saturating_sub(self.queued);
        if extra > 0 {
            let newest: Vec<String> = redis::cmd("ZRANGE")
                .arg(&live)
                .arg(-(extra as i64))
                .arg(-1)
                .query_async(admin)
                .await?;
            for id in newest {
                store.abandon(tenant, &id).await?;
            }
        }
        let count: usize = redis::cmd("ZCARD").arg(&live).query_async(admin).await?;
        ensure!(
            count == self.queued,
            "{tenant}: {count} live interactions after restoring, want {}",
            self.queued
        );
        Ok(())
    }
}

/// Adds the commands run between two snapshots to `total`.
fn add(total: &mut CommandStats, before: &CommandStats, after: &CommandStats) {
    for (name, (calls, usec)) in after {
        let (calls_before, usec_before) = before.get(name).copied().unwrap_or_default();
        let entry = total.entry(name.clone()).or_default();
        entry.0 += calls.saturating_sub(calls_before);
        entry.1 += usec.saturating_sub(usec_before);
    }
}

/// Calls `call` `samples` times, one after the other, and records each
/// call's duration.
async fn timed<T, F, Fut>(samples: usize, mut call: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = careline_routing::Result<T>>,
{
    let mut histogram = phases::histogram()?;
    for _ in 0..samples {
        let start = Instant::now();
        call().await?;
        histogram.saturating_record(micros(start.elapsed()));
    }
    Ok(histogram)
}

/// The page token after the first half of `queued` interactions, found by
/// paging through them with large pages (not measured).
async fn middle_token(store: &RoutingStore, tenant: &str, queued: usize) -> anyhow::Result<String> {
    let mut filter = ListFilter {
        page_size: (queued / 2).clamp(1, MAX_PAGE_SIZE),
        ..ListFilter::default()
    };
    let mut seen = 0;
    while seen < queued / 2 {
        let (page, next) = store.list_interactions(tenant, &filter).await?;
        ensure!(
            !next.is_empty(),
            "the listing ended after {} of {queued} interactions",
            seen + page.len()
        );
        seen += page.len();
        filter.page_token = next;
    }
    Ok(filter.page_token)
}

/// [`MATCH_AGENTS`] agents, each [`MATCHES_PER_AGENT`] times: becomes
/// available (timed: the script that changes its state offers it the head of
/// the queue), then accepts, goes away and resolves, so the next round
/// starts from the same state.
async fn matches(store: &RoutingStore, tenant: &str) -> anyhow::Result<Histogram<u64>> {
    let mut tasks = JoinSet::new();
    for i in 0..MATCH_AGENTS {
        let store = store.clone();
        let tenant = tenant.to_string();
        tasks.spawn(async move { agent_matches(&store, &tenant, &tenant::agent_id(i)).await });
    }
    let mut all = phases::histogram()?;
    while let Some(done) = tasks.join_next().await {
        all.add(done??)?;
    }
    Ok(all)
}

async fn agent_matches(
    store: &RoutingStore,
    tenant: &str,
    agent: &str,
) -> anyhow::Result<Histogram<u64>> {
    let session = tenant::session(agent);
    let mut histogram = phases::histogram()?;
    for _ in 0..MATCHES_PER_AGENT {
        let start = Instant::now();
        store
            .agent_set_state(tenant, agent, &session, AgentStatus::Available, "")
            .await?;
        let took = start.elapsed();
        let held = store.agent_heartbeat(tenant, agent, &session).await?;
        let [offered] = held.as_slice() else {
            bail!(
                "{agent} holds {} interactions after becoming available; expected one offer",
                held.len()
            );
        };
        ensure!(
            !offered.assigned,
            "{agent}: expected an offer, found an assignment"
        );
        histogram.saturating_record(micros(took));
        store
            .accept_offer(tenant, &offered.offer_id, agent)
            .await
            .context("accepting")?;
        // Away before the resolve: a free agent would take the next head at once.
        store
            .agent_set_state(tenant, agent, &session, AgentStatus::Away, "")
            .await?;
        store
            .resolve(
                tenant,
                &offered.interaction_id,
                agent,
                "resolved",
                &[],
                None,
            )
            .await
            .context("resolving")?;
    }
    Ok(histogram)
}

/// "p50 x ms, p99 y ms" of a histogram of microseconds.
fn quantiles(h: &Histogram<u64>) -> String {
    format!("p50 {:.2} ms, p99 {:.2} ms", ms(h, 0.5), ms(h, 0.99))
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn print_table(rows: &[Depth]) {
    println!(
        "\n{ROUNDS} rounds; creates/s is the mean of the rounds (min-max), latencies are over all rounds.\n\
         \n| queued | creates/s behind them (burst of {CREATE_BURST}) | create p50 / p99 ms ({CREATE_RATE}/s) | server us / cmds per create | \
         match p50 / p99 ms | GetQueueStats p50 / p99 ms | ListInteractions first page p50 / p99 ms | \
         middle page p50 / p99 ms | slowlog >1ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let pair = |h: &Histogram<u64>| format!("{:.2} / {:.2}", ms(h, 0.5), ms(h, 0.99));
        let (scripts, script_us, inner) = row.create_scripts;
        println!(
            "| {} | {} | {} | {:.1} / {:.1} | {} | {} | {} | {} | {} |",
            row.queued,
            rates(&row.burst_rates),
            pair(&row.create_us),
            script_us as f64 / scripts.max(1) as f64,
            inner as f64 / scripts.max(1) as f64,
            pair(&row.match_us),
            pair(&row.stats_us),
            pair(&row.list_first_us),
            pair(&row.list_middle_us),
            row.slow_commands,
        );
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return;
    };
    if rows.len() < 2 {
        return;
    }
    println!(
        "\n{} queued against {} (ratio of the deeper; flat = within {FLAT_WITHIN}x):",
        last.queued, first.queued
    );
    let p50 = |h: &Histogram<u64>| ms(h, 0.5);
    let p99 = |h: &Histogram<u64>| ms(h, 0.99);
    let latencies: [(&str, Metric); 5] = [
        ("create latency", |d| &d.create_us),
        ("match latency", |d| &d.match_us),
        ("GetQueueStats", |d| &d.stats_us),
        ("ListInteractions first page", |d| &d.list_first_us),
        ("ListInteractions middle page", |d| &d.list_middle_us),
    ];
    // A rate is flat when the deeper queue keeps enough of it.
    let rate = mean(&first.burst_rates) / mean(&last.burst_rates);
    println!(
        "- creates/s: {:.2}x of the shallow rate: {}",
        1.0 / rate,
        verdict(rate)
    );
    for (name, of) in latencies {
        let (a, b) = (of(first), of(last));
        let ratio = p50(b) / p50(a);
        println!(
            "- {name}: p50 {ratio:.2}x, p99 {:.2}x: {}",
            p99(b) / p99(a),
            verdict(ratio)
        );
    }
}

/// Picks one latency histogram of a depth.
type Metric = fn(&Depth) -> &Histogram<u64>;

fn verdict(ratio: f64) -> &'static str {
    if ratio <= FLAT_WITHIN {
        "flat"
    } else {
        "NOT flat"
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// "mean (min-max)" of per-round rates.
fn rates(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({min:.0}-{max:.0})", mean(values))
}

/// What Redis spent on each command during the create bursts and the match
/// phases at each depth: a command whose cost grows with the depth shows here.
fn print_commands(rows: &[Depth]) {
    for row in rows {
        let (scripts, _, _) = row.create_scripts;
        println!(
            "\n{} queued, create bursts ({scripts} create scripts), per script:",
            row.queued
        );
        crate::print_top_commands(
            &row.create_commands,
            "create script",
            scripts,
            crate::TOP_COMMANDS,
        );
        let matches = (MATCH_AGENTS * MATCHES_PER_AGENT * ROUNDS) as u64;
        println!(
            "{} queued, match phases ({matches} matches, each with accept, away, resolve and a heartbeat), per match:",
            row.queued
        );
        crate::print_top_commands(&row.match_commands, "match", matches, crate::TOP_COMMANDS);
    }
}
