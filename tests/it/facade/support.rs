//! Shared pieces of the facade, interop and heartbeat tests: an echo server on loopback,
//! certificates, and a counting allocator with a way to measure in a child process.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use stats_alloc::{Stats, StatsAlloc, INSTRUMENTED_SYSTEM};
use tether::{Message, Server, WebSocket};
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
pub(crate) async fn echo<S>(ws: WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
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

/// Counts every allocation of this test binary (process-wide), for the memory and
/// allocation tests. Read it with [`allocator_stats`].
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Set in a measuring child process (see [`measure_in_child`]).
const CHILD_ENV: &str = "TETHER_MEASURING_CHILD";
/// Printed by a measuring child that finished its body.
const CHILD_OK: &str = "measuring-child ok";

/// The counting allocator's totals so far, process-wide.
pub(crate) fn allocator_stats() -> Stats {
    GLOBAL.stats()
}

/// Heap bytes allocated and not yet freed, process-wide.
pub(crate) fn live_bytes() -> i64 {
    let stats = allocator_stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// Runs the ignored test `name` (its full path, `area::module::test`) alone, in a child
/// process of this test binary, and fails unless it passed within `limit`.
///
/// The counting allocator is process-wide, so a measurement taken among other tests running
/// in parallel would count their allocations too; the child runs nothing else. The child
/// test wraps its body in [`as_measuring_child`].
pub(crate) fn measure_in_child(name: &str, limit: Duration) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = std::process::Command::new(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the measuring child");
    // Bounded wait: poll the child, kill it past the deadline.
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("child status").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the measuring child {name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The marker also catches a renamed test, which `--exact` would silently skip.
    assert!(
        output.status.success() && stdout.contains(CHILD_OK),
        "measuring child {name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Runs `body` if this process is a measuring child started by [`measure_in_child`], and
/// tells the parent it finished; does nothing in an ordinary test run (`--include-ignored`),
/// where other tests would blur the count.
// The child reports to the parent test through its standard output.
#[allow(clippy::print_stdout)]
pub(crate) fn as_measuring_child(body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    body();
    println!("{CHILD_OK}");
}

/// [`as_measuring_child`] for an async body, run on a runtime of two workers (the machine
/// these tests are sized for).
pub(crate) fn as_measuring_child_async<F: std::future::Future<Output = ()>>(
    body: impl FnOnce() -> F,
) {
    as_measuring_child(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(body());
    });
}
