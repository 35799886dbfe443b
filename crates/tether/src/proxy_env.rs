//! The proxy of a connection from the environment variables, read as curl reads them.
//!
//! For a `wss://` server the first variable that is set wins, in this order:
//! `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`.
//! For `ws://`: `ws_proxy`, `WS_PROXY`, `http_proxy`, `all_proxy`, `ALL_PROXY`. Lowercase
//! wins over uppercase. Uppercase `HTTP_PROXY` is not read, as curl does not read it: a CGI
//! program gets the request's `Proxy:` header as `HTTP_PROXY`, so a client could choose the
//! proxy of the server's own outgoing connections ("httpoxy"). A variable that is set but
//! empty ends the search with no proxy. Then `no_proxy` (or `NO_PROXY`) may exempt the
//! server ([`NoProxy`]).

use crate::no_proxy::NoProxy;
use crate::proxy::Proxy;
use crate::proxy_error::ProxyError;

/// The variables tried for `ws://` (`secure == false`) or `wss://`, in order.
pub(crate) fn variables(secure: bool) -> &'static [&'static str] {
    if secure {
        &[
            "wss_proxy",
            "WSS_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]
    } else {
        &[
            "ws_proxy",
            "WS_PROXY",
            "http_proxy",
            "all_proxy",
            "ALL_PROXY",
        ]
    }
}

/// The proxy the environment names for a server, `None` for a direct connection.
///
/// ```
/// // `ws://` reads http_proxy (lowercase only), wss:// reads https_proxy or HTTPS_PROXY.
/// let env = |name: &str| match name {
///     "HTTP_PROXY" => Some("http://ignored:1".to_owned()),
///     "HTTPS_PROXY" => Some("http://proxy.corp:3128".to_owned()),
///     "NO_PROXY" => Some("localhost".to_owned()),
///     _ => None,
/// };
/// let proxy = tether::proxy_for(true, "example.com", 443, env)?;
/// assert_eq!(proxy.map(|p| p.to_string()).as_deref(), Some("http://proxy.corp:3128"));
/// assert_eq!(tether::proxy_for(false, "example.com", 80, env)?, None);
/// assert_eq!(tether::proxy_for(true, "localhost", 443, env)?, None);
/// # Ok::<(), tether::ProxyError>(())
/// ```
///
/// `lookup` reads a variable: `|name| std::env::var(name).ok()` for the process
/// environment, which is what [`ClientBuilder`](crate::ClientBuilder) does by default.
///
/// # Errors
///
/// [`ProxyError::InvalidUrl`] when the chosen variable holds a URL that cannot be read
/// (naming the variable).
pub fn proxy_for(
    secure: bool,
    host: &str,
    port: u16,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, ProxyError> {
    let Some((variable, value)) = variables(secure)
        .iter()
        .find_map(|name| lookup(name).map(|value| (*name, value)))
    else {
        return Ok(None);
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    let no_proxy = NoProxy::from_lookup(&lookup);
    if no_proxy.matches(host, port) {
        return Ok(None);
    }
    let mut proxy = Proxy::parse(&value).map_err(|err| match err {
        ProxyError::InvalidUrl { url, reason } => ProxyError::InvalidUrl {
            url,
            reason: format!("{reason} (from {variable})"),
        },
        other => other,
    })?;
    proxy.set_no_proxy(no_proxy);
    Ok(Some(proxy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn chosen(secure: bool, vars: &[(&str, &str)]) -> Option<String> {
        proxy_for(secure, "server.example", 443, env(vars))
            .unwrap()
            .map(|proxy| proxy.host().to_owned())
    }

    #[test]
    fn wss_reads_wss_then_https_then_all_lowercase_first() {
        let all = [
            ("wss_proxy", "a"),
            ("WSS_PROXY", "b"),
            ("https_proxy", "c"),
            ("HTTPS_PROXY", "d"),
            ("all_proxy", "e"),
            ("ALL_PROXY", "f"),
            ("http_proxy", "x"),
        ];
        for skip in 0..6 {
            let expected = all[skip].1;
            assert_eq!(
                chosen(true, &all[skip..]).as_deref(),
                Some(expected),
                "{skip}"
            );
        }
        assert_eq!(chosen(true, &[("http_proxy", "x")]), None);
    }

    #[test]
    fn ws_reads_ws_then_lowercase_http_only_then_all() {
        let all = [
            ("ws_proxy", "a"),
            ("WS_PROXY", "b"),
            ("http_proxy", "c"),
            ("HTTP_PROXY", "never"),
            ("all_proxy", "e"),
            ("ALL_PROXY", "f"),
        ];
        assert_eq!(chosen(false, &all).as_deref(), Some("a"));
        assert_eq!(chosen(false, &all[1..]).as_deref(), Some("b"));
        assert_eq!(chosen(false, &all[2..]).as_deref(), Some("c"));
        // httpoxy: uppercase HTTP_PROXY is skipped, ALL_PROXY is next.
        assert_eq!(chosen(false, &all[3..]).as_deref(), Some("e"));
        assert_eq!(chosen(false, &[("HTTP_PROXY", "never")]), None);
        assert_eq!(
            chosen(false, &[("HTTPS_PROXY", "s"), ("https_proxy", "s")]),
            None
        );
    }

    #[test]
    fn an_empty_variable_ends_the_search_with_no_proxy() {
        assert_eq!(
            chosen(true, &[("https_proxy", ""), ("ALL_PROXY", "f")]),
            None
        );
        assert_eq!(chosen(true, &[("https_proxy", " ")]), None);
    }

    #[test]
    fn no_proxy_exempts_the_server_and_is_kept_on_the_proxy() {
        let vars = [("https_proxy", "p"), ("NO_PROXY", ".example")];
        assert_eq!(chosen(true, &vars), None);
        let proxy = proxy_for(true, "other.org", 443, env(&vars))
            .unwrap()
            .unwrap();
        assert!(!proxy.applies_to("a.example", 443));
    }

    #[test]
    fn a_bad_url_names_its_variable() {
        let err = proxy_for(true, "h", 443, env(&[("ALL_PROXY", "ftp://x")])).unwrap_err();
        assert!(
            matches!(&err, ProxyError::InvalidUrl { reason, .. } if reason.contains("ALL_PROXY")),
            "{err}"
        );
    }
}
