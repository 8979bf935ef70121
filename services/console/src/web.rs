//! The console's HTTP side: the floor view at `/floor` (sign-in form, the
//! page, its script and style) and its live updates over server-sent events
//! at `/floor/events`, fed by the tenant's shared [`FloorFeeds`] feed; and
//! the platform operator's view across tenants at `/operator` (a form posting
//! the operator token, answered with the table; nothing is kept).

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use careline_bus::TenantDirectory;
use careline_kit::{Shutdown, TenantAuth};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::WatchStream;

use crate::floor::FloorFeeds;
use crate::i18n;
use crate::overview::{self, Access, OperatorGate};
use crate::session::{self, COOKIE, Lang, Session, Sessions};
use crate::store::KpiStore;

/// Live update streams open at once on this replica.
pub const MAX_STREAMS: usize = 1000;
/// The sign-in page template.
pub const LOGIN_HTML: &str = include_str!("../static/login.html");
/// The floor view template.
pub const FLOOR_HTML: &str = include_str!("../static/floor.html");
/// The operator view template.
pub const OPERATOR_HTML: &str = include_str!("../static/operator.html");
/// Where the floor view lives.
pub const FLOOR_PATH: &str = "/floor";
/// Where the platform operator's view across tenants lives.
pub const OPERATOR_PATH: &str = "/operator";

const FLOOR_JS: &str = include_str!("../static/floor.js");
const FLOOR_CSS: &str = include_str!("../static/floor.css");
/// Scripts and styles come only from this server; nothing may frame the page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every HTTP handler shares.
#[derive(Clone)]
pub struct WebState {
    pub tenants: Arc<TenantDirectory>,
    /// Checks the key posted to the sign-in form.
    pub auth: TenantAuth,
    pub sessions: Sessions,
    pub feeds: FloorFeeds,
    pub shutdown: Shutdown,
    pub streams: Arc<Semaphore>,
    /// Whether the session cookie is marked `Secure` (served over HTTPS).
    pub secure_cookie: bool,
    /// Who may open the operator view.
    pub operator: OperatorGate,
    pub store: KpiStore,
}

/// The HTTP routes of the console.
pub fn routes(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to(FLOOR_PATH) }))
        .route(FLOOR_PATH, get(page))
        .route("/floor/login", post(login))
        .route("/floor/logout", post(logout))
        .route("/floor/lang", post(change_lang))
        .route("/floor/events", get(events))
        .route(OPERATOR_PATH, get(operator_form).post(operator_view))
        .route(
            "/floor/floor.js",
            get(|| async { asset("text/javascript; charset=utf-8", FLOOR_JS) }),
        )
        .route(
            "/floor/floor.css",
            get(|| async { asset("text/css; charset=utf-8", FLOOR_CSS) }),
        )
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// An HTML page with the headers every page carries.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

fn login_page(status: StatusCode, lang: Lang, failed: bool) -> Response {
    let page = i18n::fill(LOGIN_HTML, lang)
        .replace("{{error_hidden}}", if failed { "" } else { "hidden" });
    html(status, page)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn session_of(state: &WebState, headers: &HeaderMap) -> Option<Session> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .find_map(|(_, value)| state.sessions.check(value, &state.tenants, now_ms()))
}

#[derive(serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn page(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    match session_of(&state, &headers) {
        Some(session) => {
            let page = i18n::fill(FLOOR_HTML, session.lang)
                .replace("{{strings_json}}", &i18n::json(session.lang))
                .replace("{{tenant}}", &session.supervisor.tenant);
            html(StatusCode::OK, page)
        }
        None => login_page(
            StatusCode::OK,
            Lang::parse(query.lang.as_deref().unwrap_or_default()),
            false,
        ),
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    api_key: String,
    #[serde(default)]
    lang: String,
}

