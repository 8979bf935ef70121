//! The words of every email: one template per kind and language (EN and ES
//! ship as defaults), each giving a subject and a plain-text body; the HTML
//! alternative is the same text in one shared, escaped layout, so the two
//! parts never say different things. A tenant may replace the subject, text
//! or HTML of any of them per language (`email.templates`, compiled when its
//! configuration is applied); what it does not replace stays the default.

use std::collections::BTreeMap;

use careline_domain::Language;
use careline_domain::tenant::TemplateOverride;
use minijinja::Environment;

use crate::error::Permanent;

/// The kinds of email, as named in `NotificationRequested.template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// "We received your message."
    Receipt,
    /// Received while closed: hours, portal, contact address.
    AfterHours,
    /// The message may describe an emergency: call 911, or 988.
    UrgentGuidance,
    /// An agent's answer (`body`).
    AgentReply,
    /// Post-contact survey (`survey_url` variable).
    Survey,
    /// An outreach campaign's message (`campaign_name` variable); tenants
    /// write their own words for it under `email.templates.outreach`.
    Outreach,
}

impl TemplateKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [TemplateKind; 6] = [
        TemplateKind::Receipt,
        TemplateKind::AfterHours,
        TemplateKind::UrgentGuidance,
        TemplateKind::AgentReply,
        TemplateKind::Survey,
        TemplateKind::Outreach,
    ];

    /// The name used in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Receipt => "receipt",
            TemplateKind::AfterHours => "after_hours",
            TemplateKind::UrgentGuidance => "urgent_guidance",
            TemplateKind::AgentReply => "agent_reply",
            TemplateKind::Survey => "survey",
            TemplateKind::Outreach => "outreach",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<TemplateKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Sent by a machine rather than a person (RFC 3834 `Auto-Submitted`).
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            TemplateKind::Receipt | TemplateKind::AfterHours | TemplateKind::UrgentGuidance => {
                Some("auto-replied")
            }
            TemplateKind::Survey | TemplateKind::Outreach => Some("auto-generated"),
            TemplateKind::AgentReply => None,
        }
    }
}

/// Name of the shared HTML layout (the `.html` suffix turns on HTML escaping).
const LAYOUT: &str = "layout.html";

/// Subject and both bodies of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

macro_rules! default_templates {
    ($($lang:literal / $kind:literal),* $(,)?) => {
        [$((concat!($lang, "/", $kind, ".txt"), include_str!(concat!("templates/", $lang, "/", $kind, ".txt")))),*]
    };
}

impl Templates {
    /// The shipped EN and ES templates.
    pub fn defaults() -> Templates {
        let mut env = Environment::new();
        let sources = default_templates!(
            "en" / "receipt",
            "en" / "after_hours",
            "en" / "urgent_guidance",
            "en" / "agent_reply",
            "en" / "survey",
            "en" / "outreach",
            "es" / "receipt",
            "es" / "after_hours",
            "es" / "urgent_guidance",
            "es" / "agent_reply",
            "es" / "survey",
            "es" / "outreach",
        );
        for (name, source) in sources {
            env.add_template(name, source)
                .expect("the shipped templates compile (tested)");
        }
        env.add_template(LAYOUT, include_str!("templates/layout.html"))
            .expect("the shipped layout compiles (tested)");
        Templates { env }
    }

