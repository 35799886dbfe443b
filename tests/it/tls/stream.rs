//! The tokio adapter over an in-memory duplex pipe.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tether_teaching_tls::{accept, connect, CipherSuite, Error, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";

fn name() -> ServerName<'static> {
    ServerName::try_from(NAME).unwrap().to_owned()
}

#[tokio::test]
async fn stream_carries_data_both_ways_and_closes_with_close_notify() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let (a, b) = tokio::io::duplex(1024);
    let server = tokio::spawn({
        let config = Arc::new(pki.server_config());
        async move {
            let mut s = accept(config, b).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            (got, s.connection().cipher_suite())
        }
    });
    let mut c = connect(Arc::new(pki.client_config()), name(), a)
        .await
        .unwrap();
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(&data).await.unwrap();
    c.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    c.read_to_end(&mut echoed).await.unwrap();
    let (got, suite) = server.await.unwrap();
    assert_eq!(got, data);
    assert_eq!(echoed, data);
    assert_eq!(suite, Some(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256));
    assert!(c
        .transcript()
        .events()
        .iter()
        .any(|e| e.step == Step::ClientVerifies));
}

#[tokio::test]
async fn stream_reports_truncation_as_unexpected_eof() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let (a, b) = tokio::io::duplex(1024);
    let server = tokio::spawn({
        let config = Arc::new(pki.server_config());
        async move {
            let s = accept(config, b).await.unwrap();
            // Drop the transport without close_notify.
            drop(s);
        }
    });
    let mut c = connect(Arc::new(pki.client_config()), name(), a)
        .await
        .unwrap();
    server.await.unwrap();
    let mut buf = [0u8; 16];
    let err = c.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(Error::Truncated { .. })
    ));
}

#[tokio::test]
async fn failed_handshake_keeps_its_transcript_and_alerts_the_peer() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let (a, b) = tokio::io::duplex(1024);
    let server = tokio::spawn({
        let config = Arc::new(pki.server_config());
        async move { accept(config, b).await.err() }
    });
    // A client that trusts nothing.
    let conn = tether_teaching_tls::Connection::client(
        Arc::default(),
        name(),
        rustls_pki_types::UnixTime::now(),
    )
    .unwrap();
    let mut c = tether_teaching_tls::TeachingTlsStream::new(conn, a);
    let err = c.handshake().await.unwrap_err();
    assert!(matches!(err, Error::Certificate(_)));
    assert!(c
        .transcript()
        .events()
        .iter()
        .any(|e| e.title == "certificate refused"));
    assert!(matches!(
        server.await.unwrap(),
        Some(Error::AlertReceived(_))
    ));
}
