// session.js: the client side of Tether's session protocol, `tether.session.v1`
// (docs/sessions.md is the whole protocol; section numbers below are its), without I/O.
//
// A session is a stream of messages in each direction that survives reconnects: each side
// counts the data messages it received and reports the count, and keeps what it sent until
// the other side's count covers it. On every connection the client presents its session id
// and its count, the server answers with its own, and both resend what the other lacks, in
// order, before anything new. What cannot be honoured ends the session with a reason, never
// with a silent gap.
//
// SessionCore holds the counts, the replay buffer and the ack schedule, with the clock passed
// in; TetherSocket (tether.js) wires it to a WebSocket. Tested under Node
// (web/test/session.test.mjs); the Rust server's half (`tether serve --sessions`) is not
// built yet, so there is no end-to-end test against it.

/** The subprotocol that says both ends speak sessions (§1). */
export const SESSION_PROTOCOL = "tether.session.v1";

/** Defaults, in milliseconds and bytes (§5, §4). */
export const SESSION_DEFAULTS = Object.freeze({
  ackEvery: 32, // report the count after this many data messages...
  ackBytes: 64 << 10, // ...or this many bytes of them (the protocol asks 256 KiB at most)...
  ackDelay: 200, // ...or this long after the first one not yet reported
  maxMessages: 1024, // replay buffer: messages sent and not acknowledged
  maxBytes: 1 << 20, // replay buffer: their bytes (a Tether server reads 2 MiB ahead)
  handshakeTimeout: 10000, // how long the answer to new/resume may take
});

/** Why a session ended (§6); `unsupported` is local: the server selected no session. */
export const LOST = Object.freeze({
  EXPIRED: "expired",
  UNKNOWN: "unknown",
  OVERFLOW: "overflow",
  LIMIT: "limit",
  PROTOCOL: "protocol",
  REPLACED: "replaced",
  UNSUPPORTED: "unsupported",
});

/**
 * The close code of each reason (§6; 4000-4999 are private use by agreement, RFC 6455
 * section 7.4.2). A page may not send 1002, so its protocol errors close with 4005.
 */
export const LOST_CLOSE_CODES = Object.freeze({
  expired: 4001,
  unknown: 4002,
  overflow: 4003,
  limit: 4004,
  protocol: 4005,
  replaced: 4006,
});

const NUL = "\u0000";
/** The longest control message (§3). */
const MAX_CONTROL = 64;
/** Counts stay exact in a JavaScript number (§3). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;
/** Each verb's fields (§3). */
const FIELDS = Object.freeze({
  new: [],
  resume: ["id", "count"],
  session: ["id", "count"],
  lost: ["reason"],
  ack: ["count"],
  ping: ["nonce", "count"],
  pong: ["nonce", "count"],
  end: ["count"],
});
const SYNTAX = Object.freeze({
  id: /^[A-Za-z0-9_-]{22}$/,
  count: /^(0|[1-9]\d{0,15})$/,
  nonce: /^\d{1,20}$/,
  reason: /^(expired|unknown|overflow|limit|protocol|replaced)$/,
});

/** The size of a message in bytes, for the replay buffer's byte bound. */
export function dataSize(data) {
  if (typeof data === "string") return new TextEncoder().encode(data).length;
  return data.byteLength ?? data.size ?? 0;
}

/** The wire form of a data message: one 0x00 more in front when it begins with 0x00 (§2). */
export function encodeData(data) {
  if (typeof data === "string") return data.startsWith(NUL) ? NUL + data : data;
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
  if (bytes.length === 0 || bytes[0] !== 0) return data;
  const stuffed = new Uint8Array(bytes.length + 1);
  stuffed.set(bytes, 1);
  return stuffed.buffer;
}

/**
 * What a received message is (§2, §3): `{ data }` (unstuffed), `{ control: { verb, ...fields } }`
 * or `{ error }` for anything the grammar refuses.
 */
