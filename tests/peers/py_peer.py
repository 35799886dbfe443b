"""Python `websockets` as an interop peer for Tether's tests.

    python py_peer.py server [--subprotocols a,b] [--reject STATUS] [--tls CERT KEY]
                             [--no-deflate | --deflate-no-context-takeover]
        Echo server on 127.0.0.1, port chosen by the OS, printed as `LISTENING <port>`.
        Text commands (everything else is echoed unchanged, text as text, binary as binary):
          "cmd:close <code> <reason>"  close with that code and reason
          "cmd:fragments <n> <text>"   send <text> back as one message in <n> fragments
          "cmd:ping <payload>"         ping us with <payload>, answer "pong-ok <payload>" once the pong came
          "cmd:subprotocol"            answer with the negotiated subprotocol (or "none")
          "cmd:extensions"             answer with the Sec-WebSocket-Extensions we sent (or "none")
        permessage-deflate is accepted (the library's default) unless --no-deflate; with
        --deflate-no-context-takeover the server resets its window after every message.
        With --reject STATUS every handshake is refused with that HTTP status.

    python py_peer.py client URL [--subprotocols a,b] [--ca CERT] [--expect-status N]
                                 [--count-fragments] [--expect-deflate]
        Runs a scripted conversation against an echo server at URL and prints `ok <check>` per
        check; exits 1 with `FAIL <why>` on the first mismatch. With --expect-status, only checks
        that the handshake is refused with that status. With --count-fragments, also sends a
        1 MiB text and binary message and prints `ok fragments <text|binary> <n>`: the number
        of frames the echo arrived in. With --expect-deflate, first prints
        `ok deflate <Sec-WebSocket-Extensions of the response>` and fails if it is missing.
"""
import argparse
import asyncio
import ssl
import sys
from http import HTTPStatus

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]
MAX = 16 << 20


def fail(why):
    print(f"FAIL {why}", flush=True)
    sys.exit(1)


async def handler(ws):
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("cmd:"):
                verb, _, rest = msg[4:].partition(" ")
                if verb == "close":
                    code, _, reason = rest.partition(" ")
                    await ws.close(int(code), reason)
                    return
                if verb == "fragments":
                    n, _, text = rest.partition(" ")
                    n = int(n)
                    step = max(1, -(-len(text) // n))
                    await ws.send([text[i:i + step] for i in range(0, len(text), step)])
                    continue
                if verb == "ping":
                    waiter = await ws.ping(rest.encode())
                    await waiter
                    await ws.send(f"pong-ok {rest}")
                    continue
                if verb == "subprotocol":
                    await ws.send(ws.subprotocol or "none")
                    continue
                if verb == "extensions":
                    await ws.send(ws.response.headers.get("Sec-WebSocket-Extensions", "none"))
                    continue
            await ws.send(msg)
    except ConnectionClosed:
        pass


async def run_server(args):
    kwargs = {"max_size": MAX}
    if args.subprotocols:
        kwargs["subprotocols"] = args.subprotocols.split(",")
    if args.reject:
        status = HTTPStatus(args.reject)
        kwargs["process_request"] = lambda conn, req: conn.respond(status, f"rejected by test peer\n")
    if args.no_deflate:
        kwargs["compression"] = None
    if args.deflate_no_context_takeover:
        kwargs["extensions"] = [ServerPerMessageDeflateFactory(server_no_context_takeover=True)]
        kwargs["compression"] = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        kwargs["ssl"] = ctx
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await server.serve_forever()


async def run_client(args):
    kwargs = {"max_size": MAX, "open_timeout": 10, "close_timeout": 5}
    if args.subprotocols:
        kwargs["subprotocols"] = args.subprotocols.split(",")
    if args.ca:
        kwargs["ssl"] = ssl.create_default_context(cafile=args.ca)
    if args.expect_status:
        try:
            async with connect(args.url, **kwargs):
                fail("handshake accepted, expected a refusal")
        except InvalidStatus as e:
            got = e.response.status_code
            if got != args.expect_status:
                fail(f"status {got}, expected {args.expect_status}")
            print(f"ok rejected {got}", flush=True)
            return
    async with connect(args.url, **kwargs) as ws:
        if args.expect_deflate:
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
            if not agreed or "permessage-deflate" not in agreed:
                fail(f"permessage-deflate not agreed: {agreed!r}")
            print(f"ok deflate {agreed}", flush=True)
        if args.subprotocols:
            print(f"ok subprotocol {ws.subprotocol}", flush=True)
        for size in SIZES:
            text = ("é" * (size // 2) + "a" * (size % 2))
            await ws.send(text)
            back = await ws.recv()
            if back != text:
                fail(f"text echo of {size} bytes differs")
            data = bytes((i * 7 + 3) & 0xFF for i in range(size))
            await ws.send(data)
            back = await ws.recv()
            if back != data:
                fail(f"binary echo of {size} bytes differs")
            print(f"ok echo {size}", flush=True)
        parts = ["frag", "mented ", "messa", "ge ✓"]
        await ws.send(parts)
        back = await ws.recv()
        if back != "".join(parts):
            fail(f"fragmented echo differs: {back!r}")
        print("ok fragmented", flush=True)
        waiter = await ws.ping(b"are you there")
        await asyncio.wait_for(waiter, 5)
        print("ok ping", flush=True)
        if args.count_fragments:
            size = 1 << 20
            text = "é" * (size // 2)
            data = bytes((i * 7 + 3) & 0xFF for i in range(size))
            for label, msg, raw in (("text", text, text.encode()), ("binary", data, data)):
                await ws.send(msg)
                frames = [f async for f in ws.recv_streaming(decode=False)]
                if b"".join(frames) != raw:
                    fail(f"{label} echo in fragments differs")
                print(f"ok fragments {label} {len(frames)}", flush=True)
        await ws.close(4001, "bye from python")
        if ws.close_code != 4001 or ws.close_reason != "bye from python":
            fail(f"close echoed as {ws.close_code} {ws.close_reason!r}")
        print("ok close 4001", flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--subprotocols")
    s.add_argument("--reject", type=int)
    s.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    s.add_argument("--no-deflate", action="store_true")
    s.add_argument("--deflate-no-context-takeover", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("url")
    c.add_argument("--subprotocols")
    c.add_argument("--ca")
    c.add_argument("--expect-status", type=int)
    c.add_argument("--count-fragments", action="store_true")
    c.add_argument("--expect-deflate", action="store_true")
    args = p.parse_args()
    asyncio.run(run_server(args) if args.mode == "server" else run_client(args))


if __name__ == "__main__":
    main()
