//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/seed-*`) and, when
//! missing, the fixed TLS identity (`fuzz/fixtures/tls_{cert,key}.der`).
//!
//! Seeds come from RFC 6455 (the §5.7 frames, the §1.2/§1.3 handshake) and from real
//! teaching-TLS handshakes in memory with the fixed identity, one per cipher suite. Chunked
//! targets take `[flags, n, sizes.., data..]` (see `fuzz/src/input.rs`); each seed is written
//! whole and read a byte at a time.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/seedgen/Cargo.toml`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tether_codec::{CloseCode, CloseFrame, Frame, OpCode};
use tether_handshake::{ClientRequest, Key};
use tether_teaching_tls::{CipherSuite, ClientConfig, Connection, ServerConfig, ServerKey};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// RFC 6455 §5.7's masking key.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Chunked-input flags (`fuzz/fuzz_targets/codec_protocol.rs`): bit 0 is the client role.
const SERVER: u8 = 0;
const CLIENT: u8 = 1;

fn main() -> Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = fuzz.join("corpus");
    codec(&corpus.join("codec_protocol"))?;
    close_frame(&corpus.join("close_frame"))?;
    handshake_request(&corpus.join("handshake_request"))?;
    handshake_response(&corpus.join("handshake_response"))?;
    extensions_header(&corpus.join("extensions_header"))?;
    let (cert, key) = identity(&fuzz.join("fixtures"))?;
    tls(&corpus, &cert, &key)?;
    Ok(())
}

/// A seed directory, emptied of earlier seeds (grown corpus files stay).
fn seeds(dir: &Path) -> Result<Seeds> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            fs::remove_file(path)?;
        }
    }
    Ok(Seeds(dir.to_owned()))
}

struct Seeds(PathBuf);

impl Seeds {
    /// A raw seed.
    fn raw(&self, name: &str, bytes: &[u8]) -> Result<()> {
        fs::write(self.0.join(format!("seed-{name}")), bytes)?;
        Ok(())
    }

    /// A chunked seed: `data` in one read.
    fn chunked(&self, name: &str, flags: u8, data: &[u8]) -> Result<()> {
        self.raw(name, &[&[flags, 0][..], data].concat())
    }

    /// A chunked seed: `data` a byte at a time.
    fn bytewise(&self, name: &str, flags: u8, data: &[u8]) -> Result<()> {
        self.raw(
            &format!("{name}-bytewise"),
            &[&[flags, 1, 1][..], data].concat(),
        )
    }
}

fn frame(opcode: OpCode, payload: &[u8], fin: bool, mask: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    Frame::new(opcode, payload.to_vec())
        .with_fin(fin)
        .with_mask(mask.then_some(KEY))
        .encode(&mut out);
    out.to_vec()
}

fn codec(dir: &Path) -> Result<()> {
    let s = seeds(dir)?;
    // RFC 6455 §5.7, in order: frames from a server go to the client role, masked ones to
    // the server role.
    s.chunked(
        "rfc-text",
        CLIENT,
        &frame(OpCode::Text, b"Hello", true, false),
    )?;
    s.chunked(
        "rfc-masked-text",
        SERVER,
        &frame(OpCode::Text, b"Hello", true, true),
    )?;
    let fragments = [
        frame(OpCode::Text, b"Hel", false, false),
        frame(OpCode::Continuation, b"lo", true, false),
    ]
    .concat();
    s.chunked("rfc-fragments", CLIENT, &fragments)?;
    s.bytewise("rfc-fragments", CLIENT, &fragments)?;
    s.chunked(
        "rfc-ping",
        CLIENT,
        &frame(OpCode::Ping, b"Hello", true, false),
    )?;
    s.chunked(
        "rfc-masked-pong",
        SERVER,
        &frame(OpCode::Pong, b"Hello", true, true),
    )?;
    s.chunked(
        "rfc-binary-256",
        CLIENT,
        &frame(OpCode::Binary, &[0x5a; 256], true, false),
    )?;
    // "64KiB binary message in a single unmasked frame": its header only.
    s.chunked(
        "rfc-binary-64k-header",
        CLIENT,
        &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0],
    )?;
    // A ping between the fragments of a text message split inside a code point, then a close;
    // messages are echoed (flag 0x40).
    let euro = "€".as_bytes();
    let conversation = [
        frame(OpCode::Text, &euro[..2], false, true),
        frame(OpCode::Ping, b"Hello", true, true),
        frame(OpCode::Continuation, &euro[2..], true, true),
        frame(
            OpCode::Close,
            &CloseFrame::new(CloseCode::NORMAL, "bye")?.to_payload(),
            true,
            true,
        ),
    ]
    .concat();
    s.chunked("server-conversation", SERVER | 0x40, &conversation)?;
    s.bytewise("server-conversation", SERVER | 0x10, &conversation)?;
    // A violation after our own close: a server receiving an unmasked frame.
    s.chunked(
        "server-unmasked",
        SERVER | 8,
        &frame(OpCode::Text, b"Hello", true, false),
    )?;
    Ok(())
}

