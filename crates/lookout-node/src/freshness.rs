//! How stale may this node's state be? The bound behind `STALE` reads.
//!
//! A follower probes the leader with a ReadIndex request (the leader confirms its
//! leadership with a quorum and answers its commit index). The probe is sent at time
//! `s`; the answer covers every write acknowledged before `s`. Once the follower has
//! applied that index, its state was complete as of `s`; staleness is the time since the
//! latest such `s`. A follower cut off from the leader keeps its last one, so the
//! staleness it reports grows with the outage.
//!
//! (Dating freshness by the arrival of the leader's AppendEntries instead is unsound:
//! the commit index in it is the leader's as of sending, and the leader may acknowledge
//! more writes before it arrives. The fault suite caught exactly that.)

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

/// Contacts kept while waiting for apply to catch up; older ones are dropped first.
const MAX_PENDING_CONTACTS: usize = 1024;

#[derive(Default)]
pub struct Freshness {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Contacts whose commit index we have not applied yet, oldest first.
    pending: VecDeque<(Instant, u64)>,
    /// Latest moment our applied state was known complete.
    fresh_as_of: Option<Instant>,
}

impl Freshness {
    /// Records a ReadIndex probe sent at `at` that the leader answered with `leader_commit`.
    pub fn leader_contact(&self, at: Instant, leader_commit: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.pending.len() >= MAX_PENDING_CONTACTS {
            inner.pending.pop_front();
        }
        inner.pending.push_back((at, leader_commit));
    }

    /// Upper bound on how old state at `applied` may be, or `None` if this node has never
    /// been known up to date since it started.
    pub fn staleness(&self, applied: u64, now: Instant) -> Option<Duration> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(at, commit)) = inner.pending.front() {
            if commit > applied {
                break;
            }
            inner.pending.pop_front();
            if inner.fresh_as_of.is_none_or(|t| t < at) {
                inner.fresh_as_of = Some(at);
            }
        }
        inner.fresh_as_of.map(|t| now.saturating_duration_since(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_only_once_applied_reaches_leader_commit() {
        let f = Freshness::default();
        let t0 = Instant::now();
        assert_eq!(f.staleness(0, t0), None);
        f.leader_contact(t0, 5);
        assert_eq!(f.staleness(4, t0), None, "not fresh until index 5 is applied");
        let later = t0 + Duration::from_millis(300);
        assert_eq!(f.staleness(5, later), Some(Duration::from_millis(300)));
        // A newer contact with a higher commit does not help until applied.
        f.leader_contact(later, 9);
        let much_later = t0 + Duration::from_secs(2);
        assert_eq!(f.staleness(8, much_later), Some(Duration::from_secs(2)));
        assert_eq!(f.staleness(9, much_later), Some(Duration::from_millis(1700)));
    }

    #[test]
    fn pending_contacts_are_bounded() {
        let f = Freshness::default();
        let t0 = Instant::now();
        for i in 0..(MAX_PENDING_CONTACTS as u64 * 3) {
            f.leader_contact(t0, 1_000_000 + i);
        }
        assert!(f.inner.lock().unwrap().pending.len() <= MAX_PENDING_CONTACTS);
    }
}
