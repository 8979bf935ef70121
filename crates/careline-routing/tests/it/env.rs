//! A tenant in a fresh redis-server, with helpers that read like the scenarios.

use std::collections::BTreeMap;
use std::time::Duration;

use careline_domain::tenant::{AgentConfig, PerChannel, PerChannelOverride, TenantConfig};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{AgentStatus, Created, NewInteraction, RoutingStore, keys};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use careline_testkit::TestRedis;

pub const DEMO: &str = include_str!("../../../../deploy/tenants/demo-health.yaml");

pub struct Env {
    pub redis: Arc<TestRedis>,
    pub store: RoutingStore,
    pub config: TenantConfig,
    counter: std::sync::atomic::AtomicU64,
}

/// An agent with the given skills and languages, default capacity.
pub fn agent(id: &str, skills: &[(&str, u8)], languages: &[Language]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        key_sha256: "0".repeat(64),
        skills: skills
            .iter()
            .map(|(s, p)| (s.to_string(), *p))
            .collect::<BTreeMap<_, _>>(),
        languages: languages.to_vec(),
        capacity: PerChannelOverride::default(),
    }
}

/// The demo tenant without agents, no wrap-up, no aging, then `configure`.
pub fn test_tenant(configure: impl FnOnce(&mut TenantConfig)) -> TenantConfig {
    let mut config = TenantConfig::from_yaml(DEMO).expect("demo tenant parses");
    config.agents.clear();
    config.routing.wrap_up_secs = 0;
    config.routing.aging = None;
    config.routing.offer_timeout_secs = PerChannel {
        voice: 20,
        chat: 60,
        email: 60,
    };
    configure(&mut config);
    config.validate().expect("test tenant is valid");
    config
}

/// A request for a new interaction; `n` makes its member and idempotency key unique.
pub fn interaction_request(
    queue: &str,
    channel: Channel,
    language: Language,
    priority: Priority,
    n: u64,
) -> NewInteraction {
    NewInteraction {
        channel,
        queue: queue.into(),
        language,
        urgent: priority == Priority::Urgent,
        urgent_reason: None,
        priority,
        member_ref: format!("m-{n}"),
        context: v1::InteractionContext {
            reason: "billing question".into(),
            ..Default::default()
        },
        after_hours: false,
        idempotency_key: format!("k-{n}"),
        max_waiting: 0,
        queued_since_ms: None,
    }
}

impl Env {
    /// A fresh redis-server holding the [`test_tenant`] after `configure`.
    pub async fn new(configure: impl FnOnce(&mut TenantConfig)) -> Env {
        let redis = Arc::new(TestRedis::single().await.expect("redis-server starts"));
        Env::start(redis, test_tenant(configure)).await
    }

    /// The [`test_tenant`] after `configure`, under an id of its own, in a
    /// Redis other tests share (one server or a cluster).
    pub async fn on(redis: &Arc<TestRedis>, configure: impl FnOnce(&mut TenantConfig)) -> Env {
        static TENANTS: AtomicU64 = AtomicU64::new(0);
        let mut config = test_tenant(configure);
        config.id = format!("{}-{}", config.id, TENANTS.fetch_add(1, Ordering::SeqCst));
        Env::start(redis.clone(), config).await
    }

    async fn start(redis: Arc<TestRedis>, config: TenantConfig) -> Env {
        let store = RoutingStore::connect(&redis.url()).await.expect("connects");
        store.sync_tenant(&config).await.expect("tenant synced");
        Env {
            redis,
            store,
            config,
            counter: Default::default(),
        }
    }

    /// A connection of its own to the test's Redis.
    pub async fn redis_conn(&self) -> careline_kit::RedisConnection {
        RoutingStore::connect(&self.redis.url())
            .await
            .expect("connects")
            .connection()
    }

    pub fn tenant(&self) -> &str {
        &self.config.id
    }

    pub async fn login(&self, agent: &str) -> String {
        self.login_as(agent, AgentStatus::Available).await
    }

    pub async fn login_as(&self, agent: &str, status: AgentStatus) -> String {
        let session = format!("s-{agent}-{}", self.next());
        self.store
            .agent_login(&self.config, agent, &session, status)
            .await
            .expect("agent logs in");
        session
    }

    fn next(&self) -> u64 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    pub fn new_interaction(
        &self,
        queue: &str,
        channel: Channel,
        language: Language,
        priority: Priority,
    ) -> NewInteraction {
        interaction_request(queue, channel, language, priority, self.next())
    }

