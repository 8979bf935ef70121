//! Survey policy, pure: which resolved contacts are asked for a survey
//! ([`eligibility`]), what a valid answer is ([`Scores`]), and the NPS /
//! mean arithmetic supervisors read ([`Tally`]). The survey-dispatcher
//! service does the I/O; the rules live here so they are tested as a table.

use crate::Channel;
use crate::tenant::SurveySettings;

/// Lowest likelihood-to-recommend / hire-agent score.
pub const MIN_SCALE_0_10: u8 = 0;
/// Highest likelihood-to-recommend / hire-agent score.
pub const MAX_SCALE_0_10: u8 = 10;
/// Lowest ease score ("much harder than other healthcare interactions").
pub const MIN_EASE: u8 = 1;
/// Highest ease score ("much easier").
pub const MAX_EASE: u8 = 5;
/// Longest optional comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// Lowest recommend score counted as a promoter (9-10).
pub const PROMOTER_MIN: u8 = 9;
/// Highest recommend score counted as a detractor (0-6).
pub const DETRACTOR_MAX: u8 = 6;

/// What the survey policy needs to know about one resolved interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub channel: Option<Channel>,
    /// The agent's disposition, e.g. `resolved`, `transferred_out`.
    pub disposition: &'a str,
    pub urgent: bool,
    /// The tenant's opaque member reference; empty when the integration gave none.
    pub member_ref: &'a str,
}

/// Why a resolved interaction gets no survey (safe to log: no personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    #[error("surveys are not enabled for this channel")]
    Channel,
    #[error("the disposition is excluded from surveys")]
    Disposition,
    #[error("urgent contacts get no survey")]
    Urgent,
    #[error("the interaction has no member reference")]
    NoMember,
}

impl Ineligible {
    /// A short machine word, for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Ineligible::Channel => "channel",
            Ineligible::Disposition => "disposition",
            Ineligible::Urgent => "urgent",
            Ineligible::NoMember => "no_member",
        }
    }
}

/// Whether `resolved` may be surveyed under `settings` (the throttle, the
/// member's opt-out and contact address are checked when it is sent).
pub fn eligibility(settings: &SurveySettings, resolved: &Resolved<'_>) -> Result<(), Ineligible> {
    match resolved.channel {
        Some(channel) if settings.channels.contains(&channel) => {}
        _ => return Err(Ineligible::Channel),
    }
    if resolved.urgent && settings.exclude_urgent {
        return Err(Ineligible::Urgent);
    }
    let disposition = resolved.disposition.trim();
    if settings
        .excluded_dispositions
        .iter()
        .any(|excluded| excluded.eq_ignore_ascii_case(disposition))
    {
        return Err(Ineligible::Disposition);
    }
    if resolved.member_ref.is_empty() {
        return Err(Ineligible::NoMember);
    }
    Ok(())
}

/// One member's answer, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scores {
    /// Likelihood to recommend, 0-10 (NPS).
    pub recommend: u8,
    /// "How likely would you be to hire the person you interacted with", 0-10.
    pub hire_agent: u8,
    /// Ease compared with other healthcare interactions, 1-5.
    pub ease: u8,
}

/// A score outside its scale; the message names the question and the range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be from {min} to {max} (got {value})")]
pub struct OutOfScale {
    pub field: &'static str,
    pub value: i64,
    pub min: u8,
    pub max: u8,
}

impl Scores {
    /// Checks each score against its scale.
    pub fn new(recommend: i64, hire_agent: i64, ease: i64) -> Result<Scores, OutOfScale> {
        let check = |field, value: i64, min: u8, max: u8| {
            u8::try_from(value)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or(OutOfScale {
                    field,
                    value,
                    min,
                    max,
                })
        };
        Ok(Scores {
            recommend: check("recommend", recommend, MIN_SCALE_0_10, MAX_SCALE_0_10)?,
            hire_agent: check("hire_agent", hire_agent, MIN_SCALE_0_10, MAX_SCALE_0_10)?,
            ease: check("ease", ease, MIN_EASE, MAX_EASE)?,
        })
    }
}

/// Whether a likelihood-to-recommend answer (0-10) is a promoter's (9-10),
/// a detractor's (0-6) or neither (7-8: passive).
pub fn nps_group(recommend: u8) -> NpsGroup {
    match recommend {
        s if s >= PROMOTER_MIN => NpsGroup::Promoter,
        s if s <= DETRACTOR_MAX => NpsGroup::Detractor,
        _ => NpsGroup::Passive,
    }
}

/// Where an answer counts in the Net Promoter Score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpsGroup {
    Promoter,
    Passive,
    Detractor,
}

/// Net Promoter Score: % promoters minus % detractors of `responses`, from
/// -100 to 100; 0 without answers.
pub fn net_promoter_score(promoters: u64, detractors: u64, responses: u64) -> f64 {
    if responses == 0 {
        return 0.0;
    }
    (promoters as f64 - detractors as f64) / responses as f64 * 100.0
}

/// Answers added up: NPS and the means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub responses: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    hire_agent_sum: u64,
    ease_sum: u64,
}

