// Node `ws` as an interop peer for Tether's tests. Same commands as py_peer.py:
//   node node_peer.js server [--subprotocols a,b] [--reject STATUS] [--deflate]
//                            [--deflate-no-context-takeover]
//   node node_peer.js client URL [--subprotocols a,b] [--expect-status N] [--expect-deflate]
//                                [--deflate-no-context-takeover | --deflate-window-8]
// The server accepts permessage-deflate only with --deflate (ws's server default is off), or
// with --deflate-no-context-takeover, which also asks for no context takeover both ways; the
// client offers it (ws's client default) and with --expect-deflate prints `ok deflate <agreed>`
// first, failing if the server declined. "cmd:extensions" answers with the agreed extensions.
// Needs NODE_PATH to point at a node_modules holding `ws` (scripts/install-peers.sh).
'use strict';
const { WebSocket, WebSocketServer } = require('ws');

const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];
const MAX = 16 << 20;

function fail(why) {
  console.log(`FAIL ${why}`);
  process.exit(1);
}

function opt(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function server(args) {
  const subprotocols = opt(args, '--subprotocols');
  const reject = opt(args, '--reject');
  const options = { host: '127.0.0.1', port: 0, maxPayload: MAX };
  if (args.includes('--deflate')) options.perMessageDeflate = { threshold: 0 };
  if (args.includes('--deflate-no-context-takeover')) {
    options.perMessageDeflate = { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true };
  }
  if (subprotocols) {
    const ours = subprotocols.split(',');
    options.handleProtocols = (offered) => ours.find((p) => offered.has(p)) || false;
  }
  if (reject) {
    options.verifyClient = (_info, cb) => cb(false, Number(reject), 'rejected by test peer');
  }
  const wss = new WebSocketServer(options);
  wss.on('listening', () => console.log(`LISTENING ${wss.address().port}`));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        const text = data.toString();
        if (text.startsWith('cmd:')) {
          const body = text.slice(4);
          const sp = body.indexOf(' ');
          const verb = sp < 0 ? body : body.slice(0, sp);
          const rest = sp < 0 ? '' : body.slice(sp + 1);
          if (verb === 'close') {
            const s2 = rest.indexOf(' ');
            ws.close(Number(s2 < 0 ? rest : rest.slice(0, s2)), s2 < 0 ? '' : rest.slice(s2 + 1));
            return;
          }
          if (verb === 'fragments') {
            const s2 = rest.indexOf(' ');
            const n = Number(rest.slice(0, s2));
            const buf = Buffer.from(rest.slice(s2 + 1));
            const step = Math.max(1, Math.ceil(buf.length / n));
            for (let i = 0; i < buf.length; i += step) {
              ws.send(buf.subarray(i, i + step), { binary: false, fin: i + step >= buf.length });
            }
            return;
          }
          if (verb === 'ping') {
            ws.once('pong', (payload) => ws.send(`pong-ok ${payload.toString()}`));
            ws.ping(Buffer.from(rest));
            return;
          }
          if (verb === 'subprotocol') {
            ws.send(ws.protocol || 'none');
            return;
          }
          if (verb === 'extensions') {
            ws.send(ws.extensions || 'none');
            return;
          }
        }
      }
      ws.send(data, { binary: isBinary });
    });
  });
}

function client(args) {
  const url = args[0];
  const subprotocols = opt(args, '--subprotocols');
  const expectStatus = opt(args, '--expect-status');
  const options = { maxPayload: MAX };
  if (args.includes('--deflate-no-context-takeover')) {
    options.perMessageDeflate = { clientNoContextTakeover: true, serverNoContextTakeover: true };
  }
  if (args.includes('--deflate-window-8')) {
    options.perMessageDeflate = { clientMaxWindowBits: 8, serverMaxWindowBits: 8 };
  }
  const ws = new WebSocket(url, subprotocols ? subprotocols.split(',') : [], options);
  // The agreed extension with its parameters, as the server's response states it.
  let agreed = '';
  ws.on('upgrade', (res) => { agreed = res.headers['sec-websocket-extensions'] || ''; });
  const inbox = [];
  let waiting = null;
  ws.on('message', (data, isBinary) => {
    const msg = isBinary ? Buffer.from(data) : data.toString();
    if (waiting) { const w = waiting; waiting = null; w(msg); } else { inbox.push(msg); }
  });
  const recv = () => new Promise((resolve) => {
    if (inbox.length) resolve(inbox.shift()); else waiting = resolve;
  });
  ws.on('unexpected-response', (_req, res) => {
    if (!expectStatus) fail(`handshake refused with ${res.statusCode}`);
    if (res.statusCode !== Number(expectStatus)) fail(`status ${res.statusCode}, expected ${expectStatus}`);
    console.log(`ok rejected ${res.statusCode}`);
    process.exit(0);
  });
  ws.on('error', (e) => fail(`error: ${e.message}`));
  ws.on('open', async () => {
    if (expectStatus) fail('handshake accepted, expected a refusal');
    if (args.includes('--expect-deflate')) {
      if (!ws.extensions.includes('permessage-deflate')) fail(`permessage-deflate not agreed: ${ws.extensions}`);
      console.log(`ok deflate ${agreed}`);
    }
    if (subprotocols) console.log(`ok subprotocol ${ws.protocol}`);
    for (const size of SIZES) {
      const text = 'é'.repeat(Math.floor(size / 2)) + 'a'.repeat(size % 2);
      ws.send(text);
      if ((await recv()) !== text) fail(`text echo of ${size} bytes differs`);
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 7 + 3) & 0xff;
      ws.send(data);
      const back = await recv();
      if (!Buffer.isBuffer(back) || !back.equals(data)) fail(`binary echo of ${size} bytes differs`);
      console.log(`ok echo ${size}`);
    }
    const parts = ['frag', 'mented ', 'messa', 'ge ✓'];
    parts.forEach((p, i) => ws.send(p, { binary: false, fin: i === parts.length - 1 }));
    if ((await recv()) !== parts.join('')) fail('fragmented echo differs');
    console.log('ok fragmented');
    const pong = new Promise((resolve) => ws.once('pong', resolve));
    ws.ping(Buffer.from('are you there'));
    const payload = await Promise.race([pong, new Promise((_, rej) => setTimeout(() => rej(new Error('pong timeout')), 5000))]).catch((e) => fail(e.message));
    if (payload.toString() !== 'are you there') fail('pong payload differs');
    console.log('ok ping');
    ws.on('close', (code, reason) => {
      if (code !== 4001 || reason.toString() !== 'bye from node') fail(`close echoed as ${code} ${reason}`);
      console.log('ok close 4001');
      process.exit(0);
    });
    ws.close(4001, 'bye from node');
  });
  setTimeout(() => fail('client timed out'), 30000).unref();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') server(rest);
else if (mode === 'client') client(rest);
else fail('usage: node_peer.js server|client ...');
