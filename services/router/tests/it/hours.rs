//! Business hours at the edge: voice is refused outside hours with the hours,
//! the after-hours message and the contact email; email and chat are accepted
//! and flagged. The demo tenant is open weekdays 07:00-19:00 America/Denver.

use careline_proto::v1;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{DEMO_KEY, Platform, create};

#[tokio::test]
async fn voice_follows_business_hours_across_dst() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    // (instant, open?) — Denver is UTC-6 in summer time, UTC-7 in winter.
    let cases = [
        ("2026-03-06T14:30:00Z", true),  // Fri 07:30 MST
        ("2026-03-06T13:30:00Z", false), // Fri 06:30 MST
        ("2026-03-09T13:30:00Z", true),  // Mon after the spring change: 07:30 MDT
        ("2026-03-09T12:30:00Z", false), // 06:30 MDT
        ("2026-10-30T00:59:00Z", true),  // Thu 18:59 MDT
        ("2026-10-30T01:00:00Z", false), // Thu 19:00 MDT
        ("2026-11-02T14:30:00Z", true),  // Mon after the autumn change: 07:30 MST
        ("2026-11-02T13:30:00Z", false), // 06:30 MST
        ("2026-11-28T18:00:00Z", false), // Saturday
        ("2026-12-25T18:00:00Z", false), // holiday, a Friday
    ];
    for (index, (at, open)) in cases.into_iter().enumerate() {
        platform.set_now(at);
        let result = client
            .create_interaction(create(
                "general",
                v1::Channel::Voice,
                &format!("hours-{index}"),
            ))
            .await;
        assert_eq!(result.is_ok(), open, "at {at}: {result:?}");
        if let Err(status) = result {
            assert_eq!(status.code(), Code::FailedPrecondition, "at {at}");
            let details = status.get_error_details();
            let info = details.error_info().expect("error info attached");
            assert_eq!(info.reason, "OUTSIDE_BUSINESS_HOURS");
            assert_eq!(info.metadata["contact_email"], "help@demo-health.example");
            assert!(
                info.metadata["hours"].contains("07:00-19:00"),
                "{:?}",
                info.metadata
            );
            assert!(info.metadata["after_hours_message"].contains("7am to 7pm"));
        }
    }
    platform.stop().await;
}

#[tokio::test]
async fn email_and_chat_are_accepted_after_hours_and_flagged() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    platform.set_now("2026-11-28T18:00:00Z");
    for (channel, key) in [
        (v1::Channel::Email, "ah-email"),
        (v1::Channel::Chat, "ah-chat"),
    ] {
        let created = client
            .create_interaction(create("general", channel, key))
            .await
            .expect("accepted")
            .into_inner();
        assert!(created.interaction.unwrap().after_hours, "{channel:?}");
    }
    platform.set_now("2026-11-25T17:00:00Z");
    let created = client
        .create_interaction(create("general", v1::Channel::Email, "in-hours"))
        .await
        .unwrap()
        .into_inner();
    assert!(!created.interaction.unwrap().after_hours);
    platform.stop().await;
}

/// A Saturday: the demo tenant is closed.
const SATURDAY: &str = "2026-11-28T18:00:00Z";

fn call_about(text: &str, language: v1::Language, key: &str) -> v1::CreateInteractionRequest {
    let mut request = create("general", v1::Channel::Voice, key);
    request.language = language as i32;
    request.context.as_mut().unwrap().reason = text.into();
    request
}

#[tokio::test]
async fn an_urgent_call_after_hours_goes_to_the_urgent_queue_when_it_is_open_24_7() {
    let mut tenant = crate::harness::demo();
    let clinical = tenant
        .queues
        .iter_mut()
        .find(|q| q.id == "clinical")
        .unwrap();
    clinical.open_24_7 = true;
    let platform = Platform::start_with_demo(tenant).await;
    let mut client = platform.client(DEMO_KEY).await;
    platform.set_now(SATURDAY);
    let created = client
        .create_interaction(call_about(
            "I have chest pain",
            v1::Language::En,
            "urgent-open",
        ))
        .await
        .expect("an urgent call is taken by the open nurse line")
        .into_inner()
        .interaction
        .unwrap();
    assert_eq!(created.queue_id, "clinical");
    assert!(created.urgent);
    // The same Saturday, a call that is not urgent still meets closed lines.
    let refused = client
        .create_interaction(call_about("a billing question", v1::Language::En, "plain"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(!refused.message().contains("911"), "{}", refused.message());
    platform.stop().await;
}

#[tokio::test]
async fn an_urgent_call_when_nothing_is_open_is_told_to_call_988_or_911_first_in_its_language() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    platform.set_now(SATURDAY);
    let cases = [
        (
            "quiero quitarme la vida",
            v1::Language::Es,
            "llame o envíe un mensaje de texto al 988",
        ),
        (
            "dolor de pecho muy fuerte",
            v1::Language::Es,
            "llame al 911 ahora",
        ),
        ("I can't breathe", v1::Language::En, "call 911 now"),
    ];
    for (i, (text, language, first)) in cases.into_iter().enumerate() {
        let refused = client
            .create_interaction(call_about(text, language, &format!("closed-{i}")))
            .await
            .expect_err("every queue is closed on Saturday");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        let message = refused.message();
        let guidance = message
            .find(first)
            .unwrap_or_else(|| panic!("{first:?} in {message}"));
        let hours = message.find("07:00-19:00").expect("the hours follow");
        assert!(
            guidance < hours,
            "the guidance comes before the hours: {message}"
        );
        let details = refused.get_error_details();
        let info = details.error_info().expect("error info attached");
        assert!(
            info.metadata["emergency_guidance"].contains(first),
            "{:?}",
            info.metadata
        );
        let localized = details.localized_message().expect("localized message");
        assert!(
            localized
                .message
                .starts_with(&info.metadata["emergency_guidance"])
        );
    }
    platform.stop().await;
}

#[tokio::test]
async fn a_queue_with_its_own_hours_opens_and_closes_by_them_not_the_tenants() {
    let mut tenant = crate::harness::demo();
    let billing = tenant
        .queues
        .iter_mut()
        .find(|q| q.id == "billing")
        .unwrap();
    billing.hours = Some(vec![careline_domain::tenant::OpeningHours {
        days: vec![chrono::Weekday::Sat],
        open: "09:00".into(),
        close: "13:00".into(),
    }]);
    let platform = Platform::start_with_demo(tenant).await;
    let mut client = platform.client(DEMO_KEY).await;
    // (instant, queue, open?): Saturday 11:00 and Wednesday 10:00 in Denver.
    let cases = [
        ("2026-11-28T18:00:00Z", "billing", true),
        ("2026-11-28T18:00:00Z", "general", false),
        ("2026-11-25T17:00:00Z", "billing", false),
        ("2026-11-25T17:00:00Z", "general", true),
    ];
    for (i, (at, queue, open)) in cases.into_iter().enumerate() {
        platform.set_now(at);
        let result = client
            .create_interaction(create(queue, v1::Channel::Voice, &format!("own-{i}")))
            .await;
        assert_eq!(result.is_ok(), open, "{queue} at {at}: {result:?}");
        if let Err(refused) = result {
            let expected = if queue == "billing" {
                "Sat 09:00-13:00"
            } else {
                "07:00-19:00"
            };
            assert!(
                refused.message().contains(expected),
                "{}",
                refused.message()
            );
        }
    }
    platform.stop().await;
}
