//! Emails that cannot be sent go to the dead letters at once (5xx, bad
//! request) or after the last attempt; ListDeadLetters shows them to their
//! tenant only, and ReplayDeadLetter sends them.

use careline_proto::v1;
use careline_testkit::{DEFAULT_DEADLINE, assert_eventually};
use tonic::Code;

use crate::harness::{DEMO_KEY, OTHER_KEY, Platform, RETRY_DEADLINE, request};

async fn dead_letters(platform: &Platform, key: &str) -> Vec<v1::DeadLetter> {
    platform
        .client(key)
        .await
        .list_dead_letters(v1::ListDeadLettersRequest::default())
        .await
        .expect("ListDeadLetters answers")
        .into_inner()
        .dead_letters
}

#[tokio::test]
async fn permanent_refusal_is_dead_lettered_at_once_and_replay_sends_it() {
    let _recorder = careline_kit::metrics::prometheus_handle().expect("metrics recorder");
    let platform = Platform::start(1).await;
    platform.sink.reply_next([550]);
    platform.publish(&request("n-550", "receipt", "en")).await;

    assert_eventually!(
        dead_letters(&platform, DEMO_KEY).await.len() == 1,
        "the refused email is a dead letter"
    );
    let dead = &dead_letters(&platform, DEMO_KEY).await[0];
    assert_eq!(dead.notification_id, "n-550");
    assert_eq!(dead.smtp_code, 550);
    assert_eq!(dead.reason, "smtp_permanent");
    assert_eq!(dead.interaction_id, "ix-42");
    assert_eq!(platform.sink.answered(), 1, "no retry after a 5xx");
    assert!(platform.sink.received().is_empty());
    let words: Vec<String> = platform
        .statuses_of("n-550")
        .await
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    assert_eq!(words, ["dead_lettered"]);
    // What the chart's CarelineNotificationsDeadLettered alert reads.
    let metrics = careline_kit::metrics::render().expect("metrics render");
    assert!(
        metrics.lines().any(
            |line| line.starts_with("careline_notifications_dead_lettered_total{")
                && line.contains("tenant=\"demo-health\"")
                && line.contains("reason=\"smtp_permanent\"")
                && line.ends_with(" 1")
        ),
        "{metrics}"
    );
    assert!(
        dead_letters(&platform, OTHER_KEY).await.is_empty(),
        "another tenant never sees it"
    );
    let other_replay = platform
        .client(OTHER_KEY)
        .await
        .replay_dead_letter(v1::ReplayDeadLetterRequest {
            notification_id: "n-550".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other_replay.code(), Code::NotFound);

    platform
        .client(DEMO_KEY)
        .await
        .replay_dead_letter(v1::ReplayDeadLetterRequest {
            notification_id: "n-550".into(),
        })
        .await
        .expect("replay accepted");
    assert_eventually!(
        platform.mail_for("n-550").len() == 1,
        "the replayed email arrives"
    );
    platform.settled(DEFAULT_DEADLINE).await;
    assert_eq!(platform.mail_for("n-550").len(), 1);
    assert_eq!(
        platform.mail_for("n-550")[0]
            .header("Message-ID")
            .as_deref(),
        Some("<n-550@demo-health.example>"),
        "the same Message-ID as the refused attempt"
    );
    assert!(dead_letters(&platform, DEMO_KEY).await.is_empty());
    platform.stop().await;
}

#[tokio::test]
async fn replaying_an_unknown_or_malformed_id_is_refused_with_the_right_code() {
    let platform = Platform::start(1).await;
    let mut client = platform.client(DEMO_KEY).await;
    let unknown = client
        .replay_dead_letter(v1::ReplayDeadLetterRequest {
            notification_id: "never-seen".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("ListDeadLetters"),
        "{}",
        unknown.message()
    );
    let malformed = client
        .replay_dead_letter(v1::ReplayDeadLetterRequest {
            notification_id: "bad id\n".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("notification_id"));
    let too_many = client
        .list_dead_letters(v1::ListDeadLettersRequest { page_size: 5000 })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let anonymous =
        careline_proto::v1::notification_service_client::NotificationServiceClient::connect(
            format!("http://{}", platform.addr()),
        )
        .await
        .unwrap()
        .list_dead_letters(v1::ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    platform.stop().await;
}

#[tokio::test]
async fn an_invalid_request_is_dead_lettered_without_reaching_the_relay() {
    let platform = Platform::start(1).await;
    let mut bad_address = request("n-bad-to", "receipt", "en");
    bad_address.to_address = "not an address".into();
    platform.publish(&bad_address).await;
    platform
        .publish(&request("n-bad-template", "newsletter", "en"))
        .await;

    assert_eventually!(
        dead_letters(&platform, DEMO_KEY).await.len() == 2,
        "both are dead letters"
    );
    let mut reasons: Vec<(String, String)> = dead_letters(&platform, DEMO_KEY)
        .await
        .into_iter()
        .map(|d| (d.notification_id, d.reason))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("n-bad-template".to_owned(), "unknown_template".to_owned()),
            ("n-bad-to".to_owned(), "invalid_recipient".to_owned()),
        ]
    );
    assert_eq!(platform.sink.answered(), 0);
    platform.stop().await;
}

#[tokio::test]
async fn temporary_failures_past_the_last_attempt_are_dead_lettered() {
    let platform = Platform::start_with(1, |config| config.max_attempts = 2).await;
    platform.sink.reply_next([451, 452]);
    platform
        .publish(&request("n-exhausted", "receipt", "en"))
        .await;

    assert_eventually!(
        within: RETRY_DEADLINE,
        dead_letters(&platform, DEMO_KEY).await.len() == 1,
        "the email is a dead letter after two attempts"
    );
    let dead = &dead_letters(&platform, DEMO_KEY).await[0];
    assert_eq!(dead.reason, "retries_exhausted");
    assert_eq!(platform.sink.answered(), 2);
    let seen: Vec<(String, u32)> = platform
        .statuses_of("n-exhausted")
        .await
        .into_iter()
        .map(|(w, s)| (w, s.attempt))
        .collect();
    assert_eq!(
        seen,
        [("failed".to_owned(), 1), ("dead_lettered".to_owned(), 2)]
    );
    platform.stop().await;
}
