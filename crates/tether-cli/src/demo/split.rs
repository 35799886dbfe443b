//! The demo's 拆包 (split packets) step: one large message that leaves in several writes,
//! arrives in many reads, and is decoded intact once the header's length is complete.

use std::io::Write;

use anyhow::{ensure, Result};
use bytes::Bytes;
use tether::codec::{FrameHeader, Message};
use tether_teaching_tls::MAX_FRAGMENT_LEN;

use super::peer::{Io, READ_CHUNK};
use super::{pattern, plural, Demo};
use crate::annotate::{thousands, FrameView};

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// 拆包: one large message that arrives in many reads and is decoded intact.
    pub(super) async fn step_split_packets(&mut self) -> Result<()> {
        let size = self.large;
        self.split_packets_intro()?;
        let payload = Bytes::from(pattern(size));
        let mark = self.tcp_mark();
        self.client
            .protocol
            .send(Message::Binary(payload.clone()))?;
        self.say_large_header(size)?;
        let ((wire, writes), (messages, reads)) =
            tokio::try_join!(self.client.flush(), self.server.receive(1))?;
        self.say_large_writes(wire.len(), writes)?;
        let summary = format!(
            "1 message of {} bytes in {} reads",
            thousands(size),
            reads.len()
        );
        self.say_large_reads(&reads)?;
        self.say_tcp_under_tls(mark, wire.len(), writes)?;
        if let Some(first) = reads.first() {
            self.say.detail(
                "first",
                &format!(
                    "{} B: the header and the first {} payload bytes; the decoder waited for the rest",
                    thousands(*first),
                    thousands(first.saturating_sub(wire.len() - size))
                ),
            )?;
        }
        let intact = matches!(&messages[..], [Message::Binary(got)] if *got == payload);
        ensure!(intact, "the large message was not decoded intact");
        self.say.fact(
            "result",
            &format!(
                "decoded intact: {} bytes, identical to what was sent",
                thousands(size)
            ),
        )?;
        self.say.remember("拆包 split", &summary);
        Ok(())
    }

    /// The step's title and explanation; over TLS the message is cut twice.
    fn split_packets_intro(&mut self) -> Result<()> {
        let reads = if self.taps.is_some() {
            "reads"
        } else {
            "TCP reads"
        };
        self.say.step(&format!(
            "Split packets (拆包): one large message, many {reads}"
        ))?;
        self.say.text(
            "Data larger than the free space of the TCP send buffer is split (要发送的数据大于TCP\n\
             发送缓冲区剩余空间大小,会发生拆包). The decoder keeps what it has and waits until\n\
             the header's length is complete.",
        )?;
        if self.taps.is_some() {
            self.say.text(
                "Over TLS the message is cut twice: into records of at most 16 KiB, and by TCP.\n\
                 The codec sees neither cut, only the decrypted stream, in pieces.",
            )?;
        }
        Ok(())
    }

    /// The header of the queued large message, which carries its whole length.
    fn say_large_header(&mut self, size: usize) -> Result<()> {
        let Some((header, header_len)) = FrameHeader::parse(self.client.protocol.write_buffer())?
        else {
            return Ok(());
        };
        self.say.fact(
            "client",
            &format!(
                "1 binary message of {} bytes, {header_len}-byte header",
                thousands(size)
            ),
        )?;
        let view = FrameView {
            offset: 0,
            header,
            header_len,
            payload: Vec::new(),
        };
        self.say.detail("header", &view.header_line())
    }

    /// How many write calls the `len` bytes took, and why.
    fn say_large_writes(&mut self, len: usize, writes: usize) -> Result<()> {
        self.say.fact(
            "client",
            &format!(
                "{} bytes written in {} write call{} ({})",
                thousands(len),
                writes,
                plural(writes),
                match (&self.taps, writes) {
                    (Some(_), _) => format!(
                        "TLS takes at most {} B per call, one record each (RFC 5246 §6.2.1)",
                        thousands(MAX_FRAGMENT_LEN)
                    ),
                    (None, 1) => "the send buffer had room for all of it; TCP still cuts it into \
                                  segments"
                        .to_owned(),
                    (None, _) => "each call, the send buffer took what fitted".to_owned(),
                }
            ),
        )
    }

    /// How many reads the server needed, and their sizes.
    fn say_large_reads(&mut self, reads: &[usize]) -> Result<()> {
        self.say
            .fact("server", &format!("{} reads -> 1 message", reads.len()))?;
        let min = reads.iter().copied().min().unwrap_or(0);
        let max = reads.iter().copied().max().unwrap_or(0);
        let mean = reads.iter().sum::<usize>() / reads.len().max(1);
        self.say.detail(
            "sizes",
            &format!(
                "smallest {} B, largest {} B, mean {} B (at most {} B asked per read)",
                thousands(min),
                thousands(max),
                thousands(mean),
                thousands(READ_CHUNK)
            ),
        )
    }
}
