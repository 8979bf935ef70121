//! The SMTP command state machine (RFC 5321, RFC 3207 STARTTLS, RFC 1870
//! SIZE), without I/O: a command line in, what to answer (and do) out.
//!
//! Only recipients a [`Recipients`] lookup knows (a tenant's inbound
//! addresses) are accepted, so the server is never an open relay; one message
//! goes to one tenant, so a recipient of a second tenant is deferred (452) and
//! the sender sends it again in its own transaction.

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Most recipients of one message (RFC 5321 4.5.3.1.8: at least 100 must be taken).
pub const MAX_RECIPIENTS: usize = 100;
/// Longest address (RFC 5321 4.5.3.1.3: a path is at most 256 octets).
pub const MAX_ADDRESS_LEN: usize = 256;
/// Unknown or out-of-order commands before the connection is closed (421).
pub const MAX_BAD_COMMANDS: u32 = 10;

/// One SMTP reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// The reply as sent on the wire: `250-first\r\n250 last\r\n`.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let separator = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{separator}{line}\r\n", self.code).as_bytes());
        }
        out
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// What the connection does after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Send the reply (220) and start the TLS handshake, then call [`Session::tls_started`].
    StartTls(Reply),
    /// Send the reply (354), read the message, then call [`Session::take_envelope`].
    Data(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
}

/// Which tenant receives mail at an address.
pub trait Recipients {
    /// The tenant whose inbound addresses include `address`, if any.
    fn tenant_for(&self, address: &str) -> Option<String>;
}

/// Sender and recipients of one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for a bounce (`MAIL FROM:<>`).
    pub mail_from: String,
    pub tenant: String,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before EHLO/HELO (also right after STARTTLS).
    Connected,
    /// Greeted, no transaction.
    Idle,
    /// MAIL FROM accepted; recipients so far.
    Transaction {
        mail_from: String,
        tenant: Option<String>,
        recipients: Vec<String>,
    },
}

/// One SMTP connection's protocol state.
#[derive(Debug)]
pub struct Session {
    hostname: String,
    max_message_bytes: usize,
    tls_available: bool,
    tls_active: bool,
    state: State,
    bad_commands: u32,
}

impl Session {
    /// A new connection; STARTTLS is offered when `tls_available`.
    pub fn new(hostname: &str, max_message_bytes: usize, tls_available: bool) -> Session {
        Session {
            hostname: hostname.to_owned(),
            max_message_bytes,
            tls_available,
            tls_active: false,
            state: State::Connected,
            bad_commands: 0,
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            format!("{} ESMTP Careline email-intake", self.hostname),
        )
    }

