//! Hostile peers against the teaching TLS (issue 9, point 5), over loopback TCP.
//!
//! Each test asserts the bound: how many reads a handshake makes before it gives up, how
//! many events the transcript holds, how many bytes wait in the outgoing buffer.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ring::aead;
use rustls_pki_types::ServerName;
use tether_teaching_tls::{
    connect, key_block, CipherSuite, Connection, Error, KeyLog, Step, TeachingTlsStream,
    TRANSCRIPT_ALERTS, TRANSCRIPT_MAX_BYTES, TRANSCRIPT_MAX_EVENTS,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::tls::pki::{ca_signed, Validity};

const NAME: &str = "tls.tether.test";
/// A guard against the hang these tests exist to catch; never reached when the code is right.
const GUARD: Duration = Duration::from_secs(10);

/// Reads a transport allows before it fails them: far more than any handshake here needs,
/// so a handshake that spins on 0-byte reads fails the test instead of hanging it.
const READ_BUDGET: usize = 64;

/// A transport that counts the reads made on it, and fails them past [`READ_BUDGET`].
struct Counting<S> {
    inner: S,
    reads: Arc<AtomicUsize>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.reads.load(Ordering::Relaxed) >= READ_BUDGET {
            return Poll::Ready(Err(std::io::Error::other("read budget exhausted")));
        }
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if poll.is_ready() {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What our server's handshake returned, with its transcript and how many reads it made.
struct ServerRun {
    result: Result<(), Error>,
    events: Vec<tether_teaching_tls::Event>,
    dropped: usize,
    transcript_bytes: usize,
    reads: usize,
}

/// Runs our server's handshake on one loopback connection while `attacker` drives the
/// other end.
async fn server_against<F, Fut>(attacker: F) -> ServerRun
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(ca_signed(&[NAME], Validity::Now).server_config());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let reads = Arc::new(AtomicUsize::new(0));
        let io = Counting {
            inner: tcp,
            reads: reads.clone(),
        };
        let mut tls = TeachingTlsStream::new(Connection::server(config), io);
        let result = tls.handshake().await;
        let t = tls.transcript();
        ServerRun {
            result,
            events: t.events().to_vec(),
            dropped: t.dropped(),
            transcript_bytes: t.byte_len(),
            reads: reads.load(Ordering::Relaxed),
        }
    });
    attacker(TcpStream::connect(addr).await.unwrap()).await;
    timeout(GUARD, server)
        .await
        .expect("the server's handshake did not end")
        .unwrap()
}

const CLOSE_NOTIFY: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00];

#[tokio::test]
async fn attack_rfc5246_7_2_1_close_notify_then_fin_during_the_handshake_is_an_error() {
    // The seven bytes of issue 9: a close_notify alert, then FIN. The handshake used to
    // loop on 0-byte reads for ever.
    let run = server_against(|mut tcp| async move {
        tcp.write_all(&CLOSE_NOTIFY).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    })
    .await;
    assert!(
        matches!(run.result, Err(Error::CloseNotifyDuringHandshake)),
        "{:?}",
        run.result
    );
    // One read brings the alert; the handshake stops there.
    assert!(run.reads <= 2, "{} reads", run.reads);
}

#[tokio::test]
async fn attack_fin_in_the_middle_of_the_client_hello_is_eof_during_handshake() {
    let pki = ca_signed(&[NAME], Validity::Now);
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    let hello = Connection::client(
        Arc::new(pki.client_config()),
        name,
        rustls_pki_types::UnixTime::now(),
    )
    .unwrap()
    .take_outgoing();
    let half = hello.len() / 2;
    let run = server_against(|mut tcp| async move {
        tcp.write_all(&hello[..half]).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    })
    .await;
    assert!(
        matches!(run.result, Err(Error::EofDuringHandshake { buffered }) if buffered == half),
        "{:?}",
        run.result
    );
    assert!(run.reads <= 3, "{} reads", run.reads);
}

#[tokio::test]
async fn attack_client_facing_close_notify_before_server_hello_fails_its_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake_server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 512];
        let _ = tcp.read(&mut hello).await.unwrap();
        tcp.write_all(&CLOSE_NOTIFY).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    });
    let pki = ca_signed(&[NAME], Validity::Now);
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    let tcp = Counting {
        inner: TcpStream::connect(addr).await.unwrap(),
        reads: Arc::default(),
    };
    let result = timeout(GUARD, connect(Arc::new(pki.client_config()), name, tcp))
        .await
        .expect("the client's handshake did not end");
    assert!(matches!(result, Err(Error::CloseNotifyDuringHandshake)));
    fake_server.await.unwrap();
}

