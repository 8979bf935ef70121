//! The agent session stream: login, offers, answers, disconnects, expiry.

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use careline_testkit::assert_eventually;
use tonic::Code;

use crate::harness::{
    Desk, HEARTBEAT_TTL_SECS, OTHER_TENANT, Presence, TENANT, context, demo, login_request,
};

async fn refused(presence: &Presence, first: v1::AgentSessionRequest) -> tonic::Status {
    let mut desk = match Desk::open(presence, first).await {
        Ok(desk) => desk,
        Err(status) => return status,
    };
    desk.next().await.expect_err("the session must be refused")
}

#[tokio::test]
async fn wrong_agent_credentials_are_unauthenticated_without_saying_which_part() {
    let presence = Presence::start().await.unwrap();
    for (tenant, agent, key) in [
        (TENANT, "ana", "demo-agent-luis"),
        (TENANT, "nobody", "demo-agent-ana"),
        ("no-such-tenant", "ana", "demo-agent-ana"),
        ("other-health", "ana", "demo-agent-ana"),
    ] {
        let status = refused(
            &presence,
            login_request(tenant, agent, key, v1::AgentState::Available),
        )
        .await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{tenant}/{agent}: {status:?}"
        );
        assert_eq!(
            status.message(),
            format!("invalid agent credentials for tenant {tenant}")
        );
    }
    let agent = presence.agent("ana").await.unwrap();
    assert_eq!(
        agent.state,
        v1::AgentState::Offline as i32,
        "a refused login leaves the agent offline"
    );
}

