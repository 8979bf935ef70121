//! The contact form: `POST /v1/contact` (JSON from the widget) and `POST /contact` (the
//! no-JavaScript page `GET /contact?key=WIDGET_KEY` posting to itself, form-encoded), and the
//! widget's call-back request `POST /v1/callback` ([`crate::callback`]), which shares the
//! desk's widget checks, CORS and error answers.
//!
//! Accepted 24 hours a day, whatever the tenant's hours. A valid submission becomes an RFC 5322
//! message (lettre's builder: `From` = the member's reply address, `To` = the tenant's inbound
//! address) handed to email-intake's `IngestEmail`, so it takes exactly the path of a member's
//! email: durable in JetStream before we answer, threaded, classified by the router, an automatic
//! receipt, and the agent's `ReplyEmail` goes out by email to the member. (The router's
//! `CreateInteraction` with channel email would make an interaction with no thread and no
//! reply address: the agent could not answer.)
//!
//! Input is checked against the named limits below; the address must parse as an RFC 5321
//! address; names with control characters are refused, and every header is written by lettre,
//! which encodes values, so nothing a member types can add a header. Errors are a JSON object
//! (`{"error", "field", "message"}`) or an HTML page, in the member's language. Nothing a member
//! typed is logged: the widget key, tenant and Message-ID only.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use careline_domain::tenant::ChatWidget;
use careline_kit::RouterKeys;
use careline_kit::Tls;
use careline_proto::v1;
use careline_proto::v1::campaign_service_client::CampaignServiceClient;
use careline_proto::v1::email_intake_client::EmailIntakeClient;
use lettre::Address;
use lettre::message::header::{ContentType, HeaderName, HeaderValue as MailHeaderValue};
use lettre::message::{Mailbox, Message};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use crate::chats::Chats;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest reply address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Longest topic id, in bytes.
pub const MAX_TOPIC_BYTES: usize = 40;
/// Longest client submission id, in bytes.
pub const MAX_SUBMISSION_ID_BYTES: usize = 64;
/// Largest request body: the message in 4-byte characters, percent-encoded, plus the rest.
pub const MAX_REQUEST_BYTES: usize = 128 * 1024;
/// Submissions handed to email-intake at once by one gateway; beyond it, `503` (retry).
pub const MAX_CONCURRENT_SUBMISSIONS: usize = 64;
/// How long email-intake may take to make a submission durable.
pub const INGEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the contact form needs: the chats core (widget key -> tenant), email-intake, and the
/// API key the gateway presents for each tenant (the one it presents to the router: a tenant's
/// API key is good for every service).
#[derive(Clone)]
pub struct ContactDesk {
    pub(crate) chats: Arc<Chats>,
    email_intake: EmailIntakeClient<Channel>,
    /// campaigns, when configured (call-backs).
    pub(crate) campaigns: Option<CampaignServiceClient<Channel>>,
    pub(crate) api_keys: RouterKeys,
    pub(crate) in_flight: Arc<Semaphore>,
}

impl ContactDesk {
    /// A desk handing submissions to email-intake at `email_intake_url` and call-back requests
    /// to campaigns at `campaigns_url` (empty: none), both connected lazily, so the gateway
    /// starts while they are away (a submission then gets `503`).
    pub fn new(
        chats: Arc<Chats>,
        email_intake_url: &str,
        campaigns_url: &str,
        api_keys: RouterKeys,
        tls: &Tls,
    ) -> anyhow::Result<Self> {
        let campaigns = (!campaigns_url.is_empty())
            .then(|| lazy_channel(tls, "--campaigns-url", campaigns_url, "50058"))
            .transpose()?
            .map(CampaignServiceClient::new);
        Ok(Self {
            chats,
            email_intake: EmailIntakeClient::new(lazy_channel(
                tls,
                "--email-intake-url",
                email_intake_url,
                "50053",
            )?),
            campaigns,
            api_keys,
            in_flight: Arc::new(Semaphore::new(MAX_CONCURRENT_SUBMISSIONS)),
        })
    }
}

