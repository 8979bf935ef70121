//! One member WebSocket (docs/chat-protocol.md): the hello phase (`start` or
//! `resume`), then frames both ways until the chat closes or the socket drops.
//!
//! Each socket has a writer task fed by a bounded queue: the reader never
//! waits on a member who does not read. When the queue is full (or a write
//! takes longer than [`WRITE_TIMEOUT`]) the socket is given up; the transcript
//! keeps everything for `resume`. Frames in are rate limited per socket with a
//! token bucket, and sizes are checked before decoding.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chats::{self, Attached, ChatRef, Chats};
use crate::error::ChatError;
use crate::feed::{self, FeedItem};
use crate::limits::{
    FRAME_BURST, FRAME_RATE_PER_SEC, HELLO_TIMEOUT, MAX_FRAME_BYTES, MAX_RATE_VIOLATIONS,
    MISSED_PINGS, PING_INTERVAL, SEND_QUEUE_FRAMES, WRITE_TIMEOUT,
};
use crate::protocol::{self, ClientFrame, Close, ErrorCode, Party, ServerFrame, close};

/// Shortest period between two lease renewals of a connected member.
const MIN_RENEW_PERIOD: Duration = Duration::from_millis(200);

/// Serves one upgraded member socket until it closes.
pub async fn serve(
    socket: WebSocket,
    origin: Option<String>,
    chats: Arc<Chats>,
    shutdown: CancellationToken,
) {
    metrics::gauge!("careline_chat_member_sockets").increment(1.0);
    let (sink, stream) = socket.split();
    let (out, out_rx) = mpsc::channel(SEND_QUEUE_FRAMES);
    let writer_done = CancellationToken::new();
    let writer = tokio::spawn(write(sink, out_rx, writer_done.clone()));
    let mut member = Member {
        chats,
        out,
        stream,
        limiter: RateLimiter::new(),
        writer_done,
        shutdown,
        last_heard: Instant::now(),
    };
    let end = member.run(origin.as_deref()).await;
    match end {
        End::Close(code) => {
            // The writer sends the close frame and stops; if it cannot, the
            // socket is dropped all the same.
            let _ = member.out.try_send(close_message(code));
        }
        End::Drop => writer.abort(),
    }
    drop(member);
    let mut writer = writer;
    if tokio::time::timeout(WRITE_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    metrics::gauge!("careline_chat_member_sockets").decrement(1.0);
}

/// How a connection ends.
enum End {
    /// Send this close frame, then close.
    Close(Close),
    /// Drop the socket (it is gone or does not read).
    Drop,
}

fn close_message(code: Close) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code,
        reason: code.reason.into(),
    }))
}

/// The writer task: sends queued frames; stops after a close frame, a failed
/// or too slow write.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    done: CancellationToken,
) {
    while let Some(message) = queue.recv().await {
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !closing => {}
            _ => break,
        }
    }
    done.cancel();
}

struct Member {
    chats: Arc<Chats>,
    out: mpsc::Sender<Message>,
    stream: futures::stream::SplitStream<WebSocket>,
    limiter: RateLimiter,
    writer_done: CancellationToken,
    shutdown: CancellationToken,
    last_heard: Instant,
}

/// What the reader got from the socket.
enum Incoming {
    Frame(ClientFrame),
    /// Refused; the error frame was queued.
    Refused,
    Ended(End),
}

impl Member {
    async fn run(&mut self, origin: Option<&str>) -> End {
        let attached = match self.hello(origin).await {
            Ok(attached) => attached,
            Err(end) => return end,
        };
        // A resume can replay a long transcript: wait for the writer here (the
        // member is reading it now), within the write timeout per frame.
        for frame in &attached.frames {
            let message = Message::Text(frame.to_json().into());
            if self.out.send_timeout(message, WRITE_TIMEOUT).await.is_err() {
                return End::Drop;
            }
        }
        if attached.closed {
            return End::Close(close::CHAT_CLOSED);
        }
        let end = self.chat(attached.chat.clone(), attached).await;
        metrics::counter!("careline_chat_member_disconnects_total", "end" => match end {
            End::Close(c) => c.reason,
            End::Drop => "dropped",
        })
        .increment(1);
        end
    }

