//! `Server` against clients that hold connections without finishing a handshake (half-open,
//! slowloris) and floods of connections over the limit: the live count never passes the
//! limit, the extra connections get 503 + Retry-After at a bounded cost, the slow ones are cut
//! by the handshake timeout, and the server serves a legitimate client afterwards.
//!
//! Real time with short timeouts: a paused clock advances whenever the runtime is idle, and
//! under load the kernel can hold a loopback connection back for a moment, which a paused
//! clock turns into minutes. Timing assertions are therefore "not before the timeout, and
//! within a bounded slack after it".

use std::time::Duration;

use futures::StreamExt;
use tether::{connect, CloseCode, Config, Error, Message, ServerStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::facade::support::{EchoServer, TestCert};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How late a timeout may act on a loaded machine and still count as acting on time.
const SLACK: Duration = Duration::from_secs(3);
/// Time between two bytes of a slowloris client.
const TRICKLE: Duration = Duration::from_millis(100);

/// The most refusals a server runs at once (documented on `Server::max_connections`).
const REFUSAL_SLOTS: usize = 32;

/// An echo server limited to `limit` connections, with this handshake timeout and a
/// Retry-After of 7 s, and its counters.
async fn limited_server(limit: usize, timeout: Duration) -> (EchoServer, ServerStats) {
    let mut stats = None;
    let server = EchoServer::start(|server| {
        let mut config = Config::default();
        config.set_handshake_timeout(Some(timeout));
        server
            .config(config)
            .max_connections(limit)
            .retry_after(Duration::from_secs(7));
        stats = Some(server.stats());
    })
    .await;
    (server, stats.expect("setup ran"))
}

/// Trickles a request head one byte per [`TRICKLE`] without ever ending it, until the server cuts
/// the connection; returns when it did. The server must not answer.
async fn slowloris(mut tcp: TcpStream) -> Instant {
    let (mut read, mut write) = tcp.split();
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".iter().copied();
    let trickle = async {
        for byte in head.chain(std::iter::repeat(b'a')) {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(TRICKLE).await;
        }
    };
    let cut = async {
        let mut buf = [0; 64];
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("a slow client got an answer: {:?}", &buf[..n]),
        }
    };
    tokio::select! {
        () = cut => {}
        () = trickle => {}
    }
    Instant::now()
}

/// Connects and sends nothing; returns when the server cuts the connection, unanswered.
async fn half_open(mut tcp: TcpStream) -> Instant {
    let mut buf = [0; 64];
    match tcp.read(&mut buf).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("a silent client got an answer: {:?}", &buf[..n]),
    }
    Instant::now()
}

/// Everything the server sends until it ends its side.
async fn answer_of(tcp: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("the answer");
    String::from_utf8(answer).expect("an http answer")
}

