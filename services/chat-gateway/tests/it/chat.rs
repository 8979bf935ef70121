//! A member and an agent chat end to end on one replica: queue, assignment,
//! messages both ways, typing, the agent ending it, the transcript.

use careline_chat_gateway::protocol::{Party, ServerFrame};
use careline_proto::v1;
use careline_proto::v1::chat_session_event::Kind as ChatEvent;
use serde_json::json;

use crate::harness::{Ended, OTHER_KEY, Platform};

#[tokio::test]
async fn member_chats_with_an_agent_who_ends_it_and_the_transcript_keeps_everything() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut agent = gateway.agent("ana", "Ana").await;
    let mut member = gateway.member().await;

    let (ix, _token) = member
        .started("es", "Hola, olvidé mi contraseña del portal")
        .await;
    assert!(ix.starts_with("ix_"), "{ix}");
    let position = member
        .until(|f| match f {
            ServerFrame::Queued { position, .. } => Some(*position),
            _ => None,
        })
        .await;
    assert_eq!(position, Some(1), "first in the queue");
    let echo = member
        .until(|f| match f {
            ServerFrame::Message {
                from, client_id, ..
            } => Some((*from, client_id.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        echo,
        (Party::Member, Some("m-1".into())),
        "the first message is acknowledged"
    );

    let mut desk = platform.desk("ana").await;
    desk.take(&ix).await;
    let joined = agent.joined(&ix).await;
    assert_eq!(joined.language, v1::Language::Es as i32);
    assert_eq!(joined.member_first_name, "Pat");
    assert_eq!(
        joined.transcript[0].text, "Hola, olvidé mi contraseña del portal",
        "the agent reads what the member already said"
    );
    let name = member
        .until(|f| match f {
            ServerFrame::Assigned { agent_first_name } => Some(agent_first_name.clone()),
            _ => None,
        })
        .await;
    assert_eq!(name, "Ana");

    agent.say(&ix, "a-1", "¡Hola Pat! Le ayudo con eso.").await;
    member.heard("¡Hola Pat! Le ayudo con eso.").await;
    member.send(json!({"type": "typing"})).await;
    agent
        .until(|e| matches!(e, ChatEvent::Typing(t) if t.interaction_id == ix).then_some(()))
        .await;
    member
        .send(json!({"type": "message", "client_id": "m-2", "text": "Gracias"}))
        .await;
    agent.heard("Gracias").await;

    agent.end(&ix).await;
    let reason = member
        .until(|f| match f {
            ServerFrame::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, "agent_ended");
    assert_eq!(member.ended().await, Ended::Code(1000));
    let left = agent
        .until(|e| match e {
            ChatEvent::Left(left) => Some(left.reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(left, "agent_ended");
    careline_testkit::assert_eventually!(
        platform.state(&ix).await == v1::InteractionState::Resolved,
        "the interaction is resolved at the router"
    );

    let transcript = gateway
        .transcript(&ix, careline_testkit::demo::API_KEY)
        .await
        .expect("the tenant reads its transcript");
    let kinds: Vec<(i32, i32, &str)> = transcript
        .entries
        .iter()
        .map(|e| (e.kind, e.from, e.text.as_str()))
        .collect();
    use v1::ChatParty as P;
    use v1::TranscriptEntryKind as K;
    assert_eq!(
        kinds,
        [
            (
                K::Message as i32,
                P::Member as i32,
                "Hola, olvidé mi contraseña del portal"
            ),
            (K::Assigned as i32, P::System as i32, ""),
            (
                K::Message as i32,
                P::Agent as i32,
                "¡Hola Pat! Le ayudo con eso."
            ),
            (K::Message as i32, P::Member as i32, "Gracias"),
            (K::Closed as i32, P::System as i32, ""),
        ]
    );
    let other = gateway.transcript(&ix, OTHER_KEY).await.unwrap_err();
    assert_eq!(
        other.code(),
        tonic::Code::NotFound,
        "another tenant cannot read it"
    );
}

#[tokio::test]
async fn an_urgent_first_message_shows_the_emergency_banner_and_jumps_to_the_urgent_queue() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut member = gateway.member().await;
    let (ix, _) = member
        .started("en", "I have chest pain and my left arm is numb")
        .await;
    let (reason, call) = member
        .until(|f| match f {
            ServerFrame::Emergency { reason, call, .. } => Some((reason.clone(), call.clone())),
            _ => None,
        })
        .await;
    assert_eq!((reason.as_str(), call.as_str()), ("chest_pain", "911"));
    let interaction = platform
        .router()
        .await
        .get_interaction(v1::GetInteractionRequest {
            interaction_id: ix.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(interaction.queue_id, "clinical");
    assert_eq!(interaction.channel, v1::Channel::Chat as i32);
    assert!(interaction.urgent);
}

#[tokio::test]
async fn member_ending_a_queued_chat_abandons_it() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut member = gateway.member().await;
    let (ix, _) = member.started("en", "question about my bill").await;
    member.send(json!({"type": "end"})).await;
    let reason = member
        .until(|f| match f {
            ServerFrame::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, "member_ended");
    assert_eq!(member.ended().await, Ended::Code(1000));
    careline_testkit::assert_eventually!(
        platform.state(&ix).await == v1::InteractionState::Abandoned,
        "the queued interaction is abandoned"
    );
}

#[tokio::test]
async fn agent_cannot_join_a_chat_not_assigned_to_it_nor_log_in_with_a_wrong_key() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut member = gateway.member().await;
    let (ix, _) = member.started("en", "question about my bill").await;
    let mut luis = gateway.agent("luis", "Luis").await;
    match luis.join(&ix).await {
        ChatEvent::Error(error) => {
            assert_eq!(error.code, tonic::Code::FailedPrecondition as i32);
            assert!(
                error.message.contains("not assigned to you"),
                "{}",
                error.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let refused = gateway
        .agent_login(careline_testkit::demo::TENANT, "luis", "wrong-key", "Luis")
        .await
        .next()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn after_a_warm_transfer_the_next_agent_reads_everything_and_the_member_sees_the_new_name() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut ana = gateway.agent("ana", "Ana").await;
    let mut member = gateway.member().await;
    let (ix, _) = member.started("en", "I need help with my password").await;
    let mut ana_desk = platform.desk("ana").await;
    ana_desk.take(&ix).await;
    ana.joined(&ix).await;
    ana.say(&ix, "a-1", "Let me get a colleague").await;
    member.heard("Let me get a colleague").await;

    let mut luis = gateway.agent("luis", "Luis").await;
    let mut luis_desk = platform.desk("luis").await;
    platform
        .router()
        .await
        .transfer(v1::TransferRequest {
            interaction_id: ix.clone(),
            agent_id: "ana".into(),
            target: Some(v1::transfer_request::Target::ToAgentId("luis".into())),
            notes: "password reset, member verified".into(),
        })
        .await
        .expect("warm transfer to luis");
    luis_desk.take(&ix).await;
    let joined = luis.joined(&ix).await;
    let texts: Vec<&str> = joined
        .transcript
        .iter()
        .filter(|e| e.kind == v1::TranscriptEntryKind::Message as i32)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts,
        ["I need help with my password", "Let me get a colleague"],
        "the member explains once"
    );
    let left = ana
        .until(|e| match e {
            ChatEvent::Left(left) => Some(left.reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(left, "transferred");
    let name = member
        .until(|f| match f {
            ServerFrame::Assigned { agent_first_name } => Some(agent_first_name.clone()),
            _ => None,
        })
        .await;
    assert_eq!(name, "Luis");
    luis.say(&ix, "l-1", "Hi, Luis here").await;
    member.heard("Hi, Luis here").await;

    let mut redis = platform.sandbox.redis().await.unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("chat:{{demo-health}}:log:{ix}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let thirty_days_ms = 30 * 24 * 3600 * 1000;
    assert!(
        ttl_ms > thirty_days_ms - 60_000 && ttl_ms <= thirty_days_ms,
        "the transcript expires after the tenant's retention: {ttl_ms} ms"
    );
}

#[tokio::test]
async fn an_agent_holds_two_chats_at_once_and_each_member_hears_only_their_own() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut agent = gateway.agent("ana", "Ana").await;
    let mut first = gateway.member().await;
    let (one, _) = first.started("en", "I need help with my password").await;
    let mut second = gateway.member().await;
    let (two, _) = second.started("en", "my password does not work").await;
    let mut desk = platform.desk("ana").await;
    desk.take(&one).await;
    desk.take(&two).await;
    agent.joined(&one).await;
    agent.joined(&two).await;
    agent.say(&two, "a-2", "Hello second member").await;
    agent.say(&one, "a-1", "Hello first member").await;
    first.heard("Hello first member").await;
    second.heard("Hello second member").await;
    let first_saw: Vec<String> = gateway
        .transcript(&one, careline_testkit::demo::API_KEY)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert!(!first_saw.iter().any(|t| t == "Hello second member"));
}

#[tokio::test]
async fn a_waiting_member_is_told_their_new_place_as_the_queue_moves() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let mut first = gateway.member().await;
    let (first_ix, _) = first.started("en", "Hello, anyone there?").await;
    let mut second = gateway.member().await;
    second.started("en", "Hello, I have a question").await;
    let place = |wanted: u32| {
        move |f: &ServerFrame| match f {
            ServerFrame::Queued { position, .. } if *position == Some(wanted) => Some(()),
            _ => None,
        }
    };
    second.until(place(2)).await;

    // The first member gives up: the second moves up, and is told so.
    first.send(json!({"type": "end"})).await;
    second.until(place(1)).await;
    assert_eq!(
        platform.state(&first_ix).await,
        v1::InteractionState::Abandoned
    );
}
