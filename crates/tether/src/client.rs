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
use crate::transport::MaybeTls;
use crate::websocket::WebSocket;

/// Opens a WebSocket to `url` (`ws://` or `wss://`) with the default configuration; `wss://`
/// checks the server against the Mozilla root certificates (webpki-roots).
///
/// See [`ClientBuilder`] for headers, subprotocols, limits, timeouts and TLS roots.
///
/// # Errors
///
/// [`Error::InvalidUrl`], [`Error::ConnectTimeout`], [`Error::Io`] when the TCP connection
/// fails, [`Error::Tls`] when the TLS handshake fails, [`Error::Handshake`] when the server
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
}

impl ClientBuilder {
    /// A builder with the default [`Config`], no subprotocol, no extra header, and the
    /// Mozilla root certificates for `wss://`.
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
    /// 1.3, ALPN `http/1.1`). Default: the Mozilla roots from webpki-roots.
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

    /// Connects to `url`: TCP (with `TCP_NODELAY`), TLS for `wss://`, then the Upgrade. The
    /// TCP connect, the TLS handshake and the Upgrade each get the handshake timeout.
    ///
    /// # Errors
    ///
    /// As for [`connect`].
    pub async fn connect(&self, url: &str) -> Result<WebSocket<MaybeTls<TcpStream>>, Error> {
        let request = self.request(url)?;
        let timeout = self.config.handshake_timeout();
        let tcp = within(
            timeout,
            TcpStream::connect((request.host(), request.port())),
            Error::ConnectTimeout,
        )
        .await??;
        tcp.set_nodelay(true)?;
        let io = if request.is_secure() {
            let tls = match &self.tls {
                Some(tls) => tls.clone(),
                None => client_tls(rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })?,
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

/// A rustls client configuration with the ring provider trusting `roots`.
fn client_tls(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
