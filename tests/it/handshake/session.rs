//! Client against server over real streams: `tokio::io::duplex` and loopback TCP.

use std::time::Duration;

use http::{header, HeaderValue, StatusCode};
use tether_handshake::{
    client, server, Accept, ClientRequest, Config, Error, Rejection, Served, UpgradeRequest,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const VALID: &str = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The async helpers' time limit in these tests, unless a test is about it.
const TIMEOUT: Option<Duration> = Some(DEFAULT_HANDSHAKE_TIMEOUT);

/// The application's decision in these tests: the first offered subprotocol, the `chat`
/// resource only, and a token check.
fn decide(request: &UpgradeRequest) -> Result<Accept, Rejection> {
    if request.request().uri().path() != "/chat" {
        return Err(Rejection::new(StatusCode::NOT_FOUND));
    }
    let authorized = request.request().headers().get(header::AUTHORIZATION);
    if authorized.is_none_or(|v| v != "Bearer letmein") {
        return Err(Rejection::new(StatusCode::UNAUTHORIZED)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    let mut accept = Accept::new().with_header(header::SET_COOKIE, HeaderValue::from_static("s=1"));
    if let Some(first) = request.subprotocols().first() {
        accept = accept.with_subprotocol(first.clone());
    }
    Ok(accept)
}

fn chat_request() -> ClientRequest {
    let mut request = ClientRequest::new("ws://localhost/chat?room=7".parse().unwrap()).unwrap();
    request
        .subprotocol("chat.v2")
        .subprotocol("chat.v1")
        .header(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer letmein"),
        );
    request
}

/// Runs both roles over a connected pair and checks what each side agreed on, and that the
/// first bytes each side sends after the handshake reach the other intact.
async fn agree<C, S>(client_io: C, server_io: S)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let serving = tokio::spawn(async move {
        let Served::WebSocket(mut io, outcome) =
            server(server_io, &Config::default(), TIMEOUT, decide)
                .await
                .unwrap()
        else {
            panic!("a websocket request was served as plain http");
        };
        assert_eq!(outcome.request.uri(), "/chat?room=7");
        assert_eq!(outcome.subprotocol.as_deref(), Some("chat.v2"));
        io.write_all(b"from server").await.unwrap();
        let mut first = outcome.leftover.to_vec();
        read_until_len(&mut io, &mut first, 11).await;
        assert_eq!(first, b"from client");
    });
    let (mut io, outcome) = client(client_io, &chat_request(), &Config::default(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(outcome.response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(outcome.response.headers()[header::SET_COOKIE], "s=1");
    assert_eq!(outcome.subprotocol.as_deref(), Some("chat.v2"));
    io.write_all(b"from client").await.unwrap();
    let mut first = outcome.leftover.to_vec();
    read_until_len(&mut io, &mut first, 11).await;
    assert_eq!(first, b"from server");
    serving.await.unwrap();
}

/// Appends reads to `buf` until it holds `len` bytes (leftover first, then the stream).
async fn read_until_len<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>, len: usize) {
    while buf.len() < len {
        let mut chunk = [0; 64];
        let n = io.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "stream ended early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn client_and_server_agree_over_duplex() {
    let (client_io, server_io) = duplex(64);
    agree(client_io, server_io).await;
}

#[tokio::test]
async fn client_and_server_agree_over_loopback_tcp() {
    let bounded = tokio::time::timeout(Duration::from_secs(20), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client_io, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        agree(client_io.unwrap(), accepted.unwrap().0).await;
    });
    bounded
        .await
        .expect("the loopback handshake finished in time");
}

#[tokio::test]
async fn leftover_is_exactly_what_followed_the_head() {
    // Request and first frame in one write (粘包): the server must keep the frame.
    let (mut client_io, server_io) = duplex(4096);
    client_io
        .write_all(format!("{VALID}\u{81}\u{85}frame").as_bytes())
        .await
        .unwrap();
    let Ok(Served::WebSocket(_, outcome)) =
        server(
            server_io,
            &Config::default(),
            TIMEOUT,
            |_| Ok(Accept::new()),
        )
        .await
    else {
        panic!("the handshake failed");
    };
    assert_eq!(&outcome.leftover[..], "\u{81}\u{85}frame".as_bytes());
}

/// What the client side of the wire reads back for a raw request.
async fn answer_to(
    request: &str,
    config: &Config,
) -> (String, Result<Served<tokio::io::DuplexStream>, Error>) {
    let (mut client_io, server_io) = duplex(64 * 1024);
    client_io.write_all(request.as_bytes()).await.unwrap();
    // Done sending, as a client that waits for the answer is.
    client_io.shutdown().await.unwrap();
    let result = server(server_io, config, TIMEOUT, decide).await;
    let mut answer = String::new();
    if result.is_err() {
        client_io.read_to_string(&mut answer).await.unwrap();
    }
    (answer, result)
}

#[tokio::test]
async fn each_rejection_is_answered_with_its_status() {
    let long = format!("X-Long: {}\r\n\r\n", "a".repeat(20_000));
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect::<String>() + "\r\n";
    let cases = [
        (VALID.replace("GET", "PUT"), 400, "the method must be GET"),
        (
            VALID.replace("HTTP/1.1", "HTTP/1.0"),
            400,
            "http/1.1 or later is required",
        ),
        (
            VALID.replace("Host: a\r\n", ""),
            400,
            "exactly one host header is required",
        ),
        (
            VALID.replace("Connection: Upgrade", "Connection: close"),
            400,
            "connection",
        ),
        (VALID.replace("ZQ==", "ZQ"), 400, "sec-websocket-key"),
        (
            VALID.replace("Version: 13", "Version: 7"),
            426,
            "sec-websocket-version must be 13",
        ),
        (
            VALID.replace("\r\n\r\n", &format!("\r\n{long}")),
            431,
            "limit",
        ),
        (
            VALID.replace("\r\n\r\n", &format!("\r\n{many}")),
            431,
            "limit",
        ),
        (VALID.to_owned(), 404, "Not Found"),
        (VALID.replace("/ws", "/chat"), 401, "Unauthorized"),
    ];
    for (request, status, reason) in cases {
        let (answer, result) = answer_to(&request, &Config::default()).await;
        let err = result.expect_err("each case is refused");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err}");
        let status_line = format!("HTTP/1.1 {status} ");
        assert!(answer.starts_with(&status_line), "{answer}");
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        // The body is one line that says what was wrong.
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(body.lines().count(), 1, "{body}");
        assert!(body.contains(reason), "{answer}");
        if status == 426 {
            // RFC 6455 §4.2.2 /version/: the answer names the versions the server speaks.
            assert!(
                answer.contains("\r\nsec-websocket-version: 13\r\n"),
                "{answer}"
            );
        }
    }
}

/// A client that sends far past the header limit still reads its 431 on a real socket, after
/// the server has closed.
#[tokio::test]
async fn oversized_request_over_tcp_still_gets_its_431() {
    let bounded = tokio::time::timeout(Duration::from_secs(20), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            let (io, _) = listener.accept().await.unwrap();
            server(io, &Config::default(), TIMEOUT, decide).await
        });
        let mut client_io = TcpStream::connect(addr).await.unwrap();
        let huge = format!(
            "GET / HTTP/1.1\r\nX-Huge: {}\r\n\r\n",
            "h".repeat(48 * 1024)
        );
        client_io.write_all(huge.as_bytes()).await.unwrap();
        // Read only once the server has closed its end.
        let served = serving.await.unwrap();
        assert!(matches!(served, Err(Error::HeadTooLarge { limit: 16384 })));
        let mut answer = String::new();
        client_io.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
    });
    bounded.await.expect("the rejection finished in time");
}

