//! The demo's Upgrade step (websocket 和 http 区别): the HTTP request and its 101 answer
//! over the connection, both shown verbatim; then both ends become [`Peer`]s over the codec.

use std::io::Write;

use anyhow::{bail, ensure, Context as _, Result};
use bytes::{Bytes, BytesMut};
use tether::codec::{Config as CodecConfig, Protocol};
use tether::handshake::{
    Accept, ClientHandshake, ClientRequest, Config as HandshakeConfig, Incoming, Key,
    ServerHandshake,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::peer::{Io, Peer};
use super::tls::Taps;
use super::{Args, Demo, Narrator};
use crate::annotate;

/// The subprotocol the client offers and the server selects.
const SUBPROTOCOL: &str = "tether-demo";

/// Step 2 (3 over TLS): the HTTP Upgrade over the connection, both messages shown
/// verbatim. The server side runs in its own task; `url` is what the client asks for.
pub(super) async fn step_upgrade<W, C, S>(
    mut say: Narrator<W>,
    args: &Args,
    url: &str,
    client_io: C,
    server_io: S,
    taps: Option<Taps>,
) -> Result<Demo<W, C, S>>
where
    W: Write,
    C: Io,
    S: Io + Send + 'static,
{
    say.step("The Upgrade: an HTTP request becomes a WebSocket (websocket 和 http 区别)")?;
    say.text(
        "HTTP goes one way: the client asks, the server answers, and the server cannot\n\
         speak first. A WebSocket starts as one HTTP request asking to switch protocols;\n\
         after the 101 answer both sides may send at any time.",
    )?;
    let server_task = tokio::spawn(upgrade_server(server_io));
    if say.tls {
        say.text("Over TLS the bytes below are what each side encrypts and decrypts.")?;
    }
    let mut request = ClientRequest::new(url.parse()?)?;
    request.subprotocol(SUBPROTOCOL);
    let key = Key::random()?;
    let client = upgrade_client(client_io, &request, &key).await?;
    let server = server_task.await.context("the server task failed")??;
    ensure!(
        server.response.len() == client.response_len,
        "the client read a different response than the server wrote"
    );
    say_upgrade(&mut say, &server, &key, client.subprotocol.as_deref())?;
    Ok(Demo {
        say,
        client: Peer::new(
            "client",
            client.io,
            Protocol::client(CodecConfig::default(), tether::mask::key_source()),
            &client.leftover,
        ),
        server: Peer::new(
            "server",
            server.io,
            Protocol::server(CodecConfig::default()),
            &server.leftover,
        ),
        burst: usize::from(args.burst),
        large: args.large as usize,
        taps,
    })
}

/// Shows the request and the response verbatim, the accept key and what was agreed.
fn say_upgrade<W: Write, S>(
    say: &mut Narrator<W>,
    upgraded: &Upgraded<S>,
    key: &Key,
    subprotocol: Option<&str>,
) -> Result<()> {
    say.fact(
        "client",
        &format!(
            "-> server  {} bytes, an HTTP/1.1 request",
            upgraded.request.len()
        ),
    )?;
    say.http(">", &upgraded.request)?;
    say.fact(
        "server",
        &format!(
            "-> client  {} bytes, 101: from here on the bytes are frames",
            upgraded.response.len()
        ),
    )?;
    say.http("<", &upgraded.response)?;
    // The handshake crate computes the key with the GUID of RFC 6455 §1.3; the demo names
    // it rather than keeping a second copy.
    say.fact(
        "accept",
        &format!(
            "base64(SHA-1(key + the GUID of RFC 6455 §1.3)) = {}",
            key.accept()
        ),
    )?;
    say.fact(
        "",
        "the client checked it: only a server that read this key can answer it (RFC 6455 §4.1)",
    )?;
    say.fact(
        "agreed",
        &format!(
            "subprotocol {}",
            subprotocol.map_or("none".to_owned(), annotate::quote)
        ),
    )?;
    say.remember(
        "upgrade",
        &format!(
            "GET /tutorial ({} B) -> 101 Switching Protocols ({} B)",
            upgraded.request.len(),
            upgraded.response.len()
        ),
    );
    Ok(())
}

/// What the client side hands back after the Upgrade.
struct ClientUpgraded<C> {
    io: C,
    /// The length of the 101 response the client read.
    response_len: usize,
    /// Bytes read past the response: the server's first frames.
    leftover: BytesMut,
    /// The subprotocol the server selected.
    subprotocol: Option<String>,
}

/// What the server task hands back after the Upgrade.
struct Upgraded<S> {
    io: S,
    request: Bytes,
    response: Bytes,
    leftover: BytesMut,
}

/// The server task: reads the Upgrade request and answers it with a 101.
async fn upgrade_server<S>(mut io: S) -> Result<Upgraded<S>>
where
    S: Io,
{
    let mut handshake = ServerHandshake::new(&HandshakeConfig::default());
    let mut received = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let upgrade = loop {
        let n = io.read(&mut chunk).await?;
        ensure!(n > 0, "the client left during the handshake");
        received.extend_from_slice(&chunk[..n]);
        match handshake.receive(&chunk[..n])? {
            None => {}
            Some(Incoming::Upgrade(upgrade)) => break upgrade,
            Some(Incoming::Plain(_)) => bail!("the client sent plain HTTP"),
        }
    };
    let mut response = BytesMut::new();
    let outcome = upgrade.accept(&Accept::new().with_subprotocol(SUBPROTOCOL), &mut response)?;
    io.write_all(&response).await?;
    io.flush().await?;
    received.truncate(received.len() - outcome.leftover.len());
    Ok(Upgraded {
        io,
        request: received.freeze(),
        response: response.freeze(),
        leftover: outcome.leftover,
    })
}

/// The client side of the Upgrade: sends the request and reads the 101.
async fn upgrade_client<C>(
    mut io: C,
    request: &ClientRequest,
    key: &Key,
) -> Result<ClientUpgraded<C>>
where
    C: Io,
{
    let mut wire = BytesMut::new();
    let mut handshake =
        ClientHandshake::start(request, key, &HandshakeConfig::default(), &mut wire)?;
    io.write_all(&wire).await?;
    io.flush().await?;
    let mut chunk = [0u8; 4096];
    let mut received = 0;
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(handshake.receive_eof().into());
        }
        received += n;
        if let Some(outcome) = handshake.receive(&chunk[..n])? {
            let response_len = received - outcome.leftover.len();
            return Ok(ClientUpgraded {
                io,
                response_len,
                leftover: outcome.leftover,
                subprotocol: outcome.subprotocol,
            });
        }
    }
}
