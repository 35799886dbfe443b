//! A client behind a proxy: sends one text message and prints the answer.
//!
//! ```text
//! cargo run --example proxy_client -- ws://HOST:PORT/ [PROXY_URL]
//! ```
//!
//! With a `PROXY_URL` (`http://user:pass@proxy:3128`, `socks5h://127.0.0.1:1080`) the
//! connection goes through it; without one, through the proxy the environment names as curl
//! reads it (`https_proxy` for wss://, `http_proxy` for ws://, `ALL_PROXY`, `NO_PROXY`), or
//! directly when there is none. `wss://` trusts the operating system's certificate store.

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use tether::{ClientBuilder, CloseCode, Message, NoProxy, Proxy, StreamExt as _};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: proxy_client ws://HOST:PORT/ [PROXY_URL]");
        std::process::exit(2);
    };
    let mut builder = ClientBuilder::new();
    if let Some(proxy_url) = args.next() {
        let mut proxy = Proxy::parse(&proxy_url)?;
        // As curl does with --proxy: NO_PROXY still sends the servers it lists around it.
        proxy.set_no_proxy(NoProxy::from_env());
        println!("through {proxy}");
        builder.proxy(proxy);
    }
    let mut ws = match builder.connect(&url).await {
        Ok(ws) => ws,
        // A refused tunnel says why: 407 for credentials, 403 for the proxy's rules...
        Err(tether::Error::Proxy(err)) if err.is_auth() => {
            eprintln!("the proxy wants other credentials: {err}");
            std::process::exit(1);
        }
        Err(err) => return Err(err.into()),
    };
    ws.send(Message::text("hello through the proxy")).await?;
    if let Some(answer) = ws.next().await {
        println!("received {:?}", answer?);
    }
    ws.close(CloseCode::NORMAL, "").await?;
    Ok(())
}
