//! The floor view's words in English and Spanish: one table, used to fill
//! the pages on the server and handed to the page script for the parts it
//! draws (states, chart summaries, connection status).

use crate::session::Lang;

/// (key, English, Spanish).
const STRINGS: &[(&str, &str, &str)] = &[
    ("title", "Careline floor view", "Careline: vista de piso"),
    ("skip", "Skip to content", "Saltar al contenido"),
    (
        "login_heading",
        "Supervisor sign-in",
        "Acceso de supervisión",
    ),
    (
        "login_key_label",
        "Tenant API key",
        "Clave de API de la organización",
    ),
    (
        "login_key_hint",
        "The key is sent once; the page then keeps a session for this browser.",
        "La clave se envía una vez; después la página mantiene una sesión en este navegador.",
    ),
    ("login_submit", "Sign in", "Entrar"),
    (
        "login_failed",
        "That key does not open the floor view. Check the key and try again.",
        "Esa clave no abre la vista de piso. Revise la clave e inténtelo de nuevo.",
    ),
    ("other_lang", "Español", "English"),
    ("other_lang_tag", "es", "en"),
    ("logout", "Sign out", "Salir"),
    ("queues", "Queues", "Colas"),
    ("agents", "Agents", "Agentes"),
    ("today", "Today", "Hoy"),
    ("trends", "Last hours", "Últimas horas"),
    ("col_queue", "Queue", "Cola"),
    ("col_waiting", "Waiting", "En espera"),
    ("col_urgent", "Urgent waiting", "Urgentes en espera"),
    (
        "col_by_priority",
        "Urgent / high / normal / low",
        "Urgente / alta / normal / baja",
    ),
    (
        "col_oldest",
        "Oldest wait (target)",
        "Espera más larga (objetivo)",
    ),
    ("col_available", "Available", "Disponibles"),
    ("col_busy", "Busy", "Ocupados"),
    ("col_away", "Away", "Ausentes"),
    (
        "col_sl",
        "Service level (this hour)",
        "Nivel de servicio (esta hora)",
    ),
    ("col_agent", "Agent", "Agente"),
    ("col_state", "State", "Estado"),
    ("col_reason", "Reason", "Motivo"),
    (
        "col_load",
        "Load (voice / chat / email)",
        "Carga (voz / chat / correo)",
    ),
    ("col_time_in_state", "Time in state", "Tiempo en el estado"),
    ("kpi_answered", "Answered", "Atendidos"),
    ("kpi_abandoned", "Abandoned", "Abandonados"),
    ("kpi_sl", "Service level", "Nivel de servicio"),
    (
        "kpi_asa",
        "Average speed of answer",
        "Velocidad media de respuesta",
    ),
    ("kpi_aht", "Average handle time", "Tiempo medio de atención"),
    ("kpi_abandon", "Abandonment rate", "Tasa de abandono"),
    (
        "kpi_fcr",
        "First-contact resolution",
        "Resolución en el primer contacto",
    ),
    ("kpi_transfer", "Transfer rate", "Tasa de transferencia"),
    ("kpi_occupancy", "Occupancy", "Ocupación"),
    ("chart_waiting", "Contacts waiting", "Contactos en espera"),
    (
        "chart_sl",
        "Service level by hour",
        "Nivel de servicio por hora",
    ),
    (
        "chart_waiting_summary",
        "Now {now}; highest {max} in the last hours.",
        "Ahora {now}; máximo {max} en las últimas horas.",
    ),
    (
        "chart_sl_summary",
        "This hour {now}; lowest {min} in the last hours.",
        "Esta hora {now}; mínimo {min} en las últimas horas.",
    ),
    ("state_available", "Available", "Disponible"),
    ("state_away", "Away", "Ausente"),
    ("state_offline", "Offline", "Desconectado"),
    (
        "queues_unavailable",
        "Queue figures are unavailable: the router cannot be reached. They come back on their own.",
        "Las cifras de las colas no están disponibles: no se puede contactar con el router. Volverán solas.",
    ),
    ("no_data", "No data yet.", "Aún no hay datos."),
    ("connecting", "Connecting…", "Conectando…"),
    ("live", "Live", "En directo"),
    (
        "reconnecting",
        "Connection lost; reconnecting…",
        "Conexión perdida; reconectando…",
    ),
    (
        "session_ended",
        "Your session ended; sign in again.",
        "Su sesión terminó; vuelva a entrar.",
    ),
    ("seconds", "s", "s"),
    (
        "kpi_nps",
        "Net promoter score",
        "Índice de promotores netos",
    ),
    ("kpi_surveys", "Survey answers", "Respuestas a encuestas"),
    (
        "kpi_quality",
        "Quality score (1–5)",
        "Puntuación de calidad (1–5)",
    ),
    (
        "kpi_coaching",
        "Marked for coaching",
        "Marcados para coaching",
    ),
    (
        "quality",
        "Quality by agent (today)",
        "Calidad por agente (hoy)",
    ),
    ("col_reviews", "Reviews", "Revisiones"),
    ("col_quality", "Average (1–5)", "Media (1–5)"),
    ("col_coaching", "Coaching", "Coaching"),
    ("col_nps", "NPS", "NPS"),
    (
        "operator_title",
        "Careline operator view: all tenants",
        "Careline: vista de operación de todas las organizaciones",
    ),
    (
        "operator_key_label",
        "Platform operator token",
        "Token de operación de la plataforma",
    ),
    (
        "operator_key_hint",
        "The platform team's token, not a tenant API key. It is sent with each view and not kept.",
        "El token del equipo de plataforma, no una clave de API de una organización. Se envía con cada consulta y no se guarda.",
    ),
    (
        "operator_refused",
        "That credential does not open the operator view. Tenant API keys never do.",
        "Esa credencial no abre la vista de operación. Las claves de API de una organización nunca la abren.",
    ),
    (
        "operator_show",
        "Show the last 24 hours",
        "Mostrar las últimas 24 horas",
    ),
    (
        "operator_caption",
        "Last 24 hours per tenant: counts and rates only, no member data.",
        "Últimas 24 horas por organización: solo cifras y tasas, sin datos de miembros.",
    ),
    ("col_tenant", "Tenant", "Organización"),
    ("col_created", "Contacts", "Contactos"),
    ("col_answered", "Answered", "Atendidos"),
    ("col_abandoned", "Abandoned", "Abandonados"),
    ("col_abandon_rate", "Abandonment rate", "Tasa de abandono"),
    ("col_service_level", "Service level", "Nivel de servicio"),
    (
        "operator_truncated",
        "More tenants than one page shows; the first by id are listed.",
        "Hay más organizaciones de las que caben; se muestran las primeras por id.",
    ),
];

