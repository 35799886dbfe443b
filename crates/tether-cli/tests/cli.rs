//! The `tether` binary run as a process, the way a user runs it.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Every run is bounded: a hung binary fails the test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(30);

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

async fn run(command: &mut Command) -> Output {
    tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("tether finished in time")
        .expect("tether started")
}

#[tokio::test]
async fn demo_walks_every_step_and_exits_0() {
    let output = run(tether().arg("demo")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let steps = [
        "Step 1  A server starts, a client connects",
        "Step 2  The Upgrade",
        "< HTTP/1.1 101 Switching Protocols",
        "Step 3  Messages both ways",
        "MASK=1 key=",
        "Step 4  Stuck packets (粘包)",
        "1 read -> 10 messages",
        "Step 5  Split packets (拆包)",
        "decoded intact: 1,048,576 bytes",
        "Step 6  Closing handshake",
        "Summary",
    ];
    let mut from = 0;
    for step in steps {
        let at = stdout[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order:\n{stdout}"));
        from += at + step.len();
    }
}

#[tokio::test]
async fn demo_refuses_a_burst_past_its_limit() {
    let output = run(tether().args(["demo", "--burst", "1001"])).await;
    assert_eq!(output.status.code(), Some(2), "clap's usage error status");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--burst"));
}
