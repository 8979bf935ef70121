//! `careline-campaign-bench`: outreach campaign targets scheduled and offered
//! per second beside inbound routing decisions per second in the same run,
//! and the inbound create latency (p50 / p99) with and without a running
//! campaign. Prints numbers; it is not a test.
//!
//! A local redis-server and nats-server, a router and one campaigns replica
//! in-process, the demo tenant with `--agents` member-services agents logged
//! in and available. Inbound contacts go to `billing` (no agent of it logged
//! in: each create is a full routing decision that queues the contact), so a
//! campaign on `general` never waits for inbound to drain. Phases:
//! 1. **inbound alone**: `--inbound` creates, `--concurrency` at once;
//! 2. **inbound beside a campaign**: `--agents` targets added to a campaign
//!    (pacing: every agent, no hourly cap), the same inbound load at once;
//!    targets/s scheduled = attempts started ÷ time to the last, offered =
//!    outbound interactions offered to an agent ÷ time to the last.

use std::time::{Duration, Instant};

use anyhow::Context;
use careline_bus::TenantStore;
use careline_domain::Channel;
use careline_domain::campaign::{CampaignConfig, Pacing, RetryPolicy};
use careline_domain::tenant::OpeningHours;
use careline_kit::{CommonConfig, Shutdown};
use careline_localdev::{NatsServer, RedisServer};
use careline_proto::v1;
use careline_routing::{AgentStatus, RoutingStore};
use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;

/// A plain router client (the bench adds the key per request).
type Router = v1::router_client::RouterClient<tonic::transport::Channel>;

/// The demo tenant file, as shipped.
const DEMO_YAML: &str = include_str!("../../deploy/tenants/demo-health.yaml");
/// The demo tenant's API key (local use only).
const DEMO_KEY: &str = "demo-health-key-0000000000000000";
/// The campaign the bench runs.
const CAMPAIGN: &str = "bench";
/// Longest wait for the campaign to get through its targets.
const CAMPAIGN_DEADLINE: Duration = Duration::from_secs(300);
/// How often campaign progress is read.
const PROGRESS_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Parser)]
#[command(
    name = "careline-campaign-bench",
    about = "Campaign targets/s beside inbound decisions/s, inbound p99 with and without a campaign"
)]
struct Args {
    /// Agents logged in to `general` (and campaign targets).
    #[arg(long, default_value_t = 300)]
    agents: usize,
    /// Inbound creates per phase.
    #[arg(long, default_value_t = 3000)]
    inbound: usize,
    /// Inbound creates in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

fn tenant(agents: usize) -> anyhow::Result<careline_domain::TenantConfig> {
    let mut config = careline_domain::TenantConfig::from_yaml(DEMO_YAML)?;
    config.hours.clear();
    config.holidays.clear();
    config.routing.offer_timeout_secs.voice = 3_600;
    config.routing.heartbeat_ttl_secs = 3_600;
    config.outreach.hours = vec![OpeningHours {
        days: vec![
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
            chrono::Weekday::Sat,
            chrono::Weekday::Sun,
        ],
        open: "00:00".into(),
        close: "00:00".into(),
    }];
    let max = u32::try_from(agents)?;
    config.outreach.campaigns = vec![CampaignConfig {
        code: CAMPAIGN.into(),
        name: "Bench".into(),
        channel: Channel::Voice,
        queue: Some("general".into()),
        language: None,
        window: Vec::new(),
        ends_on: None,
        pacing: Pacing {
            max_in_progress: max,
            max_per_hour: 100_000,
            agent_share_percent: 100,
        },
        retry: RetryPolicy::default(),
        template: None,
        callback: false,
    }];
    let mut agent = config.agents[0].clone();
    agent.skills.retain(|skill, _| skill == "member_services");
    for i in 0..agents {
        agent.id = format!("bench-{i}");
        config.agents.push(agent.clone());
    }
    config.validate()?;
    Ok(config)
}

/// `n` inbound creates to `billing`, `concurrency` at once; returns the
/// latency histogram (µs) and the elapsed time.
/// `message` with the demo tenant's key.
fn keyed<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {DEMO_KEY}").parse()?);
    Ok(request)
}

/// Contacts waiting in `general` (outbound ones not yet offered).
async fn general_waiting(router: &Router) -> anyhow::Result<u32> {
    let stats = router
        .clone()
        .get_queue_stats(keyed(v1::GetQueueStatsRequest {
            queue_id: "general".into(),
        })?)
        .await?
        .into_inner();
    Ok(stats.queues.iter().map(|q| q.waiting).sum())
}

async fn inbound(
    router: Router,
    phase: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Histogram<u64>, Duration)> {
    let started = Instant::now();
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut calls = futures::stream::iter(0..n)
        .map(|i| {
            let mut router = router.clone();
            let phase = phase.to_owned();
            async move {
                let request = keyed(v1::CreateInteractionRequest {
                    channel: v1::Channel::Voice as i32,
                    queue_id: "billing".into(),
                    member_ref: format!("in-{phase}-{i}"),
                    idempotency_key: format!("in-{phase}-{i}"),
                    ..Default::default()
                })?;
                let at = Instant::now();
                router.create_interaction(request).await?;
                anyhow::Ok(at.elapsed())
            }
        })
        .buffer_unordered(concurrency);
    while let Some(latency) = calls.next().await {
        histogram.record(u64::try_from(latency?.as_micros())?)?;
    }
    Ok((histogram, started.elapsed()))
}

