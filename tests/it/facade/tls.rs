//! `wss://` end to end with rustls and rcgen certificates; verification always on.

use futures::StreamExt;
use tether::{ClientBuilder, Message};

use super::support::{EchoServer, TestCert};

#[tokio::test]
async fn wss_our_client_and_our_server() {
    let cert = TestCert::new();
    let tls = cert.server.clone();
    let server = EchoServer::start(move |server| {
        server.tls(tls);
    })
    .await;
    let mut builder = ClientBuilder::new();
    builder.root_store(cert.roots.clone()).unwrap();
    let mut ws = builder
        .connect(&server.url("wss", "localhost"))
        .await
        .unwrap();
    assert!(ws.get_ref().is_tls());
    let big = Message::binary(vec![0x5a; 300_000]);
    ws.send(big.clone()).await.unwrap();
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), big);
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("over tls"));
    ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn wss_refuses_a_certificate_from_an_unknown_root() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let tls = cert.server.clone();
    let server = EchoServer::start(move |server| {
        server.tls(tls);
    })
    .await;
    let mut builder = ClientBuilder::new();
    builder.root_store(other.roots.clone()).unwrap();
    let err = builder
        .connect(&server.url("wss", "localhost"))
        .await
        .unwrap_err();
    let tether::Error::Io(io) = &err else {
        panic!("expected the tls failure as i/o error, got {err:?}");
    };
    let inner = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(inner, Some(rustls::Error::InvalidCertificate(_))),
        "{err:?}"
    );
}
