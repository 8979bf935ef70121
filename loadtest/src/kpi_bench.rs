//! `careline-kpi-bench`: how fast the console's KPI consumer applies the event
//! log, beside a bare JetStream consumer of the same events in the same run.
//! Prints numbers; it is not a test.
//!
//! A local redis-server and nats-server; `--contacts` synthetic contacts of
//! the demo tenant are published as the router would (created, offered,
//! assigned, resolved, capacity released, plus agent state changes). Then:
//! 1. **bare**: a durable pull consumer of the same subjects that decodes and
//!    acknowledges every event, `--in-flight` at once (the ceiling: JetStream
//!    delivery and acks alone);
//! 2. **kpi**: the console's materialiser (`careline_console::consumer::run`)
//!    from the start of the log: one atomic Lua script per event, into Redis.
//!
//! Both read the whole log from the start; events/s is events ÷ time until
//! the consumer has acknowledged the last one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use careline_bus::{Publisher, Subject, TenantDirectory, TenantStore, WorkQueueSettings};
use careline_console::consumer::{self, Materialiser};
use careline_kit::{RedisConnection, Shutdown};
use careline_localdev::{NatsServer, RedisServer};
use careline_proto::v1;
use clap::Parser;
use futures::StreamExt;

/// The demo tenant file, as shipped.
const DEMO_YAML: &str = include_str!("../../deploy/tenants/demo-health.yaml");
/// Durable name of the bare consumer.
const BARE_CONSUMER: &str = "kpi-bench-bare";
/// Events published at once (acks awaited per batch).
const PUBLISH_BATCH: usize = 512;
/// Longest wait for a consumer to get through the log.
const DRAIN_DEADLINE: Duration = Duration::from_secs(600);
/// How often the drain is checked.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Demo agents the synthetic contacts are spread over.
const AGENTS: [&str; 3] = ["ana", "luis", "kim"];

#[derive(Debug, Parser)]
#[command(
    name = "careline-kpi-bench",
    about = "KPI consumer events/s beside a bare JetStream consumer"
)]
struct Args {
    /// Synthetic contacts (each is 5 events; agent state changes come on top).
    #[arg(long, default_value_t = 4000)]
    contacts: usize,
    /// Events the bare consumer handles at once (the KPI consumer's own limit is
    /// careline_console::consumer::MAX_IN_FLIGHT).
    #[arg(long, default_value_t = consumer::MAX_IN_FLIGHT)]
    in_flight: usize,
}

/// The log of `contacts` synthetic contacts, in time order.
fn synthetic_log(tenant: &str, contacts: usize) -> Vec<(Subject, v1::Event)> {
    use v1::InteractionEventKind as I;
    let start_ms = chrono::Utc::now().timestamp_millis() - 24 * 3_600_000;
    let mut log = Vec::new();
    let mut push = |at_ms: i64, entity: &str, kind: &str, payload: v1::event::Payload| {
        let sequence = log.len() as u64 + 1;
        let event = v1::Event {
            event_id: format!("{tenant}:bench-{sequence}"),
            tenant_id: tenant.to_owned(),
            occurred_at_ms: at_ms,
            sequence,
            payload: Some(payload),
        };
        log.push((
            Subject::new(tenant, entity, kind).expect("valid subject"),
            event,
        ));
    };
    for (n, contact) in (0..contacts).enumerate() {
        let at = start_ms + n as i64 * 1_000;
        let agent = AGENTS[n % AGENTS.len()];
        let id = format!("ix_bench{contact:08}");
        let ix = |kind: I, agent: &str, tags: Vec<String>| {
            v1::event::Payload::Interaction(v1::InteractionEvent {
                kind: kind as i32,
                interaction_id: id.clone(),
                queue_id: "general".into(),
                channel: v1::Channel::Chat as i32,
                agent_id: agent.into(),
                member_ref: format!("member-{}", contact % 500),
                outcome_tags: tags,
                ..Default::default()
            })
        };
        push(at, "interaction", "created", ix(I::Created, "", vec![]));
        push(
            at + 100,
            "interaction",
            "offered",
            ix(I::Offered, agent, vec![]),
        );
        push(
            at + 20_000,
            "interaction",
            "assigned",
            ix(I::Assigned, agent, vec![]),
        );
        push(
            at + 320_000,
            "interaction",
            "resolved",
            ix(I::Resolved, agent, vec!["referral".into()]),
        );
        push(
            at + 350_000,
            "agent",
            "capacity_released",
            v1::event::Payload::Agent(v1::AgentEvent {
                kind: v1::AgentEventKind::CapacityReleased as i32,
                agent_id: agent.into(),
                channel: v1::Channel::Chat as i32,
                ..Default::default()
            }),
        );
        if n % 10 == 0 {
            let (state, reason) = if n % 20 == 0 {
                ("away", "break")
            } else {
                ("available", "")
            };
            push(
                at + 400_000,
                "agent",
                "state_changed",
                v1::event::Payload::Agent(v1::AgentEvent {
                    kind: v1::AgentEventKind::StateChanged as i32,
                    agent_id: agent.into(),
                    state: state.into(),
                    reason: reason.into(),
                    channel: 0,
                }),
            );
        }
    }
    log
}

