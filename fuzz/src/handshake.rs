//! The handshake limits the fuzz targets run under, chosen by an input's flags.

use tether_handshake::Config;

/// Bits 0-1 of `flags` pick one of four presets (header bytes / header fields / body
/// prefix kept from a refusal): the default, 256 / 8 / 16, 64 / 2 / 0, 1 KiB / 64 / 4 KiB.
/// The body prefix only matters to the client side reading a response.
pub fn config(flags: u8) -> Config {
    let mut config = Config::default();
    match flags & 3 {
        0 => {}
        1 => {
            config
                .set_max_header_bytes(256)
                .set_max_headers(8)
                .set_max_body_prefix(16);
        }
        2 => {
            config
                .set_max_header_bytes(64)
                .set_max_headers(2)
                .set_max_body_prefix(0);
        }
        _ => {
            config
                .set_max_header_bytes(1024)
                .set_max_headers(64)
                .set_max_body_prefix(4096);
        }
    }
    config
}
