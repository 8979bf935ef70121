//! Bodies are kept while the interaction is open and for the tenant's
//! retention after it ended (`email.retention_days`), then removed.

use std::time::Duration;

use careline_proto::v1;
use careline_testkit::demo::{API_KEY as DEMO_KEY, TENANT as DEMO};

use crate::harness::{DEMO_ADDRESS, Email, Platform, RawSmtp, Replica, email_client, mail};

/// The thread keys of one interaction: bodies, reply data, and the Message-ID
/// mapping of its first message.
fn thread_keys(interaction_id: &str, first_message_id: &str) -> [String; 3] {
    [
        format!("email:{{{DEMO}}}:thread:{interaction_id}"),
        format!("email:{{{DEMO}}}:meta:{interaction_id}"),
        format!(
            "email:{{{DEMO}}}:msg:{}",
            careline_email_intake::inbox::digest(&[first_message_id.as_bytes()])
        ),
    ]
}

/// Milliseconds to live of each key: -1 without expiry, -2 when gone.
async fn ttls_ms(platform: &Platform, keys: &[String]) -> Vec<i64> {
    let mut redis = platform.sandbox.redis().await.expect("redis connects");
    let mut ttls = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .expect("PTTL");
        ttls.push(ttl);
    }
    ttls
}

/// The Message-IDs of the thread the agent reads, or why there is none.
async fn thread(email: &mut Email, interaction_id: &str) -> Result<Vec<String>, tonic::Code> {
    email
        .get_thread(v1::GetThreadRequest {
            interaction_id: interaction_id.to_owned(),
        })
        .await
        .map(|thread| {
            let messages = thread.into_inner().messages;
            messages.into_iter().map(|m| m.message_id).collect()
        })
        .map_err(|status| status.code())
}

async fn holds(email: &mut Email, interaction_id: &str, message_id: &str) -> bool {
    thread(email, interaction_id)
        .await
        .is_ok_and(|ids| ids.iter().any(|id| id == message_id))
}

/// Delivers one mail per `(message id, sender)` and returns the interactions, in that order.
async fn deliver(platform: &Platform, smtp: &mut RawSmtp, mails: &[(&str, &str)]) -> Vec<String> {
    for (message_id, sender) in mails {
        let raw = mail(message_id, sender, "Card", "Where is my card?");
        assert_eq!(smtp.deliver(DEMO_ADDRESS, &raw).await, 250);
    }
    let interactions = platform.wait_for_email_interactions(mails.len()).await;
    mails
        .iter()
        .map(|(_, sender)| {
            // The opaque member reference email-intake gives the sender.
            let digest =
                careline_email_intake::inbox::digest(&[DEMO.as_bytes(), sender.as_bytes()]);
            let member_ref = format!("email-{}", &digest[..32]);
            let interaction = interactions
                .iter()
                .find(|i| i.member_ref == member_ref)
                .expect("an interaction per sender");
            interaction.id.clone()
        })
        .collect()
}

async fn abandon(platform: &Platform, interaction_id: &str) {
    platform
        .router()
        .await
        .abandon(v1::AbandonRequest {
            interaction_id: interaction_id.to_owned(),
        })
        .await
        .expect("the interaction ends");
}

/// An email-intake replica, its client, and the interaction of one member's
/// mail `message_id`, once the mail is on its thread.
async fn one_open_thread(platform: &Platform, message_id: &str) -> (Replica, Email, String) {
    let intake = platform.intake().await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    let id = deliver(platform, &mut smtp, &[(message_id, "kim@member.example")])
        .await
        .remove(0);
    let mut email = email_client(&intake, DEMO_KEY).await;
    careline_testkit::assert_eventually!(
        holds(&mut email, &id, message_id).await,
        "the member's mail is on its thread"
    );
    (intake, email, id)
}

/// Whether every key expires, within the demo tenant's retention (30 days).
async fn expires_within_retention(platform: &Platform, keys: &[String]) -> bool {
    let retention = Duration::from_secs(30 * 24 * 60 * 60);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap();
    ttls_ms(platform, keys)
        .await
        .iter()
        .all(|ttl| (1..=retention_ms).contains(ttl))
}