    /// Renders `kind` in `language` with `vars`, with the parts `custom`
    /// (the tenant's version) sets in place of the shipped ones; a non-empty
    /// `subject` replaces the template's.
    pub fn render(
        &self,
        kind: TemplateKind,
        language: Language,
        vars: &BTreeMap<String, String>,
        subject: &str,
        custom: Option<&TemplateOverride>,
    ) -> Result<Rendered, Permanent> {
        let custom = custom.cloned().unwrap_or_default();
        let name = format!("{}/{}.txt", language.as_str(), kind.as_str());
        let template = self.env.get_template(&name).map_err(failed)?;
        let mut captured = template.render_captured(vars).map_err(failed)?;
        let (template_subject, text) = captured
            .with_state_mut(|state| {
                Ok::<_, minijinja::Error>((
                    match &custom.subject {
                        Some(source) => self.render_custom("subject.txt", source, vars)?,
                        None => state.render_block("subject")?,
                    },
                    match &custom.text {
                        Some(source) => self.render_custom("text.txt", source, vars)?,
                        None => state.render_block("body")?,
                    },
                ))
            })
            .map_err(failed)?;
        let subject = if subject.trim().is_empty() {
            template_subject
        } else {
            subject.to_owned()
        };
        // A subject is one header line: folding or injected headers are not ours to send.
        let subject = subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned();
        let text = text.trim().to_owned();
        let paragraphs: Vec<Vec<&str>> = text
            .split("\n\n")
            .map(|paragraph| paragraph.lines().collect())
            .collect();
        let html = match &custom.html {
            Some(source) => {
                let mut vars = vars.clone();
                vars.insert("subject".to_owned(), subject.clone());
                self.render_custom("custom.html", source, &vars)
            }
            None => self.env.get_template(LAYOUT).and_then(|layout| {
                layout.render(minijinja::context! {
                    language => language.as_str(),
                    subject => &subject,
                    paragraphs => paragraphs,
                })
            }),
        }
        .map_err(failed)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Renders a tenant's template; `name`'s suffix decides escaping (`.html` escapes).
    fn render_custom(
        &self,
        name: &str,
        source: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<String, minijinja::Error> {
        self.env.template_from_named_str(name, source)?.render(vars)
    }
}

fn failed(error: minijinja::Error) -> Permanent {
    Permanent::Template(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_kind_renders_in_english_and_spanish() {
        let templates = Templates::defaults();
        let vars = vars(&[("tenant_name", "Demo Health Plan"), ("body", "Hi")]);
        for kind in TemplateKind::ALL {
            for language in [Language::En, Language::Es] {
                let rendered = templates.render(kind, language, &vars, "", None).unwrap();
                assert!(!rendered.subject.is_empty(), "{kind:?} {language:?}");
                assert!(
                    rendered.text.contains("Demo Health Plan"),
                    "{kind:?} {language:?}: {}",
                    rendered.text
                );
                assert!(rendered.html.contains("<p>"), "{kind:?} {language:?}");
            }
        }
    }

    #[test]
    fn urgent_guidance_names_911_and_988_in_both_languages() {
        let templates = Templates::defaults();
        let en = templates
            .render(
                TemplateKind::UrgentGuidance,
                Language::En,
                &vars(&[]),
                "",
                None,
            )
            .unwrap();
        let es = templates
            .render(
                TemplateKind::UrgentGuidance,
                Language::Es,
                &vars(&[]),
                "",
                None,
            )
            .unwrap();
        for text in [&en.text, &es.text] {
            assert!(text.contains("911") && text.contains("988"), "{text}");
        }
        assert!(es.text.contains("llame al 911"), "{}", es.text);
    }

    #[test]
    fn html_part_escapes_what_the_agent_wrote() {
        let templates = Templates::defaults();
        let vars = vars(&[("body", "<script>alert(1)</script> & more\nline two")]);
        let rendered = templates
            .render(
                TemplateKind::AgentReply,
                Language::En,
                &vars,
                "Re: claim",
                None,
            )
            .unwrap();
        assert!(
            rendered
                .text
                .starts_with("<script>alert(1)</script> & more")
        );
        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(
            rendered.html.contains("&lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("more<br>"), "{}", rendered.html);
        assert_eq!(rendered.subject, "Re: claim");
    }

    #[test]
    fn a_subject_cannot_inject_header_lines() {
        let templates = Templates::defaults();
        let rendered = templates
            .render(
                TemplateKind::AgentReply,
                Language::En,
                &vars(&[]),
                "Re: hi\r\nBcc: victim@example.com",
                None,
            )
            .unwrap();
        assert_eq!(rendered.subject, "Re: hi  Bcc: victim@example.com");
    }

    #[test]
    fn template_names_round_trip_and_are_the_ones_tenants_may_override() {
        for kind in TemplateKind::ALL {
            assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TemplateKind::parse("newsletter"), None);
        assert_eq!(
            TemplateKind::ALL.map(TemplateKind::as_str),
            careline_domain::tenant::EMAIL_TEMPLATES
        );
    }

    #[test]
    fn a_tenants_parts_replace_the_shipped_ones_and_the_rest_stay() {
        let templates = Templates::defaults();
        let vars = vars(&[("tenant_name", "Acme <Plan>"), ("interaction_id", "ix-1")]);
        let text_only = TemplateOverride {
            text: Some("Hi from {{ tenant_name }}, ref {{ interaction_id }}.".into()),
            ..Default::default()
        };
        let rendered = templates
            .render(
                TemplateKind::Receipt,
                Language::En,
                &vars,
                "",
                Some(&text_only),
            )
            .unwrap();
        assert_eq!(rendered.subject, "We received your message");
        assert_eq!(rendered.text, "Hi from Acme <Plan>, ref ix-1.");
        assert!(
            rendered
                .html
                .contains("<p>Hi from Acme &lt;Plan&gt;, ref ix-1.</p>"),
            "without its own HTML, the text in the shipped layout: {}",
            rendered.html
        );

        let html = TemplateOverride {
            subject: Some("Got it, {{ tenant_name }}".into()),
            html: Some("<h1>{{ subject }}</h1><b>{{ tenant_name }}</b>".into()),
            ..Default::default()
        };
        let rendered = templates
            .render(TemplateKind::Receipt, Language::En, &vars, "", Some(&html))
            .unwrap();
        assert_eq!(rendered.subject, "Got it, Acme <Plan>");
        assert_eq!(
            rendered.html,
            "<h1>Got it, Acme &lt;Plan&gt;</h1><b>Acme &lt;Plan&gt;</b>"
        );
        assert!(
            rendered
                .text
                .contains("Thank you for writing to Acme <Plan>")
        );
    }
}
