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
                    if let Message::Text(text) = message
                        && answered(text.as_str())
                    {
                        return Ok(socket);
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
    Ok(IdleSockets { stop, readers })
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

/// How long the chats of the latency phase may take to all be started and assigned.
pub const ASSIGN_DEADLINE: Duration = Duration::from_secs(300);
/// How long the last messages may take to reach the agents.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// A `start` frame of the member protocol.
pub fn start_frame(widget_key: &str, n: usize) -> String {
    serde_json::json!({
        "type": "start", "key": widget_key, "language": "en", "topic": "coverage",
        "text": format!("I have a question about my coverage ({n})"), "client_id": format!("s{n}")
    })
    .to_string()
}

/// Whether a text frame is the gateway's `started`.
pub fn is_started(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|frame| frame["type"] == "started")
}

/// Member -> agent latency on the gateway: `chats` members start chats (the agents of
/// `floor` take them); once every chat is assigned, each member sends `messages` messages, one
/// every `every`, and the agents time their arrival. Returns when every message arrived.
pub async fn gateway_latency(
    url: &str,
    widget_key: &str,
    floor: &crate::agents::Floor,
    chats: usize,
    messages: usize,
    every: Duration,
) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let assigned = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut members = JoinSet::new();
    for chat in 0..chats {
        let (url, key) = (url.to_owned(), widget_key.to_owned());
        let (assigned, mut go, in_flight) = (
            Arc::clone(&assigned),
            go_rx.clone(),
            Arc::clone(&floor.in_flight),
        );
        members.spawn(async move {
            let mut socket = connect(&url, "http://bench.invalid").await?;
            socket.send(Message::text(start_frame(&key, chat))).await?;
            loop {
                match socket.try_next().await? {
                    Some(Message::Text(text)) if text.as_str().contains("\"type\":\"assigned\"") => break,
                    Some(_) => continue,
                    None => bail!("the gateway closed chat {chat} before it was assigned"),
                }
            }
            assigned.fetch_add(1, Ordering::Relaxed);
            let (mut sink, mut stream) = socket.split();
            // Acknowledgements and agent frames are read and dropped, so the socket never
            // counts as a slow reader.
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            go.wait_for(|go| *go).await?;
            tokio::time::sleep(every.mul_f64(chat as f64 / chats as f64)).await;
            let mut tick = tokio::time::interval(every);
            for n in 0..messages {
                tick.tick().await;
                let client_id = format!("c{chat}-{n}");
                in_flight
                    .lock()
                    .expect("not poisoned")
                    .insert(client_id.clone(), Instant::now());
                let frame = serde_json::json!({"type": "message", "client_id": client_id, "text": "bench message"});
                sink.send(Message::text(frame.to_string())).await?;
            }
            anyhow::Ok((sink, drain))
        });
    }
    let deadline = tokio::time::Instant::now() + ASSIGN_DEADLINE;
    while assigned.load(Ordering::Relaxed) < chats {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "only {} of {chats} chats were assigned within {ASSIGN_DEADLINE:?}",
                assigned.load(Ordering::Relaxed)
            );
        }
        if let Some(Ok(Err(error))) = members.try_join_next() {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  {chats} chats assigned and joined ({} joins seen by agents); sending",
        floor.joined.load(Ordering::Relaxed)
    );
    go_tx.send(true)?;
    let mut open = Vec::new();
    while let Some(done) = members.join_next().await {
        open.push(done??);
    }
    let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
    loop {
        let left = floor.in_flight.lock().expect("not poisoned").len();
        if left == 0 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{left} messages never reached an agent within {DRAIN_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (mut sink, drain) in open {
        let _ = sink.close().await;
        drain.abort();
    }
    Ok(())
}
