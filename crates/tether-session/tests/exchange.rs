//! The property test on a virtual clock: a client and a server exchange messages
//! both ways over connections that a random schedule delays, cuts and reopens; what each
//! side receives equals what the other sent, exactly (nothing lost, nothing doubled, order
//! kept), and both finish the session normally.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tether_session::{
    needs_stuffing, parse_hello, Client, Control, Endpoint, EndpointConfig, Hello, Incoming,
    SessionId, Transmit,
};

#[derive(Debug, Clone)]
enum Op {
    ClientSends(u8),
    ServerSends(u8),
    Tick(u16),
    Cut,
    Connect(u16),
    ClientFinishes,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::ClientSends),
        4 => (0u8..4).prop_map(Op::ServerSends),
        4 => (0u16..300).prop_map(Op::Tick),
        1 => Just(Op::Cut),
        1 => (0u16..150).prop_map(Op::Connect),
        1 => Just(Op::ClientFinishes),
    ]
}

/// One wire message: when it arrives, whether it is text, its bytes.
type Wire = (Instant, bool, Vec<u8>);

struct Link {
    delay: Duration,
    up: VecDeque<Wire>,
    down: VecDeque<Wire>,
    /// The server has read the client's hello on this link.
    server_attached: bool,
}

struct World {
    now: Instant,
    client: Client<Vec<u8>>,
    server: Endpoint<Vec<u8>>,
    id: SessionId,
    server_has_session: bool,
    link: Option<Link>,
    client_sent: Vec<Vec<u8>>,
    server_sent: Vec<Vec<u8>>,
    client_received: Vec<Vec<u8>>,
    server_received: Vec<Vec<u8>>,
    next_payload: u32,
}

fn config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    // Small, so that the buffers fill and senders wait.
    config.set_max_replay_messages(8).set_max_replay_bytes(200);
    config
}

impl World {
    fn new() -> World {
        World {
            now: Instant::now(),
            client: Client::new(config()).unwrap(),
            server: Endpoint::new(config()).unwrap(),
            id: SessionId::from_bytes([42; 16]),
            server_has_session: false,
            link: None,
            client_sent: Vec::new(),
            server_sent: Vec::new(),
            client_received: Vec::new(),
            server_received: Vec::new(),
            next_payload: 0,
        }
    }

    /// Every fifth payload starts with 0x00, to exercise the stuffing.
    fn payload(&mut self, len: u8) -> Vec<u8> {
        self.next_payload += 1;
        let mut bytes = format!("m{}", self.next_payload).into_bytes();
        bytes.extend(std::iter::repeat_n(b'.', len.into()));
        if self.next_payload % 5 == 0 {
            bytes.insert(0, 0);
        }
        bytes
    }

    fn client_sends(&mut self, len: u8) {
        let payload = self.payload(len);
        let endpoint = self.client.endpoint_mut();
        if endpoint.check_room(0, 0, payload.len()).is_ok() {
            endpoint.push(payload.clone(), payload.len()).unwrap();
            self.client_sent.push(payload);
        }
    }

    fn server_sends(&mut self, len: u8) {
        let payload = self.payload(len);
        if self.server_has_session && self.server.check_room(0, 0, payload.len()).is_ok() {
            self.server.push(payload.clone(), payload.len()).unwrap();
            self.server_sent.push(payload);
        }
    }

    fn cut(&mut self) {
        if self.link.take().is_some() {
            self.client.link_lost();
            self.server.detach();
        }
    }

    fn connect(&mut self, delay_ms: u16) {
        if self.link.is_some() {
            return;
        }
        let hello = self.client.hello().encode().into_bytes();
        let delay = Duration::from_millis(delay_ms.into());
        let mut up = VecDeque::new();
        up.push_back((self.now + delay, true, hello));
        self.link = Some(Link {
            delay,
            up,
            down: VecDeque::new(),
            server_attached: false,
        });
    }

    /// Advances the clock, delivering what is due and writing what each side has.
    fn tick(&mut self, ms: u16) {
        self.now += Duration::from_millis(ms.into());
        self.pump();
    }

    fn pump(&mut self) {
        loop {
            self.transmit();
            if !self.deliver_one() {
                break;
            }
        }
    }

