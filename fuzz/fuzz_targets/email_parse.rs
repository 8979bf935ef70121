//! Fuzzes the parse path of a received message: any bytes as a raw message,
//! parsed, trimmed and checked for an automatic answer, without a panic and
//! within the documented limits; a message's id is stable.

#![no_main]

use careline_email_intake::autoreply::suppression;
use careline_email_intake::inbox::message_id_of;
use careline_email_intake::message::{MAX_ATTACHMENTS, MAX_TEXT_BYTES, MAX_THREAD_IDS, parse};
use careline_email_intake::trim::MAX_TRIMMED_CHARS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    assert_eq!(parsed.message_id, message_id_of(data));
    assert!(parsed.text.len() <= MAX_TEXT_BYTES);
    assert!(parsed.new_text.chars().count() <= MAX_TRIMMED_CHARS);
    assert!(parsed.attachments.len() <= MAX_ATTACHMENTS);
    assert!(parsed.thread_ids.len() <= MAX_THREAD_IDS);
    assert!(!parsed.subject.contains(['\r', '\n', '\0']));
    let _ = suppression(&parsed, false, &["members@plan.example".to_owned()]);
});
