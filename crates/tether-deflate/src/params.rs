//! The parameters both endpoints agreed on, and the parser of one offer's or response's
//! parameter list (RFC 7692 §7.1).

use crate::{Compressor, Decompressor, DeflateConfig, NegotiationError, WindowBits};

/// The extension's name in `Sec-WebSocket-Extensions` (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

pub(crate) const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
pub(crate) const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
pub(crate) const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
pub(crate) const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// Which end of the WebSocket connection an endpoint is (RFC 6455 §5.1, §5.3).
///
/// The one role type of the workspace: the codec re-exports it (a client masks every frame it
/// sends and refuses masked frames; a server refuses unmasked frames and never masks), and
/// here it picks which half of the agreed parameters applies to what an endpoint sends and
/// what it receives (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that opened the connection and made the offer; masks what it sends.
    Client,
    /// The endpoint that accepted it and answered; never masks.
    Server,
}

/// What a negotiation agreed: the window and context takeover of each direction. Built by
/// [`DeflateConfig::accept_response`] (client) or [`DeflateConfig::accept_offer`] (server);
/// it builds the connection's [`Compressor`] and [`Decompressor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    pub(crate) client_max_window_bits: WindowBits,
    pub(crate) server_max_window_bits: WindowBits,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_no_context_takeover: bool,
}

impl DeflateParams {
    /// The largest window the client compresses with.
    pub fn client_max_window_bits(&self) -> WindowBits {
        self.client_max_window_bits
    }

    /// The largest window the server compresses with.
    pub fn server_max_window_bits(&self) -> WindowBits {
        self.server_max_window_bits
    }

    /// Whether the client resets its window after each message.
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// Whether the server resets its window after each message.
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// The compressor for what `role` sends, with `config`'s level and threshold.
    pub fn compressor(&self, role: Role, config: &DeflateConfig) -> Compressor {
        let (bits, reset) = self.direction(role);
        Compressor::new(bits, reset, config.level(), config.threshold())
    }

    /// The decompressor for what `role` receives; a message inflating to more than `limit`
    /// bytes fails with [`DeflateError::TooLarge`](crate::DeflateError::TooLarge). Give it
    /// the codec's message size limit.
    pub fn decompressor(&self, role: Role, limit: usize) -> Decompressor {
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let (bits, reset) = self.direction(peer);
        Decompressor::new(bits, reset, limit)
    }

    /// The window and the reset flag of what `sender` sends.
    fn direction(&self, sender: Role) -> (WindowBits, bool) {
        match sender {
            Role::Client => (self.client_max_window_bits, self.client_no_context_takeover),
            Role::Server => (self.server_max_window_bits, self.server_no_context_takeover),
        }
    }
}

/// One offer's or response's parameters, checked against RFC 7692 §7.1 but not yet against
/// the other side's wishes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: Option<WindowBits>,
    /// `Some(None)`: present without a value, which only an offer may do.
    pub(crate) client_max_window_bits: Option<Option<WindowBits>>,
}

impl Parsed {
    /// Reads a parameter list. RFC 7692 §7: an offer or a response is bad if it "contains an
    /// extension parameter not defined for use in an offer/response", "an extension parameter
    /// with an invalid value", or "multiple extension parameters with the same name".
    pub(crate) fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, NegotiationError> {
        let mut parsed = Parsed::default();
        let mut seen = [false; 4];
        for (name, value) in params {
            let (slot, name) = match name {
                SERVER_NO_CONTEXT_TAKEOVER => (0, SERVER_NO_CONTEXT_TAKEOVER),
                CLIENT_NO_CONTEXT_TAKEOVER => (1, CLIENT_NO_CONTEXT_TAKEOVER),
                SERVER_MAX_WINDOW_BITS => (2, SERVER_MAX_WINDOW_BITS),
                CLIENT_MAX_WINDOW_BITS => (3, CLIENT_MAX_WINDOW_BITS),
                other => return Err(NegotiationError::UnknownParameter(other.to_owned())),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(NegotiationError::DuplicateParameter(name));
            }
            parsed.set(slot, name, value)?;
        }
        Ok(parsed)
    }

    fn set(
        &mut self,
        slot: usize,
        name: &'static str,
        value: Option<&str>,
    ) -> Result<(), NegotiationError> {
        let bad = || NegotiationError::BadValue(name);
        let bits = |v: Option<&str>| v.and_then(WindowBits::parse).ok_or_else(bad);
        match slot {
            // §7.1.1.1, §7.1.1.2: "This extension parameter has no value."
            0 | 1 if value.is_some() => return Err(bad()),
            0 => self.server_no_context_takeover = true,
            1 => self.client_no_context_takeover = true,
            // §7.1.2.1: server_max_window_bits "has a decimal integer value ... 8 to 15".
            2 => self.server_max_window_bits = Some(bits(value)?),
            // §7.1.2.2: client_max_window_bits "may have a value", then 8 to 15.
            _ => {
                self.client_max_window_bits = Some(match value {
                    None => None,
                    v => Some(bits(v)?),
                })
            }
        }
        Ok(())
    }
}
