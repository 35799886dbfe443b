//! The client role: `connect(url)` and the `ClientBuilder` behind it.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use rustls_pki_types::ServerName;
use tether_codec::Role;
use tether_handshake::ClientRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::Config;
// Re-exported for `server.rs`, which imports it from here; the function lives in `deadline`.
use crate::deadline::within;
use crate::error::Error;
use crate::proxy::Proxy;
use crate::proxy_error::ProxyError;
use crate::roots::{client_tls, Roots};
use crate::transport::MaybeTls;
use crate::websocket::WebSocket;

/// Opens a WebSocket to `url` (`ws://` or `wss://`) with the default configuration; `wss://`
/// checks the server against the operating system's root certificates ([`Roots::System`]),
/// and the connection goes through the proxy the environment names, if any
/// ([`proxy_for`](crate::proxy_for)).
///
/// See [`ClientBuilder`] for headers, subprotocols, limits, timeouts, proxies and TLS roots.
///
/// # Errors
///
/// [`Error::InvalidUrl`], [`Error::ConnectTimeout`], [`Error::Io`] when the TCP connection
/// fails, [`Error::Proxy`] when the proxy cannot be used or refuses the tunnel, [`Error::Tls`] when the TLS handshake fails, [`Error::Handshake`] when the server
/// refuses the upgrade (with the status it sent).
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTls<TcpStream>>, Error> {
    ClientBuilder::new().connect(url).await
}

/// Options for opening client connections; one builder can open many.
///
/// ```no_run
/// use http::{header, HeaderValue};
/// use tether::{ClientBuilder, Config};
///
/// # async fn run() -> Result<(), tether::Error> {
/// let mut config = Config::default();
/// config.set_max_message_size(1 << 20);
/// let ws = ClientBuilder::new()
///     .config(config)
///     .subprotocol("chat.v2")
///     .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"))
///     .connect("wss://example.com/chat")
///     .await?;
/// assert_eq!(ws.subprotocol(), Some("chat.v2"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    config: Config,
    subprotocols: Vec<String>,
    headers: HeaderMap,
    tls: Option<Arc<rustls::ClientConfig>>,
    roots: Roots,
    proxy: ProxyChoice,
}

/// Where a builder's connections get their proxy.
#[derive(Debug, Clone, Default)]
enum ProxyChoice {
    /// The environment variables, read at every connect (`proxy_for`).
    #[default]
    Env,
    /// Direct connections, whatever the environment says.
    Direct,
    /// This proxy, for the servers its no-proxy list does not exempt.
    Fixed(Proxy),
}

impl ClientBuilder {
    /// A builder with the default [`Config`], no subprotocol, no extra header, the system's
    /// root certificates for `wss://` ([`Roots::System`]) and the proxy from the environment.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Limits and timeouts for the connections. Default: [`Config::default`].
    pub fn config(&mut self, config: Config) -> &mut Self {
        self.config = config;
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference. Default: none.
    pub fn subprotocol(&mut self, name: impl Into<String>) -> &mut Self {
        self.subprotocols.push(name.into());
        self
    }

    /// Adds a header field to the Upgrade request (`Authorization`, `Origin`, `Cookie`...).
    /// The handshake's own fields are refused when connecting. Default: none.
    pub fn header(&mut self, name: HeaderName, value: HeaderValue) -> &mut Self {
        self.headers.append(name, value);
        self
    }

    /// Trusts exactly these roots for `wss://` (rustls with the ring provider, TLS 1.2 and
    /// 1.3, ALPN `http/1.1`). Default: [`ClientBuilder::roots`].
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] if rustls refuses the protocol versions (it does not with ring).
    pub fn root_store(&mut self, roots: rustls::RootCertStore) -> Result<&mut Self, Error> {
        self.tls = Some(client_tls(roots)?);
        Ok(self)
    }

    /// Uses this rustls configuration for `wss://` as it is. Default: see
    /// [`ClientBuilder::root_store`].
    pub fn tls_config(&mut self, tls: Arc<rustls::ClientConfig>) -> &mut Self {
        self.tls = Some(tls);
        self
    }

    /// Which roots `wss://` trusts when neither [`ClientBuilder::root_store`] nor
    /// [`ClientBuilder::tls_config`] was given. Default: [`Roots::System`], the operating
    /// system's store, falling back to the Mozilla roots when it has none.
    pub fn roots(&mut self, roots: Roots) -> &mut Self {
        self.roots = roots;
        self
    }

    /// Connects through `proxy` (HTTP `CONNECT` or SOCKS5), except to the servers of its
    /// [`Proxy::set_no_proxy`] list; the environment is not read. Default: the proxy the
    /// environment names ([`proxy_for`](crate::proxy_for)).
    ///
    /// ```
    /// use tether::{ClientBuilder, NoProxy, Proxy};
    ///
    /// let mut proxy = Proxy::parse("socks5h://user:pass@127.0.0.1:1080")?;
    /// proxy.set_no_proxy(NoProxy::from_env());
    /// ClientBuilder::new().proxy(proxy);
    /// # Ok::<(), tether::ProxyError>(())
    /// ```
    pub fn proxy(&mut self, proxy: Proxy) -> &mut Self {
        self.proxy = ProxyChoice::Fixed(proxy);
        self
    }

