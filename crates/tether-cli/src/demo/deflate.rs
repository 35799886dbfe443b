//! The demo's compression step (permessage-deflate, RFC 7692): the offer and the answer as
//! they travel in `Sec-WebSocket-Extensions`, then one compressed message, its frame annotated
//! (RSV1 set, the DEFLATE bytes), the ratio, and the peer inflating it.
//!
//! It runs on two in-memory protocols (the codec is sans-IO: bytes in, bytes out), since the
//! demo's own connection was opened without the extension.

use std::io::Write;

use anyhow::{ensure, Context as _, Result};
use tether::codec::{Config as CodecConfig, Message, Protocol};
use tether::deflate::DeflateConfig;
use tether::handshake::{parse_extensions, Extension};

use super::Narrator;
use crate::annotate::{self, thousands};

/// A JSON-like message: repetitive, as real traffic is, so it compresses well.
fn ticker() -> String {
    (0..8)
        .map(|i| {
            format!(
                r#"{{"symbol":"ACME","price":{}.25,"volume":{}}}"#,
                100 + i,
                1000 * i
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Each extension's parameters, as `tether-deflate` takes them.
fn params(list: &[Extension]) -> impl Iterator<Item = impl Iterator<Item = (&str, Option<&str>)>> {
    list.iter()
        .map(|e| e.params().iter().map(|p| (p.name(), p.value())))
}

/// Negotiates, then sends one compressed message server -> client, narrated.
pub(super) fn step_deflate<W: Write>(say: &mut Narrator<W>) -> Result<()> {
    say.step("Compression: permessage-deflate (RFC 7692)")?;
    say.text(
        "The client offers compression in the Upgrade request; the server answers with the\n\
         parameters it accepts. Each message is then compressed on its own, and RSV1 on its\n\
         first frame says so. (Two in-memory protocols here: the codec needs no socket.)",
    )?;
    let client_config = DeflateConfig::default();
    let server_config = DeflateConfig::default();
    let offer = client_config.offer();
    say.fact("client ->", &format!("Sec-WebSocket-Extensions: {offer}"))?;
    let offers = parse_extensions(&offer).context("our own offer parses")?;
    let accepted = server_config
        .accept_offer(params(&offers))
        .context("the server accepts the offer")?;
    say.fact(
        "server ->",
        &format!("Sec-WebSocket-Extensions: {}", accepted.response()),
    )?;
    let answer = parse_extensions(accepted.response()).context("the answer parses")?;
    let agreed = client_config
        .accept_response(params(&answer))?
        .context("the client accepts the answer")?;

    let mut server = Protocol::server(CodecConfig::default());
    server.set_deflate(*accepted.params(), &server_config);
    let mut client = Protocol::client(CodecConfig::default(), tether::mask::key_source());
    client.set_deflate(agreed, &client_config);

    let text = ticker();
    server.send(Message::text(text.clone()))?;
    let wire = server.write_buffer().split();
    let (frames, _) = annotate::frames(&wire)?;
    let frame = frames.first().context("one frame")?;
    let payload = frame.payload.len();
    say.fact(
        "server ->",
        &format!("text frame, {} bytes, compressed", frame.wire_len()),
    )?;
    say.detail("bytes", &annotate::hex(&wire, 16))?;
    say.detail("header", &frame.header_line())?;
    say.detail(
        "payload",
        &format!(
            "DEFLATE blocks {}, the 00 00 ff ff tail removed (§7.2.1)",
            annotate::hex(&frame.payload, 8)
        ),
    )?;
    say.fact(
        "ratio",
        &format!(
            "{} bytes of text in a {payload}-byte payload ({} %)",
            thousands(text.len()),
            payload * 100 / text.len()
        ),
    )?;
    client.receive_data(&wire);
    let got = client.poll_message()?;
    ensure!(
        got == Some(Message::text(text.clone())),
        "the client inflated {got:?}"
    );
    say.fact(
        "client",
        &format!(
            "RSV1=1: inflated the payload back to {} bytes of text",
            thousands(text.len())
        ),
    )?;
    say.remember(
        "compression",
        &format!(
            "{} B of text -> a {payload} B compressed payload",
            text.len()
        ),
    );
    Ok(())
}
