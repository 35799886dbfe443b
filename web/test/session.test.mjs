// Unit tests of session.js and of TetherSocket's session mode under Node's test runner
// (`node --test web/test/session.test.mjs`), on a fake clock and a scripted WebSocket. An
// end-to-end test against the Rust server waits for `tether serve --sessions`.

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  LOST,
  LOST_CLOSE_CODES,
  SESSION_DEFAULTS,
  SESSION_PROTOCOL,
  SessionCore,
  decodeMessage,
  encodeData,
} from "../session.js";
import { TetherSocket } from "../tether.js";
import { FakeClock, events, fakeWebSockets } from "./fakes.mjs";

const ID = "AAAAAAAAAAAAAAAAAAAAAA";
const OTHER = "BBBBBBBBBBBBBBBBBBBBBB";

/** The scripted WebSocket of a server that selects the session subprotocol. */
function sessionWebSockets() {
  return fakeWebSockets({ protocol: SESSION_PROTOCOL });
}

test("stuffing: only data that begins with U+0000 or 0x00 changes, and it comes back intact", () => {
  assert.equal(encodeData("hello"), "hello");
  assert.equal(encodeData("\u0000new"), "\u0000\u0000new");
  assert.deepEqual(decodeMessage(encodeData("\u0000new")), { data: "\u0000new" });
  assert.deepEqual(decodeMessage("\u0000ack 3"), { control: { verb: "ack", count: 3 } });
  const zeroFirst = new Uint8Array([0, 1, 2]).buffer;
  const wire = encodeData(zeroFirst);
  assert.deepEqual([...new Uint8Array(wire)], [0, 0, 1, 2]);
  assert.deepEqual([...new Uint8Array(decodeMessage(wire).data)], [0, 1, 2]);
  const plain = new Uint8Array([7, 0]).buffer;
  assert.equal(encodeData(plain), plain, "no copy when nothing needs stuffing");
  assert.ok(decodeMessage(new Uint8Array([0, 1]).buffer).error, "a lone 0x00 is refused");
});

test("the control grammar: exact fields, canonical counts, 64 bytes at most", () => {
  const ok = (text) => assert.ok(decodeMessage(text).control, text);
  const bad = (text) => assert.ok(decodeMessage(text).error, JSON.stringify(text));
  ok(`\u0000session ${ID} 0`);
  ok("\u0000ping 18446744073709551615 9007199254740991");
  bad("\u0000ack 9007199254740992"); // past 2^53 - 1
  bad("\u0000ack 01");
  bad("\u0000ack  1");
  bad("\u0000ack 1 ");
  bad("\u0000ack");
  bad("\u0000Ack 1");
  bad("\u0000lost tired");
  bad(`\u0000session ${ID.slice(1)} 0`);
  bad("\u0000hello");
  bad("\u0000constructor");
  // 64 bytes is checked before any parsing (the longest valid message has 48): at 64 the
  // grammar decides, at 65 the length does, whatever follows.
  const at = `\u0000ack ${"1".repeat(59)}`;
  assert.equal(at.length, 64);
  assert.match(decodeMessage(at).error, /bad count/);
  assert.match(decodeMessage(`${at}1`).error, /over 64 bytes/);
  assert.match(decodeMessage(`\u0000${"x".repeat(1 << 20)}`).error, /over 64 bytes/);
});

test("a new session, then a resume that resends exactly what the server lacks", () => {
  const core = new SessionCore();
  assert.equal(core.hello(), "\u0000new");
  assert.equal(core.send("a"), null, "not attached: kept for the handshake");
  let out = core.receive(`\u0000session ${ID} 0`, 0);
  assert.deepEqual(out.send, ["a"]);
  assert.deepEqual(out.session, { id: ID, resumed: false, resent: 1, received: 0, acked: 0 });
  assert.equal(core.send("b"), "b");
  assert.equal(core.send("c"), "c");
  assert.equal(core.receive("x", 1).deliver, "x");
  core.detach();
  assert.equal(core.hello(), `\u0000resume ${ID} 1`);
  out = core.receive(`\u0000session ${ID} 2`, 2);
  assert.deepEqual(out.send, ["c"], "a and b arrived before the cut");
  assert.equal(out.session.resumed, true);
  assert.equal(core.replay.length, 1);
});

