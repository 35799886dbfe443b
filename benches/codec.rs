//! Codec throughput, side by side with tokio-tungstenite's tungstenite and fastwebsockets.
//!
//! Groups (each id `<crate>/<size>`, throughput in wire bytes so the numbers compare directly):
//!
//! - `decode`: a server decodes masked binary frames from a client: `small` is 1000 frames of
//!   16 bytes, `large` 4 frames of 1 MiB. tether goes through `Protocol::poll_message`, the
//!   peers through their own read loops over an in-memory stream that replays the same bytes.
//! - `encode_server` / `encode_client`: the same messages written unmasked (server) and masked
//!   (client) into a sink that copies what it is given, as a socket write would.
//! - `mask`: unmasking a buffer in place against a plain `copy_from_slice` of it (memory
//!   bandwidth), a byte-at-a-time loop, and fastwebsockets' `unmask`.
//! - `text_in_pieces`: one text frame of mixed ASCII and CJK received in 16 KiB pieces,
//!   against the second UTF-8 pass alone (the ratio is the share of that pass).
//!
//! After a measuring run (not under `--test`) the bench prints each peer's median time as a
//! ratio to tether's, read back from criterion's estimates.

use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use tether_codec::{apply_mask, Config, Frame, Message, OpCode, Protocol};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite;

const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A workload: `count` binary messages of `size` bytes each.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    count: usize,
    size: usize,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "small",
        count: 1000,
        size: 16,
    },
    Workload {
        name: "large",
        count: 4,
        size: 1 << 20,
    },
];

impl Workload {
    fn payload(&self) -> Bytes {
        (0..self.size).map(|i| (i % 251) as u8).collect()
    }

    /// The bytes a client puts on the wire for this workload.
    fn masked_wire(&self) -> Vec<u8> {
        let payload = self.payload();
        let mut wire = BytesMut::new();
        for _ in 0..self.count {
            Frame::new(OpCode::Binary, payload.clone())
                .with_mask(Some(MASK_KEY))
                .encode(&mut wire);
        }
        wire.to_vec()
    }
}

/// An in-memory stream that replays `wire` forever and copies every write into a scratch
/// buffer (as a kernel copies into its socket buffer), then forgets it; `Read + Write` for
/// tungstenite, `AsyncRead + AsyncWrite` for fastwebsockets, plain `Write` for tether.
struct Replay {
    wire: Vec<u8>,
    pos: usize,
    sink: Vec<u8>,
}

impl Replay {
    fn new(wire: Vec<u8>) -> Replay {
        Replay {
            wire,
            pos: 0,
            sink: Vec::with_capacity(1 << 21),
        }
    }

    fn swallow(&mut self, buf: &[u8]) -> usize {
        self.sink.clear();
        self.sink.extend_from_slice(buf);
        black_box(&self.sink);
        buf.len()
    }

    fn fill(&mut self, dst: &mut [u8]) -> usize {
        if self.wire.is_empty() {
            return 0;
        }
        let rest = &self.wire[self.pos..];
        let n = rest.len().min(dst.len());
        dst[..n].copy_from_slice(&rest[..n]);
        self.pos = (self.pos + n) % self.wire.len();
        n
    }
}

impl io::Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl io::Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.swallow(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.swallow(buf)))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
}

