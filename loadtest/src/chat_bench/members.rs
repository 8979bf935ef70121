//! Member WebSocket clients (tokio-tungstenite): many idle sockets held open, and message
//! round trips timed against the bare echo server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Sockets being opened at once (a burst of 10,000 connects would overflow the listen backlog).
pub const CONNECTS_IN_FLIGHT: usize = 256;
/// How long one socket may take to open and get its first answer.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sockets held open and read (so pings are answered) until dropped.
pub struct IdleSockets {
    pub count: usize,
    stop: CancellationToken,
    readers: JoinSet<()>,
}

impl IdleSockets {
    /// Closes every socket.
    pub async fn close(mut self) {
        self.stop.cancel();
        while self.readers.join_next().await.is_some() {}
    }
}

/// Opens a WebSocket to `url` with `Origin: origin`.
pub async fn connect(url: &str, origin: &str) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("origin", origin.parse().context("origin header")?);
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("connect {url}"))?;
    Ok(socket)
}

/// Opens `count` sockets; each sends `hello(i)` and waits for the first text frame that
/// `answered` accepts, then stays open and idle.
pub async fn open_idle(
    url: &str,
    origin: &str,
    count: usize,
    hello: impl Fn(usize) -> String,
    answered: fn(&str) -> bool,
) -> anyhow::Result<IdleSockets> {
    let stop = CancellationToken::new();
    let mut readers = JoinSet::new();
    let mut opened = futures::stream::iter((0..count).map(|i| {
        let frame = hello(i);
        async move {
            tokio::time::timeout(OPEN_TIMEOUT, async {
                let mut socket = connect(url, origin).await?;
                socket.send(Message::text(frame)).await?;
                while let Some(message) = socket.try_next().await? {
                    if let Message::Text(text) = message {
                        if answered(text.as_str()) {
                            return Ok(socket);
                        }
                    }
                }
                bail!("the server closed the socket before answering")
            })
            .await
            .context("opening a socket timed out")?
        }
    }))
    .buffer_unordered(CONNECTS_IN_FLIGHT);
    while let Some(socket) = opened.next().await {
        let mut socket: Socket = socket?;
        let stop = stop.clone();
        readers.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    next = socket.next() => if !matches!(next, Some(Ok(_))) { break },
                }
            }
            let _ = socket.close(None).await;
        });
    }
    Ok(IdleSockets {
        count,
        stop,
        readers,
    })
}

/// Round trips through the echo server: `chats` sockets each send `messages` text frames,
/// one every `every`, and time send -> echo. Returns the histogram in microseconds.
pub async fn echo_latency(
    url: &str,
    chats: usize,
    messages: usize,
    every: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let mut tasks = JoinSet::new();
    for chat in 0..chats {
        let url = url.to_owned();
        let histogram = Arc::clone(&histogram);
        tasks.spawn(async move {
            let socket = connect(&url, "http://bench.invalid").await?;
            let (mut sink, mut stream) = socket.split();
            // Spread the chats over one period so sends do not all start on the same tick.
            tokio::time::sleep(every.mul_f64(chat as f64 / chats as f64)).await;
            let mut tick = tokio::time::interval(every);
            for n in 0..messages {
                tick.tick().await;
                let sent = Instant::now();
                sink.send(Message::text(format!(
                    "{{\"type\":\"message\",\"client_id\":\"b{chat}-{n}\",\"text\":\"bench\"}}"
                )))
                .await?;
                loop {
                    match stream.try_next().await? {
                        Some(Message::Text(_)) => break,
                        Some(_) => continue,
                        None => bail!("the echo server closed the socket"),
                    }
                }
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.lock().await.record(micros.max(1))?;
            }
            let _ = sink.close().await;
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let histogram = histogram.lock().await.clone();
    Ok(histogram)
}
