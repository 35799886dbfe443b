//! Logs and fatal errors on stderr; stdout is kept for what a command produces.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Sends `tracing` events to stderr. The default level is `info`; `verbose` raises it to
/// `debug` (1) or `trace` (2 or more). With `frames`, `-v` also turns on the codec's
/// frame-level events (a line per frame received and queued, from `tether_codec` at `trace`).
/// `RUST_LOG`, when set, decides instead.
pub(crate) fn init(verbose: u8, frames: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directives(verbose, frames)));
    // A second init (never done here) would fail; logging stays as it was then.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The filter for `verbose` and `frames` when `RUST_LOG` is not set.
fn directives(verbose: u8, frames: bool) -> &'static str {
    match (verbose, frames) {
        (0, _) => "info",
        (1, false) => "debug",
        (1, true) => "debug,tether_codec=trace",
        _ => "trace",
    }
}

/// Reports `err` with its causes on stderr and returns the failure exit status.
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tether: {err:#}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_logs_need_both_verbose_and_frames() {
        assert_eq!(directives(0, true), "info");
        assert_eq!(directives(1, false), "debug");
        assert_eq!(directives(1, true), "debug,tether_codec=trace");
        assert_eq!(directives(2, false), "trace");
        for (verbose, frames) in [(1, true), (2, false)] {
            assert!(EnvFilter::try_new(directives(verbose, frames)).is_ok());
        }
    }
}
