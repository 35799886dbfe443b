//! Backpressure: a bounded write buffer, `send` waits when it is full.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, Sink, StreamExt};
use tether::{connect, Config, Message, Server};
use tokio::sync::oneshot;

use super::duplex::pair_with;

/// Wire size of a binary message with a 16-bit extended length (2 + 2 header bytes).
const HEADER: usize = 4;

#[tokio::test]
async fn write_buffer_limit_at_and_one_past() {
    let mut config = Config::default();
    config.set_write_buffer_limit(1000);
    // A one-byte pipe the client does not read: writes stall at once.
    let (mut client, mut server) = pair_with(1, &config).await;
    let message = Message::binary(vec![1u8; 500 - HEADER]);
    // 0 bytes queued: below the limit, taken. One byte fits the pipe.
    assert!(server.send(message.clone()).now_or_never().is_none());
    assert_eq!(server.buffered_amount(), 499);
    // 499 < 1000: taken into the buffer.
    assert!(server.send(message.clone()).now_or_never().is_none());
    assert_eq!(server.buffered_amount(), 999);
    // 999 < 1000, one below the limit: still taken, overshooting by one message.
    assert!(server.send(message.clone()).now_or_never().is_none());
    assert_eq!(server.buffered_amount(), 1499);
    // At the limit and past it: the sink is not ready, a send is parked, nothing else is taken.
    let ready = futures::future::poll_fn(|cx| Pin::new(&mut server).poll_ready(cx)).now_or_never();
    assert!(ready.is_none(), "poll_ready must wait past the limit");
    assert!(server.send(message.clone()).now_or_never().is_none());
    assert_eq!(
        server.buffered_amount(),
        1499 + message.len(),
        "one parked message, counted by its payload"
    );
    // The reader drains; every message arrives, in order.
    let flushing = tokio::spawn(async move {
        server.flush().await.unwrap();
        server
    });
    for _ in 0..4 {
        assert_eq!(client.next().await.unwrap().unwrap(), message);
    }
    let server = flushing.await.unwrap();
    assert_eq!(server.buffered_amount(), 0);
}

/// What the server's sender saw while its client never read.
#[derive(Debug)]
struct Report {
    sent: usize,
    max_buffered: usize,
    waited: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_bounds_server_memory_and_send_waits() {
    const LIMIT: usize = 256 << 10;
    const MESSAGE: usize = 64 << 10;
    let mut config = Config::default();
    config.set_write_buffer_limit(LIMIT);
    let mut server = Server::bind("127.0.0.1:0").await.unwrap();
    server.config(config);
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let (report_tx, report_rx) = oneshot::channel();
    let report_tx = Arc::new(Mutex::new(Some(report_tx)));
    let serving = tokio::spawn(server.serve(move |mut ws, _| {
        let report_tx = report_tx.clone();
        async move {
            let message = Message::binary(vec![0xab; MESSAGE]);
            let mut report = Report {
                sent: 0,
                max_buffered: 0,
                waited: false,
            };
            // Loopback socket buffers take a few MiB; 64 MiB is far past them.
            while report.sent < 1024 {
                match tokio::time::timeout(Duration::from_millis(300), ws.send(message.clone()))
                    .await
                {
                    Ok(result) => result.unwrap(),
                    Err(_) => {
                        report.waited = true;
                        break;
                    }
                }
                report.sent += 1;
                report.max_buffered = report.max_buffered.max(ws.buffered_amount());
            }
            report.max_buffered = report.max_buffered.max(ws.buffered_amount());
            if let Some(tx) = report_tx.lock().unwrap().take() {
                let _ = tx.send(report);
            }
        }
    }));
    let client = connect(&url).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), report_rx)
        .await
        .expect("the sender reports within 30 s")
        .unwrap();
    assert!(report.waited, "send never waited: {report:?}");
    assert!(report.sent < 1024, "{report:?}");
    // The write buffer never held more than the limit plus one message (plus a parked one
    // for the send that timed out).
    assert!(
        report.max_buffered <= LIMIT + 2 * (MESSAGE + 10),
        "{report:?}"
    );
    drop(client);
    serving.abort();
}
