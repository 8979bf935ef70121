//! The outbox relay: events reach NATS once each, in order, carrying the
//! trace of the request that caused them; the outbox keeps every event until
//! it is relayed, refuses new contacts when full, and moves aside entries that
//! cannot become events.

use std::time::Duration;

use careline_bus::{Publisher, ensure_streams, read_tenant_events};
use careline_domain::tenant::PerChannel;
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{OutboxRelay, RoutingError, RoutingStore, outbox_lag};
use careline_testkit::NatsServer;
use futures::StreamExt;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use prost::Message;
use redis::AsyncCommands;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::env::{Env, agent};

/// How long a timer-driven step or an event may take to show up.
const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn relayed_events_carry_the_requests_trace_and_a_dedupe_id() {
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("careline-routing-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new(|_| {}).await;
    let nats = NatsServer::start().await.expect("nats-server starts");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js).await.unwrap();
    let mut created = client
        .subscribe(format!("careline.{}.interaction.created", env.tenant()))
        .await
        .unwrap();

    let request = tracing::info_span!("create_interaction");
    let request_trace = request.context().span().span_context().trace_id();
    let id = env.chat("billing").instrument(request).await;

    let relay = OutboxRelay::new(
        RoutingStore::connect(&env.redis.url())
            .await
            .unwrap()
            .connection(),
        Publisher::new(js),
        "test-relay",
    );
    relay.ensure_group(env.tenant()).await.unwrap();
    assert_eq!(
        relay.relay_new(env.tenant()).await.unwrap(),
        1,
        "one event: created"
    );

    let message = tokio::time::timeout(Duration::from_secs(10), created.next())
        .await
        .expect("the event arrives")
        .expect("subscription open");
    let event = v1::Event::decode(message.payload.clone()).unwrap();
    let Some(v1::event::Payload::Interaction(ix)) = &event.payload else {
        panic!("interaction event")
    };
    assert_eq!(ix.interaction_id, id);
    let (tenant, entry_id) = event.event_id.split_once(':').expect("<tenant>:<entry id>");
    assert_eq!(tenant, env.tenant());
    let (ms, n) = entry_id.split_once('-').expect("outbox entry id <ms>-<n>");
    assert!(
        ms.parse::<u64>().is_ok() && n.parse::<u64>().is_ok(),
        "{}",
        event.event_id
    );
    assert_eq!(event.sequence, 1, "the tenant's first routing event");
    let headers = message.headers.expect("headers");
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(event.event_id.as_str())
    );
    let traceparent = headers
        .get("traceparent")
        .expect("traceparent")
        .as_str()
        .to_string();
    assert!(
        traceparent.contains(&request_trace.to_string()),
        "{traceparent} continues trace {request_trace}"
    );
    assert_eq!(
        relay.relay_new(env.tenant()).await.unwrap(),
        0,
        "nothing is published twice"
    );
}

