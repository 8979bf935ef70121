//! Telling the agent who is calling: an offer carries the member's last
//! resolved contacts in the tenant, never another member's.

use careline_proto::v1;
use careline_proto::v1::agent_session_event::Kind;

use crate::harness::{Desk, Presence, TENANT};

#[tokio::test]
async fn an_offer_carries_the_members_last_resolved_contacts_with_the_resolution_note() {
    let presence = Presence::start().await.unwrap();
    let (mut ana, _) = Desk::login(&presence, "ana", v1::AgentState::Available).await;
    let first = presence.create_interaction("general").await.unwrap();
    let offer = ana.next_offer().await;
    assert!(
        offer.member_history.is_empty(),
        "a first contact has no history"
    );
    ana.accept(&offer.offer_id).await;
    let note = v1::Note {
        agent_id: "ana".into(),
        text: "explained the EOB; claim reprocessed".into(),
        kind: v1::NoteKind::Resolution as i32,
        created_at_ms: 1,
    };
    careline_testkit::assert_eventually!(
        presence
            .store
            .resolve(
                TENANT,
                &first,
                "ana",
                "claim explained",
                &["claims".into()],
                Some(&note)
            )
            .await
            .is_ok(),
        "ana resolves the first contact"
    );

    // The same member writes again: the next offer shows what happened.
    let second = presence.create_interaction("general").await.unwrap();
    let offer = loop {
        // The first contact's assignment may come first.
        if let Kind::Offer(offer) = ana.next_work().await {
            break offer;
        }
    };
    assert_eq!(offer.interaction.as_ref().unwrap().id, second);
    let [past] = offer.member_history.as_slice() else {
        panic!("one past contact: {:?}", offer.member_history);
    };
    assert_eq!(past.interaction_id, first);
    assert_eq!(past.disposition, "claim explained");
    assert_eq!(past.outcome_tags, ["claims"]);
    assert_eq!(past.agent_id, "ana");
    assert_eq!(past.resolution_note, note.text);
    assert_eq!(past.queue_id, "general");
    assert_eq!(past.channel, v1::Channel::Email as i32);
    assert!(past.resolved_at_ms > 0);

    // Another member's history stays theirs.
    let history = presence
        .store
        .member_history(TENANT, "member-9999")
        .await
        .unwrap();
    assert!(history.is_empty());
    let other_tenant = presence
        .store
        .member_history("other-health", "member-0042")
        .await
        .unwrap();
    assert!(
        other_tenant.is_empty(),
        "another tenant's member of the same ref"
    );
}
