//! Interop with the OpenSSL command line (RFC 5246 on the wire, both roles, both suites).
//!
//! Needs `openssl` on PATH; `scripts/install-peers.sh` installs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tether_teaching_tls::{accept, connect, CipherSuite, Transcript};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::time::timeout;

use super::pki::{ca_signed, server_key_pem, Pki, Validity};

const NAME: &str = "tls.tether.test";
const LIMIT: Duration = Duration::from_secs(20);

/// A scratch directory with the PEM files OpenSSL reads; removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(tag: &str, pki: &Pki) -> Self {
        // Tests run in parallel and two may use the same suite: a directory per call, so
        // one test's drop cannot delete the files another's openssl is about to read.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tether-tls-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(dir.join("server.pem"), &pki.server_pem).unwrap();
        std::fs::write(dir.join("key.pem"), server_key_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn require_openssl() {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl not found: run scripts/install-peers.sh");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn our_client_against_s_server(suite: CipherSuite) {
    our_client_against_s_server_with(suite, &[]).await;
}

/// Our client against `openssl s_server` started with `extra` arguments; returns the
/// client's transcript.
async fn our_client_against_s_server_with(suite: CipherSuite, extra: &[&str]) -> Transcript {
    require_openssl();
    let pki = ca_signed(&[NAME], Validity::Now);
    let files = Files::new(&format!("s_server-{:04x}", suite.0), &pki);
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-tls1_2", "-rev", "-naccept", "1"])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .args([
            "-cert",
            &files.path("server.pem"),
            "-key",
            &files.path("key.pem"),
        ])
        .args(["-cipher", suite.openssl_name().unwrap()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // s_server prints ACCEPT once it listens: wait for that event, not for a time.
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut listening = false;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("ACCEPT") {
            listening = true;
            break;
        }
    }
    assert!(listening, "openssl s_server exited before listening");
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut client_config = pki.client_config();
    client_config.set_cipher_suites(vec![suite]);
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    let mut tls = connect(Arc::new(client_config), name, tcp).await.unwrap();
    assert_eq!(tls.connection().cipher_suite(), Some(suite));

    tls.write_all(b"hello teaching tls\n").await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        assert_eq!(
            tls.read(&mut byte).await.unwrap(),
            1,
            "s_server closed early"
        );
        got.push(byte[0]);
    }
    // -rev answers each line reversed: data went both ways through AES-GCM records.
    assert_eq!(got, b"slt gnihcaet olleh\n");
    tls.shutdown().await.unwrap();
    tls.transcript().clone()
}

async fn s_client_against_our_server(suite: CipherSuite) {
    require_openssl();
    let pki = ca_signed(&[NAME], Validity::Now);
    let files = Files::new(&format!("s_client-{:04x}", suite.0), &pki);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server_config = pki.server_config();
    server_config.set_cipher_suites(vec![suite]);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = accept(Arc::new(server_config), tcp).await.unwrap();
        let negotiated = tls.connection().cipher_suite();
        let mut buf = [0u8; 1024];
        let n = tls.read(&mut buf).await.unwrap();
        tls.write_all(&buf[..n]).await.unwrap();
        tls.flush().await.unwrap();
        (negotiated, buf[..n].to_vec(), tls)
    });
    let mut client = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-quiet", "-verify_return_error"])
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", NAME, "-verify_hostname", NAME])
        .args(["-CAfile", &files.path("ca.pem")])
        .args(["-cipher", suite.openssl_name().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"echo me\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap();
    assert_eq!(line.as_deref(), Some("echo me"));
    let (negotiated, received, _tls) = server.await.unwrap();
    assert_eq!(negotiated, Some(suite));
    assert_eq!(received, b"echo me\n");
}

#[tokio::test]
async fn interop_our_client_against_openssl_s_server_rsa() {
    timeout(
        LIMIT,
        our_client_against_s_server(CipherSuite::RSA_WITH_AES_128_GCM_SHA256),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn interop_our_client_against_openssl_s_server_ecdhe() {
    timeout(
        LIMIT,
        our_client_against_s_server(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn interop_openssl_s_client_against_our_server_rsa() {
    timeout(
        LIMIT,
        s_client_against_our_server(CipherSuite::RSA_WITH_AES_128_GCM_SHA256),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn interop_openssl_s_client_against_our_server_ecdhe() {
    timeout(
        LIMIT,
        s_client_against_our_server(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn interop_our_client_against_openssl_s_server_chacha20() {
    timeout(
        LIMIT,
        our_client_against_s_server(CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn interop_openssl_s_client_against_our_server_chacha20() {
    timeout(
        LIMIT,
        s_client_against_our_server(CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    )
    .await
    .unwrap();
}

/// RFC 5246 section 7.4.6: `s_server -verify 1` (like GnuTLS by default) sends a
/// CertificateRequest; a client without a certificate answers with an empty Certificate
/// and the handshake goes on.
#[tokio::test]
async fn interop_rfc5246_7_4_6_our_client_answers_a_certificate_request_with_an_empty_certificate()
{
    for suite in [
        CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ] {
        let transcript = timeout(
            LIMIT,
            our_client_against_s_server_with(suite, &["-verify", "1"]),
        )
        .await
        .unwrap();
        let titles: Vec<&str> = transcript
            .events()
            .iter()
            .map(|e| e.title.as_str())
            .collect();
        assert!(
            titles.contains(&"CertificateRequest"),
            "{suite}: {titles:?}"
        );
        assert!(
            titles.contains(&"Certificate (empty)"),
            "{suite}: {titles:?}"
        );
    }
}
