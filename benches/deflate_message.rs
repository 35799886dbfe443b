//! `deflate_message`: permessage-deflate at the message level, tether against yawc (the one
//! Rust WebSocket peer with compression) and against the raw `flate2` calls on the same bytes.
//!
//! yawc keeps its compressor private (`Compressor::new` is crate-only), so both libraries are
//! measured through their WebSocket: a server and a client over an in-memory
//! `tokio::io::duplex`, one current-thread runtime, the server sending one binary message and
//! the client receiving it (compress, frame, write, read, parse, inflate). `flate2-zlib-rs` is
//! the floor for that work: the same message deflated (sync flush) and inflated, no framing.
//! Both libraries and the floor use flate2's zlib-rs backend at level 6 with a 15-bit window;
//! every message is compressed (thresholds 0). With context takeover off the raw floor builds a
//! fresh `Compress`/`Decompress` per message, as tether does (it frees the state between
//! messages); yawc resets and keeps its state instead.
//!
//! Ids: `<backend>/<takeover|reset>/<json|random>-<size>`. Before the timings, one line per
//! case gives the compression ratio on the wire (frame bytes received / message bytes) for
//! the first message and for a repeat of it (which, with takeover, finds the whole message
//! in the window).

use std::hint::black_box;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::{SinkExt, StreamExt};
use tether::deflate::DeflateConfig;
use tether::{accept_or_plain, Accept, Accepted, ClientBuilder, Config, Message};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::runtime::Runtime;

