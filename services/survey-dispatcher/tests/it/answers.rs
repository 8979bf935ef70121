//! Answering: the page and SubmitSurveyResponse, forged / expired / replayed
//! links, and the stats an answer changes.

use careline_proto::v1;
use tonic::Code;

use crate::harness::{DEMO_KEY, Platform, http};

fn submit(
    token: &str,
    recommend: i32,
    hire_agent: i32,
    ease: i32,
) -> v1::SubmitSurveyResponseRequest {
    v1::SubmitSurveyResponseRequest {
        token: token.into(),
        recommend,
        hire_agent,
        ease,
        comment: "Muy amable".into(),
    }
}

async fn stats(platform: &Platform, agent_id: &str) -> v1::GetSurveyStatsResponse {
    platform
        .client(DEMO_KEY)
        .await
        .get_survey_stats(v1::GetSurveyStatsRequest {
            agent_id: agent_id.into(),
            ..Default::default()
        })
        .await
        .expect("stats")
        .into_inner()
}

#[tokio::test]
async fn the_page_records_one_answer_and_the_stats_follow() {
    let platform = Platform::start(1).await;
    platform
        .set_contact("member-es", "ana.m@member.example", "es")
        .await;
    platform.resolve("ix-page", "member-es").await;
    let token = platform.survey_token("ix-page").await;
    let path = format!("/s/{token}");

    let (status, page) = http(platform.http_addr(), "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"es\">"), "{page}");
    assert!(
        page.contains("¿Qué tan probable es que contratara a la persona"),
        "{page}"
    );
    assert!(page.contains("<legend"), "{page}");
    assert!(!page.contains("<script"), "works without JavaScript");

    let (status, page) = http(platform.http_addr(), "POST", &path, "recommend=10&ease=4").await;
    assert_eq!(status, 422, "a question left out is asked again");
    assert!(page.contains("role=\"alert\""), "{page}");
    assert_eq!(stats(&platform, "").await.responses, 0, "nothing stored");

    let form = "recommend=10&hire_agent=9&ease=4&comment=Muy+amable";
    let (status, page) = http(platform.http_addr(), "POST", &path, form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("¡Gracias!"), "{page}");

    let after = stats(&platform, "ana").await;
    assert_eq!((after.responses, after.promoters), (1, 1));
    assert_eq!(after.nps, 100.0);
    assert_eq!(after.mean_hire_agent, 9.0);
    assert_eq!(after.mean_ease, 4.0);
    assert_eq!(stats(&platform, "luis").await.responses, 0, "by agent");

    let (status, page) = http(platform.http_addr(), "POST", &path, form).await;
    assert_eq!(status, 409);
    assert!(page.contains("ya fue respondida"), "{page}");
    let (status, page) = http(platform.http_addr(), "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("ya fue respondida"), "{page}");
    assert_eq!(
        stats(&platform, "").await.responses,
        1,
        "a replay stores nothing"
    );
    platform.stop().await;
}

#[tokio::test]
async fn forged_expired_and_replayed_tokens_store_nothing() {
    let platform = Platform::start(1).await;
    platform
        .set_contact("member-t", "t@member.example", "en")
        .await;
    platform.resolve("ix-token", "member-t").await;
    let token = platform.survey_token("ix-token").await;
    let mut client = platform.client(DEMO_KEY).await;

    let (payload, mac) = token.split_once('.').unwrap();
    let mut altered = payload.to_owned().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    let forged = format!("{}.{mac}", String::from_utf8(altered).unwrap());
    let error = client
        .submit_survey_response(submit(&forged, 9, 9, 5))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("not valid"), "{}", error.message());
    let (status, page) = http(
        platform.http_addr(),
        "POST",
        &format!("/s/{forged}"),
        "recommend=9&hire_agent=9&ease=5",
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("not valid"), "{page}");

    let error = client
        .submit_survey_response(submit(&token, 11, 9, 5))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("recommend must be from 0 to 10"),
        "{}",
        error.message()
    );

    let other = platform.client("not-a-key-of-anyone-000000000000").await;
    let mut other = other;
    let error = other
        .submit_survey_response(submit(&token, 9, 9, 5))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    // Links are valid 14 days (the demo tenant's default).
    platform.set_day(15);
    let error = client
        .submit_survey_response(submit(&token, 9, 9, 5))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(error.message().contains("expired"), "{}", error.message());
    let (status, page) = http(platform.http_addr(), "GET", &format!("/s/{token}"), "").await;
    assert_eq!(status, 410);
    assert!(
        page.contains("expired") && page.contains("vencido"),
        "{page}"
    );
    assert_eq!(stats(&platform, "").await.responses, 0);

    platform.set_day(1);
    let first = client
        .submit_survey_response(submit(&token, 3, 2, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.interaction_id, "ix-token");
    let error = client
        .submit_survey_response(submit(&token, 10, 10, 5))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);
    let after = stats(&platform, "").await;
    assert_eq!((after.responses, after.detractors), (1, 1));
    assert_eq!(
        after.nps, -100.0,
        "the replay did not overwrite the first answer"
    );
    platform.stop().await;
}
