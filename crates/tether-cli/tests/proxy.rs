//! `tether connect` behind a proxy and with the system's roots, run as a process so that the
//! environment variables it reads (`http_proxy`, `NO_PROXY`, `SSL_CERT_FILE`...) are its
//! own: `--proxy`, the proxy variables as curl reads them, `NO_PROXY`, `--no-proxy`, and
//! `--roots system|mozilla`. The proxies are real (tinyproxy, dante), started per test.

#[path = "../../../tests/support/proxies.rs"]
mod proxies;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use proxies::{PASSWORD, USER};
use tether::{Message, Server, ServerSocket};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// Every run is bounded: a hung binary fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

/// Every variable that could choose a proxy or roots, removed before a test sets its own.
const CLEARED: &[&str] = &[
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RUST_LOG",
];

/// Runs `tether connect ARGS` with exactly the proxy variables of `env`, sending one line.
async fn connect(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    for name in CLEARED {
        command.env_remove(name);
    }
    let mut child = command
        .arg("connect")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tether connect started");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(b"hello\n").await.expect("stdin written");
    drop(stdin);
    tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("tether connect finished in time")
        .expect("tether connect ran")
}

fn explain(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_echoed(output: &Output) {
    assert_echoed_via(output, None);
}

/// As [`assert_echoed`], through `proxy`: a failure shows the proxy's log too (what it saw of
/// the connection, if anything).
fn assert_echoed_via(output: &Output, proxy: Option<&proxies::RunningProxy>) {
    let explain = || match proxy {
        Some(proxy) => format!("{}\n--- proxy log\n{}", explain(output), proxy.log()),
        None => explain(output),
    };
    assert!(output.status.success(), "{}", explain());
    assert_eq!(output.stdout, b"hello\n", "{}", explain());
}

/// An echo server on 127.0.0.1 (with TLS when `tls` is given); its port.
async fn echo_server(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let mut server = Server::bind("127.0.0.1:0").await.expect("bound");
    if let Some(tls) = tls {
        server.tls(tls);
    }
    let port = server.local_addr().expect("an address").port();
    tokio::spawn(server.serve(|ws: ServerSocket, _conn| async move {
        let (reader, writer) = ws.split();
        let data = reader.filter(|message| {
            std::future::ready(matches!(message, Ok(Message::Text(_) | Message::Binary(_))))
        });
        let _ = data.forward(writer).await;
    }));
    port
}

#[tokio::test]
async fn connect_reads_http_proxy_from_the_environment_with_its_credentials() {
    let proxy = proxies::tinyproxy(true);
    let port = echo_server(None).await;
    let url = format!("ws://127.0.0.1:{port}/");
    let good = proxy.url("http", Some((USER, PASSWORD)));
    assert_echoed_via(
        &connect(&[&url], &[("http_proxy", &good)]).await,
        Some(&proxy),
    );
    let line = format!("CONNECT 127.0.0.1:{port}");
    assert_eq!(proxy.log().matches(&line).count(), 1, "{}", proxy.log());

    // ALL_PROXY without credentials: the proxy's 407 is the error.
    let bare = proxy.url("http", None);
    let output = connect(&[&url], &[("ALL_PROXY", &bare)]).await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("407 Proxy Authentication Required"),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_proxy_no_proxy_flag_and_uppercase_http_proxy_go_direct() {
    // This proxy refuses us: only direct connections succeed.
    let proxy = proxies::tinyproxy(true);
    let refusing = proxy.url("http", None);
    let port = echo_server(None).await;
    let url = format!("ws://127.0.0.1:{port}/");
    let output = connect(&[&url], &[("http_proxy", &refusing)]).await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let asked = proxy.log().matches("CONNECT 127.0.0.1").count();
    assert_eq!(asked, 1, "{}", proxy.log());

    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 4] = [
        (
            &[],
            &[
                ("http_proxy", &refusing),
                ("NO_PROXY", "localhost,127.0.0.1"),
            ],
        ),
        (&[], &[("ALL_PROXY", &refusing), ("no_proxy", "*")]),
        (&["--no-proxy"], &[("http_proxy", &refusing)]),
        // httpoxy: uppercase HTTP_PROXY is not read (as in curl).
        (&[], &[("HTTP_PROXY", &refusing)]),
    ];
    for (flags, env) in cases {
        let args: Vec<&str> = flags.iter().copied().chain([url.as_str()]).collect();
        assert_echoed(&connect(&args, env).await);
    }
    assert_eq!(proxy.log().matches("CONNECT 127.0.0.1").count(), asked);
}

#[tokio::test]
async fn connect_proxy_flag_through_dante_wins_over_the_environment() {
    let dante = proxies::dante();
    let refusing = proxies::tinyproxy(true);
    let port = echo_server(None).await;
    let url = format!("ws://127.0.0.1:{port}/");
    let socks = dante.url("socks5h", None);
    let output = connect(
        &["--proxy", &socks, &url],
        &[("http_proxy", &refusing.url("http", None))],
    )
    .await;
    assert_echoed_via(&output, Some(&dante));
    assert!(dante.log().contains(&format!(".{port}")), "{}", dante.log());
    let line = format!("CONNECT 127.0.0.1:{port}");
    assert!(!refusing.log().contains(&line), "{}", refusing.log());

    let output = connect(&["--proxy", "ftp://x", &url], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--proxy"));
}

/// A self-signed certificate for `localhost` written as PEM; the server's TLS configuration.
fn certificate(name: &str) -> (PathBuf, Arc<rustls::ServerConfig>) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("a directory");
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, cert.pem()).expect("written");
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("server certificate");
    (pem, Arc::new(tls))
}

#[tokio::test]
async fn roots_system_trusts_the_os_store_and_mozilla_does_not() {
    // rustls-native-certs reads the store where OpenSSL does, SSL_CERT_FILE first: a
    // "system store" holding only this test's certificate.
    let (pem, tls) = certificate("system-roots");
    let port = echo_server(Some(tls)).await;
    let url = format!("wss://localhost:{port}/");
    let pem = pem.to_str().expect("utf-8 path");
    let store = [("SSL_CERT_FILE", pem), ("SSL_CERT_DIR", "/nonexistent")];
    // The default is the system store.
    assert_echoed(&connect(&[&url], &store).await);
    assert_echoed(&connect(&["--roots", "system", &url], &store).await);
    let output = connect(&["--roots", "mozilla", &url], &store).await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}

#[tokio::test]
async fn wss_through_the_proxy_from_https_proxy_trusting_the_ca_flag() {
    let proxy = proxies::tinyproxy(true);
    let (pem, tls) = certificate("wss-proxy");
    let port = echo_server(Some(tls)).await;
    let url = format!("wss://localhost:{port}/");
    let good = proxy.url("http", Some((USER, PASSWORD)));
    let output = connect(
        &["--ca", pem.to_str().expect("utf-8"), &url],
        &[("HTTPS_PROXY", &good), ("http_proxy", "http://127.0.0.1:9")],
    )
    .await;
    assert_echoed_via(&output, Some(&proxy));
    let line = format!("CONNECT localhost:{port}");
    assert!(proxy.log().contains(&line), "{}", proxy.log());
}