test("reports: an ack after ackEvery messages or ackDelay; every control message reports", () => {
  const core = new SessionCore({ ackEvery: 3, ackDelay: 100 });
  core.hello();
  core.receive(`\u0000session ${ID} 0`, 0);
  assert.deepEqual(core.receive("1", 10).send, []);
  assert.equal(core.ackDeadline(), 110);
  assert.equal(core.pollAck(109), null);
  assert.equal(core.pollAck(110), "\u0000ack 1");
  assert.equal(core.ackDeadline(), null);
  core.receive("2", 200);
  core.receive("3", 201);
  assert.deepEqual(core.receive("4", 202).send, ["\u0000ack 4"]);
  core.receive("5", 300);
  assert.equal(core.probe(7), "\u0000ping 7 5", "a probe reports the count");
  assert.equal(core.ackDeadline(), null, "and so resets the schedule");
  core.send("mine");
  assert.deepEqual(core.receive("\u0000pong 7 1", 301), { send: [], pong: "7", finished: false });
  assert.equal(core.replay.length, 0, "the pong's count acknowledged it");
  assert.deepEqual(core.receive("\u0000ping 9 1", 302).send, ["\u0000pong 9 5"]);
});

test("the replay buffer: at the limit it holds, one past it the session is lost (overflow)", () => {
  const core = new SessionCore({ maxMessages: 3, maxBytes: 10 });
  for (const m of ["aa", "bb", "cc"]) core.send(m);
  assert.equal(core.lost, null, "3 messages, 6 bytes: at the count limit");
  core.send("d");
  assert.equal(core.lost.reason, LOST.OVERFLOW);
  assert.equal(core.lost.sent, 3);
  assert.deepEqual(core.lostMessage(), { message: "\u0000lost overflow", code: LOST_CLOSE_CODES.overflow });
  const bytes = new SessionCore({ maxMessages: 100, maxBytes: 10 });
  bytes.send("0123456789");
  assert.equal(bytes.lost, null, "10 bytes: at the byte limit");
  bytes.send("x");
  assert.equal(bytes.lost.reason, LOST.OVERFLOW);
});

test("impossible or malformed control messages lose the session (protocol), never a gap", () => {
  const attached = (c) => c.receive(`\u0000session ${ID} 0`, 0);
  const cases = [
    ["data before the session", (c) => c.receive("early", 0)],
    ["an ack beyond what was sent", (c) => (attached(c), c.receive("\u0000ack 1", 0))],
    ["a count that goes down", (c) => (attached(c), c.send("a"), c.receive("\u0000ack 1", 0), c.receive("\u0000ack 0", 0))],
    ["a session count beyond what was sent", (c) => c.receive(`\u0000session ${ID} 5`, 0)],
    ["a second session answer", (c) => (attached(c), c.receive(`\u0000session ${ID} 0`, 0))],
    ["another id on resume", (c) => (attached(c), c.detach(), c.hello(), c.receive(`\u0000session ${OTHER} 0`, 0))],
    ["an ack before the session", (c) => c.receive("\u0000ack 0", 0)],
    ["a new from the server", (c) => (attached(c), c.receive("\u0000new", 0))],
    ["data after the server's end", (c) => (attached(c), c.receive("\u0000end 0", 0), c.receive("late", 0))],
  ];
  for (const [name, run] of cases) {
    const core = new SessionCore();
    core.hello();
    run(core);
    assert.equal(core.lost?.reason, LOST.PROTOCOL, name);
    assert.equal(core.lostMessage().code, 4005, name);
  }
  const told = new SessionCore();
  told.receive("\u0000lost expired", 0);
  assert.equal(told.lost.reason, LOST.EXPIRED);
  assert.equal(told.lostMessage(), null, "the server said it: nothing to tell it");
  const closed = new SessionCore();
  assert.equal(closed.onClose(4006), true);
  assert.equal(closed.lost.reason, LOST.REPLACED, "a lost code without the message");
  assert.equal(new SessionCore().onClose(1006), false, "a cut is not a loss");
});

test("the end: both sides end, everything acknowledged, then finished", () => {
  const core = new SessionCore();
  core.hello();
  core.receive(`\u0000session ${ID} 0`, 0);
  core.send("last");
  assert.equal(core.end(), "\u0000end 0");
  assert.equal(core.send("too late"), null);
  let out = core.receive("\u0000end 1", 1);
  assert.equal(out.ended, true);
  assert.deepEqual(out.send, ["\u0000ack 0"], "acked at once");
  assert.equal(out.finished, true, "the end's count covered 'last'");
  const cut = new SessionCore();
  cut.hello();
  cut.receive(`\u0000session ${ID} 0`, 0);
  cut.send("x");
  cut.end();
  cut.detach();
  cut.hello();
  out = cut.receive(`\u0000session ${ID} 0`, 0);
  assert.deepEqual(out.send, ["x", "\u0000end 0"], "the end is resent after the replay");
});

