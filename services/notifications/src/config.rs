//! The notifications service's configuration: the common service settings
//! plus where mail goes (an SMTP relay, or a local directory) and how failed
//! sends are retried.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use careline_kit::CommonConfig;

use crate::retry::RetryPolicy;

/// Default gRPC address of the notifications service.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50054";
/// Default directory for mail when no SMTP relay is configured.
pub const DEFAULT_MAIL_DIR: &str = "careline-data/mail";
/// Default delay before the first retry of a temporary failure.
pub const DEFAULT_RETRY_BASE_MS: u64 = 2_000;
/// Default longest delay between two attempts.
pub const DEFAULT_RETRY_MAX_MS: u64 = 600_000;
/// Default attempts before a temporarily failing email is dead-lettered
/// (with the default delays: about 40 minutes of trying).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
/// Default emails one replica sends at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most attempts that may be configured.
pub const MAX_ATTEMPTS_LIMIT: u32 = 50;
/// Most emails one replica may send at once.
pub const MAX_CONCURRENCY: usize = 256;

/// `careline-notifications` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-notifications",
    about = "Careline notifications: sends member emails from the bus (gRPC: dead letters)"
)]
pub struct NotificationsConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address.
    #[arg(long, env = "CARELINE_NOTIFICATIONS_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// SMTP relay, e.g. smtp://user:password@mail.example:587?tls=required
    /// (STARTTLS), smtps://user:password@mail.example:465 (TLS), or
    /// smtp://127.0.0.1:2525 (plain, local only). Unset: mail is written to
    /// --mail-dir instead of being sent.
    #[arg(long, env = "CARELINE_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Where mail is written, one .eml file per email, when no SMTP relay is set.
    #[arg(long, env = "CARELINE_MAIL_DIR", default_value = DEFAULT_MAIL_DIR)]
    pub mail_dir: PathBuf,
    /// Delay before the first retry of a temporary failure (milliseconds, 10-3600000).
    #[arg(long, env = "CARELINE_NOTIFY_RETRY_BASE_MS", default_value_t = DEFAULT_RETRY_BASE_MS,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub retry_base_ms: u64,
    /// Longest delay between two attempts (milliseconds, 10-86400000).
    #[arg(long, env = "CARELINE_NOTIFY_RETRY_MAX_MS", default_value_t = DEFAULT_RETRY_MAX_MS,
          value_parser = clap::value_parser!(u64).range(10..=86_400_000))]
    pub retry_max_ms: u64,
    /// Attempts before a temporarily failing email is dead-lettered (1-50).
    #[arg(long, env = "CARELINE_NOTIFY_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ATTEMPTS_LIMIT as i64))]
    pub max_attempts: u32,
    /// Emails this replica sends at once (1-256).
    #[arg(long, env = "CARELINE_NOTIFY_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = parse_concurrency)]
    pub concurrency: usize,
}

/// `--concurrency`: 1 to [`MAX_CONCURRENCY`].
fn parse_concurrency(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a number from 1 to {MAX_CONCURRENCY}"
        )),
    }
}

impl NotificationsConfig {
    /// Defaults, as when no flag or variable is set.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            smtp_url: None,
            mail_dir: PathBuf::from(DEFAULT_MAIL_DIR),
            retry_base_ms: DEFAULT_RETRY_BASE_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// How temporary failures are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(self.retry_base_ms),
            max: Duration::from_millis(self.retry_max_ms.max(self.retry_base_ms)),
            max_attempts: self.max_attempts,
        }
    }
}

impl careline_kit::service::ServiceConfig for NotificationsConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
