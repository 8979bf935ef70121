//! Reading and writing a tenant configuration: YAML from an operator's file,
//! JSON in the configuration KV bucket.

use super::TenantConfig;
use crate::error::ConfigError;
use crate::yaml_lines::LineIndex;

impl TenantConfig {
    /// Parses a YAML document and validates it; problems name the field and line.
    pub fn from_yaml(text: &str) -> Result<TenantConfig, ConfigError> {
        let config: TenantConfig = serde_yaml_ng::from_str(text).map_err(|e| yaml_problem(&e))?;
        let lines = LineIndex::new(text);
        config.check(Some(&lines))?;
        Ok(config)
    }

    /// Checks every rule again (e.g. a config read back from storage); lines are `None`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(None)
    }

    /// The JSON form stored in the configuration KV bucket.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a tenant config always serializes to JSON")
    }

    /// Parses and validates the JSON form stored in the configuration KV bucket.
    pub fn from_json(text: &str) -> Result<TenantConfig, ConfigError> {
        let config: TenantConfig = serde_json::from_str(text)
            .map_err(|e| ConfigError::single("", Some(e.line()), e.to_string()))?;
        config.validate()?;
        Ok(config)
    }
}

/// Turns a serde_yaml_ng error ("queues[0]: unknown field `x`, ... at line 5 column 5")
/// into a problem with its field path and line.
fn yaml_problem(error: &serde_yaml_ng::Error) -> ConfigError {
    let line = error.location().map(|l| l.line());
    let mut text = error.to_string();
    if let Some(l) = error.location() {
        text = text.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
    }
    let (field, message) = match text.split_once(": ") {
        Some((path, rest)) if is_field_path(path) => (path.to_string(), rest.to_string()),
        _ => (String::new(), text),
    };
    ConfigError::single(field, line, message)
}

fn is_field_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{DEMO, edited};
    use super::*;

    #[test]
    fn syntax_and_type_errors_name_the_field_and_line() {
        let cases: &[(&str, &str, &str, usize, &str)] = &[
            (
                "  - id: general",
                "  - id: general: oops",
                "",
                21,
                "mapping values are not allowed",
            ),
            (
                "  heartbeat_ttl_secs: 15",
                "  heartbeat_ttl: 15",
                "routing",
                19,
                "unknown field `heartbeat_ttl`",
            ),
            (
                "min_proficiency: 6",
                "min_proficiency: high",
                "queues[1].skills[0].min_proficiency",
                29,
                "invalid type: string \"high\", expected u8",
            ),
            (
                "languages: [en, es]",
                "languages: [en, fr]",
                "languages[1]",
                4,
                "unknown variant `fr`",
            ),
            (
                "contact_email: help@acme.example",
                "",
                "",
                1,
                "missing field `contact_email`",
            ),
        ];
        for (from, to, field, line, message) in cases {
            let err = TenantConfig::from_yaml(&edited(from, to))
                .expect_err(&format!("{from:?} -> {to:?}"));
            assert_eq!(err.problems.len(), 1, "{err}");
            let p = &err.problems[0];
            assert_eq!((p.field.as_str(), p.line), (*field, Some(*line)), "{err}");
            assert!(
                p.message.contains(message),
                "{:?} lacks {message:?}",
                p.message
            );
            assert!(
                !p.message.contains(" at line "),
                "location repeated in {:?}",
                p.message
            );
        }
    }

    #[test]
    fn json_round_trips_and_is_validated() {
        let config = TenantConfig::from_yaml(DEMO).unwrap();
        let json = config.to_json();
        assert_eq!(TenantConfig::from_json(&json).unwrap(), config);
        let broken = json.replace("\"America/Denver\"", "\"Nowhere\"");
        let err = TenantConfig::from_json(&broken).unwrap_err();
        assert_eq!(err.problems[0].field, "time_zone");
        assert!(TenantConfig::from_json("{").is_err());
    }
}

#[cfg(test)]
mod hostile_input {
    use rand::{Rng, SeedableRng};

    use super::TenantConfig;

    /// Thousands of damaged copies of the demo file: every one is parsed to a
    /// config or to an error naming a line, and nothing panics.
    #[test]
    fn damaged_files_give_errors_never_panics() {
        let demo = include_str!("../../../../deploy/tenants/demo-health.yaml").as_bytes();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b" \t\n:-[]{}#&*!|>'\"%@`,?0123456789abcxyz\xc3\xa9";
        for _ in 0..3000 {
            let mut text = demo.to_vec();
            for _ in 0..rng.random_range(1..8) {
                if text.is_empty() {
                    break;
                }
                let at = rng.random_range(0..text.len());
                match rng.random_range(0..3) {
                    0 => text[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        text.remove(at);
                    }
                    _ => text.truncate(at.max(1)),
                }
            }
            let text = String::from_utf8_lossy(&text);
            if let Err(error) = TenantConfig::from_yaml(&text) {
                assert!(!error.problems.is_empty(), "an error lists its problems");
                assert!(!error.to_string().is_empty());
            }
        }
    }
}