impl Tally {
    /// Counts one answer.
    pub fn add(&mut self, scores: Scores) {
        self.responses += 1;
        match nps_group(scores.recommend) {
            NpsGroup::Promoter => self.promoters += 1,
            NpsGroup::Detractor => self.detractors += 1,
            NpsGroup::Passive => self.passives += 1,
        }
        self.hire_agent_sum += u64::from(scores.hire_agent);
        self.ease_sum += u64::from(scores.ease);
    }

    /// Net Promoter Score: % promoters (9-10) minus % detractors (0-6), from
    /// -100 to 100; 0 without answers.
    pub fn nps(&self) -> f64 {
        net_promoter_score(self.promoters, self.detractors, self.responses)
    }

    /// Mean hire-agent score (0-10); 0 without answers.
    pub fn mean_hire_agent(&self) -> f64 {
        self.ratio(self.hire_agent_sum)
    }

    /// Mean ease score (1-5); 0 without answers.
    pub fn mean_ease(&self) -> f64 {
        self.ratio(self.ease_sum)
    }

    fn ratio(&self, part: u64) -> f64 {
        if self.responses == 0 {
            0.0
        } else {
            part as f64 / self.responses as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(recommend: u8) -> Scores {
        Scores {
            recommend,
            hire_agent: 10,
            ease: 5,
        }
    }

    #[test]
    fn nps_is_percent_promoters_minus_percent_detractors() {
        let cases: [(&[u8], f64); 8] = [
            (&[], 0.0),
            (&[10], 100.0),
            (&[9, 10, 9], 100.0),
            (&[0], -100.0),
            (&[6], -100.0),
            (&[7, 8], 0.0),
            (&[10, 0], 0.0),
            // 2 promoters, 1 passive, 1 detractor of 4: 50% - 25%.
            (&[9, 10, 8, 3], 25.0),
        ];
        for (answers, want) in cases {
            let mut tally = Tally::default();
            for &answer in answers {
                tally.add(scores(answer));
            }
            assert!(
                (tally.nps() - want).abs() < 1e-9,
                "{answers:?}: {}",
                tally.nps()
            );
            assert_eq!(
                tally.promoters + tally.passives + tally.detractors,
                answers.len() as u64
            );
        }
    }

    #[test]
    fn nps_of_two_promoters_and_one_detractor_is_33_3() {
        let mut tally = Tally::default();
        for answer in [10, 9, 5] {
            tally.add(scores(answer));
        }
        assert!((tally.nps() - 100.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn means_average_hire_agent_and_ease() {
        let mut tally = Tally::default();
        tally.add(Scores::new(10, 8, 5).unwrap());
        tally.add(Scores::new(3, 3, 2).unwrap());
        assert!((tally.mean_hire_agent() - 5.5).abs() < 1e-9);
        assert!((tally.mean_ease() - 3.5).abs() < 1e-9);
        assert_eq!(Tally::default().mean_ease(), 0.0);
    }

    #[test]
    fn scores_outside_their_scale_are_refused_naming_the_question() {
        assert!(Scores::new(0, 0, 1).is_ok());
        assert!(Scores::new(10, 10, 5).is_ok());
        for (r, h, e, field) in [
            (11, 5, 3, "recommend"),
            (-1, 5, 3, "recommend"),
            (5, 11, 3, "hire_agent"),
            (5, 5, 0, "ease"),
            (5, 5, 6, "ease"),
        ] {
            let err = Scores::new(r, h, e).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn eligibility_follows_channels_dispositions_urgency_and_member() {
        let settings = SurveySettings {
            channels: vec![Channel::Email, Channel::Chat],
            ..SurveySettings::default()
        };
        let ok = Resolved {
            channel: Some(Channel::Email),
            disposition: "resolved",
            urgent: false,
            member_ref: "m-1",
        };
        let cases = [
            (ok.clone(), Ok(())),
            (
                Resolved {
                    channel: Some(Channel::Voice),
                    ..ok.clone()
                },
                Err(Ineligible::Channel),
            ),
            (
                Resolved {
                    channel: None,
                    ..ok.clone()
                },
                Err(Ineligible::Channel),
            ),
            (
                Resolved {
                    disposition: "Transferred_Out",
                    ..ok.clone()
                },
                Err(Ineligible::Disposition),
            ),
            (
                Resolved {
                    disposition: "abandoned",
                    ..ok.clone()
                },
                Err(Ineligible::Disposition),
            ),
            (
                Resolved {
                    disposition: "clinical",
                    ..ok.clone()
                },
                Err(Ineligible::Disposition),
            ),
            (
                Resolved {
                    urgent: true,
                    ..ok.clone()
                },
                Err(Ineligible::Urgent),
            ),
            (
                Resolved {
                    member_ref: "",
                    ..ok.clone()
                },
                Err(Ineligible::NoMember),
            ),
        ];
        for (resolved, want) in cases {
            assert_eq!(eligibility(&settings, &resolved), want, "{resolved:?}");
        }
        assert_eq!(
            eligibility(&SurveySettings::default(), &ok),
            Err(Ineligible::Channel),
            "surveys are off until the tenant names channels"
        );
    }
}
