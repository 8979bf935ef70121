//! Fuzzes the member chat protocol decoder (chat-gateway): any bytes (as lossy
//! UTF-8) as one WebSocket text frame must decode or be refused with a typed
//! error, never panic; a decoded frame respects every limit and survives a
//! round trip through its JSON form.

#![no_main]

use careline_chat_gateway::limits::{MAX_FIRST_NAME_CHARS, MAX_FRAME_BYTES, MAX_TEXT_CHARS};
use careline_chat_gateway::protocol::{ClientFrame, decode, is_client_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(frame) = decode(&text) else {
        return;
    };
    assert!(text.len() <= MAX_FRAME_BYTES);
    match &frame {
        ClientFrame::Start(start) => {
            assert!(is_client_id(&start.client_id));
            assert!(start.text.chars().count() <= MAX_TEXT_CHARS);
            assert!(
                start
                    .first_name
                    .as_ref()
                    .is_none_or(|n| n.chars().count() <= MAX_FIRST_NAME_CHARS)
            );
        }
        ClientFrame::Message { client_id, text } => {
            assert!(is_client_id(client_id));
            assert!(!text.trim().is_empty() && text.chars().count() <= MAX_TEXT_CHARS);
        }
        _ => {}
    }
    let again = serde_json::to_string(&frame).expect("a decoded frame serializes");
    assert_eq!(decode(&again).as_ref(), Ok(&frame), "round trip of {again}");
});
