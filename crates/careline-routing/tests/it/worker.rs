//! The background worker as a replica runs it, against real Redis and NATS
//! with the live tenant directory: a configuration change re-syncs only its
//! tenant, outside the timer loop; one tenant's timer backlog does not hold up
//! another's; failures are counted. The order of work is read from Redis'
//! MONITOR feed (the order Redis executed commands in), never from the clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_domain::tenant::TenantConfig;
use careline_domain::{Channel, Language, Priority};
use careline_kit::RedisConnection;
use careline_proto::v1;
use careline_routing::failures::WORKER_FAILURES_METRIC;
use careline_routing::keys::prefix;
use careline_routing::store::TIMER_BATCH;
use careline_routing::{AgentStatus, Backend, RoutingStore};
use careline_testkit::{Sandbox, assert_eventually};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::env::{agent, interaction_request, test_tenant};

const WITHIN: Duration = Duration::from_secs(30);
/// Batches of due timers planted in the busy tenant.
const BACKLOG_BATCHES: usize = 20;
/// Logged-in agents of the large tenant.
const LARGE_TENANT_AGENTS: usize = 2_000;
/// Timers of the small tenant, one coming due every [`TIMER_SPACING_MS`].
const SPACED_TIMERS: usize = 2_000;
const TIMER_SPACING_MS: u64 = 5;

/// The test tenant under another id (and without API keys, which must be unique).
pub(crate) fn tenant(id: &str, configure: impl FnOnce(&mut TenantConfig)) -> TenantConfig {
    test_tenant(|c| {
        c.id = id.into();
        c.api_keys.clear();
        configure(c);
    })
}

/// One router/presence replica's backend over a sandbox, started on demand
/// so a test can prepare Redis first.
pub(crate) struct Replica {
    sandbox: Sandbox,
    pub(crate) store: RoutingStore,
    redis: RedisConnection,
    pub(crate) tenants: careline_bus::TenantStore,
    shutdown: CancellationToken,
    backend: Option<Backend>,
}

impl Replica {
    /// A sandbox whose tenant bucket holds `configs` (not yet synced to Redis).
    pub(crate) async fn new(configs: &[&TenantConfig]) -> Replica {
        let sandbox = Sandbox::start().await.expect("redis and nats start");
        let store = RoutingStore::connect(&sandbox.redis_url()).await.unwrap();
        let redis = sandbox.redis().await.unwrap();
        let js = async_nats::jetstream::new(sandbox.nats().await.unwrap());
        let tenants = careline_bus::TenantStore::open(&js, None).await.unwrap();
        for config in configs {
            tenants.put(config).await.unwrap();
        }
        Replica {
            sandbox,
            store,
            redis,
            tenants,
            shutdown: CancellationToken::new(),
            backend: None,
        }
    }

    pub(crate) fn nats_url(&self) -> String {
        self.sandbox.nats_url()
    }

    pub(crate) async fn start_worker(&mut self) {
        let config = careline_kit::config::CommonConfig {
            redis_url: self.sandbox.redis_url(),
            nats_url: self.sandbox.nats_url(),
            ..Default::default()
        };
        let backend = Backend::start(&config, "worker-test", &self.shutdown)
            .await
            .expect("backend starts");
        self.backend = Some(backend);
    }

    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(backend) = self.backend.take() {
            backend.stopped().await;
        }
    }

    async fn setting(&self, tenant: &str, name: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(format!("{}settings", prefix(tenant)))
            .arg(name)
            .query_async(&mut self.redis.clone())
            .await
            .unwrap()
    }

    pub(crate) async fn redis<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut self.redis.clone()).await.unwrap()
    }

    async fn timers_left(&self, tenant: &str) -> u64 {
        self.redis(redis::cmd("ZCARD").arg(format!("{}timers", prefix(tenant))))
            .await
    }

    async fn redis_now_ms(&self) -> u64 {
        let (secs, micros): (u64, u64) = self.redis(&mut redis::cmd("TIME")).await;
        secs * 1000 + micros / 1000
    }

    /// Plants `count` timers of interactions long gone (each a no-op to
    /// run), the n-th due at `due_ms(n)`.
    async fn plant_timers(&self, tenant: &str, count: usize, due_ms: impl Fn(usize) -> u64) {
        let key = format!("{}timers", prefix(tenant));
        let members: Vec<(u64, String)> = (0..count)
            .map(|n| (due_ms(n), format!("age|gone-{n}")))
            .collect();
        for chunk in members.chunks(10_000) {
            self.redis::<()>(redis::cmd("ZADD").arg(&key).arg(chunk))
                .await;
        }
    }
}

/// Every command Redis executes, in order, from its MONITOR feed.
struct CommandLog(Arc<Mutex<Vec<String>>>);

