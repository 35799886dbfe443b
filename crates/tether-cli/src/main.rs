//! The `tether` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod tls_demo;

/// Tether: a WebSocket toolkit, and a live walk through the tutorial it grew from.
#[derive(Parser, Debug)]
#[command(name = "tether", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Walk through a real TLS 1.2 handshake, every step annotated.
    TlsDemo(tls_demo::TlsDemoArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::TlsDemo(args) => tls_demo::run(args).await,
    }
}
