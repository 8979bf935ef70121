//! Matching scenarios: who gets offered what, in which order. Every
//! scenario runs on a single redis-server (one test each) and, all in one
//! test, on a Redis Cluster of three primaries: the same scripts, sharded by
//! tenant.

use std::sync::Arc;

use careline_domain::tenant::{PerChannelOverride, Strategy};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{RoutingError, TransferTarget};

use careline_testkit::TestRedis;

use crate::env::{Env, agent};

use Language::{En, Es};

/// One test per scenario on a single server, and one test running every
/// scenario (each under a tenant of its own) on a cluster.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod single_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let redis = std::sync::Arc::new(
                        careline_testkit::TestRedis::single().await.expect("redis-server starts"),
                    );
                    super::$name(&redis).await;
                }
            )*
        }

        #[tokio::test]
        async fn every_scenario_holds_on_a_redis_cluster() {
            let redis = Arc::new(TestRedis::cluster().await.expect("the cluster starts"));
            $(
                println!("scenario on the cluster: {}", stringify!($name));
                $name(&redis).await;
            )*
        }
    };
}

scenarios!(
    eligibility_follows_skills_proficiency_and_language,
    an_agent_is_never_offered_more_than_its_channel_capacity,
    voice_excludes_other_work,
    higher_priority_first_then_arrival_order,
    longest_idle_agent_gets_the_next_contact,
    an_agent_offered_work_in_one_queue_is_no_longer_the_longest_idle_in_its_others,
    most_skilled_strategy_prefers_proficiency_over_idle_time,
    round_robin_strategy_rotates_between_agents,
    rejected_contact_keeps_its_place_goes_to_the_next_agent_and_never_back,
    warm_transfer_keeps_the_id_and_carries_notes_to_the_next_agent,
    transfer_to_an_agent_and_to_an_external_destination,
    only_the_assigned_agent_can_resolve_or_transfer,
    replayed_idempotency_key_returns_the_same_interaction,
    another_tenants_interaction_is_not_found,
    abandoning_an_offered_contact_frees_the_agent,
    queue_stats_count_waiting_by_priority_and_agents,
);

/// One agent, one interaction: is it offered?
async fn eligibility_follows_skills_proficiency_and_language(redis: &Arc<TestRedis>) {
    struct Case {
        name: &'static str,
        skills: &'static [(&'static str, u8)],
        languages: &'static [Language],
        queue: &'static str,
        language: Language,
        offered: bool,
    }
    let cases = [
        Case {
            name: "has the skill",
            skills: &[("billing", 5)],
            languages: &[En],
            queue: "billing",
            language: En,
            offered: true,
        },
        Case {
            name: "lacks the skill",
            skills: &[("member_services", 9)],
            languages: &[En],
            queue: "billing",
            language: En,
            offered: false,
        },
        Case {
            name: "proficiency at the minimum",
            skills: &[("clinical", 6)],
            languages: &[En],
            queue: "clinical",
            language: En,
            offered: true,
        },
        Case {
            name: "proficiency below the minimum",
            skills: &[("clinical", 5)],
            languages: &[En],
            queue: "clinical",
            language: En,
            offered: false,
        },
        Case {
            name: "speaks spanish",
            skills: &[("billing", 5)],
            languages: &[En, Es],
            queue: "billing",
            language: Es,
            offered: true,
        },
        Case {
            name: "english only, spanish contact",
            skills: &[("billing", 9)],
            languages: &[En],
            queue: "billing",
            language: Es,
            offered: false,
        },
    ];
    for case in cases {
        let env = Env::on(redis, |c| {
            c.agents.push(agent("a1", case.skills, case.languages))
        })
        .await;
        env.login("a1").await;
        let id = env
            .create(case.queue, Channel::Chat, case.language, Priority::Normal)
            .await
            .interaction_id;
        let offered = env.offered_to(&id).await;
        assert_eq!(offered.is_some(), case.offered, "case: {}", case.name);
        if !case.offered {
            assert_eq!(
                env.state(&id).await,
                v1::InteractionState::Queued,
                "case: {}",
                case.name
            );
        }
    }
}

