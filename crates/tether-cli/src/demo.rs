//! `tether demo`: the tutorial, live on loopback, one step after another.
//!
//! A server task listens on `127.0.0.1:0`, a client connects, and the demo drives both ends
//! through the layers under the facade directly (the teaching TLS, `tether::handshake` for
//! the Upgrade, the codec's [`Protocol`](tether::codec::Protocol) for frames), so it can
//! show every byte: the five steps of the TLS handshake, the HTTP Upgrade request and its
//! 101 answer verbatim, each frame with its header fields named, and how reads line up (or
//! do not) with messages. The bytes really cross the kernel's TCP stack; both ends are
//! driven from one place only so the narration comes out in order.
//!
//! ```text
//!   step 1  listen, connect              one TCP connection (WebSocket 介绍)
//!   step 2  TLS 1.2 handshake, 5 steps   https原理 (skipped with --no-tls)
//!   step 3  GET + Upgrade  ->  101       websocket 和 http 区别
//!   step 4  frames both ways, annotated  全双工 full duplex (fragments, ping/pong too)
//!   step 5  N messages -> 1 read         粘包 stuck packets
//!   step 6  1 message  -> many reads     拆包 split packets
//!   step 7  close 1000 <-> close 1000    closing handshake
//!   step 8  offer, answer, RSV1 frame    permessage-deflate (in memory; see `deflate`)
//!   step 9  probes, silence, reconnect   心跳检测 heartbeat (facade; see `heartbeat`)
//!   step 10 a session across a dead link nothing lost or doubled (facade; see `session`)
//!           summary
//! ```
//!
//! Over TLS a TCP read no longer lines up with WebSocket bytes (records add a header, a nonce
//! and a tag, and the TLS layer reads whole records). So the reads the 粘包/拆包 steps count
//! are those of the decrypted stream, the reads the codec sees; a wiretap under TLS counts
//! the TCP reads and bytes, and the steps print both.
//!
//! Adding a step: a step is an async function that starts with [`Narrator::step`] (steps are
//! numbered as they run) and leaves a line for the summary with [`Narrator::remember`].
//! Steps before the Upgrade work on the two raw streams: [`walk`] calls [`step_connect`],
//! [`tls::step_tls`] (which wraps both ends) and then [`upgrade::step_upgrade`], which runs
//! over any `AsyncRead + AsyncWrite`. Steps after the Upgrade are methods of [`Demo`], one
//! file each under `demo/`, called from [`Demo::walk`]; both ends are [`peer::Peer`]s.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tether_teaching_tls::CipherSuite;
use tokio::net::{TcpListener, TcpStream};

mod close;
mod deflate;
mod heartbeat;
mod messages;
mod narrator;
mod peer;
mod session;
mod split;
mod stuck;
mod tls;
mod upgrade;

use crate::annotate::thousands;
use narrator::Narrator;
use peer::{Io, Peer};
use tls::{Taps, DEMO_NAME};

/// The whole walk takes well under a second on loopback; past this something is stuck.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Messages in the 粘包 burst: enough to see, few enough to list.
const DEFAULT_BURST: u16 = 10;
/// Size of the 拆包 message: 1 MiB, many times a socket read.
const DEFAULT_LARGE: u32 = 1 << 20;

/// Options of `tether demo`; the defaults are what the tutorial needs.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// How many small messages the client writes at once in the 粘包 (stuck packets) step.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BURST, value_parser = clap::value_parser!(u16).range(2..=1000))]
    burst: u16,
    /// Size in bytes of the message of the 拆包 (split packets) step: 128 KiB to 16 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_LARGE,
          value_parser = clap::value_parser!(u32).range(128 << 10..=16 << 20))]
    large: u32,
    /// Skip the TLS step: the WebSocket runs over plain TCP (ws:// instead of wss://).
    #[arg(long, conflicts_with = "cipher")]
    no_tls: bool,
    /// Offer only this TLS suite: RSA (the tutorial's flow, the default choice), ECDHE or
    /// CHACHA. By default the client offers all three and the server picks RSA.
    #[arg(long, value_name = "SUITE", value_parser = parse_suite)]
    cipher: Option<CipherSuite>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            burst: DEFAULT_BURST,
            large: DEFAULT_LARGE,
            no_tls: false,
            cipher: None,
        }
    }
}

fn parse_suite(name: &str) -> Result<CipherSuite, String> {
    CipherSuite::from_name(name).ok_or_else(|| {
        format!(
            "unknown cipher suite {name:?}: the teaching TLS speaks {}",
            CipherSuite::SUPPORTED
                .map(|s| s.name().unwrap_or("?"))
                .join(", ")
        )
    })
}

/// Runs the demo, printing to stdout.
pub(crate) async fn run(args: Args) -> Result<ExitCode> {
    tokio::time::timeout(TIME_LIMIT, walk(&args, std::io::stdout()))
        .await
        .with_context(|| format!("the demo did not finish within {TIME_LIMIT:?}"))??;
    Ok(ExitCode::SUCCESS)
}

