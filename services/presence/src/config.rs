//! The presence service's configuration: the common service settings plus its own.

use std::net::SocketAddr;

use careline_kit::CommonConfig;

/// Default gRPC address of the presence service.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50052";

/// `careline-presence` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-presence",
    about = "Careline presence: agent sessions, states, heartbeats and offers (gRPC)"
)]
pub struct PresenceConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address.
    #[arg(long, env = "CARELINE_PRESENCE_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// Agent sessions one replica holds at most; one more is refused UNAVAILABLE so the
    /// desktop reconnects (and a load balancer sends it elsewhere).
    #[arg(long, env = "CARELINE_PRESENCE_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,
}

/// Default agent sessions per replica: a large tenant's floor (7,500 agents) fits on one.
pub const DEFAULT_MAX_SESSIONS: u32 = 10_000;

impl PresenceConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

impl careline_kit::service::ServiceConfig for PresenceConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
