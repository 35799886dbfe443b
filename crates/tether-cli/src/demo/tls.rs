//! The demo's TLS step (https原理): both ends wrapped in the teaching TLS, the handshake run
//! for real and listed as the tutorial's five steps; and, for the later steps, what the TCP
//! under TLS carried.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls_pki_types::{ServerName, UnixTime};
use tether_teaching_tls::{
    CipherSuite, Connection, Event, Step as TlsStep, TeachingTlsStream, Transcript,
};
use tokio::net::TcpStream;

use super::narrator::LABEL;
use super::peer::Io;
use super::{plural, Args, Demo, Narrator};
use crate::annotate::thousands;
use crate::pki::DemoPki;
use crate::tap::{Seen, Tap, Wiretap};

/// The name the demo server's certificate is for, and the host of the `wss://` URL. The
/// client connects to loopback and asks for this name, as a browser asks for the name it
/// resolved.
pub(super) const DEMO_NAME: &str = "demo.tether.test";
/// The server's preference: the tutorial's flow (RSA key transport) first.
const SERVER_SUITES: [CipherSuite; 3] = [
    CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// A TCP stream under the teaching TLS, with a wiretap counting its reads and bytes.
pub(super) type TlsOverTcp = TeachingTlsStream<Tap<TcpStream>>;

/// The wiretaps on the TCP streams under TLS: what the kernel carried, as opposed to what
/// the codec read from the decrypted stream.
pub(super) struct Taps {
    client: Arc<Wiretap>,
    server: Arc<Wiretap>,
}

/// The TLS step: both ends of the TCP connection are wrapped in the teaching TLS, the
/// handshake runs for real (a certificate made now, the client trusting its CA and checking
/// it), and the tutorial's five steps are listed as the two transcripts recorded them.
pub(super) async fn step_tls<W: Write>(
    say: &mut Narrator<W>,
    args: &Args,
    client_tcp: TcpStream,
    server_tcp: TcpStream,
) -> Result<(TlsOverTcp, TlsOverTcp, Taps)> {
    say.step("HTTPS first: the TLS 1.2 handshake in five steps (https原理)")?;
    say.text(
        "wss:// is WebSocket inside TLS. Before the first WebSocket byte, client and server\n\
         agree on keys, as the tutorial's fifth part describes; the teaching TLS runs that\n\
         handshake here for real (`tether tls-demo` shows every byte of it).",
    )?;
    let pki = DemoPki::generate(DEMO_NAME)?;
    say.fact(
        "keys",
        &format!(
            "made now: a demo CA, and a certificate for {DEMO_NAME} it signed (RSA-2048);\n\
             {:w$}the client trusts that CA and nothing else",
            "",
            w = LABEL + 4
        ),
    )?;
    let mut server_config = pki.server_config()?;
    server_config.set_cipher_suites(SERVER_SUITES.to_vec());
    let offer = args
        .cipher
        .map_or_else(|| CipherSuite::SUPPORTED.to_vec(), |suite| vec![suite]);
    let client_config = pki.client_config(offer)?;
    let taps = Taps {
        client: Wiretap::counting(),
        server: Wiretap::counting(),
    };
    let name = ServerName::try_from(DEMO_NAME)?.to_owned();
    let mut client = TeachingTlsStream::new(
        Connection::client(Arc::new(client_config), name, UnixTime::now())?,
        Tap::new(client_tcp, taps.client.clone()),
    );
    let mut server = TeachingTlsStream::new(
        Connection::server(Arc::new(server_config)),
        Tap::new(server_tcp, taps.server.clone()),
    );
    let (client_done, server_done) = tokio::join!(client.handshake(), server.handshake());
    client_done.context("the client's TLS handshake failed")?;
    server_done.context("the server's TLS handshake failed")?;
    for (label, line) in handshake_lines(client.transcript(), server.transcript())? {
        say.fact(label, &line)?;
    }
    let seen = taps.client.seen();
    say.fact(
        "wire",
        &format!(
            "handshake: {} B client -> server, {} B server -> client; from here on every\n\
             {:w$}byte below travels inside encrypted TLS records",
            thousands(seen.sent_len),
            thousands(seen.received_len),
            "",
            w = LABEL + 4
        ),
    )?;
    let suite = client
        .connection()
        .cipher_suite()
        .context("no suite after the handshake")?;
    say.remember(
        "tls",
        &format!("{suite}, certificate for {DEMO_NAME} checked, Finished verified both ways"),
    );
    say.tls = true;
    Ok((client, server, taps))
}

/// The tutorial's five steps as they happened, read from the client's and the server's
/// transcripts: a line per step, continued on unlabelled lines. Fails if an event is
/// missing, so nothing is listed that did not happen.
fn handshake_lines(
    client: &Transcript,
    server: &Transcript,
) -> Result<Vec<(&'static str, String)>> {
    let hello = event(client, TlsStep::OfferCiphers, "ClientHello")?;
    let chosen = event(server, TlsStep::ChooseCipher, "ServerHello")?;
    let certificate = event(client, TlsStep::ChooseCipher, "Certificate")?;
    let checked = event(client, TlsStep::CheckCertificate, "certificate accepted")?;
    let premaster = event(client, TlsStep::Premaster, "ClientKeyExchange")?;
    let recovered = event(server, TlsStep::Premaster, "ClientKeyExchange")?;
    let client_finished = event(client, TlsStep::ClientFinished, "Finished (encrypted)")?;
    let server_checks = event(server, TlsStep::ServerFinished, "Finished (decrypted)")?;
    event(server, TlsStep::ServerFinished, "Finished (encrypted)")?;
    let client_checks = event(client, TlsStep::ClientVerifies, "Finished (decrypted)")?;
    let complete = event(client, TlsStep::ClientVerifies, "handshake complete")?;

    let (sent, computed) = key_exchange_lines(client, premaster, recovered)?;
    Ok(vec![
        (
            "1 offer",
            format!("client offered {}", field(hello, "cipher_suites")?),
        ),
        (
            "2 choose",
            format!("server chose {}", field(chosen, "cipher_suite")?),
        ),
        (
            "",
            format!(
                "and sent its certificate: {} for {}",
                field(certificate, "leaf size")?,
                field(certificate, "leaf DNS names")?
            ),
        ),
        (
            "3 client",
            format!(
                "certificate {}: its chain {}",
                field(checked, "name")?,
                field(checked, "chain")?
            ),
        ),
        ("", sent),
        (
            "",
            format!(
                "sent Finished, encrypted: {}",
                field(client_finished, "verify_data")?
            ),
        ),
        ("4 server", computed),
        (
            "",
            format!("client's Finished {}", field(server_checks, "check")?),
        ),
        ("", "sent its own Finished, encrypted".to_owned()),
        (
            "5 client",
            format!("server's Finished {}", field(client_checks, "check")?),
        ),
        ("records", field(complete, "from now on")?.to_owned()),
    ])
}

/// What the client sent and what the server computed in the key exchange: an X25519 share
/// for ECDHE, an encrypted premaster for RSA key transport.
fn key_exchange_lines(
    client: &Transcript,
    premaster: &Event,
    recovered: &Event,
) -> Result<(String, String)> {
    let ephemeral = premaster.title.ends_with("(ECDHE)");
    Ok(if ephemeral {
        let share = event(client, TlsStep::ChooseCipher, "ServerKeyExchange")?;
        (
            format!(
                "server's X25519 key share: signature {}\n\
                 {:w$}premaster: X25519 key agreement, {}",
                field(share, "signature")?,
                "",
                field(premaster, "note")?,
                w = LABEL + 4
            ),
            "premaster: X25519(server secret, client public), the same value".to_owned(),
        )
    } else {
        (
            format!(
                "premaster: 48 random bytes, sent as {}",
                field(premaster, "EncryptedPreMasterSecret")?
            ),
            format!("premaster {}", field(recovered, "decryption")?),
        )
    })
}

/// The first event of `step` whose title starts with `title`.
fn event<'a>(transcript: &'a Transcript, step: TlsStep, title: &str) -> Result<&'a Event> {
    transcript
        .events()
        .iter()
        .find(|e| e.step == step && e.title.starts_with(title))
        .with_context(|| {
            format!(
                "the TLS transcript has no {title:?} in step {}",
                step.number()
            )
        })
}

