//! Who gets a survey: the member's window, replicas and redeliveries, opt-out
//! and a missing contact address.

use careline_proto::v1;

use careline_testkit::demo::IVR_KEY;

use crate::harness::{DEMO_KEY, MAIL_DEADLINE, Platform};

#[tokio::test]
async fn one_survey_per_member_per_90_days_from_when_it_was_sent() {
    let platform = Platform::start(1).await;
    platform
        .set_contact("member-7", "pat@member.example", "en")
        .await;

    platform.resolve("ix-day-0", "member-7").await;
    platform.survey_token("ix-day-0").await;
    assert_eq!(platform.outcome("ix-day-0").await, "sent");

    platform.set_day(10);
    platform.resolve("ix-day-10", "member-7").await;
    assert_eq!(platform.outcome("ix-day-10").await, "throttled");

    platform.set_day(91);
    platform.resolve("ix-day-91", "member-7").await;
    platform.survey_token("ix-day-91").await;
    assert_eq!(platform.outcome("ix-day-91").await, "sent");

    assert!(platform.surveys_for("ix-day-10").is_empty());
    let to_member: Vec<_> = platform
        .sink
        .received()
        .into_iter()
        .filter(|mail| mail.rcpt_to == ["pat@member.example"])
        .collect();
    assert_eq!(to_member.len(), 2, "day 0 and day 91");
    platform.stop().await;
}

#[tokio::test]
async fn two_replicas_and_ten_redeliveries_send_exactly_one_email() {
    let platform = Platform::start(2).await;
    platform
        .set_contact("member-r", "rio@member.example", "es")
        .await;
    let publishes = (0..10).map(|_| platform.resolve("ix-redelivered", "member-r"));
    futures::future::join_all(publishes).await;
    // A second interaction of the same member resolved at the same moment:
    // the race for the member's window has one winner.
    platform.resolve("ix-racing", "member-r").await;

    let racing = platform.outcome("ix-racing").await;
    let first = platform.outcome("ix-redelivered").await;
    assert!(
        [first.as_str(), racing.as_str()] == ["sent", "throttled"]
            || [first.as_str(), racing.as_str()] == ["throttled", "sent"],
        "{first} / {racing}"
    );
    // Everything published was handled before the count is taken.
    careline_testkit::assert_eventually!(
        within: MAIL_DEADLINE,
        platform.consumer_idle().await,
        "the resolved events are all handled"
    );
    careline_testkit::assert_eventually!(
        within: MAIL_DEADLINE,
        platform.surveys_for("ix-redelivered").len() + platform.surveys_for("ix-racing").len() == 1,
        "the one survey email arrives"
    );
    platform.notifications_idle().await;
    let to_member = platform
        .sink
        .received()
        .into_iter()
        .filter(|mail| mail.rcpt_to == ["rio@member.example"])
        .count();
    assert_eq!(
        to_member, 1,
        "exactly one email, however often it was asked for"
    );
    platform.stop().await;
}

#[tokio::test]
async fn an_opted_out_member_gets_no_survey_and_one_without_an_address_neither_and_intake_keys_cannot_read_scores()
 {
    let platform = Platform::start(1).await;
    platform
        .set_contact("member-out", "out@member.example", "en")
        .await;
    platform
        .client(DEMO_KEY)
        .await
        .opt_out(v1::OptOutRequest {
            member_ref: "member-out".into(),
        })
        .await
        .expect("opt-out recorded");
    platform.resolve("ix-opted-out", "member-out").await;
    assert_eq!(platform.outcome("ix-opted-out").await, "opted_out");

    platform.resolve("ix-no-address", "member-unknown").await;
    assert_eq!(platform.outcome("ix-no-address").await, "no_contact");

    // A member who can be surveyed still is (the sink works).
    platform
        .set_contact("member-in", "in@member.example", "en")
        .await;
    platform.resolve("ix-in", "member-in").await;
    platform.survey_token("ix-in").await;
    assert!(platform.surveys_for("ix-opted-out").is_empty());
    assert!(platform.surveys_for("ix-no-address").is_empty());

    // An intake-only key (the IVR's) may record an opt-out but not read the scores.
    let mut ivr = platform.client(IVR_KEY).await;
    ivr.opt_out(v1::OptOutRequest {
        member_ref: "member-ivr".into(),
    })
    .await
    .expect("intake may opt a member out");
    let error = ivr
        .get_survey_stats(v1::GetSurveyStatsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
    assert!(
        error.message().contains("supervisor"),
        "{}",
        error.message()
    );

    let error = platform
        .client(DEMO_KEY)
        .await
        .opt_out(v1::OptOutRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("member_ref"),
        "{}",
        error.message()
    );
    platform.stop().await;
}
