//! `careline up` as a user runs it: starts, answers gRPC health and
//! `/metrics`, exports its services' spans to `--otlp-endpoint`, writes
//! requested emails where a person can read them, and on SIGTERM stops
//! cleanly, taking redis-server and nats-server down with it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use careline_testkit::{OtlpReceiver, eventually};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::{careline, demo_file, free_port};

/// Starting redis-server and nats-server and every service, on a loaded 2-core machine.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Draining every service and stopping both servers after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// A running `careline up`; on drop (a failed test) it is stopped with SIGTERM,
/// then SIGKILL, so its redis-server and nats-server do not outlive the test.
struct Up {
    child: Child,
    log: std::path::PathBuf,
}

impl Up {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("polling careline up")
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.terminate();
        let until = std::time::Instant::now() + STOP_DEADLINE;
        while self.exited().is_none() && std::time::Instant::now() < until {
            std::thread::sleep(careline_testkit::POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn router_serving(addr: SocketAddr) -> bool {
    grpc_serving(addr, "careline.v1.Router").await
}

/// Whether the server at `addr` reports itself and `named` SERVING.
async fn grpc_serving(addr: SocketAddr, named: &str) -> bool {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid endpoint")
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
    else {
        return false;
    };
    let mut health = HealthClient::new(channel);
    for service in ["", named] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        match health.check(request).await {
            Ok(reply) if reply.get_ref().status == ServingStatus::Serving as i32 => {}
            _ => return false,
        }
    }
    true
}

/// The status line and body of `GET <path>`.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The first line email-intake's SMTP listener sends.
fn smtp_greeting(addr: SocketAddr) -> std::io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut line)?;
    Ok(line)
}

fn refuses_connections(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// The OpenTelemetry SDK's batch delay, shortened so spans arrive promptly.
const BATCH_DELAY_MS: &str = "200";

fn start(data_dir: &Path, ports: &Ports, otlp_endpoint: &str) -> Up {
    let log = data_dir.join("careline-up.log");
    let out = std::fs::File::create(&log).expect("creating the log file");
    let err = out.try_clone().unwrap();
    let child = careline()
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir.join("data"))
        .args(["--redis-port", &ports.redis.to_string()])
        .args(["--nats-port", &ports.nats.to_string()])
        .args(["--router-addr", &ports.router.to_string()])
        .args(["--presence-addr", &ports.presence.to_string()])
        .args(["--notifications-addr", &ports.notifications.to_string()])
        .args(["--metrics-addr", &ports.metrics.to_string()])
        .args(["--email-addr", &ports.email.to_string()])
        .args(["--smtp-addr", &ports.smtp.to_string()])
        .args(["--chat-addr", &ports.chat.to_string()])
        .args(["--chat-http-addr", &ports.chat_http.to_string()])
        .args(["--console-addr", &ports.console.to_string()])
        .args(["--console-http-addr", &ports.console_http.to_string()])
        .args(["--campaigns-addr", &ports.campaigns.to_string()])
        .args(["--otlp-endpoint", otlp_endpoint])
        .env("OTEL_BSP_SCHEDULE_DELAY", BATCH_DELAY_MS)
        .arg("--tenant")
        .arg(demo_file())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starting careline up");
    Up { child, log }
}

struct Ports {
    redis: u16,
    nats: u16,
    router: SocketAddr,
    presence: SocketAddr,
    notifications: SocketAddr,
    metrics: SocketAddr,
    email: SocketAddr,
    smtp: SocketAddr,
    chat: SocketAddr,
    chat_http: SocketAddr,
    console: SocketAddr,
    console_http: SocketAddr,
    campaigns: SocketAddr,
}

