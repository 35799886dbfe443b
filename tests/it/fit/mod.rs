//! Tether inside an axum router and a bare hyper server (features `axum`, `hyper`), over
//! loopback sockets: real clients (Tether's, Python `websockets`, Node `ws`) echo, the plain
//! HTTP route keeps answering, deflate is negotiated as configured, the handler sees the
//! request, sessions are served through an axum route. Bad upgrade requests, limits and the
//! heartbeat are in `attack::fit`.

mod echo;
mod misuse;
mod session;
pub(crate) mod support;

use tether::Config;

use support::{axum_service, hyper_service, Service};

/// Which integration serves the test.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Host {
    Axum,
    Hyper,
}

impl Host {
    pub(crate) async fn start(self, config: Config) -> Service {
        match self {
            Host::Axum => axum_service(config).await,
            Host::Hyper => hyper_service(config).await,
        }
    }
}
