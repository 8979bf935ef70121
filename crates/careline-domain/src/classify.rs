//! Understanding a member's text, the same way for every channel: which
//! language it is in (English or Spanish), whether it describes an emergency
//! (and which one, as a stable phrase id such as `chest_pain`), and which of
//! the tenant's topics it is about (claims, billing, ...).
//!
//! Pure and deterministic: no I/O, no models. The text is folded (Unicode
//! compatibility decomposition, accents dropped, lowercase, apostrophes
//! removed so "can't" reads "cant") and cut into words; a clause ends at
//! `. , ; : ! ? ¿ ¡`, a line break or a bracket. Phrases match whole words
//! (a word written `overdos*` in the tables matches every word starting
//! so), inside one clause.
//!
//! Urgency is negation aware: a phrase does not count when a negation ("no",
//! "not", "without", "denies", "don't", "sin", "niega", "nunca", ...) comes
//! before it in its clause with only filler words between ("I don't have any
//! chest pain", "no tengo dolor de pecho"). Anything else between (a noun, a
//! pronoun) ends the negation's reach, so "no fever and chest pain" and "No I
//! have chest pain" stay urgent: when unsure, a contact is treated as urgent.
//!
//! Language detection counts marker words of each language; below
//! [`MIN_LANGUAGE_EVIDENCE`] or without a clear winner it answers `None`, and the
//! caller keeps the language it already had (the caller's or the tenant's
//! default).

use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::Language;
use crate::tenant::TopicRule;

mod tables;
#[cfg(test)]
mod tests;

pub use tables::{BUILTIN_TOPICS, builtin_topic_keywords};

/// Only this much of a text is read (an email body can be megabytes; what
/// matters for routing is at its start).
pub const MAX_CLASSIFIED_BYTES: usize = 64 * 1024;
/// Fewest marker words a language needs before it is reported.
pub const MIN_LANGUAGE_EVIDENCE: usize = 2;
/// A language wins only with at least this many times the other's markers.
pub const LANGUAGE_MARGIN: usize = 2;
/// Most words between a negation and the phrase it negates (filler words only).
pub const NEGATION_REACH: usize = 4;

/// What a text says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification<'a> {
    /// The language, when the text shows it clearly.
    pub language: Option<Language>,
    /// The first emergency phrase found (not negated), if any.
    pub urgent: Option<UrgentReason>,
    /// The first of the tenant's topic rules (in their configured order) whose
    /// keywords appear.
    pub topic: Option<&'a TopicRule>,
}

/// Why a text was found urgent: the kind of phrase matched. Its id is stored
/// with the interaction instead of the member's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UrgentReason {
    ChestPain,
    HeartAttack,
    CantBreathe,
    Suicide,
    SelfHarm,
    Overdose,
    Stroke,
    HeavyBleeding,
}

impl UrgentReason {
    /// Every reason, in a stable order.
    pub const ALL: [UrgentReason; 8] = [
        UrgentReason::ChestPain,
        UrgentReason::HeartAttack,
        UrgentReason::CantBreathe,
        UrgentReason::Suicide,
        UrgentReason::SelfHarm,
        UrgentReason::Overdose,
        UrgentReason::Stroke,
        UrgentReason::HeavyBleeding,
    ];

    /// The stable phrase id, e.g. `chest_pain`.
    pub fn as_str(self) -> &'static str {
        match self {
            UrgentReason::ChestPain => "chest_pain",
            UrgentReason::HeartAttack => "heart_attack",
            UrgentReason::CantBreathe => "cant_breathe",
            UrgentReason::Suicide => "suicide",
            UrgentReason::SelfHarm => "self_harm",
            UrgentReason::Overdose => "overdose",
            UrgentReason::Stroke => "stroke",
            UrgentReason::HeavyBleeding => "heavy_bleeding",
        }
    }

    /// The reason with phrase id `id`.
    pub fn from_id(id: &str) -> Option<UrgentReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == id)
    }

    /// A mental-health crisis: the member is pointed to 988 first.
    pub fn is_mental_health_crisis(self) -> bool {
        matches!(self, UrgentReason::Suicide | UrgentReason::SelfHarm)
    }

    /// What a member in danger is told first, in `lang`: call 911, or 988 in
    /// a mental-health crisis. `None`: the contact was marked urgent by its
    /// sender, without a phrase.
    pub fn guidance(reason: Option<UrgentReason>, lang: Language) -> &'static str {
        let crisis = reason.is_some_and(UrgentReason::is_mental_health_crisis);
        match (lang, crisis) {
            (Language::En, true) => {
                "If you are thinking about suicide or hurting yourself, call or text 988 \
                 (Suicide and Crisis Lifeline) now. If you are in immediate danger, call 911."
            }
            (Language::En, false) => {
                "If this is a medical emergency, call 911 now or go to the nearest emergency \
                 room. In a mental-health crisis, call or text 988."
            }
            (Language::Es, true) => {
                "Si está pensando en el suicidio o en hacerse daño, llame o envíe un mensaje de \
                 texto al 988 (Línea de Prevención del Suicidio y Crisis) ahora. Si está en \
                 peligro inmediato, llame al 911."
            }
            (Language::Es, false) => {
                "Si es una emergencia médica, llame al 911 ahora o vaya a la sala de emergencias \
                 más cercana. En una crisis de salud mental, llame o envíe un mensaje de texto \
                 al 988."
            }
        }
    }
}

