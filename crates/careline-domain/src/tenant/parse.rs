//! Reading and writing a tenant configuration: YAML from an operator's file (every
//! problem in it reported at once), JSON in the configuration KV bucket.

use serde_yaml_ng::Value;

use super::TenantConfig;
use crate::error::{ConfigError, Problem};
use crate::yaml_lines::LineIndex;

/// Most problems one YAML file reports: past this the file is too broken for a longer
/// list to help, and each further problem costs another parse.
const MAX_PROBLEMS: usize = 50;

impl TenantConfig {
    /// Parses a YAML document and validates it. Every problem in the file is reported at
    /// once, each naming its field and line, so an operator fixes a file in one pass.
    pub fn from_yaml(text: &str) -> Result<TenantConfig, ConfigError> {
        match deserialize(text) {
            // Indexing the lines of a file of thousands of agents costs more than
            // reading it: only done when there is a problem to point at.
            Ok(config) => match config.check(None) {
                Ok(()) => Ok(config),
                Err(_) => config.check(Some(&LineIndex::new(text))).map(|()| config),
            },
            Err(first) => match serde_yaml_ng::from_str::<Value>(text) {
                Ok(document) => Err(every_problem(document, first, &LineIndex::new(text))),
                // A syntax error leaves no document to look further into.
                Err(_) => Err(yaml_problem(first.inner())),
            },
        }
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

type TypeError = serde_path_to_error::Error<serde_yaml_ng::Error>;

/// Deserializes `text`, remembering the path of the field that failed.
fn deserialize(text: &str) -> Result<TenantConfig, TypeError> {
    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
}

/// serde stops at the first field it cannot read. To report every problem, each
/// failing field is taken out of the document and the rest read again, until it reads
/// (then the validation rules run on it too) or a problem cannot be taken out.
///
/// A required field taken out makes its parent fail as "missing"; that parent is then
/// taken out in turn without being reported. Once a list item was taken out, later
/// indexes are mapped back to the file's. Once a whole entry (a queue, an agent, ...)
/// was taken out, the validation rules are skipped: they would report references to
/// it that are not really wrong.
fn every_problem(mut document: Value, first: TypeError, lines: &LineIndex) -> ConfigError {
    let mut removed = Removed::default();
    let mut at = segments(first.path());
    let mut problems = vec![type_problem(
        &first,
        &at,
        first.inner().location().map(|l| l.line()),
    )];
    while problems.len() < MAX_PROBLEMS && removed.remove(&mut document, &at) {
        let Ok(text) = serde_yaml_ng::to_string(&document) else {
            break;
        };
        match deserialize(&text) {
            Ok(config) => {
                if !removed.any_entry
                    && let Err(rules) = config.check(Some(lines))
                {
                    problems.extend(rules.problems.into_iter().map(|mut problem| {
                        problem.field = field(&removed.original(&parse_field(&problem.field)));
                        problem.line = lines.line(&problem.field);
                        problem
                    }));
                }
                break;
            }
            Err(error) => {
                at = segments(error.path());
                let original = removed.original(&at);
                let caused_by_removal = field_and_message(error.inner())
                    .1
                    .starts_with("missing field")
                    && removed.any_under(&original);
                if !caused_by_removal {
                    let line = lines.line(&field(&original)).or(lines.first_line());
                    problems.push(type_problem(&error, &original, line));
                }
            }
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    ConfigError { problems }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_path_to_error::Path) -> Vec<Segment> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                None
            }
        })
        .collect()
}

/// The segments of a field path as [`field`] writes it.
fn parse_field(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Segment::Key(key.to_string()));
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => out.push(Segment::Index(i)),
                Err(_) => out.push(Segment::Key(index.to_string())),
            }
        }
    }
    out
}

