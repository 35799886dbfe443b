//! Hostile peers, each test asserting a bound (memory, time, bytes) over real loopback sockets.

mod broadcast;
