//! `careline-email-bench`: how fast email-intake takes mail. Prints numbers; it
//! is not a test.
//!
//! 1. Parsing on one core: messages/s parsed and classified (email-intake's
//!    parse path: mail-parser, HTML to text, trimming, threading ids,
//!    loop-protection headers; then `careline_domain::classify` of the subject
//!    and trimmed body, as the router reads them, with the demo tenant's
//!    topics) beside bare mail-parser (parse + first text body) on the same
//!    corpus, in the same run: the ratio is the figure. Parsing without
//!    classifying is printed between the two.
//! 2. SMTP end to end: a local redis-server and nats-server, a router and
//!    email-intake in this process, `--connections` SMTP clients sending
//!    `--messages` distinct messages; messages/s answered 250 (durable in
//!    JetStream) and messages/s until every one is an interaction in the router.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use careline_domain::classify::classify;
use careline_email_intake::EmailIntakeConfig;
use careline_email_intake::config::RouterKeys;
use careline_kit::{CommonConfig, Shutdown};
use careline_localdev::{NatsServer, RedisServer};
use careline_proto::v1;
use careline_proto::v1::router_client::RouterClient;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The demo tenant file, as shipped.
const DEMO_YAML: &str = include_str!("../../deploy/tenants/demo-health.yaml");
/// The demo tenant's local-only API key (its digest is in the file).
const DEMO_KEY: &str = "demo-health-key-0000000000000000";
/// The demo tenant's inbound address.
const DEMO_ADDRESS: &str = "members@demo-health.example";
/// Messages of each shape in the parsing corpus.
const CORPUS_PER_SHAPE: usize = 200;
/// How long the end-to-end phase waits for the router to hold every interaction.
const ROUTED_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Parser)]
#[command(
    name = "careline-email-bench",
    about = "email-intake parsing and SMTP throughput"
)]
struct Args {
    /// Seconds each parsing measurement runs.
    #[arg(long, default_value_t = 3)]
    parse_secs: u64,
    /// Messages sent over SMTP in the end-to-end phase.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Concurrent SMTP connections in the end-to-end phase.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let demo = careline_domain::TenantConfig::from_yaml(DEMO_YAML)?;
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    println!(
        "corpus: {} messages, {} shapes, {:.1} KiB average",
        corpus.len(),
        corpus.len() / CORPUS_PER_SHAPE,
        bytes as f64 / corpus.len() as f64 / 1024.0
    );
    let window = Duration::from_secs(args.parse_secs);
    let bare = rate(&corpus, window, |raw| {
        let message = mail_parser::MessageParser::default().parse(raw);
        message
            .and_then(|m| m.body_text(0).map(|t| t.len()))
            .unwrap_or(0)
    });
    let parsed = rate(&corpus, window, |raw| {
        careline_email_intake::message::parse(raw).new_text.len()
    });
    let topics = &demo.routing.topics;
    let classified = rate(&corpus, window, |raw| {
        let email = careline_email_intake::message::parse(raw);
        let found = classify(&careline_email_intake::intake::summary(&email), topics);
        usize::from(found.urgent.is_some()) + found.topic.map_or(0, |t| t.queue.len())
    });
    println!("parse, one core:");
    println!("  bare mail-parser (parse + first text body)        {bare:>9.0} msg/s");
    println!(
        "  email-intake parse (+ trim, headers)              {parsed:>9.0} msg/s  ({:.2}x of bare)",
        parsed / bare
    );
    println!(
        "  email-intake parse + classify (subject + trimmed) {classified:>9.0} msg/s  ({:.2}x of bare)",
        classified / bare
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(end_to_end(&args))
}

/// Messages/s of `work` over `corpus`, single-threaded, for about `window`.
fn rate(corpus: &[Vec<u8>], window: Duration, work: impl Fn(&[u8]) -> usize) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    let mut sink = 0usize;
    while started.elapsed() < window {
        for raw in corpus {
            sink = sink.wrapping_add(work(raw));
        }
        done += corpus.len() as u64;
    }
    std::hint::black_box(sink);
    done as f64 / started.elapsed().as_secs_f64()
}