fn print_inbound(phase: &str, histogram: &Histogram<u64>, elapsed: Duration) {
    println!(
        "inbound {phase:<16} {:>6} creates in {:>6.2}s = {:>7.0} decisions/s, p50 {:>6.2} ms, p99 {:>6.2} ms",
        histogram.len(),
        elapsed.as_secs_f64(),
        histogram.len() as f64 / elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis_server = RedisServer::start()
        .await
        .context("starting redis-server")?;
    let nats_server = NatsServer::start().await.context("starting nats-server")?;
    let js = async_nats::jetstream::new(async_nats::connect(nats_server.url()).await?);
    careline_bus::ensure_streams(&js).await?;
    let config = tenant(args.agents)?;
    TenantStore::open(&js, None).await?.put(&config).await?;
    let common = CommonConfig {
        redis_url: redis_server.url(),
        nats_url: nats_server.url(),
        ..CommonConfig::default()
    };
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let router_addr = listener.local_addr()?;
    let router_task = tokio::spawn(careline_router::serve(
        careline_router::RouterConfig::with_common(common.clone()),
        listener,
        shutdown.clone(),
    ));
    let channel = loop {
        match tonic::transport::Endpoint::from_shared(format!("http://{router_addr}"))?
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(PROGRESS_POLL).await,
        }
    };
    let router = Router::new(channel);
    // The router has the tenant once a stats read succeeds.
    while general_waiting(&router).await.is_err() {
        tokio::time::sleep(PROGRESS_POLL).await;
    }
    let routing = RoutingStore::connect(&redis_server.url()).await?;
    for i in 0..args.agents {
        let agent = format!("bench-{i}");
        routing
            .agent_login(
                &config,
                &agent,
                &format!("s-{agent}"),
                AgentStatus::Available,
            )
            .await?;
    }
    println!(
        "careline-campaign-bench: {} agents on general, {} inbound creates per phase ({} at once) to billing",
        args.agents, args.inbound, args.concurrency
    );

    let (alone, alone_elapsed) =
        inbound(router.clone(), "alone", args.inbound, args.concurrency).await?;
    print_inbound("alone", &alone, alone_elapsed);

    let campaigns_shutdown = Shutdown::new();
    let mut campaigns_config = careline_campaigns::CampaignsConfig::with_common(common.clone());
    campaigns_config.router_url = format!("http://{router_addr}");
    campaigns_config.router_api_keys = format!("{}={DEMO_KEY}", config.id)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let core = careline_campaigns::Campaigns::connect(
        &campaigns_config,
        careline_campaigns::system_clock(),
        &campaigns_shutdown,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let campaigns_task = tokio::spawn(careline_campaigns::serve(
        campaigns_config,
        listener,
        campaigns_shutdown.clone(),
    ));
    let targets: Vec<v1::CampaignTarget> = (0..args.agents)
        .map(|i| v1::CampaignTarget {
            member_ref: format!("target-{i}"),
            contact_hint: format!("+1555{i:07}"),
            ..Default::default()
        })
        .collect();
    let campaign_started = Instant::now();
    for batch in targets.chunks(500) {
        loop {
            // The replica loads the tenant in the background; retry until it has.
            match core.add_targets(&config.id, CAMPAIGN, batch).await {
                Ok(_) => break,
                Err(careline_campaigns::CampaignError::Unavailable(_)) => {
                    tokio::time::sleep(PROGRESS_POLL).await
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    let progress = {
        let (core, router, tenant) = (core.clone(), router.clone(), config.id.clone());
        let total = args.agents as u64;
        tokio::spawn(async move {
            let (mut scheduled_at, mut offered_at) = (None, None);
            let until = Instant::now() + CAMPAIGN_DEADLINE;
            while Instant::now() < until && offered_at.is_none() {
                if scheduled_at.is_none() && core.stats(&tenant, CAMPAIGN).await?.attempts >= total
                {
                    scheduled_at = Some(campaign_started.elapsed());
                }
                // Every agent takes one outbound call: none left waiting = all offered.
                if scheduled_at.is_some() && general_waiting(&router).await? == 0 {
                    offered_at = Some(campaign_started.elapsed());
                }
                tokio::time::sleep(PROGRESS_POLL).await;
            }
            anyhow::Ok((scheduled_at, offered_at))
        })
    };
    let (beside, beside_elapsed) =
        inbound(router.clone(), "campaign", args.inbound, args.concurrency).await?;
    print_inbound("beside campaign", &beside, beside_elapsed);
    let (scheduled_at, offered_at) = progress.await??;
    for (what, at) in [("scheduled", scheduled_at), ("offered", offered_at)] {
        match at {
            Some(at) => println!(
                "campaign {what:<9} {:>6} targets in {:>6.2}s = {:>7.0} targets/s",
                args.agents,
                at.as_secs_f64(),
                args.agents as f64 / at.as_secs_f64()
            ),
            None => println!("campaign {what:<9} not every target within {CAMPAIGN_DEADLINE:?}"),
        }
    }
    campaigns_shutdown.trigger();
    campaigns_task.await??;
    shutdown.trigger();
    router_task.await??;
    Ok(())
}
