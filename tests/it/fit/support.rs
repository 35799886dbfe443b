//! The services under test (an axum router and a bare hyper server, each with WebSocket routes
//! and a plain HTTP route) and a raw HTTP/1.1 client that sends exactly the bytes a test wants.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Extension, Path};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tether::axum::WebSocketUpgrade;
use tether::deflate::DeflateConfig;
use tether::heartbeat::{KeepaliveConfig, LinkState, SupervisorConfig};
use tether::hyper::{upgrade, HyperWebSocket};
use tether::{Accept, Config, Message, PingProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::facade::support::echo;

/// Every wait on a socket or an event is bounded.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// The keepalive of the `/beat` routes: a probe every 100 ms, dead after a 100 ms silence.
pub(crate) fn beat_config() -> SupervisorConfig {
    let mut config = SupervisorConfig::default();
    let keepalive = KeepaliveConfig::with_interval(
        Duration::from_millis(100),
        Some(Duration::from_millis(100)),
    );
    config.set_keepalive(Some(keepalive));
    config
}

/// A value the router adds to every request's extensions, for the `/who` route to show.
#[derive(Clone)]
pub(crate) struct Tag(pub(crate) &'static str);

/// A service on loopback; its task ends when dropped. `beats` receives the final state of
/// every `/beat` connection's supervisor.
pub(crate) struct Service {
    pub(crate) addr: SocketAddr,
    pub(crate) beats: mpsc::UnboundedReceiver<LinkState>,
    task: JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

/// Supervises `ws` with [`beat_config`] and reports how its supervisor ended.
async fn beat(ws: HyperWebSocket, beats: mpsc::UnboundedSender<LinkState>) {
    let supervisor = ws
        .supervise(&beat_config(), PingProbe::new())
        .expect("a valid supervisor config");
    let mut state = supervisor.state();
    let closed = state
        .wait_for(|s| matches!(s, LinkState::Closed(_)))
        .await
        .map(|s| s.clone());
    if let Ok(closed) = closed {
        let _ = beats.send(closed);
    }
}

/// The axum router: `/ws` echoes (subprotocol `chat` when offered), `/who/{room}` tells
/// what the handler saw of the request, `/limited` echoes with the extractor's own limit
/// (1 KiB) and deflate, `/private` echoes for one origin, `/beat` supervises, `/health` is plain HTTP.
/// `config` reaches the extractor through the request extensions.
pub(crate) async fn axum_service(config: Config) -> Service {
    let (report, beats) = mpsc::unbounded_channel();
    let app =
        Router::new()
            .route(
                "/ws",
                get(|ws: WebSocketUpgrade| async move { ws.protocols(["chat"]).on_upgrade(echo) }),
            )
            .route("/who/{room}", get(who))
            .route(
                "/limited",
                get(|ws: WebSocketUpgrade| async move {
                    ws.max_message_size(1024)
                        .deflate(Some(DeflateConfig::default()))
                        .on_upgrade(echo)
                }),
            )
            .route(
                "/private",
                get(|ws: WebSocketUpgrade| async move {
                    ws.allow_origins(["http://app.test"]).on_upgrade(echo)
                }),
            )
            .route(
                "/beat",
                get(move |ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(move |ws| beat(ws, report))
                }),
            )
            .route("/health", get(|| async { "ok" }))
            .layer(Extension(config))
            .layer(Extension(Tag("from-the-router")));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Service { addr, beats, task }
}

/// Path, header and extension, as the handler sees them next to the extractor.
async fn who(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    headers: HeaderMap,
    Extension(Tag(tag)): Extension<Tag>,
) -> Response {
    let user = headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let query = ws
        .request()
        .request()
        .uri()
        .query()
        .unwrap_or("")
        .to_owned();
    ws.on_upgrade(move |mut ws| async move {
        let text = format!("room={room} user={user} tag={tag} query={query}");
        let _ = ws.send(Message::text(text)).await;
        let _ = ws.close(tether::CloseCode::NORMAL, "").await;
    })
}

/// The bare hyper server: `/ws` echoes (subprotocol `chat` when offered), `/beat`
/// supervises, anything else answers `ok` as plain HTTP.
pub(crate) async fn hyper_service(config: Config) -> Service {
    let (report, beats) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = config.clone();
            let report = report.clone();
            let service = service_fn(move |request| {
                let response = route(request, &config, &report);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                let _ = connection.await;
            });
        }
    });
    Service { addr, beats, task }
}

fn route(
    mut request: hyper::Request<Incoming>,
    config: &Config,
    report: &mpsc::UnboundedSender<LinkState>,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path != "/ws" && path != "/beat" {
        return hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
    }
    let decide = |r: &tether::UpgradeRequest| {
        Ok(match r.subprotocols().iter().any(|p| p == "chat") {
            true => Accept::new().with_subprotocol("chat"),
            false => Accept::new(),
        })
    };
    let (response, upgrading) = match upgrade(&mut request, config, decide) {
        Ok(accepted) => accepted,
        Err(rejected) => return rejected.into_response(),
    };
    let report = report.clone();
    tokio::spawn(async move {
        let Ok(ws) = upgrading.websocket().await else {
            return;
        };
        match path.as_str() {
            "/ws" => echo(ws).await,
            _ => beat(ws, report).await,
        }
    });
    response
}

/// A response as the raw client read it.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// Header fields, names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A valid Upgrade request for `path` with the line starting `drop` left out and `extra`
/// lines added (each ending in CRLF).
pub(crate) fn upgrade_request(method: &str, path: &str, drop: &str, extra: &str) -> String {
    let lines = [
        "host: 127.0.0.1\r\n",
        "upgrade: websocket\r\n",
        "connection: Upgrade\r\n",
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "sec-websocket-version: 13\r\n",
    ];
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines {
        if drop.is_empty() || !line.starts_with(drop) {
            request.push_str(line);
        }
    }
    request.push_str(extra);
    request.push_str("\r\n");
    request
}

/// Sends `request` on a fresh connection and reads the response head, and its body when
/// it has a `Content-Length`. Returns the stream too, positioned after the response.
pub(crate) async fn send_raw(addr: SocketAddr, request: &str) -> (RawResponse, TcpStream) {
    tokio::time::timeout(LIMIT, async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let head = read_head(&mut tcp).await;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse::<usize>().expect("a length"));
        let mut body = vec![0; length];
        tcp.read_exact(&mut body).await.expect("the body");
        let response = RawResponse {
            status,
            headers,
            body,
        };
        (response, tcp)
    })
    .await
    .expect("a response within the limit")
}

/// Reads byte by byte up to the blank line, so nothing after the head is consumed.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 64 << 10, "a response head that does not end");
        head.push(tcp.read_u8().await.expect("the response head"));
    }
    String::from_utf8(head).expect("an ascii head")
}
