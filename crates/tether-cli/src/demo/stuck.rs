//! The demo's 粘包 (stuck packets) step: a burst of small messages in one write, read by the
//! server in one read and cut apart again by the lengths in the frame headers.

use std::io::Write;

use anyhow::{ensure, Result};
use bytes::Bytes;
use tether::codec::Message;

use super::peer::Io;
use super::{plural, Demo};
use crate::annotate::{self, describe, thousands, FrameView};

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// 粘包: a burst of small messages in one write, read by the server in one read.
    pub(super) async fn step_stuck_packets(&mut self) -> Result<()> {
        let count = self.burst;
        self.stuck_packets_intro()?;
        let mark = self.tcp_mark();
        for i in 1..=count {
            self.client
                .protocol
                .send(Message::text(format!("message {i:02}")))?;
        }
        let (wire, writes) = self.client.flush().await?;
        self.say.fact(
            "client",
            &format!(
                "{count} messages queued, {} bytes written in {} write call{}",
                wire.len(),
                writes,
                plural(writes)
            ),
        )?;
        let (messages, reads) = self.server.receive(count).await?;
        let summary = format!(
            "{} read{} -> {} messages",
            reads.len(),
            plural(reads.len()),
            messages.len()
        );
        self.say.fact(
            "server",
            &format!(
                "{summary} (read sizes: {})",
                reads
                    .iter()
                    .map(|n| format!("{} B", thousands(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )?;
        self.say_tcp_under_tls(mark, wire.len(), writes)?;
        self.say_burst(&wire, &messages)?;
        self.say.remember("粘包 stuck", &summary);
        Ok(())
    }

    /// The step's title and explanation, which differ over TLS.
    fn stuck_packets_intro(&mut self) -> Result<()> {
        if self.taps.is_some() {
            self.say
                .step("Stuck packets (粘包): many messages, one read")?;
            self.say.text(
                "TCP carries a byte stream, not messages, and TLS on top keeps it a stream:\n\
                 small writes are merged (here into one TLS record), so one read may hold many\n\
                 messages. The codec reads the decrypted stream; the length in each frame\n\
                 header says where each message ends, so the decoder cuts them apart again.",
            )
        } else {
            self.say
                .step("Stuck packets (粘包): many messages, one TCP read")?;
            self.say.text(
                "TCP carries a byte stream, not messages. Small writes are merged on the way, so\n\
                 one read may hold many messages. The length in each frame header says where each\n\
                 one ends, so the decoder cuts them apart again.",
            )
        }
    }

    /// Where each message of the burst sat in the bytes written, and that all arrived intact.
    fn say_burst(&mut self, wire: &Bytes, messages: &[Message]) -> Result<()> {
        let (found, _) = annotate::frames(wire)?;
        for (frame, message) in found.iter().zip(messages) {
            self.say.detail(
                "bytes",
                &frame_span(frame, &format!("-> {}", describe(message))),
            )?;
        }
        ensure!(
            messages
                .iter()
                .enumerate()
                .all(|(i, m)| m.as_text() == Some(&format!("message {:02}", i + 1))),
            "the burst was decoded out of order or changed"
        );
        self.say.fact(
            "result",
            &format!("all {} decoded, in order, unchanged", messages.len()),
        )
    }
}

/// `[  0.. 16) 6 + 10 B  note`: where a frame sits in a buffer.
fn frame_span(frame: &FrameView, note: &str) -> String {
    format!(
        "[{:>4}..{:>4})  {} B header + {} B payload  {note}",
        frame.offset,
        frame.offset + frame.wire_len(),
        frame.header_len,
        frame.payload.len()
    )
}
