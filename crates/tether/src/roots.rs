//! Which certificate authorities a client trusts for `wss://` by default.

use std::sync::{Arc, OnceLock};

use crate::error::Error;

/// The root certificates a [`ClientBuilder`](crate::ClientBuilder) trusts when no root store
/// or TLS configuration of its own was given.
///
/// ```
/// use tether::{ClientBuilder, Roots};
///
/// let mut builder = ClientBuilder::new();
/// builder.roots(Roots::Mozilla); // the same roots on every machine
/// assert_eq!(Roots::default(), Roots::System);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Roots {
    /// The operating system's certificate store (rustls-native-certs: the files OpenSSL
    /// reads on Unix, `SSL_CERT_FILE` and `SSL_CERT_DIR` included; the keychain on macOS; the
    /// system store on Windows), where an enterprise CA is installed. When it holds no usable
    /// certificate, the Mozilla roots. Loaded once per process.
    #[default]
    System,
    /// The Mozilla roots compiled into the program (webpki-roots).
    Mozilla,
}

impl Roots {
    /// The rustls client configuration for this choice (cached: loading the system store
    /// reads and parses some hundred certificates).
    pub(crate) fn client_config(self) -> Result<Arc<rustls::ClientConfig>, Error> {
        static SYSTEM: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
        static MOZILLA: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
        let (cell, load): (_, fn() -> rustls::RootCertStore) = match self {
            Roots::System => (&SYSTEM, system_roots),
            Roots::Mozilla => (&MOZILLA, mozilla_roots),
        };
        if let Some(config) = cell.get() {
            return Ok(config.clone());
        }
        let config = client_tls(load())?;
        Ok(cell.get_or_init(|| config).clone())
    }
}

/// The system store's parsable certificates, or the Mozilla roots when there are none.
fn system_roots() -> rustls::RootCertStore {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::debug!(%error, "system certificate store");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    tracing::debug!(added, ignored, "system roots loaded");
    if roots.is_empty() {
        tracing::debug!("no usable system root: the Mozilla roots instead");
        return mozilla_roots();
    }
    roots
}

fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A rustls client configuration with the ring provider trusting `roots`.
pub(crate) fn client_tls(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
