//! One side of an attached session: counts, the replay buffer, acknowledgements, `end`.
//! The same for client and server once the session handshake is done.

use std::time::Instant;

use crate::ack::AckClock;
use crate::config::EndpointConfig;
use crate::control::{classify, Control, Incoming, MAX_COUNT};
use crate::error::{Error, Origin, ProtocolError, SessionLost};
use crate::reason::LostReason;
use crate::replay::ReplayBuffer;

/// What to write next on the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Transmit<'a, M> {
    /// A control message (write [`Control::encode`] as a text message).
    Control(Control),
    /// A data message: write it, stuffed if it starts with `0x00`.
    Data {
        /// Its number on the session.
        number: u64,
        /// The message, still held by the replay buffer.
        message: &'a M,
    },
}

/// One side of a session, sans-IO: time comes in as `now`, messages as bytes, and what to
/// write comes out of [`poll_transmit`](Self::poll_transmit).
///
/// Call order on a connection:
/// 1. handshake: [`attach`](Self::attach) with the count the peer reported;
/// 2. for every message received, [`handle`](Self::handle); data goes to the application;
/// 3. write what [`poll_transmit`](Self::poll_transmit) gives until `None`; wake up at
///    [`poll_timeout`](Self::poll_timeout) and poll again;
/// 4. when the connection ends, [`detach`](Self::detach). The session lives on.
///
/// Commands: [`push`](Self::push) a data message (numbered, kept until acknowledged),
/// [`finish`](Self::finish) to send `end`.
///
/// ```
/// use std::time::Instant;
/// use tether_session::{Control, Endpoint, EndpointConfig, Incoming, Transmit};
///
/// let now = Instant::now();
/// let mut a = Endpoint::new(EndpointConfig::default()).unwrap();
/// let mut b = Endpoint::<Vec<u8>>::new(EndpointConfig::default()).unwrap();
/// a.attach(0).unwrap();
/// b.attach(0).unwrap();
/// a.push(b"hello".to_vec(), 5).unwrap();
/// let Some(Transmit::Data { number: 1, message }) = a.poll_transmit(now) else { panic!() };
/// assert_eq!(b.handle(now, true, message), Ok(Incoming::Data { skip: 0 }));
/// a.finish();
/// let Some(Transmit::Control(end)) = a.poll_transmit(now) else { panic!() };
/// assert_eq!(end, Control::End(0));
/// b.handle(now, true, end.encode().as_bytes()).unwrap();
/// // b acknowledges at once after the peer's end.
/// assert_eq!(b.poll_transmit(now), Some(Transmit::Control(Control::Ack(1))));
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint<M> {
    replay: ReplayBuffer<M>,
    acks: AckClock,
    /// The highest number handed to any connection: the peer cannot have more.
    written: u64,
    /// The next number to write on this connection.
    next_write: u64,
    end_requested: bool,
    end_written: bool,
    /// The received count when the peer's `end` arrived.
    peer_end: Option<u64>,
    pong: Option<u64>,
    attached: bool,
    lost: Option<SessionLost>,
}

