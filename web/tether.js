// tether.js: Tether's browser client. One ES module, no dependencies.
//
// A browser cannot send WebSocket Ping frames, so the page keeps the link alive the way the
// tutorial says: it sends an agreed text message (`ping <nonce>`) on a timer, the server
// answers at once (`pong <nonce>`), and no answer in time means the link is dead: close it
// and connect again. `tether serve --heartbeat` answers these probes.
//
//   import { TetherSocket } from "/tether.js";
//   const ws = new TetherSocket("ws://127.0.0.1:9001/");
//   ws.addEventListener("message", (e) => console.log(e.detail.data));
//
// The semantics and defaults are those of the Rust crate tether-heartbeat
// (KeepaliveConfig, ReconnectConfig, OutboxConfig, DefaultRetryPolicy, StringProbe); a Rust
// test (tests/it/web.rs) reads the constants below and fails when the two drift apart.
// The pieces are plain classes with the clock passed in (Heartbeat, Backoff, Outbox), so
// they are tested under Node with a fake clock (web/test/tether.test.mjs).
//
// With `{ session: true }` the socket speaks Tether's session protocol (session.js,
// docs/sessions.md): what is sent survives reconnects, exactly once and in order, or the
// socket reports the session lost.

import { LOST, SESSION_PROTOCOL, SessionCore } from "./session.js";

export { LOST, SESSION_PROTOCOL } from "./session.js";

/** The agreed probe: `ping <nonce>` answered by `pong <nonce>` (tether-heartbeat StringProbe). */
export const PROBE = Object.freeze({ ping: "ping", pong: "pong" });

/** Close codes (RFC 6455 section 7.4.1) the client treats specially. */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
});

/**
 * Closes after which connecting again cannot help: the server found fault with what this
 * side sent (DefaultRetryPolicy's fatal codes). Every other close is retried.
 */
export const FATAL_CLOSE_CODES = Object.freeze([1002, 1003, 1007, 1008, 1009, 1010]);

/** Defaults, in milliseconds and bytes, equal to the Rust defaults. */
export const DEFAULTS = Object.freeze({
  heartbeat: Object.freeze({
    interval: 20000, // KeepaliveConfig::interval
    timeout: 10000, // KeepaliveConfig::pong_timeout
    missesToDead: 2, // KeepaliveConfig::misses_to_dead
  }),
  reconnect: Object.freeze({
    initialDelay: 1000, // ReconnectConfig::initial_delay
    maxDelay: 30000, // ReconnectConfig::max_delay
    minUptime: 10000, // ReconnectConfig::min_uptime
    restartFloor: 5000, // ReconnectConfig::restart_floor (after 1012 and 1013)
    maxRetryAfter: 300000, // ReconnectConfig::max_retry_after
  }),
  outbox: Object.freeze({
    maxMessages: 1024, // OutboxConfig::max_messages
    maxBytes: 1048576, // OutboxConfig::max_bytes
    maxAge: 60000, // OutboxConfig::max_age
  }),
});

/** The probe text for `nonce`. */
export function probeText(nonce) {
  return `${PROBE.ping} ${nonce}`;
}

/**
 * What a received text is: `{ pong: nonce }` for an answer to a probe (nonce is a string
 * of digits, or null for a bare `pong`), `{ ping: true }` for a probe from the peer, or
 * `null` for application data. Words must be whole: `pings` is data.
 */
export function classify(text) {
  if (typeof text !== "string") return null;
  const after = (word) => {
    if (!text.startsWith(word)) return undefined;
    const rest = text.slice(word.length);
    if (rest === "") return null;
    return rest.startsWith(" ") ? rest.slice(1) : undefined;
  };
  const pong = after(PROBE.pong);
  if (pong !== undefined) return { pong: pong !== null && /^\d+$/.test(pong) ? pong : null };
  if (after(PROBE.ping) !== undefined) return { ping: true };
  return null;
}

