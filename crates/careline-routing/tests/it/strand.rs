//! Contacts never strand: a contact waiting for one agent falls back to its
//! queue, a free agent never idles while work it may take waits, a new
//! contact never overtakes older ones, and a damaged record or half-written
//! settings never break a tenant.

use std::collections::HashSet;
use std::time::Duration;

use careline_domain::Language::En;
use careline_domain::tenant::PerChannelOverride;
use careline_domain::{Channel, Priority};
use careline_proto::v1;
use careline_routing::{AgentStatus, ListFilter, RoutingError, TransferTarget};

use crate::env::{Env, agent};

const WITHIN: Duration = Duration::from_secs(10);

/// The demo tenant with `agents` billing agents (voice capacity 1), a
/// one-second personal fallback and `wrap_up_secs` of wrap-up.
async fn billing_floor(agents: &[&str], wrap_up_secs: u32) -> Env {
    Env::new(|c| {
        for id in agents {
            let mut a = agent(id, &[("billing", 5)], &[En]);
            a.capacity = PerChannelOverride {
                voice: Some(1),
                ..Default::default()
            };
            c.agents.push(a);
        }
        c.routing.personal_fallback_secs = 1;
        c.routing.wrap_up_secs = wrap_up_secs;
    })
    .await
}

async fn voice(env: &Env, priority: Priority) -> String {
    env.create("billing", Channel::Voice, En, priority)
        .await
        .interaction_id
}

async fn transfer_to(env: &Env, id: &str, from: &str, to: &str) {
    env.store
        .transfer(
            env.tenant(),
            id,
            from,
            &TransferTarget::Agent(to.into()),
            None,
        )
        .await
        .expect("transferred");
}

async fn billing_waiting(env: &Env) -> u32 {
    let stats = env
        .store
        .queue_stats(&env.config, Some("billing"))
        .await
        .expect("stats");
    stats.queues[0].waiting
}

#[tokio::test]
async fn a_transfer_to_an_agent_who_does_not_answer_returns_to_its_queue_at_its_original_position()
{
    // a1 stays in wrap-up after handing the call over.
    let env = billing_floor(&["a1", "a2", "kim"], 60).await;
    env.login("a1").await;
    let session_a2 = env.login_as("a2", AgentStatus::Away).await;
    let first = voice(&env, Priority::Normal).await;
    env.accept(&first).await;
    env.next_millisecond().await;
    let second = voice(&env, Priority::Normal).await;
    assert_eq!(env.state(&second).await, v1::InteractionState::Queued);

    // kim never logged in: the contact waits for her, counted in billing.
    transfer_to(&env, &first, "a1", "kim").await;
    assert_eq!(env.state(&first).await, v1::InteractionState::Queued);
    assert_eq!(
        billing_waiting(&env).await,
        2,
        "a contact waiting for one agent counts in its queue"
    );

    env.tick_until(WITHIN, "the transfer falls back to billing", || async {
        env.in_queue("billing", "voice", &first).await
    })
    .await;
    assert_eq!(billing_waiting(&env).await, 2);
    env.store
        .agent_set_state(env.tenant(), "a2", &session_a2, AgentStatus::Available, "")
        .await
        .expect("a2 available");
    assert_eq!(
        env.offered_to(&first).await.as_deref(),
        Some("a2"),
        "back at its original position, ahead of the later contact"
    );
    assert_eq!(env.state(&second).await, v1::InteractionState::Queued);
}

#[tokio::test]
async fn a_transfer_to_an_away_agent_is_offered_when_it_comes_back_within_the_fallback() {
    let env = Env::new(|c| {
        c.agents.push(agent("a1", &[("billing", 5)], &[En]));
        c.agents.push(agent("kim", &[], &[En]));
    })
    .await;
    env.login("a1").await;
    let session = env.login_as("kim", AgentStatus::Away).await;
    let id = env.chat("billing").await;
    env.accept(&id).await;
    transfer_to(&env, &id, "a1", "kim").await;
    assert_eq!(env.state(&id).await, v1::InteractionState::Queued);
    env.store
        .agent_set_state(env.tenant(), "kim", &session, AgentStatus::Available, "")
        .await
        .expect("kim available");
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("kim"));
}

