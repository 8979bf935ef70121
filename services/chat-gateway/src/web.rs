//! The gateway's HTTP side: the member WebSocket (`/v1/chat/ws`) and the
//! static files compiled in from `static/` (widget, demo page, contact page).
//! The contact form's `POST /v1/contact` is added by the contact module.

use std::sync::Arc;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chats::Chats;
use crate::limits::{CODEC_MAX_MESSAGE_BYTES, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};
use crate::member;
use crate::protocol::WS_PATH;

/// What every HTTP handler shares.
#[derive(Clone)]
pub struct WebState {
    pub chats: Arc<Chats>,
    pub shutdown: CancellationToken,
    /// Member socket tasks, waited for at shutdown.
    pub sockets: TaskTracker,
}

/// The static files: path, content type, body.
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "/widget.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/widget.js"),
    ),
    (
        "/widget.css",
        "text/css; charset=utf-8",
        include_str!("../static/widget.css"),
    ),
    (
        "/demo",
        "text/html; charset=utf-8",
        include_str!("../static/demo.html"),
    ),
    (
        "/contact",
        "text/html; charset=utf-8",
        include_str!("../static/contact.html"),
    ),
];

/// The HTTP routes of the gateway.
pub fn routes(state: WebState) -> Router {
    let mut router = Router::new().route(WS_PATH, get(upgrade));
    for (path, content_type, body) in STATIC_FILES {
        router = router.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, *content_type)], *body) }),
        );
    }
    router.with_state(state)
}

async fn upgrade(
    State(state): State<WebState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    upgrade
        .max_message_size(CODEC_MAX_MESSAGE_BYTES)
        .max_frame_size(CODEC_MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            state.sockets.track_future(member::serve(
                socket,
                origin,
                state.chats.clone(),
                state.shutdown.clone(),
            ))
        })
        .into_response()
}
