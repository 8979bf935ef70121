//! `careline-ws-echo`: the bare axum WebSocket server `careline-chat-bench` measures the
//! chat-gateway against. It echoes every text or binary frame and holds nothing else per
//! socket, on the same tokio runtime and axum version as the gateway, so the difference in
//! memory per socket and in latency is what the gateway itself adds.
//!
//!   careline-ws-echo [ADDR] [--gateway-buffers]
//!
//! ADDR defaults to 127.0.0.1:0 (it prints `listening on ADDR`). With `--gateway-buffers` each
//! socket gets the gateway's read and write buffer sizes and message limit (chat-gateway's
//! `limits.rs`) instead of tungstenite's defaults (128 KiB read buffer).

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use careline_chat_gateway::limits;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gateway_buffers = args.iter().any(|a| a == "--gateway-buffers");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:0", String::as_str);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = if gateway_buffers {
        Router::new().route("/ws", get(upgrade_with_gateway_buffers))
    } else {
        Router::new().route("/ws", get(upgrade))
    };
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn upgrade_with_gateway_buffers(upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(limits::CODEC_MAX_MESSAGE_BYTES)
        .max_frame_size(limits::CODEC_MAX_MESSAGE_BYTES)
        .read_buffer_size(limits::READ_BUFFER_BYTES)
        .write_buffer_size(limits::WRITE_BUFFER_BYTES)
        .on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = matches!(message, Message::Text(_) | Message::Binary(_));
        if reply && socket.send(message).await.is_err() {
            break;
        }
    }
}
