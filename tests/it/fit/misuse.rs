//! A hyper connection served without `with_upgrades()` cannot hand its IO over: the upgrade
//! fails with an error instead of leaving the task waiting forever.

use std::convert::Infallible;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tether::hyper::upgrade;
use tether::{Accept, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::support::{send_raw, upgrade_request, LIMIT};

#[tokio::test]
async fn hyper_without_with_upgrades_fails_the_upgrade_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (report, outcome) = oneshot::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let report = std::sync::Mutex::new(Some(report));
        let service = service_fn(move |mut request| {
            let (response, upgrading) =
                upgrade(&mut request, &Config::default(), |_| Ok(Accept::new()))
                    .expect("a valid upgrade");
            let report = report.lock().unwrap().take().expect("one request");
            tokio::spawn(async move {
                let _ = report.send(upgrading.websocket().await.map(|_| ()));
            });
            async move { Ok::<_, Infallible>(response) }
        });
        // No `.with_upgrades()`.
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .await;
    });
    let (response, _tcp) = send_raw(addr, &upgrade_request("GET", "/", "", "")).await;
    assert_eq!(response.status, 101);
    let result = tokio::time::timeout(LIMIT, outcome)
        .await
        .expect("the upgrade ends within the limit")
        .expect("a result");
    assert!(matches!(result, Err(tether::Error::Io(_))), "{result:?}");
    server.abort();
}
