//! The rules a tenant configuration must follow beyond its types: ids, names,
//! time zones, references between queues, agents and routing, limits. Every
//! problem is collected (not just the first), each naming its field and, when the
//! source YAML is known, its line.

use std::collections::HashMap;

use super::{
    EMAIL_TEMPLATES, MAX_AGENT_JSON_BYTES, MAX_AGENTS, MAX_CAPACITY, MAX_CHAT_RETENTION_DAYS,
    MAX_CHAT_WIDGETS, MAX_EMAIL_RETENTION_DAYS, MAX_HISTORY_RETENTION_DAYS,
    MAX_MEMBER_HISTORY_COUNT, MAX_MEMBER_HISTORY_DAYS, MAX_RATE_PER_SEC, MAX_SETTINGS_JSON_BYTES,
    MAX_SURVEY_DELAY_SECS, MAX_SURVEY_LINK_DAYS, MAX_SURVEY_RETENTION_DAYS, MAX_SURVEY_WINDOW_DAYS,
    MAX_TEMPLATE_BYTES, MAX_TENANT_JSON_BYTES, MAX_TOPIC_KEYWORDS, MAX_TOPIC_RULES,
    MAX_WIDGET_KEY_LEN, MAX_WIDGET_ORIGINS, MIN_HEARTBEAT_TTL_SECS, MIN_WIDGET_KEY_LEN,
    TenantConfig,
};
use super::{
    MAX_CRITERION_ID_LEN, MAX_CRITERION_LABEL_LEN, MAX_QUALITY_CRITERIA,
    MAX_QUALITY_RETENTION_DAYS, is_criterion_id,
};
use crate::campaign::{
    CampaignConfig, MAX_ATTEMPTS, MAX_CAMPAIGNS, MAX_IN_PROGRESS, MAX_PER_HOUR,
    MAX_REACHED_SUPPRESS_DAYS, MAX_RETRY_SPACING_SECS,
};
use crate::classify::{BUILTIN_TOPICS, builtin_topic_keywords, check_keyword};
use crate::error::{ConfigError, Problem};
use crate::hours;
use crate::ids::{AgentId, QueueId, TenantId};
use crate::skills::Proficiency;
use crate::tenant::OpeningHours;
use crate::yaml_lines::LineIndex;
use crate::{Channel, Language};