/// Every string in `lang`, as (key, text).
pub fn strings(lang: Lang) -> impl Iterator<Item = (&'static str, &'static str)> {
    STRINGS.iter().map(move |(key, en, es)| match lang {
        Lang::En => (*key, *en),
        Lang::Es => (*key, *es),
    })
}

/// Fills `{{key}}` in `template` with the HTML-escaped strings of `lang`,
/// and `{{lang}}` with its tag.
pub fn fill(template: &str, lang: Lang) -> String {
    let mut page = template.replace("{{lang}}", lang.tag());
    for (key, text) in strings(lang) {
        page = page.replace(&format!("{{{{{key}}}}}"), &escape_html(text));
    }
    page
}

/// The strings of `lang` as JSON, safe inside a `<script type="application/json">`.
pub fn json(lang: Lang) -> String {
    let map: std::collections::BTreeMap<_, _> = strings(lang).collect();
    serde_json::to_string(&map)
        .expect("strings serialise")
        .replace("</", "<\\/")
}

/// `text` safe inside HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_every_word_filled_in_both_languages() {
        // Filled per request, not from the table.
        let per_request = [
            "{{error_hidden}}",
            "{{strings_json}}",
            "{{tenant}}",
            "{{rows}}",
            "{{table_hidden}}",
            "{{truncated_hidden}}",
        ];
        for template in [
            crate::web::LOGIN_HTML,
            crate::web::FLOOR_HTML,
            crate::web::OPERATOR_HTML,
        ] {
            for lang in [Lang::En, Lang::Es] {
                let mut page = fill(template, lang);
                for placeholder in per_request {
                    page = page.replace(placeholder, "");
                }
                assert!(
                    !page.contains("{{"),
                    "unfilled placeholder in {lang:?}: {page}"
                );
                assert!(page.contains(&format!("lang=\"{}\"", lang.tag())));
            }
        }
        assert!(fill("{{login_submit}}", Lang::Es).contains("Entrar"));
    }
}