/// A channel to `url` that connects on first use; `flag` and `port` name it in the error.
fn lazy_channel(tls: &Tls, flag: &str, url: &str, port: &str) -> anyhow::Result<Channel> {
    Ok(tls
        .grpc_endpoint(url)
        .map_err(|_| anyhow::anyhow!("{flag} {url:?} is not a URL (e.g. http://127.0.0.1:{port})"))?
        .connect_timeout(INGEST_TIMEOUT)
        .connect_lazy())
}

/// The contact routes: `POST /v1/contact` (JSON or form) with its CORS preflight, and
/// `POST /contact` (the form page posting to itself).
pub fn routes(desk: ContactDesk) -> axum::Router {
    axum::Router::new()
        .route("/v1/contact", post(submit).options(preflight))
        .route("/contact", post(submit))
        .route(
            crate::callback::CALLBACK_PATH,
            post(crate::callback::submit).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(desk)
}

/// A submission as sent: every field optional here so a missing one gets a message naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactRequest {
    pub key: String,
    pub language: String,
    pub name: String,
    pub email: String,
    pub topic: String,
    pub message: String,
    pub submission_id: String,
}

/// The widget key may come in the query (the page posting to itself, the widget's preflight).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct KeyQuery {
    pub(crate) key: String,
}

/// The language of the answer pages and messages, and of the email's subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    /// The language of a request's `language` field (`""` is English).
    pub(crate) fn parse(language: &str) -> Option<Lang> {
        match language.trim() {
            "" | "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

/// A submission that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub lang: Lang,
    pub name: Option<String>,
    pub reply_to: Address,
    pub topic: Option<String>,
    pub message: String,
    pub submission_id: Option<String>,
}

/// Which field is wrong and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    KeyMissing,
    UnknownKey,
    OriginNotAllowed,
    LanguageUnknown,
    NameTooLong,
    NameControl,
    EmailMissing,
    EmailInvalid,
    TopicInvalid,
    MessageMissing,
    MessageTooLong,
    SubmissionIdInvalid,
    PhoneMissing,
    PhoneInvalid,
    CallbackNotOffered,
    UnsupportedMediaType,
    Malformed,
    Busy,
    Unavailable,
}