impl TenantConfig {
    pub(super) fn check(&self, lines: Option<&LineIndex>) -> Result<(), ConfigError> {
        let mut c = Checker {
            lines,
            problems: Vec::new(),
        };
        self.check_tenant(&mut c);
        self.check_routing(&mut c);
        self.check_queues(&mut c);
        self.check_limits(&mut c);
        self.check_member_history(&mut c);
        self.check_agents(&mut c);
        self.check_size(&mut c);
        if c.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: c.problems,
            })
        }
    }

    fn check_tenant(&self, c: &mut Checker<'_>) {
        if let Err(e) = TenantId::new(self.id.as_str()) {
            c.problem("id".into(), e.to_string());
        }
        if self.name.trim().is_empty() {
            c.problem("name".into(), "name must not be empty".into());
        }
        if let Err(e) = hours::parse_time_zone(&self.time_zone) {
            c.problem("time_zone".into(), e.to_string());
        }
        if self.languages.is_empty() {
            c.problem(
                "languages".into(),
                "at least one language is required, e.g. [en]".into(),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, lang) in self.languages.iter().enumerate() {
            let field = format!("languages[{i}]");
            if let Some(first) = seen.insert(lang.as_str(), &field) {
                c.duplicate(field, "language", lang.as_str(), &first);
            }
        }
        check_hours(c, "hours", &self.hours);
        for key in self.after_hours_message.keys() {
            if !self.languages.iter().any(|l| l.as_str() == key) {
                c.problem(
                    format!("after_hours_message.{key}"),
                    format!(
                        "{key:?} is not one of the tenant's languages ({})",
                        language_list(&self.languages)
                    ),
                );
            }
        }
        if !is_email_like(&self.contact_email) {
            c.problem(
                "contact_email".into(),
                format!(
                    "{:?} is not an email address: use one '@' with text on both sides",
                    self.contact_email
                ),
            );
        }
        self.check_email(c);
        self.check_chat(c);
        self.check_surveys(c);
        self.check_outreach(c);
        self.check_quality(c);
        let mut seen = FirstSeen::default();
        for (i, key) in self.api_keys.iter().enumerate() {
            let field = format!("api_keys[{i}].id");
            if key.id.is_empty() {
                c.problem(field.clone(), "api key id must not be empty".into());
            } else if let Some(first) = seen.insert(&key.id, &field) {
                c.duplicate(field, "api key id", &key.id, &first);
            }
            if !is_sha256_hex(&key.sha256) {
                c.problem(format!("api_keys[{i}].sha256"), SHA256_RULE.into());
            }
            if key.scopes.is_empty() {
                c.problem(format!("api_keys[{i}].scopes"), SCOPES_RULE.into());
            }
        }
    }

    fn check_email(&self, c: &mut Checker<'_>) {
        for (i, address) in self.inbound_email_addresses.iter().enumerate() {
            if !is_email_like(address) {
                c.problem(
                    format!("inbound_email_addresses[{i}]"),
                    format!(
                        "{address:?} is not an email address: use one '@' with text on both sides"
                    ),
                );
            }
        }
        if let Some(queue) = &self.email.queue
            && self.queue(queue).is_none()
        {
            c.problem(
                "email.queue".into(),
                format!("queue {queue:?} is not defined under queues"),
            );
        }
        self.check_email_templates(c);
        if self.email.retention_days > MAX_EMAIL_RETENTION_DAYS {
            c.problem(
                "email.retention_days".into(),
                format!(
                    "{} days: use 0-{MAX_EMAIL_RETENTION_DAYS} (0: removed when the interaction ends)",
                    self.email.retention_days
                ),
            );
        }
    }

    /// Each of the tenant's templates names a known template and one of its
    /// languages, and compiles (checked here so a broken one is refused when
    /// applied, not when a member should have been answered).
    fn check_email_templates(&self, c: &mut Checker<'_>) {
        let env = minijinja::Environment::new();
        for (template, languages) in &self.email.templates {
            if !EMAIL_TEMPLATES.contains(&template.as_str()) {
                c.problem(
                    format!("email.templates.{template}"),
                    format!(
                        "unknown template {template:?}: use one of {}",
                        EMAIL_TEMPLATES.join(", ")
                    ),
                );
                continue;
            }
            for (language, parts) in languages {
                let lang = language.as_str();
                if !self.languages.contains(language) {
                    c.problem(
                        format!("email.templates.{template}.{lang}"),
                        format!(
                            "{lang:?} is not one of the tenant's languages ({})",
                            language_list(&self.languages)
                        ),
                    );
                }
                for (part, source) in [
                    ("subject", &parts.subject),
                    ("text", &parts.text),
                    ("html", &parts.html),
                ] {
                    let Some(source) = source else { continue };
                    let field = format!("email.templates.{template}.{lang}.{part}");
                    if source.len() > MAX_TEMPLATE_BYTES {
                        c.problem(
                            field,
                            format!(
                                "{} bytes is too long: at most {MAX_TEMPLATE_BYTES}",
                                source.len()
                            ),
                        );
                    } else if let Err(error) = env.template_from_str(source) {
                        let at = error
                            .line()
                            .map(|line| format!(" at line {line} of the template"))
                            .unwrap_or_default();
                        let what = error
                            .detail()
                            .map_or_else(|| error.kind().to_string(), str::to_owned);
                        c.problem(
                            field,
                            format!(
                                "tenant {}'s {template} template ({lang} {part}) does not compile{at}: {what}",
                                self.id
                            ),
                        );
                    }
                }
            }
        }
    }

    fn check_chat(&self, c: &mut Checker<'_>) {
        let chat = &self.chat;
        if chat.widgets.len() > MAX_CHAT_WIDGETS {
            c.problem(
                "chat.widgets".into(),
                format!("{} widgets: at most {MAX_CHAT_WIDGETS}", chat.widgets.len()),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, widget) in chat.widgets.iter().enumerate() {
            let field = format!("chat.widgets[{i}].key");
            let key = &widget.key;
            if !(MIN_WIDGET_KEY_LEN..=MAX_WIDGET_KEY_LEN).contains(&key.len())
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                c.problem(
                    field,
                    format!(
                        "widget key {key:?} is invalid: use {MIN_WIDGET_KEY_LEN}-{MAX_WIDGET_KEY_LEN} letters, digits, '-' or '_'"
                    ),
                );
            } else if let Some(first) = seen.insert(key, &field) {
                c.duplicate(field, "widget key", key, &first);
            }
            if widget.allowed_origins.is_empty()
                || widget.allowed_origins.len() > MAX_WIDGET_ORIGINS
            {
                c.problem(
                    format!("chat.widgets[{i}].allowed_origins"),
                    format!(
                        "list 1-{MAX_WIDGET_ORIGINS} origins, e.g. [\"https://www.example.org\"]"
                    ),
                );
            }
            for (j, origin) in widget.allowed_origins.iter().enumerate() {
                if !is_origin(origin) {
                    c.problem(
                        format!("chat.widgets[{i}].allowed_origins[{j}]"),
                        format!(
                            "{origin:?} is not an origin: use scheme://host[:port] with no path, e.g. \"https://www.example.org\", or \"*\""
                        ),
                    );
                }
            }
        }
        if let Some(queue) = &chat.queue
            && self.queue(queue).is_none()
        {
            c.problem(
                "chat.queue".into(),
                format!("queue {queue:?} is not defined under queues"),
            );
        }
        if !(1..=MAX_CHAT_RETENTION_DAYS).contains(&chat.retention_days) {
            c.problem(
                "chat.retention_days".into(),
                format!(
                    "{} days: use 1-{MAX_CHAT_RETENTION_DAYS}",
                    chat.retention_days
                ),
            );
        }
    }

    fn check_surveys(&self, c: &mut Checker<'_>) {
        let s = &self.surveys;
        if s.delay_secs > MAX_SURVEY_DELAY_SECS {
            c.problem(
                "surveys.delay_secs".into(),
                format!(
                    "{} seconds: use 0-{MAX_SURVEY_DELAY_SECS} (0: at once)",
                    s.delay_secs
                ),
            );
        }
        for (field, value, max) in [
            ("window_days", s.window_days, MAX_SURVEY_WINDOW_DAYS),
            ("link_valid_days", s.link_valid_days, MAX_SURVEY_LINK_DAYS),
            (
                "retention_days",
                s.retention_days,
                MAX_SURVEY_RETENTION_DAYS,
            ),
        ] {
            if !(1..=max).contains(&value) {
                c.problem(
                    format!("surveys.{field}"),
                    format!("{value} days: use 1-{max}"),
                );
            }
        }
        let mut seen = FirstSeen::default();
        for (i, channel) in s.channels.iter().enumerate() {
            let field = format!("surveys.channels[{i}]");
            if let Some(first) = seen.insert(channel.as_str(), &field) {
                c.duplicate(field, "channel", channel.as_str(), &first);
            }
        }
        for (i, disposition) in s.excluded_dispositions.iter().enumerate() {
            if disposition.trim().is_empty() {
                c.problem(
                    format!("surveys.excluded_dispositions[{i}]"),
                    "a disposition must not be empty".into(),
                );
            }
        }
    }

    fn check_outreach(&self, c: &mut Checker<'_>) {
        let o = &self.outreach;
        check_hours(c, "outreach.hours", &o.hours);
        if !o.campaigns.is_empty() && o.hours.is_empty() {
            c.problem(
                "outreach.hours".into(),
                "set the hours campaigns may contact members, e.g. [{days: [mon, tue, wed, thu, fri], open: \"09:00\", close: \"19:00\"}]".into(),
            );
        }
        if !(1..=MAX_REACHED_SUPPRESS_DAYS).contains(&o.reached_suppress_days) {
            c.problem(
                "outreach.reached_suppress_days".into(),
                format!(
                    "{} days: use 1-{MAX_REACHED_SUPPRESS_DAYS}",
                    o.reached_suppress_days
                ),
            );
        }
        if o.campaigns.len() > MAX_CAMPAIGNS {
            c.problem(
                "outreach.campaigns".into(),
                format!("{} campaigns: at most {MAX_CAMPAIGNS}", o.campaigns.len()),
            );
        }
        let mut seen = FirstSeen::default();
        let mut callback: Option<String> = None;
        for (i, campaign) in o.campaigns.iter().enumerate() {
            let field = format!("outreach.campaigns[{i}]");
            self.check_campaign(c, &field, campaign);
            if QueueId::new(campaign.code.as_str()).is_err() {
                c.problem(
                    format!("{field}.code"),
                    format!(
                        "{:?}: use 1-64 of a-z, 0-9, '_' and '-', e.g. checkup-2026",
                        campaign.code
                    ),
                );
            } else if let Some(first) = seen.insert(&campaign.code, &format!("{field}.code")) {
                c.duplicate(
                    format!("{field}.code"),
                    "campaign code",
                    &campaign.code,
                    &first,
                );
            }
            if campaign.callback {
                if let Some(first) = &callback {
                    c.problem(
                        format!("{field}.callback"),
                        format!("only one call-back campaign per tenant ({first} is one)"),
                    );
                }
                callback = Some(field.clone());
            }
        }
    }

    fn check_quality(&self, c: &mut Checker<'_>) {
        let q = &self.quality;
        if !(1..=MAX_QUALITY_RETENTION_DAYS).contains(&q.retention_days) {
            c.problem(
                "quality.retention_days".into(),
                format!(
                    "{} days: use 1-{MAX_QUALITY_RETENTION_DAYS}",
                    q.retention_days
                ),
            );
        }
        if q.rubric.len() > MAX_QUALITY_CRITERIA {
            c.problem(
                "quality.rubric".into(),
                format!(
                    "{} criteria: use at most {MAX_QUALITY_CRITERIA}",
                    q.rubric.len()
                ),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, criterion) in q.rubric.iter().enumerate() {
            let field = format!("quality.rubric[{i}].id");
            if !is_criterion_id(&criterion.id) {
                c.problem(
                    field,
                    format!(
                        "criterion id {:?} is invalid: use 1-{MAX_CRITERION_ID_LEN} lowercase letters, digits or '_', starting with a letter",
                        criterion.id
                    ),
                );
            } else if let Some(first) = seen.insert(&criterion.id, &field) {
                c.duplicate(field, "criterion id", &criterion.id, &first);
            }
            for (lang, label) in [("en", &criterion.label.en), ("es", &criterion.label.es)] {
                let field = format!("quality.rubric[{i}].label.{lang}");
                if label.trim().is_empty() {
                    c.problem(field, "a label must not be empty".into());
                } else if label.chars().count() > MAX_CRITERION_LABEL_LEN {
                    c.problem(
                        field,
                        format!("a label has at most {MAX_CRITERION_LABEL_LEN} characters"),
                    );
                }
            }
        }
    }

    fn check_campaign(&self, c: &mut Checker<'_>, field: &str, campaign: &CampaignConfig) {
        if campaign.name.trim().is_empty() {
            c.problem(format!("{field}.name"), "give the campaign a name".into());
        }
        check_hours(c, &format!("{field}.window"), &campaign.window);
        match campaign.channel {
            Channel::Voice => match &campaign.queue {
                None => c.problem(
                    format!("{field}.queue"),
                    "a voice campaign needs the queue whose agents take its contacts".into(),
                ),
                Some(queue) if self.queue(queue).is_none() => c.problem(
                    format!("{field}.queue"),
                    format!("{queue:?} is not one of the tenant's queues"),
                ),
                Some(_) => {}
            },
            Channel::Email => match campaign.template.as_deref() {
                Some(t) if EMAIL_TEMPLATES.contains(&t) => {}
                _ => c.problem(
                    format!("{field}.template"),
                    format!(
                        "an email campaign needs its template, one of {}",
                        EMAIL_TEMPLATES.join(", ")
                    ),
                ),
            },
            Channel::Chat => c.problem(
                format!("{field}.channel"),
                "campaigns reach members by voice or email".into(),
            ),
        }
        if campaign.callback && campaign.channel != Channel::Voice {
            c.problem(
                format!("{field}.callback"),
                "the call-back campaign must be a voice campaign".into(),
            );
        }
        if let Some(language) = campaign.language
            && !self.languages.contains(&language)
        {
            c.problem(
                format!("{field}.language"),
                format!(
                    "{:?} is not a language the tenant serves ({})",
                    language.as_str(),
                    language_list(&self.languages)
                ),
            );
        }
        let p = &campaign.pacing;
        for (name, value, max) in [
            ("max_in_progress", p.max_in_progress, MAX_IN_PROGRESS),
            ("max_per_hour", p.max_per_hour, MAX_PER_HOUR),
            ("agent_share_percent", p.agent_share_percent, 100),
        ] {
            if !(1..=max).contains(&value) {
                c.problem(
                    format!("{field}.pacing.{name}"),
                    format!("{value}: use 1-{max}"),
                );
            }
        }
        let r = &campaign.retry;
        if !(1..=MAX_ATTEMPTS).contains(&r.attempts) {
            c.problem(
                format!("{field}.retry.attempts"),
                format!(
                    "{}: use 1-{MAX_ATTEMPTS} (the first attempt included)",
                    r.attempts
                ),
            );
        }
        if !(1..=MAX_RETRY_SPACING_SECS).contains(&r.spacing_secs) {
            c.problem(
                format!("{field}.retry.spacing_secs"),
                format!("{} seconds: use 1-{MAX_RETRY_SPACING_SECS}", r.spacing_secs),
            );
        }
    }

    fn check_routing(&self, c: &mut Checker<'_>) {
        let r = &self.routing;
        if let Some(urgent) = &r.urgent_queue
            && self.queue(urgent).is_none()
        {
            c.problem(
                "routing.urgent_queue".into(),
                format!("queue {urgent:?} is not defined under queues"),
            );
        }
        for channel in Channel::ALL {
            if r.offer_timeout_secs.get(channel) < 1 {
                c.problem(
                    format!("routing.offer_timeout_secs.{}", channel.as_str()),
                    "offer timeout must be at least 1 second".into(),
                );
            }
            if r.capacity.get(channel) > MAX_CAPACITY {
                c.problem(
                    format!("routing.capacity.{}", channel.as_str()),
                    format!(
                        "capacity {} is too high: use 0-{MAX_CAPACITY}",
                        r.capacity.get(channel)
                    ),
                );
            }
        }
        if r.heartbeat_ttl_secs < MIN_HEARTBEAT_TTL_SECS {
            c.problem(
                "routing.heartbeat_ttl_secs".into(),
                format!(
                    "{} is too short: use at least {MIN_HEARTBEAT_TTL_SECS} seconds",
                    r.heartbeat_ttl_secs
                ),
            );
        }
        if r.personal_fallback_secs == 0 {
            c.problem(
                "routing.personal_fallback_secs".into(),
                "a contact must wait at least 1 second for its agent before falling back to its queue"
                    .into(),
            );
        }
        if r.aging.is_some_and(|a| a.after_secs == 0) {
            c.problem(
                "routing.aging.after_secs".into(),
                "aging must wait at least 1 second".into(),
            );
        }
        self.check_topics(c);
    }

    fn check_topics(&self, c: &mut Checker<'_>) {
        let topics = &self.routing.topics;
        if topics.len() > MAX_TOPIC_RULES {
            c.problem(
                "routing.topics".into(),
                format!(
                    "{} topic rules are more than the limit of {MAX_TOPIC_RULES}",
                    topics.len()
                ),
            );
        }
        let mut seen = FirstSeen::default();
        for (i, rule) in topics.iter().enumerate() {
            let at = format!("routing.topics[{i}]");
            if !is_topic_id(&rule.topic) {
                c.problem(
                    format!("{at}.topic"),
                    format!(
                        "topic {:?} is invalid: use 1-64 lowercase letters, digits or '_', starting \
                         with a letter (built-in topics: {})",
                        rule.topic,
                        BUILTIN_TOPICS.join(", ")
                    ),
                );
            } else if let Some(first) = seen.insert(&rule.topic, &format!("{at}.topic")) {
                c.duplicate(format!("{at}.topic"), "topic", &rule.topic, &first);
            }
            if self.queue(&rule.queue).is_none() {
                c.problem(
                    format!("{at}.queue"),
                    format!(
                        "queue {:?} is not defined under queues (known queues: {})",
                        rule.queue,
                        self.queues
                            .iter()
                            .map(|q| q.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            if rule.keywords.is_empty() && builtin_topic_keywords(&rule.topic).is_empty() {
                c.problem(
                    format!("{at}.keywords"),
                    format!(
                        "{:?} is not a built-in topic ({}): list its keywords",
                        rule.topic,
                        BUILTIN_TOPICS.join(", ")
                    ),
                );
            }
            if rule.keywords.len() > MAX_TOPIC_KEYWORDS {
                c.problem(
                    format!("{at}.keywords"),
                    format!(
                        "{} keywords are more than the limit of {MAX_TOPIC_KEYWORDS}",
                        rule.keywords.len()
                    ),
                );
            }
            for (k, keyword) in rule.keywords.iter().enumerate() {
                if let Err(message) = check_keyword(keyword) {
                    c.problem(format!("{at}.keywords[{k}]"), message);
                }
            }
        }
    }

    fn check_member_history(&self, c: &mut Checker<'_>) {
        let r = &self.routing;
        if r.member_history_count > MAX_MEMBER_HISTORY_COUNT {
            c.problem(
                "routing.member_history_count".into(),
                format!(
                    "{} is too many: use 0-{MAX_MEMBER_HISTORY_COUNT}",
                    r.member_history_count
                ),
            );
        }
        if !(1..=MAX_MEMBER_HISTORY_DAYS).contains(&r.member_history_days) {
            c.problem(
                "routing.member_history_days".into(),
                format!(
                    "{} is out of range: use 1-{MAX_MEMBER_HISTORY_DAYS}",
                    r.member_history_days
                ),
            );
        }
        if !(1..=MAX_HISTORY_RETENTION_DAYS).contains(&r.history_retention_days) {
            c.problem(
                "routing.history_retention_days".into(),
                format!(
                    "{} is out of range: use 1-{MAX_HISTORY_RETENTION_DAYS} (the event log keeps \
                     longer history)",
                    r.history_retention_days
                ),
            );
        }
    }

    fn check_limits(&self, c: &mut Checker<'_>) {
        let l = &self.limits;
        for (name, value) in [
            ("creates_per_sec", l.creates_per_sec),
            ("creates_burst", l.creates_burst),
            ("calls_per_sec", l.calls_per_sec),
            ("calls_burst", l.calls_burst),
        ] {
            if !(1..=MAX_RATE_PER_SEC).contains(&value) {
                c.problem(
                    format!("limits.{name}"),
                    format!("{value} is out of range: use 1-{MAX_RATE_PER_SEC}"),
                );
            }
        }
    }

    fn check_queues(&self, c: &mut Checker<'_>) {
        if self.queues.is_empty() {
            c.problem("queues".into(), "at least one queue is required".into());
        }
        let mut seen = FirstSeen::default();
        for (i, q) in self.queues.iter().enumerate() {
            let field = format!("queues[{i}].id");
            if let Err(e) = QueueId::new(q.id.as_str()) {
                c.problem(field, e.to_string());
            } else if let Some(first) = seen.insert(&q.id, &field) {
                c.duplicate(field, "queue id", &q.id, &first);
            }
            for (j, req) in q.skills.iter().enumerate() {
                if req.skill.trim().is_empty() {
                    c.problem(
                        format!("queues[{i}].skills[{j}].skill"),
                        "skill name must not be empty".into(),
                    );
                }
                if let Err(e) = Proficiency::new(req.min_proficiency) {
                    c.problem(
                        format!("queues[{i}].skills[{j}].min_proficiency"),
                        e.to_string(),
                    );
                }
            }
            if q.max_waiting == Some(0) {
                c.problem(
                    format!("queues[{i}].max_waiting"),
                    "a cap of 0 would refuse every contact: use 1 or more, or leave it out".into(),
                );
            }
            if let Some(own) = &q.hours {
                if q.open_24_7 {
                    c.problem(
                        format!("queues[{i}].hours"),
                        "a queue that is open_24_7 has no hours; remove one of them".into(),
                    );
                }
                check_hours(c, &format!("queues[{i}].hours"), own);
            }
            let mut previous_after: Option<u32> = None;
            for (k, step) in q.overflow.iter().enumerate() {
                let at = format!("queues[{i}].overflow[{k}]");
                let actions = [
                    step.relax_by.is_some(),
                    step.widen_to.is_some(),
                    step.move_to.is_some(),
                ];
                if actions.iter().filter(|&&set| set).count() != 1 {
                    c.problem(
                        at.clone(),
                        "set exactly one of relax_by, widen_to or move_to".into(),
                    );
                }
                if let Some(prev) = previous_after
                    && step.after_secs <= prev
                {
                    c.problem(
                        format!("{at}.after_secs"),
                        format!(
                            "{} must be greater than the previous step's {prev}",
                            step.after_secs
                        ),
                    );
                }
                previous_after = Some(step.after_secs);
                if step
                    .relax_by
                    .is_some_and(|by| !(1..Proficiency::MAX.get()).contains(&by))
                {
                    c.problem(
                        format!("{at}.relax_by"),
                        "relax_by must be from 1 to 9".into(),
                    );
                }
                for (name, target) in [("widen_to", &step.widen_to), ("move_to", &step.move_to)] {
                    let Some(target) = target else { continue };
                    if target == &q.id {
                        c.problem(
                            format!("{at}.{name}"),
                            format!("queue {target:?} cannot overflow to itself"),
                        );
                    } else if self.queue(target).is_none() {
                        c.problem(
                            format!("{at}.{name}"),
                            format!("queue {target:?} is not defined under queues"),
                        );
                    }
                }
            }
        }
    }

    fn check_agents(&self, c: &mut Checker<'_>) {
        let mut seen = FirstSeen::default();
        for (i, a) in self.agents.iter().enumerate() {
            let field = format!("agents[{i}].id");
            if let Err(e) = AgentId::new(a.id.as_str()) {
                c.problem(field, e.to_string());
            } else if let Some(first) = seen.insert(&a.id, &field) {
                c.duplicate(field, "agent id", &a.id, &first);
            }
            if !is_sha256_hex(&a.key_sha256) {
                c.problem(format!("agents[{i}].key_sha256"), SHA256_RULE.into());
            }
            for (skill, &level) in &a.skills {
                if let Err(e) = Proficiency::new(level) {
                    c.problem(format!("agents[{i}].skills.{skill}"), e.to_string());
                }
            }
            if a.languages.is_empty() {
                c.problem(
                    format!("agents[{i}].languages"),
                    "at least one language is required".into(),
                );
            }
            for (j, lang) in a.languages.iter().enumerate() {
                if !self.languages.contains(lang) {
                    c.problem(
                        format!("agents[{i}].languages[{j}]"),
                        format!(
                            "{:?} is not one of the tenant's languages ({})",
                            lang.as_str(),
                            language_list(&self.languages)
                        ),
                    );
                }
            }
            for channel in Channel::ALL {
                let value = match channel {
                    Channel::Voice => a.capacity.voice,
                    Channel::Chat => a.capacity.chat,
                    Channel::Email => a.capacity.email,
                };
                if let Some(value) = value.filter(|&v| v > MAX_CAPACITY) {
                    c.problem(
                        format!("agents[{i}].capacity.{}", channel.as_str()),
                        format!("capacity {value} is too high: use 0-{MAX_CAPACITY}"),
                    );
                }
            }
        }
    }
}

impl TenantConfig {
    /// The size limits of the stored form, checked here so that `careline config
    /// check` refuses exactly what the configuration bucket could not hold.
    fn check_size(&self, c: &mut Checker<'_>) {
        if self.agents.len() > MAX_AGENTS {
            c.problem(
                "agents".into(),
                format!(
                    "{} agents are more than the {MAX_AGENTS} one tenant may have: split them between tenants",
                    self.agents.len()
                ),
            );
        }
        let settings = json_len(&self.without_agents());
        if settings > MAX_SETTINGS_JSON_BYTES {
            c.problem(
                String::new(),
                format!(
                    "the tenant without its agents takes {settings} bytes stored, more than the limit of \
                     {MAX_SETTINGS_JSON_BYTES}: use fewer or shorter queues, hours, messages or API keys"
                ),
            );
        }
        let mut total = settings;
        for (i, agent) in self.agents.iter().enumerate() {
            let len = json_len(agent);
            total += len + 1;
            if len > MAX_AGENT_JSON_BYTES {
                c.problem(
                    format!("agents[{i}]"),
                    format!(
                        "agent {:?} takes {len} bytes stored, more than the limit of \
                         {MAX_AGENT_JSON_BYTES} for one agent: use fewer or shorter skill names",
                        agent.id
                    ),
                );
            }
        }
        if total > MAX_TENANT_JSON_BYTES {
            c.problem(
                "agents".into(),
                format!(
                    "the tenant takes {total} bytes stored, more than the limit of \
                     {MAX_TENANT_JSON_BYTES}: split its agents between tenants or shorten skill names"
                ),
            );
        }
    }
}

/// The length of `value`'s JSON form, without building it.
fn json_len(value: &impl serde::Serialize) -> usize {
    let mut counter = ByteCount(0);
    serde_json::to_writer(&mut counter, value).expect("a tenant config always serializes to JSON");
    counter.0
}

/// An `io::Write` that only counts.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SHA256_RULE: &str = "use the SHA-256 of the key as 64 lowercase hex characters";
const SCOPES_RULE: &str = "give the key one or more scopes: intake, agent_actions, supervisor, admin \
     (README, \"API keys and scopes\")";

/// Collects problems, attaching lines when the source YAML is known.
struct Checker<'a> {
    lines: Option<&'a LineIndex>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: String, message: String) {
        let line = self.lines.and_then(|l| l.line(&field));
        self.problems.push(Problem {
            field,
            line,
            message,
        });
    }

    fn duplicate(&mut self, field: String, what: &str, value: &str, first_field: &str) {
        let first = match self.lines.and_then(|l| l.line(first_field)) {
            Some(line) => format!("first defined on line {line}"),
            None => format!("first defined at {first_field}"),
        };
        self.problem(field, format!("duplicate {what} {value:?} ({first})"));
    }
}

/// Remembers where each value was first seen, to report duplicates.
#[derive(Default)]
struct FirstSeen(HashMap<String, String>);

impl FirstSeen {
    /// Records `value` at `field`; returns the earlier field if already seen.
    fn insert(&mut self, value: &str, field: &str) -> Option<String> {
        match self.0.get(value) {
            Some(first) => Some(first.clone()),
            None => {
                self.0.insert(value.to_string(), field.to_string());
                None
            }
        }
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Longest topic id.
const MAX_TOPIC_ID_LEN: usize = 64;

fn is_topic_id(text: &str) -> bool {
    (1..=MAX_TOPIC_ID_LEN).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `*`, or `http(s)://host[:port]` with nothing after: what a browser sends as `Origin`.
fn is_origin(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && (port.is_empty() || port.parse::<u16>().is_ok())
}

/// Whether `text` looks like one email address: one `@` with text on both sides.
pub fn is_email_like(text: &str) -> bool {
    let mut parts = text.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.trim().is_empty() && !domain.trim().is_empty()
    )
}

fn language_list(languages: &[Language]) -> String {
    languages
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opening windows at `field`: each names a day and valid `HH:MM` times.
fn check_hours(c: &mut Checker<'_>, field: &str, windows: &[OpeningHours]) {
    for (i, h) in windows.iter().enumerate() {
        if h.days.is_empty() {
            c.problem(
                format!("{field}[{i}].days"),
                "list at least one day, e.g. [mon, tue]".into(),
            );
        }
        for (name, value) in [("open", &h.open), ("close", &h.close)] {
            if let Err(e) = hours::parse_time_of_day(value) {
                c.problem(format!("{field}[{i}].{name}"), e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests;
