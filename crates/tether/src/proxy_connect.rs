//! Opening a TCP connection to a server through a [`Proxy`].

use tokio::net::TcpStream;

use crate::proxy::{Proxy, ProxyKind};
use crate::proxy_error::ProxyError;

/// Connects to the proxy and asks it for a tunnel to `host:port`; the stream it gives back
/// carries the server's bytes. The caller bounds the time.
pub(crate) async fn through(proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    let mut tcp = TcpStream::connect((proxy.host(), proxy.port())).await?;
    tcp.set_nodelay(true)?;
    match proxy.kind() {
        ProxyKind::Http => {
            crate::http_connect::tunnel(&mut tcp, host, port, proxy.credentials()).await?;
            Ok(tcp)
        }
        ProxyKind::Socks5 | ProxyKind::Socks5h => {
            crate::socks::tunnel(tcp, proxy, host, port).await
        }
    }
}
