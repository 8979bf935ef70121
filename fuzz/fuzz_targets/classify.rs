//! Fuzzes the text classifier: any bytes (as lossy UTF-8) as a member's text,
//! and its first line also as a tenant's topic keyword, must classify without
//! a panic, the same way twice.

#![no_main]

use careline_domain::classify::{check_keyword, classify};
use careline_domain::tenant::TopicRule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let keyword = text.lines().next().unwrap_or_default().to_string();
    let valid_keyword = check_keyword(&keyword).is_ok();
    let rules = [
        TopicRule {
            topic: "claims".into(),
            queue: "billing".into(),
            keywords: vec![],
        },
        TopicRule {
            topic: "fuzzed".into(),
            queue: "general".into(),
            keywords: vec![keyword],
        },
    ];
    let first = classify(&text, &rules);
    assert_eq!(first, classify(&text, &rules));
    if let Some(reason) = first.urgent {
        assert_eq!(
            careline_domain::UrgentReason::from_id(reason.as_str()),
            Some(reason)
        );
    }
    // A valid keyword is found in its own text (when the text is short
    // enough to be read in full and the keyword has no `*` or `|`).
    if valid_keyword && !rules[1].keywords[0].contains(['*', '|']) && data.len() < 1024 {
        assert!(
            first.topic.is_some(),
            "keyword {:?} not found in its own text",
            rules[1].keywords[0]
        );
    }
});