impl<M> Endpoint<M> {
    /// A session side with nothing sent or received.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] from [`EndpointConfig::validate`].
    pub fn new(config: EndpointConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Endpoint {
            replay: ReplayBuffer::new(config.max_replay_messages(), config.max_replay_bytes()),
            acks: AckClock::new(config.ack_every(), config.ack_bytes(), config.ack_delay()),
            written: 0,
            next_write: 1,
            end_requested: false,
            end_written: false,
            peer_end: None,
            pong: None,
            attached: false,
            lost: None,
        })
    }

    /// A connection carries the session again; the peer has `peer_received` of our
    /// messages. What it lacks is written again, in order, before anything new
    /// (docs/sessions.md §4.1). The handshake message carried our count, so nothing is
    /// left to acknowledge.
    ///
    /// # Errors
    ///
    /// The session is lost (protocol) if `peer_received` is below what the peer already
    /// acknowledged or above what was sent to it.
    pub fn attach(&mut self, peer_received: u64) -> Result<(), SessionLost> {
        self.check_open()?;
        self.acknowledge(peer_received)?;
        self.next_write = peer_received + 1;
        self.attached = true;
        self.end_written = false;
        self.pong = None;
        self.acks.reported();
        Ok(())
    }

    /// The connection is gone. The session keeps its counts and replay buffer.
    pub fn detach(&mut self) {
        self.attached = false;
        self.pong = None;
    }

    /// Whether a message of `len` bytes fits the replay buffer now, counting `queued`
    /// messages of `queued_bytes` accepted elsewhere and not pushed yet.
    ///
    /// # Errors
    ///
    /// [`Error::Full`], [`Error::MessageTooLarge`], [`Error::Lost`], [`Error::Ended`].
    pub fn check_room(&self, queued: usize, queued_bytes: usize, len: usize) -> Result<(), Error> {
        self.check_open()?;
        if self.end_requested {
            return Err(Error::Ended);
        }
        self.replay.check_room(queued, queued_bytes, len)
    }

    /// Numbers `message` and keeps it until the peer acknowledges it; it goes out through
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    ///
    /// As [`check_room`](Self::check_room); a session that reached 2^53 − 1 messages is lost
    /// with [`LostReason::Limit`].
    pub fn push(&mut self, message: M, len: usize) -> Result<u64, Error> {
        self.check_room(0, 0, len)?;
        if self.replay.sent() >= MAX_COUNT {
            return Err(self.lose(LostReason::Limit, Origin::Local, None).into());
        }
        self.replay.push(message, len)
    }

    /// After what was pushed, send `end`: this side sends no more data.
    pub fn finish(&mut self) {
        self.end_requested = true;
    }

    /// Takes in one received message (`text`: a text message). Data is counted; control
    /// messages update the session.
    ///
    /// # Errors
    ///
    /// The session is lost: the peer sent `\0lost`, or broke the protocol (then
    /// [`SessionLost::origin`] is [`Origin::Local`]: send `\0lost protocol` and close 1002).
    pub fn handle(
        &mut self,
        now: Instant,
        text: bool,
        payload: &[u8],
    ) -> Result<Incoming, SessionLost> {
        self.check_open()?;
        let incoming = classify(text, payload).map_err(|e| self.protocol(e))?;
        match incoming {
            Incoming::Data { .. } => {
                if self.peer_end.is_some() {
                    return Err(self.protocol(ProtocolError::DataAfterEnd));
                }
                if self.acks.received() >= MAX_COUNT {
                    return Err(self.lose(LostReason::Limit, Origin::Local, None));
                }
                self.acks.on_data(now, payload.len());
            }
            Incoming::Control(control) => self.apply(control)?,
        }
        Ok(incoming)
    }

    /// Acts on a control message the caller parsed already, or one it stands for: a server
    /// that hands the peer's `end` to its application in order with the data applies the
    /// count the `end` carries when it arrives (as an `ack`), and the `end` itself when the
    /// application takes it.
    ///
    /// ```
    /// use std::time::Instant;
    /// use tether_session::{Control, Endpoint, EndpointConfig};
    ///
    /// let mut e = Endpoint::<Vec<u8>>::new(EndpointConfig::default()).unwrap();
    /// e.attach(0).unwrap();
    /// e.push(b"hello".to_vec(), 5).unwrap();
    /// assert!(e.poll_transmit(Instant::now()).is_some()); // written
    /// e.handle_control(Control::Ack(1)).unwrap();
    /// assert_eq!((e.acked(), e.peer_end()), (1, None));
    /// e.handle_control(Control::End(1)).unwrap();
    /// assert_eq!(e.peer_end(), Some(0));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`handle`](Self::handle).
    pub fn handle_control(&mut self, control: Control) -> Result<(), SessionLost> {
        self.check_open()?;
        self.apply(control)
    }

    fn apply(&mut self, control: Control) -> Result<(), SessionLost> {
        if let Some(received) = control.acknowledges() {
            self.acknowledge(received)?;
        }
        match control {
            Control::Lost(reason) => return Err(self.lose(reason, Origin::Peer, None)),
            Control::Ping { nonce, .. } => self.pong = Some(nonce),
            Control::End(_) => {
                if self.peer_end.is_none() {
                    self.peer_end = Some(self.acks.received());
                    self.acks.hurry();
                }
            }
            Control::Ack(_) | Control::Pong { .. } => {}
            other => {
                return Err(self.protocol(ProtocolError::Unexpected {
                    verb: other.verb(),
                    when: "after the session handshake",
                }))
            }
        }
        Ok(())
    }

    /// The connection closed with `code`: a code of docs/sessions.md §6 ends the session.
    pub fn closed_with(&mut self, code: u16) -> Option<SessionLost> {
        if let Some(lost) = &self.lost {
            return Some(lost.clone());
        }
        let reason = LostReason::from_close_code(code)?;
        Some(self.lose(reason, Origin::Peer, None))
    }

    /// The next message to write on the attached connection, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_, M>> {
        if !self.attached || self.lost.is_some() {
            return None;
        }
        if let Some(nonce) = self.pong.take() {
            let received = self.acks.reported();
            return Some(Transmit::Control(Control::Pong { nonce, received }));
        }
        if self.acks.due(now) {
            return Some(Transmit::Control(Control::Ack(self.acks.reported())));
        }
        if self.next_write <= self.replay.sent() {
            let number = self.next_write;
            self.next_write += 1;
            self.written = self.written.max(number);
            // Numbers from `acked + 1` to `sent` are held: `next_write` is above `acked`
            // (attach and acknowledge keep it so).
            let message = self.replay.get(number)?;
            return Some(Transmit::Data { number, message });
        }
        if self.end_requested && !self.end_written {
            self.end_written = true;
            return Some(Transmit::Control(Control::End(self.acks.reported())));
        }
        None
    }

    /// Whether all [`poll_transmit`](Self::poll_transmit) has to give now is an ack due by
    /// count or bytes (every `ack_every` messages): no pong, no data, no `end`, nothing
    /// the peer asked to hear at once. A writer may then leave it for its next write,
    /// which carries it; `poll_transmit` gives it as always.
    pub fn only_routine_ack(&self) -> bool {
        self.attached
            && self.lost.is_none()
            && self.pong.is_none()
            && self.acks.routine()
            && self.next_write > self.replay.sent()
            && (!self.end_requested || self.end_written)
    }

    /// When to call [`poll_transmit`](Self::poll_transmit) again though nothing arrived
    /// (an ack falls due).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.attached || self.lost.is_some() {
            return None;
        }
        self.acks.deadline()
    }

    /// Ends the session for a reason this side found (`replaced`, `expired`, ...): the
    /// outcome with this side's counts. Later calls give the first outcome.
    pub fn lose_locally(&mut self, reason: LostReason) -> SessionLost {
        self.lose(reason, Origin::Local, None)
    }

    /// Whether the session finished normally (docs/sessions.md §8): `end` sent and received,
    /// everything sent acknowledged, everything received reported. Close with 1000.
    pub fn is_finished(&self) -> bool {
        self.end_written
            && self.peer_end.is_some()
            && self.replay.is_empty()
            && self.acks.all_reported()
            && self.lost.is_none()
    }

    /// The outcome if the session was lost.
    pub fn lost(&self) -> Option<&SessionLost> {
        self.lost.as_ref()
    }

    /// Whether a connection carries the session now.
    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// Data messages numbered (sent or waiting to be written).
    pub fn sent(&self) -> u64 {
        self.replay.sent()
    }

    /// Data messages the peer acknowledged.
    pub fn acked(&self) -> u64 {
        self.replay.acked()
    }

    /// Data messages received.
    pub fn received(&self) -> u64 {
        self.acks.received()
    }

    /// The received count at which the peer's `end` arrived, if it did.
    pub fn peer_end(&self) -> Option<u64> {
        self.peer_end
    }

    /// Whether this side asked to send `end`.
    pub fn is_ending(&self) -> bool {
        self.end_requested
    }

    /// Messages held in the replay buffer.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// Bytes held in the replay buffer.
    pub fn replay_bytes(&self) -> usize {
        self.replay.bytes()
    }

    fn check_open(&self) -> Result<(), SessionLost> {
        match &self.lost {
            Some(lost) => Err(lost.clone()),
            None => Ok(()),
        }
    }

    /// docs/sessions.md §3: "`<received>` greater than the number of data messages we
    /// have sent on the session is a protocol error; so is a count lower than one the peer
    /// reported before."
    fn acknowledge(&mut self, received: u64) -> Result<(), SessionLost> {
        let before = self.replay.acked();
        if received < before {
            return Err(self.protocol(ProtocolError::AckWentBack {
                acked: received,
                before,
            }));
        }
        if received > self.written {
            return Err(self.protocol(ProtocolError::AckAboveSent {
                acked: received,
                written: self.written,
            }));
        }
        self.replay.acknowledge(received);
        Ok(())
    }

    pub(crate) fn protocol(&mut self, error: ProtocolError) -> SessionLost {
        self.lose(LostReason::Protocol, Origin::Local, Some(error))
    }

    pub(crate) fn lose(
        &mut self,
        reason: LostReason,
        origin: Origin,
        detail: Option<ProtocolError>,
    ) -> SessionLost {
        let outcome = SessionLost {
            reason,
            origin,
            sent: self.replay.sent(),
            unacked: self.replay.sent() - self.replay.acked(),
            received: self.acks.received(),
            detail,
        };
        self.lost.get_or_insert(outcome).clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Origin;

    fn attached() -> Endpoint<&'static str> {
        let mut e = Endpoint::new(EndpointConfig::default()).unwrap();
        e.attach(0).unwrap();
        e
    }

    fn control(
        e: &mut Endpoint<&'static str>,
        now: Instant,
        c: Control,
    ) -> Result<Incoming, SessionLost> {
        e.handle(now, true, c.encode().as_bytes())
    }

    fn drain(e: &mut Endpoint<&'static str>, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = e.poll_transmit(now) {
            out.push(match t {
                Transmit::Control(c) => c.encode(),
                Transmit::Data { message, .. } => message.to_string(),
            });
        }
        out
    }

    #[test]
    fn ack_goes_out_after_32_data_messages() {
        let now = Instant::now();
        let mut e = attached();
        for _ in 0..31 {
            e.handle(now, true, b"x").unwrap();
        }
        assert!(drain(&mut e, now).is_empty());
        e.handle(now, true, b"x").unwrap();
        assert_eq!(drain(&mut e, now), ["\0ack 32"]);
    }

    /// docs/sessions.md §5: an ack due by count may wait for the next write; one the
    /// peer's `end` asked for, or one with data to go with it, is not "only a routine ack".
    #[test]
    fn sessions_md_5_an_ack_due_by_count_alone_is_a_routine_ack() {
        let now = Instant::now();
        let mut e = attached();
        for _ in 0..31 {
            e.handle(now, true, b"x").unwrap();
        }
        assert!(!e.only_routine_ack(), "31 messages: no ack due");
        e.handle(now, true, b"x").unwrap();
        assert!(e.only_routine_ack(), "32 messages: the ack alone");
        e.push("data", 4).unwrap();
        assert!(!e.only_routine_ack(), "data to write too");
        assert_eq!(drain(&mut e, now), ["\0ack 32", "data"]);
        assert!(!e.only_routine_ack(), "reported");

        e.handle(now, true, b"reply").unwrap();
        control(&mut e, now, Control::End(1)).unwrap();
        assert!(
            !e.only_routine_ack(),
            "the peer's end wants its ack at once"
        );
        assert_eq!(drain(&mut e, now), ["\0ack 33"]);
    }

    #[test]
    fn ack_goes_out_200ms_after_the_first_unreported_message() {
        let now = Instant::now();
        let mut e = attached();
        e.handle(now, true, b"x").unwrap();
        e.handle(now + Duration::from_millis(100), true, b"y")
            .unwrap();
        assert_eq!(e.poll_timeout(), Some(now + Duration::from_millis(200)));
        assert!(drain(&mut e, now + Duration::from_millis(199)).is_empty());
        assert_eq!(drain(&mut e, now + Duration::from_millis(200)), ["\0ack 2"]);
        assert_eq!(e.poll_timeout(), None);
    }

    #[test]
    fn ping_is_answered_with_pong_carrying_the_count() {
        let now = Instant::now();
        let mut e = attached();
        e.handle(now, true, b"x").unwrap();
        control(
            &mut e,
            now,
            Control::Ping {
                nonce: 77,
                received: 0,
            },
        )
        .unwrap();
        assert_eq!(drain(&mut e, now), ["\0pong 77 1"]);
    }

    #[test]
    fn acks_free_the_replay_buffer() {
        let now = Instant::now();
        let mut e = attached();
        for m in ["a", "b", "c"] {
            e.push(m, 1).unwrap();
        }
        assert_eq!(drain(&mut e, now), ["a", "b", "c"]);
        control(&mut e, now, Control::Ack(2)).unwrap();
        assert_eq!((e.acked(), e.replay_len()), (2, 1));
        control(
            &mut e,
            now,
            Control::Pong {
                nonce: 1,
                received: 3,
            },
        )
        .unwrap();
        assert_eq!(e.replay_len(), 0);
    }

    #[test]
    fn ack_above_what_was_written_is_a_protocol_error() {
        let now = Instant::now();
        let mut e = attached();
        e.push("a", 1).unwrap();
        // Pushed but not written yet: the peer cannot have it.
        let lost = control(&mut e, now, Control::Ack(1)).unwrap_err();
        assert_eq!(
            (lost.reason, lost.origin),
            (LostReason::Protocol, Origin::Local)
        );
        assert_eq!(
            lost.detail,
            Some(ProtocolError::AckAboveSent {
                acked: 1,
                written: 0
            })
        );
        assert_eq!((lost.sent, lost.unacked), (1, 1));
        // Sticky.
        assert_eq!(e.handle(now, true, b"x"), Err(lost));
    }

    #[test]
    fn ack_going_back_is_a_protocol_error() {
        let now = Instant::now();
        let mut e = attached();
        e.push("a", 1).unwrap();
        e.push("b", 1).unwrap();
        drain(&mut e, now);
        control(&mut e, now, Control::Ack(2)).unwrap();
        let lost = control(&mut e, now, Control::Ack(1)).unwrap_err();
        assert_eq!(
            lost.detail,
            Some(ProtocolError::AckWentBack {
                acked: 1,
                before: 2
            })
        );
    }

    #[test]
    fn resume_below_what_the_peer_acknowledged_is_a_protocol_error() {
        let now = Instant::now();
        let mut e = attached();
        e.push("a", 1).unwrap();
        drain(&mut e, now);
        control(&mut e, now, Control::Ack(1)).unwrap();
        e.detach();
        assert!(e.attach(0).is_err());
    }

    #[test]
    fn attach_resends_from_the_peers_count_then_end() {
        let now = Instant::now();
        let mut e = attached();
        for m in ["a", "b", "c"] {
            e.push(m, 1).unwrap();
        }
        e.finish();
        assert_eq!(drain(&mut e, now), ["a", "b", "c", "\0end 0"]);
        e.detach();
        assert!(drain(&mut e, now).is_empty());
        e.attach(1).unwrap();
        assert_eq!(drain(&mut e, now), ["b", "c", "\0end 0"]);
        assert_eq!(e.push("d", 1), Err(Error::Ended));
    }

    #[test]
    fn data_after_the_peers_end_is_a_protocol_error_a_second_end_is_not() {
        let now = Instant::now();
        let mut e = attached();
        control(&mut e, now, Control::End(0)).unwrap();
        control(&mut e, now, Control::End(0)).unwrap();
        assert_eq!(e.peer_end(), Some(0));
        let lost = e.handle(now, true, b"late").unwrap_err();
        assert_eq!(lost.detail, Some(ProtocolError::DataAfterEnd));
    }

    #[test]
    fn handshake_verbs_after_the_handshake_are_protocol_errors() {
        let now = Instant::now();
        for c in [
            Control::New,
            Control::Session {
                id: crate::SessionId::from_bytes([1; 16]),
                received: 0,
            },
        ] {
            let mut e = attached();
            let lost = control(&mut e, now, c).unwrap_err();
            assert!(matches!(
                lost.detail,
                Some(ProtocolError::Unexpected { .. })
            ));
        }
    }

    #[test]
    fn lost_from_the_peer_carries_this_sides_counts() {
        let now = Instant::now();
        let mut e = attached();
        e.push("a", 1).unwrap();
        e.handle(now, true, b"x").unwrap();
        let lost = control(&mut e, now, Control::Lost(LostReason::Expired)).unwrap_err();
        assert_eq!(
            (
                lost.reason,
                lost.origin,
                lost.sent,
                lost.unacked,
                lost.received
            ),
            (LostReason::Expired, Origin::Peer, 1, 1, 1)
        );
        assert!(e.poll_transmit(now).is_none());
        assert!(matches!(e.push("b", 1), Err(Error::Lost(_))));
    }

    #[test]
    fn a_close_code_of_a_reason_ends_the_session_others_do_not() {
        let mut e = attached();
        assert_eq!(e.closed_with(1000), None);
        assert_eq!(e.closed_with(1006), None);
        assert_eq!(
            e.closed_with(4002).map(|l| l.reason),
            Some(LostReason::Unknown)
        );
    }

    #[test]
    fn finished_after_both_ends_and_every_ack() {
        let now = Instant::now();
        let mut e = attached();
        e.push("a", 1).unwrap();
        e.finish();
        assert_eq!(drain(&mut e, now), ["a", "\0end 0"]);
        assert!(!e.is_finished());
        e.handle(now, true, b"reply").unwrap();
        control(&mut e, now, Control::End(1)).unwrap();
        assert!(!e.is_finished(), "the reply is not acknowledged yet");
        assert_eq!(drain(&mut e, now), ["\0ack 1"]);
        assert!(e.is_finished());
    }

    #[test]
    fn a_stuffed_binary_message_is_data_an_unstuffed_one_is_an_error() {
        let now = Instant::now();
        let mut e = attached();
        assert_eq!(
            e.handle(now, false, b"\0\0bin"),
            Ok(Incoming::Data { skip: 1 })
        );
        assert_eq!(e.received(), 1);
        let lost = e.handle(now, false, b"\0ack 1").unwrap_err();
        assert_eq!(lost.detail, Some(ProtocolError::BinaryControl));
    }
}
