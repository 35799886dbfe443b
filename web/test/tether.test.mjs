// Unit tests of tether.js under Node's test runner (`node --test web/test/tether.test.mjs`), on a fake clock
// and a scripted WebSocket: the backoff bounds, the heartbeat verdicts, the outbox bounds,
// and the socket's reconnect and fatal-close behaviour.

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Backoff,
  CLOSE,
  DEFAULTS,
  Heartbeat,
  Outbox,
  TetherSocket,
  classify,
  probeText,
  retryDecision,
} from "../tether.js";
import { FakeClock, events, fakeWebSockets } from "./fakes.mjs";

test("probe text and classification match the Rust StringProbe", () => {
  assert.equal(probeText(7), "ping 7");
  assert.deepEqual(classify("pong 7"), { pong: "7" });
  assert.deepEqual(classify("pong"), { pong: null });
  assert.deepEqual(classify("pong x"), { pong: null });
  assert.deepEqual(classify("ping 3"), { ping: true });
  assert.equal(classify("pings"), null);
  assert.equal(classify("hello"), null);
});

test("backoff: full jitter inside a doubling window, capped, reset after the minimum uptime", () => {
  const config = { initialDelay: 100, maxDelay: 1000, minUptime: 5000 };
  const top = new Backoff(config, () => 0.999999);
  const windows = Array.from({ length: 6 }, () => top.nextDelay());
  assert.deepEqual(windows.map(Math.round), [100, 200, 400, 800, 1000, 1000]);
  const bottom = new Backoff(config, () => 0);
  assert.equal(bottom.nextDelay(), 0);
  assert.equal(bottom.nextDelay(250), 250, "a server's floor is kept");
  assert.equal(bottom.nextDelay(10 ** 9), DEFAULTS.reconnect.maxRetryAfter, "floor capped");
  bottom.onConnected(0);
  bottom.onDisconnected(4999);
  assert.equal(bottom.attempt, 3, "up less than minUptime: no reset");
  bottom.onConnected(10000);
  bottom.onDisconnected(15000);
  assert.equal(bottom.attempt, 0, "up minUptime: reset");
});

test("retry decisions: fatal codes stop, 1012/1013 and hints set a floor", () => {
  for (const code of [1002, 1003, 1007, 1008, 1009, 1010]) {
    assert.equal(retryDecision(code, "").retry, false, `code ${code}`);
  }
  assert.deepEqual(retryDecision(1006, ""), { retry: true, floor: 0 });
  assert.deepEqual(retryDecision(1013, ""), { retry: true, floor: 5000 });
  assert.deepEqual(retryDecision(1001, "restarting; retry-after=30"), { retry: true, floor: 30000 });
  assert.deepEqual(retryDecision(1000, "retry-after=999999"), { retry: true, floor: 300000 });
  assert.deepEqual(retryDecision(1000, "noretry-after=5"), { retry: true, floor: 0 });
});

test("heartbeat: suspect after one miss, dead after two, healthy again on an answer", () => {
  const hb = new Heartbeat({ interval: 1000, timeout: 500, missesToDead: 2 }, 0);
  assert.equal(hb.poll(999), null);
  assert.equal(hb.poll(1000), "ping 1");
  assert.equal(hb.deadline(), 1500);
  assert.equal(hb.poll(1500), null);
  assert.equal(hb.health, "suspect");
  assert.equal(hb.poll(2000), "ping 2");
  assert.equal(hb.onPong("1", 2100), null, "a stale nonce proves nothing");
  assert.equal(hb.onPong("2", 2100), 100);
  assert.equal(hb.health, "healthy");
  assert.equal(hb.poll(3000), "ping 3");
  hb.poll(3500);
  assert.equal(hb.poll(4000), "ping 4");
  hb.poll(4500);
  assert.equal(hb.health, "dead");
  assert.equal(hb.poll(5000), null, "no probes once dead");
});

test("outbox: count, bytes and age bounds, refusal reported", () => {
  const box = new Outbox({ maxMessages: 2, maxBytes: 8, maxAge: 100 });
  assert.equal(box.push("abcd", 0), true);
  assert.equal(box.push("é", 0), true, "2 bytes");
  assert.equal(box.push("x", 0), false, "count limit");
  const bytes = new Outbox({ maxMessages: 10, maxBytes: 8, maxAge: 100 });
  assert.equal(bytes.push("12345678", 0), true, "at the byte limit");
  assert.equal(bytes.push("9", 0), false, "one past");
  assert.deepEqual(box.drain(101), { fresh: [], expired: 2 });
});