    /// Whether the connection is encrypted.
    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// The handshake after STARTTLS succeeded: everything learnt before is
    /// forgotten and the client greets again (RFC 3207 4.2).
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.state = State::Connected;
    }

    /// The envelope of the message just read after DATA; the session is idle again.
    pub fn take_envelope(&mut self) -> Option<Envelope> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Transaction {
                mail_from,
                tenant: Some(tenant),
                recipients,
            } => Some(Envelope {
                mail_from,
                tenant,
                recipients,
            }),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The reply to a command line too long to be one (and counts it as bad).
    pub fn line_too_long(&mut self) -> Next {
        self.bad(Reply::new(500, "5.5.6 Line too long"))
    }

    /// Handles one command line (without its line ending).
    pub fn command(&mut self, line: &[u8], recipients: &dyn Recipients) -> Next {
        let Ok(line) = std::str::from_utf8(line) else {
            return self.bad(Reply::new(500, "5.5.2 Command is not valid UTF-8"));
        };
        if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return self.bad(Reply::new(
                500,
                "5.5.2 Control characters are not allowed in commands",
            ));
        }
        let (verb, rest) = match line.split_once(' ') {
            Some((verb, rest)) => (verb, rest.trim()),
            None => (line.trim(), ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(rest, true),
            "HELO" => self.hello(rest, false),
            "MAIL" => self.mail(rest),
            "RCPT" => self.rcpt(rest, recipients),
            "DATA" => self.data(rest),
            "RSET" => {
                if self.state != State::Connected {
                    self.state = State::Idle;
                }
                Next::Reply(Reply::new(250, "2.0.0 OK"))
            }
            "NOOP" => Next::Reply(Reply::new(250, "2.0.0 OK")),
            "QUIT" => Next::Close(Reply::new(221, format!("2.0.0 {} closing", self.hostname))),
            "VRFY" => Next::Reply(Reply::new(
                252,
                "2.5.0 Cannot verify; send the message and it will be delivered or refused",
            )),
            "HELP" => Next::Reply(Reply::new(
                214,
                "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS",
            )),
            "STARTTLS" => self.starttls(rest),
            "" => self.bad(Reply::new(500, "5.5.2 Empty command")),
            _ => self.bad(Reply::new(500, "5.5.2 Command not recognized")),
        }
    }

    fn bad(&mut self, reply: Reply) -> Next {
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            Next::Close(Reply::new(421, "4.7.0 Too many errors; closing"))
        } else {
            Next::Reply(reply)
        }
    }

    fn hello(&mut self, domain: &str, extended: bool) -> Next {
        if domain.is_empty() || domain.contains(' ') {
            return self.bad(Reply::new(501, "5.5.4 Syntax: EHLO <your host name>"));
        }
        self.state = State::Idle;
        let greeting = format!("{} greets {domain}", self.hostname);
        if !extended {
            return Next::Reply(Reply::new(250, greeting));
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.max_message_bytes),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.tls_available && !self.tls_active {
            lines.push("STARTTLS".to_owned());
        }
        Next::Reply(Reply { code: 250, lines })
    }

    fn starttls(&mut self, rest: &str) -> Next {
        if !rest.is_empty() {
            return self.bad(Reply::new(501, "5.5.4 STARTTLS takes no parameters"));
        }
        if self.tls_active {
            return self.bad(Reply::new(503, "5.5.1 TLS is already active"));
        }
        if !self.tls_available {
            return self.bad(Reply::new(454, "4.7.0 TLS not available"));
        }
        if self.state == State::Connected {
            return self.bad(Reply::new(503, "5.5.1 Send EHLO first"));
        }
        Next::StartTls(Reply::new(220, "2.0.0 Ready to start TLS"))
    }

    fn mail(&mut self, rest: &str) -> Next {
        match self.state {
            State::Connected => return self.bad(Reply::new(503, "5.5.1 Send EHLO first")),
            State::Transaction { .. } => {
                return self.bad(Reply::new(503, "5.5.1 Sender already given; RSET first"));
            }
            State::Idle => {}
        }
        let Some((path, params)) = path_after(rest, "FROM:") else {
            return self.bad(Reply::new(501, "5.5.4 Syntax: MAIL FROM:<address>"));
        };
        for param in params.split_whitespace() {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            match name.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if size > self.max_message_bytes as u64 => {
                        return Next::Reply(Reply::new(
                            552,
                            format!(
                                "5.3.4 Message too big: the limit is {} bytes",
                                self.max_message_bytes
                            ),
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => return self.bad(Reply::new(501, "5.5.4 SIZE must be a number")),
                },
                "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
                _ => {
                    return self.bad(Reply::new(
                        555,
                        "5.5.4 MAIL parameter not recognized or not implemented",
                    ));
                }
            }
        }
        self.state = State::Transaction {
            mail_from: path.to_owned(),
            tenant: None,
            recipients: Vec::new(),
        };
        Next::Reply(Reply::new(250, "2.1.0 Sender OK"))
    }

    fn rcpt(&mut self, rest: &str, lookup: &dyn Recipients) -> Next {
        let State::Transaction {
            tenant, recipients, ..
        } = &mut self.state
        else {
            return self.bad(Reply::new(503, "5.5.1 Send MAIL FROM first"));
        };
        let Some((path, params)) = path_after(rest, "TO:") else {
            return self.bad(Reply::new(501, "5.5.4 Syntax: RCPT TO:<address>"));
        };
        if !params.is_empty() {
            return self.bad(Reply::new(
                555,
                "5.5.4 RCPT parameter not recognized or not implemented",
            ));
        }
        if recipients.len() >= MAX_RECIPIENTS {
            return Next::Reply(Reply::new(
                452,
                format!("4.5.3 Too many recipients: at most {MAX_RECIPIENTS} per message"),
            ));
        }
        // A source route (`@relay:user@host`) names hosts to pass through; the
        // mailbox is what follows the last ':' (RFC 5321 C).
        let mailbox = path.rsplit(':').next().unwrap_or(path);
        let Some(owner) = lookup.tenant_for(mailbox) else {
            return Next::Reply(Reply::new(
                550,
                "5.7.1 No such mailbox here; this server accepts mail only for its own addresses",
            ));
        };
        match tenant {
            Some(current) if *current != owner => Next::Reply(Reply::new(
                452,
                "4.5.3 Recipients of another organisation: send to it in a separate message",
            )),
            _ => {
                *tenant = Some(owner);
                if !recipients.iter().any(|r| r.eq_ignore_ascii_case(mailbox)) {
                    recipients.push(mailbox.to_owned());
                }
                Next::Reply(Reply::new(250, "2.1.5 Recipient OK"))
            }
        }
    }

    fn data(&mut self, rest: &str) -> Next {
        if !rest.is_empty() {
            return self.bad(Reply::new(501, "5.5.4 DATA takes no parameters"));
        }
        match &self.state {
            State::Transaction { recipients, .. } if !recipients.is_empty() => {
                Next::Data(Reply::new(354, "Start mail input; end with <CRLF>.<CRLF>"))
            }
            State::Transaction { .. } => Next::Reply(Reply::new(554, "5.5.1 No valid recipients")),
            _ => self.bad(Reply::new(503, "5.5.1 Send MAIL FROM and RCPT TO first")),
        }
    }
}