    /// Whether connections without a [`ClientBuilder::proxy`] read the proxy environment
    /// variables (`https_proxy`, `ALL_PROXY`, `NO_PROXY`...: see
    /// [`proxy_for`](crate::proxy_for)); `false` connects directly. Default: `true`.
    pub fn proxy_env(&mut self, read: bool) -> &mut Self {
        self.proxy = if read {
            ProxyChoice::Env
        } else {
            ProxyChoice::Direct
        };
        self
    }

    /// Connects to `url`: TCP (with `TCP_NODELAY`) to the server or through the proxy, TLS for
    /// `wss://` (end to end, through the tunnel), then the Upgrade. The TCP connect (with the
    /// whole proxy tunnel), the TLS handshake and the Upgrade each get the handshake timeout.
    ///
    /// # Errors
    ///
    /// As for [`connect`].
    pub async fn connect(&self, url: &str) -> Result<WebSocket<MaybeTls<TcpStream>>, Error> {
        let request = self.request(url)?;
        let timeout = self.config.handshake_timeout();
        let tcp = self.open(&request).await?;
        let io = if request.is_secure() {
            let tls = match &self.tls {
                Some(tls) => tls.clone(),
                None => self.roots.client_config()?,
            };
            let name = ServerName::try_from(request.host().to_owned())
                .map_err(|_| Error::InvalidServerName(request.host().to_owned()))?;
            let tls = within(
                timeout,
                TlsConnector::from(tls).connect(name, tcp),
                Error::TlsTimeout,
            )
            .await??;
            MaybeTls::ClientTls(Box::new(tls))
        } else {
            MaybeTls::Plain(tcp)
        };
        self.upgrade(io, &request).await
    }

    /// Runs the Upgrade for `url` over a transport that is already connected (a duplex pipe,
    /// a TLS stream set up elsewhere). No TLS is added, whatever the scheme.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] and [`Error::Handshake`].
    pub async fn handshake<S>(&self, io: S, url: &str) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let request = self.request(url)?;
        self.upgrade(io, &request).await
    }

    /// The TCP connection to the server: direct, or a tunnel through the proxy.
    async fn open(&self, request: &ClientRequest) -> Result<TcpStream, Error> {
        let (host, port) = (request.host(), request.port());
        let timeout = self.config.handshake_timeout();
        let proxy = match &self.proxy {
            ProxyChoice::Direct => None,
            ProxyChoice::Fixed(proxy) => proxy.applies_to(host, port).then(|| proxy.clone()),
            ProxyChoice::Env => {
                crate::proxy_env::proxy_for(request.is_secure(), host, port, |name| {
                    std::env::var(name).ok()
                })?
            }
        };
        let Some(proxy) = proxy else {
            let tcp = within(
                timeout,
                TcpStream::connect((host, port)),
                Error::ConnectTimeout,
            )
            .await??;
            tcp.set_nodelay(true)?;
            return Ok(tcp);
        };
        tracing::debug!(%proxy, host, port, "connecting through a proxy");
        let tunnel = crate::proxy_connect::through(&proxy, host, port);
        let tcp = within(timeout, tunnel, |limit| ProxyError::Timeout(limit).into()).await??;
        Ok(tcp)
    }

    /// The handshake timeout of every connection this builder opens.
    pub(crate) fn handshake_timeout(&self) -> Option<std::time::Duration> {
        self.config.handshake_timeout()
    }

    pub(crate) fn request(&self, url: &str) -> Result<ClientRequest, Error> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|err: http::uri::InvalidUri| invalid(err.to_string()))?;
        let mut request = ClientRequest::new(uri).map_err(|err| invalid(err.to_string()))?;
        for name in &self.subprotocols {
            request.subprotocol(name.clone());
        }
        for (name, value) in &self.headers {
            request.header(name.clone(), value.clone());
        }
        request.set_deflate(self.config.deflate(Role::Client));
        Ok(request)
    }

    async fn upgrade<S>(&self, io: S, request: &ClientRequest) -> Result<WebSocket<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // Boxed so that the handshake's buffers are freed when it is done instead of staying
        // in the caller's future for the connection's lifetime.
        let (io, outcome) = Box::pin(tether_handshake::client(
            io,
            request,
            self.config.handshake(),
            self.config.handshake_timeout(),
        ))
        .await?;
        Ok(WebSocket::from_raw(
            io,
            Role::Client,
            &self.config,
            outcome.leftover,
            outcome.subprotocol,
        )
        .with_deflate(outcome.deflate, &self.config))
    }
}
