//! The SMTP listener: accepts connections, speaks the protocol of
//! [`session`], upgrades to TLS on STARTTLS, reads each message and answers
//! 250 only after [`Inbox::accept`] made it durable (451 when it could not, so
//! the sender retries).
//!
//! - [`session`]: the command state machine, without I/O.
//! - [`data`]: reading one message after DATA (dot-unstuffing, size limit).
//! - [`tls`]: the STARTTLS certificate.

pub mod data;
pub mod session;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use careline_bus::TenantDirectory;
use careline_kit::Shutdown;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::inbox::{Arrival, Inbox, Via};
use data::{DataOutcome, read_data};
use session::{Next, Recipients, Reply, Session};

/// Connections served at once; more are answered 421 and closed.
pub const MAX_CONNECTIONS: usize = 512;
/// How long the server waits for a command (RFC 5321 4.5.3.2.7: at least 5 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long the server waits for the next part of a message (RFC 5321 4.5.3.2.6: 3 minutes).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// Bytes of an over-long command line read (and dropped) before the connection is closed.
const MAX_DISCARDED_LINE: usize = 64 * 1024;

/// What every connection shares.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Name in the greeting.
    pub hostname: String,
    /// Largest message accepted (SIZE), in bytes.
    pub max_message_bytes: usize,
    /// STARTTLS is offered when set.
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Recipients are the inbound addresses of the tenants in the live directory.
struct DirectoryRecipients(Arc<TenantDirectory>);

impl Recipients for DirectoryRecipients {
    fn tenant_for(&self, address: &str) -> Option<String> {
        self.0
            .tenant_ids()
            .into_iter()
            .find(|id| self.0.get(id).is_some_and(|t| t.receives_email_at(address)))
    }
}

/// Serves SMTP on `listener` until `shutdown`, then waits for the connections
/// to finish the message they are on.
pub async fn serve(
    listener: TcpListener,
    settings: SmtpSettings,
    inbox: Inbox,
    tenants: Arc<TenantDirectory>,
    shutdown: Shutdown,
) {
    let settings = Arc::new(settings);
    let recipients = Arc::new(DirectoryRecipients(tenants));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting an SMTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("careline_email_smtp_connections_refused_total").increment(1);
            connections.spawn(refuse_busy(stream));
            continue;
        };
        let connection = Connection {
            settings: settings.clone(),
            inbox: inbox.clone(),
            recipients: recipients.clone(),
            shutdown: shutdown.clone(),
        };
        connections.spawn(async move {
            if let Err(error) = connection.run(stream).await {
                tracing::debug!(%error, "SMTP connection ended with an error");
            }
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
}

async fn refuse_busy(mut stream: TcpStream) {
    let reply = Reply::new(421, "4.3.2 Too many connections; try again later");
    let _ = stream.write_all(&reply.to_wire()).await;
}

/// A byte stream that is plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Connection {
    settings: Arc<SmtpSettings>,
    inbox: Inbox,
    recipients: Arc<DirectoryRecipients>,
    shutdown: Shutdown,
}

/// One command line read from the client.
enum Line {
    Complete(Vec<u8>),
    TooLong,
    Closed,
}