/// Member mail of several shapes: plain English, Spanish in quoted-printable
/// Latin-1, HTML only, a reply with quoted history and a signature, and a
/// multipart message with a 20 KiB base64 attachment.
fn corpus() -> Vec<Vec<u8>> {
    let attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(560);
    let mut corpus = Vec::new();
    for i in 0..CORPUS_PER_SHAPE {
        let head = |extra: &str| {
            format!(
                "Message-ID: <{extra}-{i}@member.example>\r\nFrom: Member {i} <m{i}@member.example>\r\nTo: {DEMO_ADDRESS}\r\nSubject: Question {i} about my claim\r\nMIME-Version: 1.0\r\n"
            )
        };
        corpus.push(format!("{}Content-Type: text/plain; charset=utf-8\r\n\r\nHello, my claim {i} was denied and I do not understand why. Can someone call me back?\r\n", head("plain")).into_bytes());
        let mut spanish = head("es").into_bytes();
        spanish.extend_from_slice(b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=BFCu=E1ndo llega mi tarjeta? Necesito ver al m=E9dico ma=F1ana.\r\n");
        corpus.push(spanish);
        corpus.push(format!("{}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>I need a <b>new</b> primary care doctor near {i} Main St.</p><p>Thanks</p></body></html>\r\n", head("html")).into_bytes());
        corpus.push(format!("{}In-Reply-To: <reply-{i}@demo-health.example>\r\nReferences: <first-{i}@member.example> <reply-{i}@demo-health.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks, that helps.\r\n\r\n-- \r\nMember {i}\r\n\r\nOn Mon, Nov 23, 2026 at 9:00 AM Demo Health wrote:\r\n> Your claim was paid on Friday.\r\n> Regards\r\n", head("reply")).into_bytes());
        corpus.push(format!("{}Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMy card is attached.\r\n--b{i}\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"card.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}--b{i}--\r\n", head("attach")).into_bytes());
    }
    corpus
}

async fn end_to_end(args: &Args) -> anyhow::Result<()> {
    let redis = RedisServer::start()
        .await
        .context("starting redis-server")?;
    let nats = NatsServer::start().await.context("starting nats-server")?;
    let common = CommonConfig {
        redis_url: redis.url(),
        nats_url: nats.url(),
        ..CommonConfig::default()
    };
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let tenants = careline_bus::TenantStore::open(&js, None).await?;
    let mut demo = careline_domain::TenantConfig::from_yaml(DEMO_YAML)?;
    demo.hours.clear();
    tenants.put(&demo).await?;
    let shutdown = Shutdown::new();
    let router_listener = TcpListener::bind("127.0.0.1:0").await?;
    let router_addr = router_listener.local_addr()?;
    let router = tokio::spawn(careline_router::serve(
        careline_router::RouterConfig::with_common(common.clone()),
        router_listener,
        shutdown.clone(),
    ));
    let mut config = EmailIntakeConfig::with_common(common);
    config.router_url = format!("http://{router_addr}");
    config.router_api_keys = format!("demo-health={DEMO_KEY}")
        .parse::<RouterKeys>()
        .map_err(anyhow::Error::msg)?;
    let smtp_listener = TcpListener::bind("127.0.0.1:0").await?;
    let smtp_addr = smtp_listener.local_addr()?;
    let intake = tokio::spawn(careline_email_intake::serve_with_smtp(
        config,
        TcpListener::bind("127.0.0.1:0").await?,
        smtp_listener,
        shutdown.clone(),
    ));
    let mut router_client = RouterClient::connect(format!("http://{router_addr}")).await?;
    wait_until(Duration::from_secs(30), || async {
        smtp_greets(smtp_addr).await
    })
    .await
    .context("email-intake did not start")?;

    let started = Instant::now();
    let per_connection = args.messages.div_ceil(args.connections);
    let mut senders = tokio::task::JoinSet::new();
    for connection in 0..args.connections {
        let first = connection * per_connection;
        let last = (first + per_connection).min(args.messages);
        senders.spawn(send_messages(smtp_addr, first..last));
    }
    let mut accepted = 0usize;
    while let Some(sent) = senders.join_next().await {
        accepted += sent??;
    }
    let accept_secs = started.elapsed().as_secs_f64();
    println!(
        "SMTP end to end ({} connections, {} messages):",
        args.connections, args.messages
    );
    println!(
        "  accepted (250, durable in JetStream)  {:>9.0} msg/s  ({accepted} in {accept_secs:.2} s)",
        accepted as f64 / accept_secs
    );
    let routed = wait_routed(&mut router_client, accepted).await?;
    let routed_secs = started.elapsed().as_secs_f64();
    println!(
        "  routed (interactions in the router)   {:>9.0} msg/s  ({routed} in {routed_secs:.2} s)",
        routed as f64 / routed_secs
    );
    shutdown.trigger();
    router.await??;
    intake.await??;
    Ok(())
}

async fn smtp_greets(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let mut io = BufReader::new(stream);
    let mut line = String::new();
    io.read_line(&mut line).await.is_ok() && line.starts_with("220")
}

async fn wait_until<F, Fut>(deadline: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !check().await {
        anyhow::ensure!(Instant::now() < until, "not within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Sends messages `ids` over one SMTP connection; returns how many got 250.
async fn send_messages(addr: SocketAddr, ids: std::ops::Range<usize>) -> anyhow::Result<usize> {
    let mut io = BufReader::new(TcpStream::connect(addr).await?);
    let mut reply = String::new();
    let mut code = async |io: &mut BufReader<TcpStream>| -> anyhow::Result<u16> {
        loop {
            reply.clear();
            io.read_line(&mut reply).await?;
            if reply.as_bytes().get(3) != Some(&b'-') {
                return Ok(reply.get(..3).unwrap_or("0").parse()?);
            }
        }
    };
    code(&mut io).await?;
    io.get_mut().write_all(b"EHLO bench.example\r\n").await?;
    code(&mut io).await?;
    let mut accepted = 0;
    for id in ids {
        let message =
            format!("MAIL FROM:<m{id}@member.example>\r\nRCPT TO:<{DEMO_ADDRESS}>\r\nDATA\r\n");
        io.get_mut().write_all(message.as_bytes()).await?;
        for _ in 0..3 {
            code(&mut io).await?;
        }
        let body = format!(
            "Message-ID: <bench-{id}@member.example>\r\nFrom: m{id}@member.example\r\nTo: {DEMO_ADDRESS}\r\nSubject: Claim {id}\r\n\r\nMy claim {id} was denied; please help.\r\n.\r\n"
        );
        io.get_mut().write_all(body.as_bytes()).await?;
        if code(&mut io).await? == 250 {
            accepted += 1;
        }
    }
    io.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(accepted)
}

/// Waits until the router holds `expected` email interactions; returns how many it holds.
async fn wait_routed(
    router: &mut RouterClient<tonic::transport::Channel>,
    expected: usize,
) -> anyhow::Result<usize> {
    let until = Instant::now() + ROUTED_DEADLINE;
    loop {
        let mut request = tonic::Request::new(v1::GetQueueStatsRequest {
            queue_id: "general".into(),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {DEMO_KEY}").parse()?);
        let stats = router.get_queue_stats(request).await?.into_inner();
        let waiting: usize = stats.queues.iter().map(|q| q.waiting as usize).sum();
        if waiting >= expected || Instant::now() >= until {
            return Ok(waiting);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
