//! The campaigns service's configuration: the common service settings plus
//! its gRPC address, the router it creates outbound interactions on and the
//! router API key of each tenant.

use std::net::SocketAddr;

use careline_kit::{CommonConfig, RouterKeys};

/// Default gRPC address of the campaigns service.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50058";
/// Default router address.
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:50051";

/// `careline-campaigns` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-campaigns",
    about = "Careline campaigns: outbound and proactive outreach (gRPC)"
)]
pub struct CampaignsConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address.
    #[arg(long, env = "CARELINE_CAMPAIGNS_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// The router's gRPC URL (outbound voice contacts are its interactions).
    #[arg(long, env = "CARELINE_ROUTER_URL", default_value = DEFAULT_ROUTER_URL)]
    pub router_url: String,
    /// The API key (scopes `intake` and `supervisor`) the service presents to
    /// the router per tenant: `tenant=key,tenant=key`.
    #[arg(
        long,
        env = "CARELINE_CAMPAIGNS_ROUTER_API_KEYS",
        default_value = "",
        hide_env_values = true
    )]
    pub router_api_keys: RouterKeys,
}

impl CampaignsConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            router_url: DEFAULT_ROUTER_URL.to_owned(),
            router_api_keys: RouterKeys::default(),
        }
    }
}

impl careline_kit::service::ServiceConfig for CampaignsConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
