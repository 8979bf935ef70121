//! The Careline campaigns service: outbound and proactive outreach. Campaigns
//! live in the tenant configuration (`outreach`); targets are added over
//! gRPC; every replica's scheduler claims due targets inside the campaign's
//! window and pacing and turns each into a preview voice interaction on the
//! router (below every inbound contact) or an email through notifications;
//! results are retried or settled; a suppression ledger keeps opted-out,
//! recently reached and busy members from being contacted; resolutions roll
//! up per campaign.
//!
//! - [`config`]: [`CampaignsConfig`], flags and environment.
//! - [`campaigns`]: [`Campaigns`], the core.
//! - [`store`]: [`CampaignStore`], the service's Redis keys and Lua scripts.
//! - `router`: the router's gRPC API as the service uses it.
//! - `worker`: the per-replica scheduler.
//! - `consumer`: the durable consumer of interaction events.
//! - `grpc`: the tonic adapter.
//! - `validate`: input checks and limits.
//! - `error`: [`CampaignError`] and its mapping to gRPC status codes.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

pub mod campaigns;
pub mod config;
mod consumer;
mod error;
mod grpc;
mod router;
pub mod store;
mod validate;
mod worker;

use std::sync::Arc;

use anyhow::Context as _;
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::campaign_service_server::CampaignServiceServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use campaigns::{Campaigns, Clock};
pub use config::CampaignsConfig;
pub use consumer::CONSUMER;
pub use error::CampaignError;
pub use store::CampaignStore;

/// Largest gRPC request accepted (500 targets of a few hundred bytes).
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;

/// What a replica runs on.
struct Backend {
    campaigns: Campaigns,
    redis: RedisConnection,
    nats: async_nats::Client,
    js: async_nats::jetstream::Context,
}

impl Backend {
    async fn connect(
        config: &CampaignsConfig,
        clock: Clock,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Backend> {
        // URLs are not echoed: they may carry passwords.
        let tls = config.common.tls.load()?;
        let redis = RedisConnection::connect(&config.common.redis_url, &tls)
            .await
            .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
        let nats = careline_kit::nats_client::connect(&config.common).await?;
        let js = async_nats::jetstream::new(nats.clone());
        let tenants =
            careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
                .await
                .map(Arc::new)?;
        let router =
            router::RouterGateway::new(&config.router_url, config.router_api_keys.clone(), &tls)?;
        let campaigns = Campaigns {
            store: CampaignStore::new(redis.clone()),
            tenants,
            router,
            js: js.clone(),
            clock,
        };
        Ok(Backend {
            campaigns,
            redis,
            nats,
            js,
        })
    }
}

impl Campaigns {
    /// The core alone, without the gRPC server, scheduler or consumer: tests
    /// drive its passes one at a time ([`Campaigns::run_due`]).
    pub async fn connect(
        config: &CampaignsConfig,
        clock: Clock,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Campaigns> {
        Ok(Backend::connect(config, clock, shutdown).await?.campaigns)
    }
}

/// The wall clock, in ms since the Unix epoch.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// Runs the service (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: CampaignsConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_with(config, listener, shutdown, system_clock()).await
}

/// [`serve`] with an explicit clock (tests set the instant: a window, a DST change).
pub async fn serve_with(
    config: CampaignsConfig,
    listener: TcpListener,
    shutdown: Shutdown,
    clock: Clock,
) -> anyhow::Result<()> {
    let Backend {
        campaigns,
        redis,
        nats,
        js,
    } = Backend::connect(&config, clock, &shutdown).await?;
    let consuming = tokio::spawn(consumer::run(js, campaigns.clone(), shutdown.clone()));
    let scheduling = tokio::spawn(worker::run(campaigns.clone(), shutdown.clone()));
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats, shutdown.token().clone());
    let auth = TenantAuth::from_arc(campaigns.tenants.clone());
    let service = InterceptedService::new(
        CampaignServiceServer::new(grpc::CampaignApi { campaigns })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        auth,
    );
    tracing::info!(addr = %listener.local_addr()?, "campaigns serving");
    GrpcServer::new()
        .add_service(service)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    careline_kit::service::join_tasks([
        (consuming, "campaigns consumer"),
        (scheduling, "campaign scheduler"),
        (probe, "health probe"),
    ])
    .await;
    Ok(())
}