fn close_frame(dir: &Path) -> Result<()> {
    let s = seeds(dir)?;
    s.raw("empty", b"")?;
    s.raw("normal", b"\x03\xe8")?;
    s.raw("normal-bye", b"\x03\xe8bye")?;
    s.raw(
        "private-euro",
        &[&[0x0f, 0xa0][..], "€".as_bytes()].concat(),
    )?;
    s.raw("one-byte", b"\x03")?;
    s.raw("no-status-1005", b"\x03\xed")?;
    s.raw("bad-utf8", b"\x03\xe8\xff")?;
    Ok(())
}

/// RFC 6455 §1.2's client handshake.
const RFC_REQUEST: &str =
    "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// RFC 6455 §1.2's server handshake.
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
    Sec-WebSocket-Protocol: chat\r\n\r\n";

fn handshake_request(dir: &Path) -> Result<()> {
    let s = seeds(dir)?;
    s.chunked("rfc6455-1.2", 0, RFC_REQUEST.as_bytes())?;
    s.bytewise("rfc6455-1.2", 0, RFC_REQUEST.as_bytes())?;
    s.chunked("rfc6455-1.2-small-limits", 1, RFC_REQUEST.as_bytes())?;
    let with_frame = [
        RFC_REQUEST.as_bytes(),
        &frame(OpCode::Text, b"Hello", true, true),
    ]
    .concat();
    s.chunked("rfc6455-1.2-then-frame", 3, &with_frame)?;
    let mut request = ClientRequest::new("ws://example.com:8080/chat?room=1".parse()?)?;
    request
        .subprotocol("chat")
        .extension("permessage-deflate; client_max_window_bits")
        .extension("x-test");
    let mut ours = BytesMut::new();
    request.encode(&Key::from_bytes(*b"the sample nonce"), &mut ours)?;
    s.chunked("tether-client", 0, &ours)?;
    let version_8 = RFC_REQUEST.replace("Version: 13", "Version: 8");
    s.chunked("version-8", 0, version_8.as_bytes())?;
    s.chunked(
        "plain-get",
        0,
        b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\nbody",
    )?;
    Ok(())
}

fn handshake_response(dir: &Path) -> Result<()> {
    let s = seeds(dir)?;
    s.chunked("rfc6455-1.2", 0, RFC_RESPONSE.as_bytes())?;
    s.bytewise("rfc6455-1.2", 0, RFC_RESPONSE.as_bytes())?;
    let with_extension = RFC_RESPONSE.replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n\r\n",
    );
    let with_frame = [
        with_extension.as_bytes(),
        &frame(OpCode::Text, b"Hello", false, false),
    ]
    .concat();
    s.chunked("extension-then-frame", 3, &with_frame)?;
    s.chunked(
        "401-with-body",
        1,
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 12\r\n\r\nlog in first",
    )?;
    s.chunked(
        "302-chunked",
        0,
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )?;
    Ok(())
}

fn extensions_header(dir: &Path) -> Result<()> {
    let s = seeds(dir)?;
    s.raw("deflate", b"permessage-deflate; client_max_window_bits")?;
    s.raw(
        "two-offers",
        b"permessage-deflate; client_max_window_bits=15, permessage-deflate",
    )?;
    s.raw("quoted-comma", b"x-test; list=\"a,b\", foo")?;
    s.raw(
        "two-lines",
        b"x-one\r\nSec-WebSocket-Extensions: x-two; p=1",
    )?;
    s.raw("empty-elements", b" , ,x ,")?;
    Ok(())
}

