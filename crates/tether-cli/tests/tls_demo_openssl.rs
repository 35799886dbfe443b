//! `tether tls-demo --connect` and `--listen` against the OpenSSL command line, with PEM
//! files as OpenSSL writes them. Needs `openssl` on PATH (`scripts/install-peers.sh`).

#[path = "../../../tests/support/port.rs"]
mod port;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// Kills the child when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA and a leaf for `localhost`, made by `openssl`, in a scratch directory.
struct Pem {
    dir: PathBuf,
}

impl Pem {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tether-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        // Distinct names per tag: two CAs with one name would look like one CA whose
        // signature does not verify.
        let ca_subject = format!("/CN=Tether CLI test CA {tag}");
        let run = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl not found: run scripts/install-peers.sh")
                .success();
            assert!(ok, "openssl {args:?} failed");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            &ca_subject,
            "-days",
            "2",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        // The traditional PKCS#1 form ("BEGIN RSA PRIVATE KEY") older OpenSSL writes.
        run(&[
            "rsa",
            "-in",
            "key.pem",
            "-traditional",
            "-out",
            "key-pkcs1.pem",
        ]);
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pem {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tether() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tether"))
}

/// Reads lines from `r` until one contains `needle`, within the time limit.
fn wait_for_line(r: impl Read + Send + 'static, needle: &'static str) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(line);
                return;
            }
        }
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("no line with {needle:?}"))
}

fn run_tls_demo_connect(
    port: u16,
    pem: &Pem,
    cipher: &str,
    input: &'static [u8],
) -> std::process::Output {
    let mut child = tether()
        .args([
            "tls-demo",
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--server-name",
            "localhost",
        ])
        .args(["--ca", &pem.path("ca.pem"), "--cipher", cipher])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin); // end of input: close_notify
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(LIMIT)
        .expect("tether tls-demo --connect hung")
        .unwrap()
}

/// `openssl s_server -tls1_2 -rev` for one connection on a free port, ready to accept.
fn s_server_rev(pem: &Pem, cipher: Option<&str>) -> (Guard, u16) {
    let port = port::unused_port();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-tls1_2", "-rev", "-naccept", "1"])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", &pem.path("cert.pem"), "-key", &pem.path("key.pem")]);
    if let Some(cipher) = cipher {
        cmd.args(["-cipher", cipher]);
    }
    let mut server = Guard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // s_server prints ACCEPT once it listens: wait for that event, not for a time.
    wait_for_line(server.0.stdout.take().unwrap(), "ACCEPT");
    (server, port)
}

#[test]
fn tls_demo_connect_talks_to_openssl_s_server_like_s_client() {
    let pem = Pem::new("connect");
    for (cipher, openssl_cipher) in [
        ("RSA", "AES128-GCM-SHA256"),
        ("ECDHE", "ECDHE-RSA-AES128-GCM-SHA256"),
    ] {
        let (_server, port) = s_server_rev(&pem, Some(openssl_cipher));
        let out = run_tls_demo_connect(port, &pem, cipher, b"hello openssl\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        // The handshake on stderr, the server's answer (reversed) on stdout.
        assert!(
            err.contains("certificate accepted") && err.contains("handshake complete"),
            "{err}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "lssnepo olleh\n");
    }
}

#[test]
fn tls_demo_connect_refuses_an_untrusted_server_with_nonzero_exit() {
    let pem = Pem::new("untrusted");
    let other = Pem::new("untrusted-other-ca");
    let (_server, port) = s_server_rev(&pem, None);
    // Trust a different CA.
    let out = run_tls_demo_connect(port, &other, "ECDHE", b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("handshake failed: certificate refused: unknown issuer"),
        "{err}"
    );
}

/// Starts `tether tls-demo --listen` on a free port with the certificate and `key` from `pem`
/// and `extra` options; the running server and the address it printed.
fn tls_demo_listen(pem: &Pem, key: &str, extra: &[&str]) -> (Guard, String) {
    let mut server = Guard(
        tether()
            .args(["tls-demo", "--listen", "127.0.0.1:0"])
            .args(["--cert", &pem.path("cert.pem"), "--key", &pem.path(key)])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = wait_for_line(server.0.stdout.take().unwrap(), "listening on");
    let addr = line.trim_start_matches("listening on ").trim().to_owned();
    (server, addr)
}

fn listen_and_echo_with_s_client(pem: &Pem, key: &str, openssl_cipher: &str) {
    let (_server, addr) = tls_demo_listen(pem, key, &[]);
    let mut client = Guard(
        Command::new("openssl")
            .args([
                "s_client",
                "-tls1_2",
                "-quiet",
                "-verify_return_error",
                "-connect",
                &addr,
            ])
            .args(["-servername", "localhost", "-verify_hostname", "localhost"])
            .args(["-CAfile", &pem.path("ca.pem"), "-cipher", openssl_cipher])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = client.0.stdin.take().unwrap();
    stdin.write_all(b"echo through the teaching tls\n").unwrap();
    stdin.flush().unwrap();
    let echoed = wait_for_line(client.0.stdout.take().unwrap(), "teaching");
    assert_eq!(echoed, "echo through the teaching tls");
}

#[test]
fn tls_demo_listen_echoes_to_openssl_s_client_with_pkcs8_and_pkcs1_keys() {
    let pem = Pem::new("listen");
    listen_and_echo_with_s_client(&pem, "key.pem", "AES128-GCM-SHA256");
    listen_and_echo_with_s_client(&pem, "key-pkcs1.pem", "ECDHE-RSA-AES128-GCM-SHA256");
}

/// `--listen` drops a client that never finishes the handshake after
/// `--handshake-timeout`, and serves at most `--max-connections` at once: with one slot,
/// a second silent client is only accepted (and its timeout only starts) once the first
/// was dropped.
#[test]
fn tls_demo_listen_times_out_silent_clients_one_slot_at_a_time() {
    use std::net::TcpStream;
    use std::time::Instant;
    let pem = Pem::new("listen-limits");
    let (_server, addr) = tls_demo_listen(
        &pem,
        "key.pem",
        &["--handshake-timeout", "1", "--max-connections", "1"],
    );
    let start = Instant::now();
    let dropped_after = move |mut tcp: TcpStream| {
        tcp.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        // EOF or reset: either way the server let go.
        match tcp.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the server to drop the client, got {other:?}"),
        }
        start.elapsed()
    };
    let first = TcpStream::connect(&addr).unwrap();
    let second = TcpStream::connect(&addr).unwrap();
    let first = std::thread::spawn(move || dropped_after(first));
    let second = dropped_after(second);
    let first = first.join().unwrap();
    assert!(first >= Duration::from_millis(900), "{first:?}");
    assert!(first < Duration::from_secs(5), "{first:?}");
    // The second waited for the slot, then had its own second.
    assert!(
        second >= first + Duration::from_millis(900),
        "{first:?} {second:?}"
    );
}
