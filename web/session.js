// session.js: the client side of Tether's session protocol (docs/sessions.md), without I/O.
//
// A session is a stream of messages in each direction that survives reconnects: each side
// counts the data messages it received, acknowledges the count, and keeps what it sent
// until the other side has acknowledged it. On a new connection the client presents its
// session id and its count, the server answers with its own, and both resend what the other
// has not seen, in order, before anything new. What cannot be honoured ends the session with
// a reason, never with a silent gap.
//
// The wire: the subprotocol `tether.session.v1`. A text message whose first character is
// U+0000 is a control message (`\0new`, `\0resume <id> <n>`, `\0session <id> <n>`,
// `\0ack <n>`, `\0lost <reason>`); a data message whose payload begins with a 0x00 byte is
// sent with one more 0x00 in front, which the receiver strips. Every other message is data,
// unchanged.
//
// SessionCore holds the counts and the replay buffer with the clock passed in; TetherSocket
// (tether.js) wires it to a WebSocket. Tested under Node (web/test/session.test.mjs).

/** The subprotocol that says both ends speak sessions. */
export const SESSION_PROTOCOL = "tether.session.v1";

/** Defaults, in milliseconds and bytes, equal to the Rust side's (tether-session). */
export const SESSION_DEFAULTS = Object.freeze({
  ackEvery: 32, // acknowledge after this many data messages...
  ackDelay: 200, // ...or this long after the first one not yet acknowledged
  maxMessages: 1024, // replay buffer: messages sent and not acknowledged
  maxBytes: 8 << 20, // replay buffer: their bytes
});

/** Why a session ended. */
export const LOST = Object.freeze({
  EXPIRED: "expired", // the server dropped it: the resume window passed
  UNKNOWN: "unknown", // the server does not know the id (restarted, or never issued it)
  OVERFLOW: "overflow", // a replay buffer could not hold what was not acknowledged
  LIMIT: "limit", // the server holds too many sessions
  PROTOCOL: "protocol", // a malformed or impossible control message
  UNSUPPORTED: "unsupported", // the server did not select the subprotocol
});

const NUL = "\u0000";
const COUNT = /^(0|[1-9]\d{0,19})$/;
const ID = /^[A-Za-z0-9_-]{22}$/;

/** The size of a message in bytes, for the replay buffer's byte bound. */
export function dataSize(data) {
  if (typeof data === "string") return new TextEncoder().encode(data).length;
  return data.byteLength ?? data.size ?? 0;
}

/** The wire form of a data message: one 0x00 more in front when it begins with 0x00. */
export function encodeData(data) {
  if (typeof data === "string") return data.startsWith(NUL) ? NUL + data : data;
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length === 0 || bytes[0] !== 0) return data;
  const stuffed = new Uint8Array(bytes.length + 1);
  stuffed.set(bytes, 1);
  return stuffed.buffer;
}

/**
 * What a received message is: `{ data }` (unstuffed), `{ control: [verb, ...fields] }`, or
 * `{ error }` for a binary message that begins with a single 0x00 (no sender makes one).
 */
export function decodeMessage(data) {
  if (typeof data === "string") {
    if (!data.startsWith(NUL)) return { data };
    if (data.startsWith(NUL + NUL)) return { data: data.slice(1) };
    return { control: data.slice(1).split(" ") };
  }
  const bytes = new Uint8Array(data);
  if (bytes.length === 0 || bytes[0] !== 0) return { data };
  if (bytes.length >= 2 && bytes[1] === 0) return { data: data.slice(1) };
  return { error: "a binary message begins with a single 0x00" };
}

