//! Parsing a raw message with mail-parser into what email-intake keeps:
//! ids for threading, the sender, the subject, the text (HTML converted),
//! the new text ([`crate::trim`]), attachment metadata and the headers that
//! decide whether an automatic answer is allowed. Never fails: broken MIME,
//! unknown charsets and binary junk give a best-effort result.

use mail_parser::{MessageParser, MimeHeaders};

use crate::trim;

/// Most bytes of body text kept per message (the raw message stays in JetStream
/// only until it is handled).
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Most text parts joined into the body.
pub const MAX_TEXT_PARTS: usize = 8;
/// Most attachments listed per message.
pub const MAX_ATTACHMENTS: usize = 50;
/// Most ids read from References / In-Reply-To.
pub const MAX_THREAD_IDS: usize = 32;
/// Longest subject kept, in characters.
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Longest id or header value kept, in bytes.
const MAX_HEADER_VALUE: usize = 998;

/// What is known of an attachment (its content is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// Headers RFC 3834 loop protection looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    /// Any `List-*` header (List-Id, List-Unsubscribe, ...).
    pub list: bool,
    /// `X-Auto-Response-Suppress` (Microsoft) or `X-Autoreply` / `X-Autorespond`.
    pub auto_response_suppress: bool,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEmail {
    /// Message-ID without angle brackets (see [`crate::inbox::message_id_of`]).
    pub message_id: String,
    /// In-Reply-To then References, most recent first, without duplicates.
    pub thread_ids: Vec<String>,
    /// The From address, lowercased; `None` when absent or unreadable.
    pub from: Option<String>,
    pub subject: String,
    /// The whole text body (HTML converted), at most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// The new part of the text: quoted history and signature trimmed.
    pub new_text: String,
    pub attachments: Vec<Attachment>,
    pub auto: AutoHeaders,
}

/// Parses `raw`.
pub fn parse(raw: &[u8]) -> ParsedEmail {
    let message_id = crate::inbox::message_id_of(raw);
    let Some(message) = MessageParser::default().parse(raw) else {
        // Not even headers: keep the bytes as text so nothing is lost.
        let text = truncate(
            String::from_utf8_lossy(raw).replace('\0', ""),
            MAX_TEXT_BYTES,
        );
        return ParsedEmail {
            message_id,
            thread_ids: Vec::new(),
            from: None,
            subject: String::new(),
            new_text: trim::new_text(&text),
            text,
            attachments: Vec::new(),
            auto: AutoHeaders::default(),
        };
    };
    let mut thread_ids: Vec<String> = Vec::new();
    for value in [message.in_reply_to(), message.references()] {
        let ids: Vec<String> = match value.as_text_list() {
            Some(list) => list.iter().map(|id| id.to_string()).collect(),
            None => value
                .as_text()
                .map(|id| vec![id.to_owned()])
                .unwrap_or_default(),
        };
        // References lists the oldest first; the closest ancestor is the last.
        for id in ids.into_iter().rev() {
            let id = clean_id(&id);
            if !id.is_empty() && !thread_ids.contains(&id) && thread_ids.len() < MAX_THREAD_IDS {
                thread_ids.push(id);
            }
        }
    }
    let from = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .map(|address| truncate(address.trim().to_lowercase(), MAX_HEADER_VALUE))
        .filter(|address| address.contains('@'));
    let subject = message
        .subject()
        .map(|s| {
            s.replace(['\r', '\n', '\0'], " ")
                .chars()
                .take(MAX_SUBJECT_CHARS)
                .collect()
        })
        .unwrap_or_default();
    let mut text = String::new();
    for i in 0..message.text_body_count().min(MAX_TEXT_PARTS) {
        if let Some(part) = message.body_text(i) {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&part);
            if text.len() > MAX_TEXT_BYTES {
                break;
            }
        }
    }
    let text = truncate(text.replace('\0', ""), MAX_TEXT_BYTES);
    let attachments = message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| Attachment {
            file_name: part
                .attachment_name()
                .map(|n| truncate(n.to_owned(), MAX_HEADER_VALUE))
                .unwrap_or_default(),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            size_bytes: part.len() as u64,
        })
        .collect();
    let mut auto = AutoHeaders::default();
    for header in message.headers() {
        let name = header.name().to_ascii_lowercase();
        let value = || {
            header
                .value()
                .as_text()
                .map(|v| truncate(v.trim().to_ascii_lowercase(), MAX_HEADER_VALUE))
                .unwrap_or_default()
        };
        match name.as_str() {
            "auto-submitted" => auto.auto_submitted = Some(value()),
            "precedence" => auto.precedence = Some(value()),
            "x-auto-response-suppress" | "x-autoreply" | "x-autorespond" => {
                auto.auto_response_suppress = true
            }
            name if name.starts_with("list-") => auto.list = true,
            _ => {}
        }
    }
    ParsedEmail {
        message_id,
        thread_ids,
        from,
        subject,
        new_text: trim::new_text(&text),
        text,
        attachments,
        auto,
    }
}