/// Classifies `text` against the built-in language and urgency tables and
/// the tenant's topic rules.
pub fn classify<'a>(text: &str, topics: &'a [TopicRule]) -> Classification<'a> {
    let text = &text[..char_floor(text, MAX_CLASSIFIED_BYTES)];
    let words = words(text);
    Classification {
        language: language(text, &words),
        urgent: urgent(&words),
        topic: topic(&words, topics),
    }
}

/// Whether `keyword` is a valid topic keyword; otherwise what is wrong with it.
pub fn check_keyword(keyword: &str) -> Result<(), String> {
    Pattern::parse(keyword).map(|_| ())
}

/// The largest char boundary at or below `max`.
fn char_floor(text: &str, max: usize) -> usize {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// One folded word and the clause it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    clause: u32,
}

/// Characters that end a clause (besides line breaks).
const CLAUSE_BREAKS: &[char] = &[
    '.', ',', ';', ':', '!', '?', '¿', '¡', '(', ')', '[', ']', '"', '\u{2026}',
];
/// Apostrophes are dropped inside a word: "can't" and "can’t" read "cant".
const APOSTROPHES: &[char] = &['\'', '\u{2019}', '\u{2018}', '`', '\u{b4}'];

/// The folded words of `text`.
fn words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut clause = 0;
    for c in text.nfkd() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase().filter(|l| !is_combining_mark(*l)));
            continue;
        }
        if is_combining_mark(c) || (APOSTROPHES.contains(&c) && !current.is_empty()) {
            continue;
        }
        if !current.is_empty() {
            words.push(Word {
                text: std::mem::take(&mut current),
                clause,
            });
        }
        if c == '\n' || CLAUSE_BREAKS.contains(&c) {
            clause += 1;
        }
    }
    if !current.is_empty() {
        words.push(Word {
            text: current,
            clause,
        });
    }
    words
}

/// Folds one pattern word the way [`words`] folds text.
fn fold_word(word: &str) -> String {
    word.nfkd()
        .filter(|c| !APOSTROPHES.contains(c))
        .flat_map(char::to_lowercase)
        .filter(|c| !is_combining_mark(*c))
        .collect()
}

/// One word of a phrase: any of its alternatives.
#[derive(Debug, Clone)]
struct WordPattern(Vec<Alternative>);

#[derive(Debug, Clone)]
enum Alternative {
    Exact(String),
    Prefix(String),
}

impl WordPattern {
    fn matches(&self, word: &str) -> bool {
        self.0.iter().any(|alt| match alt {
            Alternative::Exact(w) => w == word,
            Alternative::Prefix(p) => word.starts_with(p.as_str()),
        })
    }
}

/// A phrase: words separated by spaces, alternatives for one word separated
/// by `|`, a trailing `*` making a word a prefix (`dolor|dolores de pecho`,
/// `overdos*`).
#[derive(Debug, Clone)]
struct Pattern(Vec<WordPattern>);

