//! What the router reads in a contact's text (context.reason and
//! context.summary): urgency, language and topic, as a member and an agent
//! would notice them.

use careline_proto::v1;
use tonic::Code;

use crate::harness::{Client, DEMO_KEY, Platform};

/// A chat with `summary` and no queue, language or urgency given.
fn described(summary: &str, key: &str) -> v1::CreateInteractionRequest {
    v1::CreateInteractionRequest {
        channel: v1::Channel::Chat as i32,
        member_ref: "member-7".into(),
        idempotency_key: key.into(),
        context: Some(v1::InteractionContext {
            summary: summary.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn created(client: &mut Client, request: v1::CreateInteractionRequest) -> v1::Interaction {
    client
        .create_interaction(request)
        .await
        .unwrap()
        .into_inner()
        .interaction
        .unwrap()
}

#[tokio::test]
async fn spanish_chest_pain_is_urgent_spanish_and_in_the_clinical_queue() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let ix = created(&mut client, described("tengo dolor de pecho", "es-chest")).await;
    assert!(ix.urgent);
    assert_eq!(ix.priority, v1::Priority::Urgent as i32);
    assert_eq!(ix.queue_id, "clinical");
    assert_eq!(ix.language, v1::Language::Es as i32);
    assert_eq!(ix.urgent_reason, "chest_pain");

    let read = client
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: ix.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.urgent_reason, "chest_pain");
    assert!(read.urgent);
    let stats = client
        .get_queue_stats(v1::GetQueueStatsRequest {
            queue_id: "clinical".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.queues[0].urgent_waiting, 1);
    platform.stop().await;
}

#[tokio::test]
async fn negated_symptoms_stay_at_normal_priority_in_the_named_queue() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut request = described("no chest pain, question about my bill", "no-chest");
    request.queue_id = "general".into();
    let ix = created(&mut client, request).await;
    assert!(!ix.urgent);
    assert_eq!(ix.priority, v1::Priority::Normal as i32);
    assert_eq!(ix.queue_id, "general");
    assert_eq!(ix.urgent_reason, "");

    let mut request = described("sin dolor de pecho", "sin-dolor");
    request.queue_id = "general".into();
    let ix = created(&mut client, request).await;
    assert!(!ix.urgent);
    assert_eq!(ix.queue_id, "general");
    platform.stop().await;
}

#[tokio::test]
async fn a_callers_language_wins_over_the_detected_one() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    let mut request = described("Necesito ayuda con mi factura, por favor", "lang-en");
    request.language = v1::Language::En as i32;
    let ix = created(&mut client, request).await;
    assert_eq!(ix.language, v1::Language::En as i32);

    // No language given: the detected one; nothing clear: the tenant's first (en).
    let ix = created(
        &mut client,
        described("Necesito ayuda con mi factura, por favor", "lang-detected"),
    )
    .await;
    assert_eq!(ix.language, v1::Language::Es as i32);
    let mut unclear = described("claim 4471", "lang-unclear");
    unclear.queue_id = "general".into();
    let ix = created(&mut client, unclear).await;
    assert_eq!(ix.language, v1::Language::En as i32);
    platform.stop().await;
}

#[tokio::test]
async fn a_topic_rule_picks_the_queue_only_when_the_caller_names_none() {
    let platform = Platform::start().await;
    let mut client = platform.client(DEMO_KEY).await;
    // The demo tenant routes billing and claims to "billing".
    let ix = created(
        &mut client,
        described("I was billed twice", "topic-billing"),
    )
    .await;
    assert_eq!(ix.queue_id, "billing");
    assert!(!ix.urgent);
    let ix = created(
        &mut client,
        described("Pregunta sobre una reclamación", "topic-claims-es"),
    )
    .await;
    assert_eq!(ix.queue_id, "billing");

    let mut named = described("I was billed twice", "topic-named");
    named.queue_id = "general".into();
    assert_eq!(created(&mut client, named).await.queue_id, "general");

    // A reason counts as much as a summary.
    let mut by_reason = described("", "topic-reason");
    by_reason.context.as_mut().unwrap().reason = "forgot my password".into();
    assert_eq!(created(&mut client, by_reason).await.queue_id, "general");

    // Urgency beats the topic: "billing" is no place for chest pain.
    let ix = created(
        &mut client,
        described("my bill is wrong and I have chest pain", "topic-urgent"),
    )
    .await;
    assert_eq!(ix.queue_id, "clinical");
    assert_eq!(ix.urgent_reason, "chest_pain");

    let status = client
        .create_interaction(described("hello there", "topic-none"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("queue_id is required"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("hello"), "{}", status.message());
    platform.stop().await;
}
