//! Sessions inside the services users already run: an axum route selects `tether.session.v1`
//! with the extractor, a bare hyper service with `tether::hyper::upgrade` and
//! `session::select`; both hand the upgraded connection to `Sessions::attach`, the same as
//! `tether::Server`, and the facade's client finishes a session through each.

use std::convert::Infallible;

use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tether::axum::WebSocketUpgrade;
use tether::session::{select, EndpointConfig, SessionServerConfig, Sessions, SUBPROTOCOL};
use tether::{ClientBuilder, Config, Message};
use tokio::net::TcpListener;

use super::support::LIMIT;

/// Sessions whose handler echoes every message, then ends.
fn echo_sessions() -> Sessions {
    Sessions::new(SessionServerConfig::default(), |mut session| async move {
        while let Some(Ok(message)) = session.recv().await {
            if session.send(message).await.is_err() {
                return;
            }
        }
        session.end();
    })
    .expect("sessions")
}

/// A client session to `url`: 50 messages, its end, then every echo and the server's end.
async fn fifty_echoed_and_finished(url: &str) {
    let mut session = ClientBuilder::new()
        .session(url, &Default::default(), EndpointConfig::default())
        .expect("session");
    for i in 0..50 {
        session
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    session.end().await.expect("end");
    let mut echoed = Vec::new();
    while let Some(message) = tokio::time::timeout(LIMIT, session.recv())
        .await
        .expect("within the bound")
    {
        echoed.push(message.expect("not lost"));
    }
    let sent: Vec<Message> = (0..50).map(|i| Message::text(format!("m{i}"))).collect();
    assert_eq!(echoed, sent);
    assert!(session.is_finished());
}

#[tokio::test]
async fn an_axum_route_serves_sessions_and_the_facade_client_finishes_one() {
    let sessions = echo_sessions();
    let app = Router::new().route(
        "/session",
        get(move |ws: WebSocketUpgrade| {
            let sessions = sessions.clone();
            async move {
                ws.protocols([SUBPROTOCOL])
                    .on_upgrade(move |ws| sessions.attach(ws))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/session", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    fifty_echoed_and_finished(&url).await;
    server.abort();
}

#[tokio::test]
async fn a_bare_hyper_service_serves_sessions_and_the_facade_client_finishes_one() {
    let sessions = echo_sessions();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sessions = sessions.clone();
            let service = service_fn(move |mut request| {
                let sessions = sessions.clone();
                let response = match tether::hyper::upgrade(&mut request, &Config::default(), |r| {
                    Ok(select(r))
                }) {
                    Ok((response, upgrading)) => {
                        tokio::spawn(async move {
                            if let Ok(ws) = upgrading.websocket().await {
                                sessions.attach(ws).await;
                            }
                        });
                        response
                    }
                    Err(rejected) => rejected.into_response(),
                };
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    fifty_echoed_and_finished(&url).await;
    server.abort();
}