/// Publishes `careline.<demo>.interaction.resolved` for `interaction_id`, as
/// the router's outbox relay does when an agent resolves it.
async fn publish_resolved(platform: &Platform, interaction_id: &str) {
    let js = async_nats::jetstream::new(platform.sandbox.nats().await.expect("nats client"));
    let resolved = v1::InteractionEvent {
        kind: v1::InteractionEventKind::Resolved as i32,
        interaction_id: interaction_id.to_owned(),
        channel: v1::Channel::Email as i32,
        ..Default::default()
    };
    let event = v1::Event {
        event_id: format!("{DEMO}:resolved-{interaction_id}"),
        tenant_id: DEMO.to_owned(),
        occurred_at_ms: chrono::Utc::now().timestamp_millis(),
        sequence: 1,
        payload: Some(v1::event::Payload::Interaction(resolved)),
    };
    let subject = careline_bus::Subject::new(DEMO, "interaction", "resolved").unwrap();
    careline_bus::Publisher::new(js)
        .publish(&subject, &event)
        .await
        .expect("the resolution is on the bus");
}

#[tokio::test]
async fn a_resolved_interactions_thread_expires_its_retention_after_the_resolution() {
    let platform = Platform::start().await;
    let (intake, _, id) = one_open_thread(&platform, "resolved@member.example").await;
    let keys = thread_keys(&id, "resolved@member.example");
    assert_eq!(ttls_ms(&platform, &keys).await, [-1, -1, -1]);

    publish_resolved(&platform, &id).await;
    careline_testkit::assert_eventually!(
        expires_within_retention(&platform, &keys).await,
        "the resolved interaction's thread expires within the demo tenant's 30 days"
    );
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn a_thread_is_kept_while_open_and_expires_its_retention_after_the_interaction_ends() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    let ids = deliver(
        &platform,
        &mut smtp,
        &[
            ("ends@member.example", "pat@member.example"),
            ("stays@member.example", "lee@member.example"),
        ],
    )
    .await;
    let (ending, open) = (&ids[0], &ids[1]);
    let mut email = email_client(&intake, DEMO_KEY).await;
    for (id, message_id) in [
        (ending, "ends@member.example"),
        (open, "stays@member.example"),
    ] {
        careline_testkit::assert_eventually!(
            holds(&mut email, id, message_id).await,
            "the member's mail is on its thread"
        );
    }
    let ending_keys = thread_keys(ending, "ends@member.example");
    let open_keys = thread_keys(open, "stays@member.example");
    assert_eq!(
        ttls_ms(&platform, &ending_keys).await,
        [-1, -1, -1],
        "an open interaction's thread never expires"
    );

    abandon(&platform, ending).await;
    careline_testkit::assert_eventually!(
        expires_within_retention(&platform, &ending_keys).await,
        "the ended interaction's thread expires within the demo tenant's 30 days"
    );
    assert!(
        holds(&mut email, ending, "ends@member.example").await,
        "the agent still reads it during the retention"
    );
    assert_eq!(
        ttls_ms(&platform, &open_keys).await,
        [-1, -1, -1],
        "the open interaction's thread still never expires"
    );
    assert!(holds(&mut email, open, "stays@member.example").await);
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn with_zero_days_of_retention_an_ended_interactions_thread_is_removed_at_once() {
    let platform = Platform::start_with(|demo| demo.email.retention_days = 0).await;
    let (intake, mut email, id) = one_open_thread(&platform, "gone@member.example").await;

    abandon(&platform, &id).await;
    careline_testkit::assert_eventually!(
        thread(&mut email, &id).await == Err(tonic::Code::NotFound),
        "the thread is gone once the interaction ended"
    );
    assert_eq!(
        ttls_ms(&platform, &thread_keys(&id, "gone@member.example")).await,
        [-2, -2, -2],
        "bodies, reply data and the Message-ID mapping are all removed"
    );
    intake.stop().await;
    platform.stop().await;
}
