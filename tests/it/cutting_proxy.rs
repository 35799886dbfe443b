//! The cutting proxy (test support for sessions) does what its schedule says, over loopback.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../support/cutting_proxy.rs"]
pub(crate) mod support;

use support::{CutSchedule, CuttingProxy};

/// A TCP echo server on loopback.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn exact(bytes: u64, freeze_percent: u64, max_cuts: u64) -> CutSchedule {
    CutSchedule {
        seed: 1,
        min_bytes: bytes,
        max_bytes: bytes,
        freeze_percent,
        freeze_for: Duration::from_secs(2),
        max_cuts,
    }
}

/// Reads until the connection ends; gives what was read.
async fn read_to_cut(socket: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 1024];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

#[tokio::test]
async fn a_connection_is_cut_after_its_byte_budget_both_directions_counted() {
    let proxy = CuttingProxy::start(echo().await, exact(100, 0, 1))
        .await
        .unwrap();
    let mut socket = TcpStream::connect(proxy.addr()).await.unwrap();
    socket.write_all(&[7u8; 50]).await.unwrap();
    let mut back = [0u8; 50];
    socket.read_exact(&mut back).await.unwrap();
    // 50 up + 50 down: the budget is spent and the connection breaks; nothing more passes.
    let _ = socket.write_all(&[7u8; 10]).await;
    assert_eq!(read_to_cut(&mut socket).await, 0);
    assert_eq!(proxy.cuts(), 1);
}

#[tokio::test]
async fn max_cuts_is_the_last_cut_later_connections_pass_untouched() {
    let proxy = CuttingProxy::start(echo().await, exact(10, 0, 1))
        .await
        .unwrap();
    let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
    first.write_all(&[1u8; 20]).await.unwrap();
    read_to_cut(&mut first).await;
    assert_eq!(proxy.cuts(), 1);
    let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut back = vec![0u8; 4000];
    second.write_all(&back.clone()).await.unwrap();
    second.read_exact(&mut back).await.unwrap();
    assert_eq!((proxy.cuts(), proxy.connections()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_frozen_connection_forwards_nothing_until_it_is_cut() {
    let proxy = CuttingProxy::start(echo().await, exact(10, 100, 1))
        .await
        .unwrap();
    let mut socket = TcpStream::connect(proxy.addr()).await.unwrap();
    socket.write_all(&[1u8; 5]).await.unwrap();
    let mut back = [0u8; 5];
    socket.read_exact(&mut back).await.unwrap();
    socket.write_all(&[2u8; 5]).await.unwrap();
    // Budget spent (10): frozen. Nothing comes back within the freeze, then the cut.
    let started = tokio::time::Instant::now();
    let got = read_to_cut(&mut socket).await;
    assert_eq!(got, 0);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(proxy.cuts(), 1);
}
