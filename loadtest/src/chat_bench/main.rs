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
//! Both servers and the driver share the machine; the driver raises its open-file limit to the
//! hard limit (the servers inherit it) and refuses to start if it cannot hold the sockets.

mod members;
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
        self.rss_with_sockets_kib.saturating_sub(self.rss_before_kib) as f64 / sockets as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit(args.sockets)?;
    let echo = measure_echo(&args).await?;
    report("bare axum echo", &echo, args.sockets);
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

async fn measure_echo(args: &Args) -> anyhow::Result<Figures> {
    let addr = free_addr()?;
    let echo = ServerProcess::start(
        "careline-ws-echo",
        sibling("careline-ws-echo")?,
        &[addr.to_string()],
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

fn report(name: &str, figures: &Figures, sockets: usize) {
    println!(
        "{name:<16} idle: {sockets} sockets, VmRSS {} -> {} KiB = {:.1} KiB/socket",
        figures.rss_before_kib,
        figures.rss_with_sockets_kib,
        figures.per_socket_kib(sockets)
    );
    if let Some(latency) = &figures.latency_us {
        println!(
            "{name:<16} latency: {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latency.len(),
            latency.value_at_quantile(0.5) as f64 / 1000.0,
            latency.value_at_quantile(0.99) as f64 / 1000.0,
            latency.max() as f64 / 1000.0
        );
    }
}
