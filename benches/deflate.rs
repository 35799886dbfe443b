//! permessage-deflate cost: tether-deflate against the raw `flate2` (zlib-rs backend) calls it
//! wraps, and against `miniz_oxide` (the other pure-Rust DEFLATE), on the same bytes.
//!
//! Groups (each id `<backend>/<kind>-<size>`, throughput in message bytes):
//!
//! - `deflate_compress`: one message compressed with a fresh context (level 6, 15-bit window);
//!   `tether` is `Compressor::compress` with no context takeover (tail stripped, state dropped),
//!   `flate2-zlib-rs` a raw `Compress` with a sync flush, `miniz_oxide` its one-shot
//!   `compress_to_vec`.
//! - `deflate_decompress`: the same message inflated; `tether` is `Decompressor::feed` (bounded,
//!   tail re-appended), `flate2-zlib-rs` a raw `Decompress`, `miniz_oxide` `decompress_to_vec`
//!   of its own output.
//!
//! - `deflate_takeover`: the same JSON message compressed again and again with the window kept
//!   (context takeover), tether's `Compressor` against one long-lived raw `flate2` `Compress`.
//!
//! - `deflate_message` (`deflate_message.rs`): one message through a WebSocket pair over an
//!   in-memory duplex, tether against yawc, with the raw `flate2` deflate + inflate of the same
//!   bytes as the floor, context takeover on and off, and the wire ratio of each.
//!
//! Kinds: `json` (repetitive text, as chat and market data are) and `random` (incompressible).
//! Sizes 64 B to 1 MiB.

#![allow(clippy::print_stdout)] // a bench reports on standard output

mod deflate_message;

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tether_deflate::{DeflateConfig, DeflateParams, Role};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1 << 20];

fn json(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(
            format!(
                r#"{{"id":{i},"symbol":"ACME","price":{}.{},"side":"buy"}},"#,
                100 + i % 7,
                i % 10
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(size);
    out
}

fn random(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Fresh-context parameters, so every backend compresses each message from scratch.
fn params() -> (DeflateParams, DeflateConfig) {
    params_with(false)
}

/// Parameters with or without context takeover (the window carried from message to message).
fn params_with(takeover: bool) -> (DeflateParams, DeflateConfig) {
    let mut config = DeflateConfig::default();
    config
        .set_server_no_context_takeover(!takeover)
        .set_client_no_context_takeover(!takeover)
        .set_threshold(0);
    let accepted = config.accept_offer([[("client_max_window_bits", None)]]);
    (
        *accepted.expect("defaults accept this offer").params(),
        config,
    )
}

fn flate2_compress(message: &[u8], out: &mut Vec<u8>) {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    out.clear();
    out.reserve(message.len() + 64);
    c.compress_vec(message, out, FlushCompress::Sync)
        .expect("compress");
    while out.len() == out.capacity() {
        out.reserve(4096);
        c.compress_vec(&[], out, FlushCompress::Sync)
            .expect("compress");
    }
}

/// One message through a long-lived raw `Compress` (context takeover), sync-flushed.
fn flate2_compress_takeover(c: &mut Compress, message: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(message.len() + 64);
    let start = c.total_in();
    while c.total_in() - start < message.len() as u64 || out.len() == out.capacity() {
        let done = (c.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(4096);
        }
        c.compress_vec(&message[done..], out, FlushCompress::Sync)
            .expect("compress");
    }
}

/// Per-message CPU with the window kept across messages (`deflate_takeover`): tether's
/// `Compressor` against one raw `flate2` `Compress`, both compressing the same stream of
/// messages, at 1 KiB and 16 KiB of JSON.
fn compress_takeover(c: &mut Criterion) {
    let (params, config) = params_with(true);
    let mut group = c.benchmark_group("deflate_takeover");
    for size in [1024, 16 * 1024] {
        let message = json(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut compressor = params.compressor(Role::Server, &config);
        let mut out = BytesMut::with_capacity(size + 1024);
        group.bench_with_input(BenchmarkId::new("tether", size), &message, |b, m| {
            b.iter(|| {
                out.clear();
                compressor
                    .compress(black_box(m), &mut out)
                    .expect("compress");
            })
        });
        let mut raw = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut vec = Vec::new();
        group.bench_with_input(
            BenchmarkId::new("flate2-zlib-rs", size),
            &message,
            |b, m| b.iter(|| flate2_compress_takeover(&mut raw, black_box(m), &mut vec)),
        );
    }
    group.finish();
}

fn compress(c: &mut Criterion) {
    let (params, config) = params();
    let mut group = c.benchmark_group("deflate_compress");
    for (kind, make) in [("json", json as fn(usize) -> Vec<u8>), ("random", random)] {
        for size in SIZES {
            let message = make(size);
            let id = format!("{kind}-{size}");
            group.throughput(Throughput::Bytes(size as u64));
            let mut compressor = params.compressor(Role::Server, &config);
            let mut out = BytesMut::with_capacity(size + 1024);
            group.bench_with_input(BenchmarkId::new("tether", &id), &message, |b, m| {
                b.iter(|| {
                    out.clear();
                    compressor
                        .compress(black_box(m), &mut out)
                        .expect("compress");
                })
            });
            let mut vec = Vec::new();
            group.bench_with_input(BenchmarkId::new("flate2-zlib-rs", &id), &message, |b, m| {
                b.iter(|| flate2_compress(black_box(m), &mut vec))
            });
            group.bench_with_input(BenchmarkId::new("miniz_oxide", &id), &message, |b, m| {
                b.iter(|| miniz_oxide::deflate::compress_to_vec(black_box(m), 6))
            });
        }
    }
    group.finish();
}

fn decompress(c: &mut Criterion) {
    let (params, config) = params();
    let mut group = c.benchmark_group("deflate_decompress");
    for (kind, make) in [("json", json as fn(usize) -> Vec<u8>), ("random", random)] {
        for size in SIZES {
            let message = make(size);
            let id = format!("{kind}-{size}");
            group.throughput(Throughput::Bytes(size as u64));
            let mut wire = BytesMut::new();
            params
                .compressor(Role::Server, &config)
                .compress(&message, &mut wire)
                .expect("compress");
            let mut decompressor = params.decompressor(Role::Client, size);
            let mut out = BytesMut::with_capacity(size + 1024);
            group.bench_with_input(BenchmarkId::new("tether", &id), &wire, |b, w| {
                b.iter(|| {
                    out.clear();
                    decompressor
                        .feed(black_box(w), true, &mut out)
                        .expect("inflate");
                })
            });
            let mut flushed = wire.to_vec();
            flushed.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
            let mut vec = Vec::with_capacity(size + 1024);
            group.bench_with_input(BenchmarkId::new("flate2-zlib-rs", &id), &flushed, |b, w| {
                b.iter(|| {
                    let mut d = Decompress::new_with_window_bits(false, 15);
                    vec.clear();
                    d.decompress_vec(black_box(w), &mut vec, FlushDecompress::Sync)
                        .expect("inflate");
                })
            });
            let miniz = miniz_oxide::deflate::compress_to_vec(&message, 6);
            group.bench_with_input(BenchmarkId::new("miniz_oxide", &id), &miniz, |b, w| {
                b.iter(|| miniz_oxide::inflate::decompress_to_vec(black_box(w)).expect("inflate"))
            });
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    compress(&mut c);
    compress_takeover(&mut c);
    decompress(&mut c);
    deflate_message::message_level(
        &mut c,
        &SIZES,
        &[("json", json as fn(usize) -> Vec<u8>), ("random", random)],
    );
    c.final_summary();
}
