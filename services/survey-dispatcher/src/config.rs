//! The survey-dispatcher's configuration: the common service settings plus
//! its HTTP page address, the public URL of survey links and the keys that
//! sign them.

use std::net::SocketAddr;

use careline_kit::CommonConfig;

use crate::token::LinkKeys;

/// Default gRPC address of the survey-dispatcher.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50056";
/// Default HTTP address of the survey page.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8091";
/// Default start of survey links (the page as `careline up` serves it).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8091";
/// Default resolved events handled at once per replica.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Most resolved events one replica may handle at once.
pub const MAX_CONCURRENCY: usize = 256;

/// `careline-survey-dispatcher` flags and environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "careline-survey-dispatcher",
    about = "Careline surveys: post-resolution survey emails, the survey page, NPS scores (gRPC)"
)]
pub struct SurveyConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// gRPC listen address.
    #[arg(long, env = "CARELINE_SURVEY_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// HTTP listen address of the survey page.
    #[arg(long, env = "CARELINE_SURVEY_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Where members reach the survey page; links are <public-url>/s/<token>.
    #[arg(long, env = "CARELINE_SURVEY_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,
    /// Keys signing survey links, comma-separated, newest first: the newest
    /// signs, every one verifies (rotate by prepending a key from `careline
    /// key new`, drop the oldest once its links expired).
    #[arg(long, env = "CARELINE_SURVEY_LINK_KEYS", hide_env_values = true)]
    pub link_keys: LinkKeys,
    /// Resolved events handled at once (1-256).
    #[arg(long, env = "CARELINE_SURVEY_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY,
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

impl SurveyConfig {
    /// Defaults, as when no flag or variable is set, with `link_keys`.
    pub fn with_common(common: CommonConfig, link_keys: LinkKeys) -> Self {
        Self {
            common,
            listen_addr: DEFAULT_LISTEN_ADDR.parse().expect("valid default address"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default address"),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            link_keys,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// `public_url` without a trailing slash, checked to be http(s).
    pub fn link_base(&self) -> Result<String, crate::SurveyError> {
        let url = self.public_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            return Err(crate::SurveyError::Config(format!(
                "--public-url / CARELINE_SURVEY_PUBLIC_URL {url:?} is not an http(s) URL, e.g. https://surveys.example.org"
            )));
        }
        Ok(url.to_owned())
    }
}

impl careline_kit::service::ServiceConfig for SurveyConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}
