//! The Raft log, vote, committed and purged log ids ([`RaftLogStorage`]).
//!
//! Durability: sled never flushes on its own (`flush_every_ms(None)`). `append` writes the
//! entries (readable at once) and hands its callback to the group-commit flusher thread,
//! which takes every callback queued so far, runs ONE `db.flush()` (fsync) for all of them
//! and only then completes them. `save_vote`, `truncate_after` and `purge` flush before
//! returning. Once a flush has failed, every later callback reports failure too: the node
//! must stop acknowledging rather than claim durability it may not have.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::watch;

use lookout_types::Entry;
use lookout_types::LogId;
use lookout_types::TypeConfig;
use lookout_types::Vote;
use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;

use crate::codec;
use crate::error::StoreError;
use crate::state_machine::Progress;
use crate::layout::RAFT_COMMITTED;
use crate::layout::RAFT_PURGED;
use crate::layout::RAFT_VOTE;
use crate::layout::TREE_LOG;
use crate::layout::TREE_RAFT;

/// At most this many entries, or about this many bytes, per `limited_get_log_entries`.
const LIMITED_READ_ENTRIES: usize = 4096;
const LIMITED_READ_BYTES: usize = 8 << 20;

/// The Raft log storage of one node. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    log: sled::Tree,
    raft: sled::Tree,
    flusher: mpsc::Sender<FlushJob>,
    /// The state machine's progress: entries at or below its applied index are committed
    /// and must never be truncated.
    applied: watch::Receiver<Progress>,
}

/// An append waiting for its fsync. The job carries the db handle so the flusher thread
/// holds none between jobs: dropping the last `LogStore` closes the database promptly.
struct FlushJob {
    db: sled::Db,
    callback: IOFlushed<TypeConfig>,
}

impl LogStore {
    pub(crate) fn new(db: sled::Db, applied: watch::Receiver<Progress>) -> Result<LogStore, StoreError> {
        let log = db.open_tree(TREE_LOG)?;
        let raft = db.open_tree(TREE_RAFT)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lookout-log-flush".into())
            .spawn(move || flusher(rx))?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                db,
                log,
                raft,
                flusher: tx,
                applied,
            }),
        })
    }

    fn read_raft<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.inner.raft.get(key)? {
            None => Ok(None),
            Some(raw) => codec::decode(&raw, || format!("raft {what}")).map(Some),
        }
    }

    fn decode_entry(index: u64, raw: &[u8]) -> Result<Entry, StoreError> {
        let entry: Entry = codec::decode(raw, || format!("log entry {index}"))?;
        if entry.log_id.index != index {
            return Err(StoreError::corrupt(
                format!("log entry {index}"),
                format!("stored under index {index} but has log id {}", entry.log_id),
            ));
        }
        Ok(entry)
    }

    /// Entries in `[start, end)`, stopping early after `max_entries` or `max_bytes` (always at
    /// least one entry if any is in range). Errors on a hole inside the range.
    fn read_entries(
        &self,
        start: u64,
        end: Option<u64>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in self.inner.log.range(codec::u64_key(start)..) {
            let (k, v) = item?;
            let index = codec::parse_u64_key(&k, || "log key".into())?;
            if end.is_some_and(|end| index >= end) {
                break;
            }
            if let Some(prev) = out.last().map(|e: &Entry| e.log_id.index)
                && prev + 1 != index
            {
                return Err(StoreError::corrupt(
                    format!("log entry {}", prev + 1),
                    format!("missing: the log jumps from {prev} to {index}"),
                ));
            }
            bytes += v.len();
            out.push(Self::decode_entry(index, &v)?);
            if out.len() >= max_entries || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StoreError> {
        match self.inner.log.last()? {
            None => Ok(None),
            Some((k, v)) => {
                let index = codec::parse_u64_key(&k, || "log key".into())?;
                Ok(Some(Self::decode_entry(index, &v)?.log_id))
            }
        }
    }

    /// Removes the entries with index in `[from, to)`, newest first, in one atomic batch.
    fn remove_range(&self, from: u64, to: Option<u64>) -> Result<usize, StoreError> {
        let lo = codec::u64_key(from);
        let keys: Vec<sled::IVec> = match to {
            Some(to) => self
                .inner
                .log
                .range(lo..codec::u64_key(to))
                .keys()
                .collect::<Result<_, _>>()?,
            None => self
                .inner
                .log
                .range(lo..)
                .keys()
                .collect::<Result<_, _>>()?,
        };
        let mut batch = sled::Batch::default();
        for k in keys.iter().rev() {
            batch.remove(k.clone());
        }
        self.inner.log.apply_batch(batch)?;
        Ok(keys.len())
    }

    async fn flush(&self) -> Result<(), io::Error> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush().map(drop))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| StoreError::from(e).into())
    }
}

