//! `careline-survey-dispatcher`: runs the survey service until SIGTERM or ctrl-c.

use careline_survey_dispatcher::SurveyConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<SurveyConfig, _, _, _>(
        "careline-survey-dispatcher",
        careline_survey_dispatcher::serve,
    )
    .await
}
