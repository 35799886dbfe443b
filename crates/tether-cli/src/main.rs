//! The `tether` command: a WebSocket echo/broadcast server, a client, and a live walk through
//! the tutorial.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and an
//! `async fn run(Args) -> anyhow::Result<ExitCode>`; this file only parses and dispatches.
#![forbid(unsafe_code)]

mod annotate;
mod demo;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tether: RFC 6455 WebSockets, with a heartbeat and a teaching TLS handshake.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    /// More log detail on stderr: -v for debug (frame-level), -vv for trace. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk through the WebSocket tutorial live on loopback: Upgrade, frames, 粘包/拆包, close.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return logging::fail(&anyhow::Error::from(err)),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
        }
    });
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
