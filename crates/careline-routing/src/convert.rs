//! Conversions between the domain vocabulary and the protobuf enums.

use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;

/// The domain channel of a proto channel; `None` for UNSPECIFIED or unknown.
pub fn channel_from_proto(value: i32) -> Option<Channel> {
    match v1::Channel::try_from(value).ok()? {
        v1::Channel::Voice => Some(Channel::Voice),
        v1::Channel::Chat => Some(Channel::Chat),
        v1::Channel::Email => Some(Channel::Email),
        v1::Channel::Unspecified => None,
    }
}

/// The proto value of a channel.
pub fn channel_to_proto(channel: Channel) -> v1::Channel {
    match channel {
        Channel::Voice => v1::Channel::Voice,
        Channel::Chat => v1::Channel::Chat,
        Channel::Email => v1::Channel::Email,
    }
}

/// The domain language of a proto language; `None` for UNSPECIFIED or unknown.
pub fn language_from_proto(value: i32) -> Option<Language> {
    match v1::Language::try_from(value).ok()? {
        v1::Language::En => Some(Language::En),
        v1::Language::Es => Some(Language::Es),
        v1::Language::Unspecified => None,
    }
}

/// The proto value of a language.
pub fn language_to_proto(language: Language) -> v1::Language {
    match language {
        Language::En => v1::Language::En,
        Language::Es => v1::Language::Es,
    }
}

/// The domain priority of a proto priority; UNSPECIFIED is NORMAL, unknown is `None`.
pub fn priority_from_proto(value: i32) -> Option<Priority> {
    match v1::Priority::try_from(value).ok()? {
        v1::Priority::Low => Some(Priority::Low),
        v1::Priority::Normal | v1::Priority::Unspecified => Some(Priority::Normal),
        v1::Priority::High => Some(Priority::High),
        v1::Priority::Urgent => Some(Priority::Urgent),
    }
}

/// The proto value of a priority.
pub fn priority_to_proto(priority: Priority) -> v1::Priority {
    match priority {
        Priority::Low => v1::Priority::Low,
        Priority::Normal => v1::Priority::Normal,
        Priority::High => v1::Priority::High,
        Priority::Urgent => v1::Priority::Urgent,
    }
}

/// Parses a channel name as stored in Redis.
pub fn channel_from_str(name: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.as_str() == name)
}

/// Parses a language code as stored in Redis.
pub fn language_from_str(code: &str) -> Option<Language> {
    [Language::En, Language::Es]
        .into_iter()
        .find(|l| l.as_str() == code)
}
