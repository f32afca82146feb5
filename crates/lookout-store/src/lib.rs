//! Everything a Lookout node keeps on disk: the Raft log, vote and committed index
//! ([`LogStore`], openraft's `RaftLogStorage`), the key-value state machine and its
//! snapshots ([`StateMachine`], openraft's `RaftStateMachine`), the state digest, and the
//! on-disk format version. Two sled databases: `data_dir/log` holds the Raft log, vote and
//! committed index, and is fsynced before anything is acknowledged; `data_dir/db` holds the
//! state, is fsynced when a snapshot is built or installed, and otherwise lags: after a
//! crash it recovers to an earlier applied index (atomically, data and applied id together)
//! and the entries after it are re-applied from the log, which is never purged past a
//! flushed snapshot. Keeping them apart means a log fsync never waits on state-machine
//! pages. Snapshot files live in `data_dir/snapshots/`.
//!
//! Invariants:
//! - Nothing is reported durable before it is: sled never flushes on its own; log appends
//!   are acknowledged by a group-commit fsync, votes are fsynced before `save_vote` returns.
//! - Every stored value is `[crc32c][payload]` and is checked on every read: corruption is
//!   [`StoreError::Corrupt`] naming the record, never a wrong answer or a panic.
//! - Applying an entry is deterministic and atomic: its effect, the applied log id, the
//!   membership, the [`Digest`] and the key count are written in one transaction, and a
//!   client's response is sent only after that write.
//! - A request id is executed at most once within the de-duplication window; a retry gets
//!   the first response. Expiry depends only on the entries' `proposed_at_ms`.
//! - The [`Digest`] is an order-independent sum over all records, maintained incrementally:
//!   two nodes with the same applied entries (or the same snapshot) have equal digests.
//! - A snapshot is an exact copy of the state at its last log id. An install is verified in
//!   full before anything changes, and is finished by [`open`] if it was interrupted.
//! - A data directory is read only by a build that knows its [`FORMAT_VERSION`].

mod codec;
mod digest;
mod error;
mod layout;
mod log_store;
mod records;
mod snapshot;
mod state_machine;

#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

pub use crate::digest::Digest;
pub use crate::error::StoreError;
pub use crate::records::RESERVED_PREFIX;
pub use crate::log_store::LogStore;
pub use crate::snapshot::SnapshotFile;
pub use crate::state_machine::SnapshotBuilder;
pub use crate::state_machine::StateMachine;
pub use crate::state_machine::StateReader;

use crate::layout::DataTrees;
use crate::layout::TREE_META;

/// Version of the on-disk format (database layout and snapshot files).
/// 1: log and state in one database. 2: the log in its own database (`data_dir/log`).
pub const FORMAT_VERSION: u32 = 2;

/// Tunables of the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// sled page cache size.
    pub cache_capacity_bytes: u64,
    /// How long a request id's response is remembered, in ms of `proposed_at_ms`.
    pub dedup_window_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: 256 << 20,
            dedup_window_ms: 300_000,
        }
    }
}

/// A consistent view of the state machine's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateStatus {
    pub applied_index: u64,
    pub digest: Digest,
    pub keys: u64,
    /// Last log index of the newest snapshot; 0 if none.
    pub snapshot_index: u64,
    pub format_version: u32,
}

/// sled page cache of the log database: it serves only followers catching up.
fn log_cache_bytes(cache_capacity_bytes: u64) -> u64 {
    (cache_capacity_bytes / 4).clamp(4 << 20, 64 << 20)
}

fn open_db(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .flush_every_ms(None);
    // After the last handle of a database is dropped, sled's background I/O threads may hold
    // its lock file for a moment; a reopen in the same process waits for them (briefly).
    // Another live process holding the lock is still refused after the wait.
    let mut attempts = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if attempts < 100 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return Ok(r?),
        }
    }
}

/// Opens (creating if new) the store in `data_dir`: sled db in `data_dir/db`, snapshot files
/// in `data_dir/snapshots/`. Refuses a directory whose recorded format version is not
/// [`FORMAT_VERSION`] ([`StoreError::UnknownFormat`]). Finishes an interrupted snapshot
/// install before returning.
pub fn open(data_dir: &Path, opts: StoreOptions) -> Result<(LogStore, StateMachine), StoreError> {
    let snapshot_dir = data_dir.join("snapshots");
    std::fs::create_dir_all(&snapshot_dir)?;
    let db = open_db(&data_dir.join("db"), opts.cache_capacity_bytes)?;
    let log_db = open_db(&data_dir.join("log"), log_cache_bytes(opts.cache_capacity_bytes))?;
    let meta = db.open_tree(TREE_META)?;
    layout::check_format(&meta, &log_db)?;

    if let Some(pending) = layout::read_pending_install(&meta)? {
        tracing::warn!(file = %pending.file_name, "finishing an interrupted snapshot install");
        match state_machine::finish_install(&db, &meta, &snapshot_dir, &pending) {
            Ok(_) => {
                let installed = snapshot_dir.join(&pending.file_name);
                snapshot::prune(&snapshot_dir, 0, Some(&installed))?;
            }
            // The snapshot cannot be installed (it was verified before the marker was
            // written, so it was damaged since). The state from before the install is
            // intact and consistent with the log: keep it, and Raft will send another.
            Err(e @ (StoreError::Corrupt { .. } | StoreError::UnknownFormat { .. })) => {
                tracing::error!(error = %e, "cannot finish the interrupted snapshot install");
                state_machine::abandon_install(&db, &meta, &pending)?;
            }
            Err(e) => return Err(e),
        }
    }
    DataTrees::drop_all_but(&db, layout::read_generation(&meta)?)?;
    snapshot::remove_temp_files(&snapshot_dir)?;
    db.flush()?;

    let state_machine = StateMachine::new(db, meta, snapshot_dir, &opts)?;
    let log_store = LogStore::new(log_db, state_machine.applied_watch())?;
    Ok((log_store, state_machine))
}

/// Test support: with the node stopped, rewrites the stored bytes of `key` in the sled db
/// under `data_dir` with one payload byte flipped, leaving sled's own structures valid
/// (simulates bit rot that the per-record checksum must catch). Errors if `key` is absent.
pub fn debug_corrupt_value(data_dir: &Path, key: &[u8]) -> Result<(), StoreError> {
    let db = open_db(&data_dir.join("db"), StoreOptions::default().cache_capacity_bytes)?;
    let meta = db.open_tree(TREE_META)?;
    if !meta.contains_key(layout::META_FORMAT_VERSION)? {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            "no Lookout store here",
        )));
    }
    let kv = DataTrees::open(&db, layout::read_generation(&meta)?)?.kv;
    let Some(raw) = kv.get(key)? else {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("key {} not found", codec::show_key(key)),
        )));
    };
    let mut bytes = raw.to_vec();
    // The last payload byte (there is always one: a record is never empty).
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    kv.insert(key, bytes)?;
    db.flush()?;
    Ok(())
}