/// The `<path>` after `keyword` (case-insensitive) and the parameters after it;
/// `None` when the syntax is wrong or the path too long.
fn path_after<'a>(rest: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let after = rest[keyword.len()..].trim_start();
    let after = after.strip_prefix('<')?;
    let (path, params) = after.split_once('>')?;
    if path.len() > MAX_ADDRESS_LEN || path.contains(['<', ' ', '"']) && !path.starts_with('"') {
        return None;
    }
    Some((path, params.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Demo;

    impl Recipients for Demo {
        fn tenant_for(&self, address: &str) -> Option<String> {
            // Every mailbox of demo.example (so tests can use thousands).
            let address = address.to_ascii_lowercase();
            match address.split_once('@') {
                Some((local, "demo.example")) if !local.is_empty() => Some("demo".into()),
                _ if address == "members@other.example" => Some("other".into()),
                _ => None,
            }
        }
    }

    fn session() -> Session {
        Session::new("mx.test", 1000, true)
    }

    fn code(next: &Next) -> u16 {
        match next {
            Next::Reply(r) | Next::StartTls(r) | Next::Data(r) | Next::Close(r) => r.code,
        }
    }

    fn run(session: &mut Session, lines: &[&str]) -> Vec<u16> {
        lines
            .iter()
            .map(|line| code(&session.command(line.as_bytes(), &Demo)))
            .collect()
    }

    #[test]
    fn a_full_transaction_is_accepted_and_yields_the_envelope() {
        let mut s = session();
        let codes = run(
            &mut s,
            &[
                "EHLO client.test",
                "MAIL FROM:<pat@member.example> SIZE=100 BODY=8BITMIME",
                "RCPT TO:<Members@Demo.example>",
                "RCPT TO:<help@demo.example>",
                "DATA",
            ],
        );
        assert_eq!(codes, [250, 250, 250, 250, 354]);
        let envelope = s.take_envelope().unwrap();
        assert_eq!(envelope.tenant, "demo");
        assert_eq!(envelope.mail_from, "pat@member.example");
        assert_eq!(
            envelope.recipients,
            ["Members@Demo.example", "help@demo.example"]
        );
        // Idle again: a second message needs a new MAIL FROM.
        assert_eq!(run(&mut s, &["RCPT TO:<help@demo.example>"]), [503]);
    }

    #[test]
    fn unknown_recipients_are_refused_so_it_is_never_a_relay() {
        let mut s = session();
        let codes = run(
            &mut s,
            &[
                "EHLO c",
                "MAIL FROM:<a@b.example>",
                "RCPT TO:<victim@elsewhere.example>",
                "RCPT TO:<@demo.example:victim@elsewhere.example>",
                "RCPT TO:<members@demo.example@elsewhere.example>",
                "DATA",
            ],
        );
        assert_eq!(codes, [250, 250, 550, 550, 550, 554]);
    }

    #[test]
    fn a_second_tenants_recipient_is_deferred_to_its_own_message() {
        let mut s = session();
        let codes = run(
            &mut s,
            &[
                "EHLO c",
                "MAIL FROM:<a@b.example>",
                "RCPT TO:<members@demo.example>",
                "RCPT TO:<members@other.example>",
            ],
        );
        assert_eq!(codes, [250, 250, 250, 452]);
        assert_eq!(s.take_envelope().unwrap().recipients.len(), 1);
    }

    #[test]
    fn recipients_are_bounded() {
        let mut s = session();
        run(&mut s, &["EHLO c", "MAIL FROM:<a@b.example>"]);
        let mut accepted = 0;
        let mut deferred = 0;
        for i in 0..10_000 {
            match code(&s.command(format!("RCPT TO:<m{i}@demo.example>").as_bytes(), &Demo)) {
                250 => accepted += 1,
                452 => deferred += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(accepted, MAX_RECIPIENTS);
        assert_eq!(deferred, 10_000 - MAX_RECIPIENTS);
    }

    #[test]
    fn declared_size_over_the_limit_is_refused_with_552() {
        let mut s = session();
        assert_eq!(
            run(&mut s, &["EHLO c", "MAIL FROM:<a@b.example> SIZE=1001"]),
            [250, 552]
        );
        // The transaction did not start; a smaller one can.
        assert_eq!(run(&mut s, &["MAIL FROM:<a@b.example> SIZE=999"]), [250]);
    }

    #[test]
    fn commands_out_of_order_get_503() {
        let mut s = session();
        assert_eq!(
            run(
                &mut s,
                &[
                    "MAIL FROM:<a@b.example>",
                    "DATA",
                    "EHLO c",
                    "RCPT TO:<members@demo.example>"
                ]
            ),
            [503, 503, 250, 503]
        );
        assert_eq!(
            run(
                &mut s,
                &["MAIL FROM:<a@b.example>", "MAIL FROM:<a@b.example>"]
            ),
            [250, 503]
        );
    }

    #[test]
    fn bad_syntax_gets_501_or_555() {
        let mut s = session();
        let codes = run(
            &mut s,
            &[
                "EHLO",
                "EHLO c",
                "MAIL FROM:a@b.example",
                "MAIL FROM:<a@b.example> SIZE=lots",
                "MAIL FROM:<a@b.example> AUTH=<>",
                "MAIL TO:<a@b.example>",
            ],
        );
        assert_eq!(codes, [501, 250, 501, 501, 555, 501]);
    }

    #[test]
    fn null_reverse_path_is_a_valid_sender() {
        let mut s = session();
        assert_eq!(run(&mut s, &["HELO c", "MAIL FROM:<>"]), [250, 250]);
    }

    #[test]
    fn ehlo_advertises_size_and_starttls_until_tls_is_active() {
        let mut s = session();
        let Next::Reply(reply) = s.command(b"EHLO c", &Demo) else {
            panic!()
        };
        assert!(reply.lines.contains(&"SIZE 1000".to_owned()));
        assert!(reply.lines.contains(&"STARTTLS".to_owned()));
        assert!(matches!(s.command(b"STARTTLS", &Demo), Next::StartTls(_)));
        s.tls_started();
        // Greeting again is required after the handshake.
        assert_eq!(run(&mut s, &["MAIL FROM:<a@b.example>"]), [503]);
        let Next::Reply(reply) = s.command(b"EHLO c", &Demo) else {
            panic!()
        };
        assert!(!reply.lines.contains(&"STARTTLS".to_owned()));
        assert_eq!(run(&mut s, &["STARTTLS"]), [503]);
    }

    #[test]
    fn starttls_without_a_certificate_is_454() {
        let mut s = Session::new("mx.test", 1000, false);
        assert_eq!(run(&mut s, &["EHLO c", "STARTTLS"]), [250, 454]);
    }

    #[test]
    fn control_characters_and_invalid_utf8_are_refused() {
        let mut s = session();
        assert_eq!(code(&s.command(b"EHLO c\0", &Demo)), 500);
        assert_eq!(code(&s.command(b"EHLO \xff\xfe", &Demo)), 500);
        assert_eq!(code(&s.command(b"EHLO c\rMAIL FROM:<x>", &Demo)), 500);
    }

    #[test]
    fn too_many_errors_close_the_connection() {
        let mut s = session();
        for _ in 1..MAX_BAD_COMMANDS {
            assert_eq!(code(&s.command(b"BOGUS", &Demo)), 500);
        }
        assert!(matches!(s.command(b"BOGUS", &Demo), Next::Close(r) if r.code == 421));
    }

    #[test]
    fn quit_rset_noop_vrfy_answer_per_rfc() {
        let mut s = session();
        assert_eq!(
            run(&mut s, &["EHLO c", "NOOP", "VRFY x", "HELP", "RSET"]),
            [250, 250, 252, 214, 250]
        );
        assert!(matches!(s.command(b"quit", &Demo), Next::Close(r) if r.code == 221));
    }

    #[test]
    fn multiline_replies_use_dashes_until_the_last_line() {
        let reply = Reply {
            code: 250,
            lines: vec!["a".into(), "b".into()],
        };
        assert_eq!(reply.to_wire(), b"250-a\r\n250 b\r\n");
    }
}
