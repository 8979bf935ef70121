//! Requests become exactly one email each: threaded, in the member's
//! language, once however often they are delivered or by how many replicas,
//! and still once after temporary failures or a relay outage.

use std::time::{Duration, Instant};

use careline_testkit::{DEFAULT_DEADLINE, assert_eventually};

use crate::harness::{Platform, RETRY_DEADLINE, request, test_config};

#[tokio::test]
async fn request_sends_one_threaded_email_from_the_tenants_address() {
    let platform = Platform::start(1).await;
    let mut reply = request("n-thread-1", "agent_reply", "en");
    reply.in_reply_to = "<member-1@mail.example.org>".into();
    reply.references = vec![
        "root-1@mail.example.org".into(),
        "member-1@mail.example.org".into(),
    ];
    reply.subject = "Re: my claim".into();
    reply.body = "Your claim 123 was approved.".into();
    let started = Instant::now();
    platform.publish(&reply).await;

    assert_eventually!(
        platform.mail_for("n-thread-1").len() == 1,
        "the email arrives"
    );
    println!("request to 250: {:?}", started.elapsed());
    platform.settled(DEFAULT_DEADLINE).await;
    let mail = platform.mail_for("n-thread-1");
    assert_eq!(mail.len(), 1, "exactly one email");
    let mail = &mail[0];
    assert_eq!(mail.mail_from, "members@demo-health.example");
    assert_eq!(mail.rcpt_to, ["pat.member@example.org"]);
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Demo Health Plan\" <members@demo-health.example>")
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("Re: my claim"));
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<n-thread-1@demo-health.example>")
    );
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some("<member-1@mail.example.org>")
    );
    assert_eq!(
        mail.header("References").as_deref(),
        Some("<root-1@mail.example.org> <member-1@mail.example.org>")
    );
    assert!(mail.header("Auto-Submitted").is_none(), "an agent wrote it");
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    assert!(mail.decoded().contains("Your claim 123 was approved."));

    let statuses = platform.statuses_of("n-thread-1").await;
    let words: Vec<&str> = statuses.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(words, ["sent"]);
    assert_eq!(statuses[0].1.interaction_id, "ix-42");
    assert_eq!(statuses[0].1.smtp_code, 250);
    // The request (the member's address and the reply's text) leaves the
    // event stream once sent.
    let mut stream = platform
        .js
        .get_stream(careline_bus::EVENTS_STREAM)
        .await
        .expect("event stream");
    let subject = "careline.demo-health.notification.requested";
    let held = stream.info().await.expect("stream info").state.messages;
    assert_eventually!(
        stream
            .get_last_raw_message_by_subject(subject)
            .await
            .is_err(),
        "the sent request is deleted from the stream ({held} messages left in it)"
    );
    platform.stop().await;
}

#[tokio::test]
async fn receipt_is_written_in_the_members_language_and_marked_automatic() {
    let platform = Platform::start(1).await;
    platform.publish(&request("n-es-1", "receipt", "es")).await;
    platform
        .publish(&request("n-en-1", "urgent_guidance", "en"))
        .await;

    assert_eventually!(
        platform.mail_for("n-es-1").len() == 1 && platform.mail_for("n-en-1").len() == 1,
        "both emails arrive"
    );
    let es = &platform.mail_for("n-es-1")[0];
    assert_eq!(
        es.header("Subject").as_deref(),
        Some("Recibimos su mensaje")
    );
    assert_eq!(es.header("Auto-Submitted").as_deref(), Some("auto-replied"));
    assert!(
        es.decoded()
            .contains("Gracias por escribir a Demo Health Plan. Recibimos su mensaje"),
        "{}",
        es.data
    );
    let en = &platform.mail_for("n-en-1")[0];
    assert_eq!(
        en.header("Subject").as_deref(),
        Some("If this is an emergency, call 911 now")
    );
    assert!(en.decoded().contains("call or text 988"), "{}", en.data);
    platform.stop().await;
}

