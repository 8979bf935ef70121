//! `careline-ws-echo`: the bare axum WebSocket server `careline-chat-bench` measures the
//! chat-gateway against. It echoes every text or binary frame and holds nothing else per
//! socket, on the same tokio runtime and axum version as the gateway, so the difference in
//! memory per socket and in latency is what the gateway itself adds.
//!
//!   careline-ws-echo [ADDR]     # default 127.0.0.1:0; prints `listening on ADDR`

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new().route("/ws", get(upgrade));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = matches!(message, Message::Text(_) | Message::Binary(_));
        if reply && socket.send(message).await.is_err() {
            break;
        }
    }
}
