//! Screening records (lookouts, their history and match indexes, travellers) stored in
//! the kv tree under the reserved `0x00` prefix, so they share its checksums, digest,
//! snapshots and atomic apply.
//!
//! Layout (ids never contain `0x00`; the server refuses them):
//! - `\0lookout\0<id>` → postcard(Lookout), the current version;
//! - `\0history\0<id>\0<version u64 BE>` → postcard(Lookout), every superseded version;
//! - `\0index\0<index key>\0<id>` → empty: the lookout is a candidate for that key;
//! - `\0traveller\0<id>` → postcard(Traveller).
//!
//! Invariant: a lookout's index entries are exactly `index_keys(lookout)` of its current,
//! non-retired version; they change in the same transaction as the record.

use std::collections::BTreeSet;

use lookout_screening::Lookout;
use lookout_screening::Traveller;
use lookout_types::Outcome;
use sled::transaction::ConflictableTransactionResult;
use sled::transaction::TransactionalTree;

use crate::codec;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::state_machine::StateReader;
use crate::state_machine::abort;
use crate::state_machine::kv_delete;
use crate::state_machine::kv_get;
use crate::state_machine::kv_put;

/// User keys must not start with this byte.
pub const RESERVED_PREFIX: u8 = 0;

const LOOKOUT: &[u8] = b"\0lookout\0";
const HISTORY: &[u8] = b"\0history\0";
const INDEX: &[u8] = b"\0index\0";
const TRAVELLER: &[u8] = b"\0traveller\0";

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn lookout_key(id: &str) -> Vec<u8> {
    join(&[LOOKOUT, id.as_bytes()])
}

fn history_prefix(id: &str) -> Vec<u8> {
    join(&[HISTORY, id.as_bytes(), b"\0"])
}

fn index_prefix(key: &str) -> Vec<u8> {
    join(&[INDEX, key.as_bytes(), b"\0"])
}

fn traveller_key(id: &str) -> Vec<u8> {
    join(&[TRAVELLER, id.as_bytes()])
}

fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8], what: impl Fn() -> String) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::corrupt(what(), format!("record does not decode: {e}")))
}

fn encode_record<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    Ok(postcard::to_stdvec(v)?)
}

fn index_set(l: &Lookout) -> BTreeSet<String> {
    if l.retired {
        return BTreeSet::new();
    }
    lookout_screening::index_keys(l).into_iter().map(|k| k.to_string()).collect()
}

fn current_lookout(kv: &TransactionalTree, id: &str) -> ConflictableTransactionResult<Option<(Lookout, sled::IVec)>, StoreError> {
    let key = lookout_key(id);
    match kv_get(kv, &key)? {
        None => Ok(None),
        Some((v, raw)) => {
            let l: Lookout = abort(decode_record(&v.value, || format!("lookout {id:?}")))?;
            Ok(Some((l, raw)))
        }
    }
}

