//! Skills: how well an agent knows something, and whether that is enough for
//! a queue. The router computes which queues an agent may serve from these
//! rules when the agent logs in or configuration changes, never per decision.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::tenant::SkillRequirement;

/// How well an agent knows a skill, from 1 (novice) to 10 (expert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Proficiency(u8);

impl Proficiency {
    /// The lowest proficiency.
    pub const MIN: Proficiency = Proficiency(1);
    /// The highest proficiency.
    pub const MAX: Proficiency = Proficiency(10);

    /// Validates `value` is in 1..=10.
    pub fn new(value: u8) -> Result<Self, Error> {
        if (Self::MIN.0..=Self::MAX.0).contains(&value) {
            Ok(Proficiency(value))
        } else {
            Err(Error::InvalidProficiency(value.into()))
        }
    }

    /// The number, 1..=10.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Proficiency {
    type Error = Error;
    fn try_from(value: u8) -> Result<Self, Error> {
        Proficiency::new(value)
    }
}

impl From<Proficiency> for u8 {
    fn from(p: Proficiency) -> u8 {
        p.0
    }
}

impl fmt::Display for Proficiency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether an agent with `skills` (name -> proficiency) has every required
/// skill at or above its minimum.
pub fn satisfies(skills: &BTreeMap<String, u8>, required: &[SkillRequirement]) -> bool {
    required.iter().all(|req| {
        skills
            .get(&req.skill)
            .is_some_and(|&p| p >= req.min_proficiency)
    })
}

/// The agent's proficiency for a requirement set: the lowest of its
/// proficiencies in the required skills (0 if one is missing), or 10 when
/// nothing is required. The "most skilled" strategy ranks agents by it.
pub fn proficiency_for(skills: &BTreeMap<String, u8>, required: &[SkillRequirement]) -> u8 {
    required
        .iter()
        .map(|req| skills.get(&req.skill).copied().unwrap_or(0))
        .min()
        .unwrap_or(Proficiency::MAX.0)
}

/// The requirements with every minimum lowered by `by`, never below 1
/// (an overflow step's `relax_by`).
pub fn relax(required: &[SkillRequirement], by: u8) -> Vec<SkillRequirement> {
    required
        .iter()
        .map(|req| SkillRequirement {
            skill: req.skill.clone(),
            min_proficiency: req
                .min_proficiency
                .saturating_sub(by)
                .max(Proficiency::MIN.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skill name and proficiency pairs.
    type Pairs = &'static [(&'static str, u8)];

    fn skills(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
        pairs.iter().map(|(s, p)| (s.to_string(), *p)).collect()
    }

    fn reqs(pairs: &[(&str, u8)]) -> Vec<SkillRequirement> {
        pairs
            .iter()
            .map(|(s, p)| SkillRequirement {
                skill: s.to_string(),
                min_proficiency: *p,
            })
            .collect()
    }

    #[test]
    fn proficiency_accepts_one_to_ten() {
        for (value, ok) in [
            (0, false),
            (1, true),
            (5, true),
            (10, true),
            (11, false),
            (255, false),
        ] {
            assert_eq!(Proficiency::new(value).is_ok(), ok, "{value}");
        }
        assert_eq!(
            Proficiency::new(11).unwrap_err().to_string(),
            "proficiency 11 is invalid: use a whole number from 1 to 10"
        );
        assert!(serde_json::from_str::<Proficiency>("0").is_err());
        assert_eq!(serde_json::from_str::<Proficiency>("7").unwrap().get(), 7);
    }

    #[test]
    fn satisfies_needs_every_skill_at_or_above_minimum() {
        let cases: &[(Pairs, Pairs, bool)] = &[
            (&[], &[], true),
            (&[("billing", 1)], &[], true),
            (&[("billing", 5)], &[("billing", 5)], true),
            (&[("billing", 4)], &[("billing", 5)], false),
            (&[("billing", 9)], &[("billing", 5), ("clinical", 1)], false),
            (
                &[("billing", 9), ("clinical", 6)],
                &[("billing", 5), ("clinical", 6)],
                true,
            ),
            (&[], &[("billing", 1)], false),
        ];
        for (agent, required, want) in cases {
            assert_eq!(
                satisfies(&skills(agent), &reqs(required)),
                *want,
                "{agent:?} vs {required:?}"
            );
        }
    }

    #[test]
    fn proficiency_for_is_the_weakest_required_skill() {
        let cases: &[(Pairs, Pairs, u8)] = &[
            (&[], &[], 10),
            (&[("billing", 3)], &[], 10),
            (&[("billing", 7)], &[("billing", 2)], 7),
            (
                &[("billing", 7), ("clinical", 4)],
                &[("billing", 2), ("clinical", 1)],
                4,
            ),
            (&[("billing", 7)], &[("billing", 2), ("clinical", 1)], 0),
        ];
        for (agent, required, want) in cases {
            assert_eq!(
                proficiency_for(&skills(agent), &reqs(required)),
                *want,
                "{agent:?} vs {required:?}"
            );
        }
    }

    #[test]
    fn relax_lowers_minimums_but_not_below_one() {
        let cases: &[(Pairs, u8, Pairs)] = &[
            (&[("billing", 5)], 2, &[("billing", 3)]),
            (
                &[("billing", 2), ("clinical", 9)],
                3,
                &[("billing", 1), ("clinical", 6)],
            ),
            (&[("billing", 4)], 0, &[("billing", 4)]),
            (&[("billing", 4)], 255, &[("billing", 1)]),
        ];
        for (required, by, want) in cases {
            assert_eq!(relax(&reqs(required), *by), reqs(want));
        }
    }
}
