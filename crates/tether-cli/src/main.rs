//! The `tether` command: a WebSocket echo/broadcast server, a client, and a live walk through
//! the tutorial.
//!
//! ```text
//! tether demo    [--burst N] [--large BYTES] [--no-tls | --cipher SUITE]   the tutorial, live
//! tether serve   [--addr 127.0.0.1:9001] [--broadcast] [--tls-cert FILE --tls-key FILE]
//!                [--heartbeat 20s [--heartbeat-timeout 10s]] [--topics [--redis URL]]
//! tether connect URL [--echo] [--header 'K: V']... [--subprotocol P]... [--ca FILE]
//!                [--heartbeat 5s [--heartbeat-timeout 2s]] [--reconnect]
//! tether tls-demo [--connect HOST:PORT | --listen ADDR --cert FILE --key FILE]   TLS 1.2, step by step
//! ```
//!
//! `serve` and `connect` are built on the `tether` facade; `demo` drives the layers below it
//! (`tether-handshake`, `tether-codec`) directly, because showing their bytes is its point.
//! Logs go to stderr (`-v` debug with a line per message, for `serve` also a line per frame;
//! `-vv` trace, or `RUST_LOG`).
//!
//! Each subcommand lives in its own module with a clap `Args` struct and an
//! `async fn run(Args) -> anyhow::Result<ExitCode>`; this file only parses and dispatches.
#![forbid(unsafe_code)]

mod annotate;
mod connect;
mod connect_session;
mod conversation;
mod demo;
mod heartbeat;
mod logging;
mod pause;
mod pem;
mod pki;
mod route;
mod serve;
mod serve_sessions;
mod tap;
mod tls_demo;
mod topics;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tether: RFC 6455 WebSockets, with a heartbeat and a teaching TLS handshake.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    /// More log detail on stderr: -v debug (a line per message in and out; with serve, a
    /// line per frame too), -vv trace.
    /// RUST_LOG, when set, decides instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a WebSocket echo server (or, with --broadcast, a relay to every client).
    Serve(serve::Args),
    /// Connect to a WebSocket server: stdin lines out, messages to stdout (or --echo).
    Connect(connect::Args),
    /// Walk through the WebSocket tutorial live on loopback: TLS, Upgrade, frames, 粘包/拆包,
    /// close.
    Demo(demo::Args),
    /// Walk through a real TLS 1.2 handshake, every step annotated.
    TlsDemo(tls_demo::TlsDemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve -v` logs every frame: the server is where a learner watches the traffic.
    logging::init(cli.verbose, matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return logging::fail(&anyhow::Error::from(err)),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Connect(args) => connect::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::TlsDemo(args) => tls_demo::run(args).await,
        }
    });
    // A blocking stdin read may still wait for a line nobody will type (the server closed
    // first); the answer is decided, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result.unwrap_or_else(|err| logging::fail(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_limits_are_checked_at_the_limit_and_one_past_it() {
        for ok in [
            ["tether", "demo", "--burst", "2"],
            ["tether", "demo", "--burst", "1000"],
            ["tether", "demo", "--large", "131072"],
            ["tether", "demo", "--large", "16777216"],
        ] {
            assert!(Cli::try_parse_from(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            ["tether", "demo", "--burst", "1"],
            ["tether", "demo", "--burst", "1001"],
            ["tether", "demo", "--large", "131071"],
            ["tether", "demo", "--large", "16777217"],
        ] {
            let err = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
    }
}
