//! `--heartbeat` and `--reconnect` as a user runs them: `tether serve` and `tether connect`
//! processes, and in-process tether servers that stop answering while keeping TCP open.

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{Server, ServerSocket, StreamExt as _};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// Every wait is bounded: a hung process fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

/// A `tether` process with its three pipes, killed when dropped.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
    /// Every stderr line read so far.
    log: Vec<String>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .kill_on_drop(true)
            .spawn()
            .expect("tether started");
        Process {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            stderr: BufReader::new(child.stderr.take().expect("stderr")).lines(),
            child,
            log: Vec::new(),
        }
    }

    async fn stdout_line(&mut self) -> String {
        tokio::time::timeout(LIMIT, self.stdout.next_line())
            .await
            .expect("a stdout line in time")
            .expect("stdout read")
            .unwrap_or_else(|| panic!("stdout ended; log:\n{}", self.log.join("\n")))
    }

    /// Reads stderr until a line contains `needle`; returns that line.
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(LIMIT, async {
            while let Some(line) = self.stderr.next_line().await.expect("stderr read") {
                self.log.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("no {needle:?} in the log:\n{}", self.log.join("\n")),
        }
    }

    async fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("stdin write");
    }

    /// Closes stdin and waits for the exit status.
    async fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("exited in time")
            .expect("waited");
        while let Ok(Some(line)) = self.stderr.next_line().await {
            self.log.push(line);
        }
        (status, self.log.join("\n"))
    }
}

/// An in-process tether server whose first `freeze` connections stop answering after the
/// Upgrade (held open, never read: no pong, no echo, no close answer) and whose others echo.
async fn freezing_server(freeze: usize) -> String {
    let server = Server::bind("127.0.0.1:0").await.expect("bound");
    let url = format!("ws://{}/", server.local_addr().expect("an address"));
    let seen = Arc::new(AtomicUsize::new(0));
    let frozen: Arc<Mutex<Vec<ServerSocket>>> = Arc::default();
    tokio::spawn(server.serve(move |mut ws, _conn| {
        let nth = seen.fetch_add(1, Ordering::SeqCst);
        let frozen = Arc::clone(&frozen);
        async move {
            if nth < freeze {
                frozen.lock().unwrap().push(ws);
                return;
            }
            while let Some(Ok(message)) = ws.next().await {
                if message.is_data() && ws.send(message).await.is_err() {
                    return;
                }
            }
        }
    }));
    url
}

#[tokio::test]
async fn serve_and_connect_with_heartbeat_log_round_trips_and_exit_0() {
    let mut serve = Process::spawn(&["serve", "--addr", "127.0.0.1:0", "--heartbeat", "100ms"]);
    let listening = serve.stdout_line().await;
    let url = listening
        .strip_prefix("listening on ")
        .expect("listening line");
    let mut connect = Process::spawn(&["connect", url, "--heartbeat", "300ms"]);
    connect.send_line("hello").await;
    assert_eq!(connect.stdout_line().await, "hello");
    // The client probes the server, the server probes the client: both log round trips.
    let line = connect.wait_for_log("heartbeat rtt").await;
    assert!(line.contains("timeout now"), "{line}");
    serve.wait_for_log("heartbeat rtt").await;
    let (status, log) = connect.finish().await;
    assert!(status.success(), "{status:?}\n{log}");
    serve.wait_for_log("connection closed").await;
}

#[tokio::test]
async fn connect_reconnect_declares_a_silent_server_dead_and_connects_again() {
    let url = freezing_server(1).await;
    let mut connect = Process::spawn(&[
        "connect",
        &url,
        "--heartbeat",
        "200ms",
        "--heartbeat-timeout",
        "100ms",
        "--reconnect",
    ]);
    connect.wait_for_log("state: open, healthy").await;
    let dead = connect.wait_for_log("peer declared dead").await;
    assert!(dead.contains("heartbeat timeout"), "{dead}");
    connect.wait_for_log("reconnecting in").await;
    connect.wait_for_log("reconnected after").await;
    connect.send_line("after").await;
    assert_eq!(connect.stdout_line().await, "after");
    let (status, log) = connect.finish().await;
    assert!(status.success(), "{status:?}\n{log}");
}

#[tokio::test]
async fn connect_heartbeat_without_reconnect_exits_1_when_the_server_goes_silent() {
    let url = freezing_server(usize::MAX).await;
    let mut connect = Process::spawn(&["connect", &url, "--heartbeat", "100ms"]);
    connect.wait_for_log("peer declared dead").await;
    let status = tokio::time::timeout(LIMIT, connect.child.wait())
        .await
        .expect("exited in time")
        .expect("waited");
    let (_, log) = connect.finish().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("heartbeat timeout"), "{log}");
}

#[tokio::test]
async fn heartbeat_flags_are_checked_before_anything_connects() {
    for args in [
        &["connect", "ws://127.0.0.1:1/", "--heartbeat-timeout", "2s"][..],
        &["connect", "ws://127.0.0.1:1/", "--heartbeat", "9ms"],
        &["connect", "ws://127.0.0.1:1/", "--heartbeat", "5 s"],
        &["serve", "--heartbeat", "25h"],
    ] {
        let (status, log) = Process::spawn(args).finish().await;
        assert_eq!(status.code(), Some(2), "{args:?}: a usage error\n{log}");
    }
}

#[tokio::test]
async fn demo_ends_with_the_heartbeat_step_and_its_summary_line() {
    let (status, _) = {
        let mut demo = Process::spawn(&["demo"]);
        let mut stdout = Vec::new();
        loop {
            let line = tokio::time::timeout(LIMIT, demo.stdout.next_line())
                .await
                .expect("demo output in time")
                .expect("stdout read");
            match line {
                Some(line) => stdout.push(line),
                None => break,
            }
        }
        let stdout = stdout.join("\n");
        let mut from = 0;
        for line in [
            "Closing handshake",
            "Heartbeat: a silent server is detected and replaced",
            "server declared dead: close 1011",
            "connected again",
            "Summary",
            "heartbeat    rtt",
        ] {
            let at = stdout[from..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order:\n{stdout}"));
            from += at + line.len();
        }
        demo.finish().await
    };
    assert!(status.success(), "{status:?}");
}