/// Longest topic keyword, in bytes.
pub const MAX_KEYWORD_LEN: usize = 100;

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        const RULE: &str = "use words of letters and digits, '|' between alternatives for one word, '*' at a word's end for any ending";
        if text.len() > MAX_KEYWORD_LEN {
            return Err(format!(
                "keyword is {} bytes; the limit is {MAX_KEYWORD_LEN}",
                text.len()
            ));
        }
        let words = text
            .split_whitespace()
            .map(|word| {
                let alternatives = word
                    .split('|')
                    .map(|alt| {
                        let (stem, prefix) = match alt.strip_suffix('*') {
                            Some(stem) => (stem, true),
                            None => (alt, false),
                        };
                        let folded = fold_word(stem);
                        if folded.is_empty() || !folded.chars().all(char::is_alphanumeric) {
                            return Err(format!("{text:?} is not a valid keyword: {RULE}"));
                        }
                        Ok(if prefix {
                            Alternative::Prefix(folded)
                        } else {
                            Alternative::Exact(folded)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(WordPattern(alternatives))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if words.is_empty() {
            return Err(format!("keyword must not be empty: {RULE}"));
        }
        Ok(Pattern(words))
    }

    /// Whether the phrase matches the words starting at `start`, all in one clause.
    fn matches_at(&self, words: &[Word], start: usize) -> bool {
        let Some(first) = words.get(start) else {
            return false;
        };
        self.0.len() <= words.len() - start
            && self
                .0
                .iter()
                .zip(&words[start..])
                .all(|(pattern, word)| word.clause == first.clause && pattern.matches(&word.text))
    }

    /// Where the phrase matches, in order.
    fn positions<'w>(&'w self, words: &'w [Word]) -> impl Iterator<Item = usize> + 'w {
        (0..words.len()).filter(|&i| self.matches_at(words, i))
    }
}

/// A compiled row of the urgency table.
struct UrgentPhrase {
    reason: UrgentReason,
    pattern: Pattern,
    /// The phrase does not count when the next word is one of these
    /// ("a stroke of luck").
    unless_next: &'static [&'static str],
}

static URGENT_PHRASES: LazyLock<Vec<UrgentPhrase>> = LazyLock::new(|| {
    tables::URGENT
        .iter()
        .map(|row| UrgentPhrase {
            reason: row.reason,
            pattern: Pattern::parse(row.phrase).expect("the urgency table's phrases are valid"),
            unless_next: row.unless_next,
        })
        .collect()
});

/// The reason of the earliest urgent phrase in the text that is not negated.
fn urgent(words: &[Word]) -> Option<UrgentReason> {
    URGENT_PHRASES
        .iter()
        .filter_map(|phrase| {
            phrase
                .pattern
                .positions(words)
                .find(|&start| {
                    let next = words.get(start + phrase.pattern.0.len());
                    let excluded = next.is_some_and(|next| {
                        next.clause == words[start].clause
                            && phrase.unless_next.contains(&next.text.as_str())
                    });
                    !excluded && !negated(words, start)
                })
                .map(|start| (start, phrase.reason))
        })
        .min()
        .map(|(_, reason)| reason)
}

/// Whether a negation governs the phrase starting at `start`: within
/// [`NEGATION_REACH`] words before it, in its clause, with only filler words
/// between.
fn negated(words: &[Word], start: usize) -> bool {
    let clause = words[start].clause;
    for word in words[..start].iter().rev().take(NEGATION_REACH) {
        if word.clause != clause {
            return false;
        }
        if tables::NEGATIONS.contains(&word.text.as_str()) {
            return true;
        }
        if !tables::NEGATION_FILLERS.contains(&word.text.as_str()) {
            return false;
        }
    }
    false
}

/// The built-in topics' keywords, compiled once (a tenant's own keywords are
/// few and compiled per call).
static BUILTIN_TOPIC_PATTERNS: LazyLock<Vec<(&'static str, Vec<Pattern>)>> = LazyLock::new(|| {
    BUILTIN_TOPICS
        .iter()
        .map(|&topic| {
            let patterns = builtin_topic_keywords(topic)
                .iter()
                .map(|k| Pattern::parse(k).expect("the built-in topic keywords are valid"))
                .collect();
            (topic, patterns)
        })
        .collect()
});

/// The first rule (in configured order) with a keyword in the text.
fn topic<'a>(words: &[Word], topics: &'a [TopicRule]) -> Option<&'a TopicRule> {
    let found = |pattern: &Pattern| pattern.positions(words).next().is_some();
    topics.iter().find(|rule| {
        let builtin = BUILTIN_TOPIC_PATTERNS
            .iter()
            .find(|(topic, _)| *topic == rule.topic)
            .map_or(&[][..], |(_, patterns)| patterns.as_slice());
        builtin.iter().any(found)
            || rule
                .keywords
                .iter()
                // A validated config has only valid keywords; others are skipped.
                .filter_map(|keyword| Pattern::parse(keyword).ok())
                .any(|pattern| found(&pattern))
    })
}

/// The language shown by marker words (and Spanish punctuation and letters).
fn language(text: &str, words: &[Word]) -> Option<Language> {
    let count = |markers: &[&str]| {
        words
            .iter()
            .filter(|w| markers.contains(&w.text.as_str()))
            .count()
    };
    let en = count(tables::ENGLISH_MARKERS);
    let es = count(tables::SPANISH_MARKERS)
        + usize::from(text.contains(|c| tables::SPANISH_LETTERS.contains(&c)));
    let clear = |winner: usize, loser: usize| {
        winner >= MIN_LANGUAGE_EVIDENCE && winner > loser && winner >= LANGUAGE_MARGIN * loser
    };
    if clear(en, es) {
        Some(Language::En)
    } else if clear(es, en) {
        Some(Language::Es)
    } else {
        None
    }
}