impl Problem {
    /// The form field at fault (the widget puts the message beside it), if one is.
    fn field(self) -> Option<&'static str> {
        match self {
            Problem::KeyMissing | Problem::UnknownKey => Some("key"),
            Problem::LanguageUnknown => Some("language"),
            Problem::NameTooLong | Problem::NameControl => Some("name"),
            Problem::EmailMissing | Problem::EmailInvalid => Some("email"),
            Problem::TopicInvalid => Some("topic"),
            Problem::MessageMissing | Problem::MessageTooLong => Some("message"),
            Problem::SubmissionIdInvalid => Some("submission_id"),
            Problem::PhoneMissing | Problem::PhoneInvalid => Some("phone"),
            Problem::OriginNotAllowed
            | Problem::CallbackNotOffered
            | Problem::UnsupportedMediaType
            | Problem::Malformed
            | Problem::Busy
            | Problem::Unavailable => None,
        }
    }

    /// The machine-readable code of the problem (answers and metrics).
    pub(crate) fn code(self) -> &'static str {
        self.status_and_code().1
    }

    /// The one table of problem -> HTTP status and machine-readable code.
    fn status_and_code(self) -> (StatusCode, &'static str) {
        match self {
            Problem::UnknownKey => (StatusCode::NOT_FOUND, "unknown_key"),
            Problem::CallbackNotOffered => (StatusCode::NOT_FOUND, "callback_not_offered"),
            Problem::OriginNotAllowed => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            Problem::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Problem::Busy | Problem::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Problem::KeyMissing
            | Problem::LanguageUnknown
            | Problem::NameTooLong
            | Problem::NameControl
            | Problem::EmailMissing
            | Problem::EmailInvalid
            | Problem::TopicInvalid
            | Problem::MessageMissing
            | Problem::MessageTooLong
            | Problem::SubmissionIdInvalid
            | Problem::PhoneMissing
            | Problem::PhoneInvalid
            | Problem::Malformed => (StatusCode::BAD_REQUEST, "invalid"),
        }
    }

    /// What the member (or the page's developer) should do, in `lang`.
    fn message(self, lang: Lang) -> String {
        let es = lang == Lang::Es;
        match self {
            Problem::KeyMissing => {
                if es {
                    "Falta la clave del formulario: abra el formulario desde el sitio de su plan (…/contact?key=…).".into()
                } else {
                    "The form's key is missing: open the form from your plan's site (…/contact?key=…).".into()
                }
            }
            Problem::UnknownKey => {
                if es {
                    "Este formulario no está configurado (clave desconocida). Escriba al correo de su plan.".into()
                } else {
                    "This form is not set up (unknown key). Please email your plan directly.".into()
                }
            }
            Problem::OriginNotAllowed => {
                "This page's origin is not in the widget's allowed_origins: add it to the tenant's chat.widgets.".into()
            }
            Problem::LanguageUnknown => "language must be \"en\" or \"es\".".into(),
            Problem::NameTooLong => {
                if es {
                    format!("El nombre puede tener hasta {MAX_NAME_CHARS} caracteres.")
                } else {
                    format!("The name can be at most {MAX_NAME_CHARS} characters.")
                }
            }
            Problem::NameControl => {
                if es {
                    "El nombre no puede tener saltos de línea ni caracteres de control.".into()
                } else {
                    "The name cannot contain line breaks or control characters.".into()
                }
            }
            Problem::EmailMissing => {
                if es {
                    "Escriba su correo electrónico: ahí le responderemos.".into()
                } else {
                    "Please enter your email address: that is where we answer.".into()
                }
            }
            Problem::EmailInvalid => {
                if es {
                    "Escriba un correo electrónico como nombre@ejemplo.com.".into()
                } else {
                    "Please enter an email address like name@example.com.".into()
                }
            }
            Problem::TopicInvalid => format!(
                "topic must be 1-{MAX_TOPIC_BYTES} of a-z, 0-9 and _ (e.g. \"billing\")."
            ),
            Problem::MessageMissing => {
                if es {
                    "Escriba su mensaje.".into()
                } else {
                    "Please write your message.".into()
                }
            }
            Problem::MessageTooLong => {
                if es {
                    format!("El mensaje puede tener hasta {MAX_MESSAGE_CHARS} caracteres.")
                } else {
                    format!("The message can be at most {MAX_MESSAGE_CHARS} characters.")
                }
            }
            Problem::SubmissionIdInvalid => format!(
                "submission_id must be 8-{MAX_SUBMISSION_ID_BYTES} of A-Z, a-z, 0-9, - and _."
            ),
            Problem::PhoneMissing => {
                if es {
                    "Escriba el número de teléfono al que le llamamos.".into()
                } else {
                    "Please enter the phone number we should call.".into()
                }
            }
            Problem::PhoneInvalid => {
                let (min, max) = (crate::callback::MIN_PHONE_DIGITS, crate::callback::MAX_PHONE_DIGITS);
                if es {
                    format!("Escriba un número de teléfono de {min} a {max} dígitos, como +1 555 010 1234.")
                } else {
                    format!("Please enter a phone number of {min} to {max} digits, like +1 555 010 1234.")
                }
            }
            Problem::CallbackNotOffered => {
                if es {
                    "No ofrecemos llamadas de vuelta aquí. Escríbanos o use el portal.".into()
                } else {
                    "Call-backs are not offered here. Please write to us or use the portal.".into()
                }
            }
            Problem::UnsupportedMediaType => {
                "Send application/json or application/x-www-form-urlencoded.".into()
            }
            Problem::Malformed => {
                if es {
                    "No pudimos leer el formulario. Intente de nuevo.".into()
                } else {
                    "We could not read the form. Please try again.".into()
                }
            }
            Problem::Busy | Problem::Unavailable => {
                if es {
                    "No pudimos recibir su mensaje en este momento. Intente de nuevo en unos minutos.".into()
                } else {
                    "We could not take your message just now. Please try again in a few minutes.".into()
                }
            }
        }
    }
}

