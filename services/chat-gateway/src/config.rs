//! chat-gateway's configuration: the common service settings plus the HTTP
//! listener (member WebSocket, widget, demo page), the router it creates chat
//! interactions on, the router credentials of each tenant and the resume grace.

use std::net::SocketAddr;
use std::time::Duration;

use careline_kit::{CommonConfig, RouterKeys};

/// Default gRPC address of chat-gateway (agents' ChatSession, GetTranscript).
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50055";
/// Default HTTP address (member WebSocket, widget.js, demo page).
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8090";
/// Default router address.
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:50051";
/// Default email-intake address (the contact form hands submissions to it).
pub const DEFAULT_EMAIL_INTAKE_URL: &str = "http://127.0.0.1:50053";
/// Default time a member has to reconnect (`resume`) before the chat is abandoned.
pub const DEFAULT_RESUME_GRACE_SECS: u64 = 120;
/// Shortest resume grace accepted.
pub const MIN_RESUME_GRACE_SECS: u64 = 1;
/// Longest resume grace accepted.
pub const MAX_RESUME_GRACE_SECS: u64 = 3600;

/// `careline-chat-gateway` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-chat-gateway",
    about = "Careline chat gateway: member WebSocket and widget, agent chat over gRPC"
)]
pub struct ChatGatewayConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address (ChatSession, GetTranscript).
    #[arg(long, env = "CARELINE_CHAT_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// HTTP listen address (member WebSocket /v1/chat/ws, /widget.js, /demo).
    #[arg(long, env = "CARELINE_CHAT_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// The router's gRPC URL.
    #[arg(long, env = "CARELINE_ROUTER_URL", default_value = DEFAULT_ROUTER_URL)]
    pub router_url: String,
    /// The API key chat-gateway presents to the router for each tenant, as
    /// `tenant=key,tenant=key` (one of the keys in the tenant's `api_keys`).
    #[arg(
        long,
        env = "CARELINE_CHAT_ROUTER_API_KEYS",
        default_value = "",
        hide_env_values = true
    )]
    pub router_api_keys: RouterKeys,
    /// email-intake's gRPC URL: contact forms become email interactions through IngestEmail
    /// (with the tenant's key from `--router-api-keys`).
    #[arg(long, env = "CARELINE_EMAIL_INTAKE_URL", default_value = DEFAULT_EMAIL_INTAKE_URL)]
    pub email_intake_url: String,
    /// campaigns' gRPC URL: a closed widget offers a call-back (RequestCallback, with the
    /// tenant's key from `--router-api-keys`) to tenants with a call-back campaign. Empty:
    /// no call-backs are offered.
    #[arg(long, env = "CARELINE_CAMPAIGNS_URL", default_value = "")]
    pub campaigns_url: String,
    /// Seconds a member has to reconnect before the chat is abandoned.
    #[arg(long, env = "CARELINE_CHAT_RESUME_GRACE_SECS", default_value_t = DEFAULT_RESUME_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(MIN_RESUME_GRACE_SECS..=MAX_RESUME_GRACE_SECS))]
    pub resume_grace_secs: u64,
}

impl ChatGatewayConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default address"),
            router_url: DEFAULT_ROUTER_URL.to_owned(),
            router_api_keys: RouterKeys::default(),
            email_intake_url: DEFAULT_EMAIL_INTAKE_URL.to_owned(),
            campaigns_url: String::new(),
            resume_grace_secs: DEFAULT_RESUME_GRACE_SECS,
        }
    }

    /// The resume grace period.
    pub fn resume_grace(&self) -> Duration {
        Duration::from_secs(self.resume_grace_secs)
    }
}

impl careline_kit::service::ServiceConfig for ChatGatewayConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
