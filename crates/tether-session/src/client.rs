//! The client's side of the session handshake on each connection, around its [`Endpoint`]
//! (docs/sessions.md §4).

use crate::control::{classify, Control, Incoming};
use crate::endpoint::Endpoint;
use crate::error::{Origin, ProtocolError, SessionLost};
use crate::id::SessionId;

/// Where the client is with the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientPhase {
    /// No connection carries the session.
    Detached,
    /// `new` or `resume` went out; waiting for `session` or `lost`.
    ExpectSession,
    /// The session runs on this connection.
    Attached,
}

/// The server's answer, accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// The session.
    pub id: SessionId,
    /// Whether an existing session continued (`resume`) rather than a new one started.
    pub resumed: bool,
    /// The client's data messages the server had received.
    pub peer_received: u64,
}

/// A client session: the id once the server gave one, the endpoint, the handshake phase.
///
/// ```
/// use std::time::Instant;
/// use tether_session::{Client, Control, EndpointConfig, SessionId};
///
/// let mut client = Client::<Vec<u8>>::new(EndpointConfig::default()).unwrap();
/// assert_eq!(client.hello(), Control::New);
/// let id = SessionId::from_bytes([9; 16]);
/// let answer = Control::Session { id, received: 0 }.encode();
/// let attached = client.handle_answer(true, answer.as_bytes()).unwrap();
/// assert!(!attached.resumed);
/// client.link_lost();
/// assert_eq!(client.hello(), Control::Resume { id, received: 0 });
/// ```
#[derive(Debug, Clone)]
pub struct Client<M> {
    id: Option<SessionId>,
    endpoint: Endpoint<M>,
    phase: ClientPhase,
}

impl<M> Client<M> {
    /// A client with no session yet.
    ///
    /// # Errors
    ///
    /// An invalid `config`.
    pub fn new(config: crate::EndpointConfig) -> Result<Self, crate::Error> {
        Ok(Client {
            id: None,
            endpoint: Endpoint::new(config)?,
            phase: ClientPhase::Detached,
        })
    }

    /// The first message for a new connection: `new`, or `resume` once a session exists.
    pub fn hello(&mut self) -> Control {
        self.endpoint.detach();
        self.phase = ClientPhase::ExpectSession;
        match self.id {
            None => Control::New,
            Some(id) => Control::Resume {
                id,
                received: self.endpoint.received(),
            },
        }
    }

    /// Takes the server's first message on the connection.
    ///
    /// # Errors
    ///
    /// The session is lost: `\0lost <reason>` from the server, or a protocol error (data
    /// first, another verb, another id, an impossible count).
    pub fn handle_answer(&mut self, text: bool, payload: &[u8]) -> Result<Attached, SessionLost> {
        if let Some(lost) = self.endpoint.lost() {
            return Err(lost.clone());
        }
        let control = match classify(text, payload) {
            Ok(Incoming::Control(control)) if self.phase == ClientPhase::ExpectSession => control,
            Ok(Incoming::Data { .. }) => {
                return Err(self.protocol(ProtocolError::DataBeforeHandshake))
            }
            Ok(Incoming::Control(control)) => {
                return Err(self.protocol(ProtocolError::Unexpected {
                    verb: control.verb(),
                    when: "without a pending new or resume",
                }))
            }
            Err(error) => return Err(self.protocol(error)),
        };
        match control {
            Control::Session { id, received } => {
                if self.id.is_some_and(|mine| mine != id) {
                    return Err(self.protocol(ProtocolError::IdMismatch));
                }
                let resumed = self.id.is_some();
                self.endpoint.attach(received)?;
                self.id = Some(id);
                self.phase = ClientPhase::Attached;
                Ok(Attached {
                    id,
                    resumed,
                    peer_received: received,
                })
            }
            Control::Lost(reason) => Err(self.endpoint_lost(reason)),
            other => Err(self.protocol(ProtocolError::Unexpected {
                verb: other.verb(),
                when: "as the answer to new or resume",
            })),
        }
    }

    /// The connection ended (cut, closed, dead): the next one resumes.
    pub fn link_lost(&mut self) {
        self.endpoint.detach();
        self.phase = ClientPhase::Detached;
    }

    /// The session id, once the server gave one.
    pub fn id(&self) -> Option<SessionId> {
        self.id
    }

    /// The handshake phase.
    pub fn phase(&self) -> ClientPhase {
        self.phase
    }

