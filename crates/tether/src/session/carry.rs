//! A server connection carrying an attached session: it writes what the session has to say,
//! reads while the application has room, and runs the application's handler in its own
//! task while it holds it (handler.rs), as a plain WebSocket loop runs in one.

use std::future::Future;
use std::task::{Poll, Waker};

use futures_util::{SinkExt, StreamExt};
use tether_codec::Message;
use tether_session::{Attachment, Control, Incoming, LostReason, Origin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::session::handler::Lease;
use crate::session::outgoing::{self, Goodbye};
use crate::session::state::Shared;
use crate::session::wire;
use crate::websocket::WebSocket;

/// How the connection stopped carrying the session.
#[derive(Debug)]
pub(super) enum Ended {
    /// The connection ended (closed, cut, failed): the session is parked.
    Gone,
    /// Another connection resumed the session; this one said `lost replaced`.
    Replaced,
    /// The session is over (finished or lost): this connection said goodbye.
    Over,
}

/// What woke a connection waiting in [`carry`].
enum Woke {
    /// The client's next message (`None`: the stream ended).
    Read(Option<Result<Message, Error>>),
    /// Something to write, room to read, or the connection was replaced.
    Changed,
    /// The ack timer fired.
    Timer,
}

/// Carries the session: writes what it has to say, reads while the application has room,
/// and runs the handler (while it holds the lease) in this task, as a plain WebSocket
/// loop would.
pub(super) async fn carry<S>(
    ws: &mut WebSocket<S>,
    shared: &Shared,
    attachment: Attachment,
    mut lease: Lease,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut goodbye = Goodbye::None;
    // One timer for the connection, moved only when the ack deadline moves (a new timer
    // per pass registered and removed one in the runtime's wheel for every message).
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed = None;
    // The timer was polled since it was last reset: it holds this task's waker, and only
    // whether it fired needs a look (polling it again on every pass registered it again).
    let mut registered = false;
    // Whether something may be due to write: not after a data message arrived (it is
    // counted when the application takes it, and what that causes wakes this connection).
    let mut due = true;
    let (mut deadline, mut room) = (None, true);
    loop {
        if due {
            let written = write(
                ws,
                shared,
                attachment,
                &mut goodbye,
                timer.as_ref().get_ref(),
            );
            match beside(&mut lease, written).await {
                Ok(after) => (deadline, room) = after,
                Err(_) => return Ended::Gone,
            }
            if goodbye == Goodbye::Closed {
                // The handler goes on elsewhere while this connection waits for the close.
                drop(lease);
                drain(ws).await;
                return if shared.lock().carried_by(attachment) {
                    Ended::Over
                } else {
                    Ended::Replaced
                };
            }
            if let Some(at) = deadline.filter(|at| armed != Some(*at)) {
                timer.as_mut().reset(Instant::from_std(at));
                armed = Some(at);
                registered = false;
            }
        }
        // In this order: the handler first (it takes what the last read delivered, and
        // what it sends is written next pass), then the state, the client, the timer.
        let woke = std::future::poll_fn(|cx| {
            lease.poll(cx);
            {
                let mut state = shared.lock();
                state.register_link(attachment, cx.waker());
                if state.take_woken() || !state.carried_by(attachment) {
                    return Poll::Ready(Woke::Changed);
                }
            }
            if room {
                if let Poll::Ready(item) = ws.poll_next_unpin(cx) {
                    return Poll::Ready(Woke::Read(item));
                }
            }
            if deadline.is_some() {
                let fired = if registered {
                    timer.is_elapsed()
                } else {
                    registered = true;
                    outgoing::poll_timer(timer.as_mut(), cx).is_ready()
                };
                if fired {
                    return Poll::Ready(Woke::Timer);
                }
            }
            Poll::Pending
        });
        due = true;
        match woke.await {
            Woke::Read(Some(Ok(message))) => {
                let received = receive(shared, attachment, message);
                if let Some(reader) = received.reader {
                    lease.wake(reader);
                }
                due = received.due;
                room = received.room;
            }
            Woke::Read(None | Some(Err(_))) => return Ended::Gone,
            Woke::Changed => {}
            Woke::Timer => {
                armed = None;
                registered = false;
            }
        }
    }
}

/// Runs `work` to its end, and the handler beside it while it waits (a write waiting for
/// room on the socket must not stop the session's handler, nor keep it from a connection
/// that replaced this one).
async fn beside<F: Future>(lease: &mut Lease, work: F) -> F::Output {
    tokio::pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        lease.poll(cx);
        Poll::Pending
    })
    .await
}

