//! NPS from survey answers, and quality review: supervisors score resolved
//! interactions against the tenant's rubric and mark them for coaching; the
//! agents' quality follows in GetKpis, through a replay of the log, and
//! another tenant's interactions are never found.

use careline_bus::EVENTS_STREAM;
use careline_proto::v1;
use careline_proto::v1::InteractionEventKind as I;
use prost::Message as _;
use tonic::Code;

use crate::harness::{DEMO_KEY, Platform, TENANT};
use crate::kpis::{Log, ms};

/// A valid interaction id numbered `n`.
pub(crate) fn ix_id(n: u32) -> String {
    format!("ix_{n:026}")
}

/// The KPIs of `agent` ("" : the tenant) per day, from two days ago to tomorrow.
async fn days_around_now(platform: &Platform, key: &str, agent: &str) -> Vec<v1::Kpis> {
    let now = chrono::Utc::now().timestamp_millis();
    platform
        .client(key)
        .await
        .get_kpis(v1::GetKpisRequest {
            period: v1::KpiPeriod::Day as i32,
            agent_id: agent.to_owned(),
            from_ms: now - 2 * 86_400_000,
            to_ms: now + 86_400_000,
            ..Default::default()
        })
        .await
        .expect("GetKpis answers")
        .into_inner()
        .periods
}

fn score(criterion: &str, score: u32, comment: &str) -> v1::CriterionScoreInput {
    v1::CriterionScoreInput {
        criterion_id: criterion.to_owned(),
        score,
        comment: comment.to_owned(),
    }
}

fn full_scores() -> Vec<v1::CriterionScoreInput> {
    vec![
        score("engagement", 5, "warm greeting, checked understanding"),
        score("accuracy", 4, ""),
        score("compliance", 3, "verify identity before the claim status"),
    ]
}

/// Contact 1 resolved by ana on `general`, contact 2 still waiting.
fn resolved_and_waiting() -> Vec<v1::Event> {
    let mut log = Log::default();
    let (one, two) = (ix_id(1), ix_id(2));
    log.ix(
        "2026-06-01T10:00:00-04:00",
        I::Created,
        &one,
        "general",
        "",
        "m-1",
        &[],
    );
    log.ix(
        "2026-06-01T10:00:20-04:00",
        I::Assigned,
        &one,
        "general",
        "ana",
        "m-1",
        &[],
    );
    log.ix(
        "2026-06-01T10:09:00-04:00",
        I::Resolved,
        &one,
        "general",
        "ana",
        "m-1",
        &[],
    );
    log.ix(
        "2026-06-01T10:10:00-04:00",
        I::Created,
        &two,
        "general",
        "",
        "m-2",
        &[],
    );
    log.events
}

/// (answers, promoters, detractors, NPS) of the one period `request` finds.
async fn nps(platform: &Platform, request: v1::GetKpisRequest) -> (u64, u64, u64, f64) {
    let periods = platform
        .client(DEMO_KEY)
        .await
        .get_kpis(request)
        .await
        .expect("GetKpis answers")
        .into_inner()
        .periods;
    let [period] = periods.as_slice() else {
        panic!("one day expected: {periods:#?}");
    };
    (
        period.surveys_answered,
        period.nps_promoters,
        period.nps_detractors,
        period.nps,
    )
}

