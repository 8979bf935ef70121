//! Whether a member's mail may get an automatic answer (RFC 3834 loop
//! protection), and which one. Pure rules; the once-per-sender-per-hour limit
//! is claimed in Redis by the caller ([`crate::store::ThreadStore::claim_auto_reply`]).

use std::time::Duration;

use crate::message::ParsedEmail;

/// At most one automatic answer per sender in this window (RFC 3834 2: "should not
/// send more than one reply per sender per period").
pub const AUTO_REPLY_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Why no automatic answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// `Auto-Submitted` other than `no`: an automatic message itself.
    AutoSubmitted,
    /// `Precedence: bulk`, `list` or `junk`.
    Precedence,
    /// Mailing-list headers (`List-*`).
    MailingList,
    /// `X-Auto-Response-Suppress` and similar.
    SuppressRequested,
    /// A bounce (null envelope sender) or a system sender (mailer-daemon, no-reply, ...).
    SystemSender,
    /// No usable From address.
    NoSender,
    /// The sender is one of the tenant's own addresses.
    OwnAddress,
}

impl Suppressed {
    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::AutoSubmitted => "auto_submitted",
            Suppressed::Precedence => "precedence",
            Suppressed::MailingList => "mailing_list",
            Suppressed::SuppressRequested => "suppress_requested",
            Suppressed::SystemSender => "system_sender",
            Suppressed::NoSender => "no_sender",
            Suppressed::OwnAddress => "own_address",
        }
    }
}

/// Local parts that never get an automatic answer.
const SYSTEM_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "bounce",
    "bounces",
    "listserv",
    "majordomo",
    "owner",
];

/// `Some(reason)` when `email` must not be answered automatically.
pub fn suppression(
    email: &ParsedEmail,
    null_sender: bool,
    own_addresses: &[String],
) -> Option<Suppressed> {
    if let Some(value) = &email.auto.auto_submitted
        && value.split(';').next().map(str::trim) != Some("no")
    {
        return Some(Suppressed::AutoSubmitted);
    }
    if let Some(precedence) = &email.auto.precedence
        && ["bulk", "list", "junk"].contains(&precedence.as_str())
    {
        return Some(Suppressed::Precedence);
    }
    if email.auto.list {
        return Some(Suppressed::MailingList);
    }
    if email.auto.auto_response_suppress {
        return Some(Suppressed::SuppressRequested);
    }
    let Some(from) = &email.from else {
        return Some(Suppressed::NoSender);
    };
    let local = from.split('@').next().unwrap_or_default();
    if null_sender
        || SYSTEM_LOCAL_PARTS
            .iter()
            .any(|system| local == *system || local.starts_with(&format!("{system}+")))
    {
        return Some(Suppressed::SystemSender);
    }
    if own_addresses
        .iter()
        .any(|own| own.eq_ignore_ascii_case(from))
    {
        return Some(Suppressed::OwnAddress);
    }
    None
}

/// Which automatic answer an interaction gets: urgent guidance first, then
/// the after-hours answer, else a receipt.
pub fn template(urgent: bool, after_hours: bool) -> &'static str {
    if urgent {
        "urgent_guidance"
    } else if after_hours {
        "after_hours"
    } else {
        "receipt"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn check(headers: &str, null_sender: bool) -> Option<Suppressed> {
        let raw = format!("{headers}\r\nSubject: hi\r\n\r\nbody");
        suppression(
            &parse(raw.as_bytes()),
            null_sender,
            &["members@plan.example".to_owned()],
        )
    }

    #[test]
    fn rfc3834_loop_protection_table() {
        let cases = [
            ("From: pat@member.example", false, None),
            (
                "From: pat@member.example\r\nAuto-Submitted: no",
                false,
                None,
            ),
            (
                "From: pat@member.example\r\nAuto-Submitted: auto-replied",
                false,
                Some(Suppressed::AutoSubmitted),
            ),
            (
                "From: pat@member.example\r\nAuto-Submitted: auto-generated; owner-email=x",
                false,
                Some(Suppressed::AutoSubmitted),
            ),
            (
                "From: pat@member.example\r\nPrecedence: bulk",
                false,
                Some(Suppressed::Precedence),
            ),
            (
                "From: pat@member.example\r\nPrecedence: junk",
                false,
                Some(Suppressed::Precedence),
            ),
            (
                "From: pat@member.example\r\nPrecedence: list",
                false,
                Some(Suppressed::Precedence),
            ),
            (
                "From: pat@member.example\r\nList-Id: <news.x>",
                false,
                Some(Suppressed::MailingList),
            ),
            (
                "From: pat@member.example\r\nList-Unsubscribe: <mailto:u@x>",
                false,
                Some(Suppressed::MailingList),
            ),
            (
                "From: pat@member.example\r\nX-Auto-Response-Suppress: All",
                false,
                Some(Suppressed::SuppressRequested),
            ),
            (
                "From: MAILER-DAEMON@mx.example",
                false,
                Some(Suppressed::SystemSender),
            ),
            (
                "From: no-reply@shop.example",
                false,
                Some(Suppressed::SystemSender),
            ),
            (
                "From: noreply+abc@shop.example",
                false,
                Some(Suppressed::SystemSender),
            ),
            (
                "From: pat@member.example",
                true,
                Some(Suppressed::SystemSender),
            ),
            (
                "From: Members@Plan.example",
                false,
                Some(Suppressed::OwnAddress),
            ),
            ("X-Nothing: 1", false, Some(Suppressed::NoSender)),
        ];
        for (headers, null_sender, expected) in cases {
            assert_eq!(check(headers, null_sender), expected, "{headers}");
        }
    }

    #[test]
    fn urgent_guidance_wins_over_after_hours() {
        assert_eq!(template(true, true), "urgent_guidance");
        assert_eq!(template(false, true), "after_hours");
        assert_eq!(template(false, false), "receipt");
    }
}
