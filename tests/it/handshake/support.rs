//! Strategies for valid handshake messages, and helpers to feed them in pieces.

use proptest::prelude::*;
use tether_handshake::Key;

/// A valid client request head and what it should parse to.
#[derive(Debug, Clone)]
pub(super) struct GenRequest {
    pub(super) head: Vec<u8>,
    pub(super) target: String,
    pub(super) subprotocols: Vec<String>,
}

/// A valid 101 response head for `key` and the subprotocol it selects.
#[derive(Debug, Clone)]
pub(super) struct GenResponse {
    pub(super) key: Key,
    pub(super) offered: Vec<String>,
    pub(super) head: Vec<u8>,
    pub(super) subprotocol: Option<String>,
}

/// `name` with each letter upper-cased where `mask` says so: header names in any case.
fn recase(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("x-[a-z0-9-]{1,12}", "[!-~]([ !-~]{0,20}[!-~])?"), 0..4)
}

fn subprotocols() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[a-z][a-z0-9.]{0,7}", 0..4)
        .prop_map(|set| set.into_iter().collect())
}

/// How the `Connection` field is sent: a single token, a list, or two lines.
fn connection_lines(form: u8, mask: u64) -> String {
    let name = recase("connection", mask);
    match form % 3 {
        0 => format!("{name}: Upgrade"),
        1 => format!("{name}: keep-alive, upgrade"),
        _ => format!("{name}: keep-alive\r\n{name}: UPGRADE"),
    }
}

pub(super) fn valid_request() -> impl Strategy<Value = GenRequest> {
    (
        "/[a-z0-9/._-]{0,20}(\\?[a-z0-9=&]{0,10})?",
        "[a-z]{1,10}(\\.[a-z]{2,5})?(:[1-9][0-9]{0,3})?",
        any::<[u8; 16]>(),
        subprotocols(),
        extra_headers(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(
            |(target, host, key, subprotocols, extra, mask, form, bare_lf)| {
                let key = Key::from_bytes(key);
                let key = key.as_str();
                let mut lines = vec![
                    format!("GET {target} HTTP/1.1"),
                    format!("{}: {host}", recase("host", mask)),
                    format!("{}: websocket", recase("upgrade", mask >> 8)),
                    connection_lines(form, mask >> 16),
                    format!("{}: {key}", recase("sec-websocket-key", mask >> 24)),
                    format!("{}: 13", recase("sec-websocket-version", mask >> 32)),
                ];
                if !subprotocols.is_empty() {
                    lines.push(format!(
                        "Sec-WebSocket-Protocol: {}",
                        subprotocols.join(", ")
                    ));
                }
                lines.extend(extra.iter().map(|(n, v)| format!("{n}: {v}")));
                GenRequest {
                    head: join_head(&lines, bare_lf),
                    target,
                    subprotocols,
                }
            },
        )
}

pub(super) fn valid_response() -> impl Strategy<Value = GenResponse> {
    (
        any::<[u8; 16]>(),
        subprotocols(),
        any::<prop::sample::Index>(),
        extra_headers(),
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(|(key, offered, pick, extra, mask, form)| {
            let key = Key::from_bytes(key);
            let subprotocol = (!offered.is_empty()).then(|| pick.get(&offered).clone());
            let mut lines = vec![
                "HTTP/1.1 101 Switching Protocols".to_owned(),
                format!("{}: WebSocket", recase("upgrade", mask)),
                connection_lines(form, mask >> 8),
                format!(
                    "{}: {}",
                    recase("sec-websocket-accept", mask >> 16),
                    key.accept()
                ),
            ];
            if let Some(chosen) = &subprotocol {
                lines.push(format!(
                    "{}: {chosen}",
                    recase("sec-websocket-protocol", mask >> 24)
                ));
            }
            lines.extend(extra.iter().map(|(n, v)| format!("{n}: {v}")));
            GenResponse {
                key,
                offered,
                head: join_head(&lines, form & 0x80 != 0),
                subprotocol,
            }
        })
}

fn join_head(lines: &[String], bare_lf: bool) -> Vec<u8> {
    let eol = if bare_lf { "\n" } else { "\r\n" };
    let mut head = lines.join(eol);
    head.push_str(eol);
    head.push_str(eol);
    head.into_bytes()
}

/// Up to seven cut points, as positions to be scaled to a message's length with [`at`].
pub(super) fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..8)
}

/// The cut points for a message of `len` bytes: sorted, distinct, inside `0..=len`.
pub(super) fn at(points: &[prop::sample::Index], len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = points.iter().map(|p| p.index(len + 1)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `bytes` split at `cuts` (which are sorted and within bounds).
pub(super) fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        out.push(&bytes[start..cut]);
        start = cut;
    }
    out.push(&bytes[start..]);
    out
}