#[tokio::test]
async fn origin_check_answers_403() {
    let (client_io, server_io) = duplex(4096);
    let serving = tokio::spawn(async move {
        server(
            server_io,
            &Config::default(),
            TIMEOUT,
            |request| match request.origin().map(HeaderValue::as_bytes) {
                Some(b"https://good.test") => Ok(Accept::new()),
                _ => Err(Rejection::new(StatusCode::FORBIDDEN)),
            },
        )
        .await
    });
    let mut request = ClientRequest::new("ws://localhost/".parse().unwrap()).unwrap();
    request.header(
        header::ORIGIN,
        HeaderValue::from_static("https://evil.test"),
    );
    let Err(Error::UnexpectedStatus(response)) =
        client(client_io, &request, &Config::default(), TIMEOUT).await
    else {
        panic!("expected a 403");
    };
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(matches!(
        serving.await.unwrap(),
        Err(Error::Rejected {
            status: StatusCode::FORBIDDEN
        })
    ));
}

#[tokio::test]
async fn client_reports_a_redirect_with_its_location() {
    let (client_io, mut server_io) = duplex(4096);
    let request = ClientRequest::new("ws://localhost/".parse().unwrap()).unwrap();
    let answering = tokio::spawn(async move {
        let mut head = [0; 1024];
        let _ = server_io.read(&mut head).await.unwrap();
        server_io
            .write_all(b"HTTP/1.1 301 Moved Permanently\r\nLocation: ws://elsewhere/\r\nContent-Length: 5\r\n\r\nmoved")
            .await
            .unwrap();
        server_io
    });
    let Err(Error::UnexpectedStatus(response)) =
        client(client_io, &request, &Config::default(), TIMEOUT).await
    else {
        panic!("expected the redirect");
    };
    assert_eq!(response.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers[header::LOCATION], "ws://elsewhere/");
    assert_eq!(&response.body[..], b"moved");
    drop(answering.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn request_that_never_ends_times_out() {
    let (mut client_io, server_io) = duplex(4096);
    // Everything but the blank line, then silence.
    client_io
        .write_all(VALID.trim_end_matches("\r\n").as_bytes())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let ten_seconds = Some(Duration::from_secs(10));
    let result = server(server_io, &Config::default(), ten_seconds, decide).await;
    assert!(matches!(result, Err(Error::Timeout(_))));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn handshake_just_inside_the_timeout_succeeds_and_just_outside_fails() {
    for (delay, succeeds) in [
        (Duration::from_millis(9_999), true),
        (Duration::from_millis(10_001), false),
    ] {
        let (mut client_io, server_io) = duplex(4096);
        let (head, last) = VALID.split_at(VALID.len() - 1);
        client_io.write_all(head.as_bytes()).await.unwrap();
        let trickle = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = client_io.write_all(last.as_bytes()).await;
            client_io
        });
        let ten_seconds = Some(Duration::from_secs(10));
        let result = server(server_io, &Config::default(), ten_seconds, |_| {
            Ok(Accept::new())
        })
        .await;
        assert_eq!(result.is_ok(), succeeds, "{delay:?}: {result:?}");
        drop(trickle.await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn no_timeout_waits_as_long_as_it_takes() {
    let (_client_io, server_io) = duplex(4096);
    let config = Config::default();
    tokio::select! {
        result = server(server_io, &config, None, decide) => panic!("gave up without a timeout: {result:?}"),
        () = tokio::time::sleep(Duration::from_secs(24 * 3600)) => {}
    }
}