/// Writes everything due, then flushes (when it wrote anything: each call leaves nothing
/// unflushed). A replaced connection says `lost replaced`. Returns the ack deadline and
/// whether the application has room for more, as they stood when nothing more was due.
async fn write<S>(
    ws: &mut WebSocket<S>,
    shared: &Shared,
    attachment: Attachment,
    goodbye: &mut Goodbye,
    timer: &Sleep,
) -> Result<(Option<std::time::Instant>, bool), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // At most one clock read for this pass (the ack deadline is in milliseconds), none
    // while the ack timer says the deadline has not come.
    let mut now = None;
    let mut fed = false;
    loop {
        // The next message, or (nothing more due) the deadline and room to return.
        let next = {
            let mut state = shared.lock();
            let next = if state.carried_by(attachment) {
                let endpoint = &mut state.endpoint;
                let now = *now
                    .get_or_insert_with(|| outgoing::write_time(endpoint.poll_timeout(), timer));
                outgoing::next(endpoint, now, goodbye)
            } else {
                outgoing::lost_goodbye(LostReason::Replaced, goodbye)
            };
            next.ok_or_else(|| (state.endpoint.poll_timeout(), state.has_room()))
        };
        match next {
            Ok(message) => {
                ws.feed(message).await?;
                fed = true;
            }
            Err(after) if fed => return ws.flush().await.map(|()| after),
            Err(after) => return Ok(after),
        }
    }
}

/// What taking in a message left to do.
struct Received {
    /// The application's reader, to wake (the caller knows whether it is its own handler).
    reader: Option<Waker>,
    /// Something may be due to write (anything but data, which is counted when taken).
    due: bool,
    /// The application has room for more.
    room: bool,
}

/// Takes in one message from the client; data goes to the application.
fn receive(shared: &Shared, attachment: Attachment, message: Message) -> Received {
    let mut state = shared.lock();
    let mut received = Received {
        reader: None,
        due: true,
        room: true,
    };
    // §7: a replaced connection's messages are not counted (the client resends them).
    if !state.carried_by(attachment) {
        return received;
    }
    let Some((text, payload)) = wire::payload(&message) else {
        if let Message::Close(Some(frame)) = &message {
            // §6: a close with a lost reason's code ends the session.
            if state.endpoint.closed_with(frame.code.0).is_some() {
                shared.wake_senders();
                received.reader = state.take_reader();
            }
        }
        return received;
    };
    // Data and `end` wait for the application in order and are counted when it takes
    // them (state.rs, MAX_INBOUND_BYTES); every other control message acts at once, and
    // so does the count `end` carries (counts must never go back).
    let before = state.endpoint.acked();
    let handled = match tether_session::classify(text, payload) {
        Ok(Incoming::Data { .. }) if !state.is_abandoned() => {
            received.reader = state.deliver(message);
            received.due = false;
            received.room = state.has_room();
            return received;
        }
        Ok(Incoming::Control(Control::End(count))) if !state.is_abandoned() => {
            let handled = state.endpoint.handle_control(Control::Ack(count));
            received.reader = state.deliver(message);
            handled
        }
        // Parsed once: an ack arrives for every few messages.
        Ok(Incoming::Control(control)) => state.endpoint.handle_control(control),
        _ => {
            // A malformed message (the endpoint says how the session is lost), or data for
            // an abandoned session. The time is read only here: data, counted when taken,
            // does not need it.
            let now = outgoing::receive_time(state.endpoint.poll_timeout());
            state.endpoint.handle(now, text, payload).map(drop)
        }
    };
    if let Err(lost) = &handled {
        if lost.origin == Origin::Peer {
            tracing::debug!(%lost, "session lost");
        }
    }
    if handled.is_err() || state.endpoint.acked() > before {
        // Room in the replay buffer, or the session ended.
        shared.wake_senders();
        received.reader = received.reader.or_else(|| state.take_reader());
    }
    received.room = state.has_room();
    received
}

/// Reads to the end of the stream (the peer's close answer, bounded by the close timeout).
pub(super) async fn drain<S>(ws: &mut WebSocket<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(_)) = ws.next().await {}
}
