//! The Router API as a tenant integration uses it, including bad input.

use careline_proto::v1;
use futures::StreamExt;
use tonic::Code;

use crate::harness::{DEMO_KEY, OTHER_KEY, Platform, create};

#[tokio::test]
async fn bad_input_gets_a_clear_status_and_changes_nothing() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;

    let unknown_queue = client
        .create_interaction(create("nope", v1::Channel::Chat, "k1"))
        .await
        .unwrap_err();
    assert_eq!(unknown_queue.code(), Code::InvalidArgument);
    assert!(
        unknown_queue
            .message()
            .contains("known queues: general, billing, clinical"),
        "{}",
        unknown_queue.message()
    );

    let mut no_member = create("general", v1::Channel::Chat, "k2");
    no_member.member_ref.clear();
    let status = client.create_interaction(no_member).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("member_ref is required"),
        "{}",
        status.message()
    );

    let mut no_channel = create("general", v1::Channel::Chat, "k3");
    no_channel.channel = 0;
    assert_eq!(
        client
            .create_interaction(no_channel)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let mut huge = create("general", v1::Channel::Chat, "k4");
    let context = huge.context.as_mut().unwrap();
    for i in 0..40 {
        context.attributes.insert(format!("attr{i}"), "x".into());
    }
    let status = client.create_interaction(huge).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("limit is 32"),
        "{}",
        status.message()
    );

    let mut oversized = create("general", v1::Channel::Chat, "k5");
    oversized.context.as_mut().unwrap().summary = "y".repeat(200_000);
    let status = client.create_interaction(oversized).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("the limit is: 65536 bytes"),
        "the message names the limit: {}",
        status.message()
    );

    // Invalid UTF-8 where a string belongs: a client error naming the field,
    // not INTERNAL (which reads as a server fault).
    let status = create_raw(&platform, b"\xff\xfe member").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("member_ref"),
        "{}",
        status.message()
    );

    let status = client
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: "../../etc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let listed = client
        .list_interactions(v1::ListInteractionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.interactions.is_empty(),
        "nothing was created by bad requests"
    );
    platform.stop().await;
}