#[tokio::test]
async fn survey_answers_make_the_nps_per_tenant_queue_and_agent_and_a_replay_keeps_it() {
    let mut platform = Platform::start(1).await;
    let mut log = Log::default();
    // (contact, agent, likelihood to recommend 0-10)
    for (n, agent, recommend) in [
        (1, "ana", 10),
        (2, "ana", 3),
        (3, "luis", 9),
        (4, "luis", 7),
    ] {
        let id = ix_id(n);
        log.ix(
            "2026-06-01T10:00:00-04:00",
            I::Resolved,
            &id,
            "general",
            agent,
            "",
            &[],
        );
        log.push(
            "2026-06-01T11:00:00-04:00",
            v1::event::Payload::SurveyAnswered(v1::SurveyAnswered {
                interaction_id: id.clone(),
                queue_id: "general".into(),
                agent_id: agent.into(),
                recommend,
                hire_agent: 8,
                ease: 4,
                has_comment: true,
            }),
        );
        // The id survey-dispatcher gives it: one answer per survey.
        log.events.last_mut().unwrap().event_id = format!("survey:{id}");
    }
    platform.publish(&log.events).await;
    platform.settled().await;

    let day = |agent: &str, queue: &str| v1::GetKpisRequest {
        period: v1::KpiPeriod::Day as i32,
        agent_id: agent.to_owned(),
        queue_id: queue.to_owned(),
        from_ms: ms("2026-06-01T00:00:00-04:00"),
        to_ms: ms("2026-06-02T00:00:00-04:00"),
    };
    let before = (
        nps(&platform, day("", "")).await,
        nps(&platform, day("", "general")).await,
        nps(&platform, day("ana", "")).await,
        nps(&platform, day("luis", "")).await,
    );
    assert_eq!(
        before,
        (
            (4, 2, 1, 25.0),
            (4, 2, 1, 25.0),
            (2, 1, 1, 0.0),
            (2, 1, 0, 50.0)
        ),
        "promoters answer 9-10, detractors 0-6; NPS = % promoters - % detractors"
    );

    platform.stop_replicas().await;
    platform.rewind_consumer().await;
    platform.start_replica().await;
    platform.settled().await;
    let replayed = (
        nps(&platform, day("", "")).await,
        nps(&platform, day("", "general")).await,
        nps(&platform, day("ana", "")).await,
        nps(&platform, day("luis", "")).await,
    );
    assert_eq!(replayed, before, "every answer counted once after a replay");
}

#[tokio::test]
async fn supervisor_scores_a_resolved_interaction_and_the_agents_quality_follows_through_a_replay()
{
    let mut platform = Platform::start(1).await;
    platform.publish(&resolved_and_waiting()).await;
    platform.settled().await;
    let mut client = platform.client(DEMO_KEY).await;
    let one = ix_id(1);

    let scored = client
        .score_interaction(v1::ScoreInteractionRequest {
            interaction_id: one.clone(),
            scores: full_scores(),
        })
        .await
        .expect("a resolved interaction is scored")
        .into_inner();
    assert_eq!(scored.agent_id, "ana");
    assert_eq!(scored.average_score, 4.0);
    let coached = client
        .mark_for_coaching(v1::MarkForCoachingRequest {
            interaction_id: one.clone(),
            note: "walk through identity verification".into(),
        })
        .await
        .expect("marked for coaching")
        .into_inner();
    assert_eq!(coached.agent_id, "ana");
    platform.settled().await;

    let quality = |periods: Vec<v1::Kpis>| {
        let [period] = periods.as_slice() else {
            panic!("one day with reviews expected: {periods:#?}");
        };
        (
            period.quality_reviews,
            period.average_quality_score,
            period.quality_by_criterion.clone(),
            period.coaching_marked,
        )
    };
    let before = quality(days_around_now(&platform, DEMO_KEY, "ana").await);
    assert_eq!(before.0, 1);
    assert_eq!(before.1, 4.0);
    assert_eq!(
        before.2.into_iter().collect::<Vec<_>>(),
        vec![
            ("accuracy".to_owned(), 4.0),
            ("compliance".to_owned(), 3.0),
            ("engagement".to_owned(), 5.0)
        ]
    );
    assert_eq!(before.3, 1);
    let before = quality(days_around_now(&platform, DEMO_KEY, "ana").await);

    // The score on the log: the supervisor's words and ids only, kept for
    // the tenant's quality retention (730 days), not the log's 7.
    let stored = platform
        .js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("event stream")
        .get_last_raw_message_by_subject(&format!("careline.{TENANT}.quality.scored"))
        .await
        .expect("the score is on the log");
    assert_eq!(
        stored.headers.get("Nats-TTL").map(|v| v.as_str()),
        Some("63072000")
    );
    let event = v1::Event::decode(stored.payload.as_ref()).expect("an event");
    assert_eq!(event.event_id, scored.event_id);
    let Some(v1::event::Payload::QualityScored(payload)) = event.payload else {
        panic!("a QualityScored event");
    };
    assert_eq!(
        payload,
        v1::QualityScored {
            interaction_id: one.clone(),
            queue_id: "general".into(),
            agent_id: "ana".into(),
            reviewer_key_id: "demo-integration".into(),
            scores: full_scores()
                .into_iter()
                .map(|s| v1::CriterionScore {
                    criterion_id: s.criterion_id,
                    score: s.score,
                    comment: s.comment,
                })
                .collect(),
        }
    );

    let again = client
        .score_interaction(v1::ScoreInteractionRequest {
            interaction_id: one.clone(),
            scores: full_scores(),
        })
        .await
        .expect_err("one score per interaction");
    assert_eq!(again.code(), Code::AlreadyExists, "{}", again.message());

    platform.stop_replicas().await;
    platform.rewind_consumer().await;
    platform.start_replica().await;
    platform.settled().await;
    let replayed = quality(days_around_now(&platform, DEMO_KEY, "ana").await);
    assert_eq!(replayed, before, "a replay counts each review once");
}

