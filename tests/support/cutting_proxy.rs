//! A TCP proxy that cuts and freezes connections on a seeded random schedule: the hostile
//! path that sessions must survive. Test support shared by `tests/it` and
//! `crates/tether-cli/tests` (include it with `#[path]`); loopback only.
//!
//! ```text
//!  client ──► 127.0.0.1:P (proxy) ──► upstream
//!             each connection gets a budget of bytes drawn from the seed; once it has
//!             forwarded that many (both directions), it is either cut (both sockets reset)
//!             or frozen (nothing forwarded, sockets open) for `freeze_for`, then cut.
//! ```

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// When and how connections are broken.
#[derive(Debug, Clone, Copy)]
pub struct CutSchedule {
    /// Seed of the schedule: the same seed breaks the same connections at the same byte.
    pub seed: u64,
    /// Fewest bytes a connection forwards before it is broken.
    pub min_bytes: u64,
    /// Most bytes a connection forwards before it is broken.
    pub max_bytes: u64,
    /// Out of 100 broken connections, how many are frozen first rather than cut at once.
    pub freeze_percent: u64,
    /// How long a frozen connection stays open before it is cut.
    pub freeze_for: Duration,
    /// Connections broken at most; later ones are forwarded untouched (so a test ends).
    pub max_cuts: u64,
}

impl CutSchedule {
    /// Cuts every connection after 4 to 64 KiB, a quarter of them frozen 2 s first, at
    /// most `max_cuts` times.
    pub fn new(seed: u64, max_cuts: u64) -> Self {
        CutSchedule {
            seed,
            min_bytes: 4 << 10,
            max_bytes: 64 << 10,
            freeze_percent: 25,
            freeze_for: Duration::from_secs(2),
            max_cuts,
        }
    }
}

/// The running proxy; dropping it stops accepting (open connections end with their peers).
pub struct CuttingProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, schedule: CutSchedule) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cuts = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (c, n) = (Arc::clone(&cuts), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            let mut rng = schedule.seed;
            while let Ok((client, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::Relaxed);
                let span = schedule.max_bytes.saturating_sub(schedule.min_bytes) + 1;
                let budget = schedule.min_bytes + splitmix64(&mut rng) % span;
                let freeze = splitmix64(&mut rng) % 100 < schedule.freeze_percent;
                let cuts = Arc::clone(&c);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        // Forwarded as it comes: Nagle's delay on top of the peer's delayed
                        // acks would stall small messages 40 ms at a time.
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        forward(client, server, budget, freeze, schedule, cuts).await;
                    }
                });
            }
        });
        Ok(CuttingProxy {
            addr,
            cuts,
            connections,
            task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections broken so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards both ways until one side ends, or the budget is spent and the schedule breaks
/// the connection.
async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    budget: u64,
    freeze: bool,
    schedule: CutSchedule,
    cuts: Arc<AtomicU64>,
) {
    let mut up = vec![0u8; 16 << 10];
    let mut down = vec![0u8; 16 << 10];
    let mut forwarded = 0u64;
    loop {
        // Claimed before the cut, so concurrent connections never exceed `max_cuts`.
        let breaking = forwarded >= budget
            && cuts
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < schedule.max_cuts).then_some(n + 1)
                })
                .is_ok();
        if breaking {
            if freeze {
                tokio::time::sleep(schedule.freeze_for).await;
            }
            reset(&client);
            reset(&server);
            return;
        }
        if forwarded >= budget {
            forwarded = 0;
        }
        // At most the rest of the budget per read, so a cut falls at its exact byte.
        let room = usize::try_from(budget - forwarded).map_or(up.len(), |r| r.min(up.len()));
        let result = tokio::select! {
            read = client.read(&mut up[..room]) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => server.write_all(&up[..n]).await.map(|()| n),
            },
            read = server.read(&mut down[..room]) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => client.write_all(&down[..n]).await.map(|()| n),
            },
        };
        match result {
            Ok(n) => forwarded += n as u64,
            Err(_) => return,
        }
    }
}

/// Linger 0: the socket is reset on drop, as when a path dies, not closed politely. With a
/// zero linger the drop does not wait, so the deprecation's concern (a blocking drop) does
/// not apply.
#[allow(deprecated)]
fn reset(socket: &TcpStream) {
    let _ = socket.set_linger(Some(Duration::ZERO));
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
