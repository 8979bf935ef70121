//! Threading, idempotency across replicas, replies and automatic answers.

use careline_proto::v1;
use careline_testkit::demo::API_KEY as DEMO_KEY;

use crate::harness::{DEMO_ADDRESS, Platform, RawSmtp, email_client, mail};

#[tokio::test]
async fn the_same_message_id_through_two_replicas_is_one_interaction() {
    let platform = Platform::start().await;
    let (first, second) = tokio::join!(platform.intake(), platform.intake());
    let raw = mail(
        "twice@member.example",
        "pat@member.example",
        "Claim",
        "Is claim 42 paid?",
    );
    // Once over SMTP to one replica, once over IngestEmail to the other (a
    // tenant's own mail system forwarding it too).
    let mut smtp = RawSmtp::connect(first.smtp).await;
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &raw).await, 250);
    let mut grpc = email_client(&second, DEMO_KEY).await;
    let ingested = grpc
        .ingest_email(v1::IngestEmailRequest { raw: raw.clone() })
        .await
        .expect("ingested")
        .into_inner();
    assert_eq!(ingested.message_id, "twice@member.example");
    // A later copy with other bytes but the same Message-ID (another MX hop).
    let mut copy = b"Received: from mx2.example\r\n".to_vec();
    copy.extend_from_slice(&raw);
    let mut smtp = RawSmtp::connect(second.smtp).await;
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &copy).await, 250);

    let interactions = platform.wait_for_email_interactions(1).await;
    // Settle: every copy handled, then still one interaction and one message.
    let mut email = email_client(&first, DEMO_KEY).await;
    careline_testkit::assert_eventually!(
        email
            .get_thread(v1::GetThreadRequest {
                interaction_id: interactions[0].id.clone()
            })
            .await
            .is_ok(),
        "thread stored"
    );
    assert_eq!(platform.email_interactions().await.len(), 1);
    let thread = email
        .get_thread(v1::GetThreadRequest {
            interaction_id: interactions[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let inbound = thread
        .messages
        .iter()
        .filter(|m| m.direction == v1::EmailDirection::Inbound as i32)
        .count();
    assert_eq!(inbound, 1);
    first.stop().await;
    second.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn an_agent_reply_goes_out_threaded_and_the_members_answer_threads_back() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    let first = mail(
        "q1@member.example",
        "pat@member.example",
        "Card",
        "Where is my card?",
    );
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &first).await, 250);
    let interaction = platform.wait_for_email_interactions(1).await.remove(0);
    let mut email = email_client(&intake, DEMO_KEY).await;
    careline_testkit::assert_eventually!(
        email
            .get_thread(v1::GetThreadRequest {
                interaction_id: interaction.id.clone()
            })
            .await
            .is_ok(),
        "thread stored"
    );

    let reply = email
        .reply_email(v1::ReplyEmailRequest {
            interaction_id: interaction.id.clone(),
            agent_id: "ana".into(),
            body: "It was mailed on Monday.".into(),
        })
        .await
        .expect("reply requested")
        .into_inner();
    let requests = platform.notification_requests().await;
    let sent = requests
        .iter()
        .find(|r| r.notification_id == reply.notification_id)
        .expect("the reply was asked of notifications");
    assert_eq!(sent.template, "agent_reply");
    assert_eq!(sent.to_address, "pat@member.example");
    assert_eq!(sent.in_reply_to, "q1@member.example");
    assert!(sent.references.contains(&"q1@member.example".to_owned()));
    assert_eq!(sent.subject, "Re: Card");
    assert_eq!(sent.interaction_id, interaction.id);

    let answer = format!(
        "Message-ID: <q2@member.example>\r\nFrom: pat@member.example\r\nTo: {DEMO_ADDRESS}\r\nSubject: Re: Card\r\nIn-Reply-To: <{}>\r\nReferences: <q1@member.example> <{}>\r\n\r\nThanks, got it!\r\n\r\nOn Tue, Demo Health wrote:\r\n> It was mailed on Monday.\r\n",
        reply.message_id, reply.message_id
    );
    assert_eq!(smtp.deliver(DEMO_ADDRESS, answer.as_bytes()).await, 250);
    careline_testkit::assert_eventually!(
        email
            .get_thread(v1::GetThreadRequest {
                interaction_id: interaction.id.clone()
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .iter()
            .any(|m| m.message_id == "q2@member.example" && m.body == "Thanks, got it!"),
        "the answer is on the same thread, quote trimmed"
    );
    assert_eq!(
        platform.email_interactions().await.len(),
        1,
        "no second interaction"
    );
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn one_receipt_per_sender_per_hour_and_none_to_bulk_mail() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    for id in ["a1", "a2"] {
        let raw = mail(
            &format!("{id}@member.example"),
            "pat@member.example",
            id,
            "hello",
        );
        assert_eq!(smtp.deliver(DEMO_ADDRESS, &raw).await, 250);
    }
    let bulk = format!(
        "Message-ID: <news@shop.example>\r\nFrom: news@shop.example\r\nPrecedence: bulk\r\nTo: {DEMO_ADDRESS}\r\nSubject: Sale\r\n\r\nBuy now\r\n"
    );
    assert_eq!(smtp.deliver(DEMO_ADDRESS, bulk.as_bytes()).await, 250);
    let interactions = platform.wait_for_email_interactions(3).await;
    // Settled once every thread is stored (after its automatic answer was asked for).
    let mut email = email_client(&intake, DEMO_KEY).await;
    for interaction in &interactions {
        careline_testkit::assert_eventually!(
            email
                .get_thread(v1::GetThreadRequest {
                    interaction_id: interaction.id.clone()
                })
                .await
                .is_ok(),
            "thread of {}",
            interaction.id
        );
    }
    let requests = platform.notification_requests().await;
    let receipts: Vec<_> = requests
        .iter()
        .filter(|r| r.template == "receipt")
        .collect();
    assert_eq!(
        receipts.len(),
        1,
        "one automatic answer to pat within the hour"
    );
    assert_eq!(receipts[0].to_address, "pat@member.example");
    assert_eq!(receipts[0].in_reply_to, "a1@member.example");
    assert!(requests.iter().all(|r| r.to_address != "news@shop.example"));
    intake.stop().await;
    platform.stop().await;
}
