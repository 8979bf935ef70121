//! `careline up`: the whole platform on one machine. Starts redis-server and
//! nats-server as child processes (data under `--data-dir`), applies the
//! tenant files, runs every service in this process, prints the endpoints,
//! and stops everything on ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use careline_campaigns::CampaignsConfig;
use careline_chat_gateway::ChatGatewayConfig;
use careline_console::ConsoleConfig;
use careline_email_intake::EmailIntakeConfig;
use careline_kit::{CommonConfig, MetricsAddr, RouterKeys, Shutdown, TracingConfig};
use careline_localdev::{NatsServer, RedisServer};
use careline_notifications::NotificationsConfig;
use careline_presence::PresenceConfig;
use careline_router::RouterConfig;
use careline_survey_dispatcher::SurveyConfig;
use careline_survey_dispatcher::token::LinkKeys;
use clap::Args;
use tokio::net::TcpListener;

/// email-intake's, chat-gateway's, the console's and the campaigns service's router credentials for the shipped demo
/// tenant (its key is in deploy/tenants/demo-health.yaml: local use only).
const DEMO_ROUTER_KEYS: &str = "demo-health=demo-health-key-0000000000000000";
/// The key signing survey links of `careline up` (local use only: anyone who
/// reads it can forge links; deployments set CARELINE_SURVEY_LINK_KEYS).
const DEMO_SURVEY_LINK_KEYS: &str = "localSurveyLinkKey0000demo1234567890abcdef";

