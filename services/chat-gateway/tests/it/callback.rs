//! Call-backs from the closed widget on real peers: Redis, NATS, a router, campaigns and a
//! gateway. A request over HTTP becomes a target of the tenant's call-back campaign (once per
//! number), the member's chat says it is offered, and bad input gets a clear 4xx naming the
//! field; a gateway without campaigns offers none.

use std::net::SocketAddr;

use careline_campaigns::CampaignsConfig;
use careline_domain::TenantConfig;
use careline_kit::Shutdown;
use careline_proto::v1;
use careline_proto::v1::campaign_service_client::CampaignServiceClient;
use careline_testkit::Bearer;
use careline_testkit::demo::{API_KEY as DEMO_KEY, WIDGET_KEY};
use careline_testkit::http::http;
use serde_json::json;
use tonic::transport::Channel;

use crate::contact::close_demo;
use careline_chat_gateway::protocol::ServerFrame;

use crate::harness::{DEMO_ORIGIN, Gateway, MemberSocket, Platform, common, demo_router_keys};

/// The demo tenant's call-back campaign.
const CALLBACKS: &str = "callbacks";

/// A platform whose demo tenant is closed today, campaigns, and a gateway offering call-backs.
pub struct CallbackPlatform {
    _platform: Platform,
    pub gateway: Gateway,
    campaigns: SocketAddr,
    _campaigns: (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>),
}

impl CallbackPlatform {
    /// With the closed demo tenant changed by `configure` first.
    pub async fn start_with(configure: impl FnOnce(&mut TenantConfig)) -> CallbackPlatform {
        let platform = Platform::start().await;
        close_demo(&platform, configure).await;
        let mut config = CampaignsConfig::with_common(common(&platform.sandbox));
        config.router_url = format!("http://{}", platform.router_addr);
        config.router_api_keys = demo_router_keys();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let campaigns = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(careline_campaigns::serve(
            config,
            listener,
            shutdown.clone(),
        ));
        let gateway = platform
            .gateway_with(|config| config.campaigns_url = format!("http://{campaigns}"))
            .await;
        let env = CallbackPlatform {
            _platform: platform,
            gateway,
            campaigns,
            _campaigns: (shutdown, task),
        };
        careline_testkit::assert_eventually!(
            env.stats().await.is_ok(),
            "campaigns serves the demo tenant"
        );
        env
    }

    /// The demo tenant's call-back campaign figures.
    pub async fn stats(&self) -> Result<v1::GetCampaignStatsResponse, tonic::Status> {
        let channel = Channel::from_shared(format!("http://{}", self.campaigns))
            .unwrap()
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        CampaignServiceClient::with_interceptor(channel, Bearer::new(DEMO_KEY))
            .get_campaign_stats(v1::GetCampaignStatsRequest {
                campaign_code: CALLBACKS.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Waits until the call-back campaign has `count` targets.
    pub async fn wait_for_targets(&self, count: u32) {
        careline_testkit::assert_eventually!(
            self.stats().await.is_ok_and(|s| s.targets == count),
            "{count} call-back targets"
        );
    }
}

/// Whether the member's `after_hours` frame offers a call-back.
async fn offered(member: &mut MemberSocket) -> bool {
    member
        .until(|frame| match frame {
            ServerFrame::AfterHours { callback, .. } => Some(*callback),
            _ => None,
        })
        .await
}

async fn post_callback(
    addr: SocketAddr,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let (status, _, body) = http(
        addr,
        "POST",
        "/v1/callback",
        &[("Content-Type", content_type), ("Origin", DEMO_ORIGIN)],
        body,
    )
    .await;
    (status, serde_json::from_str(&body).expect("a JSON answer"))
}

async fn request(addr: SocketAddr, body: serde_json::Value) -> (u16, serde_json::Value) {
    post_callback(addr, "application/json", &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_back_asked_for_on_the_closed_widget_becomes_a_target_of_the_call_back_campaign() {
    let env = CallbackPlatform::start_with(|_| {}).await;
    // The member's chat says the tenant is closed and a call-back may be asked for.
    let mut member = env.gateway.member().await;
    member.start("en", "I need help with my bill").await;
    assert!(
        offered(&mut member).await,
        "the closed widget offers a call-back"
    );

    let http = env.gateway.http;
    let (status, answer) = request(
        http,
        json!({"key": WIDGET_KEY, "language": "es", "phone": "+1 (555) 010-1234"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "accepted");
    env.wait_for_targets(1).await;
    let stats = env.stats().await.unwrap();
    assert_eq!(stats.due, 1, "waiting for the outreach hours: {stats:?}");

    // The same number again, written differently: still one call-back.
    let (status, _) = request(
        http,
        json!({"key": WIDGET_KEY, "language": "es", "phone": "+1 555 010 1234"}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(env.stats().await.unwrap().targets, 1);

    for (body, want, field, says) in [
        (
            json!({"key": WIDGET_KEY, "phone": ""}),
            400,
            Some("phone"),
            "phone number we should call",
        ),
        (
            json!({"key": WIDGET_KEY, "phone": "5".repeat(40)}),
            400,
            Some("phone"),
            "7 to 15 digits",
        ),
        (
            json!({"key": WIDGET_KEY, "phone": "call me maybe"}),
            400,
            Some("phone"),
            "7 to 15 digits",
        ),
        (
            json!({"key": WIDGET_KEY, "language": "fr", "phone": "+15550101234"}),
            400,
            Some("language"),
            "\"en\" or \"es\"",
        ),
        (
            json!({"key": "nobody", "phone": "+15550101234"}),
            404,
            Some("key"),
            "unknown key",
        ),
    ] {
        let (status, answer) = request(http, body.clone()).await;
        assert_eq!(status, want, "{body} -> {answer}");
        assert_eq!(answer["field"].as_str(), field, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    let (status, answer) = post_callback(http, "text/plain", "phone=5550101234").await;
    assert_eq!(status, 415, "{answer}");
    assert_eq!(
        env.stats().await.unwrap().targets,
        1,
        "bad requests added nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_campaigns_offers_no_call_back() {
    let platform = Platform::start().await;
    close_demo(&platform, |_| {}).await;
    let gateway = platform.gateway().await;
    let mut member = gateway.member().await;
    member.start("en", "I need help with my bill").await;
    assert!(!offered(&mut member).await);
    let (status, answer) = request(
        gateway.http,
        json!({"key": WIDGET_KEY, "phone": "+15550101234"}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"], "callback_not_offered");
}
