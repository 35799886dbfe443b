//! A WebSocket as the heartbeat supervisor's transport: every error carries the
//! [`Failure`] it means, so the supervisor's retry policy decides on the facts.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::Message;
use tether_heartbeat::Failure;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::websocket::WebSocket;

/// A WebSocket as the supervisor's transport: every error carries its [`Failure`].
pub(crate) struct Supervised<S>(pub(crate) WebSocket<S>);

/// A facade error with the failure it means; the supervisor finds the failure as its
/// `source`.
#[derive(Debug)]
pub(crate) struct SupervisedError {
    error: Error,
    failure: Failure,
}

impl From<Error> for SupervisedError {
    fn from(error: Error) -> Self {
        let failure = error.failure();
        SupervisedError { error, failure }
    }
}

impl std::fmt::Display for SupervisedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SupervisedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Supervised<S> {
    type Item = Result<Message, SupervisedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0)
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(SupervisedError::from)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Supervised<S> {
    type Error = SupervisedError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_ready(cx)
            .map_err(SupervisedError::from)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.get_mut().0)
            .start_send(item)
            .map_err(SupervisedError::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_flush(cx)
            .map_err(SupervisedError::from)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0)
            .poll_close(cx)
            .map_err(SupervisedError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervisor_reads_the_failure_from_the_error_source() {
        let error = SupervisedError::from(Error::AbnormalClosure);
        assert_eq!(Failure::from_error(&error), Failure::Closed { code: None });
        let error = SupervisedError::from(Error::from(tether_codec::Error::InvalidUtf8));
        assert!(matches!(
            Failure::from_error(&error),
            Failure::Other {
                retryable: false,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            Error::from(tether_codec::Error::InvalidUtf8).to_string()
        );
    }
}
