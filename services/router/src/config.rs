//! The router's configuration: the common service settings plus its own.

use std::net::SocketAddr;
use std::time::Duration;

use careline_kit::CommonConfig;

/// Default gRPC address of the router.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Default refresh period of WatchQueueStats.
pub const DEFAULT_STATS_INTERVAL_MS: u64 = 1000;

/// Default supervisor streams per replica: dashboards of a few hundred supervisors.
pub const DEFAULT_MAX_SUPERVISOR_STREAMS: u32 = 1_000;

/// `careline-router` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-router",
    about = "Careline router: interactions, queues, offers, transfers (gRPC)"
)]
pub struct RouterConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address.
    #[arg(long, env = "CARELINE_ROUTER_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// How often WatchQueueStats re-reads the stats (milliseconds, 100-60000).
    #[arg(long, env = "CARELINE_STATS_INTERVAL_MS", default_value_t = DEFAULT_STATS_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub stats_interval_ms: u64,
    /// WatchQueueStats and WatchInteractions streams one replica serves at once, all
    /// tenants together; one more is refused RESOURCE_EXHAUSTED.
    #[arg(long, env = "CARELINE_ROUTER_MAX_SUPERVISOR_STREAMS", default_value_t = DEFAULT_MAX_SUPERVISOR_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_supervisor_streams: u32,
}

impl RouterConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            stats_interval_ms: DEFAULT_STATS_INTERVAL_MS,
            max_supervisor_streams: DEFAULT_MAX_SUPERVISOR_STREAMS,
        }
    }

    /// WatchQueueStats period.
    pub fn stats_interval(&self) -> Duration {
        Duration::from_millis(self.stats_interval_ms)
    }
}

impl careline_kit::service::ServiceConfig for RouterConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
