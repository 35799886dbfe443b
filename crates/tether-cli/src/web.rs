//! The browser side of `tether serve`, embedded in the binary: the page at `/` (connect,
//! send, a live log, the heartbeat's round trips, the reconnect attempts), `tether.js`, the
//! browser client it runs on, at `/tether.js`, and the session module that imports at
//! `/session.js`. All are plain files in `web/` at the repository root, with no build step
//! and nothing fetched from elsewhere.

/// `web/index.html`, with `{{URL}}` and `{{MODE}}` to fill in.
const PAGE: &str = include_str!("../../../web/index.html");

/// `web/tether.js`, served as it is.
pub(crate) const CLIENT: &str = include_str!("../../../web/tether.js");

/// `web/session.js`, the session protocol's client half, which `tether.js` imports.
pub(crate) const SESSION: &str = include_str!("../../../web/session.js");

/// The page for a server reached at `url` (already checked to be plain text: no markup)
/// that runs in `mode` ("echo", "broadcast").
pub(crate) fn page(url: &str, mode: &str) -> String {
    PAGE.replace("{{URL}}", url).replace("{{MODE}}", mode)
}
