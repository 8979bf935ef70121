//! Agent sessions: heartbeats, lost sessions, reconnects, state changes.

use std::time::Duration;

use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{AgentStatus, RoutingError};

use crate::env::{Env, agent};

const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn missed_heartbeats_requeue_offers_at_once_and_assigned_work_after_the_grace() {
    let env = Env::new(|c| {
        c.routing.heartbeat_ttl_secs = 3;
        c.routing.reconnect_grace_secs = 1;
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
        c.agents
            .push(agent("a2", &[("billing", 5)], &[Language::En]));
    })
    .await;
    env.login("a1").await;
    let assigned = env.chat("billing").await;
    env.accept(&assigned).await;
    let offered = env.chat("billing").await;
    assert_eq!(env.offered_to(&offered).await.as_deref(), Some("a1"));
    // a1 stops sending heartbeats.
    env.tick_until(WITHIN, "offer requeued on session loss", || async {
        env.state(&offered).await == v1::InteractionState::Queued
    })
    .await;
    env.tick_until(WITHIN, "assigned requeued after grace", || async {
        env.state(&assigned).await == v1::InteractionState::Queued
    })
    .await;
    let ix = env.get(&assigned).await;
    assert!(ix.requeued_after_disconnect, "flagged");
    let a1 = env
        .store
        .get_agent(env.tenant(), "a1")
        .await
        .unwrap()
        .unwrap();
    assert!(!a1.logged_in);
    assert!(
        a1.load.iter().all(|l| l.in_use == 0),
        "capacity released: {:?}",
        a1.load
    );
    env.login("a2").await;
    assert_eq!(env.offered_to(&assigned).await.as_deref(), Some("a2"));
}

#[tokio::test]
async fn reconnecting_within_the_grace_keeps_assigned_work() {
    let env = Env::new(|c| {
        c.routing.heartbeat_ttl_secs = 3;
        c.routing.reconnect_grace_secs = 60;
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    let first = env.login("a1").await;
    let id = env.chat("billing").await;
    env.accept(&id).await;
    env.tick_until(WITHIN, "session lost", || async {
        !env.store
            .get_agent(env.tenant(), "a1")
            .await
            .unwrap()
            .unwrap()
            .logged_in
    })
    .await;
    let err = env
        .store
        .agent_heartbeat(env.tenant(), "a1", &first)
        .await
        .unwrap_err();
    assert!(matches!(err, RoutingError::FailedPrecondition(_)), "{err}");
    let held = env
        .store
        .agent_login(&env.config, "a1", "second", AgentStatus::Available)
        .await
        .unwrap();
    assert_eq!(
        held,
        vec![id.clone()],
        "the new session is told what it holds"
    );
    assert_eq!(env.state(&id).await, v1::InteractionState::Assigned);
    assert_eq!(env.agent_load("a1", v1::Channel::Chat).await, 1);
}

#[tokio::test]
async fn heartbeats_keep_the_session_alive() {
    let env = Env::new(|c| {
        c.routing.heartbeat_ttl_secs = 3;
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    let session = env.login("a1").await;
    let started = std::time::Instant::now();
    // Keep beating for longer than the TTL while timers run.
    careline_testkit::eventually(Duration::from_secs(10), "5 s of heartbeats", || async {
        env.store
            .agent_heartbeat(env.tenant(), "a1", &session)
            .await
            .expect("session alive");
        env.store.run_timers(env.tenant()).await.unwrap();
        started.elapsed() > Duration::from_secs(5)
    })
    .await
    .unwrap();
    assert!(
        env.store
            .get_agent(env.tenant(), "a1")
            .await
            .unwrap()
            .unwrap()
            .logged_in
    );
}

#[tokio::test]
async fn away_agents_get_nothing_until_available() {
    let env = Env::new(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]))
    })
    .await;
    let session = env.login_as("a1", AgentStatus::Away).await;
    let id = env
        .create("billing", Channel::Chat, Language::En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(env.state(&id).await, v1::InteractionState::Queued);
    env.store
        .agent_set_state(env.tenant(), "a1", &session, AgentStatus::Available, "")
        .await
        .unwrap();
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("a1"));
}

#[tokio::test]
async fn an_unknown_agent_cannot_log_in() {
    let env = Env::new(|_| {}).await;
    let err = env
        .store
        .agent_login(&env.config, "ghost", "s", AgentStatus::Available)
        .await
        .unwrap_err();
    assert!(matches!(err, RoutingError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn configuration_changes_apply_to_logged_in_agents() {
    let mut env = Env::new(|c| {
        c.agents
            .push(agent("a1", &[("member_services", 5)], &[Language::En]));
        c.agents
            .push(agent("a2", &[("member_services", 5)], &[Language::En]));
    })
    .await;
    env.login("a1").await;
    env.login("a2").await;
    let billing = env
        .create("billing", Channel::Chat, Language::En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(
        env.state(&billing).await,
        v1::InteractionState::Queued,
        "nobody has billing yet"
    );

    // The tenant gives a1 the billing skill and removes a2.
    env.config.agents[0].skills.insert("billing".into(), 6);
    env.config.agents.remove(1);
    assert_eq!(env.store.refresh_agents(&env.config).await.unwrap(), 2);
    assert_eq!(
        env.offered_to(&billing).await.as_deref(),
        Some("a1"),
        "a1 serves billing at once"
    );
    let a2 = env
        .store
        .get_agent(env.tenant(), "a2")
        .await
        .unwrap()
        .unwrap();
    assert!(!a2.logged_in, "a removed agent is logged out");
    assert_eq!(
        env.store.refresh_agents(&env.config).await.unwrap(),
        0,
        "nothing changes twice"
    );
}