fn clean_id(id: &str) -> String {
    truncate(
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
        MAX_HEADER_VALUE,
    )
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_latin1_spanish_survives() {
        let raw = b"From: Mar\xeda <MARIA@Member.example>\r\nSubject: =?iso-8859-1?Q?Informaci=F3n?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=BFCu=E1ndo llega mi tarjeta? Se=F1or\r\n";
        let parsed = parse(raw);
        assert_eq!(parsed.subject, "Información");
        assert_eq!(parsed.text.trim(), "¿Cuándo llega mi tarjeta? Señor");
        assert_eq!(parsed.from.as_deref(), Some("maria@member.example"));
    }

    #[test]
    fn windows_1252_and_base64_utf8_decode() {
        let raw = b"Subject: x\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n\x93Hola\x94 \x80 ni\xf1o\r\n";
        assert_eq!(parse(raw).text.trim(), "\u{201c}Hola\u{201d} \u{20ac} niño");
        let raw = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nwr9EZSBxdcOpIHRyYXRhPw==\r\n";
        assert_eq!(parse(raw).text.trim(), "¿De qué trata?");
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Chest <b>pain</b> since morning</p></body></html>\r\n";
        let text = parse(raw).text;
        assert!(text.contains("Chest pain since morning"), "{text:?}");
        assert!(!text.contains('<'));
    }

    #[test]
    fn attachments_are_listed_not_kept() {
        let raw = b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the card.\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=card.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let parsed = parse(raw);
        assert_eq!(parsed.text.trim(), "See the card.");
        assert_eq!(
            parsed.attachments,
            [Attachment {
                file_name: "card.png".into(),
                content_type: "image/png".into(),
                size_bytes: 8
            }]
        );
    }

    #[test]
    fn thread_ids_put_the_closest_ancestor_first() {
        let raw = b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n\r\nhi";
        let parsed = parse(raw);
        assert_eq!(parsed.message_id, "c@x");
        assert_eq!(parsed.thread_ids, ["b@x", "a@x"]);
    }

    #[test]
    fn auto_reply_headers_are_read() {
        let raw =
            b"Auto-Submitted: Auto-Replied\r\nPrecedence: Bulk\r\nList-Id: <x.list>\r\n\r\nhi";
        let auto = parse(raw).auto;
        assert_eq!(auto.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(auto.precedence.as_deref(), Some("bulk"));
        assert!(auto.list);
    }

    #[test]
    fn junk_never_panics_and_keeps_its_text() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"no headers at all",
            b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
            b"Subject: =?utf-8?B?####?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe body",
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        ] {
            let parsed = parse(raw);
            assert!(!parsed.message_id.is_empty());
        }
        assert!(
            parse(b"no headers at all")
                .text
                .contains("no headers at all")
                || parse(b"no headers at all").subject.is_empty()
        );
    }
}