#[tokio::test]
async fn the_same_notification_published_again_and_raced_by_two_replicas_sends_one_email_each() {
    const NOTIFICATIONS: usize = 30;
    const COPIES: usize = 3;
    let platform = Platform::start(2).await;
    let started = Instant::now();
    for n in 0..NOTIFICATIONS {
        let request = request(&format!("n-race-{n}"), "receipt", "en");
        // Once as the producer does, then as other producers (or a re-publish
        // past the duplicate window) would: distinct messages, same id.
        platform.publish(&request).await;
        for copy in 1..COPIES {
            platform
                .publish_with_msg_id(
                    &request,
                    &format!("{}:copy-{copy}", request.notification_id),
                )
                .await;
        }
    }
    assert_eventually!(
        within: RETRY_DEADLINE,
        platform.sink.received().len() >= NOTIFICATIONS,
        "every notification is sent"
    );
    platform.settled(RETRY_DEADLINE).await;
    println!(
        "{NOTIFICATIONS} notifications x {COPIES} copies through 2 replicas in {:?}",
        started.elapsed()
    );
    for n in 0..NOTIFICATIONS {
        assert_eq!(
            platform.mail_for(&format!("n-race-{n}")).len(),
            1,
            "n-race-{n}"
        );
    }
    assert_eq!(platform.sink.received().len(), NOTIFICATIONS);
    platform.stop().await;
}

#[tokio::test]
async fn temporary_failure_is_retried_and_sends_one_email() {
    let platform = Platform::start(1).await;
    platform.sink.reply_next([451]);
    platform.publish(&request("n-451", "receipt", "en")).await;

    assert_eventually!(
        within: RETRY_DEADLINE,
        platform.mail_for("n-451").len() == 1,
        "the email arrives after a retry"
    );
    platform.settled(DEFAULT_DEADLINE).await;
    assert_eq!(platform.mail_for("n-451").len(), 1);
    assert_eq!(platform.sink.answered(), 2, "one refusal, one acceptance");
    let statuses = platform.statuses_of("n-451").await;
    let seen: Vec<(&str, u32, u32)> = statuses
        .iter()
        .map(|(w, s)| (w.as_str(), s.attempt, s.smtp_code))
        .collect();
    assert_eq!(seen, [("failed", 1, 451), ("sent", 2, 250)]);
    platform.stop().await;
}

#[tokio::test]
async fn relay_down_then_up_delivers_every_email_later_once() {
    const NOTIFICATIONS: usize = 5;
    let mut platform = Platform::start(2).await;
    platform.sink.stop();
    for n in 0..NOTIFICATIONS {
        platform
            .publish(&request(&format!("n-outage-{n}"), "receipt", "en"))
            .await;
    }
    // Every request has failed at least once while the relay is down.
    careline_testkit::eventually(RETRY_DEADLINE, "every request fails once", || async {
        let failed = platform
            .statuses(crate::harness::TENANT)
            .await
            .into_iter()
            .filter(|(word, _)| word == "failed")
            .map(|(_, status)| status.notification_id)
            .collect::<std::collections::BTreeSet<_>>();
        failed.len() == NOTIFICATIONS
    })
    .await
    .unwrap();
    assert!(platform.sink.received().is_empty());

    platform.sink.restart().await.expect("the relay comes back");
    let back = Instant::now();
    assert_eventually!(
        within: RETRY_DEADLINE,
        platform.sink.received().len() >= NOTIFICATIONS,
        "every email is delivered once the relay is back"
    );
    println!(
        "relay back to all {NOTIFICATIONS} delivered: {:?}",
        back.elapsed()
    );
    platform.settled(RETRY_DEADLINE).await;
    for n in 0..NOTIFICATIONS {
        assert_eq!(
            platform.mail_for(&format!("n-outage-{n}")).len(),
            1,
            "n-outage-{n}"
        );
    }
    platform.stop().await;
}

#[tokio::test]
async fn without_a_relay_emails_are_written_to_the_mail_directory() {
    let mut platform = Platform::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&platform.sandbox, None, dir.path().join("mail"));
    platform.start_replica(config).await;
    platform
        .publish(&request("n-file-1", "after_hours", "es"))
        .await;

    let read_mail = || {
        std::fs::read_dir(dir.path().join("mail"))
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eventually!(read_mail().len() == 1, "one .eml file is written");
    let mail = &read_mail()[0];
    assert!(
        mail.contains("Message-ID: <n-file-1@demo-health.example>"),
        "{mail}"
    );
    assert!(
        mail.contains("Recibimos su mensaje fuera de horario"),
        "{mail}"
    );
    platform.settled(DEFAULT_DEADLINE).await;
    assert_eq!(read_mail().len(), 1);
    platform.stop().await;
}

#[tokio::test]
async fn two_replicas_share_the_work_queue_and_stop_cleanly() {
    let platform = Platform::start(2).await;
    for n in 0..10 {
        platform
            .publish(&request(&format!("n-drain-{n}"), "survey", "en"))
            .await;
    }
    assert_eventually!(
        within: Duration::from_secs(20),
        platform.sink.received().len() == 10,
        "every email is sent"
    );
    platform.stop().await;
}

