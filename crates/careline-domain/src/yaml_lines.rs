//! Line numbers of field paths (`queues[1].id`) in a YAML document, so
//! problems found after deserializing can point at the line to fix.
//!
//! serde forgets positions; a second, span-preserving parse with saphyr
//! recovers them. A mapping entry is found at its key's line, a sequence item
//! at its first line.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Field path -> 1-based line.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Indexes the first document of `text`; empty if it does not parse.
    pub(crate) fn new(text: &str) -> Self {
        let mut index = LineIndex::default();
        if let Ok(docs) = MarkedYaml::load_from_str(text)
            && let Some(root) = docs.first()
        {
            index.walk(root, "");
        }
        index
    }

    /// The line of `path`, or of its nearest ancestor present in the
    /// document (a defaulted field points at its parent).
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(&line) = self.lines.get(path) {
                return Some(line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// The line of the document's first field, for problems with the whole document.
    pub(crate) fn first_line(&self) -> Option<usize> {
        self.lines.values().copied().min()
    }

    fn walk(&mut self, node: &MarkedYaml<'_>, path: &str) {
        match &node.data {
            YamlData::Mapping(map) => {
                for (key, value) in map.iter() {
                    let Some(key_text) = scalar_text(key) else {
                        continue;
                    };
                    let child = if path.is_empty() {
                        key_text
                    } else {
                        format!("{path}.{key_text}")
                    };
                    self.lines
                        .entry(child.clone())
                        .or_insert(key.span.start.line());
                    self.walk(value, &child);
                }
            }
            YamlData::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.lines.insert(child.clone(), item.span.start.line());
                    self.walk(item, &child);
                }
            }
            _ => {}
        }
    }
}

fn scalar_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_paths_and_falls_back_to_ancestors() {
        let text = "id: a\nqueues:\n  - id: x\n    skills:\n      - { skill: s, min_proficiency: 3 }\n  - id: y\nmap: { en: hi }\n";
        let index = LineIndex::new(text);
        let cases = [
            ("id", Some(1)),
            ("queues", Some(2)),
            ("queues[0]", Some(3)),
            ("queues[0].id", Some(3)),
            ("queues[0].skills[0].min_proficiency", Some(5)),
            ("queues[1].id", Some(6)),
            ("queues[1].overflow[0].after_secs", Some(6)),
            ("map.en", Some(7)),
            ("routing.capacity.chat", None),
        ];
        for (path, want) in cases {
            assert_eq!(index.line(path), want, "{path}");
        }
    }

    #[test]
    fn unparseable_text_gives_an_empty_index() {
        assert_eq!(LineIndex::new("a: [").line("a"), None);
    }
}
