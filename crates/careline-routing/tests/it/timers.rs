//! Behaviour driven by timers: offer deadlines, wrap-up, pending follow-up,
//! overflow and aging. Timeouts are configured in whole seconds, so these
//! tests take a second or two each; they poll, never sleep.

use std::time::Duration;

use careline_domain::tenant::{Aging, OverflowStep, PerChannel};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;

use crate::env::{Env, agent};

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn offer_timeout_marks_the_agent_away_and_requeues_at_the_original_position() {
    let env = Env::new(|c| {
        c.routing.offer_timeout_secs = PerChannel {
            voice: 1,
            chat: 1,
            email: 1,
        };
        c.agents
            .push(agent("sleepy", &[("billing", 5)], &[Language::En]));
        c.agents
            .push(agent("awake", &[("billing", 5)], &[Language::En]));
    })
    .await;
    let first = env
        .create("billing", Channel::Voice, Language::En, Priority::Normal)
        .await
        .interaction_id;
    let second = env
        .create("billing", Channel::Voice, Language::En, Priority::Normal)
        .await
        .interaction_id;
    env.login("sleepy").await;
    assert_eq!(env.offered_to(&first).await.as_deref(), Some("sleepy"));
    env.tick_until(WITHIN, "offer times out", || async {
        env.offered_to(&first).await.is_none()
    })
    .await;
    let sleepy = env
        .store
        .get_agent(env.tenant(), "sleepy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sleepy.state, v1::AgentState::Away as i32);
    assert_eq!(sleepy.away_reason, "missed");
    assert_eq!(env.agent_load("sleepy", v1::Channel::Voice).await, 0);
    let email = env
        .create("billing", Channel::Email, Language::En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(
        env.state(&email).await,
        v1::InteractionState::Queued,
        "an away agent gets nothing, on any channel"
    );
    env.login("awake").await;
    assert_eq!(
        env.offered_to(&first).await.as_deref(),
        Some("awake"),
        "first is still ahead of second"
    );
    assert_eq!(env.state(&second).await, v1::InteractionState::Queued);
}

#[tokio::test]
async fn wrap_up_holds_capacity_for_the_configured_time() {
    let env = Env::new(|c| {
        c.routing.wrap_up_secs = 1;
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    env.login("a1").await;
    let call = env
        .create("billing", Channel::Voice, Language::En, Priority::Normal)
        .await
        .interaction_id;
    env.accept(&call).await;
    env.store
        .resolve(env.tenant(), &call, "a1", "answered", &[], None)
        .await
        .unwrap();
    let next = env
        .create("billing", Channel::Voice, Language::En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(
        env.state(&next).await,
        v1::InteractionState::Queued,
        "still wrapping up"
    );
    assert_eq!(env.agent_load("a1", v1::Channel::Voice).await, 1);
    env.tick_until(WITHIN, "offered after wrap-up", || async {
        env.offered_to(&next).await.is_some()
    })
    .await;
    assert_eq!(env.offered_to(&next).await.as_deref(), Some("a1"));
}

#[tokio::test]
async fn pending_follow_up_returns_to_the_same_agent() {
    let env = Env::new(|c| {
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
        c.agents
            .push(agent("a2", &[("billing", 5)], &[Language::En]));
    })
    .await;
    env.login("a1").await;
    let id = env
        .create("billing", Channel::Email, Language::En, Priority::Normal)
        .await
        .interaction_id;
    env.accept(&id).await;
    env.login("a2").await;
    let until = env.get(&id).await.updated_at_ms + 1000;
    env.store
        .set_pending(env.tenant(), &id, "a1", until, false, None)
        .await
        .unwrap();
    assert_eq!(env.state(&id).await, v1::InteractionState::Pending);
    assert_eq!(
        env.agent_load("a1", v1::Channel::Email).await,
        0,
        "pending work holds no capacity"
    );
    env.tick_until(WITHIN, "pending comes back", || async {
        env.state(&id).await != v1::InteractionState::Pending
    })
    .await;
    assert_eq!(
        env.offered_to(&id).await.as_deref(),
        Some("a1"),
        "a2 was free too, but it is a1's follow-up"
    );
}

#[tokio::test]
async fn overflow_relaxes_the_minimum_proficiency() {
    let env = Env::new(|c| {
        let general = c.queues.iter_mut().find(|q| q.id == "general").unwrap();
        general.skills[0].min_proficiency = 8;
        general.overflow = vec![OverflowStep {
            after_secs: 1,
            relax_by: Some(2),
            widen_to: None,
            move_to: None,
        }];
        c.agents
            .push(agent("junior", &[("member_services", 6)], &[Language::En]));
        c.agents
            .push(agent("trainee", &[("member_services", 5)], &[Language::En]));
    })
    .await;
    env.login("trainee").await;
    env.login("junior").await;
    let id = env.chat("general").await;
    assert_eq!(
        env.state(&id).await,
        v1::InteractionState::Queued,
        "nobody meets 8"
    );
    env.tick_until(WITHIN, "relaxed to 6", || async {
        env.offered_to(&id).await.is_some()
    })
    .await;
    assert_eq!(
        env.offered_to(&id).await.as_deref(),
        Some("junior"),
        "6 meets 8-2, 5 does not"
    );
}

#[tokio::test]
async fn overflow_widens_to_another_queues_agents() {
    let env = Env::new(|c| {
        let general = c.queues.iter_mut().find(|q| q.id == "general").unwrap();
        general.overflow = vec![OverflowStep {
            after_secs: 1,
            relax_by: None,
            widen_to: Some("billing".into()),
            move_to: None,
        }];
        c.agents
            .push(agent("biller", &[("billing", 5)], &[Language::En]));
    })
    .await;
    env.login("biller").await;
    let id = env.chat("general").await;
    assert_eq!(env.state(&id).await, v1::InteractionState::Queued);
    env.tick_until(WITHIN, "widened to billing agents", || async {
        env.offered_to(&id).await.is_some()
    })
    .await;
    let ix = env.get(&id).await;
    assert_eq!(ix.agent_id, "biller");
    assert_eq!(ix.queue_id, "general", "widening does not move it");
}

/// General moves its contacts to billing after a second; `agents` (with
/// their skills) join the billing agent "biller".
async fn general_moves_to_billing(agents: &[(&str, &str)]) -> Env {
    Env::new(|c| {
        let general = c.queues.iter_mut().find(|q| q.id == "general").unwrap();
        general.overflow = vec![OverflowStep {
            after_secs: 1,
            relax_by: None,
            widen_to: None,
            move_to: Some("billing".into()),
        }];
        c.agents
            .push(agent("biller", &[("billing", 5)], &[Language::En]));
        for (id, skill) in agents {
            c.agents.push(agent(id, &[(*skill, 5)], &[Language::En]));
        }
    })
    .await
}

#[tokio::test]
async fn overflow_moves_to_another_queue() {
    let env = general_moves_to_billing(&[]).await;
    env.login("biller").await;
    let id = env.chat("general").await;
    env.tick_until(WITHIN, "moved to billing", || async {
        env.offered_to(&id).await.is_some()
    })
    .await;
    assert_eq!(env.get(&id).await.queue_id, "billing");
}

#[tokio::test]
async fn a_contact_offered_at_once_then_rejected_still_overflows_on_time() {
    let env = general_moves_to_billing(&[("gen", "member_services")]).await;
    env.login("gen").await;
    env.login("biller").await;
    let id = env.chat("general").await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("gen"));
    env.reject(&id).await;
    env.tick_until(WITHIN, "moved to billing and offered there", || async {
        env.offered_to(&id).await.as_deref() == Some("biller")
    })
    .await;
    assert_eq!(env.get(&id).await.queue_id, "billing");
}

#[tokio::test]
async fn aging_raises_priority_after_a_wait() {
    let env = Env::new(|c| {
        c.routing.aging = Some(Aging {
            after_secs: 1,
            max_priority: Priority::High,
        });
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    let old_low = env
        .create("billing", Channel::Voice, Language::En, Priority::Low)
        .await
        .interaction_id;
    env.tick_until(WITHIN, "low ages to normal", || async {
        env.get(&old_low).await.priority == v1::Priority::Normal as i32
    })
    .await;
    let new_normal = env
        .create("billing", Channel::Voice, Language::En, Priority::Normal)
        .await
        .interaction_id;
    env.login("a1").await;
    assert_eq!(
        env.offered_to(&old_low).await.as_deref(),
        Some("a1"),
        "aged and older: first"
    );
    assert_eq!(env.state(&new_normal).await, v1::InteractionState::Queued);
    env.tick_until(WITHIN, "normal ages to high, never urgent", || async {
        env.get(&new_normal).await.priority == v1::Priority::High as i32
    })
    .await;
}

#[tokio::test]
async fn timer_check_finds_due_timers_and_lost_settings_in_one_read() {
    let env = Env::new(|c| {
        c.routing.offer_timeout_secs = PerChannel {
            voice: 1,
            chat: 1,
            email: 1,
        };
        c.agents
            .push(agent("a1", &[("billing", 5)], &[Language::En]));
    })
    .await;
    let tenants = vec![env.tenant().to_string()];
    let check = env.store.timer_check(&tenants).await.unwrap();
    assert!(!check[0].due && !check[0].settings_lost, "{check:?}");
    env.login("a1").await;
    env.chat("billing").await;
    careline_testkit::assert_eventually!(
        env.store.timer_check(&tenants).await.unwrap()[0].due,
        "the offer deadline comes due"
    );
    let mut conn = env.redis_conn().await;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert!(env.store.timer_check(&tenants).await.unwrap()[0].settings_lost);
}

#[tokio::test]
async fn a_tenant_with_a_corrupt_timer_set_does_not_hide_other_tenants_due_timers() {
    let env = Env::new(|_| {}).await;
    let mut broken = env.config.clone();
    broken.id = "broken-health".into();
    broken.api_keys.clear();
    env.store.sync_tenant(&broken).await.unwrap();
    let mut conn = env.redis_conn().await;
    redis::cmd("SET")
        .arg(format!(
            "{}timers",
            careline_routing::keys::prefix("broken-health")
        ))
        .arg("not a sorted set")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    redis::cmd("ZADD")
        .arg(format!(
            "{}timers",
            careline_routing::keys::prefix(env.tenant())
        ))
        .arg(0)
        .arg("age|gone")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    let tenants = vec!["broken-health".to_string(), env.tenant().to_string()];
    let checks = env.store.timer_check(&tenants).await.unwrap();
    assert!(
        checks[0]
            .unreadable
            .as_deref()
            .is_some_and(|e| e.contains("WRONGTYPE")),
        "{checks:?}"
    );
    assert!(
        checks[1].due && checks[1].unreadable.is_none(),
        "{checks:?}"
    );
}