async fn login(State(state): State<WebState>, Form(form): Form<LoginForm>) -> Response {
    let lang = Lang::parse(&form.lang);
    let Some(supervisor) = session::supervisor_for_key(&state.auth, form.api_key.trim()) else {
        tracing::info!("floor view sign-in refused");
        return login_page(StatusCode::UNAUTHORIZED, lang, true);
    };
    tracing::info!(tenant = %supervisor.tenant, key_id = %supervisor.key_id, "floor view sign-in");
    let value = state.sessions.issue(&supervisor, lang, now_ms());
    let mut response = Redirect::to(FLOOR_PATH).into_response();
    if let Some(cookie) = session_cookie(&state, &value) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The session cookie carrying `value`.
fn session_cookie(state: &WebState, value: &str) -> Option<HeaderValue> {
    let cookie = format!(
        "{COOKIE}={value}; Path={FLOOR_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        state.sessions.lifetime().as_secs(),
        if state.secure_cookie { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).ok()
}

#[derive(serde::Deserialize)]
struct LangForm {
    lang: String,
}

/// Switches the page language: a new session cookie, the same supervisor.
async fn change_lang(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<LangForm>,
) -> Response {
    let mut response = Redirect::to(FLOOR_PATH).into_response();
    if let Some(session) = session_of(&state, &headers) {
        let value = state
            .sessions
            .issue(&session.supervisor, Lang::parse(&form.lang), now_ms());
        if let Some(cookie) = session_cookie(&state, &value) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to(FLOOR_PATH).into_response();
    let cookie = format!("{COOKIE}=; Path={FLOOR_PATH}; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn events(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let Some(session) = session_of(&state, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            "sign in at /floor first; the session is missing or expired",
        )
            .into_response();
    };
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many floor views are open on this server; retry shortly",
        )
            .into_response();
    };
    let updates = WatchStream::new(state.feeds.subscribe(&session.supervisor.tenant))
        .filter_map(|snapshot| async move { snapshot })
        .map(move |json| {
            // The permit lives as long as the stream.
            let _permit = &permit;
            Ok::<_, std::convert::Infallible>(Event::default().event("floor").data(json.as_str()))
        })
        // The session's end ends the stream; the page signs in again.
        .take_until(tokio::time::sleep_until(
            tokio::time::Instant::now()
                + std::time::Duration::from_millis(
                    u64::try_from(session.expires_ms - now_ms()).unwrap_or(0),
                ),
        ))
        .take_until(state.shutdown.wait());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(updates).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// The operator view: the token form, then the table when `overview` is given.
fn operator_page(
    status: StatusCode,
    lang: Lang,
    refused: bool,
    overview: Option<&careline_proto::v1::GetTenantOverviewResponse>,
) -> Response {
    let percent = |ratio: f64| format!("{:.0}%", ratio * 100.0);
    let rows: String = overview
        .map(|o| o.tenants.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let nps = if t.surveys_answered == 0 {
                "–".to_owned()
            } else {
                format!("{:.0}", t.nps)
            };
            format!(
                "<tr><th scope=\"row\">{} <span class=\"tenant\">{}</span></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{nps}</td></tr>",
                i18n::escape_html(&t.name),
                i18n::escape_html(&t.tenant_id),
                t.created,
                t.answered,
                t.abandoned,
                percent(t.abandonment_rate),
                percent(t.service_level),
            )
        })
        .collect();
    let hidden = |hide: bool| if hide { "hidden" } else { "" };
    let page = i18n::fill(OPERATOR_HTML, lang)
        .replace("{{error_hidden}}", hidden(!refused))
        .replace("{{table_hidden}}", hidden(overview.is_none()))
        .replace(
            "{{truncated_hidden}}",
            hidden(!overview.is_some_and(|o| o.truncated)),
        )
        .replace("{{rows}}", &rows);
    html(status, page)
}

async fn operator_form(Query(query): Query<LangQuery>) -> Response {
    let lang = Lang::parse(query.lang.as_deref().unwrap_or_default());
    operator_page(StatusCode::OK, lang, false, None)
}

#[derive(serde::Deserialize)]
struct OperatorForm {
    token: String,
    #[serde(default)]
    lang: String,
}

async fn operator_view(State(state): State<WebState>, Form(form): Form<OperatorForm>) -> Response {
    let lang = Lang::parse(&form.lang);
    let status = match state.operator.check(form.token.trim()) {
        Access::Operator => None,
        Access::TenantKey => {
            tracing::info!("operator view refused a tenant key");
            Some(StatusCode::FORBIDDEN)
        }
        Access::Unknown => Some(StatusCode::UNAUTHORIZED),
        Access::Off => Some(StatusCode::FORBIDDEN),
    };
    if let Some(status) = status {
        return operator_page(status, lang, true, None);
    }
    let now = now_ms();
    let result = match overview::range(0, 0, now) {
        Ok((from_ms, to_ms)) => {
            overview::overview(&state.store, &state.tenants, from_ms, to_ms).await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(overview) => operator_page(StatusCode::OK, lang, false, Some(&overview)),
        Err(error) => {
            tracing::warn!(%error, "operator view read failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the KPI store cannot be read right now; retry shortly",
            )
                .into_response()
        }
    }
}