/// A cheap deterministic key source for tether's client role.
fn bench_keys() -> impl FnMut() -> [u8; 4] + Send + Sync + 'static {
    let mut state = 0x9e37_79b9_u32;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_be_bytes()
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for work in WORKLOADS {
        let wire = work.masked_wire();
        group.throughput(Throughput::Bytes(wire.len() as u64));

        let mut protocol = Protocol::server(Config::default());
        group.bench_function(BenchmarkId::new("tether", work.name), |b| {
            b.iter(|| {
                protocol.read_buffer().extend_from_slice(&wire);
                let mut n = 0;
                while let Some(message) = protocol.poll_message().expect("valid input") {
                    black_box(&message);
                    n += 1;
                }
                assert_eq!(n, work.count);
            })
        });

        let mut ws = tungstenite::WebSocket::from_raw_socket(
            Replay::new(wire.clone()),
            tungstenite::protocol::Role::Server,
            None,
        );
        group.bench_function(BenchmarkId::new("tungstenite", work.name), |b| {
            b.iter(|| {
                for _ in 0..work.count {
                    black_box(ws.read().expect("valid input"));
                }
            })
        });

        let rt = runtime();
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            Replay::new(wire.clone()),
            fastwebsockets::Role::Server,
        );
        group.bench_function(BenchmarkId::new("fastwebsockets", work.name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..work.count {
                        let frame = ws.read_frame().await.expect("valid input");
                        black_box(&frame.payload);
                    }
                })
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion, masked: bool) {
    let name = if masked {
        "encode_client"
    } else {
        "encode_server"
    };
    let mut group = c.benchmark_group(name);
    for work in WORKLOADS {
        let payload = work.payload();
        let frame_len = Frame::new(OpCode::Binary, payload.clone())
            .with_mask(masked.then_some(MASK_KEY))
            .header()
            .encoded_len()
            + work.size;
        group.throughput(Throughput::Bytes((frame_len * work.count) as u64));

        let mut protocol = if masked {
            Protocol::client(Config::default(), bench_keys())
        } else {
            Protocol::server(Config::default())
        };
        let mut socket = Replay::new(Vec::new());
        group.bench_function(BenchmarkId::new("tether", work.name), |b| {
            b.iter(|| {
                for _ in 0..work.count {
                    protocol
                        .send(Message::Binary(payload.clone()))
                        .expect("open connection");
                }
                // One write for the whole batch, as the driver flushes it.
                io::Write::write_all(&mut socket, protocol.write_buffer()).expect("in-memory");
                protocol.write_buffer().clear();
            })
        });

        let role = if masked {
            tungstenite::protocol::Role::Client
        } else {
            tungstenite::protocol::Role::Server
        };
        let mut ws = tungstenite::WebSocket::from_raw_socket(Replay::new(Vec::new()), role, None);
        group.bench_function(BenchmarkId::new("tungstenite", work.name), |b| {
            b.iter(|| {
                for _ in 0..work.count {
                    ws.write(tungstenite::Message::Binary(payload.clone()))
                        .expect("in-memory write");
                }
                ws.flush().expect("in-memory flush");
            })
        });

        let rt = runtime();
        let role = if masked {
            fastwebsockets::Role::Client
        } else {
            fastwebsockets::Role::Server
        };
        let mut ws = fastwebsockets::WebSocket::after_handshake(Replay::new(Vec::new()), role);
        group.bench_function(BenchmarkId::new("fastwebsockets", work.name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..work.count {
                        let frame = fastwebsockets::Frame::binary(
                            fastwebsockets::Payload::Borrowed(&payload),
                        );
                        ws.write_frame(frame).await.expect("in-memory write");
                    }
                })
            })
        });
    }
    group.finish();
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (name, len) in [
        ("4KiB", 4usize << 10),
        ("64KiB", 64 << 10),
        ("1MiB", 1 << 20),
    ] {
        group.throughput(Throughput::Bytes(len as u64));
        let source: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut buf = source.clone();

        group.bench_function(BenchmarkId::new("copy_from_slice", name), |b| {
            b.iter(|| buf.copy_from_slice(black_box(&source)))
        });
        group.bench_function(BenchmarkId::new("tether", name), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), MASK_KEY))
        });
        group.bench_function(BenchmarkId::new("bytewise", name), |b| {
            b.iter(|| {
                for (i, byte) in black_box(&mut buf).iter_mut().enumerate() {
                    *byte ^= MASK_KEY[i % 4];
                }
            })
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", name), |b| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf), MASK_KEY))
        });
    }
    group.finish();
}

