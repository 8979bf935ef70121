//! A closed widget's call-back request: `POST /v1/callback` (JSON `{key, language, phone}`)
//! becomes a target of the tenant's call-back campaign through campaigns' `RequestCallback`,
//! with no interaction id (the member waited on no call: the campaign places it at the time
//! of the request). Offered only while campaigns is configured and the tenant has a call-back
//! campaign ([`Chats::offers_callback`](crate::Chats::offers_callback)). The phone number
//! goes to campaigns as the contact hint and nowhere else: it is never logged, and the member
//! reference is a digest of it, so asking twice from one number is one call-back.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use careline_proto::v1;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::contact::{
    ContactDesk, KeyQuery, Lang, Problem, answer_accepted, answer_problem, authorized,
    content_type, cors, origin_allowed,
};

/// Where the widget posts a call-back request.
pub const CALLBACK_PATH: &str = "/v1/callback";
/// Longest phone number as typed, in bytes.
pub const MAX_PHONE_BYTES: usize = 32;
/// Fewest digits of a phone number (a local number without its area code is too short to call back).
pub const MIN_PHONE_DIGITS: usize = 7;
/// Most digits of a phone number (E.164).
pub const MAX_PHONE_DIGITS: usize = 15;
/// How long campaigns may take to record a call-back.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Counter of call-back requests by result.
pub const CALLBACKS_METRIC: &str = "careline_chat_callbacks_total";

/// A call-back request as sent: every field optional here so a missing one gets a message naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallbackRequest {
    pub key: String,
    pub language: String,
    pub phone: String,
}

/// The number as a telephony dials it: `+` when the member typed one first, then the digits.
/// Spaces, dashes, dots and parentheses are allowed in between; anything else is refused.
pub fn normalize_phone(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Problem::PhoneMissing);
    }
    if text.len() > MAX_PHONE_BYTES {
        return Err(Problem::PhoneInvalid);
    }
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(Problem::PhoneInvalid);
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len()) {
        return Err(Problem::PhoneInvalid);
    }
    Ok(format!("{plus}{digits}"))
}

/// The member reference of a call-back asked for from the widget: a digest of tenant and
/// number (the number itself stays in the contact hint).
fn member_ref(tenant: &str, phone: &str) -> String {
    let digest = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0u8])
        .chain_update(phone.as_bytes())
        .finalize();
    format!("widget-callback-{}", hex::encode(&digest[..12]))
}

/// `POST /v1/callback`.
pub(crate) async fn submit(
    State(desk): State<ContactDesk>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = match read(&headers, &body) {
        Ok(mut request) => {
            if request.key.is_empty() {
                request.key = query.key;
            }
            accept(&desk, &headers, request).await
        }
        Err(problem) => Err((Lang::En, problem)),
    };
    let result = match &outcome {
        Ok(_) => "accepted",
        Err((_, problem)) => problem.code(),
    };
    metrics::counter!(CALLBACKS_METRIC, "result" => result).increment(1);
    let mut response = match outcome {
        Ok(lang) => answer_accepted(true, lang),
        Err((lang, problem)) => answer_problem(true, lang, problem),
    };
    cors(&headers, &mut response);
    response
}

fn read(headers: &HeaderMap, body: &[u8]) -> Result<CallbackRequest, Problem> {
    if !content_type(headers).starts_with("application/json") {
        return Err(Problem::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|_| Problem::Malformed)
}

async fn accept(
    desk: &ContactDesk,
    headers: &HeaderMap,
    request: CallbackRequest,
) -> Result<Lang, (Lang, Problem)> {
    let lang = Lang::parse(&request.language).ok_or((Lang::En, Problem::LanguageUnknown))?;
    let phone = normalize_phone(&request.phone).map_err(|problem| (lang, problem))?;
    if request.key.is_empty() {
        return Err((lang, Problem::KeyMissing));
    }
    let (tenant, widget) = desk
        .chats
        .widget(&request.key)
        .ok_or((lang, Problem::UnknownKey))?;
    if !origin_allowed(&widget, headers) {
        return Err((lang, Problem::OriginNotAllowed));
    }
    let (Some(campaigns), Some(api_key)) = (&desk.campaigns, desk.api_keys.get(&tenant.id)) else {
        return Err((lang, Problem::CallbackNotOffered));
    };
    if !desk.chats.offers_callback(&tenant) {
        return Err((lang, Problem::CallbackNotOffered));
    }
    let _permit = desk
        .in_flight
        .try_acquire()
        .map_err(|_| (lang, Problem::Busy))?;
    let language = match lang {
        Lang::En => v1::Language::En,
        Lang::Es => v1::Language::Es,
    };
    let call = authorized(
        v1::RequestCallbackRequest {
            member_ref: member_ref(&tenant.id, &phone),
            interaction_id: String::new(),
            contact_hint: phone,
            language: language as i32,
        },
        api_key,
        CALLBACK_TIMEOUT,
    )
    .ok_or((lang, Problem::Unavailable))?;
    match campaigns.clone().request_callback(call).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            tracing::info!(tenant = %tenant.id, campaign = %answer.campaign_code, added = answer.added, "call-back requested from the widget");
            Ok(lang)
        }
        Err(status) => {
            tracing::warn!(tenant = %tenant.id, code = ?status.code(), "call-back request: campaigns refused or is unreachable");
            Err((
                lang,
                match status.code() {
                    tonic::Code::InvalidArgument => Problem::PhoneInvalid,
                    tonic::Code::FailedPrecondition => Problem::CallbackNotOffered,
                    _ => Problem::Unavailable,
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_kept_as_plus_and_digits_and_bad_ones_are_refused() {
        assert_eq!(
            normalize_phone(" +1 (555) 010-1234 ").unwrap(),
            "+15550101234"
        );
        assert_eq!(normalize_phone("555.010.1234").unwrap(), "5550101234");
        assert_eq!(normalize_phone("   "), Err(Problem::PhoneMissing));
        for bad in [
            "12345",
            "+1 555 010 1234 ext 9",
            "1+5550101234",
            &"5".repeat(40),
        ] {
            assert_eq!(normalize_phone(bad), Err(Problem::PhoneInvalid), "{bad}");
        }
    }

    #[test]
    fn the_member_reference_names_neither_tenant_nor_number() {
        let reference = member_ref("demo-health", "+15550101234");
        assert!(!reference.contains("5550101234") && !reference.contains("demo"));
        assert_eq!(reference, member_ref("demo-health", "+15550101234"));
        assert_ne!(reference, member_ref("other-plan", "+15550101234"));
    }
}
