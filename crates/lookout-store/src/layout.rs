//! What lives where in the sled database.
//!
//! Trees:
//! - `log`: Raft log entries, key = index (u64 BE), value = framed postcard(Entry).
//! - `raft`: `vote`, `committed`, `purged` (framed postcard).
//! - `meta`: `format_version` (framed u32 LE), `generation`, `applied` ([`AppliedState`]),
//!   `pending_install` ([`PendingInstall`]).
//! - `kv.<gen>`: user keys → framed postcard(Versioned).
//! - `dedup.<gen>`: request id (16 bytes) → framed postcard([`DedupRecord`]).
//! - `dedup_exp.<gen>`: proposed_at_ms (u64 BE) ++ request id → framed empty payload; the
//!   expiry index of `dedup`, so expiry is a range scan.
//!
//! The data trees carry a generation number: installing a snapshot loads it into the trees
//! of the next generation and then flips `meta.generation` (with `meta.applied`) in one
//! atomic write, so readers never see a half-installed state.

use lookout_types::LogId;
use lookout_types::Response;
use lookout_types::StoredMembership;
use serde::Deserialize;
use serde::Serialize;

use crate::FORMAT_VERSION;
use crate::codec;
use crate::error::StoreError;

pub(crate) const TREE_LOG: &str = "log";
pub(crate) const TREE_RAFT: &str = "raft";
pub(crate) const TREE_META: &str = "meta";

pub(crate) const RAFT_VOTE: &[u8] = b"vote";
pub(crate) const RAFT_COMMITTED: &[u8] = b"committed";
pub(crate) const RAFT_PURGED: &[u8] = b"purged";

pub(crate) const META_FORMAT_VERSION: &[u8] = b"format_version";
pub(crate) const META_GENERATION: &[u8] = b"generation";
pub(crate) const META_APPLIED: &[u8] = b"applied";
pub(crate) const META_PENDING_INSTALL: &[u8] = b"pending_install";

const DATA_TREE_PREFIXES: [&str; 3] = ["kv.", "dedup.", "dedup_exp."];

/// What the state machine has applied; written atomically with the data of each entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// [`crate::Digest`] of the data trees.
    pub digest: u128,
    /// Number of records in the kv tree.
    pub keys: u64,
}

/// The response a request id got the first time it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupRecord {
    pub proposed_at_ms: u64,
    pub response: Response,
}

/// Marker of a snapshot install in progress: finish loading `file_name` (in the snapshot
/// directory) into the data trees of `generation`, then flip to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingInstall {
    pub file_name: String,
    pub generation: u64,
}

/// Handles to the data trees of one generation.
#[derive(Clone)]
pub(crate) struct DataTrees {
    pub generation: u64,
    pub kv: sled::Tree,
    pub dedup: sled::Tree,
    pub dedup_exp: sled::Tree,
}

impl DataTrees {
    pub(crate) fn open(db: &sled::Db, generation: u64) -> Result<DataTrees, StoreError> {
        Ok(DataTrees {
            generation,
            kv: db.open_tree(format!("kv.{generation}"))?,
            dedup: db.open_tree(format!("dedup.{generation}"))?,
            dedup_exp: db.open_tree(format!("dedup_exp.{generation}"))?,
        })
    }

    /// Removes the data trees of `generation` (those handles must no longer be used).
    pub(crate) fn drop_generation(db: &sled::Db, generation: u64) -> Result<(), StoreError> {
        for prefix in DATA_TREE_PREFIXES {
            db.drop_tree(format!("{prefix}{generation}"))?;
        }
        Ok(())
    }

    /// Removes the data trees of every generation but `keep` (left over by an interrupted install).
    pub(crate) fn drop_all_but(db: &sled::Db, keep: u64) -> Result<(), StoreError> {
        for name in db.tree_names() {
            let Ok(name) = std::str::from_utf8(&name) else {
                continue;
            };
            for prefix in DATA_TREE_PREFIXES {
                if let Some(generation) = name
                    .strip_prefix(prefix)
                    .and_then(|g| g.parse::<u64>().ok())
                    && generation != keep
                {
                    tracing::info!(tree = name, "dropping data tree of a stale generation");
                    db.drop_tree(name)?;
                }
            }
        }
        Ok(())
    }
}

/// The expiry-index key of a dedup record.
pub(crate) fn dedup_exp_key(proposed_at_ms: u64, id: &[u8; 16]) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&proposed_at_ms.to_be_bytes());
    k[8..].copy_from_slice(id);
    k
}

pub(crate) fn read_generation(meta: &sled::Tree) -> Result<u64, StoreError> {
    match meta.get(META_GENERATION)? {
        None => Ok(0),
        Some(raw) => codec::decode(&raw, || "meta generation".into()),
    }
}

pub(crate) fn read_applied(meta: &sled::Tree) -> Result<AppliedState, StoreError> {
    match meta.get(META_APPLIED)? {
        None => Ok(AppliedState::default()),
        Some(raw) => codec::decode(&raw, || "meta applied state".into()),
    }
}

pub(crate) fn read_pending_install(
    meta: &sled::Tree,
) -> Result<Option<PendingInstall>, StoreError> {
    match meta.get(META_PENDING_INSTALL)? {
        None => Ok(None),
        Some(raw) => codec::decode(&raw, || "meta pending install".into()).map(Some),
    }
}

/// Records [`FORMAT_VERSION`] in a new store; refuses one recorded with another version.
pub(crate) fn check_format(meta: &sled::Tree, log_db: &sled::Db) -> Result<(), StoreError> {
    match meta.get(META_FORMAT_VERSION)? {
        Some(raw) => {
            let payload = codec::unframe(&raw, || "meta format version".into())?;
            let found: [u8; 4] = payload.try_into().map_err(|_| {
                StoreError::corrupt(
                    "meta format version",
                    format!("{} bytes, expected 4", payload.len()),
                )
            })?;
            let found = u32::from_le_bytes(found);
            if found != FORMAT_VERSION {
                return Err(StoreError::UnknownFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        None => {
            let has_data = !meta.is_empty() || log_db.open_tree(TREE_LOG)?.last()?.is_some();
            if has_data {
                return Err(StoreError::corrupt(
                    "meta format version",
                    "missing in a database that holds data",
                ));
            }
            meta.insert(
                META_FORMAT_VERSION,
                codec::frame(&FORMAT_VERSION.to_le_bytes()),
            )?;
            meta.flush()?;
            tracing::info!(version = FORMAT_VERSION, "created a new store");
            Ok(())
        }
    }
}
