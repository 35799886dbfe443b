// The page and tether.js in a real browser: headless Chromium (Debian's) driven by
// playwright-core, against real `tether serve` processes (and, for sessions, through a proxy
// that cuts and freezes the connections: ./cutting-proxy.mjs). Run by crates/tether-cli/tests/
// browser.rs with TETHER_BIN (the tether binary), TETHER_PLAYWRIGHT (playwright-core's
// directory) and TETHER_ARTIFACTS (where the screenshots go).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";

import { cuttingProxy } from "./cutting-proxy.mjs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.TETHER_PLAYWRIGHT);
const BIN = process.env.TETHER_BIN;
const ARTIFACTS = process.env.TETHER_ARTIFACTS;
mkdirSync(ARTIFACTS, { recursive: true });

// Every wait is bounded: a hung browser or server fails the test.
const LIMIT = 15000;
// The page's heartbeat and backoff, fast (query string of the page), but no faster than
// the server's responder allows: probes closer than 1 s apart are strikes (ResponderConfig).
const INTERVAL = 1000;
const TIMEOUT = 500;
const INITIAL_DELAY = 200;
const QUERY = `interval=${INTERVAL}&timeout=${TIMEOUT}&initialDelay=${INITIAL_DELAY}&maxDelay=400`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // No --user-data-dir: playwright gives every launch a fresh, empty profile itself.
  ],
});
const servers = [];
after(async () => {
  for (const server of servers) server.child.kill("SIGKILL");
  await browser.close();
});

/** Starts `tether serve ARGS`; resolves once it prints its address. */
function serve(args) {
  const child = spawn(BIN, ["serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const server = { child, log: "", port: null };
  servers.push(server);
  child.stderr.on("data", (chunk) => (server.log += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tether serve did not start")), LIMIT);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (match) {
        clearTimeout(timer);
        server.port = Number(match[1]);
        resolve(server);
      }
    });
    child.on("exit", (code) => reject(new Error(`tether serve exited ${code}: ${server.log}`)));
  });
}

/** Stops a server with SIGTERM and waits for it to exit. */
function stop(server) {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.on("exit", resolve);
    server.child.kill("SIGTERM");
  });
}

/** Opens the page of `server`, recording every state change with its time. */
async function open(server, query = QUERY) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  await page.goto(`http://127.0.0.1:${server.port}/?${query}`);
  await page.evaluate(() => {
    const socket = window.tetherSocket;
    window.stateTimes = [];
    socket.addEventListener("state", (e) =>
      window.stateTimes.push({ state: e.detail.state, at: performance.now() }),
    );
    window.reconnects = [];
    socket.addEventListener("reconnect", (e) => window.reconnects.push(e.detail));
    window.closes = [];
    socket.addEventListener("close", (e) => window.closes.push(e.detail));
  });
  await waitState(page, "open");
  return page;
}

/** Waits until the page has been in `state` at some point (dead lasts no time at all: the
 * reconnection starts at once). */
function waitSeen(page, state) {
  return page.waitForFunction((s) => window.stateTimes.some((t) => t.state === s), state, {
    timeout: LIMIT,
  });
}

function waitState(page, state) {
  return page.waitForFunction((s) => window.tetherSocket.state === s, state, { timeout: LIMIT });
}

/** Types `text` in the message box and presses Send (or the binary button). */
async function type(page, text, binary = false) {
  await page.fill("#message", text);
  await page.click(binary ? "#send-binary" : "button[type=submit]");
}