/**
 * A hint from the server in a close reason: `retry-after=<seconds>` anywhere in it. The
 * delay in ms, or null. (The Rust server says it with an HTTP Retry-After header before the
 * upgrade, which a browser cannot read; after the upgrade only the close reason reaches a
 * page.)
 */
export function retryAfterHint(reason) {
  const match = /(?:^|[\s;,])retry-after=(\d{1,6})(?:$|[\s;,])/i.exec(reason || "");
  return match ? Number(match[1]) * 1000 : null;
}

/**
 * Whether to connect again after a close with `code` and `reason`, and no sooner than
 * `floor` ms: `{ retry, floor }`. DefaultRetryPolicy's rules.
 */
export function retryDecision(code, reason, config = DEFAULTS.reconnect) {
  if (FATAL_CLOSE_CODES.includes(code)) return { retry: false, floor: 0 };
  let floor = 0;
  if (code === CLOSE.SERVICE_RESTART || code === CLOSE.TRY_AGAIN_LATER) floor = config.restartFloor;
  const hint = retryAfterHint(reason);
  if (hint !== null) floor = Math.max(floor, hint);
  return { retry: true, floor: Math.min(floor, config.maxRetryAfter) };
}

/**
 * Exponential backoff with full jitter: the delay of attempt n is uniform in
 * [0, min(initialDelay * 2^n, maxDelay)], at least the floor a server asked for (capped at
 * maxRetryAfter). A connection that stays up minUptime starts it over.
 */
export class Backoff {
  constructor(config = DEFAULTS.reconnect, random = Math.random) {
    this.config = { ...DEFAULTS.reconnect, ...config };
    this.random = random;
    this.attempt = 0;
    this.connectedAt = null;
  }

  /** The largest delay the next attempt may get (before a floor). */
  window() {
    const { initialDelay, maxDelay } = this.config;
    return Math.min(initialDelay * 2 ** Math.min(this.attempt, 30), maxDelay);
  }

  /** The delay before the next attempt; counts it. */
  nextDelay(floor = 0) {
    const delay = this.window() * this.random();
    this.attempt += 1;
    return Math.max(delay, Math.min(floor, this.config.maxRetryAfter));
  }

  onConnected(now) {
    this.connectedAt = now;
  }

  onDisconnected(now) {
    if (this.connectedAt !== null && now - this.connectedAt >= this.config.minUptime) {
      this.attempt = 0;
    }
    this.connectedAt = null;
  }
}

/**
 * The heartbeat's bookkeeping, sans I/O: when to probe, and whether the peer is healthy,
 * suspect (one probe unanswered) or dead (missesToDead in a row). Any message from the peer
 * counts as activity for the probes sent before it (KeepaliveConfig's Activity verdict).
 */
export class Heartbeat {
  constructor(config = DEFAULTS.heartbeat, now = 0) {
    this.config = { ...DEFAULTS.heartbeat, ...config };
    this.nonce = 0;
    this.outstanding = null; // { nonce, sentAt }
    this.misses = 0;
    this.nextProbeAt = now + this.config.interval;
    this.lastRtt = null;
  }

  /** "healthy", "suspect" or "dead". */
  get health() {
    if (this.misses >= this.config.missesToDead) return "dead";
    return this.misses > 0 ? "suspect" : "healthy";
  }

  /** When `poll` next needs to run. */
  deadline() {
    if (this.outstanding) return Math.min(this.outstanding.sentAt + this.config.timeout, this.nextProbeAt);
    return this.nextProbeAt;
  }

  /**
   * Advances to `now`: a probe unanswered past the timeout is a miss; returns the probe text
   * to send when one is due, else null.
   */
  poll(now) {
    if (this.outstanding && now >= this.outstanding.sentAt + this.config.timeout) {
      this.outstanding = null;
      this.misses += 1;
    }
    if (this.health === "dead" || now < this.nextProbeAt || this.outstanding) return null;
    this.nonce += 1;
    this.outstanding = { nonce: String(this.nonce), sentAt: now };
    this.nextProbeAt = now + this.config.interval;
    return probeText(this.nonce);
  }