/// The `.eml` files in `dir`.
fn mail_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn up_serves_health_metrics_and_traces_then_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start().await.expect("OTLP receiver starts");
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let ports = Ports {
        redis: free_port(),
        nats: free_port(),
        router: loopback(free_port()),
        presence: loopback(free_port()),
        notifications: loopback(free_port()),
        metrics: loopback(free_port()),
        email: loopback(free_port()),
        smtp: loopback(free_port()),
        chat: loopback(free_port()),
        chat_http: loopback(free_port()),
        console: loopback(free_port()),
        console_http: loopback(free_port()),
        campaigns: loopback(free_port()),
    };
    let mut up = start(dir.path(), &ports, &receiver.endpoint());

    let ready = eventually(START_DEADLINE, "router health SERVING", || {
        let exited = up.exited();
        async move { exited.is_some() || router_serving(ports.router).await }
    })
    .await;
    if let Err(e) = ready {
        panic!("{e}; careline up output:\n{}", up.log());
    }
    assert!(
        up.exited().is_none(),
        "careline up exited early:\n{}",
        up.log()
    );

    let greeting = smtp_greeting(ports.smtp).expect("SMTP answers");
    assert!(
        greeting.starts_with("220 "),
        "SMTP greeted with {greeting:?}"
    );

    let campaigns = eventually(START_DEADLINE, "campaigns health SERVING", || {
        grpc_serving(ports.campaigns, "careline.v1.CampaignService")
    })
    .await;
    if let Err(e) = campaigns {
        panic!("{e}; careline up output:\n{}", up.log());
    }

    let metrics = http_get(ports.metrics, "/metrics").expect("GET /metrics");
    assert!(
        metrics.starts_with("HTTP/1.1 200"),
        "GET /metrics answered:\n{metrics}"
    );
    let demo_url = format!("http://{}/demo", ports.chat_http);
    assert!(up.log().contains(&demo_url), "the chat demo URL is printed");
    let demo_served = eventually(START_DEADLINE, "GET /demo answers 200", || {
        let answer = http_get(ports.chat_http, "/demo");
        std::future::ready(answer.is_ok_and(|page| page.starts_with("HTTP/1.1 200")))
    })
    .await;
    if let Err(e) = demo_served {
        panic!("{e}; careline up output:\n{}", up.log());
    }
    let widget = http_get(ports.chat_http, "/widget.js").expect("GET /widget.js");
    assert!(
        widget.starts_with("HTTP/1.1 200") && widget.contains("text/javascript"),
        "GET /widget.js answered:\n{widget}"
    );

    let floor_url = format!("http://{}/floor", ports.console_http);
    assert!(
        up.log().contains(&floor_url),
        "the floor view URL is printed"
    );
    let floor_served = eventually(START_DEADLINE, "GET /floor shows the sign-in", || {
        let answer = http_get(ports.console_http, "/floor");
        std::future::ready(answer.is_ok_and(|page| {
            page.starts_with("HTTP/1.1 200") && page.contains("Supervisor sign-in")
        }))
    })
    .await;
    if let Err(e) = floor_served {
        panic!("{e}; careline up output:\n{}", up.log());
    }

    // A receipt requested on the bus lands in the mail directory up printed.
    let log = up.log();
    let mail_dir = dir.path().join("data").join("mail");
    assert!(log.contains(&mail_dir.display().to_string()), "{log}");
    let requested = careline()
        .args([
            "notify",
            "--nats-url",
            &format!("nats://127.0.0.1:{}", ports.nats),
        ])
        .args([
            "--template",
            "receipt",
            "--language",
            "es",
            "--id",
            "up-receipt-1",
        ])
        .args(["--to", "pat.member@example.org"])
        .output()
        .expect("running careline notify");
    assert!(
        requested.status.success(),
        "careline notify failed: {requested:?}"
    );
    let written = eventually(START_DEADLINE, "the receipt is written as .eml", || {
        std::future::ready(mail_files(&mail_dir).len() == 1)
    })
    .await;
    if let Err(e) = written {
        panic!("{e}; careline up output:\n{}", up.log());
    }
    let mail = &mail_files(&mail_dir)[0];
    assert!(
        mail.contains("Message-ID: <up-receipt-1@demo-health.example>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: Recibimos su mensaje"), "{mail}");

    // The notifications service, run by `careline up`, exported its span of
    // that send, without the address it went to.
    let exported = eventually(START_DEADLINE, "the send's span is exported", || {
        let spans = receiver.spans();
        std::future::ready(
            spans
                .iter()
                .any(|s| s.service == "careline" && s.name == "notification.send"),
        )
    })
    .await;
    if let Err(e) = exported {
        panic!(
            "{e}; careline up output:
{}",
            up.log()
        );
    }
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .flat_map(|s| s.texts())
            .all(|text| !text.contains("pat.member")),
        "no span carries the member's address"
    );

    up.terminate();
    let mut status = None;
    let stopped = eventually(STOP_DEADLINE, "careline up exits after SIGTERM", || {
        status = up.exited();
        std::future::ready(status.is_some())
    })
    .await;
    if let Err(e) = stopped {
        panic!("{e}; careline up output:\n{}", up.log());
    }
    let log = up.log();
    assert!(
        status.expect("exited").success(),
        "careline up failed on SIGTERM ({status:?}):\n{log}"
    );
    assert!(log.contains("stopped every service"), "{log}");
    for (what, port) in [
        ("redis-server", ports.redis),
        ("nats-server", ports.nats),
        ("router", ports.router.port()),
        ("notifications", ports.notifications.port()),
        ("email-intake", ports.email.port()),
        ("smtp", ports.smtp.port()),
        ("chat-gateway", ports.chat.port()),
        ("chat-gateway http", ports.chat_http.port()),
        ("console", ports.console.port()),
        ("console http", ports.console_http.port()),
        ("campaigns", ports.campaigns.port()),
        ("metrics", ports.metrics.port()),
    ] {
        assert!(
            refuses_connections(port),
            "{what} still listens on port {port} after careline up exited:\n{log}"
        );
    }
}
