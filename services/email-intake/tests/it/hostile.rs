//! A hostile corpus over SMTP: every message gets the right reply code, and
//! every message answered 250 becomes an interaction (never a panic, never lost).

use careline_proto::v1;
use careline_testkit::demo::API_KEY as DEMO_KEY;

use crate::harness::{DEMO_ADDRESS, Platform, RawSmtp, email_client};

/// (name, raw message) pairs that must all be accepted and routed.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let to = format!("To: {DEMO_ADDRESS}\r\n");
    let with = |id: &str, rest: &[u8]| {
        let mut raw =
            format!("Message-ID: <{id}@hostile.example>\r\nFrom: m@member.example\r\n{to}")
                .into_bytes();
        raw.extend_from_slice(rest);
        raw
    };
    vec![
        (
            "broken multipart",
            with("mime", b"Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhalf a part\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64%%%\r\n"),
        ),
        (
            "wrong charset label",
            with("charset", b"Subject: =?utf-8?Q?Se=F1or?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe\xf1or, \xbfd\xf3nde est\xe1 mi tarjeta?\r\n"),
        ),
        (
            "unknown charset",
            with("unknown", b"Subject: x\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nnuqneH\r\n"),
        ),
        ("NUL bytes", with("nul", b"Subject: nul\0here\r\n\r\nbody\0with\0nuls\r\n")),
        ("bare LF", with("barelf", b"Subject: bare\n\nline one\nline two\n.\nstill data\n")),
        (
            "header injection in the subject",
            with("inject", b"Subject: =?utf-8?Q?hi=0D=0ABcc:_victim@elsewhere.example?=\r\n\r\nbody\r\n"),
        ),
        ("no headers", b"just some text, no header at all\r\n".to_vec()),
        (
            "huge header line",
            with("longheader", format!("Subject: {}\r\n\r\nbody\r\n", "s".repeat(20_000)).as_bytes()),
        ),
        (
            "deep nesting",
            with("nest", format!("Subject: nest\r\n{}", "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n".repeat(200)).as_bytes()),
        ),
    ]
}

#[tokio::test]
async fn hostile_messages_are_accepted_and_routed_without_loss() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let corpus = corpus();
    for (name, raw) in &corpus {
        let mut smtp = RawSmtp::connect(intake.smtp).await;
        assert_eq!(smtp.deliver(DEMO_ADDRESS, raw).await, 250, "{name}");
        assert_eq!(smtp.command("QUIT").await, 221, "{name}");
    }
    let interactions = platform.wait_for_email_interactions(corpus.len()).await;
    assert_eq!(interactions.len(), corpus.len());
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
    // The injected CRLF never reaches a header of ours.
    for interaction in &interactions {
        let thread = email
            .get_thread(v1::GetThreadRequest {
                interaction_id: interaction.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for message in &thread.messages {
            assert!(
                !message.subject.contains(['\r', '\n']),
                "{:?}",
                message.subject
            );
        }
    }
    intake.stop().await;
    platform.stop().await;
}

#[tokio::test]
async fn protocol_abuse_gets_the_right_codes_and_the_server_keeps_serving() {
    let platform = Platform::start().await;
    let intake = platform.intake().await;
    let mut smtp = RawSmtp::connect(intake.smtp).await;
    assert_eq!(
        smtp.command(&format!("EHLO {}", "h".repeat(2000))).await,
        500,
        "line too long"
    );
    assert_eq!(smtp.command("EHLO client.test").await, 250);
    assert_eq!(smtp.command("MAIL FROM:<a@member.example>").await, 250);
    // 10,000 recipients: the first 100 of the tenant are taken, the rest deferred.
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..10_000 {
        let recipient = if i == 0 {
            DEMO_ADDRESS.to_owned()
        } else {
            format!("r{i}@elsewhere.example")
        };
        *codes
            .entry(smtp.command(&format!("RCPT TO:<{recipient}>")).await)
            .or_insert(0) += 1;
    }
    assert_eq!(codes.get(&250), Some(&1));
    assert_eq!(codes.get(&550), Some(&9_999), "{codes:?}");
    assert_eq!(smtp.command("RSET").await, 250);
    // Pipelined commands with NUL and a bare CR are refused one by one.
    smtp.send(b"NOOP\0\r\nMAIL FROM:<a@b>\rRCPT TO:<x>\r\nNOOP\r\n")
        .await;
    assert_eq!(smtp.reply().await, 500);
    assert_eq!(smtp.reply().await, 500);
    assert_eq!(smtp.reply().await, 250);
    assert_eq!(smtp.command("QUIT").await, 221);
    // Still serving.
    let mut again = RawSmtp::connect(intake.smtp).await;
    assert_eq!(again.command("NOOP").await, 250);
    intake.stop().await;
    platform.stop().await;
}
