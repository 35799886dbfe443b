//! Which end of the connection we are (RFC 6455 §5.1, §5.3).

/// The side of the connection a [`Protocol`](crate::Protocol) or codec speaks for.
///
/// A client masks every frame it sends and refuses masked frames; a server refuses unmasked
/// frames and never masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that opened the connection; masks what it sends.
    Client,
    /// The endpoint that accepted the connection; never masks.
    Server,
}