#[tokio::test]
async fn every_event_of_a_contact_continues_its_creation_trace_and_links_the_request() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("careline-routing-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new(|c| {
        c.routing.offer_timeout_secs = PerChannel {
            voice: 1,
            chat: 1,
            email: 1,
        };
        for id in ["sleepy", "awake"] {
            c.agents.push(agent(id, &[("billing", 5)], &[Language::En]));
        }
    })
    .await;
    let nats = NatsServer::start().await.expect("nats-server starts");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js).await.unwrap();
    let mut events = client
        .subscribe(format!("careline.{}.interaction.>", env.tenant()))
        .await
        .unwrap();

    let create = tracing::info_span!("create_request");
    let contact_trace = create.context().span().span_context().trace_id();
    let id = env.chat("billing").instrument(create).await;
    env.login("sleepy")
        .instrument(tracing::info_span!("sleepy_login"))
        .await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("sleepy"));
    // Timer-driven: no request, no current span.
    env.tick_until(WITHIN, "offer times out", || async {
        env.offered_to(&id).await.is_none()
    })
    .await;
    env.login("awake")
        .instrument(tracing::info_span!("awake_login"))
        .await;
    assert_eq!(env.offered_to(&id).await.as_deref(), Some("awake"));
    let accept = tracing::info_span!("accept_request");
    let accept_trace = accept.context().span().span_context().trace_id();
    env.accept(&id).instrument(accept).await;

    let relay = OutboxRelay::new(env.redis_conn().await, Publisher::new(js), "test-relay");
    relay.ensure_group(env.tenant()).await.unwrap();
    while relay.relay_new(env.tenant()).await.unwrap() > 0 {}

    let mut kinds = Vec::new();
    while kinds.last().map(String::as_str) != Some("assigned") {
        let message = tokio::time::timeout(WITHIN, events.next())
            .await
            .unwrap_or_else(|_| panic!("the events up to assigned arrive; got {kinds:?}"))
            .expect("subscription open");
        let kind = message
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        assert!(
            traceparent.contains(&contact_trace.to_string()),
            "{kind}: {traceparent} continues the contact's trace {contact_trace}"
        );
        kinds.push(kind);
    }
    assert!(
        kinds.iter().any(|k| k == "offer_timed_out"),
        "the timeout is among {kinds:?}"
    );

    let spans = exporter.get_finished_spans().unwrap();
    let span = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "a {name} span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let timed_out = span("publish interaction.offer_timed_out");
    assert_eq!(timed_out.span_context.trace_id(), contact_trace);
    assert!(timed_out.links.is_empty(), "a timer has no request to link");
    let assigned = span("publish interaction.assigned");
    assert_eq!(assigned.span_context.trace_id(), contact_trace);
    let linked: Vec<_> = assigned
        .links
        .iter()
        .map(|link| link.span_context.trace_id())
        .collect();
    assert_eq!(linked, [accept_trace], "the accept request is linked");
    let created = span("publish interaction.created");
    assert!(
        created.links.is_empty(),
        "the creating request is the parent, not a link"
    );
}

/// A tenant in Redis, a nats-server with the event stream, and a relay.
struct Relaying {
    env: Env,
    _nats: NatsServer,
    js: async_nats::jetstream::Context,
    relay: OutboxRelay,
}

impl Relaying {
    async fn start() -> Relaying {
        let env = Env::new(|c| {
            c.agents
                .push(agent("a1", &[("billing", 5)], &[Language::En]))
        })
        .await;
        let nats = NatsServer::start().await.expect("nats-server starts");
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        ensure_streams(&js).await.unwrap();
        let relay = OutboxRelay::new(
            env.redis_conn().await,
            Publisher::new(js.clone()),
            "test-relay",
        );
        relay.ensure_group(env.tenant()).await.unwrap();
        Relaying {
            env,
            _nats: nats,
            js,
            relay,
        }
    }

    /// Relays until the outbox is empty; returns how many were published.
    async fn drain(&self) -> usize {
        let mut published = 0;
        loop {
            match self
                .relay
                .relay_new(self.env.tenant())
                .await
                .expect("relayed")
            {
                0 => return published,
                n => published += n,
            }
        }
    }

    async fn stored(&self) -> Vec<v1::Event> {
        read_tenant_events(&self.js, self.env.tenant())
            .await
            .expect("events read back")
    }

