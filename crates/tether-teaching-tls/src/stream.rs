//! The tokio adapter: [`TeachingTlsStream`] runs the sans-IO [`Connection`] over any
//! `AsyncRead + AsyncWrite`, and is itself `AsyncRead + AsyncWrite`, so a WebSocket
//! handshake and its frames run over it unchanged.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::config::{ClientConfig, ServerConfig};
use crate::connection::Connection;
use crate::error::Error;
use crate::record::MAX_FRAGMENT_LEN;
use crate::transcript::Transcript;

/// Bytes read from the transport per call: one maximal protected record and its header.
const READ_CHUNK: usize = MAX_FRAGMENT_LEN + 2048 + 5;

/// Runs the client handshake over `io` and returns the encrypted stream; the server's
/// certificate is judged at the system clock's time (unless the config fixes one).
///
/// On failure the fatal alert has been sent. To keep the transcript of a failed handshake,
/// use [`TeachingTlsStream::new`] and [`TeachingTlsStream::handshake`] instead.
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    io: S,
) -> Result<TeachingTlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The adapter, not the sans-IO core, reads the clock.
    let now = rustls_pki_types::UnixTime::now();
    let mut stream = TeachingTlsStream::new(Connection::client(config, server_name, now)?, io);
    stream.handshake().await?;
    Ok(stream)
}

/// Runs the server handshake over `io` and returns the encrypted stream.
pub async fn accept<S>(config: Arc<ServerConfig>, io: S) -> Result<TeachingTlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = TeachingTlsStream::new(Connection::server(config), io);
    stream.handshake().await?;
    Ok(stream)
}

/// A [`Connection`] driven over an async transport `S`.
///
/// Reading returns decrypted application data, end of stream after the peer's
/// close_notify, and an [`io::ErrorKind::UnexpectedEof`] error if the transport ends
/// without one (truncation). Errors carry the crate's [`Error`] inside
/// (`io_error.get_ref()` downcasts to it). Shutdown sends close_notify.
#[derive(Debug)]
pub struct TeachingTlsStream<S> {
    io: S,
    conn: Connection,
    read_buf: Box<[u8]>,
    out: Vec<u8>,
    out_pos: usize,
    close_queued: bool,
}

impl<S> TeachingTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps `conn` over `io`; nothing happens until [`handshake`](Self::handshake) or the
    /// first read or write.
    pub fn new(conn: Connection, io: S) -> Self {
        Self {
            io,
            conn,
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            out: Vec::new(),
            out_pos: 0,
            close_queued: false,
        }
    }

    /// Runs the handshake to completion. On error the fatal alert is sent first; the
    /// transcript stays readable.
    pub async fn handshake(&mut self) -> Result<(), Error> {
        loop {
            self.write_pending().await?;
            if self.conn.is_established() {
                return Ok(());
            }
            if let Some(e) = self.conn.error() {
                return Err(e.clone());
            }
            let n = self.io.read(&mut self.read_buf).await?;
            let result = if n == 0 {
                self.conn.receive_eof()
            } else {
                self.conn.receive(&self.read_buf[..n])
            };
            if let Err(e) = result {
                // Best effort: tell the peer why before giving up.
                let _ = self.write_pending().await;
                return Err(e);
            }
        }
    }

    async fn write_pending(&mut self) -> Result<(), Error> {
        let bytes = self.conn.take_outgoing();
        if !bytes.is_empty() {
            self.io.write_all(&bytes).await?;
            self.io.flush().await?;
        }
        Ok(())
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                let more = self.conn.take_outgoing();
                if more.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                self.out = more;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
    }
}

impl<S> TeachingTlsStream<S> {
    /// The connection's transcript: the handshake and the first records.
    pub fn transcript(&self) -> &Transcript {
        self.conn.transcript()
    }

    /// The sans-IO connection inside.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Unwraps the transport and the connection.
    pub fn into_parts(self) -> (S, Connection) {
        (self.io, self.conn)
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
        Error::Io(inner) => inner.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

impl<S> AsyncRead for TeachingTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.conn.plaintext_len() > 0 {
                let n = this.conn.read_plaintext(buf.initialize_unfilled());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.conn.peer_closed() {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = this.conn.error() {
                return Poll::Ready(Err(to_io(e.clone())));
            }
            let mut rb = ReadBuf::new(&mut this.read_buf);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            let result = if n == 0 {
                this.conn.receive_eof()
            } else {
                this.conn.receive(&this.read_buf[..n])
            };
            if let Err(e) = result {
                // Send the fatal alert if the transport takes it right away.
                let _ = this.poll_write_out(cx);
                return Poll::Ready(Err(to_io(e)));
            }
        }
    }
}

impl<S> AsyncWrite for TeachingTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Backpressure: at most one record is buffered beyond what the transport took.
        ready!(this.poll_write_out(cx))?;
        let n = buf.len().min(MAX_FRAGMENT_LEN);
        this.conn.send(&buf[..n]).map_err(to_io)?;
        if let Poll::Ready(Err(e)) = this.poll_write_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            this.close_queued = true;
            this.conn.close();
        }
        ready!(this.poll_write_out(cx))?;
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