/// The fsync behind an acknowledgement.
#[cfg(not(feature = "unsafe-ack-before-fsync"))]
fn flush_for_ack(db: &sled::Db) -> sled::Result<usize> {
    db.flush()
}

/// NEGATIVE CONTROL (test builds only): acknowledge without fsync, so the fault suite can
/// show it detects lost acknowledged writes.
#[cfg(feature = "unsafe-ack-before-fsync")]
fn flush_for_ack(_db: &sled::Db) -> sled::Result<usize> {
    Ok(0)
}

/// The group-commit loop: one fsync for every callback queued while the previous ran.
fn flusher(rx: mpsc::Receiver<FlushJob>) {
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let result = match &failed {
            Some(msg) => Err(msg.clone()),
            None => match flush_for_ack(&jobs[0].db) {
                Ok(_) => Ok(()),
                Err(e) => {
                    let msg = format!("log flush failed: {e}");
                    tracing::error!("{msg}; no further appends will be acknowledged");
                    failed = Some(msg.clone());
                    Err(msg)
                }
            },
        };
        tracing::trace!(appends = jobs.len(), ok = result.is_ok(), "group commit");
        // Release the db handles before completing: a caller that drops the store right
        // after its last callback can reopen the directory at once.
        let callbacks: Vec<_> = jobs.into_iter().map(|j| j.callback).collect();
        for cb in callbacks {
            cb.io_completed(result.clone().map_err(io::Error::other));
        }
    }
}

fn start_index<RB: RangeBounds<u64>>(range: &RB) -> Option<u64> {
    match range.start_bound() {
        Bound::Included(&s) => Some(s),
        Bound::Excluded(&s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    }
}

fn end_index<RB: RangeBounds<u64>>(range: &RB) -> Option<u64> {
    match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let Some(start) = start_index(&range) else {
            return Ok(Vec::new());
        };
        Ok(self.read_entries(start, end_index(&range), usize::MAX, usize::MAX)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.read_raft(RAFT_VOTE, "vote")?)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.read_entries(start, Some(end), LIMITED_READ_ENTRIES, LIMITED_READ_BYTES)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.read_raft(RAFT_PURGED, "purged log id")?;
        // Normally the last entry is above the purge point; after a crash between recording
        // the purge point and removing the entries it may not be.
        let last_log_id = std::cmp::max(self.last_log_id()?, last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.inner
            .raft
            .insert(RAFT_VOTE, codec::encode(vote)?)
            .map_err(StoreError::from)?;
        self.flush().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not flushed here: a lost update only means re-applying less on restart.
        self.inner
            .raft
            .insert(RAFT_COMMITTED, codec::encode(&committed)?)
            .map_err(StoreError::from)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .read_raft::<Option<LogId>>(RAFT_COMMITTED, "committed log id")?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut n = 0usize;
        for entry in entries {
            batch.insert(&codec::u64_key(entry.log_id.index), codec::encode(&entry)?);
            n += 1;
        }
        self.inner
            .log
            .apply_batch(batch)
            .map_err(StoreError::from)?;
        tracing::trace!(entries = n, "appended; waiting for group commit");
        let job = FlushJob {
            db: self.inner.db.clone(),
            callback,
        };
        if let Err(mpsc::SendError(job)) = self.inner.flusher.send(job) {
            let err = || io::Error::other("log flusher thread is gone");
            job.callback.io_completed(Err(err()));
            return Err(err());
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        // Raft never truncates a committed entry, and every applied entry is committed: a
        // request to remove one means this node applied an entry the cluster did not
        // commit (or is about to replace one it applied). Going on would leave this
        // replica's state silently different from the others'; stop instead.
        let applied = self.inner.applied.borrow().applied_index;
        if applied > 0 && from <= applied {
            let msg = format!(
                "refusing to truncate the log from index {from}: entries up to {applied} are already applied \
                 (this replica applied an entry the cluster did not commit; its state may diverge)"
            );
            tracing::error!("{msg}");
            return Err(StoreError::corrupt("raft log", msg).into());
        }
        let removed = self.remove_range(from, None)?;
        // Rare (a conflicting uncommitted tail from an earlier term) and telling when
        // replicas are compared after a fault, so kept at info.
        if removed > 0 {
            tracing::info!(from, removed, applied, "truncated conflicting log entries");
        }
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Record the purge point first: entries at or below it are ignored from then on, so a
        // crash halfway through the removal leaves no visible hole.
        self.inner
            .raft
            .insert(RAFT_PURGED, codec::encode(&log_id)?)
            .map_err(StoreError::from)?;
        let removed = self.remove_range(0, Some(log_id.index.saturating_add(1)))?;
        tracing::debug!(upto = log_id.index, removed, "purged log");
        self.flush().await
    }
}