export function decodeMessage(data) {
  if (typeof data === "string") {
    if (!data.startsWith(NUL)) return { data };
    if (data.startsWith(NUL + NUL)) return { data: data.slice(1) };
    return parseControl(data);
  }
  const bytes = new Uint8Array(data);
  if (bytes.length === 0 || bytes[0] !== 0) return { data };
  if (bytes.length >= 2 && bytes[1] === 0) return { data: data.slice(1) };
  return { error: "a binary message begins with a single 0x00" };
}

/** Parses a control message by the grammar of §3. */
function parseControl(text) {
  if (text.length > MAX_CONTROL) return { error: `a control message over ${MAX_CONTROL} bytes` };
  const [verb, ...fields] = text.slice(1).split(" ");
  const names = Object.hasOwn(FIELDS, verb) ? FIELDS[verb] : null;
  if (!names || names.length !== fields.length) return { error: `not a control message: ${verb}` };
  const control = { verb };
  for (const [i, name] of names.entries()) {
    if (!SYNTAX[name].test(fields[i])) return { error: `bad ${name} in ${verb}` };
    control[name] = name === "count" ? Number(fields[i]) : fields[i];
    if (name === "count" && control.count > MAX_COUNT) return { error: "a count past 2^53 - 1" };
  }
  return { control };
}

