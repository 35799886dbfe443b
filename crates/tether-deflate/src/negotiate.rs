//! Negotiation, RFC 7692 §7 and §7.1: the client's offer, the server's choice among offers and
//! its response, and the client's check of that response.

use std::fmt::Write;

use crate::params::{
    Parsed, CLIENT_MAX_WINDOW_BITS, CLIENT_NO_CONTEXT_TAKEOVER, PERMESSAGE_DEFLATE,
    SERVER_MAX_WINDOW_BITS, SERVER_NO_CONTEXT_TAKEOVER,
};
use crate::{DeflateConfig, DeflateParams, NegotiationError, WindowBits};

/// What a server accepted: the agreed parameters and the `Sec-WebSocket-Extensions` element
/// it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    params: DeflateParams,
    response: String,
}

impl Accepted {
    /// The agreed parameters.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// The response element, `permessage-deflate` followed by its parameters, to put in the
    /// response's `Sec-WebSocket-Extensions`.
    pub fn response(&self) -> &str {
        &self.response
    }
}

impl DeflateConfig {
    /// The client's offer, one `Sec-WebSocket-Extensions` element.
    ///
    /// It always carries `client_max_window_bits` (§7.1.2.2: without a value it tells the
    /// server it may restrict the client's window, which lets a server bound its inflater),
    /// with this config's window as the value when below 15; `server_max_window_bits` when
    /// below 15; and each `*_no_context_takeover` flag that is on.
    ///
    /// ```
    /// use tether_deflate::DeflateConfig;
    /// assert_eq!(DeflateConfig::default().offer(), "permessage-deflate; client_max_window_bits");
    /// ```
    pub fn offer(&self) -> String {
        let mut offer = String::from(PERMESSAGE_DEFLATE);
        if self.client_max_window_bits() < WindowBits::MAX {
            param(
                &mut offer,
                CLIENT_MAX_WINDOW_BITS,
                Some(self.client_max_window_bits()),
            );
        } else {
            param(&mut offer, CLIENT_MAX_WINDOW_BITS, None);
        }
        if self.server_max_window_bits() < WindowBits::MAX {
            param(
                &mut offer,
                SERVER_MAX_WINDOW_BITS,
                Some(self.server_max_window_bits()),
            );
        }
        if self.client_no_context_takeover() {
            param(&mut offer, CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        if self.server_no_context_takeover() {
            param(&mut offer, SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        offer
    }

    /// The client's check of the server's answer to [`DeflateConfig::offer`]. `responses` are
    /// the parameter lists of every `permessage-deflate` element of the response (the caller
    /// matches the name); none means the server declined and gives `Ok(None)`.
    ///
    /// RFC 7692 §7: "A client MUST _Fail the WebSocket Connection_ if the peer server accepted
    /// an extension negotiation offer for this extension with an extension negotiation response
    /// meeting any of the following conditions" (a parameter not defined for a response, an
    /// invalid value, a duplicated parameter, a configuration the client does not support).
    /// Every error here is such a failure.
    ///
    /// ```
    /// use tether_deflate::DeflateConfig;
    /// let config = DeflateConfig::default();
    /// let params = config
    ///     .accept_response([[("server_max_window_bits", Some("10"))]])
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(params.server_max_window_bits().get(), 10);
    /// assert!(config.accept_response([[("x", None)]]).is_err());
    /// ```
    pub fn accept_response<'a, E, P>(
        &self,
        responses: E,
    ) -> Result<Option<DeflateParams>, NegotiationError>
    where
        E: IntoIterator<Item = P>,
        P: IntoIterator<Item = (&'a str, Option<&'a str>)>,
    {
        let mut responses = responses.into_iter();
        let Some(first) = responses.next() else {
            return Ok(None);
        };
        // The client made one offer, and a server accepts "by picking any supported one from
        // the listed offers" (§7.1.3): a second acceptance answers nothing we offered.
        if responses.next().is_some() {
            return Err(NegotiationError::SeveralResponses);
        }
        let response = Parsed::parse(first)?;
        self.check_response(&response).map(Some)
    }

    fn check_response(&self, response: &Parsed) -> Result<DeflateParams, NegotiationError> {
        // §7.1.1.1: "A server accepts an extension negotiation offer that includes the
        // server_no_context_takeover extension parameter by including the
        // server_no_context_takeover extension parameter in the ... response".
        if self.server_no_context_takeover() && !response.server_no_context_takeover {
            return Err(NegotiationError::Missing(SERVER_NO_CONTEXT_TAKEOVER));
        }
        // §7.1.2.1: the server accepts an offered server_max_window_bits "by including the
        // server_max_window_bits ... with the same or smaller value as the offer"; without it
        // in the offer, the response may still set it.
        let offered_server = self.server_max_window_bits();
        let server_bits = match response.server_max_window_bits {
            None if offered_server < WindowBits::MAX => {
                return Err(NegotiationError::Missing(SERVER_MAX_WINDOW_BITS))
            }
            None => WindowBits::MAX,
            Some(bits) if bits > offered_server => {
                return Err(window_too_large(
                    SERVER_MAX_WINDOW_BITS,
                    offered_server,
                    bits,
                ))
            }
            Some(bits) => bits,
        };
        // §7.1.2.2: in a response client_max_window_bits "MUST have a value", no larger than
        // an offered one. The offer always carries the parameter, so it is always allowed.
        let offered_client = self.client_max_window_bits();
        let client_bits = match response.client_max_window_bits {
            None => offered_client,
            Some(None) => return Err(NegotiationError::BadValue(CLIENT_MAX_WINDOW_BITS)),
            Some(Some(bits)) if bits > offered_client => {
                return Err(window_too_large(
                    CLIENT_MAX_WINDOW_BITS,
                    offered_client,
                    bits,
                ))
            }
            Some(Some(bits)) => bits,
        };
        Ok(DeflateParams {
            client_max_window_bits: client_bits,
            server_max_window_bits: server_bits,
            // §7.1.1.2: the server may ask for it even if not offered; the client may reset on
            // its own anyway.
            client_no_context_takeover: self.client_no_context_takeover()
                || response.client_no_context_takeover,
            server_no_context_takeover: response.server_no_context_takeover,
        })
    }

    /// The server's choice: the first of `offers` (the parameter lists of every
    /// `permessage-deflate` element of the request, in order) that this config can accept, with
    /// the agreed parameters and the response element; `None` declines the extension.
    ///
    /// RFC 7692 §7: "A server MUST decline an extension negotiation offer for this extension
    /// if ... \[it\] contains an extension parameter not defined for use in an offer ... an
    /// extension parameter with an invalid value ... multiple extension parameters with the
    /// same name ... \[or\] the server doesn't support the offered configuration." Declining an
    /// offer moves on to the next: "The server can accept permessage-deflate by picking any
    /// supported one from the listed offers" (§7.1.3); the first is the client's preference.
    ///
    /// ```
    /// use tether_deflate::DeflateConfig;
    /// let accepted = DeflateConfig::default()
    ///     .accept_offer([vec![("bogus", None)], vec![("client_max_window_bits", None)]])
    ///     .unwrap();
    /// assert_eq!(accepted.response(), "permessage-deflate");
    /// ```
    pub fn accept_offer<'a, E, P>(&self, offers: E) -> Option<Accepted>
    where
        E: IntoIterator<Item = P>,
        P: IntoIterator<Item = (&'a str, Option<&'a str>)>,
    {
        offers
            .into_iter()
            .filter_map(|offer| Parsed::parse(offer).ok())
            .find_map(|offer| self.accept_one(&offer))
    }

    fn accept_one(&self, offer: &Parsed) -> Option<Accepted> {
        let mut response = String::from(PERMESSAGE_DEFLATE);
        // §7.1.2.2: "If a received extension negotiation offer doesn't have the
        // client_max_window_bits extension parameter, the corresponding extension negotiation
        // response ... MUST NOT include the client_max_window_bits extension parameter."
        // A server that must bound the client's window then cannot accept the offer.
        let wanted = self.client_max_window_bits();
        let client_bits = match offer.client_max_window_bits {
            None if wanted < WindowBits::MAX => return None,
            None => WindowBits::MAX,
            Some(offered) => {
                let limit = offered.unwrap_or(WindowBits::MAX);
                let bits = wanted.min(limit);
                if bits < limit {
                    param(&mut response, CLIENT_MAX_WINDOW_BITS, Some(bits));
                }
                bits
            }
        };
        // §7.1.2.1: accept an offered value "with the same or smaller value"; without one in
        // the offer the response "MAY include" it to announce a smaller window.
        let server_bits = match offer.server_max_window_bits {
            Some(offered) => {
                let bits = self.server_max_window_bits().min(offered);
                param(&mut response, SERVER_MAX_WINDOW_BITS, Some(bits));
                bits
            }
            None => {
                let bits = self.server_max_window_bits();
                if bits < WindowBits::MAX {
                    param(&mut response, SERVER_MAX_WINDOW_BITS, Some(bits));
                }
                bits
            }
        };
        // §7.1.1.1 and §7.1.1.2: a server accepts an offered flag by echoing it and "MAY
        // include" either flag even if the offer did not.
        let server_reset = offer.server_no_context_takeover || self.server_no_context_takeover();
        let client_reset = offer.client_no_context_takeover || self.client_no_context_takeover();
        if server_reset {
            param(&mut response, SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        if client_reset {
            param(&mut response, CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        Some(Accepted {
            params: DeflateParams {
                client_max_window_bits: client_bits,
                server_max_window_bits: server_bits,
                client_no_context_takeover: client_reset,
                server_no_context_takeover: server_reset,
            },
            response,
        })
    }
}

fn param(out: &mut String, name: &str, value: Option<WindowBits>) {
    out.push_str("; ");
    out.push_str(name);
    if let Some(bits) = value {
        // Writing to a String cannot fail.
        let _ = write!(out, "={bits}");
    }
}

fn window_too_large(
    name: &'static str,
    offered: WindowBits,
    answered: WindowBits,
) -> NegotiationError {
    NegotiationError::WindowTooLarge {
        name,
        offered: offered.get(),
        answered: answered.get(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Params<'a> = Vec<(&'a str, Option<&'a str>)>;
    /// (server config, offer, expected response tail and agreed params; `None` declines).
    type ServerCase = (
        DeflateConfig,
        &'static str,
        Option<(&'static str, DeflateParams)>,
    );

    fn bits(n: u8) -> WindowBits {
        WindowBits::new(n).unwrap()
    }

    fn config(
        client_bits: u8,
        server_bits: u8,
        client_reset: bool,
        server_reset: bool,
    ) -> DeflateConfig {
        let mut config = DeflateConfig::default();
        config
            .set_client_max_window_bits(bits(client_bits))
            .set_server_max_window_bits(bits(server_bits))
            .set_client_no_context_takeover(client_reset)
            .set_server_no_context_takeover(server_reset);
        config
    }

    /// Parses "a; b=1" into parameter pairs (the handshake's parser does this for real).
    fn params(s: &str) -> Params<'_> {
        s.split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            })
            .collect()
    }

    fn agreed(c: u8, s: u8, c_reset: bool, s_reset: bool) -> DeflateParams {
        DeflateParams {
            client_max_window_bits: bits(c),
            server_max_window_bits: bits(s),
            client_no_context_takeover: c_reset,
            server_no_context_takeover: s_reset,
        }
    }

    #[test]
    fn rfc7692_7_offer_lists_the_configured_parameters() {
        assert_eq!(
            config(15, 15, false, false).offer(),
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(
            config(10, 9, true, true).offer(),
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=9; \
             client_no_context_takeover; server_no_context_takeover"
        );
    }

    /// The server side of the negotiation matrix: (server config, offer) → response or decline.
    #[test]
    fn rfc7692_7_1_server_matrix() {
        let cases: &[ServerCase] = &[
            // Defaults accept the browsers' offer as is.
            (
                config(15, 15, false, false),
                "client_max_window_bits",
                Some(("", agreed(15, 15, false, false))),
            ),
            (
                config(15, 15, false, false),
                "",
                Some(("", agreed(15, 15, false, false))),
            ),
            // §7.1.2.2: the server lowers the client's window only when the offer allows it.
            (
                config(10, 15, false, false),
                "client_max_window_bits",
                Some(("; client_max_window_bits=10", agreed(10, 15, false, false))),
            ),
            (config(10, 15, false, false), "", None),
            (
                config(10, 15, false, false),
                "client_max_window_bits=9",
                Some(("", agreed(9, 15, false, false))),
            ),
            (
                config(10, 15, false, false),
                "client_max_window_bits=12",
                Some(("; client_max_window_bits=10", agreed(10, 15, false, false))),
            ),
            (
                config(15, 15, false, false),
                "client_max_window_bits=8",
                Some(("", agreed(8, 15, false, false))),
            ),
            // §7.1.2.1: an offered server window is answered with the same or smaller value.
            (
                config(15, 15, false, false),
                "server_max_window_bits=10",
                Some(("; server_max_window_bits=10", agreed(15, 10, false, false))),
            ),
            (
                config(15, 9, false, false),
                "server_max_window_bits=10",
                Some(("; server_max_window_bits=9", agreed(15, 9, false, false))),
            ),
            (
                config(15, 12, false, false),
                "server_max_window_bits=15",
                Some(("; server_max_window_bits=12", agreed(15, 12, false, false))),
            ),
            (
                config(15, 12, false, false),
                "",
                Some(("; server_max_window_bits=12", agreed(15, 12, false, false))),
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits=8",
                Some(("; server_max_window_bits=8", agreed(15, 8, false, false))),
            ),
            // §7.1.1: flags are echoed when offered and may be added when not.
            (
                config(15, 15, false, false),
                "server_no_context_takeover",
                Some(("; server_no_context_takeover", agreed(15, 15, false, true))),
            ),
            (
                config(15, 15, false, false),
                "client_no_context_takeover",
                Some(("; client_no_context_takeover", agreed(15, 15, true, false))),
            ),
            (
                config(15, 15, true, true),
                "",
                Some((
                    "; server_no_context_takeover; client_no_context_takeover",
                    agreed(15, 15, true, true),
                )),
            ),
            // §7: bad offers are declined, not fatal.
            (config(15, 15, false, false), "x_unknown", None),
            (
                config(15, 15, false, false),
                "server_no_context_takeover; server_no_context_takeover",
                None,
            ),
            (
                config(15, 15, false, false),
                "client_max_window_bits; client_max_window_bits=10",
                None,
            ),
            (
                config(15, 15, false, false),
                "server_no_context_takeover=1",
                None,
            ),
            (
                config(15, 15, false, false),
                "client_no_context_takeover=x",
                None,
            ),
            (config(15, 15, false, false), "server_max_window_bits", None),
            (
                config(15, 15, false, false),
                "server_max_window_bits=7",
                None,
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits=16",
                None,
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits=010",
                None,
            ),
            (
                config(15, 15, false, false),
                "client_max_window_bits=0x9",
                None,
            ),
        ];
        for (config, offer, want) in cases {
            let got = config.accept_offer([params(offer)]);
            let got = got.as_ref().map(|a| {
                (
                    a.response().strip_prefix(PERMESSAGE_DEFLATE).unwrap(),
                    *a.params(),
                )
            });
            assert_eq!(got, *want, "offer {offer:?} to {config:?}");
        }
    }

    #[test]
    fn rfc7692_7_1_3_server_takes_the_first_acceptable_offer() {
        let server = config(10, 15, false, false);
        // The first offer has no client_max_window_bits (unacceptable), the second a bad
        // value (declined), the third fits.
        let offers = [
            params(""),
            params("client_max_window_bits=99"),
            params("client_max_window_bits; server_no_context_takeover"),
            params("client_max_window_bits"),
        ];
        let accepted = server.accept_offer(offers).unwrap();
        assert_eq!(
            accepted.response(),
            "permessage-deflate; client_max_window_bits=10; server_no_context_takeover"
        );
        assert_eq!(server.accept_offer(Vec::<Params<'_>>::new()), None);
    }

    /// The client side of the matrix: (client config, response) → agreed params or the error
    /// that fails the connection.
    #[test]
    fn rfc7692_7_client_matrix() {
        use NegotiationError::*;
        let cases: &[(DeflateConfig, &str, Result<DeflateParams, NegotiationError>)] = &[
            (
                config(15, 15, false, false),
                "",
                Ok(agreed(15, 15, false, false)),
            ),
            (
                config(15, 15, false, false),
                "client_max_window_bits=9",
                Ok(agreed(9, 15, false, false)),
            ),
            (
                config(12, 15, false, false),
                "",
                Ok(agreed(12, 15, false, false)),
            ),
            (
                config(12, 15, false, false),
                "client_max_window_bits=12",
                Ok(agreed(12, 15, false, false)),
            ),
            (
                config(12, 15, false, false),
                "client_max_window_bits=13",
                Err(WindowTooLarge {
                    name: CLIENT_MAX_WINDOW_BITS,
                    offered: 12,
                    answered: 13,
                }),
            ),
            (
                config(15, 15, false, false),
                "client_max_window_bits",
                Err(BadValue(CLIENT_MAX_WINDOW_BITS)),
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits=10",
                Ok(agreed(15, 10, false, false)),
            ),
            (
                config(15, 10, false, false),
                "server_max_window_bits=10",
                Ok(agreed(15, 10, false, false)),
            ),
            (
                config(15, 10, false, false),
                "server_max_window_bits=8",
                Ok(agreed(15, 8, false, false)),
            ),
            (
                config(15, 10, false, false),
                "server_max_window_bits=11",
                Err(WindowTooLarge {
                    name: SERVER_MAX_WINDOW_BITS,
                    offered: 10,
                    answered: 11,
                }),
            ),
            (
                config(15, 10, false, false),
                "",
                Err(Missing(SERVER_MAX_WINDOW_BITS)),
            ),
            (
                config(15, 15, false, true),
                "",
                Err(Missing(SERVER_NO_CONTEXT_TAKEOVER)),
            ),
            (
                config(15, 15, false, true),
                "server_no_context_takeover",
                Ok(agreed(15, 15, false, true)),
            ),
            (
                config(15, 15, false, false),
                "server_no_context_takeover",
                Ok(agreed(15, 15, false, true)),
            ),
            (
                config(15, 15, false, false),
                "client_no_context_takeover",
                Ok(agreed(15, 15, true, false)),
            ),
            (
                config(15, 15, true, false),
                "",
                Ok(agreed(15, 15, true, false)),
            ),
            (
                config(15, 15, false, false),
                "x_unknown",
                Err(UnknownParameter("x_unknown".into())),
            ),
            (
                config(15, 15, false, false),
                "server_no_context_takeover; server_no_context_takeover",
                Err(DuplicateParameter(SERVER_NO_CONTEXT_TAKEOVER)),
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits=7",
                Err(BadValue(SERVER_MAX_WINDOW_BITS)),
            ),
            (
                config(15, 15, false, false),
                "server_max_window_bits",
                Err(BadValue(SERVER_MAX_WINDOW_BITS)),
            ),
            (
                config(15, 15, false, false),
                "client_no_context_takeover=1",
                Err(BadValue(CLIENT_NO_CONTEXT_TAKEOVER)),
            ),
        ];
        for (config, response, want) in cases {
            let got = config.accept_response([params(response)]);
            assert_eq!(
                got,
                want.clone().map(Some),
                "response {response:?} to {config:?}"
            );
        }
    }

    #[test]
    fn rfc7692_7_client_fails_on_two_acceptances_and_takes_a_decline() {
        let client = DeflateConfig::default();
        assert_eq!(
            client.accept_response([params(""), params("")]),
            Err(NegotiationError::SeveralResponses)
        );
        assert_eq!(client.accept_response(Vec::<Params<'_>>::new()), Ok(None));
    }

    /// Whatever a server config accepts, the client that made the offer agrees to the same.
    #[test]
    fn rfc7692_7_1_client_and_server_agree_for_every_config_pair() {
        let flags = [false, true];
        let windows = [8, 9, 12, 15];
        let mut configs = Vec::new();
        for c in windows {
            for s in windows {
                for cr in flags {
                    for sr in flags {
                        configs.push(config(c, s, cr, sr));
                    }
                }
            }
        }
        for client in &configs {
            let offer = client.offer();
            let offer = params(offer.strip_prefix(PERMESSAGE_DEFLATE).unwrap());
            for server in &configs {
                let Some(accepted) = server.accept_offer([offer.clone()]) else {
                    // Only a server that must bound the client's window declines, and the
                    // client always offers client_max_window_bits.
                    panic!("{server:?} declined {client:?}");
                };
                let response = params(
                    accepted
                        .response()
                        .strip_prefix(PERMESSAGE_DEFLATE)
                        .unwrap(),
                );
                let agreed = client.accept_response([response]).unwrap().unwrap();
                assert_eq!(&agreed, accepted.params(), "{client:?} × {server:?}");
                assert!(
                    agreed.client_max_window_bits()
                        <= client
                            .client_max_window_bits()
                            .min(server.client_max_window_bits())
                );
                assert!(
                    agreed.server_max_window_bits()
                        <= client
                            .server_max_window_bits()
                            .min(server.server_max_window_bits())
                );
            }
        }
    }
}
