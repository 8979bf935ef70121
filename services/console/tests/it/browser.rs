//! The floor view in a real browser: headless Debian Chromium driven by
//! playwright-core (`tests/browser/floor.mjs`), with the keyboard only. The
//! supervisor signs in; contacts created over the router's gRPC API show up
//! as waiting, an agent takes one and today's answered count and the agents
//! table change, live. The screenshot is kept under the target directory
//! (`target/tmp/browser/floor.png`), its path printed. `scripts/test.sh`
//! installs what this needs (`ensure_browser_tools` in scripts/lib.sh).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind as DeskEvent;
use careline_proto::v1::agent_session_request::Kind as DeskRequest;
use careline_proto::v1::presence_client::PresenceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::harness::{DEMO_KEY, Platform, TENANT};

/// The browser scripts, and the directory their playwright-core is installed in.
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser");
/// Debian's Chromium; `CARELINE_CHROMIUM` overrides it.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long the browser session may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);
/// Longest wait for one step of the agent's desk.
const DESK_DEADLINE: Duration = Duration::from_secs(20);

/// Chromium and the browser scripts' directory, or how to install them.
fn browser_tools() -> (PathBuf, PathBuf) {
    const HOW: &str = "run scripts/test.sh (it installs them), or: \
        sudo apt-get install -y chromium nodejs npm && (cd tests/browser && npm ci)";
    let chromium = PathBuf::from(
        std::env::var("CARELINE_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned()),
    );
    assert!(
        chromium.is_file(),
        "Chromium is not installed at {}: {HOW}",
        chromium.display()
    );
    let dir = Path::new(BROWSER_DIR)
        .canonicalize()
        .expect("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed in {}: {HOW}",
        dir.display()
    );
    (chromium, dir)
}

/// What the browser script prints: its events (stdout) and its errors (stderr).
struct Script {
    events: mpsc::Receiver<String>,
    errors: Arc<Mutex<String>>,
}

impl Script {
    /// Waits for the script to print `event`; fails with its errors if it ends first.
    async fn wait_for(&mut self, event: &str) -> String {
        let wanted = format!("\"event\":\"{event}\"");
        loop {
            let line = tokio::time::timeout(BROWSER_DEADLINE, self.events.recv()).await;
            match line {
                Ok(Some(line)) if line.contains(&wanted) => return line,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "the browser did not report {event}:\n{}",
                    self.errors.lock().unwrap()
                ),
            }
        }
    }
}

async fn create_contact(router: &mut careline_testkit::router::Router, n: usize) -> String {
    router
        .create_interaction(v1::CreateInteractionRequest {
            channel: v1::Channel::Voice as i32,
            queue_id: "general".into(),
            language: v1::Language::En as i32,
            member_ref: format!("member-{n}"),
            idempotency_key: format!("floor-browser-{n}"),
            ..Default::default()
        })
        .await
        .expect("contact created")
        .into_inner()
        .interaction
        .expect("interaction")
        .id
}

/// Logs ana in at presence, available, and accepts her first offer; her
/// session and the id of the contact she took.
async fn ana_takes_a_contact(
    presence: std::net::SocketAddr,
) -> (mpsc::Sender<v1::AgentSessionRequest>, String) {
    let (tx, rx) = mpsc::channel(16);
    tx.send(v1::AgentSessionRequest {
        kind: Some(DeskRequest::Login(v1::Login {
            tenants: vec![v1::TenantLogin {
                tenant_id: TENANT.into(),
                agent_id: "ana".into(),
                agent_key: careline_testkit::demo::agent_key("ana"),
            }],
            initial_state: v1::AgentState::Available as i32,
        })),
    })
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{presence}"))
        .unwrap()
        .connect()
        .await
        .expect("presence connects");
    let mut events = PresenceClient::new(channel)
        .open_agent_session(ReceiverStream::new(rx))
        .await
        .expect("agent session opens")
        .into_inner();
    let next = async |events: &mut tonic::Streaming<v1::AgentSessionEvent>| {
        tokio::time::timeout(DESK_DEADLINE, events.message())
            .await
            .expect("a desk event in time")
            .expect("desk stream")
            .expect("desk open")
            .kind
            .expect("event kind")
    };
    let offer_id = loop {
        if let DeskEvent::Offer(offer) = next(&mut events).await {
            break offer.offer_id;
        }
    };
    tx.send(v1::AgentSessionRequest {
        kind: Some(DeskRequest::Accept(v1::OfferAnswer {
            tenant_id: TENANT.into(),
            offer_id,
        })),
    })
    .await
    .unwrap();
    loop {
        if let DeskEvent::Assigned(assigned) = next(&mut events).await {
            let id = assigned.interaction.expect("the assigned contact").id;
            return (tx, id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_watches_contacts_wait_and_get_answered_live_in_a_real_browser() {
    let (chromium, dir) = browser_tools();
    let mut platform = Platform::start(0).await;
    platform.start_routing().await;
    platform.start_replica().await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser/floor.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("floor.mjs"))
        .arg(format!("http://{}/", platform.http()))
        .arg(&screenshot)
        .env("CARELINE_CHROMIUM", &chromium)
        .env("CARELINE_API_KEY", DEMO_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let (lines, events) = mpsc::channel(64);
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            println!("browser: {line}");
            if lines.send(line).await.is_err() {
                return;
            }
        }
    });
    let errors = Arc::new(Mutex::new(String::new()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let written = errors.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let mut all = written.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let mut script = Script { events, errors };

    script.wait_for("signed_in").await;
    let router_addr = platform.router_addr.unwrap();
    let mut router = careline_testkit::router::router_client(router_addr, DEMO_KEY).await;
    for n in 0..2 {
        create_contact(&mut router, n).await;
    }
    script.wait_for("waiting_seen").await;
    let (_desk, taken) = ana_takes_a_contact(platform.presence_addr.unwrap()).await;
    let answered = script.wait_for("answered_seen").await;
    assert!(
        answered.contains("\"agentState\":\"Available\""),
        "ana is shown available (she has room for more): {answered}"
    );

    // Resolved, then scored by a supervisor: her quality shows beside the KPIs.
    router
        .resolve(v1::ResolveRequest {
            interaction_id: taken.clone(),
            agent_id: "ana".into(),
            ..Default::default()
        })
        .await
        .expect("ana's contact resolved");
    let mut console = platform.client(DEMO_KEY).await;
    let scores: Vec<v1::CriterionScoreInput> =
        [("engagement", 5), ("accuracy", 4), ("compliance", 3)]
            .into_iter()
            .map(|(criterion, score)| v1::CriterionScoreInput {
                criterion_id: criterion.into(),
                score,
                comment: String::new(),
            })
            .collect();
    // Until the console has applied the resolution from the log.
    careline_testkit::assert_eventually!(
        console
            .score_interaction(v1::ScoreInteractionRequest {
                interaction_id: taken.clone(),
                scores: scores.clone(),
            })
            .await
            .is_ok(),
        "the resolved contact is scored"
    );
    script.wait_for("quality_seen").await;
    script.wait_for("spanish_seen").await;
    script.wait_for("passed").await;
    let status = tokio::time::timeout(BROWSER_DEADLINE, child.wait())
        .await
        .expect("the browser session ends in time")
        .expect("node runs");
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{}",
        script.errors.lock().unwrap()
    );
    assert!(
        screenshot.is_file(),
        "screenshot kept at {}",
        screenshot.display()
    );
    println!("screenshot: {}", screenshot.display());
}