/// `queues[1].skills[0].min_proficiency`, the form every problem uses.
fn field(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A problem serde found at `path` (in the file's own paths).
fn type_problem(error: &TypeError, path: &[Segment], line: Option<usize>) -> Problem {
    let (_, message) = field_and_message(error.inner());
    Problem {
        field: field(path),
        line,
        message,
    }
}

/// What was taken out of the document, in the file's own paths.
#[derive(Default)]
struct Removed {
    paths: Vec<Vec<Segment>>,
    /// Whether a list item that is itself a mapping or a list was taken out.
    any_entry: bool,
}

impl Removed {
    /// Takes the field at `at` (a path in the current document) out; false when there
    /// is nothing there to take (the whole document, or a path serde made up).
    fn remove(&mut self, document: &mut Value, at: &[Segment]) -> bool {
        let Some((last, parent)) = at.split_last() else {
            return false;
        };
        let mut node = document;
        for segment in parent {
            let next = match (segment, node) {
                (Segment::Key(key), Value::Mapping(map)) => map.get_mut(key.as_str()),
                (Segment::Index(i), Value::Sequence(items)) => items.get_mut(*i),
                _ => None,
            };
            let Some(next) = next else {
                return false;
            };
            node = next;
        }
        let taken = match (last, node) {
            (Segment::Key(key), Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
            (Segment::Index(i), Value::Sequence(items)) if *i < items.len() => {
                let item = items.remove(*i);
                self.any_entry |= matches!(item, Value::Mapping(_) | Value::Sequence(_));
                true
            }
            _ => false,
        };
        if taken {
            let original = self.original(at);
            self.paths.push(original);
        }
        taken
    }

    /// `at` (a path in the current document) as a path in the file: list indexes
    /// count the items taken out before them.
    fn original(&self, at: &[Segment]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(at.len());
        for segment in at {
            let mapped = match segment {
                Segment::Key(key) => Segment::Key(key.clone()),
                Segment::Index(current) => {
                    let mut gone: Vec<usize> = self
                        .paths
                        .iter()
                        .filter_map(|p| match p.split_last() {
                            Some((Segment::Index(i), parent)) if parent == out.as_slice() => {
                                Some(*i)
                            }
                            _ => None,
                        })
                        .collect();
                    gone.sort_unstable();
                    let mut index = *current;
                    for i in gone {
                        if i <= index {
                            index += 1;
                        }
                    }
                    Segment::Index(index)
                }
            };
            out.push(mapped);
        }
        out
    }

    /// Whether something below `path` (in the file's paths) was taken out.
    fn any_under(&self, path: &[Segment]) -> bool {
        self.paths
            .iter()
            .any(|p| p.len() > path.len() && p.starts_with(path))
    }
}

/// Turns a serde_yaml_ng error ("queues[0]: unknown field `x`, ... at line 5 column 5")
/// into a problem with its field path and line.
fn yaml_problem(error: &serde_yaml_ng::Error) -> ConfigError {
    let (field, message) = field_and_message(error);
    ConfigError::single(field, error.location().map(|l| l.line()), message)
}

/// The field path serde_yaml_ng puts in front of its message, and the message
/// without it and without the location (a problem carries both separately).
fn field_and_message(error: &serde_yaml_ng::Error) -> (String, String) {
    let mut text = error.to_string();
    if let Some(l) = error.location() {
        text = text.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
    }
    match text.split_once(": ") {
        Some((path, rest)) if is_field_path(path) => (path.to_string(), rest.to_string()),
        _ => (String::new(), text),
    }
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
                "routing.heartbeat_ttl",
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
            // Later problems may follow from this one (a language taken out of the list).
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
    fn every_problem_in_a_file_is_reported_at_once_in_line_order() {
        let text = edited("  heartbeat_ttl_secs: 15", "  heartbeat_ttl: 15")
            .replace("America/Denver", "Mars/Olympus_Mons")
            .replace("languages: [en, es]\nhours", "languages: [en, fr]\nhours")
            .replace("  urgent_queue: clinical", "  urgent_queue: [clinical]")
            .replace("  - id: clinical", "  - id: general");
        let err = TenantConfig::from_yaml(&text).unwrap_err();
        let found: Vec<(&str, Option<usize>)> = err
            .problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect();
        assert_eq!(
            found,
            [
                ("time_zone", Some(3)),
                ("languages[1]", Some(4)),
                // `es` is no longer one of the tenant's languages:
                ("after_hours_message.es", Some(12)),
                ("routing.urgent_queue", Some(18)),
                ("routing.heartbeat_ttl", Some(19)),
                ("queues[0].overflow[1].widen_to", Some(26)),
                ("queues[1].id", Some(27)),
                ("agents[0].languages[1]", Some(34)),
            ],
            "{err}"
        );
        // Taking out a queue would make the reference rules unreliable: they are skipped.
        let text = edited("  - id: clinical", "  - id: 7x")
            .replace("  - id: general", "  - id: [general]")
            .replace("America/Denver", "Mars/Olympus_Mons");
        let err = TenantConfig::from_yaml(&text).unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["queues[0].id"], "{err}");
    }

    #[test]
    fn items_after_a_removed_list_item_keep_their_own_index() {
        let text = edited("languages: [en, es]", "languages: [fr, en, de, en]");
        let err = TenantConfig::from_yaml(&text).unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        // The duplicate `en` is found by the rules on what is left, at its index in the file.
        assert_eq!(
            &fields[..3],
            ["languages[0]", "languages[2]", "languages[3]"],
            "{err}"
        );
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
