//! Where emails go: an SMTP relay (production: STARTTLS or TLS, with
//! credentials), or a directory of `.eml` files (local use: no mail server
//! needed, and a person can open what was "sent"). Every send ends in one of
//! three [`SendOutcome`]s the worker acts on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::NotificationError;

/// Longest one SMTP command may wait for the server's reply.
pub const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest one whole send (connect, TLS, auth, DATA) may take. Shorter than
/// the claim's lifetime and JetStream's ack wait, so a replica that is still
/// sending keeps both.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// How one send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted (250) or written.
    Sent,
    /// Worth another try later: 4xx, connection or TLS trouble, a timeout.
    Transient {
        /// The SMTP reply code, 0 when there was none.
        code: u16,
        /// A short reason, without addresses.
        reason: String,
    },
    /// Refused for good (5xx).
    Refused {
        /// The SMTP reply code.
        code: u16,
    },
}

/// The configured way of sending.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP relay.
    Relay {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Host and port, for the start-up line (never the credentials).
        server: String,
    },
    /// One `.eml` file per email in `dir`.
    Directory {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Mailer {
    /// The relay at `smtp_url` if given, else the directory `mail_dir` (created if missing).
    pub fn from_config(
        smtp_url: Option<&str>,
        mail_dir: &Path,
    ) -> Result<Mailer, NotificationError> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|error| {
                        NotificationError::Config(format!(
                            "CARELINE_SMTP_URL (--smtp-url) is not a usable SMTP URL ({error}); \
                             use smtp://user:password@host:587?tls=required, smtps://user:password@host:465 \
                             or smtp://host:port"
                        ))
                    })?
                    .timeout(Some(SMTP_COMMAND_TIMEOUT))
                    .build();
                Ok(Mailer::Relay {
                    server: server_of(url),
                    transport,
                })
            }
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|error| {
                    NotificationError::Config(format!(
                        "cannot create the mail directory {} (CARELINE_MAIL_DIR / --mail-dir): {error}",
                        mail_dir.display()
                    ))
                })?;
                let dir = std::path::absolute(mail_dir).unwrap_or_else(|_| mail_dir.to_owned());
                Ok(Mailer::Directory {
                    transport: AsyncFileTransport::new(&dir),
                    dir,
                })
            }
        }
    }

    /// One line saying where mail goes, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Relay { server, .. } => format!("SMTP relay {server}"),
            Mailer::Directory { dir, .. } => {
                format!(
                    "no SMTP relay set: emails are written to {} (one .eml file each)",
                    dir.display()
                )
            }
        }
    }

    /// Sends `message` once.
    pub async fn send(&self, message: &Message) -> SendOutcome {
        let sent = match self {
            Mailer::Relay { transport, .. } => {
                tokio::time::timeout(SEND_TIMEOUT, transport.send(message.clone()))
                    .await
                    .map(|result| result.map(drop).map_err(|error| classify(&error)))
            }
            Mailer::Directory { transport, .. } => {
                tokio::time::timeout(SEND_TIMEOUT, transport.send(message.clone()))
                    .await
                    .map(|result| {
                        result.map(drop).map_err(|error| SendOutcome::Transient {
                            code: 0,
                            reason: format!("writing the mail file failed: {error}"),
                        })
                    })
            }
        };
        match sent {
            Ok(Ok(())) => SendOutcome::Sent,
            Ok(Err(outcome)) => outcome,
            Err(_) => SendOutcome::Transient {
                code: 0,
                reason: format!("no answer within {} s", SEND_TIMEOUT.as_secs()),
            },
        }
    }
}

/// 5xx is final; anything else (4xx, connection, TLS, timeout) may pass later.
fn classify(error: &SmtpError) -> SendOutcome {
    let code = error.status().map_or(0, u16::from);
    if error.is_permanent() {
        return SendOutcome::Refused { code };
    }
    let reason = if error.is_transient() {
        "smtp_transient"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_tls() {
        "tls"
    } else {
        "connection"
    };
    SendOutcome::Transient {
        code,
        reason: reason.to_owned(),
    }
}

/// `host:port` of an SMTP URL, without scheme, credentials or parameters.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split(['/', '?']).next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_never_shows_smtp_credentials() {
        assert_eq!(
            server_of("smtps://user:s3cret@mail.example:465/ehlo?tls=required"),
            "mail.example:465"
        );
        assert_eq!(server_of("smtp://127.0.0.1:2525"), "127.0.0.1:2525");
    }

    #[test]
    fn a_bad_smtp_url_names_the_setting() {
        let error = Mailer::from_config(Some("http://x"), Path::new("unused")).unwrap_err();
        assert!(error.to_string().contains("CARELINE_SMTP_URL"), "{error}");
    }
}
