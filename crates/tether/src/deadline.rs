//! Time limits on the steps of opening a connection (TCP connect, TLS, Upgrade), shared by
//! the client and the server.

use std::time::Duration;

use crate::error::Error;

/// Runs `work` within `limit` (if any), mapping the timeout to `on_timeout(limit)`.
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = T>,
    on_timeout: impl FnOnce(Duration) -> Error,
) -> Result<T, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| on_timeout(limit)),
        None => Ok(work.await),
    }
}
