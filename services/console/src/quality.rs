//! Quality review and coaching: a supervisor scores a resolved interaction
//! of their tenant against the tenant's rubric (`quality.rubric`, each
//! criterion 1-5) or marks it for coaching. Each is one event on the log
//! (`careline.<tenant>.quality.scored` / `.coaching_marked`) kept for the
//! tenant's `quality.retention_days`; the KPI consumer counts it per agent
//! and queue beside the other KPIs, once per event id.
//!
//! Whether the interaction exists and is resolved, and by whom, is read from
//! what the console materialised from the log under the caller's tenant's
//! keys, so another tenant's interaction is simply not found. The events hold
//! the supervisor's scores, comments and notes, never member text (the console
//! never reads any).

use std::sync::Arc;
use std::time::Duration;

use careline_bus::{Publisher, Subject, TenantDirectory};
use careline_domain::InteractionId;
use careline_domain::tenant::{MAX_QUALITY_SCORE, MIN_QUALITY_SCORE, QualitySettings};
use careline_proto::v1;

use crate::consumer::QUALITY_ENTITY;
use crate::error::ConsoleError;
use crate::store::{KpiStore, Resolution};

/// Longest comment on one criterion, and longest coaching note (characters).
pub const MAX_REVIEW_TEXT_CHARS: usize = 2_000;
/// Event of a quality score on the log.
pub const SCORED: &str = "scored";
/// Event of a coaching mark on the log.
pub const COACHING_MARKED: &str = "coaching_marked";

/// Scores and coaching marks of interactions.
#[derive(Clone)]
pub struct QualityDesk {
    pub store: KpiStore,
    pub tenants: Arc<TenantDirectory>,
    pub publisher: Publisher,
}

/// Checks `scores` against `rubric`: every criterion once, each 1-5, comments bounded.
pub fn check_scores(
    rubric: &QualitySettings,
    scores: &[v1::CriterionScoreInput],
) -> Result<Vec<v1::CriterionScore>, ConsoleError> {
    let invalid = |message: String| Err(ConsoleError::Invalid(message));
    let criteria = || {
        rubric
            .rubric
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut checked: Vec<v1::CriterionScore> = Vec::with_capacity(scores.len());
    for (i, score) in scores.iter().enumerate() {
        if rubric.criterion(&score.criterion_id).is_none() {
            return invalid(format!(
                "scores[{i}].criterion_id: {:?} is not a criterion of the tenant's rubric; use one of: {}",
                score.criterion_id,
                criteria()
            ));
        }
        if checked.iter().any(|c| c.criterion_id == score.criterion_id) {
            return invalid(format!(
                "scores[{i}].criterion_id: {:?} is scored twice; send each criterion once",
                score.criterion_id
            ));
        }
        if !(MIN_QUALITY_SCORE..=MAX_QUALITY_SCORE).contains(&score.score) {
            return invalid(format!(
                "scores[{i}].score: {} is out of range; score {:?} from {MIN_QUALITY_SCORE} to {MAX_QUALITY_SCORE}",
                score.score, score.criterion_id
            ));
        }
        if score.comment.chars().count() > MAX_REVIEW_TEXT_CHARS {
            return invalid(format!(
                "scores[{i}].comment: longer than {MAX_REVIEW_TEXT_CHARS} characters; shorten it"
            ));
        }
        checked.push(v1::CriterionScore {
            criterion_id: score.criterion_id.clone(),
            score: score.score,
            comment: score.comment.trim().to_owned(),
        });
    }
    let missing: Vec<&str> = rubric
        .rubric
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| !checked.iter().any(|c| c.criterion_id == *id))
        .collect();
    if !missing.is_empty() {
        return invalid(format!(
            "scores: {} not scored; score every criterion of the rubric ({})",
            missing.join(", "),
            criteria()
        ));
    }
    Ok(checked)
}