    fn transmit(&mut self) {
        let Some(link) = &mut self.link else { return };
        let at = self.now + link.delay;
        if self.client.endpoint().is_attached() {
            while let Some(t) = self.client.endpoint_mut().poll_transmit(self.now) {
                link.up.push_back(wire(at, t));
            }
        }
        if link.server_attached {
            while let Some(t) = self.server.poll_transmit(self.now) {
                link.down.push_back(wire(at, t));
            }
        }
    }

    fn deliver_one(&mut self) -> bool {
        let now = self.now;
        let Some(link) = &mut self.link else {
            return false;
        };
        if link.up.front().is_some_and(|m| m.0 <= now) {
            let (_, text, bytes) = link.up.pop_front().unwrap();
            if !link.server_attached {
                let answer = match parse_hello(text, &bytes).unwrap() {
                    Hello::New => {
                        // A second `new`: the answer to the first was cut. That session is
                        // abandoned (the server's registry lets it expire, explicitly); the
                        // client never attached to it, so nothing of it was delivered.
                        if self.server_has_session {
                            assert!(self.server_received.is_empty());
                            assert!(self.client_received.is_empty());
                            self.server_sent.clear();
                        }
                        self.server = Endpoint::new(config()).unwrap();
                        self.server_has_session = true;
                        self.server.attach(0).unwrap();
                        Control::Session {
                            id: self.id,
                            received: 0,
                        }
                    }
                    Hello::Resume { id, received } => {
                        assert_eq!(id, self.id);
                        self.server.attach(received).unwrap();
                        Control::Session {
                            id,
                            received: self.server.received(),
                        }
                    }
                    other => panic!("unexpected hello {other:?}"),
                };
                link.server_attached = true;
                link.down
                    .push_back((now + link.delay, true, answer.encode().into_bytes()));
            } else {
                match self.server.handle(now, text, &bytes).unwrap() {
                    Incoming::Data { skip } => self.server_received.push(bytes[skip..].to_vec()),
                    Incoming::Control(_) => {}
                }
            }
            return true;
        }
        if link.down.front().is_some_and(|m| m.0 <= now) {
            let (_, text, bytes) = link.down.pop_front().unwrap();
            if !self.client.endpoint().is_attached() {
                self.client.handle_answer(text, &bytes).unwrap();
            } else {
                match self
                    .client
                    .endpoint_mut()
                    .handle(now, text, &bytes)
                    .unwrap()
                {
                    Incoming::Data { skip } => self.client_received.push(bytes[skip..].to_vec()),
                    Incoming::Control(_) => {}
                }
            }
            return true;
        }
        false
    }

    /// After the schedule: one last connection that stays up, both sides end, and time
    /// passes until both finished.
    fn heal(&mut self) {
        self.connect(10);
        self.client.endpoint_mut().finish();
        for _ in 0..10_000 {
            if self.server_has_session
                && self.server.peer_end().is_some()
                && !self.server.is_ending()
            {
                self.server.finish();
            }
            if self.client.endpoint().is_finished() && self.server.is_finished() {
                return;
            }
            self.tick(50);
        }
        panic!("the session did not finish");
    }
}

fn wire(at: Instant, transmit: Transmit<'_, Vec<u8>>) -> Wire {
    match transmit {
        Transmit::Control(control) => (at, true, control.encode().into_bytes()),
        Transmit::Data { message, .. } => {
            let mut bytes = Vec::with_capacity(message.len() + 1);
            if needs_stuffing(message) {
                bytes.push(0);
            }
            bytes.extend_from_slice(message);
            // Data goes as text or binary alike; text here.
            (at, true, bytes)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn received_sequences_equal_sent_sequences_through_cuts_delays_and_resumes(
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mut world = World::new();
        world.connect(5);
        for op in ops {
            match op {
                Op::ClientSends(len) if !world.client.endpoint().is_ending() => world.client_sends(len),
                Op::ClientSends(_) => {}
                Op::ServerSends(len) => world.server_sends(len),
                Op::Tick(ms) => world.tick(ms),
                Op::Cut => world.cut(),
                Op::Connect(delay) => world.connect(delay),
                Op::ClientFinishes => world.client.endpoint_mut().finish(),
            }
        }
        world.heal();
        prop_assert_eq!(&world.server_received, &world.client_sent);
        prop_assert_eq!(&world.client_received, &world.server_sent);
        prop_assert!(world.client.endpoint().lost().is_none());
    }
}
