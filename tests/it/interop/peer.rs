//! Running the interop peers (Python `websockets`, Node `ws`) as child processes.
//!
//! The peers are installed by `scripts/install-peers.sh` into `$TETHER_PEERS_DIR` (default
//! `<workspace>/target/peers`). Missing peers fail the test with that hint; they never make
//! it pass silently. Every child is killed when its handle drops, and every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a peer may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a scripted peer client may run (1 MiB echoes included).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which real implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Python,
    Node,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peers_dir() -> PathBuf {
    std::env::var_os("TETHER_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/peers"))
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "interop peer {what} not found at {}: run scripts/install-peers.sh \
         (or set TETHER_PEERS_DIR to where it installed them)",
        path.display()
    );
}

fn command(kind: Kind) -> Command {
    let peers = peers_dir();
    let scripts = workspace().join("tests/peers");
    let mut command = match kind {
        Kind::Python => {
            let python = peers.join("py/bin/python");
            require(&python, "python websockets");
            let mut command = Command::new(python);
            command.arg(scripts.join("py_peer.py"));
            command
        }
        Kind::Node => {
            let modules = peers.join("node/node_modules");
            require(&modules.join("ws"), "node ws");
            let mut command = Command::new("node");
            command
                .env("NODE_PATH", modules)
                .arg(scripts.join("node_peer.js"));
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// A peer running as a server; killed on drop.
pub(crate) struct PeerServer {
    _child: Child,
    pub(crate) port: u16,
}

impl PeerServer {
    /// Starts `kind` as an echo server with `args` and waits for its `LISTENING <port>`.
    pub(crate) async fn start(kind: Kind, args: &[&str]) -> PeerServer {
        let mut child = command(kind)
            .arg("server")
            .args(args)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {kind:?} peer: {err}"));
        let mut lines = lines(&mut child);
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("peer stdout") {
                if let Some(port) = line.strip_prefix("LISTENING ") {
                    return port.trim().parse::<u16>().expect("a port number");
                }
            }
            panic!("{kind:?} peer exited before listening");
        })
        .await
        .unwrap_or_else(|_| panic!("{kind:?} peer did not listen within {START_TIMEOUT:?}"));
        PeerServer {
            _child: child,
            port,
        }
    }

    pub(crate) fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}/", self.port)
    }
}

/// What a scripted peer client printed and how it exited.
#[derive(Debug)]
pub(crate) struct ClientRun {
    pub(crate) success: bool,
    pub(crate) lines: Vec<String>,
}

impl ClientRun {
    /// Asserts the run succeeded and printed every one of `expected` as an `ok ...` line.
    pub(crate) fn assert_ok(&self, expected: &[&str]) {
        assert!(self.success, "peer client failed: {:#?}", self.lines);
        for want in expected {
            assert!(
                self.lines.iter().any(|line| line == want),
                "missing {want:?} in {:#?}",
                self.lines
            );
        }
    }
}

/// Runs `kind` as a scripted client against `url` with `args`, to completion.
pub(crate) async fn run_client(kind: Kind, url: &str, args: &[&str]) -> ClientRun {
    let mut child = command(kind)
        .arg("client")
        .arg(url)
        .args(args)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {kind:?} peer: {err}"));
    let mut lines = lines(&mut child);
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await.expect("peer stdout") {
            out.push(line);
        }
        let status = child.wait().await.expect("peer exit status");
        ClientRun {
            success: status.success(),
            lines: out,
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{kind:?} peer client did not finish within {CLIENT_TIMEOUT:?}"))
}

fn lines(child: &mut Child) -> Lines<BufReader<ChildStdout>> {
    BufReader::new(child.stdout.take().expect("piped stdout")).lines()
}

/// The `ok` lines every full scripted client run prints.
pub(crate) const FULL_RUN: &[&str] = &[
    "ok echo 0",
    "ok echo 125",
    "ok echo 126",
    "ok echo 65535",
    "ok echo 65536",
    "ok echo 1048576",
    "ok fragmented",
    "ok ping",
    "ok close 4001",
];