impl CommandLog {
    async fn start(redis_url: &str) -> CommandLog {
        let monitor = redis::Client::open(redis_url)
            .unwrap()
            .get_async_monitor()
            .await
            .expect("MONITOR starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut feed = monitor.into_on_message::<String>();
            while let Some(line) = feed.next().await {
                sink.lock().unwrap().push(line);
            }
        });
        CommandLog(lines)
    }

    /// Positions of the commands containing every one of `parts`.
    fn positions(&self, parts: &[&str]) -> Vec<usize> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .enumerate()
            .filter(|(_, line)| parts.iter().all(|part| line.contains(part)))
            .map(|(at, _)| at)
            .collect()
    }

    /// Positions of the timer batches `run_timers.lua` ran for `tenant`
    /// (each batch claims its timers with one ZRANGEBYSCORE).
    fn timer_batches(&self, tenant: &str) -> Vec<usize> {
        self.positions(&[&format!("\"ZRANGEBYSCORE\" \"{}timers\"", prefix(tenant))])
    }
}

#[tokio::test]
async fn a_config_change_or_lost_settings_re_sync_that_tenant_only() {
    // Tenants are synced in id order: a-quiet comes first, so a re-sync of
    // every tenant would reach it before the changed one.
    let quiet = tenant("a-quiet", |_| {});
    let changing = tenant("b-changing", |_| {});
    let mut replica = Replica::new(&[&quiet, &changing]).await;
    replica.start_worker().await;
    assert_eventually!(
        within: WITHIN,
        replica.setting("a-quiet", "wrap_up_secs").await.is_some()
            && replica.setting("b-changing", "wrap_up_secs").await.is_some(),
        "both tenants synced at start"
    );
    // A mark any re-sync of a-quiet would overwrite.
    replica
        .redis::<()>(
            redis::cmd("HSET")
                .arg(format!("{}settings", prefix("a-quiet")))
                .arg("wrap_up_secs")
                .arg("4242"),
        )
        .await;

    let mut changed = changing.clone();
    changed.routing.wrap_up_secs = 7;
    replica.tenants.put(&changed).await.unwrap();
    assert_eventually!(
        within: WITHIN,
        replica.setting("b-changing", "wrap_up_secs").await.as_deref() == Some("7"),
        "b-changing's change applied"
    );
    assert_eq!(
        replica.setting("a-quiet", "wrap_up_secs").await.as_deref(),
        Some("4242"),
        "a change to b-changing re-synced a-quiet"
    );

    // Redis loses b-changing's settings (as after a restart without data).
    replica
        .redis::<()>(redis::cmd("DEL").arg(format!("{}settings", prefix("b-changing"))))
        .await;
    assert_eventually!(
        within: WITHIN,
        replica.setting("b-changing", "wrap_up_secs").await.as_deref() == Some("7"),
        "b-changing's settings restored"
    );
    assert_eq!(
        replica.setting("a-quiet", "wrap_up_secs").await.as_deref(),
        Some("4242"),
        "restoring b-changing re-synced a-quiet"
    );
    replica.stop().await;
}

#[tokio::test]
async fn timers_of_other_tenants_keep_running_while_a_large_tenant_is_re_synced() {
    let agent_id = |i: usize| format!("agent-{i:04}");
    let large = tenant("a-large", |c| {
        for i in 0..LARGE_TENANT_AGENTS {
            c.agents
                .push(agent(&agent_id(i), &[("billing", 5)], &[Language::En]));
        }
    });
    let small = tenant("b-small", |_| {});
    let mut replica = Replica::new(&[&large, &small]).await;
    replica.store.sync_tenant(&large).await.unwrap();
    for i in 0..LARGE_TENANT_AGENTS {
        replica
            .store
            .agent_login(
                &large,
                &agent_id(i),
                &format!("s-{i}"),
                AgentStatus::Available,
            )
            .await
            .unwrap();
    }
    replica.start_worker().await;
    let log = CommandLog::start(&replica.sandbox.redis_url()).await;
    let now = replica.redis_now_ms().await;
    replica
        .plant_timers("b-small", SPACED_TIMERS, |n| {
            now + n as u64 * TIMER_SPACING_MS
        })
        .await;

    let mut changed = large.clone();
    for agent in &mut changed.agents {
        agent.languages.push(Language::Es);
    }
    replica.tenants.put(&changed).await.unwrap();
    // agent_refresh.lua first takes a changed agent out of its indexes.
    let large_agent = format!("\"HSET\" \"{}agent:", prefix("a-large"));
    let refreshes = || log.positions(&[&large_agent, "\"online\" \"0\""]);
    assert_eventually!(
        within: WITHIN,
        refreshes().len() >= LARGE_TENANT_AGENTS,
        "every agent of a-large refreshed ({} so far)",
        refreshes().len()
    );

    let refreshes = refreshes();
    let (first, last) = (refreshes[0], refreshes[refreshes.len() - 1]);
    let during = log
        .timer_batches("b-small")
        .into_iter()
        .filter(|at| (first..last).contains(at))
        .count();
    let passes = 1 + log
        .positions(&["\"SMEMBERS\"", &format!("\"{}agents\"", prefix("a-large"))])
        .into_iter()
        .filter(|at| (first..last).contains(at))
        .count();
    println!(
        "b-small ran {during} timer batches while a-large's {LARGE_TENANT_AGENTS} agents were refreshed ({passes} pass(es))"
    );
    assert!(
        during > 0,
        "b-small's timers stood still while a-large was re-synced"
    );
    replica.stop().await;
}