async fn an_agent_is_never_offered_more_than_its_channel_capacity(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        let mut a = agent("a1", &[("billing", 5)], &[En]);
        a.capacity = PerChannelOverride {
            chat: Some(2),
            ..Default::default()
        };
        c.agents.push(a);
    })
    .await;
    env.login("a1").await;
    let ids = [
        env.chat("billing").await,
        env.chat("billing").await,
        env.chat("billing").await,
    ];
    assert_eq!(env.offered_to(&ids[0]).await.as_deref(), Some("a1"));
    assert_eq!(env.offered_to(&ids[1]).await.as_deref(), Some("a1"));
    assert_eq!(env.state(&ids[2]).await, v1::InteractionState::Queued);
    assert_eq!(env.agent_load("a1", v1::Channel::Chat).await, 2);
}

async fn voice_excludes_other_work(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]))
    })
    .await;
    env.login("a1").await;
    let chat = env.chat("billing").await;
    env.accept(&chat).await;
    let call = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(
        env.state(&call).await,
        v1::InteractionState::Queued,
        "no call while chatting"
    );
    env.store
        .resolve(env.tenant(), &chat, "a1", "answered", &[], None)
        .await
        .unwrap();
    assert_eq!(
        env.offered_to(&call).await.as_deref(),
        Some("a1"),
        "the call once the chat is done"
    );
    let second_chat = env.chat("billing").await;
    assert_eq!(
        env.state(&second_chat).await,
        v1::InteractionState::Queued,
        "no chat during a call"
    );
}

async fn higher_priority_first_then_arrival_order(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]))
    })
    .await;
    let normal_1 = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    let low = env
        .create("billing", Channel::Voice, En, Priority::Low)
        .await
        .interaction_id;
    let normal_2 = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    let high = env
        .create("billing", Channel::Voice, En, Priority::High)
        .await;
    assert_eq!(high.queue_position, 1, "high goes before the normal ones");
    let urgent = env
        .create("billing", Channel::Voice, En, Priority::Urgent)
        .await
        .interaction_id;
    env.login("a1").await;
    for expected in [&urgent, &high.interaction_id, &normal_1, &normal_2, &low] {
        assert_eq!(
            env.offered_to(expected).await.as_deref(),
            Some("a1"),
            "next is {expected}"
        );
        env.accept(expected).await;
        env.store
            .resolve(env.tenant(), expected, "a1", "done", &[], None)
            .await
            .unwrap();
    }
}

async fn longest_idle_agent_gets_the_next_contact(redis: &Arc<TestRedis>) {
    // Named so that a tie (same millisecond) would pick the wrong one.
    let env = Env::on(redis, |c| {
        c.agents.push(agent("zed", &[("billing", 5)], &[En]));
        c.agents.push(agent("amy", &[("billing", 9)], &[En]));
    })
    .await;
    env.login("zed").await;
    env.next_millisecond().await;
    env.login("amy").await;
    let id = env.chat("billing").await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("zed"));
}

async fn an_agent_offered_work_in_one_queue_is_no_longer_the_longest_idle_in_its_others(
    redis: &Arc<TestRedis>,
) {
    let env = Env::on(redis, |c| {
        // Chat work then changes no other channel's availability.
        c.routing.voice_exclusive = false;
        for id in ["zed", "amy", "bob"] {
            c.agents
                .push(agent(id, &[("billing", 5), ("member_services", 5)], &[En]));
        }
    })
    .await;
    for id in ["zed", "amy", "bob"] {
        env.login(id).await;
        env.next_millisecond().await;
    }
    let billing = env.chat("billing").await;
    assert_eq!(env.offered_to(&billing).await.as_deref(), Some("zed"));
    // zed just got work (it still has chat room): amy, then bob, have waited
    // longer in general.
    for expected in ["amy", "bob"] {
        let general = env.chat("general").await;
        assert_eq!(
            env.offered_to(&general).await.as_deref(),
            Some(expected),
            "general's next contact"
        );
    }
    let general = env.chat("general").await;
    assert_eq!(env.offered_to(&general).await.as_deref(), Some("zed"));
}