#[tokio::test]
async fn guessing_an_agents_key_is_slowed_to_a_trickle_and_other_agents_log_in_meanwhile() {
    let presence = Presence::start().await.unwrap();
    let mut limited = None;
    for _ in 0..40 {
        let status = refused(
            &presence,
            login_request(TENANT, "ana", "a-wrong-guess", v1::AgentState::Available),
        )
        .await;
        if status.code() == Code::ResourceExhausted {
            limited = Some(status);
            break;
        }
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let limited = limited.expect("forty quick guesses meet the login limit");
    assert!(
        limited
            .message()
            .contains("too many login attempts for agent ana"),
        "{}",
        limited.message()
    );
    // The right key is refused too while ana's attempts are spent...
    let status = refused(
        &presence,
        login_request(TENANT, "ana", "demo-agent-ana", v1::AgentState::Available),
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // ...and luis is not held up by it.
    let mut luis = Desk::open(
        &presence,
        login_request(TENANT, "luis", "demo-agent-luis", v1::AgentState::Available),
    )
    .await
    .expect("luis logs in");
    assert!(matches!(luis.next().await, Ok(Kind::Started(_))));
}

#[tokio::test]
async fn a_replica_holding_its_maximum_of_sessions_refuses_one_more_until_one_ends() {
    let presence = Presence::start_with_flags(demo(), &["--max-sessions", "2"])
        .await
        .unwrap();
    let (ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let (_luis, _) = Desk::login(&presence, "luis", v1::AgentState::Available).await;
    let status = refused(
        &presence,
        login_request(
            TENANT,
            "kim",
            &careline_testkit::demo::agent_key("kim"),
            v1::AgentState::Available,
        ),
    )
    .await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("maximum of 2 agent sessions (CARELINE_PRESENCE_MAX_SESSIONS)"),
        "{}",
        status.message()
    );
    drop(ana);
    assert_eventually!(
        match Desk::open(
            &presence,
            login_request(
                TENANT,
                "kim",
                &careline_testkit::demo::agent_key("kim"),
                v1::AgentState::Available,
            ),
        )
        .await
        {
            Ok(mut desk) => desk.next().await.is_ok(),
            Err(_) => false,
        },
        "a freed slot takes a new session"
    );
}

#[tokio::test]
async fn first_message_must_be_login() {
    let presence = Presence::start().await.unwrap();
    let status = refused(&presence, crate::harness::heartbeat()).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("must be `login`"),
        "{}",
        status.message()
    );

    let mut twice = login_request(TENANT, "ana", "demo-agent-ana", v1::AgentState::Available);
    if let Some(RequestKind::Login(login)) = twice.kind.as_mut() {
        login.tenants.push(login.tenants[0].clone());
    }
    let status = refused(&presence, twice).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("more than once"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn offer_arrives_with_context_and_accepting_assigns_it() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, started) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    assert_eq!(started.heartbeat_ttl_secs, HEARTBEAT_TTL_SECS);
    assert_eq!(started.agents.len(), 1);
    assert_eq!(started.agents[0].state, v1::AgentState::Available as i32);
    assert!(
        !started.agents[0].skills.is_empty(),
        "skills come from the tenant config"
    );

    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    let received_ms = chrono_now_ms();
    assert_eq!(offer.tenant_id, TENANT);
    assert!(
        offer.deadline_ms > received_ms,
        "offer arrived after its deadline"
    );
    let interaction = offer.interaction.expect("offer carries the interaction");
    assert_eq!(interaction.id, id);
    assert_eq!(
        interaction.context,
        Some(context()),
        "full context, member profile included"
    );

    ana.accept(&offer.offer_id).await;
    match ana.next_work().await {
        Kind::Assigned(assigned) => assert_eq!(assigned.interaction.unwrap().id, id),
        other => panic!("expected the Assignment, got {other:?}"),
    }
    assert_eq!(
        presence.interaction_state(&id).await,
        v1::InteractionState::Assigned
    );

    ana.accept(&offer.offer_id).await;
    match ana.next_work().await {
        Kind::Error(notice) => assert_ne!(notice.code, Code::Ok as i32, "{notice:?}"),
        other => panic!("accepting twice must be an ErrorNotice, got {other:?}"),
    }
    ana.send(RequestKind::Accept(v1::OfferAnswer {
        tenant_id: "other-health".into(),
        offer_id: offer.offer_id.clone(),
    }))
    .await;
    match ana.next_work().await {
        Kind::Error(notice) => {
            assert_eq!(notice.code, Code::InvalidArgument as i32);
            assert!(
                notice.message.contains("not a tenant of this session"),
                "{}",
                notice.message
            );
        }
        other => panic!("expected an ErrorNotice, got {other:?}"),
    }
}

#[tokio::test]
async fn rejected_offer_goes_to_another_agent() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    let (mut luis, _) = Desk::login(&presence, "luis", v1::AgentState::Available).await;

    ana.reject(&offer.offer_id).await;
    let second = luis.next_offer().await;
    assert_eq!(second.interaction.unwrap().id, id);
    assert_ne!(second.offer_id, offer.offer_id);
}

#[tokio::test]
async fn dropping_the_stream_requeues_a_pending_offer_at_once() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    assert!(
        offer.deadline_ms - chrono_now_ms() > 30_000,
        "the email offer timeout is long"
    );
    drop(ana);
    assert_eventually!(
        within: std::time::Duration::from_secs(5),
        presence.interaction_state(&id).await == v1::InteractionState::Queued,
        "interaction back in its queue long before the offer deadline"
    );
    assert_eventually!(
        presence.agent("ana").await.unwrap().state == v1::AgentState::Offline as i32,
        "ana offline"
    );
}

#[tokio::test]
async fn missed_heartbeats_end_the_session_with_an_error() {
    let presence = Presence::start().await.unwrap();
    let mut ana = Desk::login_quiet(&presence, "ana", v1::AgentState::Available).await;
    ana.started().await;
    let status = loop {
        match ana.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let agent = presence.agent("ana").await.unwrap();
    assert_eq!(agent.state, v1::AgentState::Offline as i32);
    assert!(!agent.logged_in);
}

#[tokio::test]
async fn reconnecting_resends_the_assigned_interaction() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, first) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    ana.accept(&offer.offer_id).await;
    assert!(matches!(ana.next_work().await, Kind::Assigned(_)));
    drop(ana);
    assert_eventually!(
        presence.agent("ana").await.unwrap().state == v1::AgentState::Offline as i32,
        "ana offline after the disconnect"
    );

    let (mut ana, second) = Desk::login(&presence, "ana", v1::AgentState::Away).await;
    assert_ne!(second.session_id, first.session_id);
    match ana.next_work().await {
        Kind::Assigned(assigned) => assert_eq!(assigned.interaction.unwrap().id, id),
        other => panic!("expected the held Assignment again, got {other:?}"),
    }
    assert_eq!(
        presence.interaction_state(&id).await,
        v1::InteractionState::Assigned
    );
}

