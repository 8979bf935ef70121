//! Each validation rule, table-driven: the field, line and message it reports.

use super::super::fixture::{DEMO, HEX_A, base, edited};
use crate::{Language, TenantConfig};

#[test]
fn demo_tenant_parses_and_validates() {
    let config = TenantConfig::from_yaml(DEMO).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.id, "demo-health");
    assert_eq!(config.queues.len(), 3);
    assert!(config.validate().is_ok());
    assert_eq!(config.routing.topics[0].topic, "claims");
    assert_eq!(
        config.hours().describe(),
        "Mon-Fri 07:00-19:00 America/Denver"
    );
}

#[test]
fn base_config_is_valid() {
    TenantConfig::from_yaml(&base()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn each_rule_names_the_field_and_line() {
    let dup_agent = format!(
        "capacity: {{ chat: 2 }}\n  - id: ana\n    key_sha256: {HEX_A}\n    languages: [en]"
    );
    let dup_key = format!(
        "api_keys: [{{ id: k, sha256: {HEX_A}, scopes: [intake] }}, {{ id: k, sha256: {HEX_A}, scopes: [intake] }}]\n\n\n"
    );
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        // from, to, field, line, message contains
        (
            "id: acme",
            "id: Acme Health",
            "id",
            1,
            "tenant id \"Acme Health\" is invalid: use 1-64 lowercase letters, digits or '-', starting with a letter",
        ),
        (
            "name: Acme Health",
            "name: \"\"",
            "name",
            2,
            "must not be empty",
        ),
        (
            "America/Denver",
            "Mars/Olympus_Mons",
            "time_zone",
            3,
            "unknown time zone \"Mars/Olympus_Mons\"",
        ),
        (
            "languages: [en, es]",
            "languages: []",
            "languages",
            4,
            "at least one language",
        ),
        (
            "languages: [en, es]",
            "languages: [en, en]",
            "languages[1]",
            4,
            "duplicate language \"en\" (first defined on line 4)",
        ),
        (
            "[mon, tue, wed, thu, fri]",
            "[]",
            "hours[0].days",
            6,
            "at least one day",
        ),
        (
            "open: \"07:00\"",
            "open: \"7am\"",
            "hours[0].open",
            7,
            "time \"7am\" is invalid: use HH:MM",
        ),
        (
            "close: \"19:00\"",
            "close: \"24:00\"",
            "hours[0].close",
            8,
            "use HH:MM",
        ),
        (
            "  es: Cerrado.",
            "  fr: Fermé.",
            "after_hours_message.fr",
            12,
            "\"fr\" is not one of the tenant's languages (en, es)",
        ),
        (
            "help@acme.example",
            "help.acme.example",
            "contact_email",
            13,
            "one '@' with text on both sides",
        ),
        ("help@acme.example", "a@b@c", "contact_email", 13, "one '@'"),
        (
            "help@acme.example",
            "\"@acme.example\"",
            "contact_email",
            13,
            "one '@'",
        ),
        (
            &format!("    sha256: {HEX_A}"),
            "    sha256: ABC",
            "api_keys[0].sha256",
            16,
            "64 lowercase hex",
        ),
        (
            &format!(
                "api_keys:\n  - {{ id: integration, scopes: [intake, supervisor],\n    sha256: {HEX_A} }}\n"
            ),
            &dup_key,
            "api_keys[1].id",
            14,
            "duplicate api key id \"k\" (first defined on line 14)",
        ),
        (
            "urgent_queue: clinical",
            "urgent_queue: nurses",
            "routing.urgent_queue",
            18,
            "queue \"nurses\" is not defined",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  heartbeat_ttl_secs: 2",
            "routing.heartbeat_ttl_secs",
            19,
            "at least 3 seconds",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  offer_timeout_secs: { voice: 0, chat: 60, email: 60 }",
            "routing.offer_timeout_secs.voice",
            19,
            "at least 1 second",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  capacity: { voice: 1, chat: 101, email: 5 }",
            "routing.capacity.chat",
            19,
            "capacity 101 is too high: use 0-100",
        ),
        (
            "  - id: general",
            "  - id: General",
            "queues[0].id",
            21,
            "queue id \"General\" is invalid",
        ),
        (
            "  - id: clinical",
            "  - id: general",
            "queues[1].id",
            27,
            "duplicate queue id \"general\" (first defined on line 21)",
        ),
        (
            "min_proficiency: 6",
            "min_proficiency: 11",
            "queues[1].skills[0].min_proficiency",
            29,
            "proficiency 11 is invalid",
        ),
        (
            "min_proficiency: 3",
            "min_proficiency: 0",
            "queues[0].skills[0].min_proficiency",
            23,
            "proficiency 0 is invalid",
        ),
        (
            "{ after_secs: 60, relax_by: 1 }",
            "{ after_secs: 60, relax_by: 1, move_to: clinical }",
            "queues[0].overflow[0]",
            25,
            "exactly one of relax_by, widen_to or move_to",
        ),
        (
            "{ after_secs: 60, relax_by: 1 }",
            "{ after_secs: 60 }",
            "queues[0].overflow[0]",
            25,
            "exactly one",
        ),
        (
            "after_secs: 120",
            "after_secs: 60",
            "queues[0].overflow[1].after_secs",
            26,
            "60 must be greater than the previous step's 60",
        ),
        (
            "widen_to: clinical",
            "widen_to: billing",
            "queues[0].overflow[1].widen_to",
            26,
            "queue \"billing\" is not defined",
        ),
        (
            "      - { skill: clinical, min_proficiency: 6 }",
            "      - { skill: clinical, min_proficiency: 6 }\n    open_24_7: true\n    hours: [{ days: [sat], open: \"09:00\", close: \"13:00\" }]",
            "queues[1].hours",
            31,
            "a queue that is open_24_7 has no hours",
        ),
        (
            "      - { skill: clinical, min_proficiency: 6 }",
            "      - { skill: clinical, min_proficiency: 6 }\n    hours: [{ days: [sat], open: \"9am\", close: \"13:00\" }]",
            "queues[1].hours[0].open",
            30,
            "9am",
        ),
        (
            "widen_to: clinical",
            "move_to: general",
            "queues[0].overflow[1].move_to",
            26,
            "cannot overflow to itself",
        ),
        (
            "  - id: ana",
            "  - id: ana.b",
            "agents[0].id",
            31,
            "agent id \"ana.b\" is invalid",
        ),
        (
            "capacity: { chat: 2 }",
            &dup_agent,
            "agents[1].id",
            36,
            "duplicate agent id \"ana\" (first defined on line 31)",
        ),
        (
            &format!("    key_sha256: {HEX_A}"),
            "    key_sha256: 1234",
            "agents[0].key_sha256",
            32,
            "64 lowercase hex",
        ),
        (
            "clinical: 7 }",
            "clinical: 0 }",
            "agents[0].skills.clinical",
            33,
            "proficiency 0 is invalid",
        ),
        (
            "languages: [en, es]",
            "languages: [en]",
            "agents[0].languages[1]",
            34,
            "\"es\" is not one of the tenant's languages (en)",
        ),
        (
            "capacity: { chat: 2 }",
            "capacity: { chat: 200 }",
            "agents[0].capacity.chat",
            35,
            "capacity 200 is too high",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  topics: [{ topic: billing, queue: nope }]",
            "routing.topics[0].queue",
            19,
            "queue \"nope\" is not defined under queues (known queues: general, clinical)",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  topics: [{ topic: Billing, queue: general }]",
            "routing.topics[0].topic",
            19,
            "topic \"Billing\" is invalid: use 1-64 lowercase letters, digits or '_'",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  topics: [{ topic: dental, queue: general }]",
            "routing.topics[0].keywords",
            19,
            "\"dental\" is not a built-in topic (claims, billing, password, provider_search, appointment, coverage, pcp_change, complaint): list its keywords",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  topics: [{ topic: claims, queue: general, keywords: [\"e-o-b\"] }]",
            "routing.topics[0].keywords[0]",
            19,
            "\"e-o-b\" is not a valid keyword",
        ),
        (
            "  heartbeat_ttl_secs: 15",
            "  topics: [{ topic: claims, queue: general }, { topic: claims, queue: clinical }]",
            "routing.topics[1].topic",
            19,
            "duplicate topic \"claims\"",
        ),
    ];
    for (from, to, field, line, message) in cases {
        let err =
            TenantConfig::from_yaml(&edited(from, to)).expect_err(&format!("{from:?} -> {to:?}"));
        let found = err.problems.iter().find(|p| p.field == *field);
        let Some(problem) = found else {
            panic!("no problem for {field}; got:\n{err}")
        };
        assert_eq!(problem.line, Some(*line), "{field}: {err}");
        assert!(
            problem.message.contains(message),
            "{field}: {:?} lacks {message:?}",
            problem.message
        );
    }
}

#[test]
fn problems_display_with_line_field_and_message() {
    let err = TenantConfig::from_yaml(&edited("  - id: clinical", "  - id: general")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "line 27: queues[1].id: duplicate queue id \"general\" (first defined on line 21)"
        ),
        "{text}"
    );
    assert!(
        text.lines().count() >= 2,
        "every problem is reported:\n{text}"
    );
}

#[test]
fn at_least_one_queue_is_required() {
    let text = "id: a\nname: A\ntime_zone: UTC\nlanguages: [en]\ncontact_email: a@b\nqueues: []\n";
    let err = TenantConfig::from_yaml(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 6: queues: at least one queue is required"
    );
}

#[test]
fn validate_rechecks_without_lines() {
    let mut config = TenantConfig::from_yaml(&base()).unwrap();
    config.queues[1].id = "general".into();
    let err = config.validate().unwrap_err();
    let p = err
        .problems
        .iter()
        .find(|p| p.field == "queues[1].id")
        .unwrap();
    assert_eq!(p.line, None);
    assert_eq!(
        p.message,
        "duplicate queue id \"general\" (first defined at queues[0].id)"
    );
}

/// The base config with `count` more agents like its first.
fn with_agents(count: usize) -> TenantConfig {
    let mut config = TenantConfig::from_yaml(&base()).unwrap();
    let template = config.agents[0].clone();
    config.agents.extend((0..count).map(|i| {
        let mut agent = template.clone();
        agent.id = format!("agent-{i}");
        agent
    }));
    config
}

#[test]
fn stored_size_limits_name_the_size_the_limit_and_what_to_do() {
    use crate::tenant::{MAX_AGENT_JSON_BYTES, MAX_AGENTS, MAX_SETTINGS_JSON_BYTES};

    let mut config = with_agents(0);
    config.agents[0].skills = (0..2_000).map(|i| (format!("skill-{i:05}"), 5)).collect();
    config
        .after_hours_message
        .insert("en".into(), "x".repeat(MAX_SETTINGS_JSON_BYTES));
    let err = config.validate().unwrap_err();
    let found: Vec<(&str, &str)> = err
        .problems
        .iter()
        .map(|p| (p.field.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{err}");
    assert_eq!(found[0].0, "", "{err}");
    assert!(
        found[0]
            .1
            .starts_with("the tenant without its agents takes ")
            && found[0]
                .1
                .contains(&format!("more than the limit of {MAX_SETTINGS_JSON_BYTES}")),
        "{err}"
    );
    assert_eq!(found[1].0, "agents[0]", "{err}");
    assert!(
        found[1].1.starts_with("agent \"ana\" takes ")
            && found[1].1.contains(&format!(
                "more than the limit of {MAX_AGENT_JSON_BYTES} for one agent: use fewer or shorter skill names"
            )),
        "{err}"
    );

    let err = with_agents(MAX_AGENTS).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "agents: {} agents are more than the {MAX_AGENTS} one tenant may have: split them between tenants",
            MAX_AGENTS + 1
        )
    );
    with_agents(MAX_AGENTS - 1)
        .validate()
        .expect("the most agents a tenant may have");
}

#[test]
fn without_agents_keeps_everything_else() {
    let config = with_agents(3);
    let settings = config.without_agents();
    assert!(settings.agents.is_empty());
    let mut back = settings.clone();
    back.agents = config.agents.clone();
    assert_eq!(back, config);
}

#[test]
fn chat_widgets_need_a_safe_unique_key_and_real_origins() {
    let text = edited(
        "holidays: [2026-12-25]",
        "chat: { widgets: [{ key: short, allowed_origins: [\"https://ok.example\", \"ok.example/x\"] }, \
         { key: widget-key-1, allowed_origins: [] }, { key: widget-key-1, allowed_origins: [\"*\"] }], \
         queue: nurses, retention_days: 0 }",
    );
    let err = TenantConfig::from_yaml(&text).unwrap_err();
    let found: Vec<(&str, &str)> = err
        .problems
        .iter()
        .map(|p| (p.field.as_str(), p.message.as_str()))
        .collect();
    let expect = [
        (
            "chat.widgets[0].key",
            "widget key \"short\" is invalid: use 8-128",
        ),
        (
            "chat.widgets[0].allowed_origins[1]",
            "\"ok.example/x\" is not an origin",
        ),
        ("chat.widgets[1].allowed_origins", "list 1-32 origins"),
        (
            "chat.widgets[2].key",
            "duplicate widget key \"widget-key-1\"",
        ),
        ("chat.queue", "queue \"nurses\" is not defined under queues"),
        ("chat.retention_days", "0 days: use 1-365"),
    ];
    for (field, message) in expect {
        assert!(
            found
                .iter()
                .any(|(f, m)| *f == field && m.starts_with(message)),
            "no {field}: {message} in {err}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{err}");
}

#[test]
fn chat_widget_allows_only_its_origins() {
    let text = edited(
        "holidays: [2026-12-25]",
        "chat: { widgets: [{ key: widget-key-1, allowed_origins: [\"https://www.acme.example\", \"http://localhost:8080\"] }] }",
    );
    let config = TenantConfig::from_yaml(&text).unwrap_or_else(|e| panic!("{e}"));
    let widget = config.chat_widget("widget-key-1").unwrap();
    assert!(widget.allows_origin(Some("https://www.acme.example")));
    assert!(widget.allows_origin(Some("HTTPS://WWW.ACME.EXAMPLE")));
    assert!(widget.allows_origin(Some("http://localhost:8080")));
    assert!(!widget.allows_origin(Some("https://evil.example")));
    assert!(!widget.allows_origin(Some("https://www.acme.example.evil.example")));
    assert!(
        !widget.allows_origin(None),
        "no Origin: not a browser page of the tenant"
    );
    assert!(config.chat_widget("nope").is_none());
    assert_eq!(config.chat.retention_days, 30);
    assert_eq!(
        config.chat_queue(),
        Some("general"),
        "the first queue by default"
    );
}

#[test]
fn email_retention_of_zero_days_is_allowed_and_past_a_year_is_refused() {
    let with_retention = |days: u32| format!("{}email:\n  retention_days: {days}\n", base());
    let none = TenantConfig::from_yaml(&with_retention(0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.email.retention_days, 0);
    TenantConfig::from_yaml(&with_retention(365)).unwrap_or_else(|e| panic!("{e}"));
    let err = TenantConfig::from_yaml(&with_retention(366))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 37: email.retention_days: 366 days: use 0-365"),
        "{err}"
    );
}

/// `base()` with `templates` (YAML under `email.templates`, indented 4) appended; its first line is line 38.
fn with_templates(templates: &str) -> String {
    format!("{}email:\n  templates:\n{templates}", base())
}

#[test]
fn tenant_templates_that_compile_are_kept_per_template_and_language() {
    let config = TenantConfig::from_yaml(&with_templates(
        "    receipt:\n      es:\n        subject: \"Recibido, {{ tenant_name }}\"\n        text: |\n          Hola.\n          {% if portal_url %}{{ portal_url }}{% endif %}\n",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let receipt = config.email.template("receipt", Language::Es).unwrap();
    assert_eq!(
        receipt.subject.as_deref(),
        Some("Recibido, {{ tenant_name }}")
    );
    assert_eq!(receipt.html, None, "unset parts keep the shipped ones");
    assert_eq!(config.email.template("receipt", Language::En), None);
}

#[test]
fn tenant_templates_that_cannot_be_used_name_the_tenant_template_and_line() {
    let cases = [
        (
            "    receipt:\n      es:\n        subject: Recibido\n        text: |\n          Hola {{ tenant_name }},\n          {% if portal_url %}portal\n",
            "line 41: email.templates.receipt.es.text: tenant acme's receipt template (es text) \
             does not compile at line 2 of the template: ",
        ),
        (
            "    newsletter:\n      en:\n        subject: News\n",
            "line 38: email.templates.newsletter: unknown template \"newsletter\": \
             use one of receipt, after_hours, urgent_guidance, agent_reply, survey, outreach",
        ),
    ];
    for (templates, expected) in cases {
        let err = TenantConfig::from_yaml(&with_templates(templates))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn surveys_default_to_off_with_a_90_day_window_and_an_hour_delay() {
    let config = TenantConfig::from_yaml(&base()).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.surveys.channels.is_empty());
    assert_eq!(config.surveys.window_days, 90);
    assert_eq!(config.surveys.delay_secs, 3600);
    assert!(
        config
            .surveys
            .excluded_dispositions
            .contains(&"transferred_out".to_owned())
    );
    let zero = format!(
        "{}surveys:\n  channels: [email, chat]\n  delay_secs: 0\n",
        base()
    );
    let config = TenantConfig::from_yaml(&zero).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.surveys.delay_secs, 0);
    assert_eq!(config.surveys.window_days, 90, "unset fields keep defaults");
}

#[test]
fn survey_settings_out_of_range_are_refused_naming_the_field() {
    let cases = [
        ("window_days: 0", "surveys.window_days: 0 days: use 1-1100"),
        (
            "delay_secs: 999999999",
            "surveys.delay_secs: 999999999 seconds",
        ),
        (
            "link_valid_days: 91",
            "surveys.link_valid_days: 91 days: use 1-90",
        ),
        ("retention_days: 0", "surveys.retention_days: 0 days"),
        (
            "channels: [email, email]",
            "surveys.channels[1]: duplicate channel",
        ),
        (
            "excluded_dispositions: [\" \"]",
            "surveys.excluded_dispositions[0]",
        ),
    ];
    for (line, want) in cases {
        let yaml = format!("{}surveys:\n  {line}\n", base());
        let err = TenantConfig::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains(want), "{line}: {err}");
    }
}

#[test]
fn campaign_mistakes_are_reported_naming_the_campaign_field() {
    let edit = |from: &str, to: &str| {
        assert!(DEMO.contains(from), "{from}");
        let yaml = DEMO.replacen(from, to, 1);
        TenantConfig::from_yaml(&yaml).unwrap_err().to_string()
    };
    let cases = [
        (
            "      queue: general\n      pacing: { max_in_progress: 2, max_per_hour: 60",
            "      queue: nurses\n      pacing: { max_in_progress: 2, max_per_hour: 60",
            "outreach.campaigns[0].queue",
            "\"nurses\" is not one of the tenant's queues",
        ),
        (
            "max_in_progress: 2, max_per_hour: 60, agent_share_percent: 50",
            "max_in_progress: 2, max_per_hour: 60, agent_share_percent: 150",
            "outreach.campaigns[0].pacing.agent_share_percent",
            "150: use 1-100",
        ),
        (
            "retry: { attempts: 3,",
            "retry: { attempts: 0,",
            "outreach.campaigns[0].retry.attempts",
            "use 1-10",
        ),
        (
            "    - code: callbacks",
            "    - code: checkup-2026",
            "outreach.campaigns[2].code",
            "duplicate campaign code",
        ),
        (
            "      channel: voice\n      queue: general\n      callback: true",
            "      channel: email\n      queue: general\n      callback: true",
            "outreach.campaigns[2].template",
            "an email campaign needs its template",
        ),
        (
            "  hours:\n    - days: [mon, tue, wed, thu, fri]\n      open: \"09:00\"",
            "  hours: []\n  old_hours:\n    - days: [mon, tue, wed, thu, fri]\n      open: \"09:00\"",
            "outreach",
            "old_hours",
        ),
    ];
    for (from, to, field, message) in cases {
        let error = edit(from, to);
        assert!(error.contains(field), "{field}: {error}");
        assert!(error.contains(message), "{message}: {error}");
    }
    let mut config = TenantConfig::from_yaml(DEMO).unwrap();
    config.outreach.hours.clear();
    let error = config.validate().unwrap_err().to_string();
    assert!(
        error.contains("outreach.hours") && error.contains("set the hours campaigns may contact"),
        "{error}"
    );
}

#[test]
fn quality_rubric_parses_with_labels_in_both_languages() {
    let yaml = format!(
        "{}quality:\n  retention_days: 30\n  rubric:\n    - id: accuracy\n      label: {{ en: Accuracy, es: Exactitud }}\n",
        base()
    );
    let config = TenantConfig::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.quality.retention_days, 30);
    assert_eq!(
        config
            .quality
            .criterion("accuracy")
            .map(|c| c.label.es.as_str()),
        Some("Exactitud")
    );
    let default = TenantConfig::from_yaml(&base()).unwrap_or_else(|e| panic!("{e}"));
    assert!(default.quality.rubric.is_empty());
}

#[test]
fn quality_rubric_problems_are_refused_naming_the_field() {
    let criterion = |id: &str, en: &str, es: &str| {
        format!("    - id: {id}\n      label: {{ en: \"{en}\", es: \"{es}\" }}\n")
    };
    let cases = [
        (
            criterion("Accuracy!", "Accuracy", "Exactitud"),
            "quality.rubric[0].id: criterion id \"Accuracy!\" is invalid",
        ),
        (
            criterion("tone", "Tone", "Tono") + &criterion("tone", "Tone", "Tono"),
            "quality.rubric[1].id: duplicate criterion id \"tone\"",
        ),
        (
            criterion("tone", "Tone", " "),
            "quality.rubric[0].label.es: a label must not be empty",
        ),
    ];
    for (rubric, want) in cases {
        let yaml = format!("{}quality:\n  rubric:\n{rubric}", base());
        let err = TenantConfig::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains(want), "{rubric}: {err}");
    }
    let missing_es = format!(
        "{}quality:\n  rubric:\n    - id: tone\n      label: {{ en: Tone }}\n",
        base()
    );
    let err = TenantConfig::from_yaml(&missing_es)
        .unwrap_err()
        .to_string();
    assert!(err.contains("es"), "{err}");
    let retention = format!("{}quality:\n  retention_days: 0\n", base());
    let err = TenantConfig::from_yaml(&retention).unwrap_err().to_string();
    assert!(err.contains("quality.retention_days: 0 days"), "{err}");
}