    /// The session side (counts, replay, acks).
    pub fn endpoint(&self) -> &Endpoint<M> {
        &self.endpoint
    }

    /// The session side, to push, handle and transmit.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint<M> {
        &mut self.endpoint
    }

    fn protocol(&mut self, error: ProtocolError) -> SessionLost {
        self.endpoint.protocol(error)
    }

    fn endpoint_lost(&mut self, reason: crate::LostReason) -> SessionLost {
        self.endpoint.lose(reason, Origin::Peer, None)
    }
}

/// A client's first message on a connection, as the server reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hello {
    /// `\0new`.
    New,
    /// `\0resume <id> <received>`.
    Resume {
        /// The session.
        id: SessionId,
        /// The server's data messages the client has received.
        received: u64,
    },
}

/// Reads a client's first message on a connection (the server side of docs/sessions.md §4).
///
/// ```
/// use tether_session::{parse_hello, Hello};
///
/// assert_eq!(parse_hello(true, b"\0new"), Ok(Hello::New));
/// assert!(parse_hello(true, b"hello").is_err());
/// assert!(parse_hello(true, b"\0ack 0").is_err());
/// ```
///
/// # Errors
///
/// Anything but `new` or `resume` first.
pub fn parse_hello(text: bool, payload: &[u8]) -> Result<Hello, ProtocolError> {
    match classify(text, payload)? {
        Incoming::Data { .. } => Err(ProtocolError::DataBeforeHandshake),
        Incoming::Control(Control::New) => Ok(Hello::New),
        Incoming::Control(Control::Resume { id, received }) => Ok(Hello::Resume { id, received }),
        Incoming::Control(other) => Err(ProtocolError::Unexpected {
            verb: other.verb(),
            when: "as a client's first message",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EndpointConfig, LostReason};

    fn client() -> Client<&'static str> {
        Client::new(EndpointConfig::default()).unwrap()
    }

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    /// The server's `session <id> <received>` answer.
    fn session(n: u8, received: u64) -> Control {
        Control::Session {
            id: id(n),
            received,
        }
    }

    fn answer(c: &mut Client<&'static str>, control: Control) -> Result<Attached, SessionLost> {
        c.handle_answer(true, control.encode().as_bytes())
    }

    #[test]
    fn new_then_resume_with_the_same_id() {
        let mut c = client();
        assert_eq!(c.hello(), Control::New);
        assert_eq!(c.phase(), ClientPhase::ExpectSession);
        let a = answer(&mut c, session(1, 0)).unwrap();
        assert_eq!(
            (a.id, a.resumed, c.phase()),
            (id(1), false, ClientPhase::Attached)
        );
        c.link_lost();
        assert_eq!(
            c.hello(),
            Control::Resume {
                id: id(1),
                received: 0
            }
        );
        let a = answer(&mut c, session(1, 0)).unwrap();
        assert!(a.resumed);
    }

    #[test]
    fn lost_answers_carry_the_reason_from_the_peer() {
        for reason in LostReason::ALL {
            let mut c = client();
            c.hello();
            let lost = answer(&mut c, Control::Lost(reason)).unwrap_err();
            assert_eq!((lost.reason, lost.origin), (reason, Origin::Peer));
            // The session is over: no further answer revives it.
            assert!(answer(&mut c, session(1, 0)).is_err());
        }
    }

    #[test]
    fn another_id_data_first_or_another_verb_are_protocol_errors() {
        let mut c = client();
        c.hello();
        answer(&mut c, session(1, 0)).unwrap();
        c.link_lost();
        c.hello();
        let lost = answer(&mut c, session(2, 0)).unwrap_err();
        assert_eq!(lost.detail, Some(ProtocolError::IdMismatch));

        let mut c = client();
        c.hello();
        let lost = c.handle_answer(true, b"data").unwrap_err();
        assert_eq!(lost.detail, Some(ProtocolError::DataBeforeHandshake));

        let mut c = client();
        c.hello();
        let lost = answer(&mut c, Control::Ack(0)).unwrap_err();
        assert!(matches!(
            lost.detail,
            Some(ProtocolError::Unexpected { .. })
        ));
    }

    #[test]
    fn a_session_answer_claiming_unsent_messages_is_a_protocol_error() {
        let mut c = client();
        c.hello();
        let lost = answer(&mut c, session(1, 3)).unwrap_err();
        assert_eq!(
            lost.detail,
            Some(ProtocolError::AckAboveSent {
                acked: 3,
                written: 0
            })
        );
    }
}
