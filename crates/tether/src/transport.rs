//! The transport under a connection: plain TCP or TLS (rustls) over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream that is either plain or wrapped in rustls TLS: what [`connect`](crate::connect)
/// and [`Server`](crate::Server) hand out, so `ws://` and `wss://` connections have one type.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<S> {
    /// No TLS (`ws://`).
    Plain(S),
    /// TLS client side (`wss://` from [`connect`](crate::connect)).
    ClientTls(Box<tokio_rustls::client::TlsStream<S>>),
    /// TLS server side (a [`Server`](crate::Server) with a TLS acceptor).
    ServerTls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S> MaybeTls<S> {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// The stream under TLS.
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeTls::Plain(io) => io,
            MaybeTls::ClientTls(tls) => tls.get_ref().0,
            MaybeTls::ServerTls(tls) => tls.get_ref().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MaybeTls::ClientTls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            MaybeTls::ServerTls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MaybeTls::ClientTls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            MaybeTls::ServerTls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_flush(cx),
            MaybeTls::ClientTls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            MaybeTls::ServerTls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MaybeTls::ClientTls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            MaybeTls::ServerTls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
