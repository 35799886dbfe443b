//! A hand-driven peer: the handshake done by `tether_handshake`, then raw bytes, so tests can
//! send exactly the frames they mean and see exactly what arrives.

use bytes::BytesMut;
use tether::{accept_or_plain, Accept, Accepted, ClientBuilder, Config, WebSocket};
use tether_codec::{Frame, OpCode};
use tether_handshake::{ClientRequest, Served};
use tokio::io::{AsyncReadExt, DuplexStream};

/// Our server over a pipe whose client end is raw.
pub(crate) async fn raw_client(
    config: &Config,
    capacity: usize,
) -> (DuplexStream, WebSocket<DuplexStream>) {
    let (client_io, server_io) = tokio::io::duplex(capacity);
    let config = config.clone();
    let server =
        tokio::spawn(
            async move { accept_or_plain(server_io, &config, |_| Ok(Accept::new())).await },
        );
    let request = ClientRequest::new("ws://localhost/".parse().unwrap()).unwrap();
    let (raw, outcome) = tether_handshake::client(
        client_io,
        &request,
        &tether_handshake::Config::default(),
        Some(tether_handshake::DEFAULT_HANDSHAKE_TIMEOUT),
    )
    .await
    .expect("raw client handshake");
    assert!(outcome.leftover.is_empty());
    match server.await.unwrap().expect("server handshake") {
        Accepted::WebSocket(ws, _) => (raw, *ws),
        other => panic!("expected a websocket, got {other:?}"),
    }
}

/// Our client over a pipe whose server end is raw.
pub(crate) async fn raw_server(
    config: &Config,
    capacity: usize,
) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (client_io, server_io) = tokio::io::duplex(capacity);
    let server = tokio::spawn(async move {
        tether_handshake::server(
            server_io,
            &tether_handshake::Config::default(),
            Some(tether_handshake::DEFAULT_HANDSHAKE_TIMEOUT),
            |_| Ok(Accept::new()),
        )
        .await
    });
    let ws = ClientBuilder::new()
        .config(config.clone())
        .handshake(client_io, "ws://localhost/")
        .await
        .expect("client handshake");
    match server.await.unwrap().expect("raw server handshake") {
        Served::WebSocket(raw, _) => (ws, raw),
        Served::Plain(..) => panic!("expected an upgrade"),
    }
}

/// The bytes of one frame as a client sends it (masked).
pub(crate) fn masked(opcode: OpCode, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    Frame::new(opcode, payload.to_vec())
        .with_mask(Some([0x37, 0xfa, 0x21, 0x3d]))
        .encode(&mut out);
    out
}

/// The bytes of one frame as a server sends it (unmasked).
pub(crate) fn unmasked(opcode: OpCode, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    Frame::new(opcode, payload.to_vec()).encode(&mut out);
    out
}

/// Reads until end of input; everything the raw peer received.
pub(crate) async fn read_to_end(raw: &mut DuplexStream) -> Vec<u8> {
    let mut all = Vec::new();
    raw.read_to_end(&mut all).await.expect("raw read");
    all
}
