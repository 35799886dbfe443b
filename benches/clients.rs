//! WebSocket clients that count what they receive, for the fan-out benches.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use futures::StreamExt;

/// `count` tether clients of `ws://addr/` (with `config`) on their own thread, counting the
/// messages they receive; returns once all are connected.
pub(crate) fn clients(addr: SocketAddr, count: u64, config: tether::Config) -> Arc<AtomicU64> {
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();
    let counter = received.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        runtime.block_on(async move {
            let url = format!("ws://{addr}/");
            for _ in 0..count {
                let mut ws = tether::ClientBuilder::new()
                    .config(config.clone())
                    .connect(&url)
                    .await
                    .expect("connected");
                let counter = counter.clone();
                tokio::spawn(async move {
                    while let Some(Ok(_)) = ws.next().await {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = ws.close(tether::CloseCode::NORMAL, "").await;
                });
            }
            ready_tx.send(()).expect("ready");
            std::future::pending::<()>().await;
        });
    });
    ready_rx.recv().expect("clients connected");
    received
}