#[tokio::test]
async fn a_timer_backlog_of_one_tenant_delays_another_tenants_offer_timeout_by_one_batch_at_most() {
    // a-busy sorts first: draining tenants in id order would run its whole
    // backlog before b-quiet's single timer.
    let busy = tenant("a-busy", |_| {});
    let quiet = tenant("b-quiet", |c| {
        c.agents
            .push(agent("ana", &[("billing", 5)], &[Language::En]));
    });
    let mut replica = Replica::new(&[&busy, &quiet]).await;
    replica.store.sync_tenant(&busy).await.unwrap();
    replica.store.sync_tenant(&quiet).await.unwrap();
    replica
        .store
        .agent_login(&quiet, "ana", "s-ana", AgentStatus::Available)
        .await
        .unwrap();
    let chat = replica
        .store
        .create_interaction(
            "b-quiet",
            &interaction_request("billing", Channel::Chat, Language::En, Priority::Normal, 1),
        )
        .await
        .unwrap()
        .interaction_id;
    let offer = replica
        .store
        .get_interaction("b-quiet", &chat)
        .await
        .unwrap()
        .offer_id;
    assert!(!offer.is_empty(), "offered to ana");
    // The offer's deadline has passed, and so have a-busy's many timers.
    replica
        .redis::<()>(
            redis::cmd("ZADD")
                .arg(format!("{}timers", prefix("b-quiet")))
                .arg("XX")
                .arg(0)
                .arg(format!("offer|{offer}|{chat}")),
        )
        .await;
    replica
        .plant_timers("a-busy", BACKLOG_BATCHES * TIMER_BATCH, |_| 0)
        .await;

    let log = CommandLog::start(&replica.sandbox.redis_url()).await;
    replica.start_worker().await;
    assert_eventually!(
        within: WITHIN,
        replica.store.get_interaction("b-quiet", &chat).await.unwrap().state
            == v1::InteractionState::Queued as i32,
        "b-quiet's offer timed out and the chat is queued again"
    );
    assert_eventually!(
        within: WITHIN,
        replica.timers_left("a-busy").await == 0,
        "a-busy's backlog worked off"
    );

    let quiet_batch = log.timer_batches("b-quiet")[0];
    let busy_batches = log.timer_batches("a-busy");
    let busy_before = busy_batches.iter().filter(|at| **at < quiet_batch).count();
    println!(
        "b-quiet's offer timeout ran after {busy_before} of a-busy's {} batches",
        busy_batches.len()
    );
    assert!(
        busy_batches.len() >= BACKLOG_BATCHES,
        "the whole backlog ran"
    );
    assert!(
        busy_before <= 1,
        "b-quiet's timer waited for {busy_before} of a-busy's batches"
    );
    replica.stop().await;
}

/// The value of the worker failures counter for `task` and `tenant`.
fn worker_failures(task: &str, tenant: &str) -> f64 {
    let task = format!("task=\"{task}\"");
    let tenant = format!("tenant=\"{tenant}\"");
    careline_kit::metrics::render()
        .unwrap()
        .lines()
        .find(|line| {
            line.starts_with(WORKER_FAILURES_METRIC)
                && line.contains(&task)
                && line.contains(&tenant)
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_failing_timer_run_is_counted_then_healed_by_a_re_sync_while_other_tenants_run_on() {
    careline_kit::metrics::prometheus_handle().expect("metrics recorder installs");
    let broken = tenant("a-broken", |_| {});
    let healthy = tenant("b-healthy", |_| {});
    let mut replica = Replica::new(&[&broken, &healthy]).await;
    replica.start_worker().await;
    assert_eventually!(
        within: WITHIN,
        replica.setting("a-broken", "aging_max_band").await.is_some()
            && replica.setting("b-healthy", "wrap_up_secs").await.is_some(),
        "both tenants synced"
    );

    // a-broken's settings lose a field the scripts need, so its timer runs
    // fail until the settings are rewritten from configuration.
    let p = prefix("a-broken");
    replica
        .redis::<()>(
            redis::cmd("HDEL")
                .arg(format!("{p}settings"))
                .arg("aging_max_band"),
        )
        .await;
    replica.plant_timers("a-broken", 1, |_| 0).await;
    replica.plant_timers("b-healthy", 1, |_| 0).await;

    assert_eventually!(
        within: WITHIN,
        worker_failures("timers", "a-broken") >= 1.0,
        "the failing timer run is counted for a-broken"
    );
    assert_eventually!(
        within: WITHIN,
        replica.timers_left("b-healthy").await == 0,
        "b-healthy's timers run meanwhile"
    );
    assert_eventually!(
        within: WITHIN,
        replica.timers_left("a-broken").await == 0,
        "a-broken's settings rewritten and its timer run"
    );
    assert!(
        replica
            .setting("a-broken", "aging_max_band")
            .await
            .is_some()
    );
    assert_eq!(worker_failures("timers", "b-healthy"), 0.0);
    replica.stop().await;
}
