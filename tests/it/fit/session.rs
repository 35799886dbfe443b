//! Sessions inside an axum router: the route selects `tether.session.v1` with the extractor
//! and hands the upgraded connection to `Sessions::attach`, the same as `tether::Server`.

use axum::routing::get;
use axum::Router;
use tether::axum::WebSocketUpgrade;
use tether::session::{EndpointConfig, SessionServerConfig, Sessions, SUBPROTOCOL};
use tether::{ClientBuilder, Message};
use tokio::net::TcpListener;

use super::support::LIMIT;

#[tokio::test]
async fn an_axum_route_serves_sessions_and_the_facade_client_finishes_one() {
    let sessions = Sessions::new(SessionServerConfig::default(), |mut session| async move {
        while let Some(Ok(message)) = session.recv().await {
            if session.send(message).await.is_err() {
                return;
            }
        }
        session.end();
    })
    .expect("sessions");
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

    let mut session = ClientBuilder::new()
        .session(&url, &Default::default(), EndpointConfig::default())
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
    server.abort();
}
