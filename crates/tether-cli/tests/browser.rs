//! The page `tether serve` shows and its `tether.js`, in headless Chromium (Debian's
//! package) driven by playwright-core from npm, against real `tether serve` processes:
//! echo of text (ASCII, CJK, emoji) and binary with round trips shown and permessage-deflate
//! negotiated; a server that stops answering the heartbeat (suspect, dead, reconnect in the
//! jittered bound, messages typed meanwhile delivered in order); a server restarted on the
//! same port; a fatal close code that stops reconnecting. The scenarios are in
//! `web/test/browser.mjs`; each leaves a screenshot in `target/browser-screenshots/`.
//!
//! `scripts/install-peers.sh` installs chromium and playwright-core (into
//! `$TETHER_PEERS_DIR/browser`, default `target/peers/browser`).

use std::path::PathBuf;
use std::process::Command;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_page_and_tether_js_in_headless_chromium() {
    let peers = std::env::var_os("TETHER_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/peers"));
    let playwright = peers.join("browser/node_modules/playwright-core");
    assert!(
        playwright.is_dir() && PathBuf::from("/usr/bin/chromium").exists(),
        "chromium or playwright-core missing: run scripts/install-peers.sh (or set \
         TETHER_PEERS_DIR to where it installed them); looked for {}",
        playwright.display()
    );
    let output = Command::new("node")
        .arg("--test")
        .arg(workspace().join("web/test/browser.mjs"))
        .env("TETHER_BIN", env!("CARGO_BIN_EXE_tether"))
        .env("TETHER_PLAYWRIGHT", &playwright)
        .env(
            "TETHER_ARTIFACTS",
            workspace().join("target/browser-screenshots"),
        )
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "browser scenarios failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