/**
 * The client's half of one session, without I/O: counts, the replay buffer, the ack
 * schedule, the end. Methods return what to send; `lost` says when the session is over.
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
    /** How many of them the server reported received. */
    this.acked = 0;
    /** The unacknowledged ones, oldest first: { data, size }. */
    this.replay = [];
    this.replayBytes = 0;
    /** Data messages received and not yet reported, and when the first of them came. */
    this.unreported = 0;
    this.unreportedBytes = 0;
    this.unreportedSince = null;
    /** Whether this side said `end`, and whether the server did. */
    this.ending = false;
    this.peerEnded = false;
  }

  /** The first message on every connection: a new session, or the resume of this one (§4). */
  hello() {
    this.attached = false;
    return this.id === null ? `${NUL}new` : `${NUL}resume ${this.id} ${this.received}`;
  }

  /**
   * Keeps `data` until the server's count covers it. Returns the wire form to send now
   * (attached), or null (it goes out after the next resume). A page cannot wait for room, so
   * past the bound the session is lost with `overflow` (§5): `lost` says so, and
   * `lostMessage()` is what to tell the server.
   */
  send(data) {
    if (this.lost || this.ending) return null;
    const size = dataSize(data);
    const full =
      this.replay.length + 1 > this.config.maxMessages || this.replayBytes + size > this.config.maxBytes;
    if (full) {
      this.lose(LOST.OVERFLOW, true);
      return null;
    }
    this.replay.push({ data, size });
    this.replayBytes += size;
    this.sent += 1;
    return this.attached ? encodeData(data) : null;
  }

  /**
   * A received message. Returns `{ send: [...], deliver?, session?, pong?, ended?,
   * finished? }`: what to send (in order), the data for the application, the attach, the
   * nonce of a probe's answer, the server's end, and whether the session is done (§8).
   */
  receive(message, now) {
    const out = { send: [] };
    if (this.lost) return out;
    const decoded = decodeMessage(message);
    if (decoded.error) return this.violation(out);
    if (decoded.data !== undefined) {
      if (!this.attached || this.peerEnded) return this.violation(out);
      this.received += 1;
      this.unreported += 1;
      this.unreportedBytes += dataSize(decoded.data);
      if (this.unreportedSince === null) this.unreportedSince = now;
      out.deliver = decoded.data;
      const due = this.unreported >= this.config.ackEvery || this.unreportedBytes >= this.config.ackBytes;
      if (due) out.send.push(this.ack());
      return out;
    }
    const control = decoded.control;
    if (control.verb === "lost") {
      this.lose(control.reason, false);
      return out;
    }
    if (control.verb === "session") return this.onSession(control, out);
    if (!this.attached || !["ack", "ping", "pong", "end"].includes(control.verb)) {
      return this.violation(out);
    }
    if (!this.onReport(control.count)) return this.violation(out);
    if (control.verb === "ping") out.send.push(this.report(`pong ${control.nonce}`));
    if (control.verb === "pong") out.pong = control.nonce;
    if (control.verb === "end" && !this.peerEnded) {
      this.peerEnded = true;
      out.ended = true;
      out.send.push(this.ack());
    }
    out.finished = this.finished();
    return out;
  }

  /** `\0session <id> <count>`: attached; drop what the server has, resend the rest (§4.1). */
  onSession({ id, count }, out) {
    if (this.attached || (this.id !== null && id !== this.id) || !this.onReport(count)) {
      return this.violation(out);
    }
    const resumed = this.id !== null;
    this.id = id;
    this.attached = true;
    for (const { data } of this.replay) out.send.push(encodeData(data));
    if (this.ending) out.send.push(this.report("end"));
    out.session = { id, resumed, resent: this.replay.length, received: this.received, acked: this.acked };
    out.finished = this.finished();
    return out;
  }

  /** The server has `count` of our messages: forget them. False when that is impossible. */
  onReport(count) {
    if (count < this.acked || count > this.sent) return false;
    for (const { size } of this.replay.splice(0, count - this.acked)) this.replayBytes -= size;
    this.acked = count;
    return true;
  }

  /** A control message that reports our count (every one but `lost` does, §3). */
  report(verbAndNonce) {
    this.unreported = 0;
    this.unreportedBytes = 0;
    this.unreportedSince = null;
    return `${NUL}${verbAndNonce} ${this.received}`;
  }

  /** The acknowledgement of everything received. */
  ack() {
    return this.report("ack");
  }

  /** A heartbeat probe inside the session (§9): it reports the count too. */
  probe(nonce) {
    return this.report(`ping ${nonce}`);
  }

  /** No more data from this side (§8): the `end` to send now, or null until attached. */
  end() {
    if (this.lost || this.ending) return null;
    this.ending = true;
    return this.attached ? this.report("end") : null;
  }

  /** Both sides said `end` and the server has everything we sent: close with 1000. */
  finished() {
    return this.ending && this.peerEnded && this.replay.length === 0;
  }

  /** When the pending report is due (ms on the caller's clock), or null. */
  ackDeadline() {
    return this.unreportedSince === null || !this.attached ? null : this.unreportedSince + this.config.ackDelay;
  }

  /** The acknowledgement if it is due at `now`, else null. */
  pollAck(now) {
    const due = this.ackDeadline();
    return due !== null && now >= due ? this.ack() : null;
  }

  /** The connection dropped: nothing is reported until the next `\0session`. */
  detach() {
    this.attached = false;
    this.unreported = 0;
    this.unreportedBytes = 0;
    this.unreportedSince = null;
  }

  /**
   * The connection closed with `code`: one of §6's codes without a `lost` message still
   * ends the session with that reason. True when the session is lost.
   */
  onClose(code) {
    this.detach();
    const reason = Object.keys(LOST_CLOSE_CODES).find((r) => LOST_CLOSE_CODES[r] === code);
    if (reason || code === 1002) this.lose(reason || LOST.PROTOCOL, false);
    return this.lost !== null;
  }

  /** What to tell the server when this side ended the session, and the close code. */
  lostMessage() {
    if (!this.lost || !this.lost.ours) return null;
    return { message: `${NUL}lost ${this.lost.reason}`, code: LOST_CLOSE_CODES[this.lost.reason] };
  }

  violation(out) {
    this.lose(LOST.PROTOCOL, true);
    return out;
  }

  lose(reason, ours) {
    if (this.lost) return;
    this.lost = {
      reason,
      id: this.id,
      sent: this.sent,
      acked: this.acked,
      received: this.received,
      ours,
    };
    this.attached = false;
  }
}