/// Checks a submission against the limits above (pure: unit-tested without sockets).
pub fn validate(request: &ContactRequest) -> Result<Contact, (Lang, Problem)> {
    let Some(lang) = Lang::parse(&request.language) else {
        return Err((Lang::En, Problem::LanguageUnknown));
    };
    let fail = |problem| Err((lang, problem));
    let name = request.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return fail(Problem::NameTooLong);
    }
    if name.chars().any(char::is_control) {
        return fail(Problem::NameControl);
    }
    let email = request.email.trim();
    if email.is_empty() {
        return fail(Problem::EmailMissing);
    }
    let Some(reply_to) = parse_reply_address(email) else {
        return fail(Problem::EmailInvalid);
    };
    let topic = request.topic.trim();
    if !topic.is_empty()
        && (topic.len() > MAX_TOPIC_BYTES
            || !topic
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    {
        return fail(Problem::TopicInvalid);
    }
    let message = request.message.replace("\r\n", "\n").replace('\0', "");
    let message = message.trim();
    if message.is_empty() {
        return fail(Problem::MessageMissing);
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return fail(Problem::MessageTooLong);
    }
    let submission_id = request.submission_id.trim();
    if !submission_id.is_empty()
        && (!(8..=MAX_SUBMISSION_ID_BYTES).contains(&submission_id.len())
            || !submission_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return fail(Problem::SubmissionIdInvalid);
    }
    Ok(Contact {
        lang,
        name: (!name.is_empty()).then(|| name.to_owned()),
        reply_to,
        topic: (!topic.is_empty()).then(|| topic.to_owned()),
        message: message.to_owned(),
        submission_id: (!submission_id.is_empty()).then(|| submission_id.to_owned()),
    })
}

/// An address we can answer: RFC 5321 syntax (lettre), at most [`MAX_EMAIL_BYTES`], and a
/// domain name with a dot (no IP literal, no bare host: a member's mailbox is on the internet).
fn parse_reply_address(text: &str) -> Option<Address> {
    if text.len() > MAX_EMAIL_BYTES {
        return None;
    }
    let address = Address::from_str(text).ok()?;
    let domain = address.domain();
    (domain.contains('.') && !domain.starts_with('[')).then_some(address)
}

/// Subject words of a topic id, in the member's language, so the router's classifier (which
/// reads subject and text) sees one language; an unknown topic id is used as it is.
fn topic_label(topic: &str, lang: Lang) -> &str {
    let labels: &[(&str, &str, &str)] = &[
        ("billing", "billing", "facturación"),
        ("claims", "claims", "reclamaciones"),
        ("coverage", "coverage", "cobertura"),
        ("appointments", "appointments", "citas"),
        ("provider_search", "finding a doctor", "buscar un médico"),
        (
            "technical",
            "website or login problem",
            "problema con el sitio o la contraseña",
        ),
        ("other", "other", "otro tema"),
    ];
    labels
        .iter()
        .find(|(id, _, _)| *id == topic)
        .map(|(_, en, es)| if lang == Lang::Es { *es } else { *en })
        .unwrap_or(topic)
}

