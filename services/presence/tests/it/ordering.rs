//! Routing events can reach presence out of order (a relay retry, a replica
//! taking over another's outbox): the client must never see a revocation of
//! an offer it was not shown, nor an offer that is no longer pending.

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind;
use careline_proto::v1::agent_session_request::Kind as RequestKind;
use prost::Message;

use crate::harness::{Desk, Presence, TENANT};

/// An interaction event about `agent` and `offer_id`, as the relay publishes it.
fn offer_event(
    kind: v1::InteractionEventKind,
    id: &str,
    offer_id: &str,
    detail: &str,
) -> v1::Event {
    v1::Event {
        event_id: format!("{TENANT}:test-{offer_id}-{}", kind as i32),
        tenant_id: TENANT.into(),
        occurred_at_ms: 0,
        sequence: 0,
        payload: Some(v1::event::Payload::Interaction(v1::InteractionEvent {
            kind: kind as i32,
            interaction_id: id.into(),
            queue_id: "general".into(),
            agent_id: "ana".into(),
            offer_id: offer_id.into(),
            detail: detail.into(),
            ..Default::default()
        })),
    }
}

#[tokio::test]
async fn a_revocation_dispatched_before_its_offer_shows_neither_to_the_agent() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Away).await;
    let id = presence.create_interaction("general").await.unwrap();

    // The offer's revocation overtakes the offer itself; by the time the
    // offer arrives it is no longer pending (the interaction waits in queue).
    let nats = presence._sandbox.nats().await.unwrap();
    let ghost = "of_ghost00000000000000000000";
    for (kind, detail) in [
        (v1::InteractionEventKind::OfferRevoked, "abandoned"),
        (v1::InteractionEventKind::Offered, ""),
    ] {
        let event = offer_event(kind, &id, ghost, detail);
        let subject = match kind {
            v1::InteractionEventKind::Offered => "offered",
            _ => "offer_revoked",
        };
        nats.publish(
            format!("careline.{TENANT}.interaction.{subject}"),
            event.encode_to_vec().into(),
        )
        .await
        .unwrap();
    }
    nats.flush().await.unwrap();

    // Sentinel: once ana is available the waiting interaction is offered for
    // real; it must be the first work she sees.
    ana.send(RequestKind::SetState(v1::SetState {
        tenant_id: TENANT.into(),
        state: v1::AgentState::Available as i32,
        away_reason: String::new(),
    }))
    .await;
    match ana.next_work().await {
        Kind::Offer(offer) => {
            assert_ne!(
                offer.offer_id, ghost,
                "an offer no longer pending was shown"
            );
            assert_eq!(offer.interaction.expect("interaction").id, id);
        }
        other => panic!("the first work must be the live offer, got {other:?}"),
    }
}
