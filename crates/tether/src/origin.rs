//! The `Origin` allow-list of a server: the defence against cross-site WebSocket hijacking.
//!
//! A browser lets any web page open a WebSocket to any server, and sends the server's cookies
//! with the Upgrade request. A server that trusts those cookies (a session) would give a
//! foreign page the visitor's session: the page reads and sends as the visitor. What tells the
//! server is the `Origin` header field, which browsers always send on a WebSocket request and
//! which a page cannot forge.

use http::StatusCode;
use tether_handshake::{Rejection, UpgradeRequest};

/// The origins a [`Server`](crate::Server) accepts WebSocket requests from.
#[derive(Debug, Clone)]
pub(crate) struct AllowedOrigins {
    /// Each origin as given, ASCII lowercase (RFC 6454 §6.2 serializes scheme and host in
    /// lowercase; comparing without case also accepts a hand-written client's spelling).
    origins: Vec<String>,
}

impl AllowedOrigins {
    pub(crate) fn new(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let origins = origins
            .into_iter()
            .map(|origin| origin.into().trim().to_ascii_lowercase())
            .collect();
        AllowedOrigins { origins }
    }

    /// `Ok` for a request without `Origin` or from an allowed one, else a 403.
    ///
    /// RFC 6455 §10.2: "servers that are not intended to process input from any web page but
    /// only for certain sites SHOULD verify the |Origin| field is an origin they expect. If
    /// the origin indicated is unacceptable to the server, then it SHOULD respond to the
    /// WebSocket handshake with a reply containing HTTP 403 Forbidden status code." A request
    /// without `Origin` does not come from a browser (§4.1: browsers MUST send it), so it
    /// carries no visitor's cookies and passes: authenticate such clients by other means.
    pub(crate) fn check(&self, request: &UpgradeRequest) -> Result<(), Rejection> {
        let mut values = request
            .request()
            .headers()
            .get_all(http::header::ORIGIN)
            .iter();
        let allowed = match (values.next(), values.next()) {
            (None, _) => true,
            (Some(origin), None) => origin.to_str().is_ok_and(|origin| {
                let origin = origin.trim();
                self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }),
            // Two Origin fields: no browser sends that.
            (Some(_), Some(_)) => false,
        };
        if allowed {
            Ok(())
        } else {
            tracing::debug!(origin = ?request.origin(), "refusing a foreign origin");
            Err(Rejection::new(StatusCode::FORBIDDEN).with_body("origin not allowed\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_handshake::{Config, Incoming, ServerHandshake};

    fn request(origins: &[&str]) -> UpgradeRequest {
        let mut head = String::from(
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
        for origin in origins {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        head.push_str("\r\n");
        match ServerHandshake::new(&Config::default()).receive(head.as_bytes()) {
            Ok(Some(Incoming::Upgrade(request))) => request,
            other => panic!("a valid request: {other:?}"),
        }
    }

    fn allowed() -> AllowedOrigins {
        AllowedOrigins::new(["https://app.example", "HTTP://localhost:8080"])
    }

    #[test]
    fn rfc6455_10_2_listed_origins_pass_without_case() {
        assert!(allowed().check(&request(&["https://app.example"])).is_ok());
        assert!(allowed().check(&request(&["https://APP.example"])).is_ok());
        assert!(allowed()
            .check(&request(&["http://localhost:8080"]))
            .is_ok());
    }

    #[test]
    fn rfc6455_10_2_foreign_origins_get_403() {
        for foreign in [
            "https://evil.example",
            "https://app.example.evil.example",
            "http://app.example",
            "https://app.example:8443",
            "null",
        ] {
            let refused = allowed().check(&request(&[foreign])).unwrap_err();
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{foreign}");
        }
        let twice = request(&["https://app.example", "https://app.example"]);
        assert!(allowed().check(&twice).is_err());
    }

    #[test]
    fn rfc6455_4_1_no_origin_is_not_a_browser_and_passes() {
        assert!(allowed().check(&request(&[])).is_ok());
        assert!(AllowedOrigins::new(Vec::<String>::new())
            .check(&request(&[]))
            .is_ok());
    }
}
