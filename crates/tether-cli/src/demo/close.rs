//! The demo's closing step (RFC 6455 §7): a close frame each way, then the server closes
//! the stream first and the client reads a clean end of stream.

use std::io::Write;

use anyhow::{ensure, Result};
use tether::codec::{CloseCode, Message, State};
use tokio::io::AsyncWriteExt as _;

use super::peer::Io;
use super::Demo;

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// The closing handshake, and the server closing TCP first.
    pub(super) async fn step_close(&mut self) -> Result<()> {
        self.say.step("Closing handshake (RFC 6455 §7)")?;
        self.say.text(
            "Each side sends a close frame once; the server then closes TCP first (§7.1.1),\n\
             so the client sees a clean end of stream.",
        )?;
        self.client.protocol.close(CloseCode::NORMAL, "demo done")?;
        let (wire, _) = self.client.flush().await?;
        self.say.frames("client ->", &wire)?;
        let (at_server, _) = self.server.receive(1).await?;
        ensure!(
            matches!(&at_server[..], [Message::Close(Some(frame))] if frame.code == CloseCode::NORMAL),
            "the server decoded {at_server:?}"
        );
        // The protocol echoed the close into the server's write buffer when it decoded it.
        let (echo, _) = self.server.flush().await?;
        self.say.frames("server ->", &echo)?;
        self.server.io.shutdown().await?;
        let closed = if self.taps.is_some() {
            // TeachingTlsStream's shutdown sends close_notify (RFC 5246 §7.2.1), then the FIN.
            "closed TLS (close_notify) and TCP"
        } else {
            "closed TCP"
        };
        self.say.fact("server", closed)?;
        let (at_client, _) = self.client.receive(1).await?;
        ensure!(
            matches!(&at_client[..], [Message::Close(Some(_))]),
            "the client decoded {at_client:?}"
        );
        let end = self.client.read_once().await?;
        ensure!(end == 0, "the client read {end} bytes after the close");
        ensure!(
            self.client.protocol.state() == State::Closed
                && self.server.protocol.state() == State::Closed,
            "a side is not closed"
        );
        self.say.fact(
            "client",
            "read end of stream: both sides Closed, nothing lost",
        )?;
        self.say.remember(
            "closing",
            "client close 1000 \"demo done\", server echoed 1000, server closed TCP first",
        );
        Ok(())
    }
}