test("socket: hello first, nothing else until the session answers, then the replay in order", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: true, random: () => 0 });
  const sessions = events(socket, "session");
  const messages = events(socket, "message");
  assert.deepEqual(sockets[0].protocols, [SESSION_PROTOCOL]);
  socket.send("one");
  sockets[0].serverOpens();
  socket.send("two");
  assert.deepEqual(sockets[0].sent, ["\u0000new"]);
  sockets[0].serverSends(`\u0000session ${ID} 0`);
  assert.deepEqual(sockets[0].sent, ["\u0000new", "one", "two"]);
  socket.send("three");
  sockets[0].serverSends("ping 1");
  assert.deepEqual(messages.map((m) => m.data), ["ping 1"], "inside a session, ping 1 is data");
  clock.advance(SESSION_DEFAULTS.ackDelay);
  assert.equal(sockets[0].sent.at(-1), "\u0000ack 1");
  sockets[0].serverSends("\u0000ack 1");
  // The cut: the server got "one" only.
  sockets[0].serverCloses(1006);
  clock.advance(60000);
  sockets[1].serverOpens();
  assert.deepEqual(sockets[1].sent, [`\u0000resume ${ID} 1`]);
  sockets[1].serverSends(`\u0000session ${ID} 1`);
  assert.deepEqual(sockets[1].sent.slice(1), ["two", "three"]);
  assert.equal(sessions.length, 2);
  assert.deepEqual(sessions[1], { id: ID, resumed: true, resent: 2, received: 1, acked: 1 });
});

test("socket: an unanswered hello counts as a dead link, and the next connection resumes", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: true, random: () => 0 });
  sockets[0].serverOpens();
  clock.advance(SESSION_DEFAULTS.handshakeTimeout - 1);
  assert.equal(sockets.length, 1);
  clock.advance(1);
  assert.equal(sockets[0].closedWith.code, 4000);
  clock.advance(1);
  assert.equal(sockets.length, 2, "reconnected");
});

test("socket: a lost session is reported once and the socket stops for good", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: true });
  const lost = events(socket, "lost");
  sockets[0].serverOpens();
  sockets[0].serverSends(`\u0000session ${ID} 0`);
  socket.send("kept");
  sockets[0].serverSends("\u0000lost expired");
  assert.deepEqual(lost, [{ reason: LOST.EXPIRED, id: ID, sent: 1, acked: 0, received: 0, ours: false }]);
  assert.equal(socket.state, "closed");
  assert.equal(socket.send("after"), false);
  clock.advance(600000);
  assert.equal(sockets.length, 1, "no reconnection");
});

test("socket: a close with a lost code ends the session; overflow tells the server", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: { maxMessages: 1 } });
  const lost = events(socket, "lost");
  sockets[0].serverOpens();
  sockets[0].serverSends(`\u0000session ${ID} 0`);
  assert.equal(socket.send("one"), true);
  assert.equal(socket.send("two"), false);
  assert.equal(lost[0].reason, LOST.OVERFLOW);
  assert.equal(sockets[0].sent.at(-1), "\u0000lost overflow");
  assert.equal(sockets[0].closedWith.code, 4003);

  const other = new TetherSocket("ws://y/", { WebSocket: FakeWebSocket, clock, session: true });
  const replaced = events(other, "lost");
  sockets[1].serverOpens();
  sockets[1].serverSends(`\u0000session ${ID} 0`);
  sockets[1].serverCloses(4006);
  assert.equal(replaced[0].reason, LOST.REPLACED);
  clock.advance(600000);
  assert.equal(sockets.length, 2, "no reconnection");
});

test("socket: a server without sessions is reported as unsupported", () => {
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock: new FakeClock(), session: true });
  const lost = events(socket, "lost");
  sockets[0].serverOpens("");
  assert.equal(lost[0].reason, LOST.UNSUPPORTED);
  assert.deepEqual(sockets[0].sent, []);
});