async fn most_skilled_strategy_prefers_proficiency_over_idle_time(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.routing.strategy = Strategy::MostSkilled;
        c.agents.push(agent("good", &[("billing", 5)], &[En]));
        c.agents.push(agent("best", &[("billing", 9)], &[En]));
    })
    .await;
    env.login("good").await;
    env.login("best").await;
    let id = env.chat("billing").await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("best"));
}

async fn round_robin_strategy_rotates_between_agents(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.routing.strategy = Strategy::RoundRobin;
        c.agents.push(agent("a1", &[("billing", 5)], &[En]));
        c.agents.push(agent("a2", &[("billing", 5)], &[En]));
    })
    .await;
    env.login("a1").await;
    env.login("a2").await;
    let mut offered = Vec::new();
    for _ in 0..4 {
        let id = env.chat("billing").await;
        offered.push(env.offered_to(&id).await.expect("offered"));
    }
    assert_ne!(
        offered[0], offered[1],
        "second offer goes to the other agent: {offered:?}"
    );
    assert_eq!(offered[0], offered[2], "then back: {offered:?}");
    assert_eq!(offered[1], offered[3], "and again: {offered:?}");
}

async fn rejected_contact_keeps_its_place_goes_to_the_next_agent_and_never_back(
    redis: &Arc<TestRedis>,
) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]));
        c.agents.push(agent("a2", &[("billing", 5)], &[En]));
    })
    .await;
    let first = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    let second = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    let third = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    env.login("a1").await;
    assert_eq!(env.offered_to(&first).await.as_deref(), Some("a1"));
    env.reject(&first).await;
    assert_eq!(env.state(&first).await, v1::InteractionState::Queued);
    assert_eq!(
        env.offered_to(&second).await.as_deref(),
        Some("a1"),
        "the rejecter gets the next one"
    );
    assert_eq!(env.get(&first).await.declined_by, vec!["a1".to_string()]);
    env.login("a2").await;
    assert_eq!(
        env.offered_to(&first).await.as_deref(),
        Some("a2"),
        "back at its original position"
    );
    assert_eq!(env.state(&third).await, v1::InteractionState::Queued);
}

async fn warm_transfer_keeps_the_id_and_carries_notes_to_the_next_agent(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents
            .push(agent("front", &[("member_services", 5)], &[En]));
        c.agents.push(agent("biller", &[("billing", 8)], &[En]));
    })
    .await;
    env.login("front").await;
    env.login("biller").await;
    let id = env.chat("general").await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("front"));
    env.accept(&id).await;
    let note = v1::Note {
        agent_id: "front".into(),
        text: "member disputes a copay".into(),
        kind: v1::NoteKind::Transfer as i32,
        created_at_ms: 1,
    };
    env.store
        .transfer(
            env.tenant(),
            &id,
            "front",
            &TransferTarget::Queue("billing".into()),
            Some(&note),
        )
        .await
        .unwrap();
    let ix = env.get(&id).await;
    assert_eq!(ix.id, id);
    assert_eq!(ix.queue_id, "billing");
    assert_eq!(ix.agent_id, "biller", "offered to the billing agent");
    assert_eq!(ix.notes, vec![note]);
    assert_eq!(
        ix.context.unwrap().reason,
        "billing question",
        "context travels"
    );
    assert_eq!(
        env.agent_load("front", v1::Channel::Chat).await,
        0,
        "sender is free again"
    );
}

async fn transfer_to_an_agent_and_to_an_external_destination(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]));
        c.agents.push(agent("a2", &[], &[En]));
    })
    .await;
    env.login("a1").await;
    env.login("a2").await;
    let id = env.chat("billing").await;
    env.accept(&id).await;
    env.store
        .transfer(
            env.tenant(),
            &id,
            "a1",
            &TransferTarget::Agent("a2".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        env.offered_to(&id).await.as_deref(),
        Some("a2"),
        "a2 has no billing skill but was named"
    );
    env.accept(&id).await;
    env.store
        .transfer(
            env.tenant(),
            &id,
            "a2",
            &TransferTarget::External("+1-555-0100".into()),
            None,
        )
        .await
        .unwrap();
    let ix = env.get(&id).await;
    assert_eq!(ix.state, v1::InteractionState::TransferredExternal as i32);
    assert_eq!(ix.external_destination, "+1-555-0100");
}