#[tokio::test]
async fn credentials_decide_the_tenant() {
    let platform = Platform::start().await;
    let mut anonymous = platform
        .client_with(careline_testkit::Bearer::anonymous())
        .await;
    let status = anonymous
        .list_interactions(v1::ListInteractionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = platform.client("not-a-key").await;
    let status = wrong
        .list_interactions(v1::ListInteractionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut demo = platform.client(DEMO_KEY).await;
    let mut other = platform.client(OTHER_KEY).await;
    let created = demo
        .create_interaction(create("general", v1::Channel::Chat, "mine"))
        .await
        .unwrap()
        .into_inner();
    let id = created.interaction.unwrap().id;
    for status in [
        other
            .get_interaction(v1::GetInteractionRequest {
                interaction_id: id.clone(),
            })
            .await
            .unwrap_err(),
        other
            .abandon(v1::AbandonRequest {
                interaction_id: id.clone(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            status.code(),
            Code::NotFound,
            "never reveals another tenant's interaction"
        );
    }
    let listed = other
        .list_interactions(v1::ListInteractionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.interactions.is_empty());
    let mine = demo
        .get_interaction(v1::GetInteractionRequest { interaction_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.state,
        v1::InteractionState::Queued as i32,
        "untouched by the other tenant"
    );
    platform.stop().await;
}

#[tokio::test]
async fn a_key_may_make_only_the_calls_its_scopes_allow() {
    let platform = Platform::start().await;
    let mut ivr = platform.client(careline_testkit::demo::IVR_KEY).await;
    let created = ivr
        .create_interaction(create("general", v1::Channel::Voice, "ivr-call"))
        .await
        .expect("intake creates")
        .into_inner();
    let id = created.interaction.unwrap().id;
    let mut watch = ivr
        .watch_interaction(v1::WatchInteractionRequest {
            interaction_id: id.clone(),
        })
        .await
        .expect("intake watches its contact")
        .into_inner();
    assert!(watch.message().await.unwrap().is_some(), "first status");

    let denied = [
        (
            "supervisor",
            ivr.list_interactions(v1::ListInteractionsRequest::default())
                .await
                .unwrap_err(),
        ),
        (
            "supervisor",
            ivr.get_queue_stats(v1::GetQueueStatsRequest::default())
                .await
                .unwrap_err(),
        ),
        (
            "agent_actions",
            ivr.accept_offer(v1::AcceptOfferRequest {
                offer_id: "an-offer".into(),
                agent_id: "ana".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "agent_actions",
            ivr.resolve(v1::ResolveRequest {
                interaction_id: id.clone(),
                agent_id: "ana".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        ),
    ];
    for (scope, status) in denied {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("API key \"demo-ivr\" may not make this call")
                && status.message().contains(&format!("`{scope}`")),
            "names the key and the missing scope: {}",
            status.message()
        );
    }
    let mut admin = platform.client(DEMO_KEY).await;
    let after = admin
        .get_interaction(v1::GetInteractionRequest { interaction_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.state,
        v1::InteractionState::Queued as i32,
        "a refused call changes nothing"
    );
    platform.stop().await;
}

#[tokio::test]
async fn replayed_create_returns_the_same_interaction() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    // Several attributes: the replay must be recognised whatever order a map holds them in.
    let request = || {
        let mut request = create("billing", v1::Channel::Email, "same-key");
        let context = request.context.as_mut().unwrap();
        for (key, value) in [
            ("ivr_choice", "2"),
            ("plan", "gold"),
            ("crm_case", "c-91"),
            ("hint", "portal"),
        ] {
            context.attributes.insert(key.into(), value.into());
        }
        request
    };
    let first = client
        .create_interaction(request())
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_interaction(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.interaction.unwrap().id, again.interaction.unwrap().id);
    assert!(again.replayed);
    let mut changed = create("billing", v1::Channel::Email, "same-key");
    changed.member_ref = "someone-else".into();
    assert_eq!(
        client.create_interaction(changed).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    platform.stop().await;
}

#[tokio::test]
async fn urgent_contacts_go_to_the_clinical_queue_at_top_priority() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut urgent = create("general", v1::Channel::Chat, "urgent");
    urgent.urgent = true;
    let ix = client
        .create_interaction(urgent)
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap();
    assert_eq!(ix.queue_id, "clinical");
    assert_eq!(ix.priority, v1::Priority::Urgent as i32);
    let stats = client
        .get_queue_stats(v1::GetQueueStatsRequest {
            queue_id: "clinical".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.queues[0].urgent_waiting, 1);
    platform.stop().await;
}

/// How long a test waits for one event.
const EVENT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The interaction event in `event`, or a panic naming what came instead.
fn interaction_event(event: &v1::Event) -> &v1::InteractionEvent {
    match &event.payload {
        Some(v1::event::Payload::Interaction(ix)) => ix,
        other => panic!("expected an interaction event, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_interactions_streams_the_tenants_events_only() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut other = platform.client(OTHER_KEY).await;
    // The other tenant's events, read straight from the bus, prove they were published.
    let nats = platform.sandbox.nats().await.unwrap();
    let mut foreign_bus = nats
        .subscribe("careline.other-plan.interaction.>")
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let mut events = client
        .watch_interactions(v1::WatchInteractionsRequest {})
        .await
        .unwrap()
        .into_inner();
    const FOREIGN: usize = 3;
    for i in 0..FOREIGN {
        other
            .create_interaction(create("general", v1::Channel::Chat, &format!("theirs-{i}")))
            .await
            .unwrap();
    }
    let mine = client
        .create_interaction(create("general", v1::Channel::Chat, "ours"))
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap()
        .id;
    let mut foreign_created = 0;
    while foreign_created < FOREIGN {
        let message = tokio::time::timeout(EVENT_WAIT, foreign_bus.next())
            .await
            .expect("the other tenant's events are published")
            .expect("bus subscription open");
        let event = <v1::Event as prost::Message>::decode(message.payload).unwrap();
        if interaction_event(&event).kind == v1::InteractionEventKind::Created as i32 {
            foreign_created += 1;
        }
    }
    // Published after every foreign event: once the sentinel arrives, a foreign event
    // would have arrived before it.
    let sentinel = client
        .create_interaction(create("general", v1::Channel::Chat, "sentinel"))
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap()
        .id;
    let created = v1::InteractionEventKind::Created as i32;
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(EVENT_WAIT, events.next())
            .await
            .expect("events up to the sentinel arrive")
            .expect("stream open")
            .expect("event");
        assert_eq!(event.tenant_id, "demo-health", "foreign event: {event:?}");
        let ix = interaction_event(&event);
        assert!(
            ix.interaction_id == mine || ix.interaction_id == sentinel,
            "an event of neither own interaction: {event:?}"
        );
        seen.push((ix.interaction_id.clone(), ix.kind));
        if ix.interaction_id == sentinel && ix.kind == created {
            break;
        }
    }
    assert!(seen.contains(&(mine, created)), "{seen:?}");
    platform.stop().await;
}

#[tokio::test]
async fn watch_streams_end_when_the_router_stops() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut interactions = client
        .watch_interactions(v1::WatchInteractionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut stats = client
        .watch_queue_stats(v1::WatchQueueStatsRequest {
            queue_id: "general".into(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(EVENT_WAIT, stats.next())
        .await
        .expect("the first stats arrive")
        .expect("stream open")
        .expect("stats");
    // `stop` returns once the server and every watch task are done.
    platform.stop().await;
    assert!(
        ends(&mut interactions).await,
        "WatchInteractions still open after the router stopped"
    );
    assert!(
        ends(&mut stats).await,
        "WatchQueueStats still open after the router stopped"
    );
}

/// Whether `stream` ends (cleanly or with a status) within [`EVENT_WAIT`], after
/// whatever it had already buffered.
async fn ends<T>(stream: &mut tonic::Streaming<T>) -> bool {
    let drained = async { while let Ok(Some(_)) = stream.message().await {} };
    tokio::time::timeout(EVENT_WAIT, drained).await.is_ok()
}

#[tokio::test]
async fn an_agent_can_accept_transfer_with_notes_and_resolve() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let store = careline_routing::RoutingStore::connect(&platform.sandbox.redis_url())
        .await
        .unwrap();
    let config = crate::harness::demo();
    store
        .agent_login(
            &config,
            "ana",
            "s-ana",
            careline_routing::AgentStatus::Available,
        )
        .await
        .unwrap();
    store
        .agent_login(
            &config,
            "kim",
            "s-kim",
            careline_routing::AgentStatus::Available,
        )
        .await
        .unwrap();
    let ix = client
        .create_interaction(create("general", v1::Channel::Chat, "walk"))
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap();
    assert_eq!(ix.state, v1::InteractionState::Offered as i32);
    assert_eq!(ix.agent_id, "ana");
    let wrong_agent = client
        .accept_offer(v1::AcceptOfferRequest {
            offer_id: ix.offer_id.clone(),
            agent_id: "kim".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_agent.code(), Code::NotFound);
    let assigned = client
        .accept_offer(v1::AcceptOfferRequest {
            offer_id: ix.offer_id.clone(),
            agent_id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.state, v1::InteractionState::Assigned as i32);
    let transferred = client
        .transfer(v1::TransferRequest {
            interaction_id: ix.id.clone(),
            agent_id: "ana".into(),
            notes: "copay dispute, member already verified".into(),
            target: Some(v1::transfer_request::Target::QueueId("billing".into())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(transferred.id, ix.id);
    assert_eq!(transferred.agent_id, "kim", "offered to the billing agent");
    assert_eq!(
        transferred.notes[0].text,
        "copay dispute, member already verified"
    );
    client
        .accept_offer(v1::AcceptOfferRequest {
            offer_id: transferred.offer_id,
            agent_id: "kim".into(),
        })
        .await
        .unwrap();
    let resolved = client
        .resolve(v1::ResolveRequest {
            interaction_id: ix.id.clone(),
            agent_id: "kim".into(),
            disposition: "explained".into(),
            outcome_tags: vec!["referral".into()],
            notes: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.state, v1::InteractionState::Resolved as i32);
    let bad_tag = client
        .resolve(v1::ResolveRequest {
            interaction_id: ix.id,
            agent_id: "kim".into(),
            disposition: String::new(),
            outcome_tags: vec!["Not A Tag".into()],
            notes: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_tag.code(), Code::InvalidArgument);
    platform.stop().await;
}

#[tokio::test]
async fn list_interactions_pages_and_filters() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let queue = if i % 2 == 0 { "general" } else { "billing" };
        let ix = client
            .create_interaction(create(queue, v1::Channel::Email, &format!("page-{i}")))
            .await
            .unwrap()
            .into_inner()
            .interaction
            .unwrap();
        created.push(ix.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_interactions(v1::ListInteractionsRequest {
                page: Some(v1::PageRequest {
                    page_size: 2,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.interactions.len() <= 2);
        seen.extend(page.interactions.into_iter().map(|ix| ix.id));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, created, "every interaction once, oldest first");
    let billing = client
        .list_interactions(v1::ListInteractionsRequest {
            queue_id: "billing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(billing.interactions.len(), 2);
    let bad_token = client
        .list_interactions(v1::ListInteractionsRequest {
            page: Some(v1::PageRequest {
                page_size: 2,
                page_token: "garbage".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    platform.stop().await;
}

#[tokio::test]
async fn watch_queue_stats_sends_updates_when_the_queue_changes() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut stats = client
        .watch_queue_stats(v1::WatchQueueStatsRequest {
            queue_id: "billing".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stats.next().await.expect("initial stats").expect("ok");
    assert_eq!(first.queues[0].waiting, 0);
    client
        .create_interaction(create("billing", v1::Channel::Email, "watched"))
        .await
        .unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stats.next())
        .await
        .expect("an update arrives")
        .expect("stream open")
        .expect("ok");
    assert_eq!(next.queues[0].waiting, 1);
    platform.stop().await;
}

#[tokio::test]
async fn health_follows_redis_and_routing_recovers_after_a_redis_restart() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut platform = Platform::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", platform.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    careline_testkit::assert_eventually!(
        health
            .check(status("careline.v1.Router"))
            .await
            .unwrap()
            .into_inner()
            .status
            == ServingStatus::Serving as i32,
        "serving"
    );
    platform.sandbox.redis.kill();
    careline_testkit::assert_eventually!(
        health.check(status("")).await.unwrap().into_inner().status
            == ServingStatus::NotServing as i32,
        "not serving while redis is down"
    );
    let mut client = platform.client(DEMO_KEY).await;
    let down = client
        .create_interaction(create("general", v1::Channel::Chat, "while-down"))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    platform.sandbox.redis.restart().await.unwrap();
    careline_testkit::assert_eventually!(
        health.check(status("")).await.unwrap().into_inner().status
            == ServingStatus::Serving as i32,
        "serving again"
    );
    // An empty Redis: scripts are reloaded and the tenant's settings written again.
    careline_testkit::assert_eventually!(
        client
            .create_interaction(create("general", v1::Channel::Chat, "after-restart"))
            .await
            .is_ok(),
        "creates work again"
    );
    platform.stop().await;
}

/// A `CreateInteraction` request whose `member_ref` (field 6) carries raw
/// bytes, as a client with a broken encoder would send.
#[derive(Clone, PartialEq, prost::Message)]
struct RawCreate {
    #[prost(bytes = "vec", tag = "6")]
    member_ref: Vec<u8>,
}

async fn create_raw(
    platform: &Platform,
    member_ref: &[u8],
) -> Result<v1::CreateInteractionResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", platform.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(RawCreate {
        member_ref: member_ref.to_vec(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {DEMO_KEY}").parse().unwrap(),
    );
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static("/careline.v1.Router/CreateInteraction"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn ended_contacts_are_listed_within_a_time_range_and_a_backwards_range_is_refused() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let created = client
        .create_interaction(create("general", v1::Channel::Chat, "ends-soon"))
        .await
        .unwrap()
        .into_inner();
    let id = created.interaction.unwrap().id;
    let ended = client
        .abandon(v1::AbandonRequest {
            interaction_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let list = |from_ms: i64, to_ms: i64| v1::ListInteractionsRequest {
        state: v1::InteractionState::Abandoned as i32,
        from_ms,
        to_ms,
        ..Default::default()
    };
    let within = client
        .list_interactions(list(ended.updated_at_ms, ended.updated_at_ms))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        within
            .interactions
            .iter()
            .map(|ix| &ix.id)
            .collect::<Vec<_>>(),
        [&id]
    );
    let before = client
        .list_interactions(list(0, ended.updated_at_ms - 1))
        .await
        .unwrap()
        .into_inner();
    assert!(before.interactions.is_empty(), "ended after the range");
    let status = client
        .list_interactions(list(ended.updated_at_ms, ended.updated_at_ms - 1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("swap them"),
        "{}",
        status.message()
    );
    platform.stop().await;
}

#[tokio::test]
async fn every_read_of_a_contact_is_in_the_access_audit_without_its_content() {
    use careline_proto::v1::audit_log_client::AuditLogClient;
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut request = create("general", v1::Channel::Chat, "audited");
    request.context.as_mut().unwrap().reason = "marker-7f3a knee surgery follow-up".into();
    let id = client
        .create_interaction(request)
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap()
        .id;
    client
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: id.clone(),
        })
        .await
        .unwrap();
    client
        .list_interactions(v1::ListInteractionsRequest::default())
        .await
        .unwrap();

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", platform.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut audit =
        AuditLogClient::with_interceptor(channel.clone(), careline_testkit::Bearer::new(DEMO_KEY));
    let listed = audit
        .list_audit_events(v1::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let reads: Vec<(&str, &str, &[String])> = listed
        .events
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.actor_id.as_str(),
                e.interaction_ids.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        reads,
        [
            (
                "careline.v1.Router/GetInteraction",
                "demo-integration",
                std::slice::from_ref(&id)
            ),
            (
                "careline.v1.Router/ListInteractions",
                "demo-integration",
                std::slice::from_ref(&id)
            ),
        ],
        "who read what, in order"
    );
    for event in &listed.events {
        let stored = format!("{event:?}");
        assert!(
            !stored.contains("marker-7f3a"),
            "no content in the audit: {stored}"
        );
        assert_eq!(event.actor_kind, v1::ActorKind::ApiKey as i32);
    }
    let mut ivr = AuditLogClient::with_interceptor(
        channel,
        careline_testkit::Bearer::new(careline_testkit::demo::IVR_KEY),
    );
    let status = ivr
        .list_audit_events(v1::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    platform.stop().await;
}

/// The state and agent of interaction `id`.
async fn offered_to(client: &mut crate::harness::Client, id: &str) -> (i32, String) {
    let ix = client
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (ix.state, ix.agent_id)
}

#[tokio::test]
async fn a_contact_created_with_an_earlier_queued_since_is_offered_before_contacts_that_queued_after_it()
 {
    let platform = Platform::start_with_demo(careline_testkit::demo::tenant_always_open()).await;
    // The router's clock is the wall clock here: queued_since is checked against it.
    let now = chrono::Utc::now();
    platform.set_now(&now.to_rfc3339());
    let now_ms = now.timestamp_millis();
    let mut client = platform.client(DEMO_KEY).await;
    let store = careline_routing::RoutingStore::connect(&platform.sandbox.redis_url())
        .await
        .unwrap();
    let config = crate::harness::demo();
    for agent in ["ana", "luis"] {
        store
            .agent_login(
                &config,
                agent,
                &format!("s-{agent}"),
                careline_routing::AgentStatus::Away,
            )
            .await
            .unwrap();
    }
    let queued = |key: &str, since_ms: i64| {
        let mut request = create("general", v1::Channel::Voice, key);
        request.member_ref = format!("member-{key}");
        request.queued_since_ms = since_ms;
        request
    };
    // Created first in wall time, queued now.
    let walk_in = client
        .create_interaction(queued("walk-in", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(walk_in.queue_position, 1);
    // A call-back for a member who queued 30 s ago: ahead of the walk-in.
    let call_back = client
        .create_interaction(queued("call-back", now_ms - 30_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(call_back.queue_position, 1, "ahead of the later walk-in");
    // Someone who queued a minute ago stays ahead of the call-back.
    let earlier = client
        .create_interaction(queued("earlier", now_ms - 60_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(earlier.queue_position, 1);

    // A replay is the same contact; the same key with another time is refused.
    let again = client
        .create_interaction(queued("call-back", now_ms - 30_000))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    let moved = client
        .create_interaction(queued("call-back", now_ms - 45_000))
        .await
        .unwrap_err();
    assert_eq!(moved.code(), Code::AlreadyExists, "{moved:?}");

    for (since_ms, says) in [
        (now_ms + 3_600_000, "is in the future"),
        (now_ms - 8 * 24 * 3_600_000, "more than 7 days ago"),
    ] {
        let status = client
            .create_interaction(queued("bad", since_ms))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(says), "{}", status.message());
    }

    let ids = [
        earlier.interaction.unwrap().id,
        call_back.interaction.unwrap().id,
        walk_in.interaction.unwrap().id,
    ];
    for (agent, offered) in [("ana", &ids[0]), ("luis", &ids[1])] {
        store
            .agent_set_state(
                &config.id,
                agent,
                &format!("s-{agent}"),
                careline_routing::AgentStatus::Available,
                "",
            )
            .await
            .unwrap();
        careline_testkit::assert_eventually!(
            offered_to(&mut client, offered).await
                == (v1::InteractionState::Offered as i32, agent.to_owned()),
            "the next in line is offered to the agent who freed up"
        );
    }
    assert_eq!(
        offered_to(&mut client, &ids[2]).await,
        (v1::InteractionState::Queued as i32, String::new()),
        "the walk-in still waits"
    );
    platform.stop().await;
}
