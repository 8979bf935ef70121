//! The floor view over HTTP: sign-in, the session cookie, and the live
//! snapshots it streams (server-sent events) as events reach the log.

use std::net::SocketAddr;
use std::time::Duration;

use careline_proto::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{DEMO_KEY, Platform, TENANT};
use careline_testkit::http::http;

/// Longest wait for a snapshot showing what was published.
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(20);

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Signs in with `key`; the session cookie (`name=value`).
async fn sign_in(addr: SocketAddr, key: &str, lang: &str) -> Option<String> {
    let (status, head, _) = http(
        addr,
        "POST",
        "/floor/login",
        &[FORM],
        &format!("api_key={key}&lang={lang}"),
    )
    .await;
    if status != 303 {
        return None;
    }
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/floor", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(!cookie.contains(key), "the key is not in the cookie");
    Some(cookie.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn sign_in_takes_a_tenant_key_once_and_keeps_a_strict_http_only_session() {
    let platform = Platform::start(1).await;
    let addr = platform.http();

    let (status, _, body) = http(addr, "GET", "/floor", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html lang=\"en\">") && body.contains("Supervisor sign-in"));
    let (_, _, body) = http(addr, "GET", "/floor?lang=es", &[], "").await;
    assert!(body.contains("<html lang=\"es\">") && body.contains("Acceso de supervisión"));

    assert_eq!(sign_in(addr, "not-a-key", "en").await, None);
    assert_eq!(
        sign_in(addr, careline_testkit::demo::IVR_KEY, "en").await,
        None,
        "a key without the supervisor scope does not open the floor view"
    );
    let (status, _, body) = http(addr, "POST", "/floor/login", &[FORM], "api_key=nope").await;
    assert_eq!(status, 401);
    assert!(body.contains("does not open the floor view"), "{body}");
    let (status, _, _) = http(addr, "GET", "/floor/events", &[], "").await;
    assert_eq!(status, 401, "no live data without a session");

    let cookie = sign_in(addr, DEMO_KEY, "es")
        .await
        .expect("the tenant key signs in");
    let (status, head, body) = http(addr, "GET", "/floor", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<html lang=\"es\">") && body.contains("Colas"),
        "{body}"
    );
    assert!(body.contains(TENANT));
    assert!(head.contains("content-security-policy"), "{head}");

    // A cookie that was tampered with is no session.
    let (name, value) = cookie.split_once('=').unwrap();
    let forged = format!("{name}={}0", &value[..value.len() - 1]);
    let (_, _, body) = http(addr, "GET", "/floor", &[("Cookie", &forged)], "").await;
    assert!(body.contains("Acceso de supervisión") || body.contains("Supervisor sign-in"));
}

/// Reads the live updates until a snapshot satisfies `wanted`.
async fn snapshot_where(
    addr: SocketAddr,
    cookie: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("console accepts");
    let request = format!(
        "GET /floor/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let until = tokio::time::Instant::now() + SNAPSHOT_DEADLINE;
    loop {
        let read = tokio::time::timeout_at(until, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no snapshot as wanted; got:\n{text}"))
            .expect("stream readable");
        assert!(read > 0, "the stream ended; got:\n{text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
        let found = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .filter(|snapshot| wanted(snapshot))
            .last();
        if let Some(snapshot) = found {
            return snapshot;
        }
    }
}

fn event(sequence: u64, payload: v1::event::Payload) -> v1::Event {
    v1::Event {
        event_id: format!("{TENANT}:floor-{sequence}"),
        tenant_id: TENANT.to_owned(),
        occurred_at_ms: chrono::Utc::now().timestamp_millis(),
        sequence,
        payload: Some(payload),
    }
}

#[tokio::test]
async fn floor_view_shows_agent_states_and_todays_answers_as_they_reach_the_log() {
    let platform = Platform::start(1).await;
    let cookie = sign_in(platform.http(), DEMO_KEY, "en").await.unwrap();
    platform
        .publish(&[
            event(
                1,
                v1::event::Payload::Agent(v1::AgentEvent {
                    kind: v1::AgentEventKind::StateChanged as i32,
                    agent_id: "ana".into(),
                    state: "away".into(),
                    reason: "training".into(),
                    channel: 0,
                }),
            ),
            event(
                2,
                v1::event::Payload::Interaction(v1::InteractionEvent {
                    kind: v1::InteractionEventKind::Created as i32,
                    interaction_id: "ix_floor".into(),
                    queue_id: "general".into(),
                    member_ref: "member-7".into(),
                    ..Default::default()
                }),
            ),
            event(
                3,
                v1::event::Payload::Interaction(v1::InteractionEvent {
                    kind: v1::InteractionEventKind::Assigned as i32,
                    interaction_id: "ix_floor".into(),
                    queue_id: "general".into(),
                    agent_id: "luis".into(),
                    ..Default::default()
                }),
            ),
        ])
        .await;
    let snapshot = snapshot_where(platform.http(), &cookie, |s| {
        s["today"]["answered"] == 1 && s["agents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let ana = &snapshot["agents"][0];
    assert_eq!(ana["agent_id"], "ana");
    assert_eq!(ana["state"], "away");
    assert_eq!(ana["reason"], "training");
    assert_eq!(
        snapshot["queues_unavailable"], true,
        "no router key configured: the page says queue figures are unavailable"
    );
    assert!(
        !snapshot.to_string().contains("member-7"),
        "member references stay off the floor view"
    );
}
