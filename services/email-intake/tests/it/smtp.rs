//! SMTP in: lettre (a real client) and a raw client against the listener.

use careline_proto::v1;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::harness::{DEMO_ADDRESS, Platform, RawSmtp, email_client, mail};

fn member_mail(message_id: &str, subject: &str, body: &str) -> Message {
    Message::builder()
        .from("Pat Member <pat@member.example>".parse().unwrap())
        .to(DEMO_ADDRESS.parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn lettre_mail_to_the_demo_address_becomes_an_email_interaction_with_its_thread() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(intake.smtp.port())
        .build();
    let response = transport
        .send(member_mail(
            "first@member.example",
            "Mi tarjeta",
            "¿Cuándo llega mi tarjeta nueva?\n\n-- \nPat",
        ))
        .await
        .expect("accepted");
    assert_eq!(u16::from(response.code()), 250);

    let interactions = platform.wait_for_email_interactions(1).await;
    let interaction = &interactions[0];
    assert_eq!(interaction.queue_id, "general");
    let context = interaction.context.clone().unwrap();
    assert_eq!(context.reason, "email");
    assert!(
        context.summary.starts_with("Mi tarjeta"),
        "{:?}",
        context.summary
    );
    assert!(
        !interaction.member_ref.contains("pat"),
        "the member is opaque"
    );

    let mut email = email_client(&intake, careline_testkit::demo::API_KEY).await;
    let thread = email
        .get_thread(v1::GetThreadRequest {
            interaction_id: interaction.id.clone(),
        })
        .await
        .expect("thread")
        .into_inner();
    let inbound: Vec<_> = thread
        .messages
        .iter()
        .filter(|m| m.direction == v1::EmailDirection::Inbound as i32)
        .collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        inbound[0].body, "¿Cuándo llega mi tarjeta nueva?",
        "signature trimmed, accents kept"
    );
    assert_eq!(inbound[0].message_id, "first@member.example");
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn starttls_with_a_configured_certificate_carries_the_message() {
    let platform = Platform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let intake = platform
        .intake_with(|config| {
            config.smtp_tls_cert = Some(dir.path().join("cert.pem"));
            config.smtp_tls_key = Some(dir.path().join("key.pem"));
        })
        .await;
    let tls = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(intake.smtp.port())
        .tls(Tls::Required(tls))
        .build();
    transport
        .send(member_mail(
            "tls@member.example",
            "Over TLS",
            "Encrypted hello",
        ))
        .await
        .expect("accepted over STARTTLS");
    platform.wait_for_email_interactions(1).await;

    // Without the certificate trusted, the client refuses rather than sending in the clear.
    let untrusted = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(intake.smtp.port())
        .tls(Tls::Required(
            TlsParameters::builder("localhost".to_owned())
                .build()
                .unwrap(),
        ))
        .build();
    assert!(
        untrusted
            .send(member_mail("x@member.example", "x", "x"))
            .await
            .is_err()
    );
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn recipients_outside_every_tenant_are_refused_550_so_it_is_no_relay() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(intake.smtp.port())
        .build();
    let relay_attempt = Message::builder()
        .from("spammer@bad.example".parse().unwrap())
        .to("victim@elsewhere.example".parse().unwrap())
        .subject("relay me")
        .body("x".to_owned())
        .unwrap();
    let error = transport.send(relay_attempt).await.unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert_eq!(error.status().map(u16::from), Some(550));
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_552_and_the_connection_goes_on() {
    let platform = Platform::start().await;
    let intake = platform
        .intake_with(|config| config.max_message_bytes = 64 * 1024)
        .await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    assert_eq!(smtp.command("EHLO client.test").await, 250);
    assert_eq!(
        smtp.command("MAIL FROM:<a@member.example> SIZE=31457280")
            .await,
        552
    );
    // A client that does not declare the size is refused after the data.
    let body = "x".repeat(998) + "\r\n";
    let big = mail(
        "big@member.example",
        "a@member.example",
        "big",
        &body.repeat(30 * 1024),
    );
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &big).await, 552);
    let small = mail("small@member.example", "a@member.example", "small", "fits");
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &small).await, 250);
    assert_eq!(smtp.command("QUIT").await, 221);
    let interactions = platform.wait_for_email_interactions(1).await;
    assert_eq!(interactions.len(), 1);
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn without_jetstream_the_sender_gets_451_and_its_retry_is_accepted() {
    let mut platform = Platform::start().await;
    let intake = platform.intake().await;
    let raw = mail(
        "retry@member.example",
        "a@member.example",
        "retry",
        "please",
    );
    platform.sandbox.nats.kill();
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    assert_eq!(smtp.deliver(DEMO_ADDRESS, &raw).await, 451);
    platform
        .sandbox
        .nats
        .restart()
        .await
        .expect("nats restarts");
    careline_testkit::assert_eventually!(
        within: std::time::Duration::from_secs(30),
        {
            let mut smtp = RawSmtp::connect(intake.smtp).await;
            smtp.deliver(DEMO_ADDRESS, &raw).await == 250
        },
        "the retry is accepted"
    );
    platform.wait_for_email_interactions(1).await;
    intake.stop().await;
    platform.stop().await;
}
