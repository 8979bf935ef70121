//! How a service connects to NATS: the TLS files of [`crate::tls`] and the credentials file,
//! in one place so no service builds its own connect options.
//!
//! `tls://` servers require TLS; the CA file (`--tls-ca`) verifies them and this service's
//! certificate (`--tls-cert`) is presented when the server verifies clients. A user and
//! password or a token travel in the URL (`nats://user:password@host:4222`,
//! `nats://token@host:4222`; async-nats itself ignores them there, so they are read here); a
//! credentials file (`--nats-creds`) carries a JWT and nkey seed.

use std::path::Path;

use async_nats::ConnectOptions;

use crate::config::ENV_NATS_CREDS;
use crate::{CommonConfig, KitError, TlsConfig};

/// A client of `common`'s NATS servers, with its TLS files and credentials.
pub async fn connect(common: &CommonConfig) -> Result<async_nats::Client, KitError> {
    options(common)
        .await?
        .connect(careline_bus::server_list(&common.nats_url))
        .await
        .map_err(|e| KitError::NatsUnreachable(e.to_string()))
}

/// Connect options with `common`'s TLS files and credentials; connect with
/// `options.connect(careline_bus::server_list(&common.nats_url))`.
pub async fn options(common: &CommonConfig) -> Result<ConnectOptions, KitError> {
    options_from(&common.nats_url, &common.tls, common.nats_creds.as_deref()).await
}

/// Connect options for the servers of `nats_url` with the TLS files of `tls` and the
/// credentials file `creds` (for the CLI, which has no [`CommonConfig`]).
pub async fn options_from(
    nats_url: &str,
    tls: &TlsConfig,
    creds: Option<&Path>,
) -> Result<ConnectOptions, KitError> {
    let mut options = tls.load()?.nats_options(ConnectOptions::new());
    options = match url_credentials(nats_url) {
        Some(UrlCredentials::UserPassword(user, password)) => {
            options.user_and_password(user, password)
        }
        Some(UrlCredentials::Token(token)) => options.token(token),
        None => options,
    };
    if let Some(creds) = creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            KitError::config(
                ENV_NATS_CREDS,
                "nats-creds",
                format!("{} is not a NATS credentials file: {e}", creds.display()),
            )
        })?;
    }
    Ok(options)
}

/// Credentials written in a server URL.
#[derive(Debug, PartialEq, Eq)]
enum UrlCredentials {
    UserPassword(String, String),
    Token(String),
}

/// The credentials of the first server of `nats_url` that has some, percent-decoded.
fn url_credentials(nats_url: &str) -> Option<UrlCredentials> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    careline_bus::server_list(nats_url)
        .iter()
        .find_map(|server| {
            let addr: async_nats::ServerAddr = server.parse().ok()?;
            let user = decode(addr.username()?);
            Some(match addr.password() {
                Some(password) => UrlCredentials::UserPassword(user, decode(password)),
                None => UrlCredentials::Token(user),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_first_server_url_that_has_them() {
        let cases = [
            ("nats://127.0.0.1:4222", None),
            (
                "nats://a:4222, tls://care%40line:p%3Ass@b:4222",
                Some(UrlCredentials::UserPassword(
                    "care@line".into(),
                    "p:ss".into(),
                )),
            ),
            (
                "nats://s3cr3t-token@a:4222",
                Some(UrlCredentials::Token("s3cr3t-token".into())),
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(url_credentials(url), expected, "{url}");
        }
    }
}
