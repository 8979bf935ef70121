//! `careline-chat-bench`: what a member WebSocket costs the chat-gateway, beside a bare axum
//! WebSocket echo server (`careline-ws-echo`) in the same run. Prints numbers; it is not a test.
//!
//! 1. **Idle sockets**: `--sockets` members connect to each server and stay idle (on the gateway
//!    each has started a chat, so it holds a queued chat interaction; on the echo server each
//!    has had one frame echoed). Resident memory per socket = (VmRSS with the sockets - VmRSS
//!    before) / sockets, read from /proc/<pid>/status of the server process.
//! 2. **Latency**: `--chats` concurrent chats, each sending `--messages` messages one every
//!    `--every-ms`. On the gateway, member send -> the agent's ChatSession stream delivers it
//!    (through the transcript and NATS); on the echo server, send -> echo back. p50 / p99.
//!
//! The gateway runs as the release binary `careline-chat-gateway` next to this one, against a
//! redis-server, a nats-server, and a router and presence in this process; the idle chats
//! belong to a tenant without agents (they stay queued), the latency chats to one whose agents
//! (presence session + ChatSession each, chat capacity 10) take them all first.
//!
//! Both servers and the driver share the machine; the driver raises its open-file limit to the
//! hard limit (the servers inherit it) and refuses to start if it cannot hold the sockets.

mod agents;
mod members;
mod platform;
mod server;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::server::{ServerProcess, free_addr, sibling};

/// File descriptors a process needs besides its sockets (stdio, listeners, Redis, NATS, logs).
const SPARE_FDS: u64 = 256;
/// How long the servers settle after the last socket opened before memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// The aims (issue 15), printed beside the numbers: memory per idle socket, and its ratio to
/// the bare server's.
const MAX_KIB_PER_SOCKET: f64 = 50.0;
const MAX_RATIO: f64 = 1.5;

#[derive(Debug, Parser)]
#[command(
    name = "careline-chat-bench",
    about = "Memory per idle member socket and member->agent latency, chat-gateway vs bare axum echo"
)]
struct Args {
    /// Idle sockets opened against each server.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Concurrent chats in the latency phase.
    #[arg(long, default_value_t = 1_000)]
    chats: usize,
    /// Messages each chat sends in the latency phase.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Milliseconds between two messages of one chat.
    #[arg(long, default_value_t = 1_000)]
    every_ms: u64,
}

/// One server's figures.
#[derive(Debug, Default)]
struct Figures {
    rss_before_kib: u64,
    rss_with_sockets_kib: u64,
    latency_us: Option<Histogram<u64>>,
}

impl Figures {
    fn per_socket_kib(&self, sockets: usize) -> f64 {
        self.rss_with_sockets_kib
            .saturating_sub(self.rss_before_kib) as f64
            / sockets as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit(args.sockets)?;
    let echo_defaults = measure_echo(&args, false).await?;
    let echo_small = measure_echo(&args, true).await?;
    let gateway = measure_gateway(&args).await?;
    println!();
    report(
        "bare axum echo, default buffers",
        &echo_defaults,
        args.sockets,
    );
    report(
        "bare axum echo, gateway's buffers",
        &echo_small,
        args.sockets,
    );
    report("chat-gateway", &gateway, args.sockets);
    let per_gateway = gateway.per_socket_kib(args.sockets);
    println!(
        "memory per idle socket: chat-gateway {per_gateway:.1} KiB (aim <= {MAX_KIB_PER_SOCKET} KiB); \
         gateway / bare = {:.2} with the same buffers, {:.2} against axum's defaults (aim <= {MAX_RATIO})",
        per_gateway / echo_small.per_socket_kib(args.sockets),
        per_gateway / echo_defaults.per_socket_kib(args.sockets),
    );
    Ok(())
}

/// Raises this process's soft open-file limit to its hard limit (children inherit it) and
/// checks that the sockets fit: the driver holds one end of each, the server the other.
fn raise_fd_limit(sockets: usize) -> anyhow::Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let needed = sockets as u64 + SPARE_FDS;
    println!("open-file limit: soft {soft} -> {hard} (hard); each process needs about {needed}");
    if hard < needed {
        bail!(
            "the hard open-file limit {hard} is below the {needed} needed: raise it (ulimit -Hn, \
             /etc/security/limits.conf, or systemd LimitNOFILE) or pass a smaller --sockets"
        );
    }
    Ok(())
}

