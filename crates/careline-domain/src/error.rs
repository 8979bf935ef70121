//! The crate's errors: one enum for single-value rules (ids, proficiencies,
//! hours) and [`ConfigError`], which carries every problem found in a tenant
//! configuration at once so an operator can fix a file in one pass.

use std::fmt;

/// A value broke one of the domain's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An identifier does not follow its format.
    #[error("{kind} id {value:?} is invalid: use {rule}")]
    InvalidId {
        /// Which kind of id (`tenant`, `agent`, ...).
        kind: &'static str,
        /// The rejected text.
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// A skill proficiency outside 1..=10.
    #[error("proficiency {0} is invalid: use a whole number from 1 to 10")]
    InvalidProficiency(i64),
    /// A time of day that is not `HH:MM` (24-hour clock).
    #[error("time {0:?} is invalid: use HH:MM on a 24-hour clock, e.g. \"07:00\" or \"19:30\"")]
    InvalidTimeOfDay(String),
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone {0:?}: use an IANA name such as \"America/Denver\"")]
    UnknownTimeZone(String),
    /// A tenant configuration with one or more problems.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One thing wrong in a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the offending field, like `queues[1].id`; empty for the whole document.
    pub field: String,
    /// 1-based line in the source YAML, when known.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a tenant configuration, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in document order of discovery; never empty.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// An error with a single problem.
    pub fn single(
        field: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            problems: vec![Problem {
                field: field.into(),
                line,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_prints_one_problem_per_line() {
        let cases = [
            (
                Some(12),
                "queues[1].id",
                "duplicate",
                "line 12: queues[1].id: duplicate",
            ),
            (None, "queues[1].id", "duplicate", "queues[1].id: duplicate"),
            (
                Some(1),
                "",
                "missing field `id`",
                "line 1: missing field `id`",
            ),
        ];
        for (line, field, message, want) in cases {
            assert_eq!(ConfigError::single(field, line, message).to_string(), want);
        }
        let two = ConfigError {
            problems: vec![
                Problem {
                    field: "a".into(),
                    line: Some(1),
                    message: "x".into(),
                },
                Problem {
                    field: "b".into(),
                    line: None,
                    message: "y".into(),
                },
            ],
        };
        assert_eq!(two.to_string(), "line 1: a: x\nb: y");
    }
}