#[tokio::test]
async fn a_claim_left_by_a_replica_that_died_mid_send_expires_and_the_email_is_sent_once() {
    let platform = Platform::start(1).await;
    // What a replica that died while sending leaves behind: a live claim.
    let mut redis = platform.sandbox.redis().await.expect("redis");
    let _: () = redis::cmd("SET")
        .arg(format!("cl:{{{}}}:ntf:n:n-orphan", crate::harness::TENANT))
        .arg("claimed:replica-that-died")
        .arg("PX")
        .arg(1_500)
        .query_async(&mut redis)
        .await
        .expect("stale claim written");
    platform
        .publish(&request("n-orphan", "receipt", "en"))
        .await;

    assert_eventually!(
        within: RETRY_DEADLINE,
        platform.mail_for("n-orphan").len() == 1,
        "the email is sent once the dead replica's claim lapses"
    );
    platform.settled(RETRY_DEADLINE).await;
    assert_eq!(platform.mail_for("n-orphan").len(), 1);
    platform.stop().await;
}

#[tokio::test]
async fn health_reports_serving_for_the_notification_service() {
    let platform = Platform::start(1).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", platform.addr()))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "careline.v1.NotificationService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    platform.stop().await;
}

#[tokio::test]
async fn a_burst_of_requests_through_two_replicas_sends_each_email_once() {
    const NOTIFICATIONS: usize = 300;
    let platform = Platform::start(2).await;
    let started = Instant::now();
    for n in 0..NOTIFICATIONS {
        platform
            .publish(&request(&format!("n-burst-{n}"), "receipt", "en"))
            .await;
    }
    assert_eventually!(
        within: Duration::from_secs(60),
        platform.sink.received().len() >= NOTIFICATIONS,
        "every email is sent"
    );
    let took = started.elapsed();
    println!(
        "{NOTIFICATIONS} emails through 2 replicas to the SMTP sink in {took:?} ({:.0} emails/s, publishing included)",
        NOTIFICATIONS as f64 / took.as_secs_f64()
    );
    platform.settled(RETRY_DEADLINE).await;
    let mut ids: Vec<String> = platform
        .sink
        .received()
        .iter()
        .filter_map(|mail| mail.header(careline_notifications::NOTIFICATION_ID_HEADER))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), NOTIFICATIONS);
    assert_eq!(platform.sink.received().len(), NOTIFICATIONS);
    platform.stop().await;
}

#[tokio::test]
async fn a_tenant_with_its_own_template_gets_mail_from_it_and_another_tenant_the_default() {
    let platform = Platform::start_with_other_tenant(|other| {
        let own = careline_domain::tenant::TemplateOverride {
            subject: Some("{{ tenant_name }} has your note".into()),
            text: Some("Hi, {{ tenant_name }} will answer soon (ref {{ interaction_id }}).".into()),
            html: Some("<p class=\"own\">{{ subject }}: ref {{ interaction_id }}</p>".into()),
        };
        other.email.templates.insert(
            "receipt".into(),
            [(careline_domain::Language::En, own)].into_iter().collect(),
        );
    })
    .await;
    let mut own = request("n-own-en", "receipt", "en");
    own.tenant_id = "other-plan".into();
    let mut own_es = request("n-own-es", "receipt", "es");
    own_es.tenant_id = "other-plan".into();
    platform.publish(&own).await;
    platform.publish(&own_es).await;
    platform
        .publish(&request("n-default-en", "receipt", "en"))
        .await;

    assert_eventually!(
        ["n-own-en", "n-own-es", "n-default-en"]
            .iter()
            .all(|id| platform.mail_for(id).len() == 1),
        "the three emails arrive"
    );
    let own = &platform.mail_for("n-own-en")[0];
    assert_eq!(
        own.header("Subject").as_deref(),
        Some("Other Plan has your note")
    );
    let body = own.decoded();
    assert!(
        body.contains("Hi, Other Plan will answer soon (ref ix-42)."),
        "{body}"
    );
    assert!(
        body.contains("<p class=\"own\">Other Plan has your note: ref ix-42</p>"),
        "{body}"
    );
    assert!(!body.contains("Thank you for writing"), "{body}");

    let own_es = &platform.mail_for("n-own-es")[0];
    assert_eq!(
        own_es.header("Subject").as_deref(),
        Some("Recibimos su mensaje"),
        "a language the tenant did not override keeps the default"
    );
    let default = &platform.mail_for("n-default-en")[0];
    assert_eq!(
        default.header("Subject").as_deref(),
        Some("We received your message")
    );
    assert!(
        default
            .decoded()
            .contains("Thank you for writing to Demo Health Plan."),
        "{}",
        default.data
    );
    platform.stop().await;
}
