//! How `tether connect` reaches the server: the proxy (`--proxy`, the environment,
//! `--no-proxy`) and the roots `wss://` trusts (`--roots`).

use anyhow::{Context as _, Result};
use tether::{ClientBuilder, NoProxy, Proxy, Roots};

/// The proxy and trust-root options of `tether connect`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RouteArgs {
    /// Connect through this proxy: http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT),
    /// socks5:// (the server's name resolved here) or socks5h:// (resolved by the proxy).
    /// NO_PROXY still exempts servers. Default: the proxy the environment names (wss://:
    /// wss_proxy, https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY; ws://: ws_proxy,
    /// http_proxy, then all_proxy, ALL_PROXY; lowercase first; NO_PROXY exempts).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Connect directly: ignore the proxy environment variables.
    #[arg(long)]
    no_proxy: bool,
    /// Roots trusted for wss:// without --ca: 'system' (the operating system's store,
    /// falling back to the Mozilla roots when it has none) or 'mozilla' (built in).
    #[arg(long, value_name = "WHICH", default_value = "system", value_parser = parse_roots)]
    roots: Roots,
}

impl RouteArgs {
    /// Sets the builder's proxy and roots from the options.
    pub(crate) fn apply(&self, builder: &mut ClientBuilder) -> Result<()> {
        builder.roots(self.roots);
        if self.no_proxy {
            builder.proxy_env(false);
        } else if let Some(url) = &self.proxy {
            let mut proxy = Proxy::parse(url).context("--proxy")?;
            proxy.set_no_proxy(NoProxy::from_env());
            builder.proxy(proxy);
        }
        Ok(())
    }
}

fn parse_roots(which: &str) -> Result<Roots, String> {
    match which {
        "system" => Ok(Roots::System),
        "mozilla" => Ok(Roots::Mozilla),
        other => Err(format!("{other:?}: expected 'system' or 'mozilla'")),
    }
}