  /** A pong arrived: the round-trip time in ms if it answers the outstanding probe. */
  onPong(nonce, now) {
    if (!this.outstanding || nonce !== this.outstanding.nonce) return null;
    const rtt = now - this.outstanding.sentAt;
    this.outstanding = null;
    this.misses = 0;
    this.lastRtt = rtt;
    return rtt;
  }

  /** Any other message from the peer: it is there. */
  onActivity() {
    if (this.health !== "dead") this.misses = 0;
  }
}

/** Size of a message as the outbox counts it: UTF-8 bytes of text, bytes of binary. */
export function messageSize(data) {
  if (typeof data === "string") return new TextEncoder().encode(data).length;
  if (data instanceof Blob) return data.size;
  return data.byteLength ?? 0;
}

/**
 * Messages sent while disconnected, bounded by count, bytes and age. A message that does not
 * fit is refused (push returns false and the socket reports it); expired ones are dropped
 * and counted. Never silent.
 */
export class Outbox {
  constructor(config = DEFAULTS.outbox) {
    this.config = { ...DEFAULTS.outbox, ...config };
    this.queue = [];
    this.bytes = 0;
  }

  get length() {
    return this.queue.length;
  }

  /** Accepts `data` at `now`: true, or false when it does not fit. */
  push(data, now) {
    this.expire(now);
    const size = messageSize(data);
    const { maxMessages, maxBytes } = this.config;
    if (this.queue.length >= maxMessages || this.bytes + size > maxBytes) return false;
    this.queue.push({ data, size, at: now });
    this.bytes += size;
    return true;
  }

  /** Drops what is older than maxAge; returns how many. */
  expire(now) {
    let dropped = 0;
    while (this.queue.length && now - this.queue[0].at > this.config.maxAge) {
      this.bytes -= this.queue.shift().size;
      dropped += 1;
    }
    return dropped;
  }

  /** Takes every message still fresh at `now`, oldest first. */
  drain(now) {
    const expired = this.expire(now);
    const fresh = this.queue.map((entry) => entry.data);
    this.queue = [];
    this.bytes = 0;
    return { fresh, expired };
  }
}

/** The browser's clock, for TetherSocket. */
const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * A WebSocket that keeps itself alive and connected.
 *
 * Events (CustomEvent, details in `e.detail`):
 * - `state`: `{ state }`, one of "connecting", "open", "suspect", "dead", "reconnecting",
 *   "closed";
 * - `message`: `{ data }` for each application message (probes and pongs are not shown);
 * - `rtt`: `{ rtt }` in ms, for each answered probe;
 * - `reconnect`: `{ attempt, delay }` before each new attempt;
 * - `overflow`: `{ refused, expired }` when the outbox refused or dropped messages;
 * - `close`: `{ code, reason, fatal }` for every closed connection.
 *
 * With the `session` option (`true`, or SESSION_DEFAULTS overrides) the socket speaks
 * `tether.session.v1` (docs/sessions.md): sent messages wait in the session's replay buffer
 * (not the outbox) until the server's count covers them, are resent after a reconnect, and
 * arrive exactly once and in order. Then also:
 * - `session`: `{ id, resumed, resent, received, acked }` each time the server attaches a
 *   connection to the session (`resent`: messages sent again after a cut);
 * - `ended`: `{}` when the server said it sends no more;
 * - `lost`: `{ reason, id, sent, acked, received, ours }` when the session ends (LOST); the
 *   socket then stops for good, and a new TetherSocket starts a new session.
 * `end()` finishes the session gracefully: no more sends, closed once the server has
 * everything and has ended too.
 *
 * Options: `heartbeat`, `reconnect` (plus `maxRetries`, default unlimited), `outbox` (see
 * DEFAULTS), `protocols`, `session`, and for tests `WebSocket`, `clock`, `random`.
 */