#[tokio::test]
async fn a_follow_up_for_an_agent_who_is_gone_falls_back_to_its_queue() {
    let env = billing_floor(&["a1", "a2"], 0).await;
    let session = env.login("a1").await;
    let id = voice(&env, Priority::Normal).await;
    env.accept(&id).await;
    let until = env.get(&id).await.updated_at_ms + 200;
    env.store
        .set_pending(env.tenant(), &id, "a1", until, false, None)
        .await
        .expect("pending");
    env.store
        .agent_set_state(env.tenant(), "a1", &session, AgentStatus::Offline, "")
        .await
        .expect("a1 leaves");
    env.login("a2").await;
    env.tick_until(WITHIN, "the follow-up reaches another agent", || async {
        env.offered_to(&id).await.as_deref() == Some("a2")
    })
    .await;
}

#[tokio::test]
async fn two_hundred_wrap_ups_ending_in_one_tick_serve_the_queue_in_order() {
    const AGENTS: usize = 200;
    const WAITING: usize = 250;
    let names: Vec<String> = (0..AGENTS).map(|i| format!("a{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let env = billing_floor(&refs, 1).await;
    for name in &names {
        env.login(name).await;
    }
    // Every agent takes a call and ends it: 200 wrap-ups end together.
    for _ in 0..AGENTS {
        let id = voice(&env, Priority::Normal).await;
        let ix = env.get(&id).await;
        env.accept(&id).await;
        env.store
            .resolve(env.tenant(), &id, &ix.agent_id, "done", &[], None)
            .await
            .expect("resolved");
    }
    let mut waiting = Vec::new();
    for _ in 0..WAITING {
        let id = voice(&env, Priority::Normal).await;
        assert_eq!(env.state(&id).await, v1::InteractionState::Queued);
        waiting.push(id);
    }
    careline_testkit::assert_eventually!(env.due_timers().await == AGENTS, "every wrap-up is due");

    // One tick: the offer cap stops it well before 200 offers.
    let run = env.store.run_timers(env.tenant()).await.expect("timers");
    assert_eq!(run.ran, AGENTS, "the 200 wrap-ups ran in one batch");
    let urgent = voice(&env, Priority::Urgent).await;
    let late = voice(&env, Priority::Normal).await;
    assert!(
        env.offered_to(&urgent).await.is_some(),
        "an urgent contact goes first"
    );
    assert_eq!(
        env.state(&late).await,
        v1::InteractionState::Queued,
        "a new contact never overtakes the ones waiting before it"
    );

    env.tick_until(WITHIN, "every freed agent has an offer", || async {
        env.due_timers().await == 0
    })
    .await;
    let mut offered_agents = HashSet::new();
    for (position, id) in waiting.iter().enumerate() {
        let offered = env.offered_to(id).await;
        if position < AGENTS - 1 {
            let agent = offered.unwrap_or_else(|| panic!("contact {position} is still waiting"));
            assert!(offered_agents.insert(agent), "one offer per agent");
        } else {
            assert_eq!(offered, None, "contact {position} waits its turn");
        }
    }
    assert_eq!(env.state(&late).await, v1::InteractionState::Queued);
}

#[tokio::test]
async fn a_free_agent_takes_work_behind_many_contacts_it_declined() {
    const DECLINED: usize = 40;
    let env = billing_floor(&["a1", "a2"], 0).await;
    let mut ids = Vec::new();
    for _ in 0..DECLINED {
        ids.push(voice(&env, Priority::Normal).await);
        env.next_millisecond().await;
    }
    env.login("a1").await;
    for (position, id) in ids.iter().enumerate() {
        assert_eq!(
            env.offered_to(id).await.as_deref(),
            Some("a1"),
            "contact {position} is offered to a1 after it declined the ones before"
        );
        env.reject(id).await;
    }
    let fresh = voice(&env, Priority::Normal).await;
    assert_eq!(
        env.offered_to(&fresh).await.as_deref(),
        Some("a1"),
        "a1 declined everything else, so it takes the new contact"
    );
    env.login("a2").await;
    assert_eq!(
        env.offered_to(&ids[0]).await.as_deref(),
        Some("a2"),
        "the oldest declined contact goes to the next agent"
    );
}

#[tokio::test]
async fn incomplete_settings_refuse_a_create_before_anything_is_written() {
    let env = billing_floor(&["a1"], 0).await;
    env.redis_del_setting("offer_timeout:chat").await;
    let new = env.new_interaction("billing", Channel::Chat, En, Priority::Normal);
    let refused = env.store.create_interaction(env.tenant(), &new).await;
    assert!(
        matches!(&refused, Err(RoutingError::SettingsNotLoaded(m)) if m.contains("offer_timeout:chat")),
        "{refused:?}"
    );
    let (listed, _) = env
        .store
        .list_interactions(env.tenant(), &ListFilter::default())
        .await
        .expect("listing works");
    assert!(listed.is_empty(), "nothing half-created: {listed:?}");
    env.store.sync_tenant(&env.config).await.expect("re-synced");
    let created = env.store.create_interaction(env.tenant(), &new).await;
    assert!(
        created.is_ok_and(|c| !c.replayed),
        "the idempotency key was not spent by the refused attempt"
    );
}

#[tokio::test]
async fn a_corrupt_record_is_skipped_by_listing_and_the_rest_are_listed() {
    let env = billing_floor(&["a1"], 0).await;
    let before = env.chat("billing").await;
    let corrupt = env.plant_corrupt_interaction().await;
    env.next_millisecond().await;
    let after = env.chat("billing").await;
    let (listed, _) = env
        .store
        .list_interactions(env.tenant(), &ListFilter::default())
        .await
        .expect("one damaged record does not fail the listing");
    let ids: Vec<&str> = listed.iter().map(|ix| ix.id.as_str()).collect();
    assert_eq!(ids, [before.as_str(), after.as_str()], "{corrupt} skipped");
}

#[tokio::test]
async fn listing_pages_through_more_interactions_than_a_page_created_in_one_millisecond() {
    const CREATED: usize = 1_200;
    const PAGE: usize = 500;
    let env = billing_floor(&[], 0).await;
    let mut created = HashSet::new();
    for _ in 0..CREATED {
        created.insert(env.chat("billing").await);
    }
    // Replicas creating together can stamp more than a page with one
    // millisecond: give every entry of the index the same one.
    let live = format!("{}live", careline_routing::keys::prefix(env.tenant()));
    let mut conn = env.redis_conn().await;
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(&live)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut same_ms = redis::pipe();
    for id in &ids {
        same_ms.zadd(&live, id, 1_700_000_000_000_i64).ignore();
    }
    let _: () = same_ms.query_async(&mut conn).await.unwrap();

    let mut listed = Vec::new();
    let mut filter = ListFilter {
        page_size: PAGE,
        ..ListFilter::default()
    };
    loop {
        let (page, next) = env
            .store
            .list_interactions(env.tenant(), &filter)
            .await
            .expect("a page");
        listed.extend(page.into_iter().map(|ix| ix.id));
        if next.is_empty() {
            break;
        }
        filter.page_token = next;
    }
    assert_eq!(listed.len(), CREATED, "every interaction listed once");
    assert_eq!(listed.iter().cloned().collect::<HashSet<_>>(), created);
}

/// Ended interactions of `env`'s tenant, oldest ended first, within `from..=to`.
async fn ended(env: &Env, from_ms: Option<i64>, to_ms: Option<i64>) -> Vec<String> {
    let filter = ListFilter {
        state: Some(v1::InteractionState::Abandoned),
        from_ms,
        to_ms,
        ..ListFilter::default()
    };
    let (page, _) = env
        .store
        .list_interactions(env.tenant(), &filter)
        .await
        .expect("listed");
    page.into_iter().map(|ix| ix.id).collect()
}

#[tokio::test]
async fn ended_interactions_list_by_when_they_ended_and_trimming_removes_the_older_ones() {
    const RETENTION_DAYS: i64 = 2;
    let env = Env::new(|t| t.routing.history_retention_days = RETENTION_DAYS as u32).await;
    let first = env.chat("general").await;
    let second = env.chat("general").await;
    env.store.abandon(env.tenant(), &first).await.unwrap();
    let first_ended = env.get(&first).await.updated_at_ms;
    env.next_millisecond().await;
    env.store.abandon(env.tenant(), &second).await.unwrap();
    let second_ended = env.get(&second).await.updated_at_ms;

    assert_eq!(
        ended(&env, None, None).await,
        [first.clone(), second.clone()]
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!(
            "{}ix:{second}",
            careline_routing::keys::prefix(env.tenant())
        ))
        .query_async(&mut env.redis_conn().await)
        .await
        .unwrap();
    assert!(
        (RETENTION_DAYS * 86_400 - 60..=RETENTION_DAYS * 86_400).contains(&ttl),
        "an ended interaction expires after the tenant's retention: TTL {ttl}"
    );
    assert_eq!(ended(&env, None, Some(first_ended)).await, [first.as_str()]);
    assert_eq!(
        ended(&env, Some(second_ended), None).await,
        [second.as_str()]
    );
    assert!(
        ended(&env, Some(first_ended + 1), Some(second_ended - 1))
            .await
            .is_empty()
    );

    let removed = env
        .store
        .trim_history(env.tenant(), second_ended)
        .await
        .unwrap();
    assert_eq!(
        removed, 1,
        "only the interaction that ended before the cutoff"
    );
    assert!(matches!(
        env.store.get_interaction(env.tenant(), &first).await,
        Err(RoutingError::NotFound(_))
    ));
    assert_eq!(ended(&env, None, None).await, [second.as_str()]);
    assert_eq!(
        env.store
            .trim_history(env.tenant(), second_ended)
            .await
            .unwrap(),
        0,
        "trimming again removes nothing"
    );
}

#[tokio::test]
async fn a_page_stays_under_the_size_a_client_accepts_and_the_next_pages_hold_the_rest() {
    const CONTACTS: usize = 200;
    const REASON_BYTES: usize = 30_000;
    let env = Env::new(|_| {}).await;
    for n in 0..CONTACTS {
        let mut contact = env.new_interaction("general", Channel::Chat, En, Priority::Normal);
        contact.context.reason = "x".repeat(REASON_BYTES);
        contact.idempotency_key = format!("big-{n}");
        env.store
            .create_interaction(env.tenant(), &contact)
            .await
            .expect("created");
    }
    let mut filter = ListFilter {
        page_size: careline_routing::list::MAX_PAGE_SIZE,
        ..ListFilter::default()
    };
    let (mut listed, mut pages) = (HashSet::new(), 0);
    loop {
        let (page, next) = env
            .store
            .list_interactions(env.tenant(), &filter)
            .await
            .expect("listed");
        let bytes: usize = page.iter().map(prost::Message::encoded_len).sum();
        assert!(
            bytes <= careline_routing::list::MAX_PAGE_BYTES,
            "page {pages} holds {bytes} bytes"
        );
        pages += 1;
        listed.extend(page.into_iter().map(|ix| ix.id));
        if next.is_empty() {
            break;
        }
        filter.page_token = next;
    }
    assert_eq!(listed.len(), CONTACTS, "every contact listed once");
    assert!(
        pages > 1,
        "{CONTACTS} contacts of {REASON_BYTES} bytes take more than a page"
    );
}