#[tokio::test]
async fn scoring_refuses_bad_scores_and_unresolved_unknown_or_other_tenants_interactions() {
    let platform = Platform::start(1).await;
    let other_key = "other-plan-key-7Kq2xWv9Rb3mZp";
    let other = careline_testkit::demo::second_tenant(
        &careline_testkit::demo::tenant_always_open(),
        "other-plan",
        "Other Plan",
        other_key,
    );
    platform.add_tenant(&other, other_key).await;
    let mut theirs = Log::of("other-plan");
    theirs.ix(
        "2026-06-01T10:00:00-04:00",
        I::Resolved,
        &ix_id(5),
        "general",
        "ana",
        "",
        &[],
    );
    platform.publish(&resolved_and_waiting()).await;
    platform.publish(&theirs.events).await;
    platform.settled().await;
    let mut client = platform.client(DEMO_KEY).await;

    let refused = |scores: Vec<v1::CriterionScoreInput>, id: String| {
        let mut client = client.clone();
        async move {
            client
                .score_interaction(v1::ScoreInteractionRequest {
                    interaction_id: id,
                    scores,
                })
                .await
                .expect_err("refused")
        }
    };
    let mut unknown_criterion = full_scores();
    unknown_criterion[1].criterion_id = "empathy".into();
    let mut too_high = full_scores();
    too_high[2].score = 6;
    let cases = [
        (
            refused(unknown_criterion, ix_id(1)).await,
            Code::InvalidArgument,
            "scores[1].criterion_id: \"empathy\" is not a criterion of the tenant's rubric; use one of: engagement, accuracy, compliance",
        ),
        (
            refused(too_high, ix_id(1)).await,
            Code::InvalidArgument,
            "scores[2].score: 6 is out of range; score \"compliance\" from 1 to 5",
        ),
        (
            refused(full_scores()[..2].to_vec(), ix_id(1)).await,
            Code::InvalidArgument,
            "scores: compliance not scored",
        ),
        (
            refused(full_scores(), "ix-1".into()).await,
            Code::InvalidArgument,
            "interaction_id:",
        ),
        (
            refused(full_scores(), ix_id(2)).await,
            Code::FailedPrecondition,
            "is not resolved yet",
        ),
        (
            refused(full_scores(), ix_id(9)).await,
            Code::NotFound,
            "not found for your tenant",
        ),
    ];
    for (status, code, want) in cases {
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(want),
            "{want}: {}",
            status.message()
        );
    }

    // Another tenant's resolved contact is answered exactly as an unknown one.
    let theirs = refused(full_scores(), ix_id(5)).await;
    let unknown = refused(full_scores(), ix_id(9)).await;
    assert_eq!(theirs.code(), Code::NotFound);
    assert_eq!(
        theirs.message(),
        unknown.message().replace(&ix_id(9), &ix_id(5)),
        "no hint that it exists elsewhere"
    );
    let from_them = platform
        .client(other_key)
        .await
        .mark_for_coaching(v1::MarkForCoachingRequest {
            interaction_id: ix_id(1),
            note: "a note".into(),
        })
        .await
        .expect_err("the demo tenant's contact is not theirs");
    assert_eq!(from_them.code(), Code::NotFound);

    let empty_note = client
        .mark_for_coaching(v1::MarkForCoachingRequest {
            interaction_id: ix_id(1),
            note: "  ".into(),
        })
        .await
        .expect_err("a note is required");
    assert_eq!(empty_note.code(), Code::InvalidArgument);
    assert!(empty_note.message().starts_with("note:"));

    let intake_only = platform
        .client(careline_testkit::demo::IVR_KEY)
        .await
        .score_interaction(v1::ScoreInteractionRequest {
            interaction_id: ix_id(1),
            scores: full_scores(),
        })
        .await
        .expect_err("an intake key reviews nothing");
    assert_eq!(intake_only.code(), Code::PermissionDenied);

    // Nothing refused was counted.
    assert!(
        days_around_now(&platform, DEMO_KEY, "")
            .await
            .iter()
            .all(|p| p.quality_reviews == 0 && p.coaching_marked == 0)
    );
}