/// Runs every step, writing the narration to `out`.
pub(crate) async fn walk<W: Write>(args: &Args, out: W) -> Result<()> {
    let mut say = Narrator::new(out);
    say.title("Tether demo: the WebSocket tutorial, live on loopback")?;
    let started = Instant::now();
    let (client_io, server_io, addr) = step_connect(&mut say).await?;
    if args.no_tls {
        let url = format!("ws://{addr}/tutorial");
        let mut demo = upgrade::step_upgrade(say, args, &url, client_io, server_io, None).await?;
        demo.walk().await?;
        return demo.summary(started);
    }
    let (client_io, server_io, taps) = tls::step_tls(&mut say, args, client_io, server_io).await?;
    let url = format!("wss://{DEMO_NAME}:{}/tutorial", addr.port());
    let mut demo = upgrade::step_upgrade(say, args, &url, client_io, server_io, Some(taps)).await?;
    demo.walk().await?;
    demo.summary(started)
}

/// Step 1: a server task listens on loopback, a client connects. Returns the client's and
/// the server's end of the one TCP connection, and the server's address.
async fn step_connect<W: Write>(
    say: &mut Narrator<W>,
) -> Result<(TcpStream, TcpStream, SocketAddr)> {
    say.step("A server starts, a client connects (WebSocket 介绍)")?;
    say.text(
        "WebSocket: full-duplex messages over a single TCP connection. Everything below\n\
         travels over the one connection opened here.",
    )?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    say.fact("server", &format!("listening on {addr} (a tokio task)"))?;
    let server_task = tokio::spawn(async move { listener.accept().await });
    let client_io = TcpStream::connect(addr).await?;
    let (server_io, client_addr) = server_task.await.context("the server task failed")??;
    // Small frames go out at once (no Nagle delay), so reads show what each write sent.
    client_io.set_nodelay(true)?;
    server_io.set_nodelay(true)?;
    say.fact("client", &format!("connected from {client_addr}"))?;
    say.remember(
        "connection",
        &format!("one TCP connection {client_addr} <-> {addr}"),
    );
    Ok((client_io, server_io, addr))
}

/// The connected demo: the narration, both ends, and what the steps found.
struct Demo<W, C, S> {
    say: Narrator<W>,
    client: Peer<C>,
    server: Peer<S>,
    burst: usize,
    large: usize,
    /// The TCP under TLS, when the demo runs over TLS.
    taps: Option<Taps>,
}

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// The steps after the Upgrade, in order. Add new steps here.
    async fn walk(&mut self) -> Result<()> {
        self.step_messages().await?;
        self.step_stuck_packets().await?;
        self.step_split_packets().await?;
        self.step_close().await?;
        deflate::step_deflate(&mut self.say)?;
        heartbeat::step_heartbeat(&mut self.say).await?;
        session::step_session(&mut self.say).await
    }

    /// What the walk showed, aligned.
    fn summary(&mut self, started: Instant) -> Result<()> {
        self.say.remember(
            "traffic",
            &format!(
                "client -> server {} frames / {} B, server -> client {} frames / {} B",
                self.client.frames_sent,
                thousands(self.client.bytes_sent),
                self.server.frames_sent,
                thousands(self.server.bytes_sent)
            ),
        );
        self.say
            .remember("time", &format!("{:.2} s", started.elapsed().as_secs_f64()));
        writeln!(self.say.out, "\nSummary")?;
        for (label, value) in std::mem::take(&mut self.say.notes) {
            self.say.fact(&label, &value)?;
        }
        Ok(())
    }
}

/// `len` bytes of a recognisable, non-repeating-at-4 pattern (so masking visibly changes it).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) async fn narration(args: &Args) -> String {
        let mut out = Vec::new();
        walk(args, &mut out).await.expect("the demo runs");
        String::from_utf8(out).expect("the narration is UTF-8")
    }

    /// The number between the first `before` and the next `after`, commas removed.
    pub(super) fn number(text: &str, before: &str, after: &str) -> usize {
        let start = text
            .find(before)
            .unwrap_or_else(|| panic!("no {before:?} in:\n{text}"))
            + before.len();
        let len = text[start..]
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} after {before:?} in:\n{text}"));
        text[start..start + len]
            .trim()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("not a number between {before:?} and {after:?}:\n{text}"))
    }

    pub(super) fn assert_in_order(text: &str, parts: &[&str]) {
        let mut from = 0;
        for part in parts {
            let at = text[from..]
                .find(part)
                .unwrap_or_else(|| panic!("{part:?} missing or out of order:\n{text}"));
            from += at + part.len();
        }
    }

    #[tokio::test]
    async fn burst_is_one_read_and_large_message_many_reads() {
        // Plain TCP: here the counted reads are the socket's.
        let args = Args {
            burst: 1000,
            large: 128 << 10,
            no_tls: true,
            cipher: None,
        };
        let text = narration(&args).await;
        assert!(!text.contains("TLS"), "{text}");
        // 1000 frames of 21 bytes fit in one loopback segment of the client's single write.
        assert!(text.contains("1 read -> 1000 messages"), "{text}");
        assert!(text.contains("all 1000 decoded, in order"), "{text}");
        // At most 64 KiB per read: 128 KiB plus a header needs at least 3 reads.
        assert!(text.contains("decoded intact: 131,072 bytes"), "{text}");
        let reads: usize = text
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("server")?
                    .trim()
                    .strip_suffix(" reads -> 1 message")
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no read count:\n{text}"));
        assert!(reads >= 3, "{reads} reads");
    }

    #[test]
    fn pattern_does_not_repeat_with_the_mask_period() {
        let bytes = pattern(300);
        assert_eq!(bytes.len(), 300);
        assert_ne!(bytes[..4], bytes[4..8]);
        assert_eq!(bytes[251], 0);
    }
}
