//! Integration and property tests for the codec layer (`tether-codec`).
//!
//! - `rfc_examples`: the byte examples of RFC 6455 §5.7, decoded and encoded.
//! - `deflate`: permessage-deflate (RFC 7692) in the protocol: RFC examples, RSV1, bombs, round trips.
//! - `errors`: one test per protocol violation, asserting the error and the close code sent.
//! - `properties`: proptest round trips, split/stick invariance, fragmentation, UTF-8, masking.
//! - `shortcut`: the receiver's one-step path for whole messages agrees with the general one.
//! - `sending`: fragmented messages sent by a `Protocol` and received whole by its peer.
//! - `framed`: the tokio-util codecs under `Framed` over an in-memory duplex pipe.

mod deflate;
mod errors;
mod framed;
mod properties;
mod rfc_examples;
mod sending;
mod shortcut;
mod support;