    /// Queues a frame; false when the member is too slow to take it.
    fn send(&self, frame: &ServerFrame) -> bool {
        match self.out.try_send(Message::Text(frame.to_json().into())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("careline_chat_slow_members_total").increment(1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn refuse(&self, code: ErrorCode, message: String, client_id: Option<String>) -> bool {
        metrics::counter!("careline_chat_frames_refused_total", "code" => code.as_str())
            .increment(1);
        self.send(&ServerFrame::Error {
            code,
            message,
            client_id,
        })
    }

    /// Reads the next frame: size, rate and decode checks, pings answered.
    async fn next_frame(&mut self, message: Option<Result<Message, axum::Error>>) -> Incoming {
        let Some(Ok(message)) = message else {
            return Incoming::Ended(End::Drop);
        };
        self.last_heard = Instant::now();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return Incoming::Ended(End::Close(close::BINARY)),
            Message::Close(_) => return Incoming::Ended(End::Drop),
            Message::Ping(_) | Message::Pong(_) => return Incoming::Refused,
        };
        if text.len() > MAX_FRAME_BYTES {
            return Incoming::Ended(End::Close(close::TOO_LARGE));
        }
        if !self.limiter.take() {
            if self.limiter.violations >= MAX_RATE_VIOLATIONS {
                return Incoming::Ended(End::Close(close::RATE_LIMITED));
            }
            let message =
                format!("more than {FRAME_RATE_PER_SEC} frames a second; this frame was dropped");
            return if self.refuse(ErrorCode::RateLimited, message, None) {
                Incoming::Refused
            } else {
                Incoming::Ended(End::Drop)
            };
        }
        match protocol::decode(text.as_str()) {
            Ok(frame) => Incoming::Frame(frame),
            Err(error) => {
                if self.refuse(error.code, error.message, None) {
                    Incoming::Refused
                } else {
                    Incoming::Ended(End::Drop)
                }
            }
        }
    }

    /// Waits for `start` or `resume`.
    async fn hello(&mut self, origin: Option<&str>) -> Result<Attached, End> {
        let deadline = Instant::now() + HELLO_TIMEOUT;
        loop {
            let message = tokio::select! {
                _ = self.shutdown.cancelled() => return Err(End::Close(close::GOING_AWAY)),
                _ = self.writer_done.cancelled() => return Err(End::Drop),
                _ = tokio::time::sleep_until(deadline) => return Err(End::Close(close::HELLO_TIMEOUT)),
                message = self.stream.next() => message,
            };
            let frame = match self.next_frame(message).await {
                Incoming::Frame(frame) => frame,
                Incoming::Refused => continue,
                Incoming::Ended(end) => return Err(end),
            };
            let attached = match frame {
                ClientFrame::Start(start) => self.chats.start(origin, start).await,
                ClientFrame::Resume { token, after } => {
                    self.chats.resume(origin, &token, after.as_deref()).await
                }
                _ => {
                    let sent = self.refuse(
                        ErrorCode::NotStarted,
                        "send `start` or `resume` first".into(),
                        None,
                    );
                    if !sent {
                        return Err(End::Drop);
                    }
                    continue;
                }
            };
            match attached {
                Ok(attached) => return Ok(attached),
                Err(ChatError::UnknownWidget) => return Err(End::Close(close::UNKNOWN_KEY)),
                Err(ChatError::OriginNotAllowed) => {
                    return Err(End::Close(close::ORIGIN_NOT_ALLOWED));
                }
                Err(ChatError::ResumeFailed) => return Err(End::Close(close::RESUME_FAILED)),
                Err(error) => {
                    if !self.refuse(error.frame_code(), error.to_string(), None) {
                        return Err(End::Drop);
                    }
                }
            }
        }
    }

    /// The attached phase: member frames in, feed items out.
    async fn chat(&mut self, chat: ChatRef, attached: Attached) -> End {
        let Attached {
            mut feed, mut seen, ..
        } = attached;
        let renew_period = (self.chats.resume_grace / 3).max(MIN_RENEW_PERIOD);
        let mut renew = tokio::time::interval_at(Instant::now() + renew_period, renew_period);
        let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut places = self.queue_places(&chat).await;
        let end = loop {
            tokio::select! {
                Some(place) = places.next() => {
                    // Only a hint that the next one supersedes: a member whose
                    // buffer is full (a flood of error frames) misses it rather
                    // than being dropped for it.
                    let _ = self.send(&place);
                }
                _ = self.shutdown.cancelled() => break End::Close(close::GOING_AWAY),
                _ = self.writer_done.cancelled() => break End::Drop,
                _ = renew.tick() => {
                    if let Err(error) = self.chats.renew(&chat).await {
                        tracing::warn!(tenant = chat.tenant.id.as_str(), interaction_id = chat.ix.as_str(), %error, "renewing a member's lease failed");
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > PING_INTERVAL * MISSED_PINGS {
                        break End::Drop;
                    }
                    if self.out.try_send(Message::Ping(Default::default())).is_err() {
                        break End::Drop;
                    }
                }
                item = feed.next() => {
                    let Some(item) = item else {
                        // The NATS client is gone (replica shutting down): resume elsewhere.
                        break End::Close(close::GOING_AWAY);
                    };
                    match self.forward(feed::decode(&item), &mut seen) {
                        Forwarded::Sent => {}
                        Forwarded::Closed => break End::Close(close::CHAT_CLOSED),
                        Forwarded::TooSlow => break End::Drop,
                    }
                }
                message = self.stream.next() => {
                    let frame = match self.next_frame(message).await {
                        Incoming::Frame(frame) => frame,
                        Incoming::Refused => continue,
                        Incoming::Ended(end) => break end,
                    };
                    if let Some(end) = self.handle(&chat, frame).await {
                        break end;
                    }
                }
            }
        };
        if end_is_resumable(&end) {
            // The member may come back: the chat waits for the resume grace.
            if let Err(error) = self.chats.renew(&chat).await {
                tracing::warn!(tenant = chat.tenant.id.as_str(), interaction_id = chat.ix.as_str(), %error, "starting the resume grace failed");
            }
        }
        end
    }

    /// `queued` frames with the chat's queue position and estimated wait as
    /// the queue moves (the router's `WatchInteraction`), while it waits for
    /// an agent. Without the router's stream the member keeps the position
    /// given at the start; the chat itself goes on.
    async fn queue_places(
        &self,
        chat: &ChatRef,
    ) -> futures::stream::BoxStream<'static, ServerFrame> {
        let statuses = match self.chats.router.watch(&chat.tenant.id, &chat.ix).await {
            Ok(statuses) => statuses,
            Err(error) => {
                tracing::warn!(tenant = chat.tenant.id.as_str(), interaction_id = chat.ix.as_str(), %error, "queue position updates unavailable");
                return futures::stream::pending().boxed();
            }
        };
        statuses
            .take_while(|status| futures::future::ready(status.is_ok()))
            .filter_map(|status| {
                futures::future::ready(status.ok().and_then(|status| {
                    let queued = status.interaction.as_ref().is_some_and(|ix| {
                        ix.state == careline_proto::v1::InteractionState::Queued as i32
                    });
                    (queued && status.queue_position > 0).then(|| ServerFrame::Queued {
                        position: Some(status.queue_position),
                        eta_seconds: status.wait_estimated.then_some(status.estimated_wait_secs),
                    })
                }))
            })
            .chain(futures::stream::pending())
            .boxed()
    }

    /// Sends a feed item to the member, if it is for them and new.
    fn forward(&self, item: Option<FeedItem>, seen: &mut Option<String>) -> Forwarded {
        let frame = match item {
            Some(FeedItem::Entry(entry)) => {
                if !chats::is_after(&entry.id, seen.as_deref()) {
                    return Forwarded::Sent;
                }
                *seen = Some(entry.id.clone());
                chats::member_frame(&entry)
            }
            Some(FeedItem::Typing { from: Party::Agent }) => {
                ServerFrame::Typing { from: Party::Agent }
            }
            Some(FeedItem::Read {
                from: Party::Agent,
                up_to,
            }) => ServerFrame::Read { up_to },
            _ => return Forwarded::Sent,
        };
        let closed = matches!(frame, ServerFrame::Closed { .. });
        match (self.send(&frame), closed) {
            (false, _) => Forwarded::TooSlow,
            (true, true) => Forwarded::Closed,
            (true, false) => Forwarded::Sent,
        }
    }

    /// Handles one member frame of an attached chat; `Some` ends the connection.
    async fn handle(&mut self, chat: &ChatRef, frame: ClientFrame) -> Option<End> {
        let result = match frame {
            ClientFrame::Start(_) | ClientFrame::Resume { .. } => {
                let sent = self.refuse(
                    ErrorCode::AlreadyStarted,
                    "this socket already has a chat; open another socket for another chat".into(),
                    None,
                );
                return (!sent).then_some(End::Drop);
            }
            ClientFrame::Message { client_id, text } => {
                match self.chats.say(chat, Party::Member, &client_id, &text).await {
                    // A resent message: acknowledge it again as first stored.
                    Ok(Some(entry)) => {
                        return (!self.send(&chats::member_frame(&entry))).then_some(End::Drop);
                    }
                    Ok(None) => Ok(()),
                    Err(error) => {
                        let sent =
                            self.refuse(error.frame_code(), error.to_string(), Some(client_id));
                        return (!sent).then_some(End::Drop);
                    }
                }
            }
            ClientFrame::Typing => {
                self.chats
                    .notice(
                        chat,
                        FeedItem::Typing {
                            from: Party::Member,
                        },
                    )
                    .await;
                Ok(())
            }
            ClientFrame::Read { up_to } => {
                self.chats
                    .notice(
                        chat,
                        FeedItem::Read {
                            from: Party::Member,
                            up_to,
                        },
                    )
                    .await;
                Ok(())
            }
            ClientFrame::End => {
                match self
                    .chats
                    .close(
                        chat,
                        chats::reason::MEMBER_ENDED,
                        chats::reason::MEMBER_ENDED,
                    )
                    .await
                {
                    Ok(()) => {
                        self.send(&ServerFrame::Closed {
                            reason: chats::reason::MEMBER_ENDED.into(),
                        });
                        return Some(End::Close(close::CHAT_CLOSED));
                    }
                    Err(error) => Err(error),
                }
            }
        };
        match result {
            Ok(()) => None,
            Err(error) => {
                let sent = self.refuse(error.frame_code(), error.to_string(), None);
                (!sent).then_some(End::Drop)
            }
        }
    }
}

/// Whether the member is expected to come back after this end (so the chat waits).
fn end_is_resumable(end: &End) -> bool {
    match end {
        End::Drop => true,
        End::Close(code) => *code != close::CHAT_CLOSED,
    }
}

enum Forwarded {
    Sent,
    Closed,
    TooSlow,
}

/// A token bucket of [`FRAME_BURST`] frames refilled at [`FRAME_RATE_PER_SEC`].
#[derive(Debug)]
struct RateLimiter {
    tokens: f64,
    last: Instant,
    /// Frames refused in a row.
    violations: u32,
}

impl RateLimiter {
    fn new() -> RateLimiter {
        RateLimiter {
            tokens: FRAME_BURST,
            last: Instant::now(),
            violations: 0,
        }
    }

    /// Takes a token; false (and one more violation) when there is none.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * FRAME_RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(FRAME_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.violations = 0;
            true
        } else {
            self.violations += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_allows_a_burst_then_the_rate() {
        let mut limiter = RateLimiter::new();
        for _ in 0..FRAME_BURST as usize {
            assert!(limiter.take());
        }
        assert!(!limiter.take(), "the burst is spent");
        assert_eq!(limiter.violations, 1);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(limiter.take(), "one frame refilled after 1/10 s");
        assert_eq!(limiter.violations, 0, "an accepted frame resets the count");
    }
}
