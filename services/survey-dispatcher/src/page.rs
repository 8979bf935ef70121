//! The survey page members open from the email: plain HTML forms (no
//! JavaScript), English or Spanish by the link's language, accessible
//! (labelled radio groups in fieldsets with legends, `lang`, visible focus).
//!
//! - `GET /s/<token>`: the form, or why it cannot be answered.
//! - `POST /s/<token>`: records the answer (form fields `recommend`,
//!   `hire_agent`, `ease`, optional `comment`) and thanks the member.
//!
//! A forged or expired link, or a second answer, shows a clear page and
//! stores nothing. Comments are never logged.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use careline_domain::Language;
use careline_domain::survey::{MAX_COMMENT_CHARS, Scores};
use serde::Deserialize;

use crate::SurveyError;
use crate::surveys::Surveys;

/// Largest form body accepted (the comment is limited to 2,000 characters).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// The page's routes over `surveys`.
pub fn router(surveys: Surveys) -> Router {
    Router::new()
        .route("/s/{token}", get(show).post(answer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(surveys)
}

/// The form as posted; a missing radio group is an empty field.
#[derive(Debug, Deserialize)]
struct Form {
    #[serde(default)]
    recommend: String,
    #[serde(default)]
    hire_agent: String,
    #[serde(default)]
    ease: String,
    #[serde(default)]
    comment: String,
}

/// Every text of the page, per language.
struct Words {
    title: &'static str,
    intro: &'static str,
    recommend: &'static str,
    hire_agent: &'static str,
    ease: &'static str,
    ease_low: &'static str,
    ease_high: &'static str,
    unlikely: &'static str,
    likely: &'static str,
    comment: &'static str,
    comment_hint: &'static str,
    submit: &'static str,
    thanks: &'static str,
    already: &'static str,
    expired: &'static str,
    forged: &'static str,
    missing: &'static str,
    unavailable: &'static str,
}

const EN: Words = Words {
    title: "How did we do?",
    intro: "Three quick questions about your recent contact with",
    recommend: "How likely are you to recommend us to a friend or family member?",
    hire_agent: "How likely would you be to hire the person you interacted with?",
    ease: "Compared with other healthcare interactions, how easy was this one?",
    ease_low: "much harder",
    ease_high: "much easier",
    unlikely: "not at all likely",
    likely: "extremely likely",
    comment: "Anything else you would like to tell us? (optional)",
    comment_hint: "Please do not include medical details.",
    submit: "Send my answers",
    thanks: "Thank you! Your answers were recorded.",
    already: "This survey was already answered. Thank you!",
    expired: "This survey link has expired. Thank you for your time.",
    forged: "This survey link is not valid. Please use the link from your email as it was sent.",
    missing: "Please answer the three questions marked with a number scale.",
    unavailable: "We could not record your answers just now. Please try again in a few minutes.",
};

const ES: Words = Words {
    title: "¿Cómo lo hicimos?",
    intro: "Tres preguntas rápidas sobre su contacto reciente con",
    recommend: "¿Qué tan probable es que nos recomiende a un amigo o familiar?",
    hire_agent: "¿Qué tan probable es que contratara a la persona que le atendió?",
    ease: "Comparado con otras gestiones de salud, ¿qué tan fácil fue esta?",
    ease_low: "mucho más difícil",
    ease_high: "mucho más fácil",
    unlikely: "nada probable",
    likely: "muy probable",
    comment: "¿Algo más que quiera decirnos? (opcional)",
    comment_hint: "Por favor no incluya detalles médicos.",
    submit: "Enviar mis respuestas",
    thanks: "¡Gracias! Sus respuestas quedaron registradas.",
    already: "Esta encuesta ya fue respondida. ¡Gracias!",
    expired: "Este enlace de encuesta ha vencido. Gracias por su tiempo.",
    forged: "Este enlace de encuesta no es válido. Use el enlace de su correo tal como llegó.",
    missing: "Por favor responda las tres preguntas con escala numérica.",
    unavailable: "No pudimos registrar sus respuestas en este momento. Inténtelo de nuevo en unos minutos.",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::En => &EN,
        Language::Es => &ES,
    }
}

async fn show(State(surveys): State<Surveys>, Path(token): Path<String>) -> Response {
    match surveys.open(&token).await {
        Ok(link) if link.answered => message(
            link.claims.language,
            StatusCode::OK,
            words(link.claims.language).already,
        ),
        Ok(link) => form(
            link.claims.language,
            &link.tenant_name,
            None,
            StatusCode::OK,
        ),
        Err(error) => error_page(Language::En, &error),
    }
}

async fn answer(
    State(surveys): State<Surveys>,
    Path(token): Path<String>,
    axum::Form(posted): axum::Form<Form>,
) -> Response {
    let link = match surveys.open(&token).await {
        Ok(link) => link,
        Err(error) => return error_page(Language::En, &error),
    };
    let language = link.claims.language;
    let parse = |field: &str| field.trim().parse::<i64>().ok();
    let scores = match (
        parse(&posted.recommend),
        parse(&posted.hire_agent),
        parse(&posted.ease),
    ) {
        (Some(r), Some(h), Some(e)) => Scores::new(r, h, e).ok(),
        _ => None,
    };
    let Some(scores) = scores else {
        return form(
            language,
            &link.tenant_name,
            Some(words(language).missing),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    match surveys.submit(None, &token, scores, &posted.comment).await {
        Ok(_) => message(language, StatusCode::OK, words(language).thanks),
        Err(error) => error_page(language, &error),
    }
}

fn error_page(language: Language, error: &SurveyError) -> Response {
    let w = words(language);
    let (status, text) = match error {
        // The link's language cannot be trusted (forged) or read (expired): both.
        SurveyError::Forged => return bilingual(StatusCode::BAD_REQUEST, EN.forged, ES.forged),
        SurveyError::Expired => return bilingual(StatusCode::GONE, EN.expired, ES.expired),
        SurveyError::AlreadyAnswered => (StatusCode::CONFLICT, w.already),
        SurveyError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, w.missing),
        SurveyError::OtherTenant | SurveyError::Unavailable(_) | SurveyError::Config(_) => {
            tracing::warn!(%error, "survey page failed");
            (StatusCode::SERVICE_UNAVAILABLE, w.unavailable)
        }
    };
    message(language, status, text)
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}\
fieldset{border:1px solid #767676;border-radius:.5rem;margin:1.25rem 0;padding:.75rem 1rem}\
legend{font-weight:600;padding:0 .25rem}\
.scale{display:flex;flex-wrap:wrap;gap:.25rem}\
.scale label{display:inline-flex;flex-direction:column;align-items:center;min-width:2.5rem;padding:.25rem;border:1px solid #767676;border-radius:.25rem;cursor:pointer}\
.ends{display:flex;justify-content:space-between;font-size:.9rem;color:#444}\
input:focus-visible,textarea:focus-visible,button:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}\
textarea{width:100%;box-sizing:border-box}\
button{font-size:1rem;padding:.5rem 1.25rem;border-radius:.25rem;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}\
[role=alert]{border-left:4px solid #b3261e;padding:.5rem 1rem;background:#fdecea}";

fn page(language: Language, status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        lang = language.as_str(),
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

fn message(language: Language, status: StatusCode, text: &str) -> Response {
    let w = words(language);
    page(
        language,
        status,
        w.title,
        &format!(
            "<h1>{}</h1><p role=\"status\">{}</p>",
            escape(w.title),
            escape(text)
        ),
    )
}

fn bilingual(status: StatusCode, en: &str, es: &str) -> Response {
    page(
        Language::En,
        status,
        EN.title,
        &format!(
            "<h1>{}</h1><p role=\"status\">{}</p><p lang=\"es\">{}</p>",
            escape(EN.title),
            escape(en),
            escape(es)
        ),
    )
}

/// A radio group `name` from `min` to `max`, described by `legend`.
fn scale(name: &str, legend: &str, min: u8, max: u8, low: &str, high: &str) -> String {
    let mut options = String::new();
    for value in min..=max {
        options.push_str(&format!(
            "<label for=\"{name}-{value}\"><input type=\"radio\" id=\"{name}-{value}\" name=\"{name}\" value=\"{value}\" required>{value}</label>"
        ));
    }
    format!(
        "<fieldset><legend id=\"{name}-legend\">{legend}</legend>\
<div class=\"scale\" role=\"radiogroup\" aria-labelledby=\"{name}-legend\">{options}</div>\
<div class=\"ends\" aria-hidden=\"true\"><span>{min} = {low}</span><span>{max} = {high}</span></div></fieldset>",
        legend = escape(legend),
        low = escape(low),
        high = escape(high),
    )
}

/// The survey form; it posts back to the page's own address, so the page
/// works behind a proxy that serves it under a path of its own.
fn form(
    language: Language,
    tenant_name: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let w = words(language);
    let alert = problem
        .map(|p| format!("<p role=\"alert\">{}</p>", escape(p)))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p>{intro} {tenant}.</p>{alert}\
<form method=\"post\">{recommend}{hire}{ease}\
<p><label for=\"comment\">{comment}</label><br><span id=\"comment-hint\">{hint}</span><br>\
<textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"{MAX_COMMENT_CHARS}\" aria-describedby=\"comment-hint\"></textarea></p>\
<p><button type=\"submit\">{submit}</button></p></form>",
        title = escape(w.title),
        intro = escape(w.intro),
        tenant = escape(tenant_name),
        recommend = scale("recommend", w.recommend, 0, 10, w.unlikely, w.likely),
        hire = scale("hire_agent", w.hire_agent, 0, 10, w.unlikely, w.likely),
        ease = scale("ease", w.ease, 1, 5, w.ease_low, w.ease_high),
        comment = escape(w.comment),
        hint = escape(w.comment_hint),
        submit = escape(w.submit),
    );
    page(language, status, w.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_scale_option_has_a_label_inside_a_fieldset_with_a_legend() {
        let html = scale("ease", "Ease?", 1, 5, "hard", "easy");
        assert!(html.starts_with("<fieldset><legend"));
        for value in 1..=5 {
            assert!(html.contains(&format!(
                "<label for=\"ease-{value}\"><input type=\"radio\" id=\"ease-{value}\""
            )));
        }
        assert!(!html.contains("ease-6"));
    }
}
