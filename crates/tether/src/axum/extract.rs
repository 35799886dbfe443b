//! The `WebSocketUpgrade` extractor: axum's familiar shape, Tether's handshake and WebSocket.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use tether_deflate::DeflateConfig;
use tether_handshake::{Accept, UpgradeRequest};

use crate::config::Config;
use crate::error::Error;
use crate::hyper::{HyperWebSocket, Rejected, Upgrade};
use crate::origin::AllowedOrigins;

type OnFailed = Box<dyn FnOnce(Error) + Send>;

/// Extractor for a WebSocket route of an axum router, with the shape of
/// `axum::extract::ws::WebSocketUpgrade`: set [`protocols`](WebSocketUpgrade::protocols)
/// and limits, then return [`on_upgrade`](WebSocketUpgrade::on_upgrade)'s response from the
/// handler; the callback gets a Tether [`WebSocket`](crate::WebSocket).
///
/// Extraction validates the request by Tether's rules; a request that fails is answered by
/// the [`Rejected`] response (400, 426 with `Sec-WebSocket-Version`, 431), the same as
/// [`Server`](crate::Server) and `tether serve` send. The limits start from a [`Config`]
/// found in the request's extensions (`Router::layer(Extension(config))`), or the default.
/// Other extractors (`Path`, `HeaderMap`, `Extension`, `State`) work alongside it, and
/// [`request`](WebSocketUpgrade::request) shows the head it validated. permessage-deflate is
/// accepted when the config enables it; the heartbeat is [`WebSocket::supervise`](crate::WebSocket::supervise).
///
/// A handler, for `Router::new().route("/chat", get(chat))`:
///
/// ```
/// use axum_core::response::Response;
/// use http::HeaderMap;
/// use tether::axum::WebSocketUpgrade;
/// use tether::{SinkExt, StreamExt};
///
/// async fn chat(ws: WebSocketUpgrade, headers: HeaderMap) -> Response {
///     let agent = headers.get("user-agent").cloned();
///     ws.protocols(["chat"]).max_message_size(64 << 10).on_upgrade(move |mut ws| async move {
///         tracing::info!(?agent, subprotocol = ?ws.subprotocol(), "joined");
///         while let Some(Ok(message)) = ws.next().await {
///             if message.is_data() && ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
/// ```
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
    config: Config,
    protocols: Vec<Cow<'static, str>>,
    origins: Option<AllowedOrigins>,
    on_failed: Option<OnFailed>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Rejected;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejected> {
        let config = parts
            .extensions
            .get::<Config>()
            .cloned()
            .unwrap_or_default();
        let upgrade = Upgrade::from_parts(parts, &config)?;
        Ok(WebSocketUpgrade {
            upgrade,
            config,
            protocols: Vec::new(),
            origins: None,
            on_failed: None,
        })
    }
}

impl WebSocketUpgrade {
    /// The subprotocols this endpoint speaks, most preferred first: the first one the client
    /// also offered is selected (`Sec-WebSocket-Protocol` in the 101); none, and no
    /// subprotocol is selected.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocol that [`on_upgrade`](WebSocketUpgrade::on_upgrade) will select.
    pub fn selected_protocol(&self) -> Option<&str> {
        let offered = self.upgrade.request().subprotocols();
        self.protocols
            .iter()
            .map(|p| p.as_ref())
            .find(|p| offered.iter().any(|o| o == p))
    }

    /// The validated request head: path, query, header fields, offered subprotocols and
    /// extensions.
    pub fn request(&self) -> &UpgradeRequest {
        self.upgrade.request()
    }

    /// Accepts browsers only from these origins, as [`Server::allow_origins`](crate::Server::allow_origins)
    /// does: a request whose `Origin` is not one of them is answered 403 by
    /// [`on_upgrade`](WebSocketUpgrade::on_upgrade) (RFC 6455 §10.2); a request without
    /// `Origin` (not a browser) passes. Needed when the route trusts cookies.
    pub fn allow_origins(mut self, origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.origins = Some(AllowedOrigins::new(origins));
        self
    }

    /// Largest message received, in bytes ([`Config::set_max_message_size`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.set_max_message_size(bytes);
        self
    }

    /// Largest frame payload received, in bytes ([`Config::set_max_frame_payload`]).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.set_max_frame_payload(bytes);
        self
    }

    /// Write buffer high-water mark, in bytes ([`Config::set_write_buffer_limit`]).
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.config.set_write_buffer_limit(bytes);
        self
    }

    /// permessage-deflate to accept, or `None` to decline ([`Config::set_deflate`]).
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.config.set_deflate(deflate);
        self
    }

    /// Replaces every limit, timeout and the deflate setting with `config`'s.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Called instead of the [`on_upgrade`](WebSocketUpgrade::on_upgrade) callback when the
    /// connection cannot be taken over after the 101 (the client went away). Without it the
    /// failure is logged at debug level.
    pub fn on_failed_upgrade(mut self, callback: impl FnOnce(Error) + Send + 'static) -> Self {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// Accepts the request and returns the response for the handler to return: the 101, a
    /// 403 for an origin not allowed, or a 500 if the selection does not fit the request.
    /// Once the 101 is sent, `callback` runs in a task of its own with the WebSocket.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(HyperWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Some(origins) = &self.origins {
            if let Err(forbidden) = origins.check(self.upgrade.request()) {
                return IntoResponse::into_response(Rejected::Application(forbidden));
            }
        }
        let accept = match self.selected_protocol() {
            Some(protocol) => Accept::new().with_subprotocol(protocol),
            None => Accept::new(),
        };
        let (response, upgrading) = match self.upgrade.accept(accept, &self.config) {
            Ok(accepted) => accepted,
            Err(rejected) => return IntoResponse::into_response(rejected),
        };
        let on_failed = self.on_failed;
        tokio::spawn(async move {
            match upgrading.websocket().await {
                Ok(ws) => callback(ws).await,
                Err(error) => match on_failed {
                    Some(on_failed) => on_failed(error),
                    None => tracing::debug!(%error, "websocket upgrade failed after the 101"),
                },
            }
        });
        response.map(|_| Body::empty())
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        self.rejection().to_response().map(Body::from)
    }
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", self.upgrade.request())
            .field("protocols", &self.protocols)
            .field("origins", &self.origins)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
