//! [`SmtpSink`]: a real SMTP server on a free loopback port that records what
//! it accepts, for tests of services that send mail. It speaks enough of
//! RFC 5321 for any client (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing,
//! RSET, NOOP, QUIT), can answer the next messages with scripted codes (a 451
//! then a 250, or a 550), and can be stopped and restarted on the same port
//! (connections included) to play a relay outage.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Longest command or data line accepted (RFC 5321 allows 1000 with CRLF).
pub const MAX_LINE_BYTES: usize = 4096;
/// Largest message accepted; bigger ones are answered 552.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// One message the sink accepted with 250.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (MAIL FROM), without angle brackets.
    pub mail_from: String,
    /// The envelope recipients (RCPT TO), without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header `name` (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
            }
        }
        found
    }
}

impl ReceivedMail {
    /// The message with quoted-printable undone (soft line breaks joined,
    /// `=XX` decoded), so tests can look for the words as written.
    pub fn decoded(&self) -> String {
        let bytes = self.data.replace("=\r\n", "").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct SinkState {
    received: Vec<ReceivedMail>,
    /// Replies to the next messages' final dot, in order; 250 once empty.
    scripted: VecDeque<u16>,
    /// Messages answered so far (accepted or not).
    answered: usize,
}

/// A running SMTP sink; stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<SinkState>>,
    server: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the SMTP sink")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(SinkState::default()));
        let server = Some(tokio::spawn(serve(listener, state.clone())));
        Ok(SmtpSink {
            addr,
            state,
            server,
        })
    }

    /// `smtp://127.0.0.1:PORT` (plain SMTP, what `--smtp-url` takes).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state().received.clone()
    }

    /// Messages answered so far, accepted or refused.
    pub fn answered(&self) -> usize {
        self.state().answered
    }

    /// Answers the next messages' data with these codes, in order (e.g.
    /// `[451]` for one temporary failure, `[550]` for a permanent one);
    /// 250 after that.
    pub fn reply_next(&self, codes: impl IntoIterator<Item = u16>) {
        self.state().scripted.extend(codes);
    }

    /// Closes the port and every open connection: the relay is down.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("re-binding the SMTP sink on {}", self.addr))?;
        self.server = Some(tokio::spawn(serve(listener, self.state.clone())));
        Ok(())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections until aborted; aborting drops the set, which aborts
/// every connection too.
async fn serve(listener: TcpListener, state: Arc<Mutex<SinkState>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(session(stream, state.clone()));
                }
                Err(_) => return,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The envelope of the message being received.
#[derive(Default)]
struct Envelope {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

fn path_of(argument: &str) -> String {
    argument
        .split_once(':')
        .map_or("", |(_, path)| path)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches(['<', '>'])
        .to_owned()
}

async fn session(stream: TcpStream, state: Arc<Mutex<SinkState>>) {
    // Any I/O error ends the session, as a real server's would.
    let _ = converse(stream, state).await;
}

async fn converse(stream: TcpStream, state: Arc<Mutex<SinkState>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 careline-testkit SMTP sink ready\r\n")
        .await?;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut reader, &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let verb = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-careline-testkit\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 careline-testkit\r\n",
            "MAIL" => {
                envelope = Envelope {
                    mail_from: Some(path_of(text)),
                    rcpt_to: Vec::new(),
                };
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if envelope.mail_from.is_some() => {
                envelope.rcpt_to.push(path_of(text));
                b"250 2.1.5 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL first\r\n",
            "DATA" if envelope.rcpt_to.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut reader).await?;
                let envelope = std::mem::take(&mut envelope);
                let reply = answer(&state, envelope, data);
                write.write_all(reply.as_bytes()).await?;
                continue;
            }
            "RSET" => {
                envelope = Envelope::default();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads one line (up to LF) of at most [`MAX_LINE_BYTES`].
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let read = reader.read_until(b'\n', line).await?;
    if line.len() > MAX_LINE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    Ok(read)
}

/// The message up to the lone dot, dot-unstuffed; `None` past the size limit.
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    let mut too_big = false;
    loop {
        line.clear();
        if read_line(reader, &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + content.len() > MAX_MESSAGE_BYTES {
            too_big = true;
        } else {
            data.extend_from_slice(content);
        }
    }
    Ok((!too_big).then(|| String::from_utf8_lossy(&data).into_owned()))
}

/// The reply to a complete message: the next scripted code, else 250 (and recorded).
fn answer(state: &Mutex<SinkState>, envelope: Envelope, data: Option<String>) -> String {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.answered += 1;
    let Some(data) = data else {
        return "552 5.3.4 message too big\r\n".to_owned();
    };
    match state.scripted.pop_front() {
        Some(code) if code != 250 => {
            let class = code / 100;
            format!("{code} {class}.0.0 scripted failure\r\n")
        }
        _ => {
            state.received.push(ReceivedMail {
                mail_from: envelope.mail_from.unwrap_or_default(),
                rcpt_to: envelope.rcpt_to,
                data,
            });
            "250 2.0.0 queued\r\n".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_in_any_case_and_unfolded() {
        let mail = ReceivedMail {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            data: "Subject: one\r\nReferences: <a@x>\r\n <b@x>\r\nTo: m@x\r\n\r\nSubject: body\r\n"
                .to_owned(),
        };
        assert_eq!(mail.header("subject").as_deref(), Some("one"));
        assert_eq!(mail.header("REFERENCES").as_deref(), Some("<a@x> <b@x>"));
        assert_eq!(mail.header("Cc"), None);
    }

    #[test]
    fn quoted_printable_is_decoded() {
        let mail = ReceivedMail {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            data: "Gracias por escri=\r\nbir, se=C3=B1or =3D ok".to_owned(),
        };
        assert_eq!(mail.decoded(), "Gracias por escribir, señor = ok");
    }
}
