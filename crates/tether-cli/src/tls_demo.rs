//! `tether tls-demo`: the tutorial's HTTPS handshake, live.
//!
//! - no arguments: our client and server on loopback, the annotated five steps, a few
//!   encrypted records, then the forward-secrecy lesson;
//! - `--connect HOST:PORT`: only the client, against any TLS 1.2 server, then stdin/stdout
//!   like `openssl s_client`;
//! - `--listen ADDR --cert FILE --key FILE`: only the server, echoing what it receives;
//!   a client has `--handshake-timeout` seconds to finish the handshake, at most
//!   `--max-connections` are served at once, and accept errors never end the server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use tether::accept_error::{AcceptBackoff, AcceptFailure};

use crate::pki::DemoPki;
use crate::tap::{Tap, Wiretap};
use tether_teaching_tls::{
    decrypt_recording, CipherSuite, ClientConfig, Connection, KeyLog, KeyLogFile, RenderOptions,
    ServerConfig, ServerKey, StolenSecret, TeachingTlsStream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Arguments of `tether tls-demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct TlsDemoArgs {
    /// Run only the client against this TLS 1.2 server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "listen")]
    connect: Option<String>,
    /// The name to ask for (SNI) and check in the certificate. Default: HOST.
    #[arg(long, value_name = "NAME", requires = "connect")]
    server_name: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the public roots.
    #[arg(long, value_name = "FILE", requires = "connect")]
    ca: Option<PathBuf>,
    /// Offer only this suite: RSA, ECDHE or CHACHA (IANA or OpenSSL names work too).
    #[arg(long, value_name = "SUITE")]
    cipher: Option<String>,
    /// Continue when the certificate check fails, like clicking through a browser
    /// warning. Dangerous: anyone on the path can read and change the traffic.
    #[arg(long)]
    dangerous_accept_invalid_certificates: bool,
    /// Run only the server on this address, echoing what it receives.
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    listen: Option<String>,
    /// The server's certificate chain, PEM.
    #[arg(long, value_name = "FILE", requires = "listen")]
    cert: Option<PathBuf>,
    /// The server's RSA private key, PEM (PKCS#8 or PKCS#1).
    #[arg(long, value_name = "FILE", requires = "listen")]
    key: Option<PathBuf>,
    /// With --listen: seconds a client has to complete the handshake before it is
    /// dropped (a silent or slow client cannot hold a connection open for ever).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// With --listen: connections served at once; further clients wait in the kernel's
    /// accept queue until one ends.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Print secrets (premaster, master secret, keys). On by default in the loopback demo.
    #[arg(long)]
    show_secrets: bool,
}

pub(crate) async fn run(args: TlsDemoArgs) -> anyhow::Result<ExitCode> {
    let suites = match &args.cipher {
        Some(name) => vec![CipherSuite::from_name(name).ok_or_else(|| {
            anyhow!(
                "unknown cipher suite {name:?}: this demo speaks {}",
                CipherSuite::SUPPORTED
                    .map(|s| s.name().unwrap_or("?"))
                    .join(", ")
            )
        })?],
        None => CipherSuite::SUPPORTED.to_vec(),
    };
    if let Some(target) = &args.connect {
        return connect(&args, target, suites).await;
    }
    if let Some(addr) = &args.listen {
        return listen(&args, addr, suites).await;
    }
    loopback_demo(suites).await
}

fn render(label: &str, show_secrets: bool) -> RenderOptions {
    let mut o = RenderOptions::default();
    o.label(label).show_secrets(show_secrets);
    o
}

/// The key log named by `SSLKEYLOGFILE`, if set, so Wireshark can decrypt a capture.
pub(crate) fn key_log() -> Option<Arc<dyn KeyLog>> {
    KeyLogFile::from_env().map(|k| Arc::new(k) as Arc<dyn KeyLog>)
}

// ---- --connect ------------------------------------------------------------------------

async fn connect(
    args: &TlsDemoArgs,
    target: &str,
    suites: Vec<CipherSuite>,
) -> anyhow::Result<ExitCode> {
    let host = target
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .ok_or_else(|| anyhow!("--connect wants HOST:PORT, got {target:?}"))?;
    let name = args.server_name.clone().unwrap_or_else(|| host.to_owned());
    let name = ServerName::try_from(name.clone())
        .with_context(|| format!("invalid server name {name:?}"))?;
    let mut config = ClientConfig::default();
    match &args.ca {
        Some(path) => {
            for cert in read_certs(path)? {
                config.add_root(cert)?;
            }
        }
        None => {
            config.add_trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
    }
    config
        .set_cipher_suites(suites)
        .dangerous_accept_invalid_certificates(args.dangerous_accept_invalid_certificates)
        .set_key_log(key_log());
    let tcp = TcpStream::connect(target)
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    let conn = Connection::client(Arc::new(config), name, UnixTime::now())?;
    let mut tls = TeachingTlsStream::new(conn, tcp);
    let result = tls.handshake().await;
    // The handshake goes to stderr: stdout carries only what the server sends.
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "{}",
        tls.transcript()
            .render(&render("client", args.show_secrets))
    )?;
    if let Err(e) = result {
        writeln!(err, "handshake failed: {e}")?;
        return Ok(ExitCode::FAILURE);
    }
    writeln!(
        err,
        "── connected; stdin goes to the server, end of input sends close_notify"
    )?;
    drop(err);

    let (mut rd, mut wr) = tokio::io::split(tls);
    let up = tokio::spawn(async move {
        tokio::io::copy(&mut tokio::io::stdin(), &mut wr).await?;
        wr.shutdown().await
    });
    let mut stdout = tokio::io::stdout();
    let down = tokio::io::copy(&mut rd, &mut stdout).await;
    stdout.flush().await?;
    up.abort();
    let code = match down {
        Ok(_) => 0,
        Err(e) => {
            writeln!(std::io::stderr(), "connection failed: {e}")?;
            1
        }
    };
    // tokio's stdin reads on a blocking thread that cannot be cancelled: returning would
    // make the runtime wait for the user's next line. The server is done, so leave now.
    std::process::exit(code)
}

// ---- --listen -------------------------------------------------------------------------

async fn listen(
    args: &TlsDemoArgs,
    addr: &str,
    suites: Vec<CipherSuite>,
) -> anyhow::Result<ExitCode> {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        bail!("--listen needs --cert and --key");
    };
    let chain = read_certs(cert)?;
    let key = read_key(key)?;
    let mut config = ServerConfig::new(chain, ServerKey::from_der(&key)?)?;
    config.set_cipher_suites(suites).set_key_log(key_log());
    let config = Arc::new(config);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    writeln!(std::io::stdout(), "listening on {}", listener.local_addr()?)?;
    let show = args.show_secrets;
    let handshake_timeout = Duration::from_secs(args.handshake_timeout);
    let slots = Arc::new(Semaphore::new(args.max_connections as usize));
    let mut backoff = AcceptBackoff::new();
    loop {
        // Take a slot before accepting: at the limit, clients wait in the accept queue
        // (TCP pushes back) instead of costing a task each.
        let slot = slots.clone().acquire_owned().await?;
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            Err(e) => {
                accept_failed(e, &mut backoff).await?;
                continue;
            }
        };
        let config = config.clone();
        tokio::spawn(async move {
            let _slot = slot;
            serve_one(config, tcp, peer, handshake_timeout, show).await;
        });
    }
}

/// Accept errors end the server only when the listener itself is unusable: one client's
/// failure is skipped, a shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM...) is waited out with
/// the facade's backoff, the same rules as `tether::Server`.
async fn accept_failed(e: std::io::Error, backoff: &mut AcceptBackoff) -> std::io::Result<()> {
    let _ = writeln!(std::io::stderr(), "accept failed: {e}");
    match AcceptFailure::of(&e) {
        AcceptFailure::Connection => Ok(()),
        AcceptFailure::Listener => Err(e),
        _ => {
            tokio::time::sleep(backoff.pause()).await;
            Ok(())
        }
    }
}

/// One client of `--listen`: the handshake within `handshake_timeout`, then echo.
async fn serve_one(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    handshake_timeout: Duration,
    show: bool,
) {
    let mut tls = TeachingTlsStream::new(Connection::server(config), tcp);
    let result = tokio::time::timeout(handshake_timeout, tls.handshake()).await;
    let text = tls
        .transcript()
        .render(&render(&format!("server[{peer}]"), show));
    let _ = write!(std::io::stdout(), "{text}");
    match result {
        Err(_) => {
            let _ = writeln!(
                std::io::stdout(),
                "handshake with {peer} timed out after {}s",
                handshake_timeout.as_secs()
            );
            return;
        }
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stdout(), "handshake with {peer} failed: {e}");
            return;
        }
        Ok(Ok(())) => {}
    }
    let (mut rd, mut wr) = tokio::io::split(tls);
    let echoed = tokio::io::copy(&mut rd, &mut wr).await;
    let _ = wr.shutdown().await;
    let _ = writeln!(std::io::stdout(), "{peer} done: {echoed:?}");
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no CERTIFICATE in {}", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("bad PEM in {}", path.display()))?
        .ok_or_else(|| anyhow!("no private key in {}", path.display()))
}

// ---- loopback demo --------------------------------------------------------------------

const NAME: &str = "tls-demo.tether.test";

async fn loopback_demo(suites: Vec<CipherSuite>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Generating a demo CA and a server certificate for {NAME} (RSA-2048)..."
    )?;
    let pki = DemoPki::generate(NAME)?;

    // The tutorial's flow is the RSA suite; show it unless the user picked one.
    let first = if suites.contains(&CipherSuite::RSA_WITH_AES_128_GCM_SHA256) {
        CipherSuite::RSA_WITH_AES_128_GCM_SHA256
    } else {
        suites[0]
    };
    writeln!(out, "\n=== The five steps, {first} ===\n")?;
    drop(out);
    let shown = session(&pki, first, true).await?;

    // The lesson compares the two key exchanges, whichever suite was shown above.
    let rsa_suite = CipherSuite::RSA_WITH_AES_128_GCM_SHA256;
    let ecdhe_suite = CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256;
    let mut recordings = Vec::new();
    for suite in [rsa_suite, ecdhe_suite] {
        if shown.suite.is_ephemeral() == suite.is_ephemeral() {
            recordings.push(shown.clone());
        } else {
            recordings.push(session(&pki, suite, false).await?);
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n=== Forward secrecy ===\n")?;
    writeln!(
        out,
        "Two sessions, one with RSA key transport and one with ECDHE, were recorded on the\n\
         wire. Years later the server's private key leaks. What can the recordings reveal?\n"
    )?;
    for recording in &recordings {
        report_eavesdrop(&mut out, recording, &pki.key)?;
    }
    writeln!(
        out,
        "\nLesson: with RSA key transport one stolen key opens every recorded session; with\n\
         ECDHE each session's secret dies with its ephemeral keys."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn report_eavesdrop(
    out: &mut impl std::io::Write,
    rec: &Recording,
    key: &ServerKey,
) -> anyhow::Result<()> {
    let seen = rec.wiretap.seen();
    match decrypt_recording(&seen.sent, &seen.received, StolenSecret::ServerKey(key)) {
        Ok(d) => writeln!(
            out,
            "  {}: DECRYPTED with the stolen key\n      client said {:?}\n      server said {:?}",
            d.suite,
            String::from_utf8_lossy(&d.client_data),
            String::from_utf8_lossy(&d.server_data)
        )?,
        Err(e) => writeln!(out, "  {}: safe. {e}", rec.suite)?,
    }
    Ok(())
}

/// The bytes of one session, as a wiretap saw them.
#[derive(Clone)]
struct Recording {
    suite: CipherSuite,
    /// The client's transport: sent is what went to the server.
    wiretap: Arc<Wiretap>,
}

/// Runs one loopback session with `suite`: handshake, two requests and their echoes.
/// Prints the transcripts when `verbose`.
async fn session(pki: &DemoPki, suite: CipherSuite, verbose: bool) -> anyhow::Result<Recording> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_config = pki.server_config()?;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TeachingTlsStream::new(Connection::server(Arc::new(server_config)), tcp);
        tls.handshake().await?;
        let mut buf = [0u8; 256];
        loop {
            let n = tls.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let mut answer = b"echo: ".to_vec();
            answer.extend_from_slice(&buf[..n]);
            tls.write_all(&answer).await?;
        }
        tls.shutdown().await?;
        Ok::<_, anyhow::Error>(tls.transcript().clone())
    });

    let client_config = pki.client_config(vec![suite])?;
    let recording = Recording {
        suite,
        wiretap: Wiretap::recording(),
    };
    let tap = Tap::new(TcpStream::connect(addr).await?, recording.wiretap.clone());
    let name = ServerName::try_from(NAME)?.to_owned();
    let mut tls = TeachingTlsStream::new(
        Connection::client(Arc::new(client_config), name, UnixTime::now())?,
        tap,
    );
    tls.handshake().await?;
    for request in ["GET /index.html", "hello through the record layer"] {
        tls.write_all(request.as_bytes()).await?;
        tls.flush().await?;
        let mut buf = [0u8; 256];
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            bail!("the demo server closed early");
        }
    }
    tls.shutdown().await?;
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await?;
    let server_transcript = server.await??;
    if verbose {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "--- what the client saw and did (steps 1, 2, 3, 5) ---"
        )?;
        write!(out, "{}", tls.transcript().render(&render("client", true)))?;
        writeln!(out, "\n--- what the server saw and did (steps 1, 2, 4) ---")?;
        write!(out, "{}", server_transcript.render(&render("server", true)))?;
    }
    Ok(recording)
}
