//! A wiretap on a transport: it counts the reads and the bytes each way, and keeps the bytes
//! when asked. `tls-demo` records sessions with it for the forward-secrecy lesson; `demo`
//! counts the TCP reads under the teaching TLS with it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a tap saw so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen {
    /// The bytes written, when the tap keeps them.
    pub(crate) sent: Vec<u8>,
    /// The bytes read, when the tap keeps them.
    pub(crate) received: Vec<u8>,
    /// How many bytes were written.
    pub(crate) sent_len: usize,
    /// How many bytes were read.
    pub(crate) received_len: usize,
    /// How many reads returned data.
    pub(crate) reads: usize,
}

/// The shared record of a [`Tap`]; read it with [`Wiretap::seen`] while the tap runs.
#[derive(Debug, Default)]
pub(crate) struct Wiretap {
    keep: bool,
    seen: Mutex<Seen>,
}

impl Wiretap {
    /// A wiretap that keeps every byte each way.
    pub(crate) fn recording() -> Arc<Self> {
        Arc::new(Wiretap {
            keep: true,
            seen: Mutex::default(),
        })
    }

    /// A wiretap that only counts.
    pub(crate) fn counting() -> Arc<Self> {
        Arc::default()
    }

    /// A copy of what the tap saw so far.
    pub(crate) fn seen(&self) -> Seen {
        // A poisoned lock only loses the demo's record, never the session.
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn note(&self, bytes: &[u8], sent: bool) {
        if bytes.is_empty() {
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            if sent {
                seen.sent_len += bytes.len();
                if self.keep {
                    seen.sent.extend_from_slice(bytes);
                }
            } else {
                seen.received_len += bytes.len();
                seen.reads += 1;
                if self.keep {
                    seen.received.extend_from_slice(bytes);
                }
            }
        }
    }
}

/// A transport that reports every read and write to its [`Wiretap`].
#[derive(Debug)]
pub(crate) struct Tap<S> {
    inner: S,
    wiretap: Arc<Wiretap>,
}

impl<S> Tap<S> {
    /// Taps `inner`; `wiretap` sees everything from now on.
    pub(crate) fn new(inner: S, wiretap: Arc<Wiretap>) -> Self {
        Tap { inner, wiretap }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.wiretap.note(&buf.filled()[before..], false);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.wiretap.note(&buf[..*n], true);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn counts_reads_and_bytes_and_keeps_them_only_when_recording() {
        for (wiretap, keeps) in [(Wiretap::recording(), true), (Wiretap::counting(), false)] {
            let (a, mut b) = tokio::io::duplex(64);
            let mut tap = Tap::new(a, wiretap.clone());
            tap.write_all(b"hello").await.unwrap();
            b.write_all(b"abc").await.unwrap();
            let mut buf = [0u8; 8];
            assert_eq!(tap.read(&mut buf).await.unwrap(), 3);
            b.write_all(b"de").await.unwrap();
            assert_eq!(tap.read(&mut buf).await.unwrap(), 2);
            let seen = wiretap.seen();
            assert_eq!((seen.sent_len, seen.received_len, seen.reads), (5, 5, 2));
            assert_eq!(seen.sent == b"hello", keeps);
            assert_eq!(seen.received == b"abcde", keeps);
        }
    }
}