function waitLog(page, line) {
  return page.waitForFunction((l) => document.getElementById("log").textContent.includes(l), line, {
    timeout: LIMIT,
  });
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

test("the page loads from the server, echoes text and binary, shows round trips; deflate is negotiated", async () => {
  const server = await serve(["--addr", "127.0.0.1:0", "--heartbeat", "1s", "--deflate", "-v"]);
  const page = await open(server);
  for (const text of ["hello", "你好，世界", "emoji 🎉👍", "a compressible line ".repeat(10)]) {
    await type(page, text);
    await waitLog(page, `received ${JSON.stringify(text)}`);
  }
  await type(page, "AB", true);
  await waitLog(page, "received binary [65, 66]");
  await page.waitForFunction(() => /rtt \d+ ms/.test(document.getElementById("rtt-now").textContent), null, {
    timeout: LIMIT,
  });
  await screenshot(page, "1-echo");
  // Chromium offers permessage-deflate; the server compressed the long text both ways.
  assert.match(server.log, /frame received.*rsv1=true.*opcode=Text/);
  assert.match(server.log, /frame queued.*rsv1=true.*opcode=Text/);
  await page.close();
  await stop(server);
});

test("a server that stops answering: suspect, dead, reconnect in the jittered bound, queued messages delivered in order", async () => {
  const server = await serve([
    "--addr", "127.0.0.1:0", "--heartbeat", "1s", "--pause-heartbeat-after", "2",
  ]);
  // The jitter draw fixed at one half: the first reconnect waits half its 1 s window, time
  // enough to type while the link is down.
  const query = `interval=${INTERVAL}&timeout=${TIMEOUT}&initialDelay=1000&maxDelay=2000&random=0.5`;
  const page = await open(server, query);
  await waitSeen(page, "dead");
  // Typed while the link is down: kept, then delivered after the reconnect, in order.
  await type(page, "while down 1");
  await type(page, "while down 2");
  await waitLog(page, 'received "while down 2"');
  const log = await page.textContent("#log");
  assert.match(log, /sent "while down 1" \(queued\)/);
  assert.match(log, /sent "while down 2" \(queued\)/);
  assert.ok(log.indexOf('received "while down 1"') < log.indexOf('received "while down 2"'));
  const times = await page.evaluate(() => window.stateTimes);
  const suspect = times.find((t) => t.state === "suspect").at;
  const dead = times.find((t) => t.state === "dead").at;
  // The first unanswered probe went out `TIMEOUT` before the suspect verdict; dead follows
  // within interval + 2 x timeout of it (plus scheduling slack).
  assert.ok(dead - (suspect - TIMEOUT) <= INTERVAL + 2 * TIMEOUT + 250, `dead after ${dead - suspect} ms`);
  const [first] = await page.evaluate(() => window.reconnects);
  assert.deepEqual(first, { attempt: 1, delay: 500 }, "half of the first 1 s window");
  const reopened = times.findLast((t) => t.state === "open").at;
  assert.ok(reopened - dead >= 500 && reopened - dead < 1000, `open again ${reopened - dead} ms after`);
  await screenshot(page, "2-dead-and-back");
  await page.close();
  await stop(server);
});

test("the server restarts on the same port: the page reconnects by itself", async () => {
  const first = await serve(["--addr", "127.0.0.1:0", "--heartbeat", "1s"]);
  const page = await open(first);
  await stop(first);
  await waitState(page, "reconnecting");
  const second = await serve(["--addr", `127.0.0.1:${first.port}`, "--heartbeat", "1s"]);
  await waitState(page, "open");
  await type(page, "after the restart");
  await waitLog(page, 'received "after the restart"');
  const closes = await page.evaluate(() => window.closes);
  assert.equal(closes[0].code, 1001, "the stopping server said going away");
  await screenshot(page, "3-restarted");
  await page.close();
  await stop(second);
});

test("a close with a fatal code stops reconnecting", async () => {
  const server = await serve(["--addr", "127.0.0.1:0", "--heartbeat", "1s"]);
  // Probing every 200 ms, five times what the server's responder allows: after three
  // strikes it closes with 1008 (policy violation), which connecting again cannot fix.
  const page = await open(server, "interval=200&timeout=150&initialDelay=100&maxDelay=200");
  await waitState(page, "closed");
  const closes = await page.evaluate(() => window.closes);
  assert.deepEqual(
    closes.map((c) => [c.code, c.fatal]),
    [[1008, true]],
  );
  // No reconnection follows: longer than the largest backoff window, nothing new.
  await page.waitForTimeout(800);
  assert.equal(await page.evaluate(() => window.tetherSocket.state), "closed");
  assert.equal((server.log.match(/connection opened/g) || []).length, 1, server.log);
  await screenshot(page, "4-fatal");
  await page.close();
  await stop(server);
});

test("a session through a proxy that cuts and freezes: every message once and in order, both ways", async () => {
  const server = await serve(["--addr", "127.0.0.1:0", "--sessions", "--heartbeat", "1s"]);
  const proxy = await cuttingProxy(server.port, { seed: 11, disruptions: 6, minBytes: 2048, maxBytes: 16384 });
  const query = `${QUERY}&session=1&url=ws://127.0.0.1:${proxy.port}/`;
  const page = await open(server, query);
  const N = 2000;
  const sent = await page.evaluate(async (n) => {
    const socket = window.tetherSocket;
    window.got = [];
    window.sessions = [];
    window.lost = [];
    socket.addEventListener("message", (e) => window.got.push(e.detail.data));
    socket.addEventListener("session", (e) => window.sessions.push(e.detail));
    socket.addEventListener("lost", (e) => window.lost.push(e.detail));
    const sent = [];
    for (let i = 0; i < n; i++) {
      // The application's own backpressure: a page cannot block, so it waits while the
      // session holds many unacknowledged messages (past the bound the session would be lost).
      while (socket.session.replay.length >= 512) await new Promise((r) => setTimeout(r, 20));
      const message = `m${i} ${"·".repeat(i % 40)}`;
      socket.send(message);
      sent.push(message);
    }
    return sent;
  }, N);
  await page.waitForFunction((n) => window.got.length >= n || window.lost.length > 0, N, { timeout: 60000 });
  const { got, sessions, lost } = await page.evaluate(() => ({
    got: window.got,
    sessions: window.sessions,
    lost: window.lost,
  }));
  assert.deepEqual(lost, [], "no session lost");
  assert.equal(got.length, N);
  assert.deepEqual(got, sent, "the echoes: each message once, in order");
  assert.equal(proxy.cuts + proxy.freezes, 6, "every disruption happened");
  assert.ok(proxy.freezes >= 1 && proxy.cuts >= 1, `cuts ${proxy.cuts}, freezes ${proxy.freezes}`);
  // A disruption that lands during a resume's own handshake costs another attempt, not a
  // resume, so there may be fewer resumes than disruptions; there must be some.
  const resumes = sessions.filter((s) => s.resumed).length;
  assert.ok(resumes >= 3, JSON.stringify(sessions));
  assert.equal(new Set(sessions.map((s) => s.id)).size, 1, "one session throughout");
  await screenshot(page, "5-session-through-cuts");
  await page.close();
  await proxy.close();
  await stop(server);
});