    async fn outbox_len(&self) -> u64 {
        let key = format!(
            "{}outbox",
            careline_routing::keys::prefix(self.env.tenant())
        );
        redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut self.env.redis_conn().await)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_outbox_keeps_every_unrelayed_event_past_the_old_trim_length() {
    // The old trim (`MAXLEN ~ 200000`) dropped the oldest entries whether or
    // not they were relayed. Fill the outbox to that length, add a node's
    // worth of events more, and nothing may be gone.
    const OLD_TRIM_LENGTH: u64 = 200_000;
    const MORE: u64 = 150;
    // Small enough to answer within the client's response timeout on a busy machine.
    const PIPELINE: u64 = 1_000;
    let env = Env::new(|_| {}).await;
    let key = format!("{}outbox", careline_routing::keys::prefix(env.tenant()));
    let mut conn = env.redis_conn().await;
    for chunk in 0..OLD_TRIM_LENGTH / PIPELINE {
        let mut pipe = redis::pipe();
        for i in 0..PIPELINE {
            pipe.xadd(&key, "*", &[("filler", chunk * PIPELINE + i)])
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
    let first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..MORE {
        env.chat("billing").await;
    }
    let len: u64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        len,
        OLD_TRIM_LENGTH + MORE,
        "every event is still in the outbox"
    );
    let still_first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        still_first.ids[0].id, first.ids[0].id,
        "the oldest entry is kept"
    );
}

#[tokio::test]
async fn new_contacts_are_refused_while_the_outbox_is_full_and_everything_else_still_works() {
    const BOUND: u64 = 3;
    let r = Relaying::start().await;
    let env = &r.env;
    let store = RoutingStore::connect(&env.redis.url())
        .await
        .unwrap()
        .with_outbox_max_events(BOUND);
    let new = || env.new_interaction("billing", Channel::Chat, Language::En, Priority::Normal);
    let mut waiting = Vec::new();
    for _ in 0..BOUND {
        waiting.push(
            store
                .create_interaction(env.tenant(), &new())
                .await
                .unwrap()
                .interaction_id,
        );
    }
    let err = store
        .create_interaction(env.tenant(), &new())
        .await
        .expect_err("the outbox is full");
    assert!(matches!(err, RoutingError::Unavailable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "events are not reaching NATS: 3 events wait in the outbox; new contacts are refused until it drains; retry shortly"
    );
    assert_eq!(
        r.outbox_len().await,
        BOUND,
        "a refused create writes nothing"
    );

    // Work already in the system keeps moving: an agent logs in, gets the
    // oldest contact, accepts it and resolves it.
    env.login("a1").await;
    let first = &waiting[0];
    assert_eq!(env.offered_to(first).await.as_deref(), Some("a1"));
    env.accept(first).await;
    store
        .resolve(env.tenant(), first, "a1", "answered", &[], None)
        .await
        .expect("resolving works while the outbox is full");
    assert!(r.outbox_len().await > BOUND, "their events wait too");

    let drained = r.drain().await as u64;
    assert_eq!(r.outbox_len().await, 0);
    let created = store.create_interaction(env.tenant(), &new()).await;
    assert!(created.is_ok(), "accepted again once drained: {created:?}");

    // Now that a relay has published, the count comes from its mark (an
    // entry may hold several events): the bound holds the same way, and the
    // count is what the relay then publishes.
    let mut accepted = 1;
    let err = loop {
        match store.create_interaction(env.tenant(), &new()).await {
            Ok(_) => accepted += 1,
            Err(err) => break err,
        }
        assert!(accepted <= BOUND, "refused by the bound at the latest");
    };
    let waiting = r.drain().await;
    assert!(waiting as u64 >= BOUND);
    assert_eq!(
        err.to_string(),
        format!(
            "events are not reaching NATS: {waiting} events wait in the outbox; new contacts are refused until it drains; retry shortly"
        )
    );
    assert!(
        store.create_interaction(env.tenant(), &new()).await.is_ok(),
        "accepted again once drained"
    );
    println!("outbox bound {BOUND}: 1 create refused, {drained} events relayed after");
}

#[tokio::test]
async fn a_scripts_events_share_one_outbox_entry_and_keep_ids_and_sequences_of_their_own() {
    let r = Relaying::start().await;
    let env = &r.env;
    env.login("a1").await;
    r.drain().await;
    let before = r.stored().await.len();

    let id = env.chat("billing").await;
    assert_eq!(r.outbox_len().await, 1, "created and offered: one entry");
    assert_eq!(r.drain().await, 2, "two events published");
    let events = r.stored().await;
    let [created, offered] = &events[before..] else {
        panic!("two new events: {:?}", &events[before..])
    };
    let interaction = |e: &v1::Event| match &e.payload {
        Some(v1::event::Payload::Interaction(ix)) => ix.clone(),
        other => panic!("interaction event: {other:?}"),
    };
    let (created_ix, offered_ix) = (interaction(created), interaction(offered));
    assert_eq!(created_ix.kind(), v1::InteractionEventKind::Created);
    assert_eq!(offered_ix.kind(), v1::InteractionEventKind::Offered);
    assert_eq!(
        (
            created_ix.interaction_id.as_str(),
            offered_ix.interaction_id.as_str()
        ),
        (id.as_str(), id.as_str())
    );
    assert_eq!(offered.sequence, created.sequence + 1, "numbered in order");
    assert_eq!(
        offered.event_id,
        format!("{}:2", created.event_id),
        "the second event of the entry"
    );
    assert_eq!(
        offered_ix.offer_id,
        env.get(&id).await.offer_id,
        "the event names the pending offer"
    );
    assert_eq!(
        r.relay.relay_new(env.tenant()).await.unwrap(),
        0,
        "nothing twice"
    );
}

#[tokio::test]
async fn an_entry_an_older_release_wrote_with_prefixed_fields_is_still_published() {
    // Until events were packed as JSON, the k-th event's fields were
    // prefixed "k:"; entries left in the outbox by such a release at an
    // upgrade must reach NATS all the same.
    let r = Relaying::start().await;
    let env = &r.env;
    let key = format!("{}outbox", careline_routing::keys::prefix(env.tenant()));
    let mut conn = env.redis_conn().await;
    let event = |prefix: &str, kind: &str| {
        [
            ("entity", "interaction"),
            ("kind", kind),
            ("ix", "ix_old"),
            ("queue", "billing"),
            ("ch", "chat"),
            ("band", "2"),
            ("urgent", "0"),
        ]
        .map(|(name, value)| (format!("{prefix}{name}"), value.to_string()))
    };
    let mut fields = vec![
        ("seq".to_string(), "41".to_string()),
        ("at".to_string(), "1764270000000".to_string()),
    ];
    fields.extend(event("", "created"));
    fields.extend(event("2:", "requeued"));
    let _: String = conn.xadd(&key, "*", &fields).await.unwrap();

    assert_eq!(r.drain().await, 2, "both events are published");
    let events = r.stored().await;
    let kinds: Vec<(u64, v1::InteractionEventKind)> = events
        .iter()
        .map(|e| match &e.payload {
            Some(v1::event::Payload::Interaction(ix)) => {
                assert_eq!(ix.interaction_id, "ix_old");
                (e.sequence, ix.kind())
            }
            other => panic!("interaction event: {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (41, v1::InteractionEventKind::Created),
            (42, v1::InteractionEventKind::Requeued)
        ]
    );
}

#[tokio::test]
async fn a_malformed_outbox_entry_is_dead_lettered_and_the_rest_flows() {
    let r = Relaying::start().await;
    let env = &r.env;
    let before = env.chat("billing").await;
    let key = format!("{}outbox", careline_routing::keys::prefix(env.tenant()));
    let mut conn = env.redis_conn().await;
    let poison: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("entity")
        .arg("interaction")
        .arg("kind")
        .arg("created")
        .query_async(&mut conn)
        .await
        .unwrap();
    let after = env.chat("billing").await;

    assert_eq!(r.drain().await, 2, "both good events are published");
    let ids: Vec<String> = r
        .stored()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(v1::event::Payload::Interaction(ix)) => Some(ix.interaction_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [before, after]);
    assert_eq!(r.outbox_len().await, 0, "the poison entry left the outbox");
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{key}:dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead.ids.len(), 1, "one dead letter");
    let letter = &dead.ids[0];
    assert_eq!(
        letter.get::<String>("outbox_id").as_deref(),
        Some(poison.as_str())
    );
    assert_eq!(
        letter.get::<String>("kind").as_deref(),
        Some("created"),
        "original fields kept"
    );
    let error: String = letter.get("error").expect("the reason is kept");
    assert!(error.contains("without seq"), "{error}");
}

#[tokio::test]
async fn one_relay_pass_stores_a_batch_in_outbox_order() {
    const EVENTS: usize = 200;
    let r = Relaying::start().await;
    for _ in 0..EVENTS {
        r.env.chat("billing").await;
    }
    assert_eq!(r.drain().await, EVENTS);
    let sequences: Vec<u64> = r.stored().await.iter().map(|e| e.sequence).collect();
    let expected: Vec<u64> = (1..=EVENTS as u64).collect();
    assert_eq!(
        sequences, expected,
        "stored in the order the outbox holds them"
    );
}

#[tokio::test]
async fn outbox_lag_counts_waiting_events_and_the_age_of_the_oldest() {
    let r = Relaying::start().await;
    let mut conn = r.env.redis_conn().await;
    let empty = outbox_lag(&mut conn, r.env.tenant()).await.unwrap();
    assert_eq!((empty.events, empty.oldest_age_ms), (0, 0));
    r.env.chat("billing").await;
    r.env.chat("billing").await;
    r.env.next_millisecond().await;
    let lag = outbox_lag(&mut conn, r.env.tenant()).await.unwrap();
    assert_eq!(lag.events, 2);
    assert!(lag.oldest_age_ms > 0, "{lag:?}");
    r.drain().await;
    let drained = outbox_lag(&mut conn, r.env.tenant()).await.unwrap();
    assert_eq!((drained.events, drained.oldest_age_ms), (0, 0));
}