    pub async fn create(
        &self,
        queue: &str,
        channel: Channel,
        language: Language,
        priority: Priority,
    ) -> Created {
        self.store
            .create_interaction(
                self.tenant(),
                &self.new_interaction(queue, channel, language, priority),
            )
            .await
            .expect("interaction created")
    }

    /// A normal-priority English chat in `queue`.
    pub async fn chat(&self, queue: &str) -> String {
        self.create(queue, Channel::Chat, Language::En, Priority::Normal)
            .await
            .interaction_id
    }

    pub async fn get(&self, id: &str) -> v1::Interaction {
        self.store
            .get_interaction(self.tenant(), id)
            .await
            .expect("interaction exists")
    }

    pub async fn state(&self, id: &str) -> v1::InteractionState {
        v1::InteractionState::try_from(self.get(id).await.state).expect("known state")
    }

    /// The agent the interaction is offered to, if any.
    pub async fn offered_to(&self, id: &str) -> Option<String> {
        let ix = self.get(id).await;
        (ix.state == v1::InteractionState::Offered as i32).then_some(ix.agent_id)
    }

    pub async fn accept(&self, id: &str) {
        let ix = self.get(id).await;
        self.store
            .accept_offer(self.tenant(), &ix.offer_id, &ix.agent_id)
            .await
            .expect("offer accepted");
    }

    pub async fn reject(&self, id: &str) {
        let ix = self.get(id).await;
        self.store
            .reject_offer(self.tenant(), &ix.offer_id, &ix.agent_id)
            .await
            .expect("offer rejected");
    }

    /// Runs due timers until `done` holds (timers are due on Redis' clock).
    pub async fn tick_until<F, Fut>(&self, within: Duration, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        careline_testkit::eventually(within, what, || {
            let check = done();
            async {
                self.store
                    .run_timers(self.tenant())
                    .await
                    .expect("timers run");
                check.await
            }
        })
        .await
        .expect("condition reached");
    }

    /// Waits until Redis' clock (the one scripts use) has moved on by a millisecond.
    pub async fn next_millisecond(&self) {
        let mut conn = self.redis_conn().await;
        let now = |(s, us): (i64, i64)| s * 1000 + us / 1000;
        let start = now(redis::cmd("TIME").query_async(&mut conn).await.unwrap());
        careline_testkit::assert_eventually!(
            now(redis::cmd("TIME").query_async(&mut conn).await.unwrap()) > start,
            "redis clock advances"
        );
    }

    pub async fn agent_load(&self, agent: &str, channel: v1::Channel) -> u32 {
        let agent = self
            .store
            .get_agent(self.tenant(), agent)
            .await
            .unwrap()
            .expect("agent known");
        agent
            .load
            .iter()
            .find(|l| l.channel == channel as i32)
            .map(|l| l.in_use)
            .unwrap_or(0)
    }

    /// Whether `id` waits in `queue`'s own index (not an agent's personal one).
    pub async fn in_queue(&self, queue: &str, channel: &str, id: &str) -> bool {
        let key = format!("{}q:{queue}:{channel}:en", keys::prefix(self.tenant()));
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(key)
            .arg(id)
            .query_async(&mut self.redis_conn().await)
            .await
            .unwrap();
        score.is_some()
    }

    /// How many of the tenant's timers are due now (on Redis' clock).
    pub async fn due_timers(&self) -> usize {
        let mut conn = self.redis_conn().await;
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let key = format!("{}timers", keys::prefix(self.tenant()));
        redis::cmd("ZCOUNT")
            .arg(key)
            .arg("-inf")
            .arg(secs * 1000 + micros / 1000)
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    /// Removes one routing setting, as settings written by an older release
    /// without it are (those lack the digest of the settings too).
    pub async fn redis_del_setting(&self, name: &str) {
        let key = format!("{}settings", keys::prefix(self.tenant()));
        let _: () = redis::cmd("HDEL")
            .arg(key)
            .arg(name)
            .arg("digest")
            .query_async(&mut self.redis_conn().await)
            .await
            .unwrap();
    }

    /// Writes a live interaction record that cannot be read back; returns its id.
    pub async fn plant_corrupt_interaction(&self) -> String {
        let id = careline_domain::InteractionId::generate().to_string();
        let prefix = keys::prefix(self.tenant());
        let mut conn = self.redis_conn().await;
        let (secs, _): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let _: () = redis::pipe()
            .hset_multiple(
                format!("{prefix}ix:{id}"),
                &[("state", "half-written"), ("ch", "chat")],
            )
            .zadd(format!("{prefix}live"), &id, secs * 1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        id
    }
}
