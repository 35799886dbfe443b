//! Shared pieces of the facade and interop tests: an echo server on loopback, certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use tether::{Message, Server, ServerSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A tether echo server on 127.0.0.1 (text and binary sent back as they came, flushed once per
/// batch), stopped gracefully by [`EchoServer::stop`] or aborted on drop.
pub(crate) struct EchoServer {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tether::Error>>>,
}

impl EchoServer {
    /// Starts the server after `setup` configured it (TLS, subprotocols, rejections).
    pub(crate) async fn start(setup: impl FnOnce(&mut Server)) -> EchoServer {
        let mut server = Server::bind("127.0.0.1:0").await.expect("bind loopback");
        setup(&mut server);
        let addr = server.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_until(|ws, _conn| echo(ws), async {
            let _ = stopped.await;
        }));
        EchoServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}/", self.addr.port())
    }

    /// Stops accepting, waits for the connections to finish (grace period) and the loop.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server loop");
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Echoes data messages through the split halves; `forward` flushes when the reader has
/// nothing more buffered, so a burst goes back in one write.
pub(crate) async fn echo(ws: ServerSocket) {
    let (reader, mut writer) = ws.split();
    let data = reader.filter_map(|message| async move {
        match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(Ok(message)),
            Ok(_) => None,
            Err(err) => Some(Err(err)),
        }
    });
    let _ = data.forward(&mut writer).await;
}

/// A self-signed certificate for `localhost` and 127.0.0.1, as rustls wants it and as PEM.
pub(crate) struct TestCert {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) roots: rustls::RootCertStore,
}

impl TestCert {
    pub(crate) fn new() -> TestCert {
        let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("rcgen certificate");
        let der = cert.der().clone();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(
            rustls_pki_types::PrivatePkcs8KeyDer::from(key_pair.serialize_der()),
        );
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .expect("server certificate");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).expect("root certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
            server: Arc::new(server),
            roots,
        }
    }
}