async fn only_the_assigned_agent_can_resolve_or_transfer(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]))
    })
    .await;
    env.login("a1").await;
    let id = env.chat("billing").await;
    let err = env
        .store
        .resolve(env.tenant(), &id, "a1", "x", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RoutingError::FailedPrecondition(_)),
        "offered, not yet assigned: {err}"
    );
    env.accept(&id).await;
    let err = env
        .store
        .resolve(env.tenant(), &id, "intruder", "x", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, RoutingError::FailedPrecondition(_)), "{err}");
    env.store
        .resolve(
            env.tenant(),
            &id,
            "a1",
            "answered",
            &["appointment_scheduled".into()],
            None,
        )
        .await
        .unwrap();
    let ix = env.get(&id).await;
    assert_eq!(ix.state, v1::InteractionState::Resolved as i32);
    assert_eq!(ix.outcome_tags, vec!["appointment_scheduled".to_string()]);
}

async fn replayed_idempotency_key_returns_the_same_interaction(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |_| {}).await;
    let request = env.new_interaction("billing", Channel::Email, En, Priority::Normal);
    let first = env
        .store
        .create_interaction(env.tenant(), &request)
        .await
        .unwrap();
    let again = env
        .store
        .create_interaction(env.tenant(), &request)
        .await
        .unwrap();
    assert_eq!(first.interaction_id, again.interaction_id);
    assert!(!first.replayed && again.replayed);
    let (all, _) = env
        .store
        .list_interactions(env.tenant(), &Default::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "no duplicate");
    let mut different = request.clone();
    different.member_ref = "someone-else".into();
    let err = env
        .store
        .create_interaction(env.tenant(), &different)
        .await
        .unwrap_err();
    assert!(matches!(err, RoutingError::AlreadyExists(_)), "{err}");
}

async fn another_tenants_interaction_is_not_found(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |_| {}).await;
    let id = env.chat("billing").await;
    let mut other = env.config.clone();
    other.id = "other-plan".into();
    env.store.sync_tenant(&other).await.unwrap();
    let err = env
        .store
        .get_interaction("other-plan", &id)
        .await
        .unwrap_err();
    assert!(matches!(err, RoutingError::NotFound(_)), "{err}");
    let err = env.store.abandon("other-plan", &id).await.unwrap_err();
    assert!(matches!(err, RoutingError::NotFound(_)), "{err}");
    assert_eq!(
        env.state(&id).await,
        v1::InteractionState::Queued,
        "untouched"
    );
}

async fn abandoning_an_offered_contact_frees_the_agent(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]))
    })
    .await;
    env.login("a1").await;
    let id = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("a1"));
    env.store.abandon(env.tenant(), &id).await.unwrap();
    assert_eq!(env.state(&id).await, v1::InteractionState::Abandoned);
    assert_eq!(env.agent_load("a1", v1::Channel::Voice).await, 0);
    let next = env
        .create("billing", Channel::Voice, En, Priority::Normal)
        .await
        .interaction_id;
    assert_eq!(env.offered_to(&next).await.as_deref(), Some("a1"));
}

async fn queue_stats_count_waiting_by_priority_and_agents(redis: &Arc<TestRedis>) {
    let env = Env::on(redis, |c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]))
    })
    .await;
    env.create("billing", Channel::Voice, En, Priority::Urgent)
        .await;
    env.create("billing", Channel::Voice, En, Priority::Normal)
        .await;
    env.create("billing", Channel::Email, Es, Priority::Normal)
        .await;
    env.login_as("a1", careline_routing::AgentStatus::Away)
        .await;
    let stats = env
        .store
        .queue_stats(&env.config, Some("billing"))
        .await
        .unwrap();
    let billing = &stats.queues[0];
    assert_eq!(billing.waiting, 3);
    assert_eq!(billing.urgent_waiting, 1);
    let normal = billing
        .depth_by_priority
        .iter()
        .find(|d| d.priority == v1::Priority::Normal as i32)
        .unwrap();
    assert_eq!(normal.waiting, 2);
    assert_eq!(billing.agents_away, 1);
    assert!(billing.oldest_wait_ms >= 0);
}