/// The bare echo server, with axum's default WebSocket buffers or the gateway's.
async fn measure_echo(args: &Args, gateway_buffers: bool) -> anyhow::Result<Figures> {
    let addr = free_addr()?;
    let mut echo_args = vec![addr.to_string()];
    if gateway_buffers {
        echo_args.push("--gateway-buffers".to_owned());
    }
    let echo = ServerProcess::start(
        "careline-ws-echo",
        sibling("careline-ws-echo")?,
        &echo_args,
        &[],
        addr,
    )
    .await?;
    let url = format!("ws://{addr}/ws");
    let mut figures = Figures {
        rss_before_kib: echo.rss_kib()?,
        ..Default::default()
    };
    let idle = members::open_idle(
        &url,
        "http://bench.invalid",
        args.sockets,
        |i| format!("hello {i}"),
        |_| true,
    )
    .await
    .context("idle sockets on the echo server")?;
    tokio::time::sleep(SETTLE).await;
    figures.rss_with_sockets_kib = echo.rss_kib()?;
    idle.close().await;
    figures.latency_us = Some(
        members::echo_latency(
            &url,
            args.chats,
            args.messages,
            Duration::from_millis(args.every_ms),
        )
        .await?,
    );
    echo.stop().await;
    Ok(figures)
}

async fn measure_gateway(args: &Args) -> anyhow::Result<Figures> {
    let agents = args.chats.div_ceil(platform::AGENT_CHAT_CAPACITY as usize);
    let backend = platform::Backend::start(agents).await?;
    let (gateway, grpc) = backend.gateway().await?;
    let url = format!("ws://{}/v1/chat/ws", gateway.addr);
    let mut figures = Figures {
        rss_before_kib: gateway.rss_kib()?,
        ..Default::default()
    };
    let idle_key = platform::widget_key(platform::IDLE_TENANT);
    let started = std::time::Instant::now();
    let idle = members::open_idle(
        &url,
        "http://bench.invalid",
        args.sockets,
        |i| members::start_frame(&idle_key, i),
        members::is_started,
    )
    .await
    .context("idle chats on the gateway")?;
    println!(
        "chat-gateway: {} chats started and idle in {:.1} s",
        args.sockets,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    figures.rss_with_sockets_kib = gateway.rss_kib()?;
    idle.close().await;

    let floor = agents::Floor::new()?;
    let mut desks = agents::start(agents, backend.presence, grpc, &floor).await?;
    println!(
        "chat-gateway: {agents} agents (chat capacity {}) logged in",
        platform::AGENT_CHAT_CAPACITY
    );
    let live_key = platform::widget_key(platform::LIVE_TENANT);
    let measured = members::gateway_latency(
        &url,
        &live_key,
        &floor,
        args.chats,
        args.messages,
        Duration::from_millis(args.every_ms),
    );
    tokio::select! {
        done = measured => done?,
        Some(failed) = desks.join_next() => bail!("an agent stopped: {:?}", failed?),
    }
    println!(
        "chat-gateway: VmRSS {} KiB with {} chats in progress (and {} in their resume grace)",
        gateway.rss_kib()?,
        args.chats,
        args.sockets
    );
    figures.latency_us = Some(floor.latency_us.lock().expect("not poisoned").clone());
    desks.abort_all();
    gateway.stop().await;
    Ok(figures)
}

fn report(name: &str, figures: &Figures, sockets: usize) {
    println!(
        "{name:<34} idle: {sockets} sockets, VmRSS {} -> {} KiB = {:.1} KiB/socket",
        figures.rss_before_kib,
        figures.rss_with_sockets_kib,
        figures.per_socket_kib(sockets)
    );
    if let Some(latency) = &figures.latency_us {
        println!(
            "{name:<34} latency: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latency.len(),
            latency.value_at_quantile(0.5) as f64 / 1000.0,
            latency.value_at_quantile(0.99) as f64 / 1000.0,
            latency.max() as f64 / 1000.0
        );
    }
}
