//! Logs and fatal errors on stderr; stdout is kept for what a command produces.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Sends `tracing` events to stderr. The default level is `info`; `verbose` raises it to
/// `debug` (1) or `trace` (2 or more). `RUST_LOG`, when set, decides instead.
pub(crate) fn init(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second init (never done here) would fail; logging stays as it was then.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Reports `err` with its causes on stderr and returns the failure exit status.
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tether: {err:#}");
    ExitCode::FAILURE
}