#[tokio::test]
async fn a_newer_login_replaces_the_old_session() {
    let presence = Presence::start().await.unwrap();
    let mut old = Desk::login_quiet(&presence, "ana", v1::AgentState::Away).await;
    old.started().await;
    let (_new, _) = Desk::login(&presence, "ana", v1::AgentState::Away).await;
    old.tx.send(crate::harness::heartbeat()).await.unwrap();
    let status = loop {
        match old.next().await {
            Ok(Kind::Error(notice)) => assert_eq!(notice.code, Code::FailedPrecondition as i32),
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        presence.agent("ana").await.unwrap().state,
        v1::AgentState::Away as i32,
        "the new session lives on"
    );
}

#[tokio::test]
async fn set_state_changes_availability_and_offline_ends_the_session() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Away).await;
    ana.send(RequestKind::SetState(v1::SetState {
        tenant_id: String::new(),
        state: v1::AgentState::Available as i32,
        away_reason: String::new(),
    }))
    .await;
    match ana.next().await {
        Ok(Kind::StateChanged(changed)) => {
            assert_eq!(changed.state, v1::AgentState::Available as i32)
        }
        other => panic!("expected StateChanged, got {other:?}"),
    }
    ana.send(RequestKind::SetState(v1::SetState {
        tenant_id: TENANT.into(),
        state: 0,
        away_reason: String::new(),
    }))
    .await;
    match ana.next().await {
        Ok(Kind::Error(notice)) => assert_eq!(notice.code, Code::InvalidArgument as i32),
        other => panic!("expected an ErrorNotice, got {other:?}"),
    }
    ana.send(RequestKind::SetState(v1::SetState {
        tenant_id: TENANT.into(),
        state: v1::AgentState::Offline as i32,
        away_reason: String::new(),
    }))
    .await;
    let end = loop {
        match ana.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(
        end.code(),
        Code::Ok,
        "going offline ends the stream quietly: {end:?}"
    );
    assert_eq!(
        presence.agent("ana").await.unwrap().state,
        v1::AgentState::Offline as i32
    );
}

#[tokio::test]
async fn an_offer_that_times_out_is_revoked_and_the_agent_marked_missed() {
    let mut config = demo();
    config.routing.offer_timeout_secs.email = 1;
    let presence = Presence::start_with(config).await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    let (mut revoked, mut missed) = (None, None);
    while revoked.is_none() || missed.is_none() {
        match ana.next().await {
            Ok(Kind::Revoked(revocation)) => revoked = Some(revocation),
            Ok(Kind::StateChanged(changed)) if changed.state == v1::AgentState::Away as i32 => {
                missed = Some(changed)
            }
            Ok(_) => {}
            Err(status) => panic!("session ended: {status:?}"),
        }
    }
    let revoked = revoked.unwrap();
    assert_eq!(
        (revoked.offer_id.as_str(), revoked.interaction_id.as_str()),
        (offer.offer_id.as_str(), id.as_str())
    );
    assert_eq!(revoked.reason, "timed_out");
    assert_eq!(missed.unwrap().reason, "missed");
}

