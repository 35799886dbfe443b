//! The server's sessions: attached ones, parked ones waiting for a resume within the
//! window, and the ids it dropped (docs/sessions.md §7). Bounded in count, bytes and time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::config::RegistryConfig;
use crate::error::Error;
use crate::id::SessionId;
use crate::reason::LostReason;

/// Which connection carries a session: a resume hands out a new one, so a connection that
/// lost its session to another cannot park it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attachment(u64);

/// A session that came back.
#[derive(Debug)]
pub struct Resumed<'a, S> {
    /// The session's state.
    pub session: &'a S,
    /// The new connection's attachment.
    pub attachment: Attachment,
    /// Whether another connection carried it until now (it must stop reading and be closed
    /// with `\0lost replaced`).
    pub replaced: bool,
}

/// A session the registry let go: the application still holding it ends it with `reason`.
#[derive(Debug)]
pub struct Dropped<S> {
    /// The session.
    pub id: SessionId,
    /// Its state.
    pub session: S,
    /// Why: [`LostReason::Expired`] or [`LostReason::Limit`].
    pub reason: LostReason,
}

#[derive(Debug)]
enum Place {
    Attached(Attachment),
    Parked { key: (Instant, u64), bytes: usize },
}

#[derive(Debug)]
struct Entry<S> {
    session: S,
    place: Place,
}

/// The registry, generic over what the server keeps per session (`S`).
///
/// Inputs: [`open`](Self::open), [`resume`](Self::resume), [`park`](Self::park),
/// [`remove`](Self::remove), [`handle_timeout`](Self::handle_timeout); output:
/// [`poll_timeout`](Self::poll_timeout), and the [`Dropped`] sessions each call returns.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tether_session::{LostReason, Registry, RegistryConfig, SessionId};
///
/// let start = Instant::now();
/// let mut registry = Registry::new(RegistryConfig::default()).unwrap();
/// let id = SessionId::from_bytes([1; 16]);
/// let first = registry.open(id, "state").unwrap();
/// assert!(registry.park(id, first, start, 0).is_empty());
/// assert_eq!(registry.resume(id).unwrap().session, &"state");
/// let second = registry.resume(id).unwrap().attachment; // still attached: replaced
/// registry.park(id, second, start, 0);
/// let later = start + Duration::from_secs(121);
/// let dropped = registry.handle_timeout(later);
/// assert_eq!(dropped[0].reason, LostReason::Expired);
/// assert_eq!(registry.resume(id).unwrap_err(), LostReason::Expired);
/// ```
#[derive(Debug)]
pub struct Registry<S> {
    config: RegistryConfig,
    sessions: HashMap<SessionId, Entry<S>>,
    /// Parked sessions by park time (oldest first); the second key breaks ties.
    parked: BTreeMap<(Instant, u64), SessionId>,
    parked_bytes: usize,
    /// Dropped ids, oldest first, with why and until when they are remembered.
    dropped: VecDeque<(SessionId, LostReason, Instant)>,
    dropped_index: HashMap<SessionId, LostReason>,
    next: u64,
}

