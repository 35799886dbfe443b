//! The client through real proxies on loopback: tinyproxy (HTTP CONNECT), dante (SOCKS5),
//! microsocks (SOCKS5 with username/password); `ws://` and `wss://` (a Tether server with a
//! test certificate, trusted through the custom-root option), credentials accepted and
//! refused, `NO_PROXY`. Each proxy's own log (or its refusal of bad credentials) shows the
//! traffic went through it.

#[path = "../../support/proxies.rs"]
mod proxies;

use futures::StreamExt;
use tether::{ClientBuilder, Error, Message, NoProxy, Proxy, ProxyError};

use crate::facade::support::{EchoServer, TestCert};
use proxies::{PASSWORD, USER};

/// A plain echo server, or a TLS one with its certificate.
async fn server(tls: bool) -> (EchoServer, Option<TestCert>) {
    if !tls {
        return (EchoServer::start(|_| {}).await, None);
    }
    let cert = TestCert::new();
    let config = cert.server.clone();
    let server = EchoServer::start(move |server| {
        server.tls(config);
    })
    .await;
    (server, Some(cert))
}

/// A builder through `proxy_url`, trusting `cert` for wss.
fn builder(proxy_url: &str, cert: Option<&TestCert>) -> ClientBuilder {
    let mut builder = ClientBuilder::new();
    builder.proxy(Proxy::parse(proxy_url).expect("proxy url"));
    if let Some(cert) = cert {
        builder.root_store(cert.roots.clone()).expect("roots");
    }
    builder
}

/// Connects to the server through `proxy_url` and checks one echo (and TLS for wss).
async fn echo_through(proxy_url: &str, tls: bool) -> EchoServer {
    let (server, cert) = server(tls).await;
    let scheme = if tls { "wss" } else { "ws" };
    let mut ws = builder(proxy_url, cert.as_ref())
        .connect(&server.url(scheme, "localhost"))
        .await
        .unwrap_or_else(|err| panic!("{scheme} through {proxy_url}: {err}"));
    assert_eq!(ws.get_ref().is_tls(), tls);
    ws.send(Message::text("through the proxy")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("through the proxy")
    );
    ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
    server
}

/// The error of connecting to a plain server through `proxy_url`.
async fn refusal(proxy_url: &str) -> ProxyError {
    let (server, _) = server(false).await;
    match builder(proxy_url, None)
        .connect(&server.url("ws", "127.0.0.1"))
        .await
    {
        Err(Error::Proxy(err)) => err,
        Err(other) => panic!("expected a proxy error, got {other}"),
        Ok(_) => panic!("connected through {proxy_url}"),
    }
}

#[tokio::test]
async fn ws_and_wss_through_tinyproxy_with_basic_auth() {
    let proxy = proxies::tinyproxy(true);
    let url = proxy.url("http", Some((USER, PASSWORD)));
    for tls in [false, true] {
        let server = echo_through(&url, tls).await;
        let line = format!("CONNECT localhost:{}", server.addr.port());
        assert!(
            proxy.log().contains(&line),
            "{line} not in:\n{}",
            proxy.log()
        );
    }
}

#[tokio::test]
async fn tinyproxy_refuses_wrong_credentials_401_and_missing_ones_407() {
    let proxy = proxies::tinyproxy(true);
    // tinyproxy answers wrong credentials with 401, missing ones with 407.
    for (credentials, code) in [(Some((USER, "wrong")), 401), (None, 407)] {
        let err = refusal(&proxy.url("http", credentials)).await;
        assert!(
            matches!(&err, ProxyError::Refused { status } if status.as_u16() == code),
            "{err}"
        );
        assert!(err.is_auth());
        assert!(err.to_string().contains(&code.to_string()), "{err}");
    }
}

#[tokio::test]
async fn ws_and_wss_through_dante_socks5_and_socks5h() {
    let proxy = proxies::dante();
    for (scheme, tls) in [("socks5h", false), ("socks5h", true), ("socks5", true)] {
        let server = echo_through(&proxy.url(scheme, None), tls).await;
        let port = format!(".{}", server.addr.port());
        assert!(
            proxy.log().contains(&port),
            "{port} not in:\n{}",
            proxy.log()
        );
    }
}

#[tokio::test]
async fn ws_and_wss_through_microsocks_with_rfc1929_credentials() {
    let proxy = proxies::microsocks();
    let url = proxy.url("socks5h", Some((USER, PASSWORD)));
    for tls in [false, true] {
        echo_through(&url, tls).await;
    }
}

#[tokio::test]
async fn rfc1929_microsocks_refuses_wrong_or_missing_credentials() {
    let proxy = proxies::microsocks();
    let wrong = refusal(&proxy.url("socks5h", Some((USER, "wrong")))).await;
    assert!(matches!(wrong, ProxyError::AuthFailed), "{wrong}");
    // Without credentials the proxy offers no method we can use.
    let missing = refusal(&proxy.url("socks5h", None)).await;
    assert!(missing.is_auth(), "{missing}");
}

#[tokio::test]
async fn no_proxy_sends_the_listed_servers_around_the_proxy() {
    // A proxy that refuses us: only a connection that goes around it can succeed.
    let proxy = proxies::tinyproxy(true);
    let (server, _) = server(false).await;
    let url = server.url("ws", "127.0.0.1");
    let mut refusing = Proxy::parse(&proxy.url("http", None)).unwrap();
    let mut builder = ClientBuilder::new();
    builder.proxy(refusing.clone());
    assert!(matches!(
        builder.connect(&url).await,
        Err(Error::Proxy(ProxyError::Refused { .. }))
    ));
    let asked = proxy.log().matches("CONNECT 127.0.0.1").count();
    assert_eq!(asked, 1, "{}", proxy.log());
    refusing.set_no_proxy(NoProxy::parse("example.com, 127.0.0.0/8"));
    builder.proxy(refusing);
    builder
        .connect(&url)
        .await
        .expect("direct, around the proxy");
    assert_eq!(proxy.log().matches("CONNECT 127.0.0.1").count(), asked);
    // proxy_env(false) is direct as well.
    ClientBuilder::new()
        .proxy_env(false)
        .connect(&url)
        .await
        .expect("direct");
}
