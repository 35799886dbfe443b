//! The longer explanations: doc-only, no code.
//!
//! # Why one changed byte breaks the handshake
//!
//! Everything before ChangeCipherSpec travels in the clear, so a man in the middle can
//! change it: drop the strongest suite from the ClientHello, swap a random, alter the
//! certificate. Each side therefore keeps every handshake message it sent and received,
//! byte for byte, and at the end sends
//!
//! ```text
//! verify_data = PRF(master_secret, "client finished" | "server finished",
//!                   SHA-256(all handshake messages so far))[0..12]
//! ```
//!
//! encrypted under the new keys (RFC 5246 section 7.4.9). If any byte differed between what
//! the client sent and what the server saw, the two hashes differ and the Finished check
//! fails; if the attacker changed a random or the encrypted premaster, the keys differ and
//! the Finished record does not even decrypt. The attacker cannot fix up Finished because it
//! does not know the master secret. The test
//! `tls::tamper::rfc5246_7_4_9_any_flipped_handshake_byte_fails_the_handshake` flips every
//! kind of byte; `..._downgrade_by_removing_the_strongest_suite_is_caught_by_finished`
//! plays the downgrade attack.
//!
//! # Why the server never says "bad premaster"
//!
//! With RSA key transport the server decrypts the premaster with PKCS#1 v1.5. If it
//! answered "padding wrong" differently from "padding right", an attacker could send
//! millions of altered ciphertexts and, from the answers alone, decrypt a recorded
//! premaster (Bleichenbacher, 1998). RFC 5246 section 7.4.7.1 therefore tells the server to
//! go on with a random premaster whenever decryption or the version check fails; the
//! handshake then fails at Finished, exactly like any other mismatch.
//!
//! What this protects, and what it does not:
//!
//! - **Protected: the answer.** Good and bad ciphertexts produce the same messages and the
//!   same alert (`bad_record_mac` at the client's Finished); the random fallback is drawn
//!   before decrypting, always. An attacker who only sees *what* the server says learns
//!   nothing about the padding.
//! - **Not protected: the time.** The `rsa` crate's PKCS#1 v1.5 decryption is not
//!   constant-time (RUSTSEC-2023-0071, the "Marvin" attack, 2023): its running time depends
//!   on the secret key and on the decrypted value. An attacker who can send many
//!   ClientKeyExchange messages and time the answers precisely (on the same host or a quiet
//!   network) may turn the timing into the padding oracle Bleichenbacher needed and decrypt
//!   a recorded premaster of an RSA-suite session. No fixed `rsa` release exists.
//! - **Not affected: the ECDHE suites.** They never decrypt with the RSA key (it only
//!   signs, through ring), so the premaster of an ECDHE session cannot leak this way.
//!
//! This is one reason this crate is for teaching only, and TLS 1.3 removed RSA key
//! transport altogether.
//!
//! # Forward secrecy
//!
//! In `TLS_RSA_WITH_AES_128_GCM_SHA256` the premaster crosses the wire encrypted under the
//! server's long-term RSA key. Whoever records the traffic today and obtains that key later
//! (a breach, a subpoena, a decommissioned disk) decrypts the premaster, derives every key
//! and reads the whole session: [`decrypt_recording`](crate::decrypt_recording) with
//! [`StolenSecret::ServerKey`](crate::StolenSecret::ServerKey) does exactly that.
//!
//! In `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` both sides make a fresh X25519 key pair per
//! handshake; the premaster is their Diffie-Hellman agreement and is never sent. The RSA
//! key only *signs* the server's ephemeral public key, so it proves who the server is but
//! reveals nothing about the premaster. Once the ephemeral private keys are dropped (ring
//! consumes them in the agreement) the session cannot be decrypted by anyone: the same
//! eavesdropper fails with [`EavesdropError::ForwardSecret`](crate::EavesdropError::ForwardSecret). This is why TLS
//! 1.3 removed RSA key transport altogether.
//!
//! The key log ([`KeyLogFile`](crate::KeyLogFile)) is the deliberate exception: it writes
//! the master secret of each session to a file so Wireshark, or
//! [`StolenSecret::MasterSecret`](crate::StolenSecret::MasterSecret), can decrypt a capture.
//!
//! # What is left out
//!
//! Session resumption (IDs and tickets), renegotiation (refused with a `no_renegotiation`
//! warning), client certificates (a server's CertificateRequest is answered with an empty
//! Certificate, RFC 5246 section 7.4.6, which servers that only *ask* accept), the extended
//! master secret (RFC 7627), CBC suites,
//! ECDSA certificates, TLS 1.3. Each is a real part of production TLS and would add code
//! without adding to the five steps.
