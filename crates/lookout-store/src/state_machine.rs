//! The state machine ([`RaftStateMachine`]), its concurrent readers and its snapshots.
//!
//! Apply: each entry is one sled transaction over the data trees and `meta`, writing the
//! entry's effect together with the new [`AppliedState`] (applied log id, membership,
//! digest, key count). A client's response is sent only after its transaction committed.
//! A storage error is returned to openraft, which stops the node.
//!
//! Snapshots: sled has no point-in-time view, so the snapshot content is copied to a temp
//! file when the builder is created (openraft does that in the state-machine task, between
//! applies); `build_snapshot` then only fsyncs and publishes the file.
//!
//! Install: the received file is verified completely first; then a `pending_install` marker
//! is written, the file is loaded into the data trees of the next generation, and one atomic
//! write to `meta` flips the generation and the applied state and removes the marker. Readers
//! keep reading the old generation until the flip. [`crate::open`] finishes an install whose
//! marker it finds.

use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use futures::FutureExt;
use futures::Stream;
use futures::TryStreamExt;
use lookout_types::Entry;
use lookout_types::Expected;
use lookout_types::LogId;
use lookout_types::NewValue;
use lookout_types::Op;
use lookout_types::Outcome;
use lookout_types::Request;
use lookout_types::Response;
use lookout_types::SnapshotMeta;
use lookout_types::StoredMembership;
use lookout_types::TypeConfig;
use lookout_types::Versioned;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::SnapshotOf;
use sled::IVec;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use sled::transaction::ConflictableTransactionResult;
use sled::transaction::TransactionError;
use sled::transaction::TransactionalTree;
use tokio::sync::watch;

use crate::FORMAT_VERSION;
use crate::StateStatus;
use crate::StoreOptions;
use crate::codec;
use crate::digest::Digest;
use crate::digest::TAG_DEDUP;
use crate::digest::TAG_KV;
use crate::error::StoreError;
use crate::layout;
use crate::layout::AppliedState;
use crate::layout::DataTrees;
use crate::layout::DedupRecord;
use crate::layout::META_APPLIED;
use crate::layout::META_GENERATION;
use crate::layout::META_PENDING_INSTALL;
use crate::layout::PendingInstall;
use crate::snapshot;
use crate::snapshot::SnapshotFile;

/// Expire at most this many dedup records per applied entry (bounded work per apply).
const MAX_EXPIRE_PER_ENTRY: usize = 1000;
/// Records per write batch when loading a snapshot.
pub(crate) const INSTALL_BATCH: usize = 10_000;
/// Snapshots kept in the snapshot directory after building one.
const KEEP_SNAPSHOTS: usize = 2;

/// A dedup record due for expiry, as found in the expiry index.
struct Expired {
    index_key: [u8; 24],
    proposed_at_ms: u64,
    id: [u8; 16],
}

/// What readers see of the state machine's progress; one value, so always consistent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    pub(crate) applied_index: u64,
    digest: Digest,
    keys: u64,
    snapshot_index: u64,
}

/// Most entries applied in one hand-off to a blocking thread.
const MAX_APPLY_BATCH: usize = 256;

/// State shared by the state machine, its readers and its snapshot builders.
struct Shared {
    db: sled::Db,
    meta: sled::Tree,
    snapshot_dir: PathBuf,
    /// The data trees readers use. Swapped (under the write lock) when an install flips the
    /// generation; readers hold the read lock while they read, so no read straddles a swap.
    trees: RwLock<DataTrees>,
    progress: watch::Sender<Progress>,
    incoming_seq: AtomicU64,
}

