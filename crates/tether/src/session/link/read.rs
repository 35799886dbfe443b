//! The application's task reading its link's connection itself (`reading.rs`): what it
//! reads is taken in as the link's task takes it in, and whatever is not data for the
//! application (a Ping, Pong or Close frame, an error, the end) is left to the link's task.

use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use futures_core::Stream;
use tether_codec::Message;
use tether_session::{Control, Error as SessionError, Incoming, Origin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Writer;
use crate::session::outgoing::{self, Goodbye};
use crate::session::shared::{over, Shared, State};
use crate::session::wire;
use crate::supervised::SupervisedError;

/// What the application's task got reading the connection itself ([`super::Pump::read_now`]).
pub(crate) enum ReadNow {
    /// A data message, counted, unstuffed.
    Data(Message),
    /// Nothing for the application: the link's task looks first (a frame or an end it
    /// handles, a failed write, a goodbye, a link no longer attached); the application
    /// waits for the supervisor's inbox.
    Link,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    /// [`super::Pump::read_now`].
    pub(super) fn read(&mut self, shared: &Shared, app: &Waker) -> Poll<ReadNow> {
        // Under the writer's lock, which the link's task holds while it reads and counts
        // what it hands over: whatever it read before is counted, nothing more is read
        // meanwhile.
        if self.detached
            || self.failed.is_some()
            || self.for_link.is_some()
            || self.goodbye != Goodbye::None
            || !shared.lock().nothing_on_its_way()
        {
            return Poll::Ready(ReadNow::Link);
        }
        if self.ack_held && !self.pump_for_link(shared) {
            return Poll::Ready(ReadNow::Link);
        }
        shared.route.app_polls(app);
        let mut cx = Context::from_waker(&shared.route_waker);
        loop {
            let item = ready!(Pin::new(&mut self.ws).poll_next(&mut cx));
            let message = match item {
                Some(Ok(message)) => message,
                other => return Poll::Ready(self.leave(shared, other)),
            };
            let mut state = shared.lock();
            let taken = take_in(&mut state, message);
            match taken {
                Ok(Taken::Data(message)) => {
                    shared.route.seen();
                    let endpoint = state.client.endpoint();
                    self.ack_held = endpoint.only_routine_ack();
                    let deadline = endpoint.poll_timeout();
                    if self.needs_arming(deadline) {
                        let link = state.link_waker();
                        drop(state);
                        self.arm(shared, deadline, link);
                    }
                    return Poll::Ready(ReadNow::Data(message));
                }
                Ok(Taken::Control { quiet }) => {
                    shared.route.seen();
                    if !quiet {
                        shared.leave_to_link(&state);
                    }
                }
                Ok(Taken::Frame(frame)) => {
                    drop(state);
                    return Poll::Ready(self.leave(shared, Some(Ok(frame))));
                }
                Err(error) => {
                    drop(state);
                    return Poll::Ready(self.leave(shared, Some(Err(error))));
                }
            }
        }
    }

    /// Leaves what the application's task read to the link's task (woken), which
    /// handles it as if it had read it.
    fn leave(
        &mut self,
        shared: &Shared,
        item: Option<Result<Message, SupervisedError>>,
    ) -> ReadNow {
        self.for_link = Some(item);
        shared.route.wake_link();
        ReadNow::Link
    }

    /// Writes from the application's task as a send does ([`super::Pump::write_now`],
    /// with the link task's waker; what did not finish is left to the link's task): an ack
    /// held for the next write. Returns whether the application may read on.
    fn pump_for_link(&mut self, shared: &Shared) -> bool {
        let Some(link) = shared.lock().link_waker() else {
            return false;
        };
        if !self.write_through(shared, &mut Context::from_waker(&link)) {
            shared.mark_due();
            link.wake();
        }
        self.failed.is_none()
    }

    /// Whether the ack timer has to be armed for `deadline`: it is not armed, or fired,
    /// or armed for later. (Armed earlier, it fires first and the link's pump arms it
    /// again for what is due then: no reset for every message.)
    fn needs_arming(&self, deadline: Option<std::time::Instant>) -> bool {
        deadline.is_some_and(|at| {
            !self.armed || self.timer.is_elapsed() || self.timer.deadline() > Instant::from_std(at)
        })
    }

    /// Arms the ack timer for `deadline` with the link task's waker, from the
    /// application's task; a deadline already passed is left to the link's task.
    fn arm(&mut self, shared: &Shared, deadline: Option<std::time::Instant>, link: Option<Waker>) {
        let (Some(at), Some(link)) = (deadline, link) else {
            shared.mark_due();
            return;
        };
        self.timer.as_mut().reset(Instant::from_std(at));
        let mut cx = Context::from_waker(&link);
        self.armed = outgoing::poll_timer(self.timer.as_mut(), &mut cx).is_pending();
        if !self.armed {
            shared.mark_due();
            link.wake();
        }
    }
}

/// What a received message is, taken in.
enum Taken {
    /// Data for the application, unstuffed.
    Data(Message),
    /// A session control message, handled: `quiet` when nothing needs writing for it (an
    /// ack that did not finish the session, with nothing waiting for the room it made).
    Control { quiet: bool },
    /// A frame the heartbeat handles (Ping, Pong, Close).
    Frame(Message),
}

/// Takes in one received message: data is counted, control messages are handled.
fn take_in(state: &mut State, message: Message) -> Result<Taken, SupervisedError> {
    let endpoint = state.client.endpoint_mut();
    let Some((text, payload)) = wire::payload(&message) else {
        if let Message::Close(Some(frame)) = &message {
            // docs/sessions.md §6: a close with a lost reason's code ends the session
            // even without a `\0lost` message.
            endpoint.closed_with(frame.code.0);
        }
        return Ok(Taken::Frame(message));
    };
    let now = outgoing::receive_time(endpoint.poll_timeout());
    let incoming = endpoint.handle(now, text, payload);
    match incoming {
        Ok(Incoming::Data { skip }) => Ok(Taken::Data(wire::unstuffed(message, skip))),
        Ok(Incoming::Control(control)) => Ok(Taken::Control {
            // An ack that finished the session (it acknowledged our `end`) leaves the
            // close to write.
            quiet: matches!(control, Control::Ack(_))
                && !endpoint.is_finished()
                && state.is_settled(),
        }),
        Err(lost) if lost.origin == Origin::Local => {
            // Our `\0lost protocol` and the close go out with the next pump.
            tracing::warn!(%lost, "session lost");
            Ok(Taken::Control { quiet: false })
        }
        Err(lost) => Err(over(SessionError::Lost(lost))),
    }
}

/// Takes in one message the link's task read: data comes out unstuffed (on its way to
/// the supervisor's inbox), control messages are the session's own (`None`).
pub(super) fn receive(
    shared: &Shared,
    message: Message,
) -> Result<Option<Message>, SupervisedError> {
    // Whatever it is (data counted, an ack, a ping, the peer's end or lost), the link's
    // next pass may have something to say about it.
    shared.mark_due();
    let mut state = shared.lock();
    match take_in(&mut state, message)? {
        Taken::Data(message) => {
            state.hand();
            Ok(Some(message))
        }
        Taken::Frame(message) => Ok(Some(message)),
        Taken::Control { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use bytes::BytesMut;
    use tether_session::{Client, EndpointConfig};

    use super::*;
    use crate::session::link::{lock, Pump, SessionLink};
    use crate::supervised::Supervised;
    use crate::{Config, Role, WebSocket};

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    /// A link over a pipe whose peer says nothing, its shared state, and counters of the
    /// wake-ups of the link's task and of the application's, the application waiting in
    /// `recv` after reading through (the connection polled, nothing there).
    struct Waiting {
        link: SessionLink<tokio::io::DuplexStream>,
        shared: Arc<Shared>,
        _peer: tokio::io::DuplexStream,
        links: Arc<Count>,
        apps: Arc<Count>,
        app: Waker,
    }

    impl Waiting {
        fn new() -> Self {
            let (io, peer) = tokio::io::duplex(4096);
            let ws =
                WebSocket::from_raw(io, Role::Client, &Config::default(), BytesMut::new(), None);
            let client = Client::new(EndpointConfig::default()).expect("config");
            let shared = Shared::new(client, (16, 1 << 20));
            let link = SessionLink::new(Supervised(ws), Arc::clone(&shared));
            let (links, link_waker) = counted();
            let (apps, app) = counted();
            shared.route.link_polls(&link_waker);
            let waiting = Waiting {
                link,
                shared,
                _peer: peer,
                links,
                apps,
                app,
            };
            assert!(waiting.read().is_pending());
            waiting
        }

        fn read(&self) -> Poll<ReadNow> {
            lock(&self.link.writer).read_now(&self.shared, &self.app)
        }

        /// The connection's bytes arrive.
        fn readable(&self) {
            self.shared.route_waker.wake_by_ref();
        }
    }

    /// A wake-up that reached the application's task while it waited in `recv` is passed
    /// on to the link's task when the application may not read any more (a goodbye under
    /// way: the link's task reads the rest). `read_now` returns without taking the
    /// wake-up as its own, so leaving passes it on.
    #[tokio::test]
    async fn a_wake_up_the_application_cannot_use_goes_to_the_link() {
        let waiting = Waiting::new();
        waiting.readable();
        assert_eq!(
            waiting.apps.0.load(Ordering::SeqCst),
            1,
            "the waiting application"
        );
        assert_eq!(waiting.links.0.load(Ordering::SeqCst), 0);

        // Woken, it finds the session saying goodbye: the link's task reads from now on.
        lock(&waiting.link.writer).goodbye = Goodbye::Closed;
        assert!(matches!(waiting.read(), Poll::Ready(ReadNow::Link)));
        waiting.shared.route.leave();
        let passed_on = waiting.links.0.load(Ordering::SeqCst);
        assert_eq!(passed_on, 1, "the wake-up was passed on");
    }

    /// After the application's task read what woke it, leaving passes nothing on: the
    /// link's task is not polled for every message the application reads itself.
    #[tokio::test]
    async fn a_wake_up_the_application_used_stays_with_it() {
        let waiting = Waiting::new();
        waiting.readable();
        // Woken, it polls the connection again (nothing there this time) and stops waiting.
        assert!(waiting.read().is_pending());
        waiting.shared.route.leave();
        assert_eq!(waiting.links.0.load(Ordering::SeqCst), 0);
        // With nobody waiting in `recv`, the connection's wake-ups go to the link's task.
        waiting.readable();
        assert_eq!(waiting.links.0.load(Ordering::SeqCst), 1);
    }
}
