//! SOCKS5 (RFC 1928) with username/password (RFC 1929), through tokio-socks.
//!
//! tokio-socks reads fixed-size replies (an address at most 255 bytes long), so the proxy
//! cannot make it buffer more; the caller bounds the time.

use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;

use crate::proxy::{Proxy, ProxyKind};
use crate::proxy_error::ProxyError;

/// Opens a SOCKS5 `CONNECT` to `host:port` over `tcp`, already connected to `proxy`, and
/// gives the stream back once the proxy relays it. `socks5://` sends the address resolved
/// here, `socks5h://` the name.
pub(crate) async fn tunnel(
    tcp: TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<TcpStream, ProxyError> {
    let target = match proxy.kind() {
        ProxyKind::Socks5 => {
            let addr = tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(|| {
                    ProxyError::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    ))
                })?;
            tokio_socks::TargetAddr::Ip(addr)
        }
        _ => tokio_socks::TargetAddr::Domain(host.into(), port),
    };
    let stream = match proxy.credentials() {
        Some((user, password)) => {
            Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await?
        }
        None => Socks5Stream::connect_with_socket(tcp, target).await?,
    };
    Ok(stream.into_inner())
}
