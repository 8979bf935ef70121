//! Across replicas: the member on one replica and the agent on another,
//! resume after a dropped connection, a replica killed mid-chat, and the
//! resume grace running out.

use careline_chat_gateway::protocol::{Party, ServerFrame};
use careline_proto::v1;
use careline_testkit::demo::API_KEY;
use serde_json::json;

use crate::harness::{AgentChat, Ended, Gateway, MemberSocket, Platform};

/// A member chatting with ana: (member, agent, interaction id, resume token).
async fn chatting(
    platform: &Platform,
    member_on: &Gateway,
    agent_on: &Gateway,
) -> (MemberSocket, AgentChat, String, String) {
    let mut agent = agent_on.agent("ana", "Ana").await;
    let mut member = member_on.member().await;
    let (ix, token) = member.started("en", "I need help with my password").await;
    let mut desk = platform.desk("ana").await;
    desk.take(&ix).await;
    agent.joined(&ix).await;
    member
        .until(|f| matches!(f, ServerFrame::Assigned { .. }).then_some(()))
        .await;
    (member, agent, ix, token)
}

/// Texts of the transcript's messages, in order.
async fn said(gateway: &Gateway, ix: &str) -> Vec<String> {
    gateway
        .transcript(ix, API_KEY)
        .await
        .expect("transcript")
        .entries
        .into_iter()
        .filter(|e| e.kind == v1::TranscriptEntryKind::Message as i32)
        .map(|e| e.text)
        .collect()
}

#[tokio::test]
async fn member_on_one_replica_chats_with_an_agent_on_another() {
    let platform = Platform::start().await;
    let (a, b) = (platform.gateway().await, platform.gateway().await);
    let (mut member, mut agent, ix, _) = chatting(&platform, &a, &b).await;
    agent.say(&ix, "a-1", "Hi, I am Ana from replica B").await;
    member.heard("Hi, I am Ana from replica B").await;
    member
        .send(json!({"type": "message", "client_id": "m-2", "text": "Hello from replica A"}))
        .await;
    agent.heard("Hello from replica A").await;
    assert_eq!(
        said(&a, &ix).await,
        [
            "I need help with my password",
            "Hi, I am Ana from replica B",
            "Hello from replica A"
        ]
    );
}

#[tokio::test]
async fn member_resumes_after_a_dropped_connection_without_losing_or_duplicating_a_message() {
    let platform = Platform::start().await;
    let gateway = platform.gateway().await;
    let (mut member, agent, ix, token) = chatting(&platform, &gateway, &gateway).await;
    agent.say(&ix, "a-1", "What is your member id?").await;
    let seen = member.heard("What is your member id?").await;
    // The member's last message may or may not have been stored when the connection drops.
    member
        .send(json!({"type": "message", "client_id": "m-2", "text": "It is on my card"}))
        .await;
    drop(member);
    agent.say(&ix, "a-2", "Take your time").await;
    agent.say(&ix, "a-3", "I am still here").await;

    let mut member = gateway.member().await;
    member
        .send(json!({"type": "resume", "token": token, "after": seen}))
        .await;
    match member.frame().await {
        ServerFrame::Started {
            conversation_id,
            resumed,
            ..
        } => assert!(resumed && conversation_id == ix),
        other => panic!("expected started, got {other:?}"),
    }
    let mut replayed = Vec::new();
    loop {
        match member.frame().await {
            ServerFrame::Message { from, text, .. } => replayed.push((from, text)),
            ServerFrame::Assigned { agent_first_name } => {
                assert_eq!(agent_first_name, "Ana");
                break;
            }
            other => panic!("unexpected frame while replaying: {other:?}"),
        }
    }
    replayed.retain(|(from, _)| *from == Party::Agent);
    assert_eq!(
        replayed,
        [
            (Party::Agent, "Take your time".to_owned()),
            (Party::Agent, "I am still here".to_owned())
        ],
        "exactly what was missed"
    );
    // The client resends what it never saw acknowledged; twice is still once.
    for _ in 0..2 {
        member
            .send(json!({"type": "message", "client_id": "m-2", "text": "It is on my card"}))
            .await;
        member
            .until(|f| {
                matches!(f, ServerFrame::Message { client_id: Some(c), .. } if c == "m-2")
                    .then_some(())
            })
            .await;
    }
    assert_eq!(
        said(&gateway, &ix)
            .await
            .iter()
            .filter(|t| *t == "It is on my card")
            .count(),
        1
    );
    assert_eq!(platform.state(&ix).await, v1::InteractionState::Assigned);
}

#[tokio::test]
async fn a_replica_killed_mid_chat_loses_nothing_and_the_member_resumes_on_another() {
    let platform = Platform::start().await;
    let doomed = platform.gateway_process().await;
    let survivor = platform.gateway().await;
    let (mut member, mut agent, ix, token) = chatting(&platform, &doomed, &survivor).await;
    agent.say(&ix, "a-1", "Before the crash").await;
    let seen = member.heard("Before the crash").await;

    doomed.stop().await;
    assert_eq!(
        member.ended().await,
        Ended::Dropped,
        "killed, no close frame"
    );
    agent.say(&ix, "a-2", "While you were away").await;

    let mut member = survivor.member().await;
    member
        .send(json!({"type": "resume", "token": token, "after": seen}))
        .await;
    member.heard("While you were away").await;
    member
        .send(json!({"type": "message", "client_id": "m-2", "text": "I am back"}))
        .await;
    agent.heard("I am back").await;
    assert_eq!(
        said(&survivor, &ix).await,
        [
            "I need help with my password",
            "Before the crash",
            "While you were away",
            "I am back"
        ]
    );
    assert_eq!(
        platform.state(&ix).await,
        v1::InteractionState::Assigned,
        "not abandoned: the member came back within the grace"
    );
}

#[tokio::test]
async fn a_member_who_does_not_come_back_within_the_grace_is_abandoned() {
    let platform = Platform::start().await;
    let gateway = platform
        .gateway_with(|config| config.resume_grace_secs = 1)
        .await;
    let mut member = gateway.member().await;
    let (ix, token) = member.started("en", "question about my bill").await;
    drop(member);
    careline_testkit::assert_eventually!(
        platform.state(&ix).await == v1::InteractionState::Abandoned,
        "abandoned at the router after the grace"
    );
    let mut late = gateway.member().await;
    late.send(json!({"type": "resume", "token": token})).await;
    let reason = late
        .until(|f| match f {
            ServerFrame::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, "abandoned");
    assert_eq!(late.ended().await, Ended::Code(1000));
}