#[tokio::test]
async fn server_shutdown_ends_sessions_with_unavailable_and_takes_agents_offline() {
    let mut presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    presence.shutdown.trigger();
    let status = loop {
        match ana.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    presence.server.take().unwrap().await.unwrap().unwrap();
    let agent = presence
        .store
        .get_agent(TENANT, "ana")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        agent.state,
        v1::AgentState::Offline as i32,
        "offline before serve returned"
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn an_offer_whose_event_was_missed_arrives_with_the_next_heartbeat() {
    let mut presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    // No bus: the offer's event cannot reach this replica.
    presence._sandbox.nats.kill();
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    assert_eq!(
        offer.interaction.expect("context").id,
        id,
        "re-sent from what the heartbeat reports"
    );
    ana.accept(&offer.offer_id).await;
    assert_eventually!(
        presence.interaction_state(&id).await == v1::InteractionState::Assigned,
        "accepted without the bus"
    );
}

/// The `careline_agent_sessions` gauge of `tenant` (0 when never set).
fn sessions_gauge(tenant: &str) -> f64 {
    let text = careline_kit::metrics::render().expect("the metrics recorder is installed");
    let prefix = format!("careline_agent_sessions{{tenant=\"{tenant}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |value| value.trim().parse().expect("a gauge value"))
}

/// One login to both tenants: ana in the demo tenant, then zoe in the other.
fn ana_and_zoe_login() -> v1::AgentSessionRequest {
    let mut request = login_request(
        TENANT,
        "ana",
        &careline_testkit::demo::agent_key("ana"),
        v1::AgentState::Available,
    );
    if let Some(RequestKind::Login(login)) = request.kind.as_mut() {
        login.tenants.push(v1::TenantLogin {
            tenant_id: OTHER_TENANT.into(),
            agent_id: "zoe".into(),
            agent_key: "other-agent-zoe".into(),
        });
    }
    request
}

#[tokio::test]
async fn a_login_failing_in_its_second_tenant_leaves_the_first_and_unregisters_both() {
    careline_kit::metrics::prometheus_handle().expect("installing the metrics recorder");
    let presence = Presence::start().await.unwrap();
    // zoe's key is right, but her routing record in the second tenant is not a hash,
    // so that tenant's login script fails after the first tenant's succeeded.
    let mut redis = presence._sandbox.redis().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("cl:{{{OTHER_TENANT}}}:agent:zoe"))
        .arg("not-a-hash")
        .query_async(&mut redis)
        .await
        .unwrap();
    let login = ana_and_zoe_login();

    let status = refused(&presence, login).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eventually!(
        presence
            .agent("ana")
            .await
            .is_ok_and(|ana| !ana.logged_in && ana.state == v1::AgentState::Offline as i32),
        "ana logged out of the tenant she had joined"
    );
    assert_eventually!(
        sessions_gauge(TENANT) == 0.0 && sessions_gauge(OTHER_TENANT) == 0.0,
        "no session stays registered: {TENANT} {}, {OTHER_TENANT} {}",
        sessions_gauge(TENANT),
        sessions_gauge(OTHER_TENANT)
    );
    // With the record repaired, the same two-tenant login works and is counted once each.
    let _: () = redis::cmd("DEL")
        .arg(format!("cl:{{{OTHER_TENANT}}}:agent:zoe"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let again = ana_and_zoe_login();
    let mut desk = Desk::open(&presence, again).await.unwrap();
    assert_eq!(desk.started().await.agents.len(), 2);
    assert_eq!(
        (sessions_gauge(TENANT), sessions_gauge(OTHER_TENANT)),
        (1.0, 1.0)
    );
}

#[tokio::test]
async fn a_follow_up_returning_to_its_agent_is_assigned_on_the_desk_again() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let id = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    ana.accept(&offer.offer_id).await;
    assert!(matches!(ana.next_work().await, Kind::Assigned(_)));
    presence
        .store
        .set_pending(TENANT, &id, "ana", chrono_now_ms() + 300, false, None)
        .await
        .unwrap();
    // Same session, same interaction: a new offer, then a new assignment.
    let back = loop {
        match ana.next_work().await {
            Kind::Offer(offer) => break offer,
            Kind::Revoked(_) => continue,
            other => panic!("expected the follow-up's offer, got {other:?}"),
        }
    };
    assert_eq!(back.interaction.unwrap().id, id);
    ana.accept(&back.offer_id).await;
    match ana.next_work().await {
        Kind::Assigned(assigned) => assert_eq!(assigned.interaction.unwrap().id, id),
        other => panic!("expected the second Assignment, got {other:?}"),
    }
}
