//! One end of the demo's connection: a socket driven by the codec's sans-IO [`Protocol`],
//! counting what it writes and the size of every read, so the steps can show them.

use anyhow::{ensure, Result};
use bytes::Bytes;
use tether::codec::{Message, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::annotate;

/// Bytes asked for per socket read: the reads of the 拆包 step are at most this large.
pub(super) const READ_CHUNK: usize = 64 << 10;

/// A byte stream a [`Peer`] runs over: TCP, or TLS over TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// One end of the connection: its socket and its protocol state machine.
pub(super) struct Peer<T> {
    /// "client" or "server", as the narration names it.
    pub(super) name: &'static str,
    pub(super) io: T,
    pub(super) protocol: Protocol,
    chunk: Vec<u8>,
    pub(super) frames_sent: usize,
    pub(super) bytes_sent: usize,
}

impl<T: Io> Peer<T> {
    pub(super) fn new(name: &'static str, io: T, protocol: Protocol, leftover: &[u8]) -> Self {
        let mut peer = Peer {
            name,
            io,
            protocol,
            chunk: vec![0; READ_CHUNK],
            frames_sent: 0,
            bytes_sent: 0,
        };
        // Bytes that came in the same read as the handshake are the first frames: keep them.
        peer.protocol.receive_data(leftover);
        peer
    }

    /// Queues `message` and writes it.
    pub(super) async fn send(&mut self, message: Message) -> Result<Bytes> {
        self.protocol.send(message)?;
        Ok(self.flush().await?.0)
    }

    /// Writes everything the protocol queued; returns the bytes and how many write calls the
    /// kernel needed to take them.
    pub(super) async fn flush(&mut self) -> Result<(Bytes, usize)> {
        let wire = self.protocol.write_buffer().split().freeze();
        let mut writes = 0;
        let mut written = 0;
        while written < wire.len() {
            let n = self.io.write(&wire[written..]).await?;
            ensure!(n > 0, "the socket accepted no bytes");
            written += n;
            writes += 1;
        }
        self.io.flush().await?;
        let (found, _) = annotate::frames(&wire)?;
        self.frames_sent += found.len();
        self.bytes_sent += wire.len();
        Ok((wire, writes))
    }

    /// Reads until `count` messages are decoded; returns them and the size of each read.
    pub(super) async fn receive(&mut self, count: usize) -> Result<(Vec<Message>, Vec<usize>)> {
        let mut messages = Vec::with_capacity(count);
        let mut reads = Vec::new();
        loop {
            while messages.len() < count {
                match self.protocol.poll_message()? {
                    Some(message) => messages.push(message),
                    None => break,
                }
            }
            if messages.len() == count {
                return Ok((messages, reads));
            }
            let n = self.read_once().await?;
            ensure!(
                n > 0,
                "the connection ended before {count} messages arrived"
            );
            reads.push(n);
        }
    }

    /// One socket read into the protocol's read buffer; 0 means end of stream.
    pub(super) async fn read_once(&mut self) -> Result<usize> {
        let n = self.io.read(&mut self.chunk).await?;
        self.protocol.receive_data(&self.chunk[..n]);
        Ok(n)
    }
}
