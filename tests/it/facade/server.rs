//! `Server`: accept loop, callbacks, plain HTTP answers, rejections, graceful shutdown.

use std::time::Duration;

use futures::StreamExt;
use tether::http::{header, HeaderValue, StatusCode};
use tether::{connect, CloseCode, Error, Message, Rejection, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::support::EchoServer;

async fn plain_get(addr: std::net::SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    answer
}

#[tokio::test]
async fn plain_http_gets_426_by_default() {
    let server = EchoServer::start(|_| {}).await;
    let answer = plain_get(server.addr).await;
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer}"
    );
    assert!(answer.contains("sec-websocket-version: 13\r\n"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_gets_the_applications_page() {
    let server = EchoServer::start(|server| {
        server.plain_http(|request| {
            Rejection::new(StatusCode::OK)
                .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))
                .with_body(format!("<p>tether at {}</p>", request.request.uri().path()))
        });
    })
    .await;
    let answer = plain_get(server.addr).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n<p>tether at /</p>"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn rejected_upgrade_reaches_the_client_with_its_status() {
    let server = EchoServer::start(|server| {
        server.decide(|_| Err(Rejection::new(StatusCode::FORBIDDEN)));
    })
    .await;
    let err = connect(&server.url("ws", "127.0.0.1")).await.unwrap_err();
    match err {
        Error::Handshake(tether::handshake::Error::UnexpectedStatus(response)) => {
            assert_eq!(response.status, StatusCode::FORBIDDEN)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_tells_connections_and_waits_for_them() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listening_socket = socket_identity(&listener);
    let server = Server::from_listener(listener);
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_until(
        |mut ws, conn| async move {
            assert_eq!(conn.request().uri().path(), "/");
            ws.send(Message::text("hello")).await.unwrap();
            conn.shutdown().await;
            assert!(conn.is_shutting_down());
            ws.close(CloseCode::GOING_AWAY, "server stopping")
                .await
                .unwrap();
        },
        async {
            let _ = stopped.await;
        },
    ));
    let mut ws = connect(&url).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    // While serving, the check below sees the listening socket.
    assert!(open_sockets().contains(&listening_socket));
    stop.send(()).unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::GOING_AWAY);
            assert_eq!(frame.reason, "server stopping");
        }
        other => panic!("expected going away, got {other:?}"),
    }
    assert!(ws.next().await.is_none());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops within 10 s")
        .unwrap()
        .unwrap();
    // The listener is gone: no descriptor of this process refers to its socket any more. (Not
    // "the port refuses a connection": another test may bind the freed port meanwhile.)
    assert!(
        !open_sockets().contains(&listening_socket),
        "the server still holds its listening socket {listening_socket}"
    );
}

/// The kernel's name of the socket behind `listener` (`socket:[inode]`): unique while any
/// descriptor refers to the socket, so it cannot be confused with a later socket on the same
/// port.
fn socket_identity(listener: &tokio::net::TcpListener) -> String {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd()));
    let name = link
        .expect("Linux's /proc/self/fd")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("socket:["), "{name}");
    name
}

/// The kernel's names of every socket this process has a descriptor of.
fn open_sockets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("Linux's /proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("socket:["))
        .collect()
}

#[tokio::test]
async fn invalid_urls_are_refused_before_connecting() {
    for url in ["http://example.com/", "ws://", "not a url"] {
        let err = connect(url).await.unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn handshake_timeout_against_a_silent_server() {
    // The kernel completes the TCP connection from the backlog; nobody ever answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut config = tether::Config::default();
    config.set_handshake_timeout(Some(Duration::from_secs(3)));
    let start = tokio::time::Instant::now();
    let err = tether::ClientBuilder::new()
        .config(config)
        .connect(&url)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake(tether::handshake::Error::Timeout(d)) if d == Duration::from_secs(3)),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}
