//! An echo server on bare hyper 1.x: `/ws` upgrades to a Tether WebSocket, every other path
//! is plain HTTP.
//!
//! ```text
//! cargo run --example hyper_echo           # listens on 127.0.0.1:3001
//! cargo run -p tether-cli -- connect ws://127.0.0.1:3001/ws
//! curl -i http://127.0.0.1:3001/ws         # 426 Upgrade Required: not a WebSocket request
//! ```
#![allow(clippy::print_stdout)]

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tether::deflate::DeflateConfig;
use tether::hyper::upgrade;
use tether::{Accept, Bytes, Config, StreamExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Limits, timeouts and permessage-deflate for every WebSocket, as with `tether::Server`.
    let mut config = Config::default();
    config
        .set_max_message_size(1 << 20)
        .set_deflate(Some(DeflateConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("echo on ws://{}/ws", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let config = config.clone();
        let service = service_fn(move |request| {
            let response = handle(request, &config);
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            // `with_upgrades`: without it hyper never hands the connection over.
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
}

fn handle(mut request: Request<Incoming>, config: &Config) -> Response<Full<Bytes>> {
    if request.uri().path() != "/ws" {
        return Response::new(Full::new(Bytes::from_static(b"hello from hyper\n")));
    }
    // Validate with Tether's rules, decide (here: accept anything), answer 101.
    let (response, upgrading) = match upgrade(&mut request, config, |_| Ok(Accept::new())) {
        Ok(accepted) => accepted,
        Err(rejected) => return rejected.into_response(), // 400, 426, 431, ...
    };
    // The connection is handed over after hyper has written the 101.
    tokio::spawn(async move {
        let Ok(ws) = upgrading.websocket().await else {
            return;
        };
        let (reader, mut writer) = ws.split();
        let echoed = reader.filter_map(|m| async move {
            match m {
                Ok(m) if m.is_data() => Some(Ok(m)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        });
        let _ = echoed.forward(&mut writer).await;
    });
    response
}
