//! 1000 concurrent clients echoing on loopback; memory returns near its baseline afterwards.
//!
//! Memory is measured with a counting global allocator (stats_alloc) as live heap bytes. So
//! that other tests running in parallel do not blur the count, the measuring test runs in a
//! child process of this test binary that runs only it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tether::{connect, CloseCode, Message, Server};
use tokio::sync::Barrier;

use super::support::{as_measuring_child_async, echo, live_bytes, measure_in_child};

const CLIENTS: usize = 1000;

#[test]
fn thousand_concurrent_clients_echo_and_memory_returns_to_baseline() {
    measure_in_child(
        "facade::load::child_thousand_clients",
        Duration::from_secs(120),
    );
}

#[test]
#[ignore = "run by thousand_concurrent_clients_echo_and_memory_returns_to_baseline in a child process"]
fn child_thousand_clients() {
    as_measuring_child_async(measure);
}

#[allow(clippy::print_stdout)] // the figures go to the parent's failure message
async fn measure() {
    let active = Arc::new(AtomicUsize::new(0));
    let mut server = Server::bind("127.0.0.1:0").await.unwrap();
    // Above the default limit of 900 connections.
    server.max_connections(CLIENTS);
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let counter = active.clone();
    let serving = tokio::spawn(server.serve(move |ws, _| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            echo(ws).await;
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }));

    // Warm up: the runtime's and the server's one-time allocations are part of the baseline.
    run_clients(&url, 8, None).await;
    settle(&active).await;
    let baseline = live_bytes();

    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let clients = tokio::spawn({
        let url = url.clone();
        let barrier = barrier.clone();
        async move { run_clients(&url, CLIENTS, Some(barrier)).await }
    });
    // Every client is connected and has echoed; none has closed yet.
    barrier.wait().await;
    assert_eq!(active.load(Ordering::SeqCst), CLIENTS);
    let peak = live_bytes();
    barrier.wait().await;
    clients.await.unwrap();
    settle(&active).await;
    let after = live_bytes();

    let per_connection = (peak - baseline) / CLIENTS as i64;
    let left = after - baseline;
    println!(
        "baseline {baseline} B, peak +{} B ({per_connection} B per connection), after +{left} B",
        peak - baseline
    );
    // The count sees the connections (client and server side, buffers included)...
    assert!(per_connection > 4096, "per connection {per_connection} B");
    // ...and they are gone afterwards: less than 1% of what they held.
    assert!(
        left < (peak - baseline) / 100,
        "{left} B left of {} B",
        peak - baseline
    );
    serving.abort();
}

/// `count` clients at once, each echoing three messages; with a barrier, they all wait once
/// after echoing (the peak) and once more before closing.
async fn run_clients(url: &str, count: usize, barrier: Option<Arc<Barrier>>) {
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let url = url.to_owned();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(&url).await.expect("connect");
            let messages = [
                Message::text(format!("client {i}")),
                Message::binary(vec![i as u8; 1024]),
                Message::text("x".repeat(200)),
            ];
            for message in &messages {
                ws.send(message.clone()).await.expect("send");
            }
            for message in messages {
                assert_eq!(ws.next().await.expect("echo").expect("no error"), message);
            }
            if let Some(barrier) = &barrier {
                barrier.wait().await;
                barrier.wait().await;
            }
            ws.close(CloseCode::NORMAL, "").await.expect("close");
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
}

/// Waits until no server callback runs and the accept loop reaped the tasks.
async fn settle(active: &AtomicUsize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while active.load(Ordering::SeqCst) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections did not end"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the accept loop reap the finished tasks.
    tokio::time::sleep(Duration::from_millis(100)).await;
}
