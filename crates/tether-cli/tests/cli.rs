//! The `tether` binary run as a process, the way a user runs it: `demo`, `serve` and
//! `connect`, each checked by its output and its exit status.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use tether::http::{HeaderValue, StatusCode};
use tether::{Accept, CloseCode, Message, Rejection, Server, SinkExt as _, StreamExt as _};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::mpsc;

/// Every run and every wait is bounded: a hung binary fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

fn tether() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    command
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {LIMIT:?}"))
}

async fn run(command: &mut Command) -> Output {
    bounded("tether", command.output())
        .await
        .expect("tether started")
}

/// Runs `tether connect ARGS` with `stdin` as its standard input.
async fn connect(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tether()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("tether connect started");
    let mut input = child.stdin.take().expect("piped stdin");
    // Written while the output is read: a large input and its echoes fill both pipes.
    let stdin = stdin.to_vec();
    let writing = tokio::spawn(async move {
        input.write_all(&stdin).await.expect("stdin written");
    });
    let output = bounded("tether connect", child.wait_with_output())
        .await
        .expect("tether connect ran");
    writing.await.expect("the writer");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn explain(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// A running `tether serve`, killed when dropped.
struct Serve {
    child: Child,
    /// `ws://127.0.0.1:PORT/` (or `wss://`), read from its first line of stdout.
    url: String,
    stderr: BufReader<ChildStderr>,
    /// Its log (stderr) read so far.
    log: String,
}

impl Serve {
    async fn start(args: &[&str]) -> Serve {
        let mut child = tether()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .spawn()
            .expect("tether serve started");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        bounded(
            "the listening line",
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("stdout read");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Serve {
            child,
            url,
            stderr,
            log: String::new(),
        }
    }

    fn port(&self) -> u16 {
        let authority = self.url.split('/').nth(2).expect("an authority");
        authority
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .expect("a port")
    }

    /// Reads the log until a line contains `needle`.
    async fn wait_for_log(&mut self, needle: &str) {
        bounded(needle, async {
            while !self.log.contains(needle) {
                let n = self
                    .stderr
                    .read_line(&mut self.log)
                    .await
                    .expect("stderr read");
                assert!(
                    n > 0,
                    "serve ended before logging {needle:?}:\n{}",
                    self.log
                );
            }
        })
        .await;
    }

    /// SIGTERM, then the exit status and the whole log.
    async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("still running").to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill ran");
        assert!(killed.success());
        let status = bounded("tether serve stopping", self.child.wait())
            .await
            .expect("waited");
        let _ = self.stderr.read_to_string(&mut self.log).await;
        (status, self.log)
    }
}

/// Whether a line of `log` contains every one of `parts`.
fn has_line_with(log: &str, parts: &[&str]) -> bool {
    log.lines()
        .any(|line| parts.iter().all(|part| line.contains(part)))
}

/// An in-process server whose handler reports what it saw on a channel.
async fn scripted_server<H, F>(handler: H) -> String
where
    H: Fn(tether::ServerSocket, tether::ConnectionInfo) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut server = Server::bind("127.0.0.1:0").await.expect("bound");
    server.decide(|request| {
        let offered = request.subprotocols().iter().any(|p| p == "chat");
        Ok(if offered {
            Accept::new().with_subprotocol("chat")
        } else {
            Accept::new()
        })
    });
    let url = format!("ws://{}/", server.local_addr().expect("an address"));
    tokio::spawn(server.serve(handler));
    url
}

fn assert_in_order(stdout: &str, parts: &[&str]) {
    let mut from = 0;
    for part in parts {
        let at = stdout[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order:\n{stdout}"));
        from += at + part.len();
    }
}

#[tokio::test]
async fn demo_walks_every_step_and_exits_0() {
    let output = run(tether().arg("demo")).await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_in_order(
        &text(&output.stdout),
        &[
            "Step 1  A server starts, a client connects",
            // The teaching TLS before the Upgrade: the tutorial's five steps, as they happened.
            "Step 2  HTTPS first: the TLS 1.2 handshake in five steps",
            "1 offer      client offered",
            "2 choose     server chose TLS_RSA_WITH_AES_128_GCM_SHA256",
            "3 client     certificate valid for demo.tether.test",
            "premaster: 48 random bytes, sent as 256 bytes",
            "4 server     premaster decrypted with the server's private key",
            "client's Finished matches",
            "5 client     server's Finished matches",
            "records      application data is encrypted with AES-128-GCM",
            "Step 3  The Upgrade",
            "< HTTP/1.1 101 Switching Protocols",
            "Step 4  Messages both ways",
            "MASK=1 key=",
            "Step 5  Stuck packets (粘包)",
            "1 read -> 10 messages",
            "Step 6  Split packets (拆包)",
            "decoded intact: 1,048,576 bytes",
            "Step 7  Closing handshake",
            "Step 8  Compression: permessage-deflate (RFC 7692)",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Extensions: permessage-deflate",
            "header     FIN=1 RSV=100 opcode=0x1",
            "RSV1=1: inflated the payload back to",
            "Summary",
        ],
    );
}

#[tokio::test]
async fn demo_without_tls_runs_the_websocket_over_plain_tcp() {
    let output = run(tether().args(["demo", "--no-tls", "--large", "131072"])).await;
    assert!(output.status.success(), "{}", explain(&output));
    let stdout = text(&output.stdout);
    assert_in_order(
        &stdout,
        &[
            "Step 2  The Upgrade",
            "> GET /tutorial HTTP/1.1",
            "bytes on the wire",
            "Step 4  Stuck packets (粘包): many messages, one TCP read",
            "Step 6  Closing handshake",
        ],
    );
    assert!(!stdout.contains("TLS"), "{stdout}");
}

#[tokio::test]
async fn demo_refuses_a_burst_past_its_limit_and_an_unknown_suite() {
    let output = run(tether().args(["demo", "--burst", "1001"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    assert!(text(&output.stderr).contains("--burst"));
    let output = run(tether().args(["demo", "--cipher", "RC4"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    assert!(text(&output.stderr).contains("unknown cipher suite"));
    let output = run(tether().args(["demo", "--no-tls", "--cipher", "RSA"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
}

#[tokio::test]
async fn serve_echoes_what_connect_sends_and_both_exit_0() {
    let serve = Serve::start(&[]).await;
    assert!(serve.url.starts_with("ws://127.0.0.1:"), "{}", serve.url);
    // Lines are text; a line that is not UTF-8 goes as binary and comes back as raw bytes.
    let output = connect(&[&serve.url], "hello\r\nworld 你好\n\u{0}\n".as_bytes()).await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(text(&output.stdout), "hello\nworld 你好\n\u{0}\n");
    let output = connect(&[&serve.url], b"\xff\xfe\n").await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(output.stdout, b"\xff\xfe");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
    assert!(log.contains("connection opened"), "{log}");
    assert!(log.contains("connection closed"), "{log}");
    assert!(
        !log.contains("frame received"),
        "frames only with -v:\n{log}"
    );
}

/// A fast pipe into `tether connect`, bare, supervised and reconnecting: every line
/// comes back, in order, and the process ends by itself. (A supervised client used to
/// refuse lines while connecting, stop reading stdin, and then wait forever.)
#[tokio::test]
async fn connect_echoes_20_000_piped_lines_in_order_with_and_without_the_supervisor() {
    let serve = Serve::start(&[]).await;
    let input: String = (1..=20_000).map(|i| format!("{i}\n")).collect();
    let modes: [&[&str]; 3] = [
        &[],
        &["--heartbeat", "1s"],
        &["--reconnect", "--heartbeat", "1s"],
    ];
    for mode in modes {
        let args = [mode, &[serve.url.as_str()]].concat();
        let output = connect(&args, input.as_bytes()).await;
        assert!(output.status.success(), "{mode:?}: {}", explain(&output));
        let stdout = text(&output.stdout);
        assert!(
            stdout == input,
            "{mode:?}: {} of 20000 lines back, or out of order",
            stdout.lines().count()
        );
    }
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn serve_verbose_logs_a_line_per_frame_with_its_header_fields() {
    let serve = Serve::start(&["-v"]).await;
    let mut ws = tether::connect(&serve.url).await.expect("connected");
    ws.send(Message::text("hi")).await.expect("sent");
    let echo = bounded("the echo", ws.next())
        .await
        .expect("a message")
        .expect("no error");
    assert_eq!(echo, Message::text("hi"));
    ws.close(CloseCode::NORMAL, "bye").await.expect("closed");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
    // RFC 6455 §5.2: the client's frame arrives masked, the server's echo goes unmasked.
    let frame_line = |needle: &[&str]| has_line_with(&log, needle);
    assert!(
        frame_line(&[
            "frame received",
            "fin=true",
            "opcode=Text",
            "masked=true",
            "len=2"
        ]),
        "{log}"
    );
    assert!(
        frame_line(&[
            "frame queued",
            "fin=true",
            "opcode=Text",
            "masked=false",
            "len=2"
        ]),
        "{log}"
    );
    // The close: "bye" plus the 2-byte code, each way.
    assert!(
        frame_line(&["frame received", "opcode=Close", "len=5"]),
        "{log}"
    );
    assert!(
        frame_line(&["frame queued", "opcode=Close", "len=5"]),
        "{log}"
    );
}

#[tokio::test]
async fn serve_and_connect_echo_as_processes_exit_0_and_1_when_the_server_stops() {
    let mut serve = Serve::start(&[]).await;
    let client = tether()
        .args(["connect", "--echo", &serve.url])
        .spawn()
        .expect("tether connect started");
    serve.wait_for_log("connection opened").await;
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
    // RFC 6455 §7.4.1: 1001 "going away" is not a normal close for the client.
    let output = bounded("tether connect --echo", client.wait_with_output())
        .await
        .expect("tether connect ran");
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1001") && stderr.contains("server shutting down"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_echoes_a_burst_and_a_large_message_in_order_and_intact() {
    let serve = Serve::start(&[]).await;
    let mut ws = tether::connect(&serve.url).await.expect("connected");
    let large = Message::binary((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    for i in 0..1000 {
        ws.feed(Message::text(format!("{i}"))).await.expect("fed");
    }
    ws.feed(large.clone()).await.expect("fed");
    ws.flush().await.expect("flushed");
    bounded("the echoes", async {
        for i in 0..1000 {
            let echoed = ws.next().await.expect("open").expect("no error");
            assert_eq!(echoed, Message::text(format!("{i}")));
        }
        assert!(ws.next().await.expect("open").expect("no error") == large);
    })
    .await;
    ws.close(CloseCode::NORMAL, "").await.expect("closed");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn connect_echo_returns_text_as_text_and_binary_as_binary_then_exits_0() {
    let (seen, mut report) = mpsc::unbounded_channel();
    let url = scripted_server(move |mut ws, _conn| {
        let seen = seen.clone();
        async move {
            let sent = [
                Message::text("one"),
                Message::binary(vec![0u8, 1, 2, 255]),
                Message::text(""),
            ];
            for message in sent.clone() {
                ws.send(message).await.expect("sent");
            }
            for _ in 0..sent.len() {
                let back = ws.next().await.expect("a message").expect("no error");
                let _ = seen.send(back);
            }
            ws.close(CloseCode::NORMAL, "done").await.expect("closed");
        }
    })
    .await;
    let output = connect(&["--echo", &url], b"stdin is not read in --echo mode\n").await;
    assert!(output.status.success(), "{}", explain(&output));
    let mut back = Vec::new();
    while let Ok(message) = report.try_recv() {
        back.push(message);
    }
    assert_eq!(
        back,
        [
            Message::text("one"),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::text("")
        ]
    );
}

/// stdout is buffered (a burst costs one write), so this proves the other half of the
/// bargain: a message that arrives while stdin stays open is printed at once, not when the
/// buffer fills or the command ends. Each line is answered before the next is typed.
#[tokio::test]
async fn connect_prints_each_echo_at_once_while_stdin_stays_open() {
    let serve = Serve::start(&[]).await;
    for flags in [&[][..], &["--heartbeat", "1s"][..]] {
        let mut child = tether()
            .arg("connect")
            .args(flags)
            .arg(&serve.url)
            .stdin(Stdio::piped())
            .spawn()
            .expect("tether connect started");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        for word in ["one", "two", "three"] {
            stdin
                .write_all(format!("{word}\n").as_bytes())
                .await
                .expect("typed");
            let line = bounded("the echo", stdout.next_line()).await.expect("read");
            assert_eq!(line.as_deref(), Some(word), "{flags:?}");
        }
        drop(stdin);
        let status = bounded("tether connect", child.wait()).await.expect("ran");
        assert!(status.success(), "{flags:?}: {status:?}");
    }
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn connect_exits_when_the_server_closes_while_stdin_stays_open() {
    let url = scripted_server(|mut ws, _conn| async move {
        ws.send(Message::text("bye soon")).await.expect("sent");
        let _ = ws.close(CloseCode::NORMAL, "done").await;
    })
    .await;
    let mut child = tether()
        .args(["connect", &url])
        .stdin(Stdio::piped())
        .spawn()
        .expect("tether connect started");
    // Hold stdin open: the command must not wait for a line that never comes.
    let _stdin = child.stdin.take();
    let output = bounded("tether connect", child.wait_with_output())
        .await
        .expect("tether connect ran");
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(text(&output.stdout), "bye soon\n");
}

#[tokio::test]
async fn rfc6455_7_4_connect_exits_nonzero_with_the_close_code_and_reason() {
    let url = scripted_server(|mut ws, _conn| async move {
        let _ = ws.close(CloseCode(4001), "go away now").await;
    })
    .await;
    let output = connect(&["--echo", &url], b"").await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("4001") && stderr.contains("go away now"),
        "{stderr}"
    );
}

#[tokio::test]
async fn connect_fails_nonzero_when_nothing_listens() {
    // Bind and drop: the port is free and refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let output = connect(&[&format!("ws://127.0.0.1:{port}/")], b"").await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    assert!(
        text(&output.stderr).contains("cannot connect"),
        "{}",
        explain(&output)
    );
}

#[tokio::test]
async fn connect_sends_header_fields_and_offers_subprotocols() {
    let url = scripted_server(|mut ws, conn| async move {
        let header = conn
            .request()
            .headers()
            .get("x-tether-test")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("missing")
            .to_owned();
        let report = format!("x-tether-test={header} subprotocol={:?}", ws.subprotocol());
        ws.send(Message::text(report.clone())).await.expect("sent");
        let back = ws.next().await.expect("a message").expect("no error");
        let code = if back == Message::text(report) {
            CloseCode::NORMAL
        } else {
            CloseCode(4000)
        };
        let _ = ws.close(code, "checked").await;
    })
    .await;
    let output = connect(
        &[
            "--echo",
            "--header",
            "X-Tether-Test: yes please",
            "--subprotocol",
            "other",
            "--subprotocol",
            "chat",
            &url,
        ],
        b"",
    )
    .await;
    assert!(output.status.success(), "{}", explain(&output));
}

#[tokio::test]
async fn serve_broadcast_relays_each_message_to_every_client() {
    let serve = Serve::start(&["--broadcast"]).await;
    let mut a = tether::connect(&serve.url).await.expect("a connected");
    let mut b = tether::connect(&serve.url).await.expect("b connected");
    // A client that gets its own message back is subscribed: after both did, nothing is missed.
    for (ws, name) in [(&mut a, "ready a"), (&mut b, "ready b")] {
        ws.send(Message::text(name)).await.expect("sent");
        bounded("own message", async {
            while ws.next().await.expect("open").expect("no error") != Message::text(name) {}
        })
        .await;
    }
    a.send(Message::binary(vec![7u8; 3])).await.expect("sent");
    for ws in [&mut a, &mut b] {
        bounded("the relayed message", async {
            while ws.next().await.expect("open").expect("no error") != Message::binary(vec![7u8; 3])
            {
            }
        })
        .await;
    }
    a.close(CloseCode::NORMAL, "").await.expect("a closed");
    b.close(CloseCode::NORMAL, "").await.expect("b closed");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn rfc6455_7_4_1_serve_closes_clients_with_1001_when_terminated() {
    closes_with_1001_when_terminated(&[]).await;
}

#[tokio::test]
async fn rfc6455_7_4_1_serve_with_heartbeat_closes_clients_with_1001_when_terminated() {
    closes_with_1001_when_terminated(&["--heartbeat", "20s"]).await;
}

/// Starts `tether serve` with `args`, connects, stops the server with SIGTERM and checks the
/// client got a close frame with 1001 (going away).
async fn closes_with_1001_when_terminated(args: &[&str]) {
    let serve = Serve::start(args).await;
    let mut ws = tether::connect(&serve.url).await.expect("connected");
    let reading = tokio::spawn(async move {
        let mut close = None;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                close = frame;
            }
        }
        close
    });
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
    let close = bounded("the close", reading).await.expect("joined");
    assert_eq!(close.map(|frame| frame.code), Some(CloseCode::GOING_AWAY));
}

#[tokio::test]
async fn serve_answers_a_plain_http_get_with_an_html_page() {
    let serve = Serve::start(&[]).await;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", serve.port()))
        .await
        .expect("connected");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("sent");
    let mut response = String::new();
    bounded("the page", tcp.read_to_string(&mut response))
        .await
        .expect("read");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("text/html"), "{response}");
    assert!(
        response.contains("tether connect ws://127.0.0.1/"),
        "{response}"
    );
}

#[tokio::test]
async fn serve_refuses_a_tls_certificate_without_its_key() {
    let output = run(tether().args(["serve", "--tls-cert", "cert.pem"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    assert!(text(&output.stderr).contains("--tls-key"));
}

/// A CA and a `localhost` certificate it signed, as PEM files: (ca, cert, key).
fn certificates(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tether test CA");
    let ca = ca_params.self_signed(&ca_key).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("a certificate");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("a directory");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("written");
    std::fs::write(&paths.1, cert.pem()).expect("written");
    std::fs::write(&paths.2, key.serialize_pem()).expect("written");
    (paths.0, paths.1, paths.2)
}

#[tokio::test]
async fn serve_wss_with_pem_files_and_connect_trusting_the_ca() {
    let (ca, cert, key) = certificates("wss");
    let serve = Serve::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    assert!(serve.url.starts_with("wss://"), "{}", serve.url);
    let url = format!("wss://localhost:{}/", serve.port());
    let output = connect(&["--ca", ca.to_str().unwrap(), &url], b"secure\n").await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(text(&output.stdout), "secure\n");

    // Without the CA, the certificate is unknown: the TLS handshake fails.
    let output = connect(&[&url], b"").await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    assert!(
        text(&output.stderr).contains("cannot connect"),
        "{}",
        explain(&output)
    );
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn rejected_upgrade_is_reported_with_its_status() {
    let mut server = Server::bind("127.0.0.1:0").await.expect("bound");
    server.decide(|_| {
        Err(Rejection::new(StatusCode::FORBIDDEN).with_header(
            tether::http::header::SERVER,
            HeaderValue::from_static("test"),
        ))
    });
    let url = format!("ws://{}/", server.local_addr().expect("an address"));
    tokio::spawn(server.serve(|_ws, _conn| async {}));
    let output = connect(&[&url], b"").await;
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    assert!(text(&output.stderr).contains("403"), "{}", explain(&output));
}

/// Sends an Upgrade request on a raw socket and returns the status line of the answer.
async fn upgrade_status(port: u16, origin: Option<&str>) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connected");
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("sent");
    let mut head = vec![0u8; 256];
    let n = bounded("the answer", tcp.read(&mut head))
        .await
        .expect("read");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn serve_max_connections_answers_503_past_the_limit() {
    let serve = Serve::start(&["--max-connections", "1"]).await;
    let url = format!("ws://127.0.0.1:{}/", serve.port());
    let mut first = bounded("the first client", tether::connect(&url))
        .await
        .expect("the first connection is served");
    assert_eq!(
        upgrade_status(serve.port(), None).await,
        "HTTP/1.1 503 Service Unavailable"
    );
    first
        .send(Message::text("still served"))
        .await
        .expect("sent");
    let echo = bounded("the echo", first.next()).await;
    assert_eq!(
        echo.expect("a message").expect("ok"),
        Message::text("still served")
    );
    first.close(CloseCode::NORMAL, "").await.expect("closed");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

#[tokio::test]
async fn serve_allow_origin_refuses_other_origins_with_403() {
    let serve = Serve::start(&["--allow-origin", "https://app.example"]).await;
    let port = serve.port();
    assert_eq!(
        upgrade_status(port, Some("https://evil.example")).await,
        "HTTP/1.1 403 Forbidden"
    );
    assert_eq!(
        upgrade_status(port, Some("https://app.example")).await,
        "HTTP/1.1 101 Switching Protocols"
    );
    // Not a browser: no Origin, accepted.
    assert_eq!(
        upgrade_status(port, None).await,
        "HTTP/1.1 101 Switching Protocols"
    );
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

/// RFC 7692 §6: with `serve --deflate` and a client that offers it, a compressible message
/// travels with RSV1 set on its frame, and `-v` shows the bit; `connect --no-deflate` offers
/// nothing and its frames go out with RSV1 clear.
#[tokio::test]
async fn rfc7692_serve_deflate_compresses_and_verbose_shows_rsv1() {
    let serve = Serve::start(&["-v", "--deflate"]).await;
    let line = "a compressible line ".repeat(10);
    let output = connect(&[&serve.url], format!("{line}\n").as_bytes()).await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(text(&output.stdout), format!("{line}\n"));
    let output = connect(
        &["--no-deflate", &serve.url],
        format!("{line}\n").as_bytes(),
    )
    .await;
    assert!(output.status.success(), "{}", explain(&output));
    assert_eq!(text(&output.stdout), format!("{line}\n"));
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
    let frame_line = |needle: &[&str]| has_line_with(&log, needle);
    // Compressed both ways with --deflate; the 200-byte text as is with --no-deflate.
    assert!(
        frame_line(&["frame received", "rsv1=true", "opcode=Text"]),
        "{log}"
    );
    assert!(
        frame_line(&["frame queued", "rsv1=true", "opcode=Text"]),
        "{log}"
    );
    assert!(
        frame_line(&["frame received", "rsv1=false", "opcode=Text", "len=200"]),
        "{log}"
    );
    // Sizes before and after: the text inflated from the wire and compressed for the echo.
    assert!(frame_line(&["message inflated", "inflated=200"]), "{log}");
    assert!(
        frame_line(&["message compressed", "len=200", "compressed="]),
        "{log}"
    );
}

#[path = "../../../tests/support/cutting_proxy.rs"]
mod cutting_proxy;

/// `tether serve ARGS` behind a cutting proxy: the server, the proxy, the proxy's URL.
async fn serve_behind(
    args: &[&str],
    schedule: cutting_proxy::CutSchedule,
) -> (Serve, cutting_proxy::CuttingProxy, String) {
    let serve = Serve::start(args).await;
    let upstream = serve
        .url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("serve's address");
    let proxy = cutting_proxy::CuttingProxy::start(upstream, schedule)
        .await
        .expect("proxy started");
    let url = format!("ws://{}/", proxy.addr());
    (serve, proxy, url)
}

/// The test of the reconnecting client through a path that dies: `seq 1 20000 |
/// tether connect --reconnect` through a proxy that resets the connection three times.
/// Without sessions the outbox is at-most-once, so lines in flight at a cut may be lost; what
/// holds is that the process ends by itself, every line printed is one that was sent,
/// none twice, in order. (Exactly-once is the job of `--session`, issue 13.)
#[tokio::test]
async fn connect_reconnect_through_a_cutting_proxy_ends_and_prints_no_line_twice_or_out_of_order() {
    let mut schedule = cutting_proxy::CutSchedule::new(13, 3);
    schedule.min_bytes = 8 << 10;
    schedule.max_bytes = 32 << 10;
    schedule.freeze_percent = 0;
    let (serve, proxy, url) = serve_behind(&[], schedule).await;
    let input: String = (1..=20_000).map(|i| format!("{i}\n")).collect();
    let output = connect(
        &["--reconnect", "--heartbeat", "1s", &url],
        input.as_bytes(),
    )
    .await;
    assert!(output.status.success(), "{}", explain(&output));
    let stdout = text(&output.stdout);
    let lines: Vec<u32> = stdout
        .lines()
        .map(|l| l.parse().expect("a line that was sent"))
        .collect();
    assert!(
        lines.windows(2).all(|w| w[0] < w[1]),
        "a line twice or out of order: {}",
        explain(&output)
    );
    assert!(lines.iter().all(|&n| (1..=20_000).contains(&n)));
    assert!(proxy.cuts() >= 1, "the proxy cut nothing");
    assert!(
        proxy.connections() > proxy.cuts(),
        "the client did not reconnect after the last cut"
    );
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}

/// Issue 13's test over real sockets: 100 000 lines out on one session and 100 000 echoes
/// back, through a proxy that cuts and freezes the connection six times. Every line is
/// printed exactly once, in order; the session ends normally; the resumes are on stderr.
#[tokio::test]
async fn connect_session_through_a_cutting_proxy_prints_every_line_exactly_once_in_order() {
    const LINES: u32 = 100_000;
    let mut schedule = cutting_proxy::CutSchedule::new(29, 6);
    schedule.min_bytes = 64 << 10;
    schedule.max_bytes = 256 << 10;
    schedule.freeze_percent = 50;
    let (serve, proxy, url) = serve_behind(&["--sessions"], schedule).await;
    let input: String = (1..=LINES).map(|i| format!("{i}\n")).collect();
    let output = connect(
        &[
            "--session",
            "--heartbeat",
            "1s",
            "--max-backoff",
            "300ms",
            &url,
        ],
        input.as_bytes(),
    )
    .await;
    assert!(output.status.success(), "{}", explain(&output));
    let stdout = text(&output.stdout);
    let expected: Vec<String> = (1..=LINES).map(|i| i.to_string()).collect();
    let printed: Vec<&str> = stdout.lines().collect();
    if printed != expected {
        let first_gap = printed
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        panic!(
            "{} lines printed, first difference at {first_gap:?}\n{}",
            printed.len(),
            explain(&output)
        );
    }
    let stderr = text(&output.stderr);
    assert!(proxy.cuts() >= 3, "the proxy cut only {}", proxy.cuts());
    assert!(
        stderr.matches("session resumed").count() >= 3,
        "resumes not logged: {stderr}"
    );
    assert!(stderr.contains("session finished"), "{stderr}");
    let (status, log) = serve.stop().await;
    assert!(status.success(), "serve exited {status:?}\n{log}");
}
