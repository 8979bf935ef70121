//! `careline notify`: asks the notifications service to send one email, by
//! publishing a `NotificationRequested` on the bus exactly as email-intake
//! and the agent reply path do (to try templates, a relay, or dead letters).

use std::collections::BTreeMap;

use anyhow::Context;
use careline_kit::config::{DEFAULT_NATS_URL, ENV_NATS_URL};
use careline_proto::v1::NotificationRequested;
use clap::Args;

/// `careline notify` flags.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// NATS server URL, or a comma-separated list of a cluster's servers.
    #[arg(long, env = ENV_NATS_URL, default_value = DEFAULT_NATS_URL)]
    nats_url: String,
    #[command(flatten)]
    access: crate::config_cmd::NatsAccessArgs,
    /// Tenant id.
    #[arg(long, default_value = "demo-health")]
    tenant: String,
    /// receipt, after_hours, urgent_guidance, agent_reply, survey or outreach.
    #[arg(long)]
    template: String,
    /// The member's email address.
    #[arg(long)]
    to: String,
    /// en or es (empty: the tenant's first language).
    #[arg(long, default_value = "")]
    language: String,
    /// Notification id (the idempotency key); generated when not given.
    #[arg(long)]
    id: Option<String>,
    /// Interaction the email belongs to.
    #[arg(long, default_value = "")]
    interaction_id: String,
    /// Subject (empty: the template's).
    #[arg(long, default_value = "")]
    subject: String,
    /// Text of an agent_reply.
    #[arg(long, default_value = "")]
    body: String,
    /// Message-ID of the member's email this answers (threads the reply).
    #[arg(long, default_value = "")]
    in_reply_to: String,
    /// Template variable, NAME=VALUE (repeat), e.g. survey_url=https://...
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

/// Publishes the request and says where it went.
pub async fn run(args: NotifyArgs) -> anyhow::Result<()> {
    let id = args
        .id
        .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4()));
    let request = NotificationRequested {
        notification_id: id.clone(),
        tenant_id: args.tenant,
        template: args.template,
        language: args.language,
        to_address: args.to,
        interaction_id: args.interaction_id,
        in_reply_to: args.in_reply_to,
        subject: args.subject,
        body: args.body,
        variables: args.vars.into_iter().collect::<BTreeMap<_, _>>(),
        ..Default::default()
    };
    let js =
        async_nats::jetstream::new(crate::config_cmd::connect(&args.nats_url, &args.access).await?);
    careline_bus::notification::publish_request(&js, &request, &id)
        .await
        .context("publishing the notification request")?;
    println!(
        "requested notification {id} ({} in {}) for tenant {}",
        request.template,
        if request.language.is_empty() {
            "the tenant's language"
        } else {
            &request.language
        },
        request.tenant_id
    );
    Ok(())
}
