//! The demo's full-duplex step (全双工): messages each way with every frame annotated, a
//! fragmented message, a ping and its pong, and both sides writing before either reads.

use std::io::Write;

use anyhow::{ensure, Result};
use bytes::Bytes;
use tether::codec::{Message, OpCode};

use super::peer::{Io, Peer};
use super::{pattern, Demo, Narrator};
use crate::annotate::describe;

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// Full duplex: messages each way, every frame annotated, a ping, both sides at once.
    pub(super) async fn step_messages(&mut self) -> Result<()> {
        self.say
            .step("Messages both ways, every frame annotated (全双工 full duplex)")?;
        self.say.text(
            "Each message is a frame: a 2 to 14 byte header, then the payload. The client masks\n\
             what it sends with a fresh 4-byte key (RFC 6455 §5.3); the server does not.",
        )?;
        self.client_to_server(Message::text("Hello, server!"))
            .await?;
        self.server_to_client(Message::text("Hello, client! 你好"))
            .await?;
        self.client_to_server(Message::binary(pattern(300))).await?;
        self.fragments().await?;
        self.ping().await?;
        self.both_at_once().await?;
        let line = format!(
            "client -> server {} frames, server -> client {} frames, both at once too",
            self.client.frames_sent, self.server.frames_sent
        );
        self.say.remember("full duplex", &line);
        Ok(())
    }

    /// A message in two fragments, joined by the server.
    async fn fragments(&mut self) -> Result<()> {
        self.say.text(
            "A message may also travel in fragments: FIN=0 says more follows, opcode 0x0\n\
             continues the message (RFC 6455 §5.4). The receiver joins them into one message:",
        )?;
        let protocol = &mut self.client.protocol;
        protocol.send_fragment(OpCode::Text, b"Hello in ", false)?;
        protocol.send_fragment(OpCode::Continuation, b"two fragments", true)?;
        let (wire, _) = self.client.flush().await?;
        self.say.frames("client ->", &wire)?;
        let (joined, _) = self.server.receive(1).await?;
        ensure!(
            joined[0] == Message::text("Hello in two fragments"),
            "the server joined {joined:?}"
        );
        self.say
            .fact("server", &format!("joined {}", describe(&joined[0])))
    }

    /// A ping from the client, answered by the server's protocol with a pong.
    async fn ping(&mut self) -> Result<()> {
        self.say
            .text("A ping is answered by the peer at once with a pong (RFC 6455 §5.5.2):")?;
        let ping = self
            .client_to_server(Message::Ping(Bytes::from_static(b"are you there?")))
            .await?;
        ensure!(
            matches!(ping, Message::Ping(_)),
            "the server decoded {ping:?}"
        );
        let (pong, _) = self.server.flush().await?;
        self.say.frames("server ->", &pong)?;
        let (answer, _) = self.client.receive(1).await?;
        self.say
            .fact("client", &format!("decoded {}", describe(&answer[0])))
    }

    /// Both sides write before either reads: the server speaks unasked.
    async fn both_at_once(&mut self) -> Result<()> {
        self.say.text(
            "Both sides now write before either reads: the server speaks unasked, which\n\
             HTTP/1.1 cannot do.",
        )?;
        self.client
            .protocol
            .send(Message::text("client: anything new?"))?;
        self.server
            .protocol
            .send(Message::text("server: news, unasked"))?;
        let ((client_wire, _), (server_wire, _)) =
            tokio::try_join!(self.client.flush(), self.server.flush())?;
        self.say.frames("client ->", &client_wire)?;
        self.say.frames("server ->", &server_wire)?;
        let ((at_server, _), (at_client, _)) =
            tokio::try_join!(self.server.receive(1), self.client.receive(1))?;
        self.say
            .fact("server", &format!("decoded {}", describe(&at_server[0])))?;
        self.say
            .fact("client", &format!("decoded {}", describe(&at_client[0])))
    }

    async fn client_to_server(&mut self, message: Message) -> Result<Message> {
        relay(&mut self.say, &mut self.client, &mut self.server, message).await
    }

    async fn server_to_client(&mut self, message: Message) -> Result<Message> {
        relay(&mut self.say, &mut self.server, &mut self.client, message).await
    }
}

/// Sends `message` from one end, shows its frames, and returns what the other end decoded.
async fn relay<W, A, B>(
    say: &mut Narrator<W>,
    from: &mut Peer<A>,
    to: &mut Peer<B>,
    message: Message,
) -> Result<Message>
where
    W: Write,
    A: Io,
    B: Io,
{
    let wire = from.send(message).await?;
    say.frames(&format!("{} ->", from.name), &wire)?;
    let (mut decoded, _) = to.receive(1).await?;
    let message = decoded.remove(0);
    say.fact(to.name, &format!("decoded {}", describe(&message)))?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::super::tests::narration;
    use super::super::Args;

    #[tokio::test]
    async fn rfc6455_5_2_frames_are_annotated_with_every_length_encoding() {
        let text = narration(&Args::default()).await;
        assert!(text.contains("opcode=0x1 text   MASK=1 key="), "{text}");
        assert!(text.contains("opcode=0x1 text   MASK=0  len="), "{text}");
        assert!(text.contains("len=300 (16-bit: 126 + 2 bytes)"), "{text}");
        assert!(
            text.contains("len=1048576 (64-bit: 127 + 8 bytes)"),
            "{text}"
        );
        assert!(text.contains("opcode=0xa pong"), "{text}");
        assert!(text.contains("opcode=0x8 close"), "{text}");
        // RFC 6455 §5.4: a fragmented message, FIN=0 then a continuation with FIN=1.
        assert!(text.contains("FIN=0 RSV=000 opcode=0x1 text"), "{text}");
        assert!(text.contains("FIN=1 RSV=000 opcode=0x0 cont"), "{text}");
        assert!(
            text.contains("joined text \"Hello in two fragments\""),
            "{text}"
        );
    }
}
