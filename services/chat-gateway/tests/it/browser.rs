//! The widget in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/browser/chat.mjs`) opens the gateway's demo page and, with the keyboard only, starts
//! a chat in Spanish; a gRPC test agent takes it and answers; the member sees the answer, sends
//! two more messages (Enter in the box, Tab to Send and Enter), reloads the page (the chat
//! resumes from sessionStorage, each message shown once) and sends one more, and Escape closes
//! the panel.
//! The screenshot is kept under the target directory and its path printed.
//!
//! `scripts/test.sh` installs what this needs (`ensure_browser_tools` in scripts/lib.sh): Debian's
//! chromium and the playwright-core pinned in tests/browser/package-lock.json.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use careline_bus::TenantStore;
use careline_proto::v1;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::Platform;

/// The browser script, and the directory its playwright-core is installed in.
const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser");
/// Debian's Chromium; `CARELINE_CHROMIUM` overrides it.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long the whole browser session may take.
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

/// The tools the browser test needs, or a message saying how to install them.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_chats_in_spanish_in_a_real_browser_with_the_keyboard_only() {
    let (chromium, dir) = browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
    let platform = Platform::start().await;
    // The page's origin is the test gateway's own random port: let the demo widget be used
    // from anywhere, before the gateway loads its tenants.
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.unwrap());
    let mut demo = careline_testkit::demo::tenant_always_open();
    for widget in &mut demo.chat.widgets {
        widget.allowed_origins = vec!["*".into()];
    }
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

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser/chat-es.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut browser = tokio::process::Command::new("node")
        .arg(dir.join("chat.mjs"))
        .arg(format!("http://{}/", gateway.http))
        .arg(&screenshot)
        .env("CARELINE_CHROMIUM", &chromium)
        .env("CARELINE_EXPECT_AGENT_TEXT", AGENT_ANSWER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut events = BufReader::new(browser.stdout.take().unwrap()).lines();
    let stderr = browser.stderr.take().unwrap();
    let browser_log = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = events.next_line().await {
            println!("browser: {line}");
            seen.push(line);
        }
        seen
    });

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

    let status = tokio::time::timeout(BROWSER_DEADLINE, browser.wait())
        .await
        .expect("the browser session ends in time")
        .expect("node runs");
    let log = browser_log.await.unwrap();
    let seen = seen.await.unwrap();
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{log}"
    );
    assert!(
        seen.iter().any(|line| line.contains("\"passed\"")),
        "the browser script did not finish: {seen:?}\n{log}"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!("screenshot of the chat: {}", screenshot.display());
    // Nothing was shown or stored twice: the transcript has each member message once.
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
