//! What the supervisor can drive: any stream and sink of messages.

use futures_core::Stream;
use futures_sink::Sink;

/// A message transport: a `Stream` of `Result<M, E>` and a `Sink<M>` with the same error,
/// owned by the supervisor task. Implemented for every such type, for instance
/// `Framed<TcpStream, LinesCodec>` or the facade's `WebSocket<S>`.
///
/// On every pass the supervisor polls `poll_next` while the application has room for
/// another message, and `poll_flush` while it has not; a transport that writes messages
/// of its own (a session's data, which does not cross the outbox) writes them there, and
/// wakes the supervisor's task when it has more.
pub trait Transport<M, E>:
    Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin + Send + 'static
{
}

impl<T, M, E> Transport<M, E> for T where
    T: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin + Send + 'static
{
}