test("socket: a silent server makes the link suspect, then dead, then it reconnects within the jittered bound", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSockets();
  const socket = new TetherSocket("ws://test/", {
    WebSocket: FakeWebSocket,
    clock,
    random: () => 0.5,
    heartbeat: { interval: 1000, timeout: 400 },
    reconnect: { initialDelay: 200, maxDelay: 1000 },
  });
  const states = events(socket, "state");
  const reconnects = events(socket, "reconnect");
  const rtts = events(socket, "rtt");
  sockets[0].serverOpens();
  clock.advance(1000);
  assert.deepEqual(sockets[0].sent, ["ping 1"]);
  clock.advance(50);
  sockets[0].serverSends("pong 1");
  assert.deepEqual(rtts, [{ rtt: 50 }]);
  // The server stops answering: one miss is suspect, two are dead (interval + 2 x timeout
  // after the last answer at most).
  clock.advance(950 + 400);
  assert.equal(socket.state, "suspect");
  clock.advance(600 + 400);
  assert.deepEqual(
    states.map((s) => s.state),
    ["open", "suspect", "dead", "reconnecting"],
  );
  assert.equal(sockets[0].closedWith.code, 4000);
  assert.deepEqual(reconnects, [{ attempt: 1, delay: 100 }], "half of the 200 ms window");
  clock.advance(99);
  assert.equal(sockets.length, 1);
  clock.advance(1);
  assert.equal(sockets.length, 2, "connects again after the delay");
});

test("socket: messages sent while disconnected go out in order after the reconnect", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSockets();
  const socket = new TetherSocket("ws://test/", { WebSocket: FakeWebSocket, clock, random: () => 0 });
  sockets[0].serverOpens();
  socket.send("a");
  sockets[0].serverCloses(CLOSE.GOING_AWAY, "");
  assert.equal(socket.send("b"), true);
  assert.equal(socket.send("c"), true);
  clock.advance(0);
  sockets[1].serverOpens();
  socket.send("d");
  assert.deepEqual(sockets[0].sent, ["a"]);
  assert.deepEqual(sockets[1].sent, ["b", "c", "d"]);
});

test("socket: a fatal close code stops reconnecting; close() stops it too", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSockets();
  const socket = new TetherSocket("ws://test/", { WebSocket: FakeWebSocket, clock });
  const closes = events(socket, "close");
  sockets[0].serverOpens();
  sockets[0].serverCloses(CLOSE.POLICY_VIOLATION, "origin");
  clock.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(socket.state, "closed");
  assert.deepEqual(closes, [{ code: 1008, reason: "origin", fatal: true }]);
  assert.equal(socket.send("late"), false);

  const other = new TetherSocket("ws://test/", { WebSocket: FakeWebSocket, clock });
  sockets[1].serverOpens();
  other.close();
  sockets[1].serverCloses(CLOSE.NORMAL, "");
  clock.advance(60000);
  assert.equal(sockets.length, 2, "no reconnection after close()");
});

test("socket: the outbox bound is reported, never silent", () => {
  const clock = new FakeClock();
  const { FakeWebSocket } = fakeWebSockets();
  const socket = new TetherSocket("ws://test/", {
    WebSocket: FakeWebSocket,
    clock,
    outbox: { maxMessages: 1 },
  });
  const overflows = events(socket, "overflow");
  assert.equal(socket.send("kept"), true);
  assert.equal(socket.send("refused"), false);
  assert.deepEqual(overflows, [{ refused: 1, expired: 0 }]);
});

test("socket: the server's probes are answered and never shown as messages", () => {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSockets();
  const socket = new TetherSocket("ws://test/", { WebSocket: FakeWebSocket, clock });
  const messages = events(socket, "message");
  sockets[0].serverOpens();
  sockets[0].serverSends("ping 9");
  sockets[0].serverSends("hello");
  assert.deepEqual(sockets[0].sent, ["pong 9"]);
  assert.deepEqual(messages, [{ data: "hello" }]);
});
