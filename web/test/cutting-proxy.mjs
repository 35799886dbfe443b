// A TCP proxy on loopback that disrupts the connections it carries on a seeded schedule: after
// a random number of bytes it either cuts the connection (both sides closed at once) or
// freezes it (nothing more is forwarded either way and nothing is closed, as when a route
// dies: only a heartbeat can tell). After `disruptions` of them it forwards faithfully.

import net from "node:net";

/** A small seeded generator (LCG), so a failing schedule can be replayed. */
function seeded(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Starts a proxy to 127.0.0.1:`target`. Options: `seed`, `disruptions` (how many), `minBytes`
 * and `maxBytes` (how far into a connection, in bytes both ways, the disruption comes),
 * `freezeShare` (the part of disruptions that are freezes). Resolves to
 * `{ port, cuts, freezes, close() }`.
 */
export function cuttingProxy(target, options = {}) {
  const {
    seed = 1,
    disruptions = 4,
    minBytes = 4096,
    maxBytes = 65536,
    freezeShare = 0.5,
  } = options;
  const random = seeded(seed);
  const proxy = { port: null, cuts: 0, freezes: 0, sockets: new Set() };
  const left = () => disruptions - proxy.cuts - proxy.freezes;

  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    for (const socket of [client, upstream]) {
      proxy.sockets.add(socket);
      socket.on("close", () => proxy.sockets.delete(socket));
      socket.on("error", () => {});
    }
    // The byte count at which this connection is disrupted, if it is.
    const at = left() > 0 ? minBytes + Math.floor(random() * (maxBytes - minBytes)) : Infinity;
    const freeze = random() < freezeShare;
    let carried = 0;
    let frozen = false;
    const forward = (from, to) => {
      from.on("data", (chunk) => {
        if (frozen) return;
        carried += chunk.length;
        if (carried < at || left() <= 0) {
          to.write(chunk);
          return;
        }
        if (freeze) {
          proxy.freezes += 1;
          frozen = true; // swallow everything from now on; close nothing
        } else {
          proxy.cuts += 1;
          client.destroy();
          upstream.destroy();
        }
      });
      from.on("end", () => {
        if (!frozen) to.end();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });

  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      proxy.port = server.address().port;
      proxy.close = () => {
        for (const socket of proxy.sockets) socket.destroy();
        return new Promise((done) => server.close(done));
      };
      resolve(proxy);
    });
  });
}