impl Shared {
    fn trees(&self) -> RwLockReadGuard<'_, DataTrees> {
        self.trees
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The Lookout state machine of one node.
pub struct StateMachine {
    shared: Arc<Shared>,
    /// The current generation's trees (the same as `shared.trees`; only this task swaps them).
    trees: DataTrees,
    /// The authoritative in-memory copy of `meta.applied`.
    state: AppliedState,
    dedup_window_ms: u64,
}

pub(crate) fn kv_what(key: &[u8]) -> String {
    format!("kv value for key {}", codec::show_key(key))
}

fn dedup_what(id: &[u8]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("dedup record for request id {hex}")
}

fn index_of(log_id: &Option<LogId>) -> u64 {
    log_id.as_ref().map_or(0, |l| l.index)
}

/// Wraps a store error so it aborts a sled transaction.
pub(crate) fn abort<T>(r: Result<T, StoreError>) -> ConflictableTransactionResult<T, StoreError> {
    r.map_err(ConflictableTransactionError::Abort)
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))?
}

impl StateMachine {
    pub(crate) fn new(
        db: sled::Db,
        meta: sled::Tree,
        snapshot_dir: PathBuf,
        opts: &StoreOptions,
    ) -> Result<StateMachine, StoreError> {
        let generation = layout::read_generation(&meta)?;
        let trees = DataTrees::open(&db, generation)?;
        let state = layout::read_applied(&meta)?;
        let snapshot_index =
            snapshot::latest(&snapshot_dir)?.map_or(0, |(m, _)| index_of(&m.last_log_id));
        let progress = Progress {
            applied_index: index_of(&state.last_applied),
            digest: Digest(state.digest),
            keys: state.keys,
            snapshot_index,
        };
        tracing::info!(
            applied = ?state.last_applied,
            digest = %progress.digest,
            keys = state.keys,
            generation,
            snapshot_index,
            "state machine opened"
        );
        let shared = Arc::new(Shared {
            db,
            meta,
            snapshot_dir,
            trees: RwLock::new(trees.clone()),
            progress: watch::Sender::new(progress),
            incoming_seq: AtomicU64::new(0),
        });
        Ok(StateMachine {
            shared,
            trees,
            state,
            dedup_window_ms: opts.dedup_window_ms,
        })
    }

    /// The applied index as it advances, for the log store's truncation guard (holds no
    /// reference to the database).
    pub(crate) fn applied_watch(&self) -> watch::Receiver<Progress> {
        self.shared.progress.subscribe()
    }

