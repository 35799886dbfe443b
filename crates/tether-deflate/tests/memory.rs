//! Bytes a Compressor + Decompressor pair holds per connection, by window size, measured with
//! a counting allocator. The crate doc's table comes from `cargo test -p tether-deflate --test
//! memory -- --nocapture`; the assertions keep the numbers honest.
#![allow(clippy::print_stderr)]

use std::alloc::System;

use bytes::BytesMut;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tether_deflate::{DeflateConfig, Role, WindowBits};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes (compressor, decompressor) still hold after passing one 4 KiB message each.
fn held(bits: u8, reset: bool) -> (isize, isize) {
    let mut config = DeflateConfig::default();
    let bits = WindowBits::new(bits).unwrap();
    config
        .set_client_max_window_bits(bits)
        .set_server_max_window_bits(bits)
        .set_client_no_context_takeover(reset)
        .set_server_no_context_takeover(reset);
    let message = br#"{"id": 1, "body": "some text to squeeze"}"#.repeat(100);
    // Caller buffers are sized up front so they do not count.
    let mut wire = BytesMut::with_capacity(1 << 16);
    let mut out = BytesMut::with_capacity(1 << 16);
    let accepted = config
        .accept_offer([[("client_max_window_bits", None)]])
        .unwrap();

    let region = Region::new(GLOBAL);
    let mut compressor = accepted.params().compressor(Role::Server, &config);
    compressor.compress(&message, &mut wire).unwrap();
    let deflate = net(region.change());

    let region = Region::new(GLOBAL);
    let mut decompressor = accepted.params().decompressor(Role::Client, 1 << 20);
    decompressor.feed(&wire, true, &mut out).unwrap();
    let inflate = net(region.change());
    assert_eq!(&out[..], &message[..]);
    (deflate, inflate)
}

fn net(stats: stats_alloc::Stats) -> isize {
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

#[test]
fn per_connection_memory_by_window_bits() {
    eprintln!("| window bits | compressor | decompressor | either, no_context_takeover |");
    eprintln!("|---|---|---|---|");
    for bits in 8..=15 {
        let (deflate, inflate) = held(bits, false);
        let (deflate_reset, inflate_reset) = held(bits, true);
        eprintln!(
            "| {bits} | {deflate} B | {inflate} B | {} B |",
            deflate_reset.max(inflate_reset)
        );
        // With context takeover the state stays: zlib-rs' fixed hash table and pending
        // buffer (about 244 KiB) plus 4 × the window for the deflater; a fixed 46 KiB
        // (a 32 KiB window whatever the bits, plus the state) for the inflater.
        assert!(deflate <= (1 << bits) * 4 + 250 * 1024, "{bits}: {deflate}");
        assert!(inflate <= 48 * 1024, "{bits}: {inflate}");
        // With no context takeover nothing stays between messages.
        assert!(
            deflate_reset <= 0 && inflate_reset <= 0,
            "{bits}: {deflate_reset} {inflate_reset}"
        );
    }
}