impl Connection {
    async fn run(self, stream: TcpStream) -> std::io::Result<()> {
        let mut session = Session::new(
            &self.settings.hostname,
            self.settings.max_message_bytes,
            self.settings.tls.is_some(),
        );
        let mut io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(stream));
        send(&mut io, &session.greeting()).await?;
        loop {
            let line = tokio::select! {
                _ = self.shutdown.wait() => {
                    send(&mut io, &Reply::new(421, "4.3.2 Shutting down; try again later")).await?;
                    return Ok(());
                }
                line = tokio::time::timeout(COMMAND_TIMEOUT, read_command(&mut io)) => match line {
                    Ok(line) => line?,
                    Err(_) => {
                        send(&mut io, &Reply::new(421, "4.4.2 Timeout waiting for a command")).await?;
                        return Ok(());
                    }
                },
            };
            let next = match line {
                Line::Complete(line) => session.command(&line, self.recipients.as_ref()),
                Line::TooLong => session.line_too_long(),
                Line::Closed => return Ok(()),
            };
            match next {
                Next::Reply(reply) => send(&mut io, &reply).await?,
                Next::Close(reply) => return send(&mut io, &reply).await,
                Next::StartTls(reply) => {
                    send(&mut io, &reply).await?;
                    io = self.start_tls(io).await?;
                    session.tls_started();
                }
                Next::Data(reply) => {
                    send(&mut io, &reply).await?;
                    let reply = self.receive(&mut io, &mut session).await?;
                    send(&mut io, &reply).await?;
                }
            }
        }
    }

    async fn start_tls(
        &self,
        io: BufReader<Box<dyn Io>>,
    ) -> std::io::Result<BufReader<Box<dyn Io>>> {
        let acceptor = self
            .settings
            .tls
            .clone()
            .expect("the session offers STARTTLS only with a certificate");
        // Commands pipelined after STARTTLS were sent in the clear and must not
        // count as sent over TLS (CVE-2011-0411): they are dropped with the buffer.
        let tls = acceptor.accept(io.into_inner()).await?;
        Ok(BufReader::new(Box::new(tls)))
    }

    /// Reads the message after DATA and answers for it.
    async fn receive(
        &self,
        io: &mut BufReader<Box<dyn Io>>,
        session: &mut Session,
    ) -> std::io::Result<Reply> {
        let outcome = read_data(io, self.settings.max_message_bytes, DATA_TIMEOUT).await?;
        let envelope = session
            .take_envelope()
            .expect("DATA is accepted only with a tenant's recipient");
        let raw = match outcome {
            DataOutcome::Message(raw) => raw,
            DataOutcome::TooBig => {
                metrics::counter!("careline_email_smtp_messages_total", "result" => "too_big")
                    .increment(1);
                return Ok(Reply::new(
                    552,
                    format!(
                        "5.3.4 Message too big: the limit is {} bytes",
                        self.settings.max_message_bytes
                    ),
                ));
            }
        };
        match self
            .inbox
            .accept(
                &envelope.tenant,
                raw,
                Arrival {
                    via: Via::Smtp,
                    recipients: envelope.recipients,
                    mail_from: Some(envelope.mail_from),
                },
            )
            .await
        {
            Ok(accepted) => {
                metrics::counter!("careline_email_smtp_messages_total", "result" => "accepted")
                    .increment(1);
                Ok(Reply::new(
                    250,
                    format!("2.0.0 Queued as {}", accepted.short_id()),
                ))
            }
            Err(error) => {
                metrics::counter!("careline_email_smtp_messages_total", "result" => "deferred")
                    .increment(1);
                tracing::warn!(tenant = %envelope.tenant, %error, "message not made durable; sender told to retry");
                Ok(Reply::new(
                    451,
                    "4.3.0 Could not store the message; try again later",
                ))
            }
        }
    }
}

async fn send(io: &mut BufReader<Box<dyn Io>>, reply: &Reply) -> std::io::Result<()> {
    let stream = io.get_mut();
    stream.write_all(&reply.to_wire()).await?;
    stream.flush().await
}

/// Reads one command line (without CRLF or a bare LF); a line longer than
/// [`session::MAX_COMMAND_LINE`] is read to its end and reported as too long.
async fn read_command(io: &mut BufReader<Box<dyn Io>>) -> std::io::Result<Line> {
    let mut line = Vec::with_capacity(128);
    let limit = session::MAX_COMMAND_LINE as u64;
    let read = (&mut *io).take(limit).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(Line::Closed);
    }
    if line.last() != Some(&b'\n') {
        if read < session::MAX_COMMAND_LINE {
            // The client closed the connection in the middle of a line.
            return Ok(Line::Closed);
        }
        let mut rest = Vec::new();
        let read = (&mut *io)
            .take(MAX_DISCARDED_LINE as u64)
            .read_until(b'\n', &mut rest)
            .await?;
        if read == 0 || rest.last() != Some(&b'\n') {
            return Ok(Line::Closed);
        }
        return Ok(Line::TooLong);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Line::Complete(line))
}