/// Waits until durable `name` has acknowledged the stream's last event.
async fn drained(js: &jetstream::Context, name: &str, last: u64) -> anyhow::Result<()> {
    let stream = js.get_stream(careline_bus::EVENTS_STREAM).await?;
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        if let Ok(mut consumer) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(name)
            .await
            && consumer.info().await?.ack_floor.stream_sequence >= last
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not drain the log in {DRAIN_DEADLINE:?}"
        );
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

fn rate(events: usize, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis_server = RedisServer::start()
        .await
        .context("starting redis-server")?;
    let nats_server = NatsServer::start().await.context("starting nats-server")?;
    let nats = async_nats::connect(nats_server.url()).await?;
    let js = jetstream::new(nats);
    careline_bus::ensure_streams(&js).await?;
    let demo = careline_domain::TenantConfig::from_yaml(DEMO_YAML)?;
    TenantStore::open(&js, None).await?.put(&demo).await?;

    let log = synthetic_log(&demo.id, args.contacts);
    let publisher = Publisher::new(js.clone());
    let started = Instant::now();
    for batch in log.chunks(PUBLISH_BATCH) {
        let acks = futures::future::join_all(
            batch
                .iter()
                .map(|(subject, event)| publisher.publish(subject, event)),
        )
        .await;
        for ack in acks {
            ack?;
        }
    }
    let last = js
        .get_stream(careline_bus::EVENTS_STREAM)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    println!(
        "published {} events ({} contacts) in {:.2?}",
        log.len(),
        args.contacts,
        started.elapsed()
    );

    // 1. Bare: deliver, decode, ack.
    let consumer = careline_bus::ensure_consumer_of_all(
        &js,
        BARE_CONSUMER,
        &consumer::filters(),
        &WorkQueueSettings::default(),
    )
    .await?;
    let started = Instant::now();
    let deliveries = careline_bus::deliveries(&consumer).await?;
    let bare = tokio::spawn(deliveries.for_each_concurrent(
        args.in_flight,
        |delivery| async move {
            if let Ok(delivery) = delivery {
                let _ = delivery.ack.ack().await;
            }
        },
    ));
    drained(&js, BARE_CONSUMER, last).await?;
    let bare_took = started.elapsed();
    bare.abort();

    // 2. The KPI materialiser, from the start of the log.
    let shutdown = Shutdown::new();
    let tenants = Arc::new(
        TenantDirectory::start(&TenantStore::open(&js, None).await?, shutdown.token()).await?,
    );
    let materialiser = Materialiser {
        store: careline_console::KpiStore::new(
            RedisConnection::connect(&redis_server.url(), &careline_kit::Tls::default()).await?,
        ),
        tenants,
        short_abandon: Duration::from_secs(5),
        fcr_window: Duration::from_secs(7 * 24 * 3600),
    };
    let started = Instant::now();
    let kpi = tokio::spawn(consumer::run(js.clone(), materialiser, shutdown.clone()));
    drained(&js, consumer::CONSUMER, last).await?;
    let kpi_took = started.elapsed();
    shutdown.trigger();
    kpi.await?;

    println!("{:<28} {:>10} {:>12}", "consumer", "time", "events/s");
    println!(
        "{:<28} {:>10.2?} {:>12.0}",
        format!("bare JetStream ({} in flight)", args.in_flight),
        bare_took,
        rate(log.len(), bare_took)
    );
    println!(
        "{:<28} {:>10.2?} {:>12.0}",
        format!("KPI consumer ({} in flight)", consumer::MAX_IN_FLIGHT),
        kpi_took,
        rate(log.len(), kpi_took)
    );
    println!(
        "KPI consumer / bare: {:.2}",
        rate(log.len(), kpi_took) / rate(log.len(), bare_took)
    );
    Ok(())
}
