//! RFC 6455 WebSocket framing: sans-IO frame codec, message assembly and protocol state machine.
#![forbid(unsafe_code)]