impl<S> Registry<S> {
    /// An empty registry.
    ///
    /// # Errors
    ///
    /// An invalid `config`.
    pub fn new(config: RegistryConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Registry {
            config,
            sessions: HashMap::new(),
            parked: BTreeMap::new(),
            parked_bytes: 0,
            dropped: VecDeque::new(),
            dropped_index: HashMap::new(),
            next: 0,
        })
    }

    /// Registers a new session, attached to its first connection. `None` if the id is
    /// taken (with 128 random bits, only a broken random generator gets there).
    pub fn open(&mut self, id: SessionId, session: S) -> Option<Attachment> {
        if self.sessions.contains_key(&id) || self.dropped_index.contains_key(&id) {
            return None;
        }
        let attachment = self.attachment();
        self.sessions.insert(
            id,
            Entry {
                session,
                place: Place::Attached(attachment),
            },
        );
        Some(attachment)
    }

    /// A client presents `id`. The session, parked or attached (then the new connection
    /// wins: docs/sessions.md §7), is attached to a new connection.
    ///
    /// # Errors
    ///
    /// The reason for `\0lost`: [`LostReason::Expired`] or [`LostReason::Limit`] for an id
    /// dropped and still remembered, [`LostReason::Unknown`] otherwise.
    pub fn resume(&mut self, id: SessionId) -> Result<Resumed<'_, S>, LostReason> {
        let attachment = self.attachment();
        let Some(entry) = self.sessions.get_mut(&id) else {
            return Err(self
                .dropped_index
                .get(&id)
                .copied()
                .unwrap_or(LostReason::Unknown));
        };
        let replaced = match std::mem::replace(&mut entry.place, Place::Attached(attachment)) {
            Place::Attached(_) => true,
            Place::Parked { key, bytes } => {
                self.parked.remove(&key);
                self.parked_bytes -= bytes;
                false
            }
        };
        Ok(Resumed {
            session: &entry.session,
            attachment,
            replaced,
        })
    }

    /// The connection `attachment` of session `id` ended at `now` without the session
    /// finishing: park it for the resume window, holding `bytes` (its replay buffer). Does
    /// nothing if another connection carries it now. Returns the sessions dropped to stay
    /// within the bounds (oldest first, [`LostReason::Limit`]).
    pub fn park(
        &mut self,
        id: SessionId,
        attachment: Attachment,
        now: Instant,
        bytes: usize,
    ) -> Vec<Dropped<S>> {
        let key = (now, self.next);
        match self.sessions.get_mut(&id) {
            Some(entry) if matches!(entry.place, Place::Attached(a) if a == attachment) => {
                entry.place = Place::Parked { key, bytes };
            }
            _ => return Vec::new(),
        }
        self.next += 1;
        self.parked.insert(key, id);
        self.parked_bytes += bytes;
        let mut dropped = Vec::new();
        while self.parked.len() > self.config.max_parked()
            || self.parked_bytes > self.config.max_parked_bytes()
        {
            match self.drop_oldest(now, LostReason::Limit) {
                Some(d) => dropped.push(d),
                None => break,
            }
        }
        dropped
    }

    /// The session finished (or was lost on its connection): forget it. Gives its state back.
    pub fn remove(&mut self, id: SessionId) -> Option<S> {
        let entry = self.sessions.remove(&id)?;
        if let Place::Parked { key, bytes } = entry.place {
            self.parked.remove(&key);
            self.parked_bytes -= bytes;
        }
        Some(entry.session)
    }

    /// Forgets every session, attached and parked, and gives their states back: the server
    /// stops (a client that resumes against its successor hears `unknown`).
    pub fn drain(&mut self) -> impl Iterator<Item = S> + '_ {
        self.parked.clear();
        self.parked_bytes = 0;
        self.sessions.drain().map(|(_, entry)| entry.session)
    }

    /// Drops parked sessions whose window ended by `now` ([`LostReason::Expired`]) and
    /// forgets dropped ids remembered long enough.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Dropped<S>> {
        let window = self.config.resume_window();
        let mut dropped = Vec::new();
        while let Some((&(at, _), _)) = self.parked.first_key_value() {
            if at + window > now {
                break;
            }
            match self.drop_oldest(now, LostReason::Expired) {
                Some(d) => dropped.push(d),
                None => break,
            }
        }
        while let Some(&(id, _, until)) = self.dropped.front() {
            if until > now {
                break;
            }
            self.dropped.pop_front();
            self.dropped_index.remove(&id);
        }
        dropped
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let window = self.config.resume_window();
        let parked = self.parked.keys().next().map(|&(at, _)| at + window);
        let dropped = self.dropped.front().map(|&(_, _, until)| until);
        match (parked, dropped) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sessions held, attached and parked.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Parked sessions.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Bytes of the parked sessions' replay buffers.
    pub fn parked_bytes(&self) -> usize {
        self.parked_bytes
    }

    /// Dropped ids remembered.
    pub fn remembered(&self) -> usize {
        self.dropped.len()
    }

    /// The session's state, attached or parked.
    pub fn get(&self, id: &SessionId) -> Option<&S> {
        self.sessions.get(id).map(|e| &e.session)
    }

    fn attachment(&mut self) -> Attachment {
        self.next += 1;
        Attachment(self.next)
    }

    fn drop_oldest(&mut self, now: Instant, reason: LostReason) -> Option<Dropped<S>> {
        let (_, id) = self.parked.pop_first()?;
        let entry = self.sessions.remove(&id)?;
        if let Place::Parked { bytes, .. } = entry.place {
            self.parked_bytes -= bytes;
        }
        self.remember(id, reason, now);
        Some(Dropped {
            id,
            session: entry.session,
            reason,
        })
    }

    fn remember(&mut self, id: SessionId, reason: LostReason, now: Instant) {
        if self.config.max_dropped() == 0 {
            return;
        }
        while self.dropped.len() >= self.config.max_dropped() {
            if let Some((old, _, _)) = self.dropped.pop_front() {
                self.dropped_index.remove(&old);
            }
        }
        self.dropped
            .push_back((id, reason, now + self.config.resume_window()));
        self.dropped_index.insert(id, reason);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    fn registry(max_parked: usize, max_bytes: usize) -> Registry<u8> {
        let mut config = RegistryConfig::default();
        config
            .set_max_parked(max_parked)
            .set_max_parked_bytes(max_bytes)
            .set_resume_window(Duration::from_secs(120));
        Registry::new(config).unwrap()
    }

    #[test]
    fn drain_forgets_attached_and_parked_sessions() {
        let now = Instant::now();
        let mut r = registry(4, 1 << 20);
        let parked = r.open(id(1), 1).unwrap();
        r.park(id(1), parked, now, 100);
        r.open(id(2), 2).unwrap();
        let mut states: Vec<u8> = r.drain().collect();
        states.sort_unstable();
        assert_eq!(states, [1, 2]);
        assert_eq!((r.len(), r.parked(), r.parked_bytes()), (0, 0, 0));
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Unknown);
    }

    #[test]
    fn parked_sessions_at_the_limit_are_kept_one_past_drops_the_oldest() {
        let now = Instant::now();
        let mut r = registry(3, 1000);
        for n in 1..=3 {
            let a = r.open(id(n), n).unwrap();
            assert!(r
                .park(id(n), a, now + Duration::from_secs(n.into()), 1)
                .is_empty());
        }
        assert_eq!(r.parked(), 3);
        let a = r.open(id(4), 4).unwrap();
        let dropped = r.park(id(4), a, now + Duration::from_secs(4), 1);
        assert_eq!(dropped.len(), 1);
        assert_eq!(
            (dropped[0].id, dropped[0].reason),
            (id(1), LostReason::Limit)
        );
        assert_eq!(r.parked(), 3);
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Limit);
        assert!(r.resume(id(2)).is_ok());
    }

    #[test]
    fn parked_bytes_at_the_limit_are_kept_one_past_drops_the_oldest() {
        let now = Instant::now();
        let mut r = registry(100, 10);
        let a = r.open(id(1), 1).unwrap();
        assert!(r.park(id(1), a, now, 6).is_empty());
        let b = r.open(id(2), 2).unwrap();
        assert!(r.park(id(2), b, now, 4).is_empty());
        assert_eq!(r.parked_bytes(), 10);
        let c = r.open(id(3), 3).unwrap();
        let dropped = r.park(id(3), c, now, 1);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].id, id(1));
        assert_eq!(r.parked_bytes(), 5);
    }

    #[test]
    fn a_session_expires_at_the_end_of_its_window_not_before() {
        let now = Instant::now();
        let mut r = registry(10, 10);
        let a = r.open(id(1), 1).unwrap();
        r.park(id(1), a, now, 0);
        let window = Duration::from_secs(120);
        assert_eq!(r.poll_timeout(), Some(now + window));
        assert!(r
            .handle_timeout(now + window - Duration::from_millis(1))
            .is_empty());
        let dropped = r.handle_timeout(now + window);
        assert_eq!(dropped[0].reason, LostReason::Expired);
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Expired);
        // Remembered for one more window, then unknown.
        assert_eq!(r.poll_timeout(), Some(now + 2 * window));
        r.handle_timeout(now + 2 * window);
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Unknown);
        assert_eq!(r.remembered(), 0);
    }

    #[test]
    fn a_forged_id_is_unknown() {
        let mut r = registry(10, 10);
        r.open(id(1), 1).unwrap();
        assert_eq!(r.resume(id(2)).unwrap_err(), LostReason::Unknown);
    }

    #[test]
    fn resuming_an_attached_session_replaces_its_connection_which_cannot_park_it() {
        let now = Instant::now();
        let mut r = registry(10, 10);
        let old = r.open(id(1), 1).unwrap();
        let resumed = r.resume(id(1)).unwrap();
        assert!(resumed.replaced);
        let new = resumed.attachment;
        assert_ne!(old, new);
        // The old connection's end changes nothing: the session stays attached.
        assert!(r.park(id(1), old, now, 0).is_empty());
        assert_eq!(r.parked(), 0);
        r.park(id(1), new, now, 0);
        assert_eq!(r.parked(), 1);
        let again = r.resume(id(1)).unwrap();
        assert!(!again.replaced);
        assert_eq!(r.parked(), 0);
    }

    #[test]
    fn remembered_ids_are_bounded() {
        let now = Instant::now();
        let mut config = RegistryConfig::default();
        config.set_max_parked(1).set_max_dropped(2);
        let mut r = Registry::new(config).unwrap();
        for n in 1..=5 {
            let a = r.open(id(n), n).unwrap();
            r.park(id(n), a, now, 0);
        }
        // 1 to 4 dropped for room; only 3 and 4 remembered.
        assert_eq!(r.remembered(), 2);
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Unknown);
        assert_eq!(r.resume(id(3)).unwrap_err(), LostReason::Limit);
    }

    #[test]
    fn remove_forgets_a_parked_session_and_its_bytes() {
        let now = Instant::now();
        let mut r = registry(10, 100);
        let a = r.open(id(1), 1).unwrap();
        r.park(id(1), a, now, 7);
        assert_eq!(r.remove(id(1)), Some(1));
        assert_eq!((r.parked(), r.parked_bytes(), r.len()), (0, 0, 0));
        assert_eq!(r.resume(id(1)).unwrap_err(), LostReason::Unknown);
    }
}
