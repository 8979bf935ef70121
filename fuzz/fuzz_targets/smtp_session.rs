//! Fuzzes the SMTP command state machine: any bytes, split into lines, as one
//! client's commands. No panic; every reply is a valid SMTP code; an envelope
//! exists only after DATA was accepted, with at most MAX_RECIPIENTS recipients
//! of one tenant; the session is idle after it.

#![no_main]

use careline_email_intake::smtp::session::{MAX_RECIPIENTS, Next, Recipients, Session};
use libfuzzer_sys::fuzz_target;

struct Tenants;

impl Recipients for Tenants {
    fn tenant_for(&self, address: &str) -> Option<String> {
        let (_, domain) = address.rsplit_once('@')?;
        match domain.to_ascii_lowercase().as_str() {
            "a.example" => Some("a".into()),
            "b.example" => Some("b".into()),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new("mx.fuzz", 1000, true);
    for line in data.split(|&b| b == b'\n') {
        let next = session.command(line, &Tenants);
        let reply = match &next {
            Next::Reply(r) | Next::StartTls(r) | Next::Data(r) | Next::Close(r) => r,
        };
        // RFC 5321 reply codes run from 211 to 555 (555: MAIL/RCPT parameters not recognized).
        assert!((200..=555).contains(&reply.code), "{reply:?}");
        assert!(!reply.lines.is_empty());
        match next {
            Next::Data(_) => {
                let envelope = session.take_envelope().expect("DATA only with an envelope");
                assert!(!envelope.recipients.is_empty());
                assert!(envelope.recipients.len() <= MAX_RECIPIENTS);
                assert!(
                    envelope
                        .recipients
                        .iter()
                        .all(|r| Tenants.tenant_for(r).as_deref() == Some(envelope.tenant.as_str()))
                );
                assert!(session.take_envelope().is_none());
            }
            Next::StartTls(_) => session.tls_started(),
            Next::Close(_) => return,
            Next::Reply(_) => {}
        }
    }
});