/// The value of the field `name` of `event`.
fn field<'a>(event: &'a Event, name: &str) -> Result<&'a str> {
    event
        .fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
        .with_context(|| format!("{} has no field {name:?}", event.title))
}

impl<W: Write, C: Io, S: Io> Demo<W, C, S> {
    /// What the TCP under TLS carried so far: the client's and the server's wiretap.
    pub(super) fn tcp_mark(&self) -> Option<(Seen, Seen)> {
        self.taps
            .as_ref()
            .map(|taps| (taps.client.seen(), taps.server.seen()))
    }

    /// Over TLS, what TCP carried since `mark` for `frames` bytes of WebSocket frames that
    /// the client wrote in `writes` calls: the reads the step counted are of the decrypted
    /// stream, and these are the TCP reads under it.
    pub(super) fn say_tcp_under_tls(
        &mut self,
        mark: Option<(Seen, Seen)>,
        frames: usize,
        writes: usize,
    ) -> Result<()> {
        let (Some((client_before, server_before)), Some((client, server))) =
            (mark, self.tcp_mark())
        else {
            return Ok(());
        };
        let sent = client.sent_len - client_before.sent_len;
        let reads = server.reads - server_before.reads;
        let received = server.received_len - server_before.received_len;
        self.say.fact(
            "under TLS",
            &format!(
                "client: {writes} write{} into TLS -> {} B on TCP ({} B of frames + {} B of\n\
                 {:w$}record headers, explicit nonces and tags)",
                plural(writes),
                thousands(sent),
                thousands(frames),
                thousands(sent.saturating_sub(frames)),
                "",
                w = LABEL + 4
            ),
        )?;
        self.say.fact(
            "",
            &format!(
                "server: {reads} TCP read{} of {} B; the reads above are of the decrypted stream",
                plural(reads),
                thousands(received)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use tether_teaching_tls::MAX_FRAGMENT_LEN;

    use super::*;
    use crate::demo::tests::{assert_in_order, narration, number};

    #[tokio::test]
    async fn rfc5246_the_five_tls_steps_are_listed_before_the_upgrade() {
        let args = Args {
            large: 128 << 10,
            ..Args::default()
        };
        let text = narration(&args).await;
        assert_in_order(
            &text,
            &[
                "Step 2  HTTPS first: the TLS 1.2 handshake in five steps",
                "certificate for demo.tether.test",
                "1 offer      client offered [",
                "TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c)]",
                "2 choose     server chose TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c)",
                "3 client     certificate valid for demo.tether.test: its chain leads to a configured trust anchor",
                "premaster: 48 random bytes, sent as 256 bytes, RSA PKCS#1 v1.5",
                "sent Finished, encrypted: ",
                "4 server     premaster decrypted with the server's private key",
                "client's Finished matches PRF(master, \"client finished\"",
                "5 client     server's Finished matches PRF(master, \"server finished\"",
                "records      application data is encrypted with AES-128-GCM",
                "Step 3  The Upgrade",
                "> host: demo.tether.test:",
                "text frame, 20 bytes inside TLS",
                "tls          TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009c), certificate for demo.tether.test checked",
            ],
        );
        assert!(!text.contains("on the wire"), "{text}");
    }

    #[tokio::test]
    async fn rfc5246_ecdhe_is_listed_as_a_signed_key_agreement() {
        let args = Args {
            large: 128 << 10,
            cipher: Some(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            ..Args::default()
        };
        let text = narration(&args).await;
        assert_in_order(
            &text,
            &[
                "server chose TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "server's X25519 key share: signature verified with the certificate's RSA key",
                "premaster: X25519 key agreement, the premaster never travels",
                "4 server     premaster: X25519(server secret, client public)",
                "records      application data is encrypted with AES-128-GCM",
            ],
        );
        assert!(!text.contains("PKCS#1"), "{text}");
    }

    #[test]
    fn a_missing_tls_event_is_an_error_not_a_line() {
        let empty = Transcript::default();
        assert!(handshake_lines(&empty, &empty).is_err());
    }

    /// Over TLS the reads the 粘包/拆包 steps count are reads of the decrypted stream: their
    /// sizes add up to the WebSocket bytes, while TCP carried those bytes plus 29 bytes per
    /// AES-128-GCM record (RFC 5246 §6.2.3.3, RFC 5288 §3: 5 header, 8 nonce, 16 tag).
    #[tokio::test]
    async fn over_tls_the_counted_reads_are_of_the_decrypted_stream() {
        let args = Args {
            large: 128 << 10,
            ..Args::default()
        };
        let text = narration(&args).await;
        // 粘包: one write of ten frames is one record, and one record is one decrypted read.
        let frames = number(
            &text,
            "10 messages queued, ",
            " bytes written in 1 write call",
        );
        assert_eq!(frames, 160);
        assert!(
            text.contains(&format!("1 read -> 10 messages (read sizes: {frames} B)")),
            "{text}"
        );
        let tcp = number(&text, "client: 1 write into TLS -> ", " B on TCP");
        assert_eq!(tcp, frames + 29);
        assert_eq!(number(&text, "server: 1 TCP read of ", " B;"), tcp);

        // 拆包: 131,072 B + a 14-byte header (64-bit length, mask key), in records of at most 16,384 B.
        let split = &text[text.find("Split packets").expect("the 拆包 step")..];
        let writes = number(split, "131,086 bytes written in ", " write calls");
        assert_eq!(writes, (131_086usize).div_ceil(MAX_FRAGMENT_LEN));
        let tcp = number(split, "writes into TLS -> ", " B on TCP");
        assert_eq!(tcp, 131_086 + 29 * writes);
        assert_eq!(number(split, "TCP reads of ", " B;"), tcp);
        // At most 64 KiB asked per read: at least 3 reads, whatever TCP did.
        assert!(
            number(split, "server       ", " reads -> 1 message") >= 3,
            "{split}"
        );
        assert!(text.contains("decoded intact: 131,072 bytes"), "{text}");
    }
}