/// Writes `new` as the current version of its id, moving the previous version to
/// history and updating the index entries by difference.
#[allow(clippy::too_many_arguments)]
fn write_version(
    kv: &TransactionalTree,
    old: Option<Lookout>,
    new: &Lookout,
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<(), StoreError> {
    let old_keys = old.as_ref().map(index_set).unwrap_or_default();
    let new_keys = index_set(new);
    if let Some(old) = &old {
        let mut hk = history_prefix(&old.id);
        hk.extend_from_slice(&old.version.to_be_bytes());
        let payload = abort(encode_record(old))?;
        let cur = kv_get(kv, &hk)?;
        kv_put(kv, &hk, cur, &payload, index, digest, keys)?;
    }
    for gone in old_keys.difference(&new_keys) {
        let mut k = index_prefix(gone);
        k.extend_from_slice(new.id.as_bytes());
        if let Some((_, raw)) = kv_get(kv, &k)? {
            kv_delete(kv, &k, &raw, digest, keys)?;
        }
    }
    for added in new_keys.difference(&old_keys) {
        let mut k = index_prefix(added);
        k.extend_from_slice(new.id.as_bytes());
        let cur = kv_get(kv, &k)?;
        kv_put(kv, &k, cur, &[], index, digest, keys)?;
    }
    let key = lookout_key(&new.id);
    let cur = kv_get(kv, &key)?;
    let payload = abort(encode_record(new))?;
    kv_put(kv, &key, cur, &payload, index, digest, keys)?;
    Ok(())
}

pub(crate) fn put_lookout(
    kv: &TransactionalTree,
    lookout: &Lookout,
    expected_version: Option<u64>,
    actor: &str,
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<Outcome, StoreError> {
    let old = current_lookout(kv, &lookout.id)?.map(|(l, _)| l);
    let current_version = old.as_ref().map_or(0, |l| l.version);
    if expected_version.is_some_and(|e| e != current_version) {
        return Ok(Outcome::LookoutConflict { current_version });
    }
    let mut new = lookout.clone();
    new.version = current_version + 1;
    new.created_by = old.as_ref().map_or_else(|| actor.to_string(), |o| o.created_by.clone());
    new.updated_by = actor.to_string();
    write_version(kv, old, &new, index, digest, keys)?;
    Ok(Outcome::Lookout { version: new.version })
}

pub(crate) fn retire_lookout(
    kv: &TransactionalTree,
    id: &str,
    expected_version: Option<u64>,
    actor: &str,
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<Outcome, StoreError> {
    let Some((old, _)) = current_lookout(kv, id)? else {
        return Ok(Outcome::LookoutConflict { current_version: 0 });
    };
    if expected_version.is_some_and(|e| e != old.version) {
        return Ok(Outcome::LookoutConflict { current_version: old.version });
    }
    let mut new = old.clone();
    new.version = old.version + 1;
    new.retired = true;
    new.updated_by = actor.to_string();
    write_version(kv, Some(old), &new, index, digest, keys)?;
    Ok(Outcome::Lookout { version: new.version })
}

pub(crate) fn put_traveller(
    kv: &TransactionalTree,
    traveller: &Traveller,
    index: u64,
    digest: &mut Digest,
    keys: &mut u64,
) -> ConflictableTransactionResult<u64, StoreError> {
    let key = traveller_key(&traveller.id);
    let cur = kv_get(kv, &key)?;
    let mut t = traveller.clone();
    t.version = cur.as_ref().map_or(0, |(v, _)| v.version) + 1;
    let payload = abort(encode_record(&t))?;
    kv_put(kv, &key, cur, &payload, index, digest, keys)?;
    Ok(t.version)
}

/// Read side of the screening records.
impl StateReader {
    /// The current version of a lookout and the log index that wrote it.
    pub fn lookout(&self, id: &str) -> Result<Option<(Lookout, u64)>, StoreError> {
        match self.get(&lookout_key(id))? {
            None => Ok(None),
            Some(v) => Ok(Some((decode_record(&v.value, || format!("lookout {id:?}"))?, v.mod_index))),
        }
    }

    /// Every superseded version of a lookout, oldest first.
    pub fn lookout_history(&self, id: &str) -> Result<Vec<Lookout>, StoreError> {
        let rows = self.range(&history_prefix(id), None, usize::MAX)?;
        rows.iter().map(|(_, v)| decode_record(&v.value, || format!("history of lookout {id:?}"))).collect()
    }

    /// Ids of the lookouts indexed under `key` (at most `limit`).
    pub fn lookouts_indexed_under(&self, key: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let prefix = index_prefix(key);
        let rows = self.range(&prefix, None, limit)?;
        Ok(rows.into_iter().map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned()).collect())
    }

    /// Lookouts (with the index that wrote them) in id order, strictly after `after`, at most `limit`.
    pub fn lookouts_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(Lookout, u64)>, StoreError> {
        let after_key = after.map(lookout_key);
        let rows = self.range(LOOKOUT, after_key.as_deref(), limit)?;
        rows.iter()
            .map(|(k, v)| Ok((decode_record(&v.value, || format!("lookout {}", codec::show_key(k)))?, v.mod_index)))
            .collect()
    }

    pub fn traveller(&self, id: &str) -> Result<Option<Traveller>, StoreError> {
        match self.get(&traveller_key(id))? {
            None => Ok(None),
            Some(v) => decode_record(&v.value, || format!("traveller {id:?}")).map(Some),
        }
    }
}