/** Parses a decimal count; null when it is not one. */
function count(field) {
  if (field === undefined || !COUNT.test(field)) return null;
  const n = Number(field);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The client's half of one session, without I/O: counts, the replay buffer, the ack
 * schedule. Every method that changes something returns what to send, if anything.
 */
export class SessionCore {
  constructor(config = {}) {
    this.config = { ...SESSION_DEFAULTS, ...config };
    this.id = null;
    this.attached = false;
    this.lost = null;
    /** Data messages received from the server on this session. */
    this.received = 0;
    /** Data messages handed to `send`, in all. */
    this.sent = 0;
    /** How many of them the server acknowledged. */
    this.acked = 0;
    /** The unacknowledged ones, oldest first: { data, size }. */
    this.replay = [];
    this.replayBytes = 0;
    /** Received, not yet acknowledged: the count and when the first of them arrived. */
    this.unacked = 0;
    this.unackedSince = null;
  }

  /** The first message on every connection: a new session, or the resume of this one. */
  hello() {
    this.attached = false;
    return this.id === null ? `${NUL}new` : `${NUL}resume ${this.id} ${this.received}`;
  }

  /**
   * Keeps `data` until it is acknowledged. Returns the wire form to send now (attached), or
   * null (it goes out on the next resume). Throws nothing: past the bound the session is
   * lost with `overflow` and `lost` says so.
   */
  send(data) {
    if (this.lost) return null;
    const size = dataSize(data);
    if (this.replay.length + 1 > this.config.maxMessages || this.replayBytes + size > this.config.maxBytes) {
      this.lose(LOST.OVERFLOW);
      return null;
    }
    this.replay.push({ data, size });
    this.replayBytes += size;
    this.sent += 1;
    return this.attached ? encodeData(data) : null;
  }

  /**
   * A received message, after the heartbeat took its probes. Returns
   * `{ deliver?, send: [...], session?, lost? }`: the data to hand to the application, the
   * messages to send (in order), and what happened to the session.
   */
  receive(message, now) {
    const out = { send: [] };
    if (this.lost) return out;
    const decoded = decodeMessage(message);
    if (decoded.error) return this.fail(out);
    if (decoded.data !== undefined) {
      if (!this.attached) return this.fail(out);
      this.received += 1;
      this.unacked += 1;
      if (this.unackedSince === null) this.unackedSince = now;
      out.deliver = decoded.data;
      if (this.unacked >= this.config.ackEvery) out.send.push(this.ack());
      return out;
    }
    const [verb, ...fields] = decoded.control;
    if (verb === "session" && fields.length === 2) return this.onSession(fields, out);
    if (verb === "ack" && fields.length === 1 && this.attached) {
      return this.onAck(count(fields[0])) ? out : this.fail(out);
    }
    if (verb === "lost" && fields.length === 1) {
      out.lost = this.lose(Object.values(LOST).includes(fields[0]) ? fields[0] : LOST.PROTOCOL);
      return out;
    }
    return this.fail(out);
  }

  /** `\0session <id> <n>`: attached; drop what the server has, resend the rest. */
  onSession([id, field], out) {
    const n = count(field);
    if (this.attached || !ID.test(id) || (this.id !== null && id !== this.id) || !this.onAck(n)) {
      return this.fail(out);
    }
    const resumed = this.id !== null;
    this.id = id;
    this.attached = true;
    for (const { data } of this.replay) out.send.push(encodeData(data));
    out.session = { id, resumed, resent: this.replay.length, received: this.received, acked: this.acked };
    return out;
  }

  /** The server has `n` of our messages: forget them. False when `n` is impossible. */
  onAck(n) {
    if (n === null || n < this.acked || n > this.sent) return false;
    const drop = n - this.acked;
    for (const { size } of this.replay.splice(0, drop)) this.replayBytes -= size;
    this.acked = n;
    return true;
  }

  /** The acknowledgement of everything received; resets the schedule. */
  ack() {
    this.unacked = 0;
    this.unackedSince = null;
    return `${NUL}ack ${this.received}`;
  }

  /** When the pending acknowledgement is due (ms on the caller's clock), or null. */
  ackDeadline() {
    return this.unackedSince === null || !this.attached ? null : this.unackedSince + this.config.ackDelay;
  }

  /** The acknowledgement if it is due at `now`, else null. */
  pollAck(now) {
    const due = this.ackDeadline();
    return due !== null && now >= due ? this.ack() : null;
  }

  /** The connection dropped: nothing is acknowledged until the next `\0session`. */
  detach() {
    this.attached = false;
    this.unacked = 0;
    this.unackedSince = null;
  }

  fail(out) {
    out.lost = this.lose(LOST.PROTOCOL);
    return out;
  }

  lose(reason) {
    if (!this.lost) {
      this.lost = { reason, id: this.id, sent: this.sent, acked: this.acked, received: this.received };
      this.attached = false;
    }
    return this.lost;
  }
}