test("socket: the heartbeat probes inside the session and reads the pong's count", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", {
    WebSocket: FakeWebSocket,
    clock,
    session: true,
    heartbeat: { interval: 1000, timeout: 500, missesToDead: 2 },
    random: () => 0,
  });
  const rtts = events(socket, "rtt");
  sockets[0].serverOpens();
  sockets[0].serverSends(`\u0000session ${ID} 0`);
  socket.send("m");
  clock.advance(1000);
  const probe = sockets[0].sent.at(-1);
  assert.match(probe, /^\u0000ping \d+ 0$/);
  clock.advance(20);
  sockets[0].serverSends(probe.replace("ping", "pong").replace(/ 0$/, " 1"));
  assert.deepEqual(rtts, [{ rtt: 20 }]);
  assert.equal(socket.session.replay.length, 0, "the pong acknowledged m");
  clock.advance(1000 + 500 + 1000 + 500);
  assert.equal(sockets[0].closedWith.code, 4000, "unanswered probes: the link is dead");
});

test("socket: end() finishes once the server has everything and has ended too", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = sessionWebSockets();
  const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: true });
  const ended = events(socket, "ended");
  sockets[0].serverOpens();
  sockets[0].serverSends(`\u0000session ${ID} 0`);
  socket.send("bye");
  socket.end();
  assert.equal(sockets[0].sent.at(-1), "\u0000end 0");
  sockets[0].serverSends("echo bye");
  sockets[0].serverSends("\u0000end 1");
  assert.equal(ended.length, 1);
  assert.equal(socket.state, "closed");
  assert.equal(sockets[0].closedWith.code, 1000);
});

/**
 * A model of the server's half, over a link the test cuts at random: it proves the client
 * keeps exactly-once order through any schedule of cuts, for 200 seeds.
 */
test("random cuts: both directions arrive exactly once and in order", () => {
  for (let seed = 1; seed <= 200; seed++) {
    let state = seed;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const clock = new FakeClock();
    const { FakeWebSocket, sockets } = sessionWebSockets();
    const socket = new TetherSocket("ws://x/", { WebSocket: FakeWebSocket, clock, session: true, random });
    const got = [];
    socket.addEventListener("message", (e) => got.push(e.detail.data));
    // The server: its count of the client's messages, what it received, its own replay.
    const server = { received: 0, got: [], acked: 0, replay: [] };
    const report = (n) => {
      server.replay.splice(0, n - server.acked);
      server.acked = n;
    };
    const N = 60;
    let clientNext = 0;
    let serverNext = 0;
    let read = 0; // how many client frames of the current socket the server has read
    for (let step = 0; step < 3000 && (server.got.length < N || got.length < N); step++) {
      const ws = sockets.at(-1);
      const r = random();
      if (ws.readyState === 0) {
        ws.serverOpens();
        read = 0;
      } else if (ws.readyState === 3) {
        clock.advance(31000);
      } else if (r < 0.05) {
        ws.serverCloses(1006); // the cut: frames the server has not read are gone
      } else if (r < 0.35 && clientNext < N) {
        socket.send(`c${clientNext++}`);
      } else if (r < 0.6 && serverNext < N) {
        const m = `s${serverNext++}`;
        server.replay.push(m);
        if (ws.attached) ws.serverSends(m);
      } else if (read < ws.sent.length) {
        const d = decodeMessage(ws.sent[read++]);
        const c = d.control;
        if (c?.verb === "new" || c?.verb === "resume") {
          report(c.verb === "resume" ? c.count : 0);
          ws.attached = true;
          ws.serverSends(`\u0000session ${ID} ${server.received}`);
          for (const m of server.replay) ws.serverSends(m);
        } else if (c?.verb === "ping") {
          report(c.count);
          ws.serverSends(`\u0000pong ${c.nonce} ${server.received}`);
        } else if (c) {
          report(c.count);
        } else {
          server.received++;
          server.got.push(d.data);
          if (server.received % 5 === 0) ws.serverSends(`\u0000ack ${server.received}`);
        }
      } else {
        clock.advance(250);
      }
    }
    const expect = (prefix) => Array.from({ length: N }, (_, i) => `${prefix}${i}`);
    assert.deepEqual(server.got, expect("c"), `seed ${seed}: client to server`);
    assert.deepEqual(got, expect("s"), `seed ${seed}: server to client`);
    assert.equal(socket.session.lost, null, `seed ${seed}`);
  }
});