#[tokio::test]
async fn attack_warning_alert_flood_keeps_the_transcript_bounded() {
    const ALERTS: usize = 20_000;
    let run = server_against(|mut tcp| async move {
        // user_canceled (90) as a warning, over and over, then close_notify to end it.
        let mut flood = Vec::with_capacity(ALERTS * 7);
        for _ in 0..ALERTS {
            flood.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 90]);
        }
        flood.extend_from_slice(&CLOSE_NOTIFY);
        tcp.write_all(&flood).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    })
    .await;
    assert!(matches!(run.result, Err(Error::CloseNotifyDuringHandshake)));
    let alerts = run.events.iter().filter(|e| e.step == Step::Close).count();
    assert_eq!(alerts, TRANSCRIPT_ALERTS);
    assert!(run.events.len() <= TRANSCRIPT_MAX_EVENTS);
    assert!(run.transcript_bytes <= TRANSCRIPT_MAX_BYTES);
    // Every alert past the limit (and the close_notify) was counted, not stored.
    assert_eq!(run.dropped, ALERTS + 1 - TRANSCRIPT_ALERTS);
}

/// Collects the master secret through the key log.
#[derive(Default)]
struct Secrets(Mutex<Option<(Vec<u8>, [u8; 48])>>);

impl KeyLog for Secrets {
    fn log(&self, _label: &str, client_random: &[u8], secret: &[u8]) {
        let mut master = [0u8; 48];
        master.copy_from_slice(secret);
        *self.0.lock().unwrap() = Some((client_random.to_vec(), master));
    }
}

/// Seals records the way our server's write side would (AES-128-GCM, RFC 5288), from
/// sequence number `seq` on: the attacker holds the session keys.
struct ForgedWriter {
    key: aead::LessSafeKey,
    salt: [u8; 4],
    seq: u64,
}

impl ForgedWriter {
    fn record(&mut self, content_type: u8, plaintext: &[u8]) -> Vec<u8> {
        let seq = self.seq;
        self.seq += 1;
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&seq.to_be_bytes());
        aad[8] = content_type;
        aad[9..11].copy_from_slice(&[0x03, 0x03]);
        aad[11..].copy_from_slice(&(plaintext.len() as u16).to_be_bytes());
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut body,
            )
            .unwrap();
        let mut out = vec![content_type, 0x03, 0x03];
        out.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

#[tokio::test]
async fn attack_rfc5246_7_4_1_1_hello_request_flood_queues_one_no_renegotiation_alert() {
    const REQUESTS: usize = 10_000;
    let suite = CipherSuite::RSA_WITH_AES_128_GCM_SHA256;
    let pki = ca_signed(&[NAME], Validity::Now);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let secrets = Arc::new(Secrets::default());
    let mut server_config = pki.server_config();
    server_config
        .set_cipher_suites(vec![suite])
        .set_key_log(Some(secrets.clone()));
    // The hostile server: a real handshake, then a flood of HelloRequests sealed with the
    // session keys, then one application record to tell the client the flood is over.
    let hostile = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut conn = Connection::server(Arc::new(server_config));
        let mut server_random = None;
        let mut buf = vec![0u8; 32 * 1024];
        while !conn.is_established() {
            let n = tcp.read(&mut buf).await.unwrap();
            conn.receive(&buf[..n]).unwrap();
            let out = conn.take_outgoing();
            // ServerHello: record header (5), handshake header (4), version (2), random.
            if server_random.is_none() && out.len() > 43 {
                server_random = Some(<[u8; 32]>::try_from(&out[11..43]).unwrap());
            }
            tcp.write_all(&out).await.unwrap();
        }
        let (client_random, master) = secrets.0.lock().unwrap().clone().unwrap();
        let client_random = <[u8; 32]>::try_from(client_random).unwrap();
        let keys = key_block(suite, &master, &client_random, &server_random.unwrap());
        let key = aead::UnboundKey::new(&aead::AES_128_GCM, &keys.server_write_key).unwrap();
        // Sequence number 0 went to the server's Finished.
        let mut forge = ForgedWriter {
            key: aead::LessSafeKey::new(key),
            salt: <[u8; 4]>::try_from(keys.server_write_iv.as_slice()).unwrap(),
            seq: 1,
        };
        let mut flood = Vec::new();
        for _ in 0..REQUESTS {
            flood.extend_from_slice(&forge.record(0x16, &[0, 0, 0, 0]));
        }
        flood.extend_from_slice(&forge.record(0x17, b"done"));
        tcp.write_all(&flood).await.unwrap();
        // Keep the socket open until the client has read everything.
        let _ = tcp.read(&mut buf).await;
    });
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client_config = pki.client_config();
    client_config.set_cipher_suites(vec![suite]);
    let mut tls = connect(Arc::new(client_config), name, tcp).await.unwrap();
    let mut got = [0u8; 4];
    timeout(GUARD, tls.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"done");
    // The reader never wrote, so whatever the requests queued is still there: one alert
    // record (header 5, explicit nonce 8, level and description 2, tag 16).
    assert_eq!(tls.connection().outgoing_len(), 5 + 8 + 2 + 16);
    drop(tls);
    hostile.await.unwrap();
}
