//! The widget in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/browser/*.mjs`) on the gateway's demo page, with the keyboard only.
//!
//! - `chat.mjs`: a member starts a chat in Spanish; a gRPC test agent takes it and answers; the
//!   member sees the answer, sends two more messages (Enter in the box, Tab to Send and Enter),
//!   reloads the page (the chat resumes from sessionStorage, each message shown once) and sends
//!   one more; Escape closes the panel.
//! - `after_hours.mjs`: the tenant is closed; the widget shows the after-hours message, contact
//!   email and portal link, and its contact form becomes an email interaction.
//!
//! Screenshots are kept under the target directory (`target/tmp/browser/`), their paths printed.
//! `scripts/test.sh` installs what this needs (`ensure_browser_tools` in scripts/lib.sh):
//! Debian's chromium and the playwright-core pinned in tests/browser/package-lock.json.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_proto::v1;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

use crate::contact::ContactPlatform;
use crate::harness::Platform;

/// The browser scripts, and the directory their playwright-core is installed in.
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser");
/// Debian's Chromium; `CARELINE_CHROMIUM` overrides it.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long one browser session may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);
/// What the member types first, in chat.mjs (the router must hear Spanish).
const FIRST_MESSAGE: &str = "Hola, tengo una pregunta sobre mi factura de este mes.";
/// What the member sends with Enter, then with the Send button, in chat.mjs.
const ENTER_MESSAGE: &str = "Gracias, ¿me puede enviar el detalle?";
const BUTTON_MESSAGE: &str = "Perfecto, muchas gracias.";
/// What the member sends after reloading the page (the chat resumed), in chat.mjs.
const RESUMED_MESSAGE: &str = "Sigo aquí después de recargar la página.";
/// The agent's answer, which the member must see.
const AGENT_ANSWER: &str = "Hola Rosa, soy Ana. Con gusto le ayudo con su factura.";
/// The address the member gives in after_hours.mjs's contact form.
const REPLY_ADDRESS: &str = "pat@member.example";

/// The tools the browser tests need, or a message saying how to install them.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    const HOW: &str = "run scripts/test.sh (it installs them), or: \
        sudo apt-get install -y chromium nodejs npm && (cd tests/browser && npm ci)";
    let chromium = PathBuf::from(
        std::env::var("CARELINE_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned()),
    );
    if !chromium.is_file() {
        return Err(format!(
            "Chromium is not installed at {}: {HOW}",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Err(format!("Node.js (`node`) is not on PATH: {HOW}"));
    }
    let dir = Path::new(BROWSER_DIR)
        .canonicalize()
        .map_err(|e| e.to_string())?;
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Err(format!(
            "playwright-core is not installed in {}: {HOW}",
            dir.display()
        ));
    }
    Ok((chromium, dir))
}

/// The demo tenant's widget usable from any origin: the page's origin is the test gateway's
/// own random port. Applied before the gateway loads its tenants.
fn widget_anywhere(tenant: &mut TenantConfig) {
    for widget in &mut tenant.chat.widgets {
        widget.allowed_origins = vec!["*".into()];
    }
}

/// Where a test's screenshot is kept.
fn screenshot_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser/{name}"));
    let _ = std::fs::remove_file(&path);
    path
}

/// One `node tests/browser/<script> <gateway URL> <screenshot>` run, read as it goes.
struct BrowserRun {
    child: tokio::process::Child,
    events: JoinHandle<Vec<String>>,
    log: JoinHandle<String>,
}

