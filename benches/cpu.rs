//! CPU time of a thread, read from `/proc` (nanoseconds, not the 10 ms ticks of `stat`).

use std::path::Path;
use std::time::Duration;

/// The first field of a `schedstat` file (`/proc/…/task/TID/schedstat`): nanoseconds the
/// thread spent on a CPU. Readable from any thread.
pub(crate) fn schedstat_cpu(path: impl AsRef<Path>) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}
