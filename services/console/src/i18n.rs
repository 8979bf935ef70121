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

fn escape_html(text: &str) -> String {
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
        let per_request = ["{{error_hidden}}", "{{strings_json}}", "{{tenant}}"];
        for template in [crate::web::LOGIN_HTML, crate::web::FLOOR_HTML] {
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
