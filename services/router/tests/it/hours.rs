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
