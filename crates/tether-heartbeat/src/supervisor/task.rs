//! The supervisor's task: one link at a time, and between links the client's waits, retries
//! and pauses.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::{Backoff, ReconnectConfig};
use crate::close::{CloseReason, Failure};
use crate::link::{run_link, Command, Ctx, End};
use crate::probe::Probe;
use crate::retry::{Decision, RetryPolicy};
use crate::splitmix::splitmix64;
use crate::state::{Event, LinkState};
use crate::transport::Transport;

pub(super) async fn run_accepted<T, M, E, P>(mut ctx: Ctx<M, P>, transport: T)
where
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
{
    let reason = match run_link(&mut ctx, transport).await {
        End::Failed(Failure::Local(reason)) => reason,
        End::Failed(failure) => CloseReason::Ended(Box::new(failure)),
        End::Close | End::ReconnectNow | End::Pause | End::HandleDropped => CloseReason::Local,
    };
    ctx.shared.set_state(LinkState::Closed(reason));
}

/// What the client does after a wait or a link.
enum Next {
    Connect,
    Failed(Failure),
    Pause,
    Stop(CloseReason),
}

pub(super) async fn run_client<T, M, E, P, C, CFut, H, HFut, R>(
    mut ctx: Ctx<M, P>,
    config: ReconnectConfig,
    mut connect: C,
    mut on_connected: H,
    mut policy: R,
) where
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
    C: FnMut() -> CFut,
    CFut: Future<Output = Result<T, Failure>>,
    H: FnMut(T) -> HFut,
    HFut: Future<Output = Result<T, Failure>>,
    R: RetryPolicy,
{
    let mut backoff = Backoff::new(&config, splitmix64(&mut ctx.rng));
    let mut outage = Outage::default();
    let mut paused = false;
    let reason = loop {
        if paused {
            ctx.shared.set_state(LinkState::Paused);
            match wait_for_resume(&mut ctx).await {
                Next::Stop(reason) => break reason,
                _ => paused = false,
            }
        }
        ctx.shared.set_state(LinkState::Connecting {
            attempt: backoff.attempt(),
        });
        let attempt = async {
            let transport = connect().await?;
            on_connected(transport).await
        };
        let next = match with_commands(&mut ctx, attempt).await {
            Err(next) => next,
            Ok(Err(failure)) => Next::Failed(failure),
            Ok(Ok(transport)) => serve_link(&mut ctx, &mut backoff, &mut outage, transport).await,
        };
        let now = Instant::now();
        let failure = match next {
            Next::Stop(reason) => break reason,
            Next::Connect => {
                outage.begin(now);
                continue;
            }
            Next::Pause => {
                outage.begin(now);
                paused = true;
                continue;
            }
            Next::Failed(failure) => failure,
        };
        let since = outage.begin(now);
        match retry_after(
            &mut ctx,
            &config,
            &mut backoff,
            &mut policy,
            failure,
            now - since,
        )
        .await
        {
            Ok(pause) => paused = pause,
            Err(reason) => break reason,
        }
    };
    tracing::info!(%reason, "supervisor stopped");
    ctx.shared.set_state(LinkState::Closed(reason));
}

/// When the client lost its connection, and whether it ever had one (a first connection is
/// `Connected`, a later one `Reconnected` with the downtime).
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    ever_connected: bool,
}

impl Outage {
    /// The outage started at `now`, unless it had already started; returns its start.
    fn begin(&mut self, now: Instant) -> Instant {
        *self.since.get_or_insert(now)
    }

    /// Connected at `now`: the event to emit, and the outage is over.
    fn end(&mut self, now: Instant, attempts: u32) -> Event {
        let event = match self.since.take() {
            Some(since) if self.ever_connected => Event::Reconnected {
                downtime: now - since,
                attempts,
            },
            _ => Event::Connected,
        };
        self.ever_connected = true;
        event
    }
}

/// A connection is up: announces it, runs the link until it ends, and says what the client
/// does next.
async fn serve_link<T, M, E, P>(
    ctx: &mut Ctx<M, P>,
    backoff: &mut Backoff,
    outage: &mut Outage,
    transport: T,
) -> Next
where
    P: Probe<M>,
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
{
    let now = Instant::now();
    backoff.on_connected(now.into_std());
    ctx.shared.emit(outage.end(now, backoff.attempt()));
    let end = run_link(ctx, transport).await;
    backoff.on_disconnected(Instant::now().into_std());
    match end {
        End::Failed(failure) => Next::Failed(failure),
        End::ReconnectNow => Next::Connect,
        End::Pause => Next::Pause,
        End::Close | End::HandleDropped => Next::Stop(CloseReason::Local),
    }
}

/// After `failure`, `down` into an outage: asks the policy, checks the retry budget, then
/// waits out the backoff while answering commands. `Ok(paused)` to connect again (or to
/// pause first), `Err` with the reason the supervisor stops.
async fn retry_after<M, P, R: RetryPolicy>(
    ctx: &mut Ctx<M, P>,
    config: &ReconnectConfig,
    backoff: &mut Backoff,
    policy: &mut R,
    failure: Failure,
    down: Duration,
) -> Result<bool, CloseReason> {
    tracing::debug!(%failure, "connection lost or attempt failed");
    ctx.shared.emit(Event::Disconnected(failure.clone()));
    let floor = match policy.decide(&failure, backoff.attempt() + 1) {
        Decision::Fatal => return Err(CloseReason::Fatal(Box::new(failure))),
        Decision::Retry { floor } => floor,
    };
    let out_of_retries = config
        .max_retries
        .is_some_and(|max| backoff.attempt() >= max);
    let out_of_time = config.max_elapsed.is_some_and(|max| down >= max);
    if out_of_retries || out_of_time {
        return Err(CloseReason::RetriesExhausted(Box::new(failure)));
    }
    let attempt = backoff.attempt() + 1;
    let delay = backoff.next_delay(floor);
    ctx.shared
        .set_state(LinkState::Reconnecting { attempt, delay });
    ctx.shared.emit(Event::Reconnecting { attempt, delay });
    match with_commands(ctx, tokio::time::sleep(delay)).await {
        Ok(()) | Err(Next::Connect) | Err(Next::Failed(_)) => Ok(false),
        Err(Next::Pause) => Ok(true),
        Err(Next::Stop(reason)) => Err(reason),
    }
}

/// Runs `work` while answering commands; a command that interrupts it wins.
async fn with_commands<M, P, F: Future>(ctx: &mut Ctx<M, P>, work: F) -> Result<F::Output, Next> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Ok(output),
            command = ctx.commands.recv() => match command {
                None | Some(Command::Close(_)) => return Err(Next::Stop(CloseReason::Local)),
                Some(Command::ReconnectNow) => return Err(Next::Connect),
                Some(Command::Pause) => return Err(Next::Pause),
                Some(Command::Wake | Command::Resume) => {}
            },
        }
    }
}

async fn wait_for_resume<M, P>(ctx: &mut Ctx<M, P>) -> Next {
    loop {
        match ctx.commands.recv().await {
            None | Some(Command::Close(_)) => return Next::Stop(CloseReason::Local),
            Some(Command::Resume | Command::ReconnectNow) => return Next::Connect,
            Some(Command::Wake | Command::Pause) => {}
        }
    }
}