/// A full WebSocket round trip: proof that the server serves this client.
async fn echo_round_trip(url: &str) {
    let mut ws = connect(url).await.expect("served");
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn slowloris_and_half_open_at_the_limit_are_cut_and_the_rest_get_503() {
    let (server, stats) = limited_server(4, HANDSHAKE_TIMEOUT).await;
    let url = server.url("ws", "127.0.0.1");
    let start = Instant::now();
    // Three attackers and one legitimate client fill the four places. The server accepts in
    // connect order, so each counts before the next arrives.
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        attackers.push(tokio::spawn(slowloris(tcp)));
    }
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    attackers.push(tokio::spawn(half_open(tcp)));
    // At the limit: the fourth is served.
    let mut legitimate = connect(&url)
        .await
        .expect("the fourth connection is served");

    // Past the limit: a WebSocket client reads 503 and when to come back...
    match connect(&url).await {
        Err(Error::Handshake(tether::handshake::Error::UnexpectedStatus(response))) => {
            assert_eq!(response.status.as_u16(), 503);
            assert_eq!(response.headers["retry-after"], "7");
        }
        other => panic!("expected 503 over the limit, got {other:?}"),
    }
    // ... and so does a client that sent nothing: the refusal does not wait for a request.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let answer = answer_of(&mut silent).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(
        start.elapsed() < HANDSHAKE_TIMEOUT,
        "refused at once, not after a timeout"
    );

    // The handshake timeout cuts every attacker, at the timeout, unanswered.
    for attacker in attackers {
        let cut = attacker.await.unwrap() - start;
        assert!(
            (HANDSHAKE_TIMEOUT..HANDSHAKE_TIMEOUT + SLACK).contains(&cut),
            "cut after {cut:?}"
        );
    }
    // Their places are free again: a new client is served, the old one still is.
    echo_round_trip(&url).await;
    legitimate.send(Message::text("hi")).await.unwrap();
    assert_eq!(
        legitimate.next().await.unwrap().unwrap(),
        Message::text("hi")
    );
    legitimate.close(CloseCode::NORMAL, "").await.unwrap();

    assert_eq!(stats.peak_connections(), 4, "never more than the limit");
    assert_eq!(stats.refused(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_over_the_limit_costs_at_most_32_refusals_at_once() {
    // A handshake timeout longer than the flood: the one place stays taken throughout.
    let (server, stats) = limited_server(1, Duration::from_secs(60)).await;
    let holder = TcpStream::connect(server.addr).await.unwrap();
    // 80 clients that send nothing and never close: each refusal holds its slot for its
    // whole second, so the flood is refused 32 at a time and the rest waits in the backlog.
    let start = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..80 {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for tcp in &mut flood {
        let answer = answer_of(tcp).await;
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(answer.contains("retry-after: 7\r\n"), "{answer}");
    }
    // Three rounds (32 + 32 + 16), each after the previous one's refusal time (1 s).
    let elapsed = start.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(2) + SLACK).contains(&elapsed),
        "{elapsed:?}"
    );
    assert_eq!(stats.peak_refusing(), REFUSAL_SLOTS);
    assert_eq!(stats.refused(), 80);
    assert_eq!(stats.peak_connections(), 1);

    // The flood over and the holder gone (its handshake ends on EOF), the server serves again.
    drop(holder);
    let freed = async {
        while stats.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(SLACK, freed)
        .await
        .expect("the holder's place is freed");
    echo_round_trip(&server.url("ws", "127.0.0.1")).await;
    assert_eq!(stats.peak_connections(), 1);
    server.stop().await;
}

#[tokio::test]
async fn over_the_limit_a_tls_server_closes_without_a_tls_handshake() {
    let cert = TestCert::new();
    let tls = cert.server.clone();
    let mut stats = None;
    let server = EchoServer::start(|server| {
        let mut config = Config::default();
        config.set_handshake_timeout(Some(HANDSHAKE_TIMEOUT));
        server.config(config).tls(tls).max_connections(1);
        stats = Some(server.stats());
    })
    .await;
    let stats = stats.expect("setup ran");
    let start = Instant::now();
    // The one place: a client that never starts its TLS handshake.
    let holder = TcpStream::connect(server.addr).await.unwrap();
    // Past it: closed at once, with nothing written (an HTTP 503 would need TLS first).
    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let mut answer = Vec::new();
    let _ = refused.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{answer:?}");
    assert!(start.elapsed() < HANDSHAKE_TIMEOUT, "closed at once");
    assert_eq!((stats.refused(), stats.peak_refusing()), (1, 0));

    // The holder is cut by the handshake timeout (TLS part), then a wss client is served.
    let cut = half_open(holder).await - start;
    assert!(
        (HANDSHAKE_TIMEOUT..HANDSHAKE_TIMEOUT + SLACK).contains(&cut),
        "cut after {cut:?}"
    );
    let mut client = tether::ClientBuilder::new();
    client.root_store(cert.roots.clone()).unwrap();
    let mut ws = client
        .connect(&server.url("wss", "localhost"))
        .await
        .unwrap();
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("over tls"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(stats.peak_connections(), 1);
    server.stop().await;
}

/// Connects with `origin` (if any) to a server that allows only `https://app.example`.
async fn connect_from(url: &str, origin: Option<&'static str>) -> Result<(), Error> {
    let mut client = tether::ClientBuilder::new();
    if let Some(origin) = origin {
        client.header(
            tether::http::header::ORIGIN,
            tether::http::HeaderValue::from_static(origin),
        );
    }
    let mut ws = client.connect(url).await?;
    ws.close(CloseCode::NORMAL, "").await?;
    Ok(())
}

#[tokio::test]
async fn rfc6455_10_2_cross_site_origins_get_403_and_non_browsers_pass() {
    let server = EchoServer::start(|server| {
        server.allow_origins(["https://app.example"]);
    })
    .await;
    let url = server.url("ws", "127.0.0.1");
    // A page of the application's own origin, in any case.
    connect_from(&url, Some("https://app.example"))
        .await
        .unwrap();
    connect_from(&url, Some("HTTPS://App.Example"))
        .await
        .unwrap();
    // A foreign page a logged-in visitor opened: 403, the callback never runs.
    for foreign in [
        "https://evil.example",
        "https://app.example.evil.example",
        "null",
    ] {
        match connect_from(&url, Some(foreign)).await {
            Err(Error::Handshake(tether::handshake::Error::UnexpectedStatus(response))) => {
                assert_eq!(response.status.as_u16(), 403, "{foreign}");
            }
            other => panic!("{foreign}: expected 403, got {other:?}"),
        }
    }
    // No Origin: not a browser, so no visitor's cookies to abuse; accepted.
    connect_from(&url, None).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn by_default_every_origin_is_accepted() {
    let server = EchoServer::start(|_| {}).await;
    connect_from(&server.url("ws", "127.0.0.1"), Some("https://evil.example"))
        .await
        .unwrap();
    server.stop().await;
}

/// Set in the child process of [`accept_survives_running_out_of_descriptors`].
#[cfg(target_os = "linux")]
const FD_CHILD_ENV: &str = "TETHER_FD_CHILD";

/// EMFILE needs a low descriptor limit, which only a child process can have without touching
/// this one: the child test runs under `ulimit -n 64`, bounded to a minute by `timeout`.
#[test]
#[cfg(target_os = "linux")]
fn accept_survives_running_out_of_descriptors() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = std::process::Command::new("timeout")
        .args(["60", "sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([
            "attack::server::child_out_of_descriptors",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FD_CHILD_ENV, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
#[cfg(target_os = "linux")]
#[ignore = "run by accept_survives_running_out_of_descriptors under a low descriptor limit"]
async fn child_out_of_descriptors() {
    if std::env::var_os(FD_CHILD_ENV).is_none() {
        return;
    }
    let (server, stats) = limited_server(10, Duration::from_secs(10)).await;
    let url = server.url("ws", "127.0.0.1");
    // Take every free descriptor, then give one back for the client's socket: the server's
    // accept has none left and fails with EMFILE.
    let mut burned = Vec::new();
    let emfile = loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => burned.push(file),
            Err(err) => break err,
        }
    };
    assert_eq!(emfile.raw_os_error(), Some(24), "EMFILE: {emfile}");
    assert!(burned.len() > 8, "only {} descriptors free", burned.len());
    burned.pop();
    let client = tokio::spawn(async move { echo_round_trip(&url).await });
    // Let the accept loop meet EMFILE a few times (10 ms, 20 ms, 40 ms... pauses).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stats.connections(), 0, "no descriptor to accept with");
    assert!(!client.is_finished());
    // Descriptors free again: the waiting client is accepted and served.
    burned.truncate(burned.len() - 8);
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("served once descriptors are free")
        .unwrap();
    assert_eq!(stats.peak_connections(), 1);
    server.stop().await;
}
