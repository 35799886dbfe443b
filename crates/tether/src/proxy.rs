//! A client proxy: where it is, how to speak to it, and the credentials it wants.
//!
//! ```text
//!  client ──TCP──► proxy ──TCP──► server
//!          │ HTTP: CONNECT host:port, 2xx        (then TLS and the Upgrade,
//!          │ SOCKS5: greeting, auth, CONNECT       end to end through the tunnel)
//! ```
//!
//! A proxy is given by URL, as curl takes it: `http://[user:password@]host[:port]` for an
//! HTTP proxy (the tunnel is opened with `CONNECT`, RFC 9110 §9.3.6; credentials go as
//! `Proxy-Authorization: Basic`), `socks5://` for a SOCKS5 proxy that is sent the server's
//! address resolved here, `socks5h://` for one that resolves the name itself (RFC 1928;
//! credentials with RFC 1929 username/password). A URL without a scheme is an HTTP proxy;
//! without a port, port 1080 (curl's default). User and password are percent-decoded.

use std::fmt;

use crate::no_proxy::NoProxy;
use crate::proxy_error::ProxyError;

/// The port of a proxy URL that names none (curl's default for every kind of proxy).
const DEFAULT_PORT: u16 = 1080;

/// A proxy the client opens its connections through, given by URL as curl takes it:
/// `http://[user:password@]host[:port]` for an HTTP proxy (the tunnel is opened with
/// `CONNECT`, RFC 9110 §9.3.6; credentials go as `Proxy-Authorization: Basic`), `socks5://`
/// for a SOCKS5 proxy sent the server's address resolved here, `socks5h://` for one that
/// resolves the name itself (RFC 1928; credentials as RFC 1929 username/password). Without
/// a scheme: HTTP; without a port: 1080 (curl's default). User and password are
/// percent-decoded.
///
/// ```
/// use tether::Proxy;
///
/// let proxy = Proxy::parse("http://alice:s%40cret@proxy.corp:3128")?;
/// assert_eq!(proxy.kind(), tether::ProxyKind::Http);
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.corp", 3128));
/// assert_eq!(proxy.credentials(), Some(("alice", "s@cret")));
/// // Credentials stay out of logs.
/// assert_eq!(proxy.to_string(), "http://alice:***@proxy.corp:3128");
///
/// let socks = Proxy::parse("socks5h://127.0.0.1")?;
/// assert_eq!((socks.kind(), socks.port()), (tether::ProxyKind::Socks5h, 1080));
/// # Ok::<(), tether::ProxyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
    no_proxy: NoProxy,
}

/// How the client speaks to a [`Proxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy: the tunnel is opened with `CONNECT` (`http://`).
    Http,
    /// SOCKS5, the server's name resolved by the client (`socks5://`).
    Socks5,
    /// SOCKS5, the server's name resolved by the proxy (`socks5h://`).
    Socks5h,
}

impl Proxy {
    /// Parses a proxy URL (see [`Proxy`]).
    ///
    /// # Errors
    ///
    /// [`ProxyError::InvalidUrl`] for a URL that cannot be read, a scheme other than
    /// `http`, `socks5`, `socks5h` (an `https://` proxy, TLS to the proxy itself, is not
    /// supported), a path, or credentials that are not UTF-8 once decoded.
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        let invalid = |reason: &str| ProxyError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), trimmed),
        };
        let kind = match scheme.as_str() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            _ => return Err(invalid("the scheme must be http, socks5 or socks5h")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(invalid("a proxy URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let credentials = userinfo
            .map(|userinfo| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                Ok::<_, ProxyError>((
                    percent_decode(user).ok_or_else(|| invalid("bad percent-encoding"))?,
                    percent_decode(password).ok_or_else(|| invalid("bad percent-encoding"))?,
                ))
            })
            .transpose()?;
        let (host, port) = split_host_port(hostport).ok_or_else(|| invalid("bad host or port"))?;
        Ok(Proxy {
            kind,
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            credentials,
            no_proxy: NoProxy::default(),
        })
    }

    /// How the client speaks to this proxy.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host name or IP address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password from the URL, decoded.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Servers reached directly, not through this proxy. Default: none (every server goes
    /// through it).
    pub fn set_no_proxy(&mut self, no_proxy: NoProxy) -> &mut Self {
        self.no_proxy = no_proxy;
        self
    }

    /// Servers reached directly; see [`Proxy::set_no_proxy`].
    pub fn no_proxy(&self) -> &NoProxy {
        &self.no_proxy
    }

    /// Whether a connection to `host:port` goes through this proxy.
    pub fn applies_to(&self, host: &str, port: u16) -> bool {
        !self.no_proxy.matches(host, port)
    }
}

impl fmt::Display for Proxy {
    /// The URL with the password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        write!(f, "{scheme}://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.to_string())
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `url` with anything between `://` (or the start) and the last `@` replaced, for errors.
fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |at| at + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → host (brackets removed) and port.
pub(crate) fn split_host_port(hostport: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(['[', ']', '@', ' ']) {
        return None;
    }
    let port = port.map(str::parse::<u16>).transpose().ok()?;
    Some((host.to_owned(), port))
}

/// RFC 3986 §2.1 percent-decoding; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_curl_reads_them() {
        let bare = Proxy::parse("proxy.corp").unwrap();
        assert_eq!(bare.kind(), ProxyKind::Http);
        assert_eq!((bare.host(), bare.port()), ("proxy.corp", 1080));
        assert_eq!(bare.credentials(), None);

        let v6 = Proxy::parse("SOCKS5://u@[::1]:9050/").unwrap();
        assert_eq!(v6.kind(), ProxyKind::Socks5);
        assert_eq!((v6.host(), v6.port()), ("::1", 9050));
        assert_eq!(v6.credentials(), Some(("u", "")));
        assert_eq!(v6.to_string(), "socks5://u:***@[::1]:9050");

        // The last '@' ends the userinfo; ':' inside the password is kept.
        let odd = Proxy::parse("http://a%3Ab:c:d@h:1").unwrap();
        assert_eq!(odd.credentials(), Some(("a:b", "c:d")));
    }

    #[test]
    fn bad_proxy_urls_are_refused_without_echoing_the_password() {
        for url in [
            "https://h:1",
            "socks4://h",
            "http://h:99999",
            "http://h:1/path",
            "http://:1",
            "http://u:p%zz@h",
            "http://[::1",
        ] {
            assert!(
                matches!(Proxy::parse(url), Err(ProxyError::InvalidUrl { .. })),
                "{url}"
            );
        }
        let err = Proxy::parse("ftp://user:hunter2@h").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
