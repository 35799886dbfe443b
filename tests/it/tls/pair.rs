//! A client and a server connected in memory, flight by flight, with a hook on the wire.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tether_teaching_tls::{ClientConfig, Connection, Error, ServerConfig};

/// Which way a flight travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    ToServer,
    ToClient,
}

/// What the hook saw: the result of each side.
pub(crate) struct Outcome {
    pub(crate) client: Connection,
    pub(crate) server: Connection,
    pub(crate) client_error: Option<Error>,
    pub(crate) server_error: Option<Error>,
    /// Every byte that went to the server, then to the client (after the hook).
    pub(crate) to_server: Vec<u8>,
    pub(crate) to_client: Vec<u8>,
}

/// Runs a handshake for `name`; `hook` may rewrite each flight before delivery.
pub(crate) fn run(
    client: ClientConfig,
    server: ServerConfig,
    name: &str,
    mut hook: impl FnMut(Way, &mut Vec<u8>),
) -> Outcome {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c =
        Connection::client(Arc::new(client), name, rustls_pki_types::UnixTime::now()).unwrap();
    let mut s = Connection::server(Arc::new(server));
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let (mut ce, mut se) = (None, None);
    for _ in 0..16 {
        let mut a = c.take_outgoing();
        let mut b = s.take_outgoing();
        if a.is_empty() && b.is_empty() {
            break;
        }
        if !a.is_empty() && se.is_none() {
            hook(Way::ToServer, &mut a);
            to_server.extend_from_slice(&a);
            se = s.receive(&a).err();
        }
        if !b.is_empty() && ce.is_none() {
            hook(Way::ToClient, &mut b);
            to_client.extend_from_slice(&b);
            ce = c.receive(&b).err();
        }
    }
    Outcome {
        client: c,
        server: s,
        client_error: ce,
        server_error: se,
        to_server,
        to_client,
    }
}

/// Moves application data from one side to the other; returns what arrived.
pub(crate) fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let bytes = from.take_outgoing();
    to.receive(&bytes).unwrap();
    let mut out = vec![0u8; to.plaintext_len()];
    let n = to.read_plaintext(&mut out);
    out.truncate(n);
    out
}
