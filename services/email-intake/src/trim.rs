//! What the agent sees first of a member's mail: the new text, without the
//! quoted history of earlier messages and without the signature. Pure text
//! rules, English and Spanish mail clients.

/// Most characters of trimmed text kept (the full text is kept apart).
pub const MAX_TRIMMED_CHARS: usize = 8 * 1024;

/// The new part of `text`: quoted lines (`>`), everything from a reply
/// attribution ("On ... wrote:", "El ... escribió:", "-----Original Message-----")
/// and from a signature delimiter on dropped. Falls back to `text` when
/// nothing would be left (a message that is all quote still shows something).
pub fn new_text(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if is_history_start(trimmed) || is_signature_start(line) {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    let joined = kept.join("\n");
    let result = joined.trim();
    let chosen = if result.is_empty() {
        text.trim()
    } else {
        result
    };
    chosen.chars().take(MAX_TRIMMED_CHARS).collect()
}

fn is_history_start(line: &str) -> bool {
    let lower = line.to_lowercase();
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("el ") && lower.ends_with("escribió:"))
        || lower.starts_with("-----original message-----")
        || lower.starts_with("-----mensaje original-----")
        || lower.starts_with("begin forwarded message")
        || lower.starts_with("---------- forwarded message")
        // Outlook's separator before "From: ... Sent: ..."
        || (line.len() >= 20 && line.chars().all(|c| c == '_'))
}

fn is_signature_start(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    // RFC 3676 4.3: "-- " on its own line; many clients drop the space.
    line == "-- "
        || line == "--"
        || lower.starts_with("sent from my ")
        || lower.starts_with("enviado desde mi ")
        || lower.starts_with("get outlook for ")
        || lower.starts_with("obtener outlook para ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_history_and_signatures_in_english_and_spanish() {
        let cases = [
            (
                "Is my claim paid?\n\nOn Mon, Nov 23, 2026 at 9:00 AM Careline <help@x> wrote:\n> Thanks for writing",
                "Is my claim paid?",
            ),
            (
                "¿Pagaron mi reclamo?\n\nEl lun, 23 nov 2026 a las 9:00, Careline escribió:\n> Gracias",
                "¿Pagaron mi reclamo?",
            ),
            (
                "Need a new card.\n-- \nPat Doe\n555-0100",
                "Need a new card.",
            ),
            (
                "Need a new card.\n\nSent from my iPhone",
                "Need a new card.",
            ),
            (
                "Necesito una tarjeta.\nEnviado desde mi iPhone",
                "Necesito una tarjeta.",
            ),
            (
                "Answer below\n-----Original Message-----\nFrom: help@x\nSubject: hi",
                "Answer below",
            ),
            (
                "See below\n________________________________\nFrom: help@x",
                "See below",
            ),
            ("> only quoted\n> text", "> only quoted\n> text"),
            ("top\n> quoted\nbottom", "top\nbottom"),
        ];
        for (input, expected) in cases {
            assert_eq!(new_text(input), expected, "{input:?}");
        }
    }

    #[test]
    fn trimmed_text_is_bounded() {
        assert_eq!(
            new_text(&"é".repeat(MAX_TRIMMED_CHARS * 2)).chars().count(),
            MAX_TRIMMED_CHARS
        );
    }
}