export class TetherSocket extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = options;
    this.clock = options.clock || systemClock;
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    this.backoff = new Backoff(options.reconnect, options.random || Math.random);
    this.maxRetries = options.reconnect?.maxRetries ?? Infinity;
    this.outbox = new Outbox(options.outbox);
    this.session = options.session ? new SessionCore(options.session === true ? {} : options.session) : null;
    this.state = "connecting";
    this.ws = null;
    this.heartbeat = null;
    this.timer = null;
    this.ackTimer = null;
    this.stopped = false;
    this.open();
  }

  /**
   * Sends now if connected, else keeps it (in the outbox, or the session's replay buffer);
   * false if it was refused.
   */
  send(data) {
    if (this.stopped) return false;
    if (this.session) {
      const wire = this.session.send(data);
      if (this.session.lost) {
        this.endSession();
        return false;
      }
      if (wire !== null && this.isOpen()) this.ws.send(wire);
      return !this.session.ending;
    }
    if (this.isOpen() && this.outbox.length === 0) {
      this.ws.send(data);
      return true;
    }
    const accepted = this.outbox.push(data, this.clock.now());
    if (!accepted) this.emit("overflow", { refused: 1, expired: 0 });
    return accepted;
  }

  /** Ends the session gracefully (session mode): see the class comment. */
  end() {
    if (!this.session || this.stopped) return;
    const wire = this.session.end();
    if (wire !== null && this.isOpen()) this.ws.send(wire);
  }

  /** Closes for good: no reconnection (a session is left to expire on the server). */
  close(code = CLOSE.NORMAL, reason = "") {
    this.stopped = true;
    this.clearTimer();
    this.clearAckTimer();
    if (this.ws && this.ws.readyState <= 1) this.ws.close(code, reason);
    this.setState("closed");
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === 1;
  }

  open() {
    this.setState(this.backoff.attempt === 0 ? "connecting" : "reconnecting");
    const protocols = this.session
      ? [SESSION_PROTOCOL, ...(this.options.protocols || [])]
      : this.options.protocols;
    const ws = new this.WebSocketImpl(this.url, protocols);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (event) => this.onMessage(ws, event.data);
    ws.onclose = (event) => this.onClose(ws, event.code, event.reason);
  }

  onOpen(ws) {
    if (ws !== this.ws) return;
    const now = this.clock.now();
    this.backoff.onConnected(now);
    if (this.session) {
      this.openSession(ws);
      return;
    }
    this.heartbeat = new Heartbeat(this.options.heartbeat, now);
    this.setState("open");
    const { fresh, expired } = this.outbox.drain(now);
    if (expired) this.emit("overflow", { refused: 0, expired });
    for (const data of fresh) ws.send(data);
    this.schedule();
  }

  onMessage(ws, data) {
    if (ws !== this.ws) return;
    if (this.session) {
      this.onSessionMessage(ws, data);
      return;
    }
    if (!this.heartbeat) return;
    const now = this.clock.now();
    const kind = classify(data);
    if (kind && kind.pong !== undefined) {
      this.onPong(kind.pong, now);
    } else {
      this.heartbeat.onActivity();
      if (kind && kind.ping) {
        ws.send(`${PROBE.pong}${data.slice(PROBE.ping.length)}`);
        return;
      }
      this.emit("message", { data });
    }
    this.syncHealth();
  }

  onPong(nonce, now) {
    const rtt = nonce === null ? null : this.heartbeat.onPong(nonce, now);
    if (rtt !== null) this.emit("rtt", { rtt });
  }

  // ---- sessions (docs/sessions.md) --------------------------------------------------------

  /**
   * A new connection in session mode: the hello first and nothing else; the heartbeat starts
   * once the server answers, and an answer that does not come in time counts as a dead link.
   */
  openSession(ws) {
    if (ws.protocol !== SESSION_PROTOCOL) {
      this.session.lose(LOST.UNSUPPORTED, false);
      this.endSession();
      return;
    }
    this.setState("open");
    ws.send(this.session.hello());
    this.clearTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.dropLink("session handshake timeout");
    }, this.session.config.handshakeTimeout);
  }

  /** A message in session mode: every one is activity; probes are the session's own (§9). */
  onSessionMessage(ws, data) {
    const now = this.clock.now();
    this.heartbeat?.onActivity();
    const out = this.session.receive(data, now);
    for (const wire of out.send) ws.send(wire);
    if (out.session) {
      this.heartbeat = new Heartbeat(this.options.heartbeat, now);
      this.emit("session", out.session);
      this.schedule();
    }
    if (out.pong !== undefined && this.heartbeat) this.onPong(out.pong, now);
    if (out.deliver !== undefined) this.emit("message", { data: out.deliver });
    if (out.ended) this.emit("ended", {});
    if (this.session.lost) {
      this.endSession();
      return;
    }
    if (out.finished) {
      this.close(CLOSE.NORMAL, "session ended");
      return;
    }
    this.scheduleAck();
    if (this.heartbeat) this.syncHealth();
  }

  /** Sends the pending count report when its delay runs out (§5). */
  scheduleAck() {
    const due = this.session.ackDeadline();
    if (due === null || this.ackTimer !== null) return;
    this.ackTimer = this.clock.setTimeout(() => {
      this.ackTimer = null;
      const ack = this.session.pollAck(this.clock.now());
      if (ack && this.isOpen()) this.ws.send(ack);
      else if (!ack) this.scheduleAck();
    }, Math.max(0, due - this.clock.now()));
  }

  /**
   * The session is over: report it once, tell the server when this side ended it, and stop
   * for good.
   */
  endSession() {
    if (this.stopped) return;
    this.emit("lost", this.session.lost);
    const ours = this.session.lostMessage();
    if (ours && this.isOpen()) {
      this.ws.send(ours.message);
      this.close(ours.code, `session lost: ${this.session.lost.reason}`);
    } else {
      this.close(CLOSE.NORMAL, `session lost: ${this.session.lost.reason}`);
    }
  }

  // ---- the link -------------------------------------------------------------------------

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.heartbeat = null;
    this.clearTimer();
    this.clearAckTimer();
    if (this.session && this.session.onClose(code)) {
      this.emit("close", { code, reason, fatal: true });
      this.endSession();
      return;
    }
    const { retry, floor } = retryDecision(code, reason, this.backoff.config);
    this.emit("close", { code, reason, fatal: !retry });
    if (this.stopped) return;
    this.backoff.onDisconnected(this.clock.now());
    if (!retry || this.backoff.attempt >= this.maxRetries) {
      this.stopped = true;
      this.setState("closed");
      return;
    }
    const attempt = this.backoff.attempt + 1;
    const delay = this.backoff.nextDelay(floor);
    this.setState("reconnecting");
    this.emit("reconnect", { attempt, delay });
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  /** Runs the heartbeat at its next deadline. */
  schedule() {
    this.clearTimer();
    if (!this.heartbeat) return;
    const wait = Math.max(0, this.heartbeat.deadline() - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.tick();
    }, wait);
  }

  tick() {
    if (!this.heartbeat || !this.ws) return;
    const probe = this.heartbeat.poll(this.clock.now());
    if (probe) this.ws.send(this.session ? this.session.probe(this.heartbeat.nonce) : probe);
    if (this.syncHealth()) this.schedule();
  }

  /** Mirrors the heartbeat's health in the state; false once the link is declared dead. */
  syncHealth() {
    const health = this.heartbeat.health;
    if (health === "dead") {
      this.setState("dead");
      this.dropLink("heartbeat timeout");
      return false;
    }
    this.setState(health === "suspect" ? "suspect" : "open");
    return true;
  }

  /**
   * Gives up on this connection and reconnects. 4000-range: the application's own code (RFC
   * 6455 section 7.4.2). The browser never sees a close frame back from a dead peer: it
   * reports 1006 on its own, whose retry follows.
   */
  dropLink(why) {
    const ws = this.ws;
    ws.close(4000, why);
    this.onClose(ws, CLOSE.ABNORMAL, why);
  }

  clearTimer() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  clearAckTimer() {
    if (this.ackTimer !== null) this.clock.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