/// The RFC 5322 message for email-intake: from the member to the tenant's inbound address.
/// The Message-ID is derived from the submission id when there is one, so a submission sent
/// twice (a double click, a retry) is one message to email-intake and one interaction.
pub fn build_message(contact: &Contact, to: &Address) -> Result<Vec<u8>, lettre::error::Error> {
    let subject = match (&contact.topic, contact.lang) {
        (Some(topic), Lang::Es) => {
            format!("Formulario de contacto: {}", topic_label(topic, Lang::Es))
        }
        (Some(topic), Lang::En) => format!("Contact form: {}", topic_label(topic, Lang::En)),
        (None, Lang::Es) => "Formulario de contacto".to_owned(),
        (None, Lang::En) => "Contact form".to_owned(),
    };
    let local = contact
        .submission_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let message_id = format!("<contact.{local}@{}>", to.domain());
    let message = Message::builder()
        .from(Mailbox::new(contact.name.clone(), contact.reply_to.clone()))
        .to(Mailbox::new(None, to.clone()))
        .subject(subject)
        .message_id(Some(message_id))
        .date_now()
        .raw_header(MailHeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            contact.lang.code().to_owned(),
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(contact.message.clone())?;
    Ok(message.formatted())
}

/// A call carrying the tenant's `api_key` that gives up after `timeout`; `None` when the key
/// cannot be a header value.
pub(crate) fn authorized<T>(
    message: T,
    api_key: &str,
    timeout: Duration,
) -> Option<tonic::Request<T>> {
    let mut call = tonic::Request::new(message);
    call.set_timeout(timeout);
    call.metadata_mut()
        .insert("authorization", format!("Bearer {api_key}").parse().ok()?);
    Some(call)
}

/// Whether the answer should be JSON (the widget) or an HTML page (the plain form).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    content_type(headers).starts_with("application/json")
}

pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A cross-origin request's origin may use the widget when it is in the widget's
/// `allowed_origins`; the gateway's own pages (same host) and non-browser clients (no
/// `Origin`) may always: the form is open to anyone, the list only says which sites may embed.
pub(crate) fn origin_allowed(widget: &ChatWidget, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let same_host = host.is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, origin_host)| origin_host.eq_ignore_ascii_case(host))
    });
    same_host || widget.allows_origin(Some(origin))
}

/// CORS headers that let the widget's page read our answer (only for allowed origins).
pub(crate) fn cors(headers: &HeaderMap, response: &mut Response) {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `OPTIONS /v1/contact?key=…`: the browser asks before a cross-origin JSON POST.
async fn preflight(
    State(desk): State<ContactDesk>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Response {
    let allowed = desk
        .chats
        .widget(&query.key)
        .is_some_and(|(_, widget)| origin_allowed(&widget, &headers));
    if !allowed {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&headers, &mut response);
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// `POST /v1/contact` and `POST /contact`.
async fn submit(
    State(desk): State<ContactDesk>,
    Query(query): Query<KeyQuery>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let json = wants_json(&headers);
    let outcome = match read_request(request).await {
        Ok(mut body) => {
            if body.key.is_empty() {
                body.key = query.key;
            }
            accept(&desk, &headers, body).await
        }
        Err(problem) => Err((Lang::En, problem)),
    };
    let mut response = match outcome {
        Ok(lang) => answer_accepted(json, lang),
        Err((lang, problem)) => answer_problem(json, lang, problem),
    };
    if json {
        cors(&headers, &mut response);
    }
    response
}

async fn read_request(request: Request) -> Result<ContactRequest, Problem> {
    let kind = content_type(request.headers());
    if kind.starts_with("application/json") {
        Json::<ContactRequest>::from_request(request, &())
            .await
            .map(|Json(body)| body)
            .map_err(|_| Problem::Malformed)
    } else if kind.starts_with("application/x-www-form-urlencoded") {
        axum::Form::<ContactRequest>::from_request(request, &())
            .await
            .map(|axum::Form(body)| body)
            .map_err(|_| Problem::Malformed)
    } else {
        Err(Problem::UnsupportedMediaType)
    }
}

/// Validates, builds the message and hands it to email-intake.
async fn accept(
    desk: &ContactDesk,
    headers: &HeaderMap,
    body: ContactRequest,
) -> Result<Lang, (Lang, Problem)> {
    let contact = validate(&body)?;
    let lang = contact.lang;
    if body.key.is_empty() {
        return Err((lang, Problem::KeyMissing));
    }
    let (tenant, widget) = desk
        .chats
        .widget(&body.key)
        .ok_or((lang, Problem::UnknownKey))?;
    if !origin_allowed(&widget, headers) {
        return Err((lang, Problem::OriginNotAllowed));
    }
    // The tenant's first inbound address is where its members write; without one (or without
    // a key for email-intake) the tenant has no email channel to put the message on.
    let inbound = tenant
        .inbound_email_addresses
        .first()
        .and_then(|a| Address::from_str(a).ok());
    let (Some(inbound), Some(api_key)) = (inbound, desk.api_keys.get(&tenant.id)) else {
        tracing::warn!(tenant = %tenant.id, "contact form refused: the tenant has no inbound email address or no email-intake key is configured for it");
        return Err((lang, Problem::Unavailable));
    };
    let raw = build_message(&contact, &inbound).map_err(|error| {
        tracing::error!(tenant = %tenant.id, %error, "contact form: building the message failed");
        (lang, Problem::Unavailable)
    })?;
    let _permit = desk
        .in_flight
        .try_acquire()
        .map_err(|_| (lang, Problem::Busy))?;
    let call = authorized(v1::IngestEmailRequest { raw }, api_key, INGEST_TIMEOUT)
        .ok_or((lang, Problem::Unavailable))?;
    match desk.email_intake.clone().ingest_email(call).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            tracing::info!(tenant = %tenant.id, message_id = %answer.message_id, duplicate = answer.duplicate, "contact form accepted");
            metrics::counter!("careline_chat_contact_forms_total", "result" => "accepted")
                .increment(1);
            Ok(lang)
        }
        Err(status) => {
            tracing::warn!(tenant = %tenant.id, code = ?status.code(), "contact form: email-intake refused or is unreachable");
            metrics::counter!("careline_chat_contact_forms_total", "result" => "unavailable")
                .increment(1);
            Err((lang, Problem::Unavailable))
        }
    }
}

pub(crate) fn answer_accepted(json: bool, lang: Lang) -> Response {
    if json {
        return (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "status": "accepted" })),
        )
            .into_response();
    }
    let (title, text) = match lang {
        Lang::En => (
            "Thank you",
            "We received your message and will answer by email. You can close this page.",
        ),
        Lang::Es => (
            "Gracias",
            "Recibimos su mensaje y le responderemos por correo electrónico. Puede cerrar esta página.",
        ),
    };
    page(StatusCode::OK, lang, title, &[text], false)
}