/// Valid text of `len` bytes, two thirds ASCII, a third three-byte CJK.
fn mixed_text(len: usize) -> String {
    let mut text = String::with_capacity(len);
    while text.len() + 3 <= len {
        text.push_str(if text.len() % 9 < 6 { "abc" } else { "文" });
    }
    while text.len() < len {
        text.push('a');
    }
    text
}

/// What a text message that arrives over several reads costs: a server receives one
/// masked text frame fed in 16 KiB pieces (`tether`: checked once, as it arrives), against
/// `second_pass` alone: `str::from_utf8` over the payload, what a checked `ByteString`
/// constructor would add. Before the single pass, `tether` took 32.0 µs at 64 KiB and
/// 516 µs at 1 MiB, the second pass being 80 % of it; after, 8.0 and 155 µs.
fn text_in_pieces(c: &mut Criterion) {
    let mut group = c.benchmark_group("text_in_pieces");
    for (name, len) in [("64KiB", 64usize << 10), ("1MiB", 1 << 20)] {
        let text = mixed_text(len);
        let mut client = Protocol::client(Config::default(), bench_keys());
        client.send(Message::text(text.clone())).expect("sent");
        let wire = client.write_buffer().split().freeze();
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(BenchmarkId::new("tether", name), |b| {
            b.iter(|| {
                let mut server = Protocol::server(Config::default());
                let mut got = None;
                for piece in wire.chunks(16 << 10) {
                    server.receive_data(piece);
                    if let Some(message) = server.poll_message().expect("valid") {
                        got = Some(message);
                    }
                }
                assert!(matches!(got, Some(Message::Text(_))));
                black_box(got)
            })
        });
        group.bench_function(BenchmarkId::new("second_pass", name), |b| {
            b.iter(|| black_box(std::str::from_utf8(black_box(text.as_bytes())).is_ok()))
        });
    }
    group.finish();
}

/// Where criterion keeps its estimates (its own lookup order, without `cargo metadata`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// The median time per iteration, in ns, of the last run of `group/function/param`.
fn median_ns(group: &str, function: &str, param: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join(param)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Prints every peer's median as a multiple of tether's (above 1: tether is faster).
#[allow(clippy::print_stderr)] // a bench binary's report, not library output
fn report_ratios() {
    let rows: [(&str, &str, &[&str]); 5] = [
        ("decode", "tether", &["tungstenite", "fastwebsockets"]),
        (
            "encode_server",
            "tether",
            &["tungstenite", "fastwebsockets"],
        ),
        (
            "encode_client",
            "tether",
            &["tungstenite", "fastwebsockets"],
        ),
        (
            "mask",
            "copy_from_slice",
            &["tether", "bytewise", "fastwebsockets"],
        ),
        ("text_in_pieces", "tether", &["second_pass"]),
    ];
    eprintln!("\nratios of median time per iteration (peer / baseline):");
    for (group, baseline, peers) in rows {
        let params: &[&str] = if group == "mask" {
            &["4KiB", "1MiB"]
        } else if group == "text_in_pieces" {
            &["64KiB", "1MiB"]
        } else {
            &["small", "large"]
        };
        for param in params {
            let Some(base) = median_ns(group, baseline, param) else {
                continue;
            };
            let cells: Vec<String> = peers
                .iter()
                .filter_map(|peer| {
                    median_ns(group, peer, param).map(|t| format!("{peer} {:.2}x", t / base))
                })
                .collect();
            eprintln!(
                "  {group}/{param}: baseline {baseline} {:.0} ns; {}",
                base,
                cells.join(", ")
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c);
    encode(&mut c, false);
    encode(&mut c, true);
    mask(&mut c);
    text_in_pieces(&mut c);
    c.final_summary();
    // Criterion measures only when cargo passes `--bench` (not under `cargo test`, `--test`,
    // `--list`); only then are there fresh estimates to compare.
    let args: Vec<String> = std::env::args().collect();
    let measured = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a == "--profile-time");
    if measured {
        report_ratios();
    }
}