/// An in-memory stream that counts the bytes read through it (the client's side: what the
/// server put on the wire).
struct Counted {
    io: DuplexStream,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A payload kind: its name and how to make `n` bytes of it.
pub(crate) type Kind = (&'static str, fn(usize) -> Vec<u8>);

/// One connected pair of one library: sends `message` server → client and returns it.
trait Pair {
    fn round(&mut self, rt: &Runtime, message: &Bytes) -> Bytes;
    fn wire(&self) -> &AtomicUsize;
}

struct TetherPair {
    server: tether::WebSocket<DuplexStream>,
    client: tether::WebSocket<Counted>,
    read: Arc<AtomicUsize>,
}

impl TetherPair {
    fn new(rt: &Runtime, takeover: bool) -> TetherPair {
        let mut deflate = DeflateConfig::default();
        deflate
            .set_server_no_context_takeover(!takeover)
            .set_client_no_context_takeover(!takeover)
            .set_threshold(0);
        let mut config = Config::default();
        config.set_deflate(Some(deflate));
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let read = Arc::new(AtomicUsize::new(0));
        let client_io = Counted {
            io: client_io,
            read: read.clone(),
        };
        rt.block_on(async {
            let accepting = accept_or_plain(server_io, &config, |_| Ok(Accept::new()));
            let mut builder = ClientBuilder::new();
            builder.config(config.clone());
            let connecting = builder.handshake(client_io, "ws://localhost/");
            let (server, client) = tokio::join!(accepting, connecting);
            let Ok(Accepted::WebSocket(server, _)) = server else {
                panic!("tether server handshake");
            };
            let client = client.expect("tether client handshake");
            assert!(client.deflate().is_some(), "deflate agreed");
            TetherPair {
                server: *server,
                client,
                read,
            }
        })
    }
}

impl Pair for TetherPair {
    fn round(&mut self, rt: &Runtime, message: &Bytes) -> Bytes {
        rt.block_on(async {
            let (sent, got) = tokio::join!(
                self.server.send(Message::Binary(message.clone())),
                self.client.next()
            );
            sent.expect("send");
            match got {
                Some(Ok(Message::Binary(data))) => data,
                other => panic!("tether received {other:?}"),
            }
        })
    }

    fn wire(&self) -> &AtomicUsize {
        &self.read
    }
}

struct YawcPair {
    server: yawc::WebSocket<DuplexStream>,
    client: yawc::WebSocket<Counted>,
    read: Arc<AtomicUsize>,
}

impl YawcPair {
    fn new(takeover: bool) -> YawcPair {
        let mut options = yawc::Options::default()
            .with_compression_level(yawc::CompressionLevel::new(6))
            .with_limits(4 << 20, 8 << 20);
        let mut agreed = String::from("permessage-deflate");
        if !takeover {
            options = options
                .server_no_context_takeover()
                .client_no_context_takeover();
            agreed.push_str("; server_no_context_takeover; client_no_context_takeover");
        }
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let read = Arc::new(AtomicUsize::new(0));
        let client_io = Counted {
            io: client_io,
            read: read.clone(),
        };
        let server = yawc::WebSocket::from_stream_with_extensions(
            server_io,
            yawc::Role::Server,
            Some(&agreed),
            options.clone(),
        )
        .expect("yawc server");
        let client = yawc::WebSocket::from_stream_with_extensions(
            client_io,
            yawc::Role::Client,
            Some(&agreed),
            options,
        )
        .expect("yawc client");
        YawcPair {
            server,
            client,
            read,
        }
    }
}

impl Pair for YawcPair {
    fn round(&mut self, rt: &Runtime, message: &Bytes) -> Bytes {
        rt.block_on(async {
            let (sent, got) = tokio::join!(
                self.server
                    .send(yawc::frame::Frame::binary(message.clone())),
                self.client.next()
            );
            sent.expect("send");
            got.expect("yawc received a frame").into_payload()
        })
    }

    fn wire(&self) -> &AtomicUsize {
        &self.read
    }
}

/// The raw floor: deflate (sync flush, tail kept) and inflate of the same bytes.
struct Raw {
    takeover: bool,
    compress: Compress,
    decompress: Decompress,
    wire: Vec<u8>,
    out: Vec<u8>,
}

impl Raw {
    fn new(takeover: bool) -> Raw {
        Raw {
            takeover,
            compress: Compress::new_with_window_bits(Compression::new(6), false, 15),
            decompress: Decompress::new_with_window_bits(false, 15),
            wire: Vec::new(),
            out: Vec::new(),
        }
    }

    fn round(&mut self, message: &[u8]) -> usize {
        if !self.takeover {
            self.compress = Compress::new_with_window_bits(Compression::new(6), false, 15);
            self.decompress = Decompress::new_with_window_bits(false, 15);
        }
        self.wire.clear();
        self.wire.reserve(message.len() + 64);
        let start = self.compress.total_in();
        while self.compress.total_in() - start < message.len() as u64
            || self.wire.len() == self.wire.capacity()
        {
            let done = (self.compress.total_in() - start) as usize;
            if self.wire.len() == self.wire.capacity() {
                self.wire.reserve(4096);
            }
            self.compress
                .compress_vec(&message[done..], &mut self.wire, FlushCompress::Sync)
                .expect("compress");
        }
        self.out.clear();
        self.out.reserve(message.len() + 64);
        let start = self.decompress.total_in();
        while self.decompress.total_in() - start < self.wire.len() as u64 {
            let done = (self.decompress.total_in() - start) as usize;
            if self.out.len() == self.out.capacity() {
                self.out.reserve(4096);
            }
            self.decompress
                .decompress_vec(&self.wire[done..], &mut self.out, FlushDecompress::Sync)
                .expect("inflate");
        }
        assert_eq!(self.out.len(), message.len());
        self.wire.len()
    }
}

/// Wire bytes of one round, as a fraction of the message.
fn ratio(pair: &mut dyn Pair, rt: &Runtime, message: &Bytes) -> f64 {
    let before = pair.wire().load(Ordering::Relaxed);
    let got = pair.round(rt, message);
    assert_eq!(got, *message, "round trip");
    (pair.wire().load(Ordering::Relaxed) - before) as f64 / message.len() as f64
}

fn print_ratios(id: &str, rt: &Runtime, takeover: bool, message: &Bytes) {
    let mut line = format!("ratio {id:<24}");
    let mut pairs: [(&str, Box<dyn Pair>); 2] = [
        ("tether", Box::new(TetherPair::new(rt, takeover))),
        ("yawc", Box::new(YawcPair::new(takeover))),
    ];
    for (name, pair) in &mut pairs {
        let first = ratio(pair.as_mut(), rt, message);
        let repeat = ratio(pair.as_mut(), rt, message);
        line.push_str(&format!("  {name} {first:.3} then {repeat:.3}"));
    }
    let mut raw = Raw::new(takeover);
    let first = raw.round(message) as f64 / message.len() as f64;
    let repeat = raw.round(message) as f64 / message.len() as f64;
    line.push_str(&format!(
        "  flate2 {first:.3} then {repeat:.3} (+4 tail, no header)"
    ));
    println!("{line}");
}

/// The `deflate_message` group (see the module docs).
pub(crate) fn message_level(c: &mut Criterion, sizes: &[usize], kinds: &[Kind]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("deflate_message");
    for takeover in [true, false] {
        let mode = if takeover { "takeover" } else { "reset" };
        for (kind, make) in kinds {
            for &size in sizes {
                let message = Bytes::from(make(size));
                let id = format!("{mode}/{kind}-{size}");
                print_ratios(&id, &rt, takeover, &message);
                group.throughput(Throughput::Bytes(size as u64));
                let mut tether = TetherPair::new(&rt, takeover);
                group.bench_with_input(BenchmarkId::new("tether", &id), &message, |b, m| {
                    b.iter(|| tether.round(&rt, black_box(m)))
                });
                let mut yawc = YawcPair::new(takeover);
                group.bench_with_input(BenchmarkId::new("yawc", &id), &message, |b, m| {
                    b.iter(|| yawc.round(&rt, black_box(m)))
                });
                let mut raw = Raw::new(takeover);
                group.bench_with_input(
                    BenchmarkId::new("flate2-zlib-rs", &id),
                    &message,
                    |b, m| b.iter(|| raw.round(black_box(m))),
                );
            }
        }
    }
    group.finish();
}
