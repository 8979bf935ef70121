//! Applying a tenant's configuration to its routing state: settings, targets
//! and logged-in agents, cheaply enough for tenants with thousands of agents.

use std::time::Instant;

use careline_domain::Language;
use careline_proto::v1;
use careline_routing::RoutingStore;

use crate::env::{Env, agent};

/// Logged-in agents of the large tenant (a big contact center's shift).
const MANY_AGENTS: usize = 2_000;

fn agent_id(i: usize) -> String {
    format!("agent-{i:04}")
}

async fn env_with_many_logged_in_agents() -> Env {
    let env = Env::new(|c| {
        for i in 0..MANY_AGENTS {
            c.agents
                .push(agent(&agent_id(i), &[("billing", 5)], &[Language::En]));
        }
    })
    .await;
    for i in 0..MANY_AGENTS {
        env.login(&agent_id(i)).await;
    }
    env
}

#[tokio::test]
async fn a_change_reaches_two_thousand_logged_in_agents_in_one_pipelined_pass() {
    let mut env = env_with_many_logged_in_agents().await;
    env.config.routing.wrap_up_secs = 30;
    let started = Instant::now();
    env.store.sync_tenant(&env.config).await.unwrap();
    let changed = env.store.refresh_agents(&env.config).await.unwrap();
    println!(
        "config change touching no agent applied to a tenant with {MANY_AGENTS} logged-in agents in {:?}",
        started.elapsed()
    );
    assert_eq!(changed, 0, "a wrap-up change leaves every agent's profile");

    for agent in &mut env.config.agents {
        agent.languages.push(Language::Es);
    }

    let started = Instant::now();
    env.store.sync_tenant(&env.config).await.unwrap();
    let changed = env.store.refresh_agents(&env.config).await.unwrap();
    println!(
        "config change touching every agent applied to {MANY_AGENTS} logged-in agents in {:?}",
        started.elapsed()
    );

    assert_eq!(changed, MANY_AGENTS, "every agent changed");
    for i in 0..MANY_AGENTS {
        let agent = env
            .store
            .get_agent(env.tenant(), &agent_id(i))
            .await
            .unwrap()
            .expect("agent known");
        assert!(agent.logged_in, "{} stays logged in", agent.agent_id);
        assert!(
            agent.languages.contains(&(v1::Language::Es as i32)),
            "{} now speaks Spanish",
            agent.agent_id
        );
    }
    assert_eq!(
        env.store.refresh_agents(&env.config).await.unwrap(),
        0,
        "an unchanged configuration changes nobody"
    );
}

/// What a new or emptied Redis primary lacks: the routing library and the
/// standalone scripts.
async fn forget_code(env: &Env) {
    let mut conn = env.redis_conn().await;
    for what in ["SCRIPT", "FUNCTION"] {
        redis::cmd(what)
            .arg("FLUSH")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_change_and_a_create_still_apply_after_redis_lost_the_routing_code() {
    let mut env = Env::new(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    env.login("a1").await;
    forget_code(&env).await;

    // A pipeline of calls (the refresh of logged-in agents)...
    env.config.agents[0].languages.push(Language::Es);
    assert_eq!(env.store.refresh_agents(&env.config).await.unwrap(), 1);
    let a1 = env
        .store
        .get_agent(env.tenant(), "a1")
        .await
        .unwrap()
        .unwrap();
    assert!(a1.languages.contains(&(v1::Language::Es as i32)));

    // ... and a single one.
    forget_code(&env).await;
    let id = env.chat("billing").await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("a1"));
}

#[tokio::test]
async fn a_redis_user_not_allowed_to_load_the_routing_code_stops_start_up_saying_so() {
    let env = Env::new(|_| {}).await;
    let mut conn = env.redis_conn().await;
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "careline",
            "on",
            ">secret",
            "~*",
            "&*",
            "+@all",
            "-function",
        ])
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let url = env
        .redis
        .url()
        .replacen("redis://", "redis://careline:secret@", 1);

    let refused = RoutingStore::connect(&url)
        .await
        .expect_err("start-up stops");
    let message = refused.to_string();
    assert!(
        message.contains("FUNCTION LOAD") && message.contains("FCALL"),
        "{message}"
    );
}

#[tokio::test]
async fn a_settings_change_reaches_the_very_next_call() {
    let mut env = Env::new(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
        c.routing.offer_timeout_secs.chat = 60;
    })
    .await;
    env.login("a1").await;
    let first = env.get(&env.chat("billing").await).await;
    assert_eq!(first.offer_deadline_ms - first.updated_at_ms, 60_000);

    env.config.routing.offer_timeout_secs.chat = 20;
    env.store.sync_tenant(&env.config).await.unwrap();
    let second = env.get(&env.chat("billing").await).await;
    assert_eq!(second.offer_deadline_ms - second.updated_at_ms, 20_000);
}

#[tokio::test]
async fn work_for_a_tenant_whose_settings_are_not_synced_yet_is_retryable_and_changes_nothing() {
    let env = Env::new(|_| {}).await;
    let mut early = env.config.clone();
    early.id = "applied-moments-ago".into();
    let create = || async {
        let chat = env.new_interaction(
            "general",
            careline_domain::Channel::Chat,
            Language::En,
            careline_domain::Priority::Normal,
        );
        env.store.create_interaction(&early.id, &chat).await
    };
    let error = create().await.expect_err("no settings yet");
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error}");
    assert!(error.to_string().contains("retry shortly"), "{error}");
    env.store.sync_tenant(&early).await.expect("synced");
    create().await.expect("taken once its settings are synced");
}