/// The fixed TLS identity: loaded if present, else made (RSA-2048, self-signed for
/// example.test, valid 2020 to 2099) and written.
fn identity(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let (cert_path, key_path) = (dir.join("tls_cert.der"), dir.join("tls_key.der"));
    if cert_path.exists() && key_path.exists() {
        return Ok((fs::read(cert_path)?, fs::read(key_path)?));
    }
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
    let pkcs8 = key.to_pkcs8_der()?.as_bytes().to_vec();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.clone()),
        &rcgen::PKCS_RSA_SHA256,
    )?;
    let mut params = rcgen::CertificateParams::new(vec!["example.test".to_owned()])?;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&signer)?.der().to_vec();
    fs::create_dir_all(dir)?;
    fs::write(cert_path, &cert)?;
    fs::write(key_path, &pkcs8)?;
    Ok((cert, pkcs8))
}

/// The four flights of a handshake in memory: ClientHello, the server's first flight, the
/// client's key exchange flight, the server's ChangeCipherSpec and Finished.
fn flights(suite: CipherSuite, cert: &[u8], key: &[u8]) -> Result<[Vec<u8>; 4]> {
    let mut client_config = ClientConfig::default();
    client_config
        .add_root(CertificateDer::from(cert.to_vec()))?
        .set_cipher_suites(vec![suite])
        // 2026-01-01, as the fuzz target checks it.
        .set_verification_time(Some(UnixTime::since_unix_epoch(Duration::from_secs(
            1_767_225_600,
        ))));
    let server_key = ServerKey::from_der(&PrivateKeyDer::Pkcs8(key.to_vec().into()))?;
    let server_config = ServerConfig::new(vec![CertificateDer::from(cert.to_vec())], server_key)?;
    let name = ServerName::try_from("example.test")?.to_owned();
    let mut client = Connection::client(Arc::new(client_config), name, UnixTime::now())?;
    let mut server = Connection::server(Arc::new(server_config));
    let hello = client.take_outgoing();
    server.receive(&hello)?;
    let server_first = server.take_outgoing();
    client.receive(&server_first)?;
    let client_second = client.take_outgoing();
    server.receive(&client_second)?;
    let server_second = server.take_outgoing();
    client.receive(&server_second)?;
    assert!(client.is_established() && server.is_established());
    Ok([hello, server_first, client_second, server_second])
}

fn tls(corpus: &Path, cert: &[u8], key: &[u8]) -> Result<()> {
    let server = seeds(&corpus.join("tls_server"))?;
    let client = seeds(&corpus.join("tls_client"))?;
    let suites = [
        (1, CipherSuite::RSA_WITH_AES_128_GCM_SHA256, "rsa"),
        (
            2,
            CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "ecdhe-aes",
        ),
        (
            3,
            CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            "ecdhe-chacha",
        ),
    ];
    // A warning alert (user_canceled) after the server's first flight.
    let alert = [21, 3, 3, 0, 2, 1, 90];
    for (flags, suite, name) in suites {
        let [hello, server_first, client_second, server_second] = flights(suite, cert, key)?;
        let client_flights = [hello.clone(), client_second].concat();
        server.chunked(&format!("{name}-client-hello"), flags, &hello)?;
        server.chunked(&format!("{name}-client-flights"), flags, &client_flights)?;
        let server_flights = [server_first.clone(), server_second].concat();
        client.chunked(&format!("{name}-server-flights"), flags, &server_flights)?;
        let alerted = [&server_first[..], &alert].concat();
        client.chunked(&format!("{name}-any-cert-alert"), flags | 4, &alerted)?;
        if suite == CipherSuite::RSA_WITH_AES_128_GCM_SHA256 {
            server.bytewise(&format!("{name}-client-flights"), flags, &client_flights)?;
            client.bytewise(&format!("{name}-server-flights"), flags, &server_flights)?;
        }
    }
    Ok(())
}
