//! The widget in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/browser/*.mjs`) on the gateway's demo page, with the keyboard only.
//!
//! - `chat.mjs`: a member starts a chat in Spanish; a gRPC test agent takes it and answers; the
//!   member sees the answer, sends two more messages (Enter in the box, Tab to Send and Enter),
//!   reloads the page (the chat resumes from sessionStorage, each message shown once) and sends
//!   one more; Escape closes the panel.
//! - `after_hours.mjs`: the tenant is closed; the widget shows the after-hours message, contact
//!   email and portal link, and its contact form becomes an email interaction.
//! - `callback.mjs`: the tenant is closed; the widget offers a call-back, refuses a number too
//!   short beside the field, and the member's number becomes a target of the call-back campaign.
//!
//! Screenshots are kept under the target directory (`target/tmp/browser/`), their paths printed.
//! `scripts/test.sh` installs what this needs (`ensure_browser_tools` in scripts/lib.sh):
//! Debian's chromium and the playwright-core pinned in tests/browser/package-lock.json.

use std::path::PathBuf;

use careline_bus::TenantStore;
use careline_domain::TenantConfig;
use careline_proto::v1;
use careline_testkit::browser::{BROWSER_DEADLINE, BrowserRun, browser_tools};

use crate::callback::CallbackPlatform;
use crate::contact::ContactPlatform;
use crate::harness::Platform;

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

/// The demo tenant's widget usable from any origin: the page's origin is the test gateway's
/// own random port. Applied before the gateway loads its tenants.
fn widget_anywhere(tenant: &mut TenantConfig) {
    for widget in &mut tenant.chat.widgets {
        widget.allowed_origins = vec!["*".into()];
    }
}

/// Where a test's screenshot is kept.
fn screenshot_path(name: &str) -> PathBuf {
    careline_testkit::browser::screenshot_path(env!("CARGO_TARGET_TMPDIR"), name)
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
        &format!("http://{}/", gateway.http),
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
        &format!("http://{}/", env.gateway.http),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_widget_offers_a_call_back_that_becomes_a_target_of_the_call_back_campaign() {
    browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
    let env = CallbackPlatform::start_with(widget_anywhere).await;
    let screenshot = screenshot_path("callback-en.png");
    let seen = BrowserRun::start(
        "callback.mjs",
        &format!("http://{}/", env.gateway.http),
        &screenshot,
        &[],
    )
    .passed()
    .await;
    assert!(
        seen.iter().any(|line| line.contains("callback_sent")),
        "{seen:?}"
    );
    println!("screenshot of the call-back form: {}", screenshot.display());
    env.wait_for_targets(1).await;
}
