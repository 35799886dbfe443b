// Test doubles shared by the Node tests of tether.js and session.js: a clock that moves only
// when the test says so, a scripted WebSocket, and an event recorder.

/** A clock whose time moves only when the test says so; timers fire in order. */
export class FakeClock {
  constructor() {
    this.t = 0;
    this.timers = new Map();
    this.nextId = 1;
  }
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /** Moves to `t + ms`, firing every timer due on the way. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next[1].at)) next = [id, timer];
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * A WebSocket double: records what is sent; the test opens, answers and closes it. The
 * server selects `protocol` when it opens, unless the test names another.
 */
export function fakeWebSockets({ protocol = "" } = {}) {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.protocol = "";
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(data) {
      this.sent.push(data);
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }
    serverOpens(selected = protocol) {
      this.protocol = selected;
      this.readyState = 1;
      this.onopen?.();
    }
    serverSends(data) {
      this.onmessage?.({ data });
    }
    serverCloses(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { FakeWebSocket, sockets };
}

/** Records the details of every `type` event of `socket`. */
export function events(socket, type) {
  const seen = [];
  socket.addEventListener(type, (e) => seen.push(e.detail));
  return seen;
}
