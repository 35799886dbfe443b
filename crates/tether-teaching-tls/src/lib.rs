//! A teaching TLS 1.2 handshake (RFC 5246): every step explained, interoperable with OpenSSL; not for production.
#![forbid(unsafe_code)]