impl QualityDesk {
    /// Scores `tenant`'s interaction on behalf of API key `reviewer`.
    pub async fn score(
        &self,
        tenant: &str,
        reviewer: &str,
        request: &v1::ScoreInteractionRequest,
    ) -> Result<v1::ScoreInteractionResponse, ConsoleError> {
        let config = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ConsoleError::UnknownTenant(tenant.to_owned()))?;
        if config.quality.rubric.is_empty() {
            return Err(ConsoleError::FailedPrecondition(format!(
                "tenant {tenant} has no quality rubric; add quality.rubric to its YAML and apply it with `careline config apply`"
            )));
        }
        let interaction = interaction_id(&request.interaction_id)?;
        let scores = check_scores(&config.quality, &request.scores)?;
        let resolution = self.resolved(tenant, interaction.as_str()).await?;
        let keep = retention(&config.quality);
        let event_id = format!("{tenant}:quality-scored:{interaction}");
        let average = f64::from(scores.iter().map(|s| s.score).sum::<u32>()) / scores.len() as f64;
        let payload = v1::event::Payload::QualityScored(v1::QualityScored {
            interaction_id: interaction.to_string(),
            queue_id: resolution.queue_id.clone(),
            agent_id: resolution.agent_id.clone(),
            reviewer_key_id: reviewer.to_owned(),
            scores,
        });
        self.record(tenant, SCORED, &interaction, &event_id, payload, keep)
            .await?;
        tracing::info!(%tenant, interaction_id = %interaction, agent_id = %resolution.agent_id, "interaction scored");
        Ok(v1::ScoreInteractionResponse {
            event_id,
            average_score: average,
            agent_id: resolution.agent_id,
        })
    }

    /// Marks `tenant`'s interaction for coaching on behalf of API key `reviewer`.
    pub async fn mark_for_coaching(
        &self,
        tenant: &str,
        reviewer: &str,
        request: &v1::MarkForCoachingRequest,
    ) -> Result<v1::MarkForCoachingResponse, ConsoleError> {
        let config = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ConsoleError::UnknownTenant(tenant.to_owned()))?;
        let interaction = interaction_id(&request.interaction_id)?;
        let note = request.note.trim();
        if note.is_empty() {
            return Err(ConsoleError::Invalid(
                "note: say what to coach on (the supervisor's words; no member text)".into(),
            ));
        }
        if note.chars().count() > MAX_REVIEW_TEXT_CHARS {
            return Err(ConsoleError::Invalid(format!(
                "note: longer than {MAX_REVIEW_TEXT_CHARS} characters; shorten it"
            )));
        }
        let resolution = self.resolved(tenant, interaction.as_str()).await?;
        let event_id = format!("{tenant}:coaching:{interaction}");
        let payload = v1::event::Payload::CoachingMarked(v1::CoachingMarked {
            interaction_id: interaction.to_string(),
            queue_id: resolution.queue_id.clone(),
            agent_id: resolution.agent_id.clone(),
            reviewer_key_id: reviewer.to_owned(),
            note: note.to_owned(),
        });
        self.record(
            tenant,
            COACHING_MARKED,
            &interaction,
            &event_id,
            payload,
            retention(&config.quality),
        )
        .await?;
        tracing::info!(%tenant, interaction_id = %interaction, agent_id = %resolution.agent_id, "interaction marked for coaching");
        Ok(v1::MarkForCoachingResponse {
            event_id,
            agent_id: resolution.agent_id,
        })
    }

    /// The interaction's resolution, or why it cannot be reviewed.
    async fn resolved(&self, tenant: &str, id: &str) -> Result<Resolution, ConsoleError> {
        match self.store.resolution(tenant, id).await? {
            None => Err(ConsoleError::NotFound(format!(
                "interaction {id} not found for your tenant (the console knows interactions from the event log for 30 days; one just created may take a moment to appear)"
            ))),
            Some(resolution) if !resolution.resolved => Err(ConsoleError::FailedPrecondition(
                format!("interaction {id} is not resolved yet; review it once it is resolved"),
            )),
            Some(resolution) => Ok(resolution),
        }
    }

    /// Claims the interaction's one `what`, then publishes its event (the
    /// claim is given back if the publish fails, so the caller can retry).
    async fn record(
        &self,
        tenant: &str,
        what: &str,
        interaction: &InteractionId,
        event_id: &str,
        payload: v1::event::Payload,
        keep: Duration,
    ) -> Result<(), ConsoleError> {
        if !self
            .store
            .claim_review(tenant, what, interaction.as_str(), keep)
            .await?
        {
            let done = if what == SCORED {
                "scored"
            } else {
                "marked for coaching"
            };
            return Err(ConsoleError::AlreadyExists(format!(
                "interaction {interaction} was already {done}; a review is a record and is not replaced"
            )));
        }
        let event = v1::Event {
            event_id: event_id.to_owned(),
            tenant_id: tenant.to_owned(),
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            sequence: 0,
            payload: Some(payload),
        };
        let published = match Subject::new(tenant, QUALITY_ENTITY, what) {
            Ok(subject) => {
                self.publisher
                    .publish_kept_for(&subject, &event, keep)
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = published {
            if let Err(release) = self
                .store
                .release_review(tenant, what, interaction.as_str())
                .await
            {
                tracing::warn!(error = %release, %tenant, interaction_id = %interaction, "review claim not given back; it expires with the retention");
            }
            return Err(error.into());
        }
        Ok(())
    }
}

fn interaction_id(id: &str) -> Result<InteractionId, ConsoleError> {
    InteractionId::new(id).map_err(|e| ConsoleError::Invalid(format!("interaction_id: {e}")))
}

/// How long the tenant keeps quality records.
pub fn retention(quality: &QualitySettings) -> Duration {
    Duration::from_secs(u64::from(quality.retention_days) * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use careline_domain::tenant::{CriterionLabel, QualityCriterion};

    fn rubric() -> QualitySettings {
        let criterion = |id: &str| QualityCriterion {
            id: id.to_owned(),
            label: CriterionLabel {
                en: id.to_owned(),
                es: id.to_owned(),
            },
        };
        QualitySettings {
            rubric: vec![criterion("accuracy"), criterion("tone")],
            ..QualitySettings::default()
        }
    }

    fn score(id: &str, score: u32) -> v1::CriterionScoreInput {
        v1::CriterionScoreInput {
            criterion_id: id.to_owned(),
            score,
            comment: String::new(),
        }
    }

    #[test]
    fn scores_must_cover_the_rubric_once_each_from_1_to_5() {
        let cases = [
            (
                vec![score("accuracy", 4), score("empathy", 3)],
                "scores[1].criterion_id: \"empathy\" is not a criterion of the tenant's rubric; use one of: accuracy, tone",
            ),
            (
                vec![score("accuracy", 6), score("tone", 3)],
                "scores[0].score: 6 is out of range",
            ),
            (
                vec![score("accuracy", 0), score("tone", 3)],
                "scores[0].score: 0 is out of range",
            ),
            (
                vec![score("accuracy", 4), score("accuracy", 3)],
                "scores[1].criterion_id: \"accuracy\" is scored twice",
            ),
            (vec![score("accuracy", 4)], "scores: tone not scored"),
        ];
        for (scores, want) in cases {
            let err = check_scores(&rubric(), &scores).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
        let ok = check_scores(&rubric(), &[score("tone", 1), score("accuracy", 5)]).unwrap();
        assert_eq!(ok.len(), 2);
    }
}
