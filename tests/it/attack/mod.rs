//! Hostile peers. Each test attacks the library the way a peer that controls its side of the
//! connection can, over real loopback sockets (or a pipe with a paused clock where time is the
//! point), and asserts a bound: bytes buffered, bytes read, time taken, events recorded. "No
//! crash" is not a result here. One file per area.

mod broadcast;
mod close;
mod deflate;
mod fit;
mod flood;
mod proxy;
mod server;
mod tls;
