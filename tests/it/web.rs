//! `web/tether.js` and the Rust heartbeat speak one protocol: the probe words, the fatal
//! close codes and every default the browser client copies are read out of the JavaScript
//! source and compared with the Rust values, so the two cannot drift apart unnoticed.

use std::time::Duration;

use tether_heartbeat::{
    Decision, DefaultRetryPolicy, Failure, KeepaliveConfig, OutboxConfig, Probe, ReconnectConfig,
    RetryPolicy, StringProbe,
};

fn source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/web/tether.js");
    std::fs::read_to_string(path).expect("web/tether.js")
}

/// The number after `name: ` in `block` (the first `name:` inside it).
fn number(block: &str, name: &str) -> u64 {
    let key = format!("{name}: ");
    let at = block
        .find(&key)
        .unwrap_or_else(|| panic!("{name} not in tether.js"));
    let digits: String = block[at + key.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

/// The text of `export const DEFAULTS = ...` up to the line after `name: Object.freeze({`.
fn section<'a>(source: &'a str, name: &str) -> &'a str {
    let defaults = &source[source.find("export const DEFAULTS").expect("DEFAULTS")..];
    let start = defaults
        .find(&format!("{name}: Object.freeze({{"))
        .unwrap_or_else(|| panic!("DEFAULTS.{name}"));
    let block = &defaults[start..];
    &block[..block.find("})").expect("end of the block")]
}

fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

#[test]
fn heartbeat_defaults_agree() {
    let js = source();
    let block = section(&js, "heartbeat");
    let rust = KeepaliveConfig::default();
    assert_eq!(number(block, "interval"), ms(rust.interval()));
    assert_eq!(number(block, "timeout"), ms(rust.pong_timeout()));
    assert_eq!(
        number(block, "missesToDead"),
        u64::from(rust.misses_to_dead())
    );
}

#[test]
fn reconnect_and_outbox_defaults_agree() {
    let js = source();
    let block = section(&js, "reconnect");
    let rust = ReconnectConfig::default();
    assert_eq!(number(block, "initialDelay"), ms(rust.initial_delay()));
    assert_eq!(number(block, "maxDelay"), ms(rust.max_delay()));
    assert_eq!(number(block, "minUptime"), ms(rust.min_uptime()));
    assert_eq!(number(block, "restartFloor"), ms(rust.restart_floor()));
    assert_eq!(number(block, "maxRetryAfter"), ms(rust.max_retry_after()));
    let block = section(&js, "outbox");
    let rust = OutboxConfig::default();
    assert_eq!(number(block, "maxMessages"), rust.max_messages() as u64);
    assert_eq!(number(block, "maxBytes"), rust.max_bytes() as u64);
    assert_eq!(
        number(block, "maxAge"),
        ms(rust.max_age().expect("an age limit"))
    );
}

#[test]
fn probe_words_and_fatal_close_codes_agree() {
    let js = source();
    let probe = StringProbe::default().probe(7);
    let (ping, _) = probe.split_once(' ').expect("word and nonce");
    assert!(
        js.contains(&format!("ping: \"{ping}\", pong: \"pong\"")),
        "PROBE in tether.js"
    );
    assert_eq!(
        StringProbe::default().answer(&probe).as_deref(),
        Some("pong 7")
    );

    let line = js
        .lines()
        .find(|l| l.starts_with("export const FATAL_CLOSE_CODES"))
        .expect("FATAL_CLOSE_CODES");
    let listed: Vec<u16> = line[line.find('[').expect("[") + 1..line.find(']').expect("]")]
        .split(',')
        .map(|code| code.trim().parse().expect("a code"))
        .collect();
    let mut policy = DefaultRetryPolicy::new(Duration::from_secs(5));
    let fatal: Vec<u16> = (1000..=1015)
        .chain([3000, 4000, 4999])
        .filter(|&code| {
            let failure = Failure::Closed { code: Some(code) };
            policy.decide(&failure, 1) == Decision::Fatal
        })
        .collect();
    assert_eq!(listed, fatal);
}
