//! Upgrading one request that a hyper server parsed: validate it, answer 101, then take over
//! the connection hyper hands back.

use std::io;

use ::hyper::upgrade::{OnUpgrade, Upgraded};
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tether_codec::{DeflateParams, Role};
use tether_handshake::{Accept, Incoming, Rejection, UpgradeRequest};

use super::rejected::Rejected;
use crate::accept::negotiate_deflate;
use crate::config::Config;
use crate::error::Error;
use crate::websocket::WebSocket;

/// A Tether WebSocket over a connection that hyper upgraded.
pub type HyperWebSocket = WebSocket<TokioIo<Upgraded>>;

/// A valid WebSocket request whose connection hyper can hand over, waiting for the
/// application's decision: [`accept`](Upgrade::accept) it (or drop it and answer as you like).
#[derive(Debug)]
pub struct Upgrade {
    request: UpgradeRequest,
    on_upgrade: OnUpgrade,
}

/// The connection after the 101 was returned to hyper: await
/// [`websocket`](Upgrading::websocket), in a task of its own, once hyper has sent the
/// response.
#[derive(Debug)]
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    config: Config,
    subprotocol: Option<String>,
    deflate: Option<DeflateParams>,
}

impl Upgrade {
    /// Validates `request` by Tether's rules, with `config`'s header limits (see
    /// [`Incoming::from_head`]), and takes hyper's upgrade handle out of its extensions.
    ///
    /// # Errors
    ///
    /// A [`Rejected`] whose [`into_response`](Rejected::into_response) is the answer.
    pub fn from_request<B>(request: &mut Request<B>, config: &Config) -> Result<Upgrade, Rejected> {
        let head = head_of(
            request.method(),
            request.uri(),
            request.version(),
            request.headers(),
        );
        Upgrade::new(head, request.extensions_mut(), config)
    }

    /// Like [`from_request`](Upgrade::from_request), for a request already split into its
    /// head and body (what an extractor sees).
    ///
    /// # Errors
    ///
    /// As for [`from_request`](Upgrade::from_request).
    pub fn from_parts(parts: &mut Parts, config: &Config) -> Result<Upgrade, Rejected> {
        let head = head_of(&parts.method, &parts.uri, parts.version, &parts.headers);
        Upgrade::new(head, &mut parts.extensions, config)
    }

    fn new(
        head: Request<()>,
        extensions: &mut Extensions,
        config: &Config,
    ) -> Result<Upgrade, Rejected> {
        let request = match Incoming::from_head(head, config.handshake())? {
            Incoming::Upgrade(request) => request,
            Incoming::Plain(_) => return Err(Rejected::NotWebSocket),
        };
        let on_upgrade = extensions
            .remove::<OnUpgrade>()
            .ok_or(Rejected::NotUpgradable)?;
        Ok(Upgrade {
            request,
            on_upgrade,
        })
    }

    /// The request: path, query, header fields, offered subprotocols and extensions.
    pub fn request(&self) -> &UpgradeRequest {
        &self.request
    }

    /// Accepts with `accept` (subprotocol, extra header fields) plus permessage-deflate when
    /// `config` accepts the client's offer, as [`Server`](crate::Server) does. Returns the 101
    /// for hyper to send and the connection to come, with `config`'s limits.
    ///
    /// # Errors
    ///
    /// [`Rejected::Handshake`] (500) when `accept` selects what the client did not offer.
    pub fn accept(
        self,
        accept: Accept,
        config: &Config,
    ) -> Result<(Response<Full<Bytes>>, Upgrading), Rejected> {
        let accept = negotiate_deflate(accept, &self.request, config);
        let (response, outcome) = self.request.accept_response(&accept)?;
        let upgrading = Upgrading {
            on_upgrade: self.on_upgrade,
            config: config.clone(),
            subprotocol: outcome.subprotocol,
            deflate: outcome.deflate,
        };
        Ok((response.map(|()| Full::default()), upgrading))
    }
}

impl Upgrading {
    /// The subprotocol the 101 selected.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Waits for hyper to hand the connection over (after it wrote the 101) and wraps it in
    /// a [`WebSocket`] with the limits, timeouts and deflate parameters agreed. Heartbeat as
    /// with [`Server`](crate::Server): [`WebSocket::supervise`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when hyper cannot hand the connection over (the client went away, or
    /// the connection is served without `with_upgrades()`).
    pub async fn websocket(self) -> Result<HyperWebSocket, Error> {
        let upgraded = self.on_upgrade.await.map_err(io::Error::other)?;
        let ws = WebSocket::from_raw(
            TokioIo::new(upgraded),
            Role::Server,
            &self.config,
            BytesMut::new(),
            self.subprotocol,
        );
        Ok(ws.with_deflate(self.deflate, &self.config))
    }
}

/// Upgrades `request` in one call: validates it, lets `decide` accept it or turn it down
/// (403 for a foreign `Origin`, ...), and returns the 101 with the connection to come.
/// `config` gives the header limits, the WebSocket's limits and timeouts, and deflate.
///
/// hyper hands the connection over only when it is served with upgrades on
/// (`hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`).
///
/// ```no_run
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use hyper::{body::Incoming, Request, Response};
/// use tether::{hyper::upgrade, Accept, Bytes, Config, StreamExt, SinkExt};
///
/// async fn handle(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     let config = Config::default();
///     match upgrade(&mut request, &config, |_| Ok(Accept::new())) {
///         Ok((response, upgrading)) => {
///             tokio::spawn(async move {
///                 let Ok(mut ws) = upgrading.websocket().await else { return };
///                 while let Some(Ok(message)) = ws.next().await {
///                     if message.is_data() && ws.send(message).await.is_err() {
///                         break;
///                     }
///                 }
///             });
///             Ok(response)
///         }
///         Err(rejected) => Ok(rejected.into_response()),
///     }
/// }
/// ```
///
/// # Errors
///
/// A [`Rejected`] whose [`into_response`](Rejected::into_response) is the answer: the same
/// statuses as [`Server`](crate::Server) sends.
pub fn upgrade<B, F>(
    request: &mut Request<B>,
    config: &Config,
    decide: F,
) -> Result<(Response<Full<Bytes>>, Upgrading), Rejected>
where
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Rejection>,
{
    let upgrade = Upgrade::from_request(request, config)?;
    let accept = decide(upgrade.request()).map_err(Rejected::Application)?;
    upgrade.accept(accept, config)
}

/// The head of a request, without body or extensions, for validation.
fn head_of(method: &Method, uri: &Uri, version: Version, headers: &HeaderMap) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri.clone();
    *head.version_mut() = version;
    *head.headers_mut() = headers.clone();
    head
}
