//! The HTTP `CONNECT` tunnel (RFC 9110 §9.3.6) through an HTTP proxy.
//!
//! The proxy's answer is peer input: it is read into a buffer of at most
//! [`MAX_CONNECT_RESPONSE`] bytes (the caller bounds the time), parsed with httparse, and
//! only a 2xx opens the tunnel.

use base64::Engine as _;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::proxy_error::ProxyError;

/// The most bytes an HTTP proxy's answer to `CONNECT` (status line and header fields) may
/// take; past it the tunnel fails with [`ProxyError::ResponseTooLarge`].
pub const MAX_CONNECT_RESPONSE: usize = 8 * 1024;

/// The most header fields in the proxy's answer (past it: [`ProxyError::Malformed`]).
const MAX_HEADERS: usize = 64;

/// Asks the proxy on `io` for a tunnel to `host:port`, with Basic credentials when given.
/// On success `io` carries the server's bytes.
pub(crate) async fn tunnel<S>(
    io: &mut S,
    host: &str,
    port: u16,
    credentials: Option<(&str, &str)>,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(request(host, port, credentials).as_bytes())
        .await?;
    io.flush().await?;
    let (status, extra) = read_response(io).await?;
    // RFC 9110 §9.3.6: "Any 2xx (Successful) response indicates that the sender (and all
    // inbound proxies) will switch to tunnel mode immediately after the response header
    // section"; any other status means the tunnel was not formed.
    if !status.is_success() {
        // Its body (an error page) is not read: the connection is dropped.
        return Err(ProxyError::Refused { status });
    }
    // The server speaks only after the client, so bytes after a 2xx head are the proxy's
    // error, not data to keep.
    if extra {
        return Err(ProxyError::Malformed(
            "bytes after the answer before the tunnel was used".into(),
        ));
    }
    Ok(())
}

/// `CONNECT host:port HTTP/1.1` in authority-form (RFC 9110 §9.3.6), an IPv6 host in brackets.
fn request(host: &str, port: u16, credentials: Option<(&str, &str)>) -> String {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, password)) = credentials {
        // RFC 7617 §2: the user-id and password joined by one colon, in base64.
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Reads the proxy's response head, at most [`MAX_CONNECT_RESPONSE`] bytes, and returns its
/// status and whether more bytes came in the same reads.
async fn read_response<S: AsyncRead + Unpin>(io: &mut S) -> Result<(StatusCode, bool), ProxyError> {
    let mut buf = vec![0u8; MAX_CONNECT_RESPONSE];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(ProxyError::ResponseTooLarge {
                limit: MAX_CONNECT_RESPONSE,
            });
        }
        let read = io.read(&mut buf[filled..]).await?;
        if read == 0 {
            return Err(ProxyError::Malformed(
                "the proxy closed the connection before its answer ended".into(),
            ));
        }
        filled += read;
        if let Some((status, used)) = parse(&buf[..filled])? {
            return Ok((status, used != filled));
        }
    }
}

/// The status and head length of a complete response head; `None` while it is partial.
fn parse(bytes: &[u8]) -> Result<Option<(StatusCode, usize)>, ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => {
            let code = response.code.unwrap_or_default();
            let status = StatusCode::from_u16(code)
                .map_err(|_| ProxyError::Malformed(format!("status {code}")))?;
            Ok(Some((status, used)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(err) => Err(ProxyError::Malformed(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_9_3_6_connect_names_the_authority_and_rfc7617_basic_credentials() {
        assert_eq!(
            request("example.com", 443, Some(("Aladdin", "open sesame"))),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        assert_eq!(
            request("::1", 80, None),
            "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn rfc9110_9_3_6_only_a_2xx_opens_the_tunnel() {
        for (answer, expected) in [
            ("HTTP/1.1 200 Connection established\r\n\r\n", Ok(())),
            ("HTTP/1.0 204 OK\r\nX: y\r\n\r\n", Ok(())),
            (
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n<html>",
                Err(407),
            ),
            ("HTTP/1.1 502 Bad Gateway\r\n\r\n", Err(502)),
        ] {
            let (mut client, mut proxy) = tokio::io::duplex(64 * 1024);
            proxy.write_all(answer.as_bytes()).await.unwrap();
            let got = tunnel(&mut client, "h", 1, None).await;
            match (got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(ProxyError::Refused { status }), Err(code)) => {
                    assert_eq!(status.as_u16(), code)
                }
                (got, _) => panic!("{answer:?}: {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn answers_that_are_not_http_or_run_on_are_malformed() {
        for answer in ["SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nextra"] {
            let (mut client, mut proxy) = tokio::io::duplex(64 * 1024);
            proxy.write_all(answer.as_bytes()).await.unwrap();
            let got = tunnel(&mut client, "h", 1, None).await;
            assert!(matches!(got, Err(ProxyError::Malformed(_))), "{got:?}");
        }
        let (mut client, proxy) = tokio::io::duplex(64);
        drop(proxy);
        let got = tunnel(&mut client, "h", 1, None).await;
        assert!(matches!(got, Err(ProxyError::Io(_))), "{got:?}");
    }
}