    /// A handle for concurrent reads of the applied state.
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: self.shared.clone(),
        }
    }

    fn publish(&self) {
        let st = &self.state;
        self.shared.progress.send_modify(|p| {
            p.applied_index = index_of(&st.last_applied);
            p.digest = Digest(st.digest);
            p.keys = st.keys;
        });
    }

    /// Applies one entry and publishes the new progress to readers.
    fn apply_one(&mut self, entry: Entry) -> Result<Response, io::Error> {
        let log_id = entry.log_id;
        let response = self.apply_entry(log_id, entry.payload).map_err(|e| {
            tracing::error!(%log_id, error = %e, "cannot apply entry; stopping");
            io::Error::from(e)
        })?;
        self.publish();
        Ok(response)
    }

    /// Applies entries and returns their responses (tests cannot build openraft's responders).
    #[cfg(test)]
    pub(crate) fn apply_entries(
        &mut self,
        entries: Vec<Entry>,
    ) -> Result<Vec<Response>, io::Error> {
        entries.into_iter().map(|e| self.apply_one(e)).collect()
    }

    /// Applies one entry atomically (one write) and returns its response.
    fn apply_entry(
        &mut self,
        log_id: LogId,
        payload: EntryPayload<Request, u64, lookout_types::Node>,
    ) -> Result<Response, StoreError> {
        let index = log_id.index;
        let mut next = self.state.clone();
        next.last_applied = Some(log_id);
        let response = match payload {
            EntryPayload::Blank | EntryPayload::Membership(_) => {
                if let EntryPayload::Membership(membership) = payload {
                    next.membership = StoredMembership::new(next.last_applied, membership);
                }
                self.shared
                    .meta
                    .insert(META_APPLIED, codec::encode(&next)?)?;
                Response {
                    index,
                    outcome: Outcome::None,
                }
            }
            EntryPayload::Normal(request) => {
                let (response, applied) = self.apply_request(index, &request, next)?;
                next = applied;
                response
            }
        };
        self.state = next;
        Ok(response)
    }

    /// Dedup records proposed before `now_ms - dedup_window_ms`, oldest first, at most
    /// [`MAX_EXPIRE_PER_ENTRY`]. Read outside the apply transaction, which is fine: this task
    /// is the only writer of the data trees.
    fn expired_dedup(&self, now_ms: u64) -> Result<Vec<Expired>, StoreError> {
        let Some(cutoff) = now_ms.checked_sub(self.dedup_window_ms) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self
            .trees
            .dedup_exp
            .range(..codec::u64_key(cutoff))
            .take(MAX_EXPIRE_PER_ENTRY)
        {
            let (k, v) = item?;
            let what = || format!("dedup expiry index entry {}", codec::show_key(&k));
            codec::unframe(&v, what)?;
            let index_key: [u8; 24] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::corrupt(what(), "key is not 24 bytes"))?;
            let (at, id) = index_key.split_at(8);
            out.push(Expired {
                index_key,
                proposed_at_ms: u64::from_be_bytes(at.try_into().unwrap_or_default()),
                id: id.try_into().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Executes a request (or returns its recorded response) in one transaction that also
    /// expires old dedup records and writes the new applied state.
    fn apply_request(
        &self,
        index: u64,
        req: &Request,
        base: AppliedState,
    ) -> Result<(Response, AppliedState), StoreError> {
        let expired = self.expired_dedup(req.proposed_at_ms)?;
        let t = &self.trees;
        (&t.kv, &t.dedup, &t.dedup_exp, &self.shared.meta)
            .transaction(|(kv, dedup, dedup_exp, meta)| {
                let mut st = base.clone();
                let mut digest = Digest(st.digest);

                for old in &expired {
                    dedup_exp.remove(&old.index_key[..])?;
                    let Some(raw) = dedup.get(old.id)? else {
                        continue;
                    };
                    let payload = abort(codec::unframe(&raw, || dedup_what(&old.id)))?;
                    let rec: DedupRecord =
                        abort(codec::from_payload(payload, || dedup_what(&old.id)))?;
                    if rec.proposed_at_ms == old.proposed_at_ms {
                        dedup.remove(&old.id[..])?;
                        digest.remove(TAG_DEDUP, &old.id, payload);
                    }
                }

                let recorded = match &req.id {
                    Some(id) => dedup.get(id.0)?.map(|raw| (id, raw)),
                    None => None,
                };
                let response = match recorded {
                    // Already applied within the window: answer as the first time, change nothing.
                    Some((id, raw)) => {
                        let rec: DedupRecord = abort(codec::decode(&raw, || dedup_what(&id.0)))?;
                        rec.response
                    }
                    None => {
                        let outcome = execute(kv, &req.op, index, &mut digest, &mut st.keys)?;
                        let response = Response { index, outcome };
                        if let Some(id) = &req.id {
                            let rec = DedupRecord {
                                proposed_at_ms: req.proposed_at_ms,
                                response: response.clone(),
                            };
                            let payload = abort(codec::to_payload(&rec))?;
                            dedup.insert(&id.0[..], codec::frame(&payload))?;
                            dedup_exp.insert(
                                &layout::dedup_exp_key(req.proposed_at_ms, &id.0)[..],
                                codec::frame(&[]),
                            )?;
                            digest.add(TAG_DEDUP, &id.0, &payload);
                        }
                        response
                    }
                };

                st.digest = digest.0;
                meta.insert(META_APPLIED, abort(codec::encode(&st))?)?;
                Ok((response, st))
            })
            .map_err(tx_error)
    }

    /// Copies the current state into a temp snapshot file (see the module doc).
    async fn prepare_snapshot(&mut self) -> SnapshotBuilder {
        let trees = self.trees.clone();
        let state = self.state.clone();
        let dir = self.shared.snapshot_dir.clone();
        let prepared = blocking(move || write_snapshot(&trees, &state, &dir)).await;
        if let Err(e) = &prepared {
            tracing::error!(error = %e, "cannot write a snapshot of the state machine");
        }
        SnapshotBuilder {
            shared: self.shared.clone(),
            prepared: Some(prepared),
        }
    }
}

/// Executes one operation against the kv tree with etcd-like version semantics.
fn execute(
    kv: &TransactionalTree,
    op: &Op,
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<Outcome, StoreError> {
    match op {
        Op::Put { key, value } => {
            let current = kv_get(kv, key)?;
            let new = kv_put(kv, key, current, value, index, digest, keys)?;
            Ok(Outcome::Put {
                version: new.version,
            })
        }
        Op::Delete { key } => {
            let current = kv_get(kv, key)?;
            let existed = current.is_some();
            if let Some((_, raw)) = current {
                kv_delete(kv, key, &raw, digest, keys)?;
            }
            Ok(Outcome::Delete { existed })
        }
        Op::CompareAndSwap { key, expected, new } => {
            let current = kv_get(kv, key)?;
            let cur = current.as_ref().map(|(v, _)| v);
            let succeeded = match expected {
                Expected::Value(v) => cur.is_some_and(|c| &c.value == v),
                Expected::Version(0) | Expected::Absent => cur.is_none(),
                Expected::Version(n) => cur.is_some_and(|c| c.version == *n),
            };
            let previous = cur.cloned();
            let mut new_version = 0;
            if succeeded {
                match new {
                    NewValue::Put(value) => {
                        new_version = kv_put(kv, key, current, value, index, digest, keys)?.version;
                    }
                    NewValue::Delete => {
                        if let Some((_, raw)) = current {
                            kv_delete(kv, key, &raw, digest, keys)?;
                        }
                    }
                }
            }
            Ok(Outcome::CompareAndSwap {
                succeeded,
                previous,
                new_version,
            })
        }
        Op::PutLookout { lookout, expected_version, actor } => {
            crate::records::put_lookout(kv, lookout, *expected_version, actor, index, digest, keys)
        }
        Op::PutLookouts { lookouts, actor } => {
            let mut versions = Vec::with_capacity(lookouts.len());
            for l in lookouts {
                match crate::records::put_lookout(kv, l, None, actor, index, digest, keys)? {
                    Outcome::Lookout { version } => versions.push(version),
                    other => return Ok(other),
                }
            }
            Ok(Outcome::Batch { versions })
        }
        Op::RetireLookout { id, expected_version, actor } => {
            crate::records::retire_lookout(kv, id, *expected_version, actor, index, digest, keys)
        }
        Op::PutTravellers { travellers } => {
            let mut versions = Vec::with_capacity(travellers.len());
            for t in travellers {
                versions.push(crate::records::put_traveller(kv, t, index, digest, keys)?);
            }
            Ok(Outcome::Batch { versions })
        }
    }
}

/// The current record of `key` and its raw stored bytes.
pub(crate) fn kv_get(
    kv: &TransactionalTree,
    key: &[u8],
) -> ConflictableTransactionResult<Option<(Versioned, IVec)>, StoreError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(raw) => {
            let v = abort(codec::decode(&raw, || kv_what(key)))?;
            Ok(Some((v, raw)))
        }
    }
}

/// Raw bytes that already passed `codec::decode`: strip the checksum.
fn stored_payload(raw: &[u8]) -> &[u8] {
    raw.get(4..).unwrap_or_default()
}

pub(crate) fn kv_put(
    kv: &TransactionalTree,
    key: &[u8],
    current: Option<(Versioned, IVec)>,
    value: &[u8],
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<Versioned, StoreError> {
    let new = match &current {
        Some((cur, _)) => Versioned {
            value: value.to_vec(),
            version: cur.version + 1,
            create_index: cur.create_index,
            mod_index: index,
        },
        None => Versioned {
            value: value.to_vec(),
            version: 1,
            create_index: index,
            mod_index: index,
        },
    };
    match &current {
        Some((_, raw)) => digest.remove(TAG_KV, key, stored_payload(raw)),
        None => *keys += 1,
    }
    let payload = abort(codec::to_payload(&new))?;
    kv.insert(key, codec::frame(&payload))?;
    digest.add(TAG_KV, key, &payload);
    Ok(new)
}

pub(crate) fn kv_delete(
    kv: &TransactionalTree,
    key: &[u8],
    raw: &[u8],
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<(), StoreError> {
    kv.remove(key)?;
    digest.remove(TAG_KV, key, stored_payload(raw));
    *keys = keys.saturating_sub(1);
    Ok(())
}

/// Scans the data trees and returns their digest and key count (for tests).
#[cfg(test)]
pub(crate) fn recompute_digest(trees: &DataTrees) -> Result<(Digest, u64), StoreError> {
    let mut digest = Digest::default();
    let mut keys = 0;
    for item in trees.kv.iter() {
        let (k, v) = item?;
        digest.add(TAG_KV, &k, codec::unframe(&v, || kv_what(&k))?);
        keys += 1;
    }
    for item in trees.dedup.iter() {
        let (k, v) = item?;
        digest.add(TAG_DEDUP, &k, codec::unframe(&v, || dedup_what(&k))?);
    }
    Ok((digest, keys))
}

// ---- snapshots: building ----

/// A snapshot copied to a temp file, waiting for `build_snapshot` to publish it.
struct Prepared {
    meta: SnapshotMeta,
    file: File,
    tmp_path: PathBuf,
    final_path: PathBuf,
    published: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes every record of the data trees to a temp file in `dir` and checks that they sum
/// to the digest the state machine maintained.
fn write_snapshot(
    trees: &DataTrees,
    state: &AppliedState,
    dir: &Path,
) -> Result<Prepared, StoreError> {
    let meta = SnapshotMeta {
        last_log_id: state.last_applied,
        last_membership: state.membership.clone(),
    };
    let name = snapshot::file_name_for(&snapshot::snapshot_id(&meta));
    let tmp_path = dir.join(format!("{name}.tmp"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp_path)?;
    match write_records(file, &meta, trees, state) {
        Ok(file) => Ok(Prepared {
            meta,
            file,
            tmp_path,
            final_path: dir.join(name),
            published: false,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            Err(e)
        }
    }
}

fn write_records(
    file: File,
    meta: &SnapshotMeta,
    trees: &DataTrees,
    state: &AppliedState,
) -> Result<File, StoreError> {
    let mut w = snapshot::Writer::new(file, meta)?;
    let mut keys = 0u64;
    for item in trees.kv.iter() {
        let (k, v) = item?;
        w.record(TAG_KV, &k, codec::unframe(&v, || kv_what(&k))?)?;
        keys += 1;
    }
    for item in trees.dedup.iter() {
        let (k, v) = item?;
        w.record(TAG_DEDUP, &k, codec::unframe(&v, || dedup_what(&k))?)?;
    }
    let (file, digest, count) = w.finish()?;
    if digest.0 != state.digest || keys != state.keys {
        return Err(StoreError::corrupt(
            "state digest",
            format!(
                "the applied state records digest {} and {} keys, but the data trees hold digest {digest} and {keys} keys",
                Digest(state.digest),
                state.keys
            ),
        ));
    }
    tracing::debug!(records = count, %digest, last_log_id = ?meta.last_log_id, "snapshot content copied");
    Ok(file)
}

/// Publishes the snapshot prepared when it was created (see [`StateMachine`]'s module doc).
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    prepared: Option<Result<Prepared, StoreError>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        let mut prepared = self
            .prepared
            .take()
            .ok_or_else(|| io::Error::other("snapshot already built"))??;
        let shared = self.shared.clone();
        let (meta, file) = blocking(move || {
            let dir = &shared.snapshot_dir;
            prepared.file.sync_all()?;
            // Open the handle first: a concurrent install may prune the file once it is published.
            let file = SnapshotFile::open(&prepared.tmp_path)?;
            std::fs::rename(&prepared.tmp_path, &prepared.final_path)?;
            prepared.published = true;
            snapshot::fsync_dir(dir)?;
            snapshot::prune(dir, KEEP_SNAPSHOTS, Some(&prepared.final_path))?;
            // The state is at or past the snapshot once this returns, so openraft may purge
            // the log up to it.
            shared.db.flush()?;
            tracing::info!(path = %prepared.final_path.display(), len = file.len, "snapshot built");
            Ok((prepared.meta.clone(), file))
        })
        .await?;
        let index = index_of(&meta.last_log_id);
        self.shared
            .progress
            .send_modify(|p| p.snapshot_index = p.snapshot_index.max(index));
        Ok(SnapshotOf::<TypeConfig, SnapshotFile> {
            meta,
            snapshot: file,
        })
    }
}

// ---- snapshots: installing ----

/// Loads the snapshot named by `pending` into the data trees of `pending.generation` and
/// flips `meta` to it. Used by `install_snapshot` and by `open` after a crash.
pub(crate) fn finish_install(
    db: &sled::Db,
    meta: &sled::Tree,
    dir: &Path,
    pending: &PendingInstall,
) -> Result<(DataTrees, AppliedState), StoreError> {
    let path = dir.join(&pending.file_name);
    let file = SnapshotFile::open(&path).map_err(|e| {
        StoreError::corrupt(
            format!("snapshot {}", path.display()),
            format!("named by a pending install but cannot be opened: {e}"),
        )
    })?;
    // Leftovers of an earlier attempt at the same install.
    DataTrees::drop_generation(db, pending.generation)?;
    let trees = DataTrees::open(db, pending.generation)?;

    let (snap_meta, mut reader) = snapshot::Reader::new(file.reader(), file.len)?;
    let (mut kv, mut dedup, mut dedup_exp) = (
        sled::Batch::default(),
        sled::Batch::default(),
        sled::Batch::default(),
    );
    let mut batched = 0usize;
    let mut keys = 0u64;
    while let Some(rec) = reader.next()? {
        snapshot::check_record_payload(&rec)?;
        if rec.tag == TAG_KV {
            kv.insert(rec.key, codec::frame(&rec.val));
            keys += 1;
        } else {
            let id: [u8; 16] = rec.key.as_slice().try_into().unwrap_or_default();
            let d: DedupRecord = codec::from_payload(&rec.val, || dedup_what(&id))?;
            dedup_exp.insert(
                &layout::dedup_exp_key(d.proposed_at_ms, &id)[..],
                codec::frame(&[]),
            );
            dedup.insert(rec.key, codec::frame(&rec.val));
        }
        batched += 1;
        if batched >= INSTALL_BATCH {
            trees.kv.apply_batch(std::mem::take(&mut kv))?;
            trees.dedup.apply_batch(std::mem::take(&mut dedup))?;
            trees
                .dedup_exp
                .apply_batch(std::mem::take(&mut dedup_exp))?;
            batched = 0;
        }
    }
    trees.kv.apply_batch(kv)?;
    trees.dedup.apply_batch(dedup)?;
    trees.dedup_exp.apply_batch(dedup_exp)?;

    let state = AppliedState {
        last_applied: snap_meta.last_log_id,
        membership: snap_meta.last_membership,
        digest: reader.digest().0,
        keys,
    };
    // The loaded data must be durable before the flip that makes it the state.
    db.flush()?;
    let mut flip = sled::Batch::default();
    flip.insert(META_GENERATION, codec::encode(&pending.generation)?);
    flip.insert(META_APPLIED, codec::encode(&state)?);
    flip.remove(META_PENDING_INSTALL);
    meta.apply_batch(flip)?;
    db.flush()?;
    tracing::info!(
        generation = pending.generation,
        applied = ?state.last_applied,
        keys,
        digest = %Digest(state.digest),
        "snapshot loaded"
    );
    Ok((trees, state))
}

/// Verifies `snapshot`, makes it a complete snapshot file of this store, and loads it.
/// Returns the new trees and state, and the path of the installed snapshot file.
fn install_blocking(
    shared: &Shared,
    generation: u64,
    meta: &SnapshotMeta,
    snapshot: SnapshotFile,
) -> Result<(DataTrees, AppliedState, PathBuf), StoreError> {
    let dir = &shared.snapshot_dir;

    // 1. Verify the whole file before touching anything.
    let (file_meta, digest, count) = snapshot::verify(&snapshot)?;
    if &file_meta != meta {
        return Err(StoreError::corrupt(
            "snapshot file",
            format!("its header says {file_meta} but the install is for {meta}"),
        ));
    }
    tracing::info!(records = count, digest = %digest, last_log_id = ?meta.last_log_id, "snapshot verified; installing");

    // 2. Keep it as this store's current snapshot file.
    let path = match snapshot::find_in_dir(dir, &snapshot)? {
        Some(path)
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(snapshot::is_snapshot_name) =>
        {
            path
        }
        Some(incoming) => {
            // Received into our directory: publish it under its final name, no copy.
            snapshot.file.sync_all()?;
            let path = dir.join(snapshot::file_name_for(&snapshot::snapshot_id(meta)));
            std::fs::rename(&incoming, &path)?;
            path
        }
        None => {
            let name = snapshot::file_name_for(&snapshot::snapshot_id(meta));
            let tmp = dir.join(format!("{name}.tmp"));
            let mut out = File::create(&tmp)?;
            let copied =
                io::copy(&mut snapshot.reader(), &mut out).and_then(|n| out.sync_all().map(|()| n));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            let path = dir.join(name);
            std::fs::rename(&tmp, &path)?;
            path
        }
    };
    snapshot::fsync_dir(dir)?;
    drop(snapshot);

    // 3. Mark the install, so a crash from here on is finished by `open`.
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let pending = PendingInstall {
        file_name,
        generation: generation + 1,
    };
    shared
        .meta
        .insert(META_PENDING_INSTALL, codec::encode(&pending)?)?;
    shared.db.flush()?;

    // 4. Load into the next generation and flip to it.
    match finish_install(&shared.db, &shared.meta, dir, &pending) {
        Ok((trees, state)) => Ok((trees, state, path)),
        Err(e) => {
            if let Err(cleanup) = abandon_install(&shared.db, &shared.meta, &pending) {
                tracing::error!(error = %cleanup, "cannot clean up the failed install");
            }
            Err(e)
        }
    }
}

/// Undoes an install that failed before its flip: the current state was never touched, so
/// dropping the half-loaded generation and the marker returns to it exactly. Does nothing
/// if the flip did happen.
pub(crate) fn abandon_install(
    db: &sled::Db,
    meta: &sled::Tree,
    pending: &PendingInstall,
) -> Result<(), StoreError> {
    if layout::read_generation(meta)? == pending.generation {
        return Ok(());
    }
    tracing::warn!(file = %pending.file_name, "abandoning a snapshot install; keeping the state from before it");
    DataTrees::drop_generation(db, pending.generation)?;
    meta.remove(META_PENDING_INSTALL)?;
    db.flush()?;
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        // sled is synchronous and one entry of a bulk ingest is a large transaction: on a
        // multi-threaded runtime, hand this worker's other tasks (heartbeats, votes) to
        // another thread while it runs, so a busy follower still answers its leader. The
        // hand-off is paid once per batch of entries that are ready, not once per entry.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        while let Some(first) = entries.try_next().await? {
            let mut batch = vec![first];
            while batch.len() < MAX_APPLY_BATCH {
                match entries.try_next().now_or_never() {
                    Some(Ok(Some(next))) => batch.push(next),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => break,
                }
            }
            let mut apply_all = || {
                let mut done = Vec::with_capacity(batch.len());
                for (entry, responder) in batch.drain(..) {
                    match self.apply_one(entry) {
                        Ok(response) => done.push((responder, response)),
                        Err(e) => return (done, Some(e)),
                    }
                }
                (done, None)
            };
            let (done, failed) = if multi_thread {
                tokio::task::block_in_place(apply_all)
            } else {
                apply_all()
            };
            for (responder, response) in done {
                if let Some(responder) = responder {
                    responder.send(response);
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<SnapshotBuilder> {
        Some(self.prepare_snapshot().await)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.prepare_snapshot().await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let shared = self.shared.clone();
        let generation = self.trees.generation;
        let meta = meta.clone();
        let (trees, state, path) =
            blocking(move || install_blocking(&shared, generation, &meta, snapshot))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "snapshot refused");
                    io::Error::from(e)
                })?;

        let old = std::mem::replace(&mut self.trees, trees.clone());
        *self.shared.trees.write().unwrap_or_else(|p| p.into_inner()) = trees;
        self.state = state;
        let st = &self.state;
        self.shared.progress.send_modify(|p| {
            p.applied_index = index_of(&st.last_applied);
            p.digest = Digest(st.digest);
            p.keys = st.keys;
            p.snapshot_index = index_of(&st.last_applied);
        });

        // No reader can hold the old trees any more: drop them, and the older snapshots.
        let shared = self.shared.clone();
        blocking(move || {
            let generation = old.generation;
            drop(old);
            DataTrees::drop_generation(&shared.db, generation)?;
            snapshot::prune(&shared.snapshot_dir, 0, Some(&path))?;
            shared.db.flush()?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotFile>>, io::Error> {
        // A concurrent prune may remove the file between listing and opening it; retry.
        for _ in 0..3 {
            let Some((meta, path)) = snapshot::latest(&self.shared.snapshot_dir)? else {
                return Ok(None);
            };
            match SnapshotFile::open(&path) {
                Ok(snapshot) => {
                    return Ok(Some(SnapshotOf::<TypeConfig, SnapshotFile> {
                        meta,
                        snapshot,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("snapshot files keep disappearing"))
    }
}

// ---- readers ----

/// Concurrent read access to the applied state. Cheap to clone; usable while apply runs.
#[derive(Clone)]
pub struct StateReader {
    shared: Arc<Shared>,
}

impl StateReader {
    /// The record of `key`, checksum verified.
    pub fn get(&self, key: &[u8]) -> Result<Option<Versioned>, StoreError> {
        let trees = self.shared.trees();
        match trees.kv.get(key)? {
            None => Ok(None),
            Some(raw) => codec::decode(&raw, || kv_what(key)).map(Some),
        }
    }

    /// Keys with `prefix`, strictly after `start_after` if given, at most `limit`, in key order.
    pub fn range(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Versioned)>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let trees = self.shared.trees();
        for item in trees.kv.range::<&[u8], _>((lower, Bound::Unbounded)) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            let value = codec::decode(&v, || kv_what(&k))?;
            out.push((k.to_vec(), value));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Index of the last applied entry; 0 if nothing was applied.
    pub fn applied_index(&self) -> u64 {
        self.shared.progress.borrow().applied_index
    }

    /// Resolves once `applied_index() >= index`.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.shared.progress.subscribe();
        // The sender lives in `shared`, which `self` keeps alive: this cannot fail.
        let _ = rx.wait_for(|p| p.applied_index >= index).await;
    }

    /// A consistent view of applied index, digest, key count and snapshot index.
    pub fn status(&self) -> StateStatus {
        let p = self.shared.progress.borrow().clone();
        StateStatus {
            applied_index: p.applied_index,
            digest: p.digest,
            keys: p.keys,
            snapshot_index: p.snapshot_index,
            format_version: FORMAT_VERSION,
        }
    }

    /// A fresh file in the snapshot directory for a snapshot being received over the network.
    /// Pass it to `install_snapshot` as a [`SnapshotFile`]; the install moves it into place.
    /// If the transfer fails, remove it (`open` also removes leftovers).
    pub fn incoming_snapshot_file(&self) -> io::Result<(File, PathBuf)> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let seq = self.shared.incoming_seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .shared
            .snapshot_dir
            .join(format!("incoming-{millis}-{seq}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((file, path))
    }

    /// Recomputes the digest and key count from the data (a full scan; for tests).
    #[cfg(test)]
    pub(crate) fn recompute_digest(&self) -> Result<(Digest, u64), StoreError> {
        recompute_digest(&self.shared.trees())
    }
}
