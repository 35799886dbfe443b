//! Memory of the echo path, two measurements (nothing is asserted: the numbers are reported):
//!
//! - `idle`: resident memory per idle connection after the handshake. The server (a tether
//!   `plain loop` echo on a current-thread runtime) runs in this process; the clients run in a
//!   child process (this binary again, `TETHER_MEMORY_CLIENT=<addr>`), so their memory does not
//!   count. RSS (`/proc/self/statm`) before the connections and once all are established and
//!   idle, divided by their number. `TETHER_MEMORY_CONNS` [10 000; 50 in test mode]. The open
//!   file limit is raised with `prlimit` on this process.
//! - `allocs`: heap allocations per echoed message after a warm-up, both roles in this
//!   process (a counting global allocator), one message in flight, 16 B to 64 KiB.
#![allow(clippy::print_stdout)] // a bench reports on standard output

use std::alloc::System;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use futures::StreamExt;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tether::Message;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("resident pages");
    pages * 4096
}

async fn echo(tcp: TcpStream) {
    let Ok(mut ws) = tether::accept(tcp).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if message.is_data() && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// The child: opens `conns` connections, says `ready`, holds them until stdin closes.
fn client(addr: SocketAddr, conns: usize) {
    let runtime = current_thread();
    runtime.block_on(async move {
        let mut held = Vec::with_capacity(conns);
        for _ in 0..conns {
            let ws = tether::connect(&format!("ws://{addr}/"))
                .await
                .expect("connect");
            held.push(ws);
        }
        println!("ready");
        std::io::stdout().flush().expect("stdout");
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        drop(held);
    });
}

fn idle(conns: usize) {
    let pid = std::process::id().to_string();
    let limit = format!("--nofile={}", conns * 2 + 1024);
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &limit])
        .status();
    let runtime = current_thread();
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let before = rss_bytes();
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .env("TETHER_MEMORY_CLIENT", addr.to_string())
            .env("TETHER_MEMORY_CONNS", conns.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process");
        let stdout = child.stdout.take().expect("child stdout");
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            line
        });
        tokio::pin!(ready);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, _) = accepted.expect("accept");
                    tokio::spawn(echo(tcp));
                }
                line = &mut ready => {
                    assert_eq!(line.expect("child").trim(), "ready", "the clients connected");
                    break;
                }
            }
        }
        // Let every server task reach its idle read.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let after = rss_bytes();
        drop(child.stdin.take());
        let _ = child.wait();
        println!(
            "idle: {conns} connections, server RSS {} KiB -> {} KiB: {:.1} KiB per connection",
            before >> 10,
            after >> 10,
            (after.saturating_sub(before)) as f64 / conns as f64 / 1024.0
        );
    });
}

/// Allocations per echoed message after warm-up, both roles in this process. The client keeps
/// the last `held` messages it received across the next reads, as a session's inbox or replay
/// buffer does (0: each is dropped before the next read).
fn allocs(warmup: u64, messages: u64, held: usize) {
    let runtime = current_thread();
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(echo(tcp));
            }
        });
        for size in [16usize, 1024, 16 << 10, 64 << 10, 1 << 20] {
            let mut ws = tether::connect(&format!("ws://{addr}/"))
                .await
                .expect("connect");
            let payload = Message::binary(vec![0x42; size]);
            let mut kept = std::collections::VecDeque::with_capacity(held + 1);
            let mut round = async |ws: &mut tether::WebSocket<_>| {
                ws.send(payload.clone()).await.expect("send");
                let echo = ws.next().await.expect("echo").expect("echo");
                kept.push_back(echo);
                if kept.len() > held {
                    kept.pop_front();
                }
            };
            for _ in 0..warmup {
                round(&mut ws).await;
            }
            let region = Region::new(GLOBAL);
            for _ in 0..messages {
                round(&mut ws).await;
            }
            let stats = region.change();
            println!(
                "allocs: {size:>6} B, one in flight, both roles, {held} held: {:.2} allocations, {:.2} reallocations and {:.0} bytes per echoed message ({messages} messages after {warmup})",
                stats.allocations as f64 / messages as f64,
                stats.reallocations as f64 / messages as f64,
                stats.bytes_allocated as f64 / messages as f64,
            );
            let _ = ws.close(tether::CloseCode::NORMAL, "").await;
        }
    });
}

fn main() {
    let conns: Option<usize> = std::env::var("TETHER_MEMORY_CONNS")
        .ok()
        .and_then(|n| n.parse().ok());
    if let Ok(addr) = std::env::var("TETHER_MEMORY_CLIENT") {
        client(addr.parse().expect("address"), conns.unwrap_or(1));
        return;
    }
    let benching = std::env::args().any(|arg| arg == "--bench");
    idle(conns.unwrap_or(if benching { 10_000 } else { 50 }));
    let (warmup, messages) = if benching { (1000, 10_000) } else { (10, 20) };
    for held in [0, 4] {
        allocs(warmup, messages, held);
    }
}
