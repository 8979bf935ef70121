//! Every limit of the member WebSocket and the agent stream, in one place
//! (docs/chat-protocol.md lists them for client authors).

use std::time::Duration;

/// Largest text frame a member may send; larger ones close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Hard cap of the WebSocket codec: a message over it is never buffered whole.
/// Between [`MAX_FRAME_BYTES`] and this the gateway still answers with a close frame.
pub const CODEC_MAX_MESSAGE_BYTES: usize = 4 * MAX_FRAME_BYTES;
/// Longest chat message, in characters (members and agents).
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest first name (member or agent), in characters.
pub const MAX_FIRST_NAME_CHARS: usize = 64;
/// Longest topic a member may pick, in bytes.
pub const MAX_TOPIC_BYTES: usize = 64;
/// Longest client message id, in bytes (`[A-Za-z0-9_-]`).
pub const MAX_CLIENT_ID_BYTES: usize = 64;
/// Longest resume token or message id a client may send back, in bytes.
pub const MAX_TOKEN_BYTES: usize = 256;
/// Sustained frames per second a member connection may send.
pub const FRAME_RATE_PER_SEC: f64 = 10.0;
/// Frames a member connection may send at once before the rate applies.
pub const FRAME_BURST: f64 = 20.0;
/// Refused frames in a row (over the rate) after which the socket is closed (4029).
pub const MAX_RATE_VIOLATIONS: u32 = 50;
/// Frames queued for a member who does not read; when full the socket is closed (4013).
pub const SEND_QUEUE_FRAMES: usize = 64;
/// Longest a single write to a member may take before the socket is given up (4013).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a new socket has to send `start` or `resume` (4008).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the gateway pings an idle member.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Pings without any frame back after which a member socket is dropped.
pub const MISSED_PINGS: u32 = 3;
/// WebSocket read buffer per member socket (small: most frames are tiny, and
/// idle sockets must stay cheap).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// WebSocket write buffer per member socket.
pub const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Most entries one transcript may hold (a flood ends with `chat_closed`-like refusals, not memory).
pub const MAX_TRANSCRIPT_ENTRIES: usize = 5_000;
/// Events queued for one agent stream; a desktop that stops reading is disconnected.
pub const AGENT_QUEUE_EVENTS: usize = 256;
/// Time an agent stream has to send `login`.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest agent key accepted (before hashing).
pub const MAX_AGENT_KEY_BYTES: usize = 512;
/// Abandoned chats one sweep settles per tenant (a budget, so one tenant cannot starve another).
pub const SWEEP_BATCH: usize = 100;
/// How often a replica looks for chats whose resume grace ran out.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Wait before a failed router call that settles a closed chat is tried again.
pub const SETTLE_RETRY: Duration = Duration::from_secs(5);
/// Largest gRPC request (a chat message is at most a few KiB).
pub const MAX_GRPC_REQUEST_BYTES: usize = 64 * 1024;