/// The platform operator token of `careline up`'s console (the /operator
/// view across tenants; local use only: deployments set their own secret).
const DEMO_OPERATOR_TOKEN: &str = "demo-operator-token-7Kq2xWv9Rb3m";

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where Redis and NATS keep their data between runs.
    #[arg(long, default_value = ".careline/data")]
    data_dir: PathBuf,
    /// Tenant files to apply at start (repeat the flag for several).
    #[arg(long = "tenant", default_value = "deploy/tenants/demo-health.yaml")]
    tenants: Vec<PathBuf>,
    /// Port of the local redis-server (6380 leaves a system Redis on 6379 alone).
    #[arg(long, default_value_t = 6380)]
    redis_port: u16,
    /// Port of the local nats-server.
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
    /// Router gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    router_addr: SocketAddr,
    /// Presence gRPC address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    presence_addr: SocketAddr,
    /// Notifications gRPC address.
    #[arg(long, default_value = "127.0.0.1:50054")]
    notifications_addr: SocketAddr,
    /// SMTP relay for outgoing mail (e.g. smtp://user:password@mail.example:587?tls=required);
    /// unset: emails are written to <data-dir>/mail as .eml files.
    #[arg(long, env = "CARELINE_SMTP_URL")]
    smtp_url: Option<String>,
    /// email-intake gRPC address (IngestEmail, ReplyEmail, GetThread).
    #[arg(long, default_value = "127.0.0.1:50053")]
    email_addr: SocketAddr,
    /// SMTP address of email-intake (members' mail in).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp_addr: SocketAddr,
    /// The router API key email-intake uses per tenant (`tenant=key,...`); the
    /// default is the demo tenant's local-only key.
    #[arg(long, default_value = DEMO_ROUTER_KEYS)]
    email_router_api_keys: RouterKeys,
    /// chat-gateway gRPC address (agents' ChatSession, GetTranscript).
    #[arg(long, default_value = "127.0.0.1:50055")]
    chat_addr: SocketAddr,
    /// chat-gateway HTTP address: member WebSocket, widget.js, the demo page
    /// (the demo tenant's widget allows pages from 127.0.0.1:8090 and localhost:8090).
    #[arg(long, default_value = "127.0.0.1:8090")]
    chat_http_addr: SocketAddr,
    /// The router API key chat-gateway uses per tenant (`tenant=key,...`); the
    /// default is the demo tenant's local-only key.
    #[arg(long, default_value = DEMO_ROUTER_KEYS)]
    chat_router_api_keys: RouterKeys,
    /// survey-dispatcher gRPC address (SurveyService).
    #[arg(long, default_value = "127.0.0.1:50056")]
    survey_addr: SocketAddr,
    /// survey-dispatcher HTTP address: the survey page members open from the email.
    #[arg(long, default_value = "127.0.0.1:8091")]
    survey_http_addr: SocketAddr,
    /// Keys signing survey links, newest first (default: a local-only demo key).
    #[arg(long, env = "CARELINE_SURVEY_LINK_KEYS", default_value = DEMO_SURVEY_LINK_KEYS,
          hide_default_value = true, hide_env_values = true)]
    survey_link_keys: LinkKeys,
    /// Console gRPC address (GetKpis).
    #[arg(long, default_value = "127.0.0.1:50057")]
    console_addr: SocketAddr,
    /// Console HTTP address: the supervisors' floor view at /floor.
    #[arg(long, default_value = "127.0.0.1:8092")]
    console_http_addr: SocketAddr,
    /// The router API key the console's floor view reads queue stats with, per
    /// tenant (`tenant=key,...`); the default is the demo tenant's local-only key.
    #[arg(long, default_value = DEMO_ROUTER_KEYS)]
    console_router_api_keys: RouterKeys,
    /// Campaigns gRPC address (CampaignService).
    #[arg(long, default_value = "127.0.0.1:50058")]
    campaigns_addr: SocketAddr,
    /// The router API key the campaigns service creates outbound contacts and
    /// reads queue stats with, per tenant (`tenant=key,...`); the default is
    /// the demo tenant's local-only key.
    #[arg(long, default_value = DEMO_ROUTER_KEYS)]
    campaigns_router_api_keys: RouterKeys,
    /// The platform operator token opening the console's operator view
    /// (/operator, PlatformOverview); the default is a local-only demo token.
    #[arg(long, env = "CARELINE_CONSOLE_OPERATOR_TOKEN", default_value = DEMO_OPERATOR_TOKEN,
          hide_env_values = true)]
    console_operator_token: String,
    /// Prometheus metrics address of all services.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Span export of every service (one `service.name`, `careline`) and its sampling.
    #[command(flatten)]
    tracing: TracingConfig,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let tenants = args
        .tenants
        .iter()
        .map(|file| crate::config_cmd::load(file))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let common = CommonConfig {
        redis_url: format!("redis://127.0.0.1:{}/", args.redis_port),
        nats_url: format!("nats://127.0.0.1:{}", args.nats_port),
        metrics_addr: MetricsAddr::Listen(args.metrics_addr),
        tracing: args.tracing.clone(),
        ..CommonConfig::default()
    };
    common.tracing.validate()?;
    let _telemetry = careline_kit::init_telemetry("careline", &common)?;
    let shutdown = Shutdown::on_signals();

    println!(
        "==> starting redis-server on 127.0.0.1:{} (data in {})",
        args.redis_port,
        args.data_dir.join("redis").display()
    );
    let redis = RedisServer::start_at(args.data_dir.join("redis"), args.redis_port).await?;
    println!(
        "==> starting nats-server (JetStream) on 127.0.0.1:{} (data in {})",
        args.nats_port,
        args.data_dir.join("nats").display()
    );
    let nats = NatsServer::start_at(args.data_dir.join("nats"), args.nats_port).await?;
    let nats_args = crate::config_cmd::NatsArgs {
        nats_url: common.nats_url.clone(),
        nats_replicas: common.nats_replicas,
        access: crate::config_cmd::NatsAccessArgs::default(),
    };
    for config in &tenants {
        let revision = crate::config_cmd::apply(&nats_args, config).await?;
        println!("==> applied tenant {} (revision {revision})", config.id);
    }
    if shutdown.is_triggered() {
        // Stopped while starting: the servers stop as they drop.
        println!("==> stopped before the services started");
        return Ok(());
    }

    let router_listener = bind(args.router_addr, "router").await?;
    let presence_listener = bind(args.presence_addr, "presence").await?;
    let notifications_listener = bind(args.notifications_addr, "notifications").await?;
    let email_listener = bind(args.email_addr, "email").await?;
    let smtp_listener = bind(args.smtp_addr, "smtp").await?;
    let smtp_addr = smtp_listener.local_addr()?;
    let chat_listener = bind(args.chat_addr, "chat").await?;
    let chat_http_listener = bind(args.chat_http_addr, "chat-http").await?;
    let chat_http_addr = chat_http_listener.local_addr()?;
    let survey_listener = bind(args.survey_addr, "survey").await?;
    let survey_http_listener = bind(args.survey_http_addr, "survey-http").await?;
    let survey_http_addr = survey_http_listener.local_addr()?;
    let console_listener = bind(args.console_addr, "console").await?;
    let console_http_listener = bind(args.console_http_addr, "console-http").await?;
    let console_http_addr = console_http_listener.local_addr()?;
    let campaigns_listener = bind(args.campaigns_addr, "campaigns").await?;
    let metrics_listener = bind(args.metrics_addr, "metrics").await?;
    let mut services = tokio::task::JoinSet::new();
    services.spawn(careline_router::serve(
        RouterConfig::with_common(common.clone()),
        router_listener,
        shutdown.clone(),
    ));
    services.spawn(careline_presence::serve(
        PresenceConfig::with_common(common.clone()),
        presence_listener,
        shutdown.clone(),
    ));
    let mut notifications = NotificationsConfig::with_common(common.clone());
    notifications.mail_dir = args.data_dir.join("mail");
    notifications.smtp_url = args.smtp_url.clone();
    let outbound = careline_notifications::Mailer::from_config(
        notifications.smtp_url.as_deref(),
        &notifications.mail_dir,
    )?
    .describe();
    services.spawn(careline_notifications::serve(
        notifications,
        notifications_listener,
        shutdown.clone(),
    ));
    let mut email_config = EmailIntakeConfig::with_common(common.clone());
    email_config.router_url = format!("http://{}", args.router_addr);
    email_config.router_api_keys = args.email_router_api_keys.clone();
    services.spawn(careline_email_intake::serve_with_smtp(
        email_config,
        email_listener,
        smtp_listener,
        shutdown.clone(),
    ));
    let mut chat_config = ChatGatewayConfig::with_common(common.clone());
    chat_config.router_url = format!("http://{}", args.router_addr);
    chat_config.router_api_keys = args.chat_router_api_keys.clone();
    // A closed widget offers call-backs to the demo tenant's call-back campaign.
    chat_config.campaigns_url = format!("http://{}", args.campaigns_addr);
    services.spawn(careline_chat_gateway::serve_with_http(
        chat_config,
        chat_listener,
        chat_http_listener,
        shutdown.clone(),
    ));
    let mut survey_config =
        SurveyConfig::with_common(common.clone(), args.survey_link_keys.clone());
    survey_config.public_url = format!("http://{survey_http_addr}");
    services.spawn(careline_survey_dispatcher::serve_with(
        survey_config,
        survey_listener,
        survey_http_listener,
        shutdown.clone(),
        careline_survey_dispatcher::system_clock(),
    ));
    let mut console_config = ConsoleConfig::with_common(common.clone());
    console_config.router_url = format!("http://{}", args.router_addr);
    console_config.router_api_keys = args.console_router_api_keys.clone();
    console_config.operator_token = args.console_operator_token.clone();
    services.spawn(careline_console::serve_with_http(
        console_config,
        console_listener,
        console_http_listener,
        shutdown.clone(),
    ));
    let mut campaigns_config = CampaignsConfig::with_common(common.clone());
    campaigns_config.router_url = format!("http://{}", args.router_addr);
    campaigns_config.router_api_keys = args.campaigns_router_api_keys.clone();
    services.spawn(careline_campaigns::serve(
        campaigns_config,
        campaigns_listener,
        shutdown.clone(),
    ));
    let metrics_stop = shutdown.wait();
    services.spawn(async move {
        careline_kit::metrics::serve_metrics(
            metrics_listener,
            careline_kit::Tls::default(),
            metrics_stop,
        )
        .await?;
        Ok(())
    });

    println!();
    println!("Careline is up. Endpoints:");
    println!(
        "  router    grpc://{}   (careline.v1.Router, health, reflection)",
        args.router_addr
    );
    println!(
        "  presence  grpc://{}   (careline.v1.Presence, health, reflection)",
        args.presence_addr
    );
    println!(
        "  notifications grpc://{}   (careline.v1.NotificationService, health, reflection)",
        args.notifications_addr
    );
    println!("  outbound mail: {outbound}");
    println!(
        "  email     grpc://{}   (careline.v1.EmailIntake, health, reflection)",
        args.email_addr
    );
    println!("  smtp      smtp://{smtp_addr}   (mail to members@demo-health.example)");
    println!(
        "  chat      grpc://{}   (careline.v1.ChatGateway: agents' ChatSession, GetTranscript)",
        args.chat_addr
    );
    println!(
        "  chat ws   ws://{chat_http_addr}/v1/chat/ws   (member WebSocket, docs/chat-protocol.md)"
    );
    println!("  chat demo http://{chat_http_addr}/demo   (the widget, demo tenant)");
    println!(
        "  survey    grpc://{}   (careline.v1.SurveyService, health, reflection)",
        args.survey_addr
    );
    println!(
        "  survey    http://{survey_http_addr}/s/<token>   (the page linked from survey emails)"
    );
    println!(
        "  console   grpc://{}   (careline.v1.Console: GetKpis, ScoreInteraction, MarkForCoaching; PlatformOverview)",
        args.console_addr
    );
    println!(
        "  floor     http://{console_http_addr}/floor   (supervisors' live floor view; sign in with the tenant API key)"
    );
    println!(
        "  campaigns grpc://{}   (careline.v1.CampaignService, health, reflection)",
        args.campaigns_addr
    );
    let operator_token = if args.console_operator_token == DEMO_OPERATOR_TOKEN {
        format!("demo token {DEMO_OPERATOR_TOKEN}")
    } else {
        "the token you set".to_owned()
    };
    println!(
        "  operator  http://{console_http_addr}/operator   (every tenant's volumes and rates; {operator_token})"
    );
    println!("  metrics   http://{}/metrics", args.metrics_addr);
    println!("  redis     {}", redis.url());
    println!("  nats      {}", nats.url());
    println!();
    println!("Try:  grpcurl -plaintext {} list", args.router_addr);
    println!(
        "      grpcurl -plaintext -H 'authorization: Bearer demo-health-key-0000000000000000' \\"
    );
    println!(
        "        -d '{{\"queue_id\":\"general\"}}' {} careline.v1.Router/GetQueueStats",
        args.router_addr
    );
    println!("Mail the demo tenant (see README, \"Email\"):");
    println!(
        "      printf 'Subject: Card\\r\\n\\r\\nWhere is my card?\\r\\n' | curl -s smtp://{smtp_addr} \\"
    );
    println!("        --mail-from pat@member.example --mail-rcpt members@demo-health.example -T -");
    println!("Press ctrl-c to stop.");

    let mut failure = None;
    while let Some(joined) = services.join_next().await {
        let result = joined.context("a service task panicked").and_then(|r| r);
        if let Err(error) = result {
            // One service failing stops the others: a half-running platform only confuses.
            shutdown.trigger();
            failure.get_or_insert(error);
        }
    }
    drop(nats);
    drop(redis);
    println!("==> stopped every service, nats-server and redis-server");
    failure.map_or(Ok(()), Err)
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("{what}: cannot listen on {addr} (in use? pass another address with --{what}-addr)")
    })
}
