//! The survey page in a real browser (`tests/browser/survey.mjs`): a member
//! answers a Spanish survey with the keyboard only, and GetSurveyStats
//! changes accordingly.

use careline_proto::v1;
use careline_testkit::browser::{BrowserRun, browser_tools, screenshot_path};

use crate::harness::{DEMO_KEY, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_answers_the_survey_in_spanish_with_the_keyboard_only_and_the_stats_change() {
    browser_tools().unwrap_or_else(|missing| panic!("{missing}"));
    let platform = Platform::start(1).await;
    platform
        .set_contact("member-rosa", "rosa@member.example", "es")
        .await;
    platform.resolve("ix-browser", "member-rosa").await;
    let token = platform.survey_token("ix-browser").await;
    let mut client = platform.client(DEMO_KEY).await;
    let before = client
        .get_survey_stats(v1::GetSurveyStatsRequest::default())
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(before.responses, 0);

    let screenshot = screenshot_path(env!("CARGO_TARGET_TMPDIR"), "survey-es.png");
    let url = format!("http://{}/s/{token}", platform.http_addr());
    BrowserRun::start("survey.mjs", &url, &screenshot, &[])
        .passed()
        .await;
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!(
        "screenshot of the answered survey: {}",
        screenshot.display()
    );

    let after = client
        .get_survey_stats(v1::GetSurveyStatsRequest {
            queue_id: "general".into(),
            agent_id: "ana".into(),
            ..Default::default()
        })
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(
        (after.responses, after.promoters, after.detractors),
        (1, 1, 0)
    );
    assert_eq!(after.nps, 100.0);
    assert_eq!(after.mean_hire_agent, 10.0);
    assert_eq!(after.mean_ease, 4.0);
    platform.stop().await;
}