pub(crate) fn answer_problem(json: bool, lang: Lang, problem: Problem) -> Response {
    let (status, code) = problem.status_and_code();
    let message = problem.message(lang);
    if json {
        return (
            status,
            Json(
                serde_json::json!({ "error": code, "field": problem.field(), "message": message }),
            ),
        )
            .into_response();
    }
    let title = match lang {
        Lang::En => "Your message was not sent",
        Lang::Es => "Su mensaje no se envió",
    };
    page(status, lang, title, &[&message], true)
}

/// A small HTML answer page; every text is escaped.
fn page(status: StatusCode, lang: Lang, title: &str, lines: &[&str], back: bool) -> Response {
    let mut html = format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;\
         margin:0 auto;padding:1rem 1.5rem}}</style></head><body><main><h1>{}</h1>",
        lang.code(),
        escape(title),
        escape(title)
    );
    for line in lines {
        html.push_str(&format!("<p role=\"status\">{}</p>", escape(line)));
    }
    if back {
        html.push_str(match lang {
            Lang::En => {
                "<p>Use your browser's Back button to return to the form: what you wrote is still there.</p>"
            }
            Lang::Es => {
                "<p>Use el botón Atrás de su navegador para volver al formulario: lo que escribió sigue ahí.</p>"
            }
        });
    }
    html.push_str("</main></body></html>\n");
    (status, Html(html)).into_response()
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ContactRequest {
        ContactRequest {
            key: "demo-widget-key".into(),
            language: "es".into(),
            name: "Ana Pérez".into(),
            email: "ana@member.example".into(),
            topic: "billing".into(),
            message: "Tengo una pregunta sobre mi factura.".into(),
            submission_id: "3f1c2d4e-aaaa-bbbb-cccc-123456789abc".into(),
        }
    }

    #[test]
    fn a_complete_submission_is_accepted_with_optional_fields_absent() {
        let contact = validate(&request()).unwrap();
        assert_eq!(contact.lang, Lang::Es);
        assert_eq!(contact.name.as_deref(), Some("Ana Pérez"));
        let bare = ContactRequest {
            name: String::new(),
            topic: String::new(),
            language: String::new(),
            submission_id: String::new(),
            ..request()
        };
        let contact = validate(&bare).unwrap();
        assert_eq!(
            (contact.name, contact.topic, contact.lang),
            (None, None, Lang::En)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(ContactRequest, Problem)> = vec![
            (
                ContactRequest {
                    language: "fr".into(),
                    ..request()
                },
                Problem::LanguageUnknown,
            ),
            (
                ContactRequest {
                    name: "a".repeat(MAX_NAME_CHARS + 1),
                    ..request()
                },
                Problem::NameTooLong,
            ),
            (
                ContactRequest {
                    name: "Ana\r\nBcc: x@evil.example".into(),
                    ..request()
                },
                Problem::NameControl,
            ),
            (
                ContactRequest {
                    email: "  ".into(),
                    ..request()
                },
                Problem::EmailMissing,
            ),
            (
                ContactRequest {
                    email: "ana".into(),
                    ..request()
                },
                Problem::EmailInvalid,
            ),
            (
                ContactRequest {
                    email: "ana@localhost".into(),
                    ..request()
                },
                Problem::EmailInvalid,
            ),
            (
                ContactRequest {
                    email: "ana@member.example\r\nBcc: x@evil.example".into(),
                    ..request()
                },
                Problem::EmailInvalid,
            ),
            (
                ContactRequest {
                    email: "Ana <ana@member.example>".into(),
                    ..request()
                },
                Problem::EmailInvalid,
            ),
            (
                ContactRequest {
                    email: format!("{}@member.example", "a".repeat(250)),
                    ..request()
                },
                Problem::EmailInvalid,
            ),
            (
                ContactRequest {
                    topic: "Billing\n".repeat(2),
                    ..request()
                },
                Problem::TopicInvalid,
            ),
            (
                ContactRequest {
                    message: " \r\n ".into(),
                    ..request()
                },
                Problem::MessageMissing,
            ),
            (
                ContactRequest {
                    message: "ñ".repeat(MAX_MESSAGE_CHARS + 1),
                    ..request()
                },
                Problem::MessageTooLong,
            ),
            (
                ContactRequest {
                    submission_id: "short".into(),
                    ..request()
                },
                Problem::SubmissionIdInvalid,
            ),
        ];
        for (bad, expected) in cases {
            let (_, problem) = validate(&bad).unwrap_err();
            assert_eq!(problem, expected, "{bad:?}");
            assert!(!problem.message(Lang::Es).is_empty());
        }
    }

    #[test]
    fn the_message_is_from_the_member_to_the_tenant_and_cannot_gain_headers() {
        let mut sneaky = request();
        sneaky.message = "line one\r\nBcc: x@evil.example\r\n\r\n.\r\nline two".into();
        let contact = validate(&sneaky).unwrap();
        let to = Address::from_str("members@demo-health.example").unwrap();
        let raw = String::from_utf8(build_message(&contact, &to).unwrap()).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("From: =?utf-8?"), "{head}");
        assert!(head.contains("<ana@member.example>"), "{head}");
        assert!(head.contains("To: members@demo-health.example"), "{head}");
        assert!(head.contains("Content-Language: es"), "{head}");
        assert!(
            head.contains(
                "Message-ID: <contact.3f1c2d4e-aaaa-bbbb-cccc-123456789abc@demo-health.example>"
            ),
            "{head}"
        );
        assert!(!head.to_ascii_lowercase().contains("bcc"), "{head}");
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Formulario de contacto: facturación")
        );
        assert_eq!(
            parsed.from().unwrap().first().unwrap().name(),
            Some("Ana Pérez")
        );
        assert!(parsed.body_text(0).unwrap().contains("Bcc: x@evil.example"));
        assert!(parsed.header("Bcc").is_none());
    }

    #[test]
    fn html_answers_escape_what_they_show() {
        assert_eq!(
            escape("<b a=\"1\">&'"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
    }
}
