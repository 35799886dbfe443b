//! A hostile proxy: an HTTP proxy's answer to `CONNECT` is bounded in bytes
//! ([`tether::MAX_CONNECT_RESPONSE`]); the whole tunnel, HTTP or SOCKS5, in time (the
//! handshake timeout).

use std::time::Duration;

use tether::{ClientBuilder, Config, Error, Proxy, ProxyError, MAX_CONNECT_RESPONSE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A `407` answer head of exactly `len` bytes (padded with one header field).
fn answer_of(len: usize) -> Vec<u8> {
    let start = "HTTP/1.1 407 Proxy Authentication Required\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// A proxy on loopback that reads the CONNECT head, then writes `answer` and, when `flood`,
/// endless bytes after it until the client hangs up. Returns its URL.
async fn hostile_proxy(answer: Vec<u8>, flood: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = vec![0u8; 1024];
        let _ = tcp.read(&mut head).await;
        if tcp.write_all(&answer).await.is_err() {
            return;
        }
        while flood && tcp.write_all(&[b'a'; 4096]).await.is_ok() {}
        // Silent otherwise: hold the connection open until the client leaves.
        let _ = tcp.read(&mut head).await;
    });
    url
}

async fn connect_through(proxy_url: &str, timeout: Duration) -> Result<(), Error> {
    let mut config = Config::default();
    config.set_handshake_timeout(Some(timeout));
    let mut builder = ClientBuilder::new();
    builder
        .config(config)
        .proxy(Proxy::parse(proxy_url).unwrap());
    // The server is never reached: the proxy answers first.
    builder.connect("ws://127.0.0.1:9/").await.map(drop)
}

#[tokio::test]
async fn connect_answer_of_exactly_the_limit_is_read() {
    let url = hostile_proxy(answer_of(MAX_CONNECT_RESPONSE), false).await;
    let err = connect_through(&url, Duration::from_secs(10)).await;
    assert!(
        matches!(&err, Err(Error::Proxy(ProxyError::Refused { status })) if status.as_u16() == 407),
        "{err:?}"
    );
}

#[tokio::test]
async fn connect_answer_one_byte_past_the_limit_is_refused_even_when_the_proxy_floods() {
    let complete = answer_of(MAX_CONNECT_RESPONSE + 1);
    // Never ends: without the final CRLF the head goes on, for as long as the proxy writes.
    let endless = complete[..complete.len() - 4].to_vec();
    for (answer, flood) in [(complete, false), (endless, true)] {
        let url = hostile_proxy(answer, flood).await;
        let err = connect_through(&url, Duration::from_secs(10)).await;
        assert!(
            matches!(
                err,
                Err(Error::Proxy(ProxyError::ResponseTooLarge {
                    limit: MAX_CONNECT_RESPONSE
                }))
            ),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_proxy_that_never_answers_is_bounded_by_the_handshake_timeout() {
    // The same silent peer as an HTTP proxy (no answer to CONNECT) and as a SOCKS5 proxy (no
    // answer to the greeting).
    for scheme in ["http", "socks5h"] {
        let url = hostile_proxy(Vec::new(), false).await;
        let url = url.replacen("http", scheme, 1);
        let limit = Duration::from_millis(300);
        let err = connect_through(&url, limit).await;
        assert!(
            matches!(err, Err(Error::Proxy(ProxyError::Timeout(d))) if d == limit),
            "{scheme}: {err:?}"
        );
    }
}