impl BrowserRun {
    fn start(
        script: &str,
        gateway: std::net::SocketAddr,
        screenshot: &Path,
        env: &[(&str, &str)],
    ) -> BrowserRun {
        let (chromium, dir) = browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join(script))
            .arg(format!("http://{gateway}/"))
            .arg(screenshot)
            .env("CARELINE_CHROMIUM", &chromium)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let events = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("browser: {line}");
                seen.push(line);
            }
            seen
        });
        let stderr = child.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut all = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        BrowserRun { child, events, log }
    }

    /// Waits for the script; returns its events, after asserting it passed.
    async fn passed(mut self) -> Vec<String> {
        let status: ExitStatus = tokio::time::timeout(BROWSER_DEADLINE, self.child.wait())
            .await
            .expect("the browser session ends in time")
            .expect("node runs");
        let log = self.log.await.unwrap();
        let seen = self.events.await.unwrap();
        assert!(
            status.success(),
            "the browser test failed ({status}):\n{log}"
        );
        assert!(
            seen.iter().any(|line| line.contains("\"passed\"")),
            "the browser script did not finish: {seen:?}\n{log}"
        );
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_chats_in_spanish_in_a_real_browser_with_the_keyboard_only() {
    browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
    let platform = Platform::start().await;
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.unwrap());
    let mut demo = careline_testkit::demo::tenant_always_open();
    widget_anywhere(&mut demo);
    TenantStore::open(&js, None)
        .await
        .unwrap()
        .put(&demo)
        .await
        .expect("demo tenant updated");
    let gateway = platform.gateway().await;
    // Ana speaks Spanish and has the billing and member-services skills: the chat is hers.
    let mut desk = platform.desk("ana").await;
    let mut agent = gateway.agent("ana", "Ana").await;

    let screenshot = screenshot_path("chat-es.png");
    let browser = BrowserRun::start(
        "chat.mjs",
        gateway.http,
        &screenshot,
        &[("CARELINE_EXPECT_AGENT_TEXT", AGENT_ANSWER)],
    );

    // The chat the browser started, as the router knows it.
    let mut router = platform.router().await;
    let chat_of = |list: v1::ListInteractionsResponse| {
        list.interactions
            .into_iter()
            .find(|i| i.channel == v1::Channel::Chat as i32)
    };
    careline_testkit::assert_eventually!(
        within: BROWSER_DEADLINE,
        chat_of(router.list_interactions(v1::ListInteractionsRequest::default()).await.expect("lists").into_inner()).is_some(),
        "the browser started a chat"
    );
    let chat = chat_of(
        router
            .list_interactions(v1::ListInteractionsRequest::default())
            .await
            .expect("lists")
            .into_inner(),
    )
    .unwrap();
    assert_eq!(
        chat.language,
        v1::Language::Es as i32,
        "the router heard Spanish"
    );
    desk.take(&chat.id).await;
    let joined = agent.joined(&chat.id).await;
    assert_eq!(joined.member_first_name, "Rosa");
    assert!(
        joined
            .transcript
            .iter()
            .any(|entry| entry.text == FIRST_MESSAGE),
        "the agent gets the member's first message: {:?}",
        joined.transcript
    );
    agent.say(&chat.id, "agent-1", AGENT_ANSWER).await;
    for text in [ENTER_MESSAGE, BUTTON_MESSAGE, RESUMED_MESSAGE] {
        let entry = agent.heard(text).await;
        assert_eq!(entry.interaction_id, chat.id);
    }

    browser.passed().await;
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!("screenshot of the chat: {}", screenshot.display());
    // Nothing was stored twice: the transcript has each message once.
    let transcript = gateway
        .transcript(&chat.id, careline_testkit::demo::API_KEY)
        .await
        .expect("transcript");
    for text in [
        FIRST_MESSAGE,
        ENTER_MESSAGE,
        BUTTON_MESSAGE,
        RESUMED_MESSAGE,
        AGENT_ANSWER,
    ] {
        let count = transcript.entries.iter().filter(|e| e.text == text).count();
        assert_eq!(count, 1, "{text:?} is in the transcript {count} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_tenant_chat_offers_after_hours_help_and_the_widget_contact_form_reaches_email() {
    browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
    let env = ContactPlatform::start_with(widget_anywhere).await;
    let screenshot = screenshot_path("after-hours-en.png");
    let seen = BrowserRun::start(
        "after_hours.mjs",
        env.gateway.http,
        &screenshot,
        &[("CARELINE_REPLY_ADDRESS", REPLY_ADDRESS)],
    )
    .passed()
    .await;
    let shown = seen
        .iter()
        .find(|line| line.contains("after_hours_shown"))
        .expect("the after-hours help was shown");
    let demo = careline_testkit::demo::tenant();
    assert!(shown.contains(&demo.contact_email), "{shown}");
    assert!(shown.contains(&demo.portal_url), "{shown}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!(
        "screenshot of the after-hours panel: {}",
        screenshot.display()
    );
    // The widget's contact form became an email interaction (beside the queued chat).
    let email = env.wait_for_email_interactions(1).await;
    assert_eq!(email.len(), 1);
}
