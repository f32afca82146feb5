//! Tests of the store as a whole: openraft's storage suite, and Lookout's own guarantees.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use lookout_types::Entry;
use lookout_types::Expected;
use lookout_types::LogId;
use lookout_types::NewValue;
use lookout_types::Op;
use lookout_types::Outcome;
use lookout_types::Request;
use lookout_types::RequestId;
use lookout_types::Response;
use lookout_types::TypeConfig;
use lookout_types::Versioned;
use lookout_types::Vote;
use openraft::EntryPayload;
use openraft::Membership;
use openraft::RaftLogReader;
use openraft::RaftSnapshotBuilder;
use openraft::StorageError;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use crate::LogStore;
use crate::SnapshotFile;
use crate::StateMachine;
use crate::StoreError;
use crate::StoreOptions;
use crate::codec;
use crate::layout;

/// A small deterministic generator; tests need no real randomness.
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<crate::StateReader>();
    check::<LogStore>();
    check::<StateMachine>();
    check::<SnapshotFile>();
}

// ---- openraft's storage suite ----

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        let (log, sm) = crate::open(dir.path(), StoreOptions::default())
            .map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(Builder).await.unwrap();
}

// ---- helpers ----

const WINDOW_MS: u64 = 100_000;

fn opts() -> StoreOptions {
    StoreOptions {
        cache_capacity_bytes: 16 << 20,
        dedup_window_ms: WINDOW_MS,
    }
}

fn open(dir: &Path) -> (LogStore, StateMachine) {
    crate::open(dir, opts()).unwrap()
}

fn lid(index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(1, 1, index)
}

fn req(index: u64, id: Option<u8>, t: u64, op: Op) -> Entry {
    Entry {
        log_id: lid(index),
        payload: EntryPayload::Normal(Request {
            id: id.map(|b| RequestId([b; 16])),
            proposed_at_ms: t,
            op,
        }),
    }
}

fn blank(index: u64) -> Entry {
    Entry {
        log_id: lid(index),
        payload: EntryPayload::Blank,
    }
}

fn membership(index: u64) -> Entry {
    let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    Entry {
        log_id: lid(index),
        payload: EntryPayload::Membership(Membership::new_with_defaults(vec![voters], [])),
    }
}

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    }
}

fn del(k: &str) -> Op {
    Op::Delete {
        key: k.as_bytes().to_vec(),
    }
}

fn cas(k: &str, expected: Expected, new: NewValue) -> Op {
    Op::CompareAndSwap {
        key: k.as_bytes().to_vec(),
        expected,
        new,
    }
}

fn apply(sm: &mut StateMachine, entries: Vec<Entry>) -> Vec<Response> {
    sm.apply_entries(entries).unwrap()
}

/// Everything in the kv tree, through the public reader.
fn dump(sm: &StateMachine) -> Vec<(Vec<u8>, Versioned)> {
    sm.reader().range(b"", None, usize::MAX).unwrap()
}

/// The digest maintained incrementally equals a full recomputation.
fn assert_digest_consistent(sm: &StateMachine) {
    let status = sm.reader().status();
    let (digest, keys) = sm.reader().recompute_digest().unwrap();
    assert_eq!(
        status.digest, digest,
        "incremental digest != recomputed digest"
    );
    assert_eq!(status.keys, keys, "key count != number of kv records");
}

/// A random but reproducible workload over a few keys and request ids, with time moving
/// fast enough that dedup records expire.
fn random_entries(seed: u64, first_index: u64, n: u64, t0: u64) -> Vec<Entry> {
    let mut rng = XorShift(seed);
    let mut t = t0;
    let mut out = Vec::new();
    for index in first_index..first_index + n {
        t += rng.below(20_000);
        let key = format!("k{}", rng.below(12));
        let id = if rng.below(2) == 0 {
            Some(rng.below(40) as u8)
        } else {
            None
        };
        let value = format!("v{}", rng.below(5));
        let entry = match rng.below(20) {
            0 => blank(index),
            1 => membership(index),
            2..=9 => req(index, id, t, put(&key, &value)),
            10..=12 => req(index, id, t, del(&key)),
            r => {
                let expected = match r % 4 {
                    0 => Expected::Value(value.clone().into_bytes()),
                    1 => Expected::Version(rng.below(4)),
                    2 => Expected::Absent,
                    _ => Expected::Version(0),
                };
                let new = if rng.below(3) == 0 {
                    NewValue::Delete
                } else {
                    NewValue::Put(value.into_bytes())
                };
                req(index, id, t, cas(&key, expected, new))
            }
        };
        out.push(entry);
    }
    out
}

fn corrupt_what(e: &StoreError) -> &str {
    match e {
        StoreError::Corrupt { what, .. } => what,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

async fn current_snapshot(
    sm: &mut StateMachine,
) -> openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotFile> {
    sm.get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot")
}

fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

// ---- state machine semantics ----

#[tokio::test]
async fn versions_follow_etcd_semantics() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    let r = apply(
        &mut sm,
        vec![
            req(1, None, 1, put("a", "1")),
            req(2, None, 2, put("a", "2")),
            req(3, None, 3, del("a")),
            req(4, None, 4, del("a")),
            req(5, None, 5, put("a", "3")),
        ],
    );
    let outcomes: Vec<Outcome> = r.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Put { version: 1 },
            Outcome::Put { version: 2 },
            Outcome::Delete { existed: true },
            Outcome::Delete { existed: false },
            Outcome::Put { version: 1 },
        ]
    );
    assert_eq!(
        r.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let a = Versioned {
        value: b"3".to_vec(),
        version: 1,
        create_index: 5,
        mod_index: 5,
    };
    assert_eq!(sm.reader().get(b"a").unwrap(), Some(a.clone()));

    let r = apply(
        &mut sm,
        vec![
            req(6, None, 6, put("a", "4")),
            req(
                7,
                None,
                7,
                cas("b", Expected::Version(0), NewValue::Put(b"x".to_vec())),
            ),
            req(
                8,
                None,
                8,
                cas(
                    "a",
                    Expected::Value(b"nope".to_vec()),
                    NewValue::Put(b"y".to_vec()),
                ),
            ),
            req(
                9,
                None,
                9,
                cas("a", Expected::Version(2), NewValue::Put(b"5".to_vec())),
            ),
            req(
                10,
                None,
                10,
                cas("b", Expected::Absent, NewValue::Put(b"z".to_vec())),
            ),
            req(
                11,
                None,
                11,
                cas("b", Expected::Value(b"x".to_vec()), NewValue::Delete),
            ),
            req(12, None, 12, cas("c", Expected::Absent, NewValue::Delete)),
        ],
    );
    let a6 = Versioned {
        value: b"4".to_vec(),
        version: 2,
        create_index: 5,
        mod_index: 6,
    };
    let b7 = Versioned {
        value: b"x".to_vec(),
        version: 1,
        create_index: 7,
        mod_index: 7,
    };
    assert_eq!(r[0].outcome, Outcome::Put { version: 2 });
    assert_eq!(
        r[1].outcome,
        Outcome::CompareAndSwap {
            succeeded: true,
            previous: None,
            new_version: 1
        }
    );
    assert_eq!(
        r[2].outcome,
        Outcome::CompareAndSwap {
            succeeded: false,
            previous: Some(a6.clone()),
            new_version: 0
        }
    );
    assert_eq!(
        r[3].outcome,
        Outcome::CompareAndSwap {
            succeeded: true,
            previous: Some(a6),
            new_version: 3
        }
    );
    assert_eq!(
        r[4].outcome,
        Outcome::CompareAndSwap {
            succeeded: false,
            previous: Some(b7.clone()),
            new_version: 0
        }
    );
    assert_eq!(
        r[5].outcome,
        Outcome::CompareAndSwap {
            succeeded: true,
            previous: Some(b7),
            new_version: 0
        }
    );
    assert_eq!(
        r[6].outcome,
        Outcome::CompareAndSwap {
            succeeded: true,
            previous: None,
            new_version: 0
        }
    );
    assert_eq!(
        sm.reader().get(b"a").unwrap(),
        Some(Versioned {
            value: b"5".to_vec(),
            version: 3,
            create_index: 5,
            mod_index: 9
        })
    );
    assert_eq!(sm.reader().get(b"b").unwrap(), None);
    let status = sm.reader().status();
    assert_eq!(
        (status.applied_index, status.keys, status.format_version),
        (12, 1, crate::FORMAT_VERSION)
    );
    assert_digest_consistent(&sm);
}

#[tokio::test]
async fn blank_and_membership_entries() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    let r = apply(&mut sm, vec![blank(1), membership(2)]);
    assert_eq!(
        r,
        vec![
            Response {
                index: 1,
                outcome: Outcome::None
            },
            Response {
                index: 2,
                outcome: Outcome::None
            }
        ]
    );
    let (applied, mem) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(lid(2)));
    assert_eq!(mem.log_id(), &Some(lid(2)));
    assert_eq!(sm.reader().applied_index(), 2);
}

#[tokio::test]
async fn range_respects_prefix_start_after_and_limit() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    let ops = ["a1", "a2", "a3", "b1", "ab"]
        .iter()
        .enumerate()
        .map(|(i, k)| req(i as u64 + 1, None, 1, put(k, k)))
        .collect();
    apply(&mut sm, ops);
    let keys = |prefix: &[u8], after: Option<&[u8]>, limit: usize| -> Vec<String> {
        sm.reader()
            .range(prefix, after, limit)
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(k, v.value);
                String::from_utf8(k).unwrap()
            })
            .collect()
    };
    assert_eq!(keys(b"a", None, 10), ["a1", "a2", "a3", "ab"]);
    assert_eq!(keys(b"a", Some(b"a1"), 10), ["a2", "a3", "ab"]);
    assert_eq!(keys(b"a", Some(b"a1"), 2), ["a2", "a3"]);
    assert_eq!(keys(b"a", Some(b"0"), 1), ["a1"]);
    assert_eq!(keys(b"a", Some(b"az"), 10), Vec::<String>::new());
    assert_eq!(keys(b"a", Some(b"b"), 10), Vec::<String>::new());
    assert_eq!(keys(b"", None, 10), ["a1", "a2", "a3", "ab", "b1"]);
    assert_eq!(keys(b"a", None, 0), Vec::<String>::new());
    assert_eq!(keys(b"c", None, 10), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_applied_resolves_after_apply() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    let reader = sm.reader();
    let waiter = tokio::spawn(async move { reader.wait_applied(3).await });
    apply(&mut sm, vec![blank(1), blank(2)]);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    apply(&mut sm, vec![blank(3)]);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    sm.reader().wait_applied(2).await;
}

// ---- exactly-once ----

#[tokio::test]
async fn dedup_returns_the_first_response() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    let first = apply(&mut sm, vec![req(1, Some(7), 1_000, put("k", "first"))]);
    assert_eq!(
        first[0],
        Response {
            index: 1,
            outcome: Outcome::Put { version: 1 }
        }
    );

    // A retry of the same request id, even with another body, is not executed again.
    let retry = apply(&mut sm, vec![req(2, Some(7), 2_000, put("k", "second"))]);
    assert_eq!(retry, first);
    let retry = apply(&mut sm, vec![req(3, Some(7), 3_000, del("k"))]);
    assert_eq!(retry, first);
    assert_eq!(sm.reader().get(b"k").unwrap().unwrap().value, b"first");
    assert_eq!(sm.reader().applied_index(), 3);

    // Another id is executed.
    let other = apply(&mut sm, vec![req(4, Some(8), 4_000, put("k", "third"))]);
    assert_eq!(
        other[0],
        Response {
            index: 4,
            outcome: Outcome::Put { version: 2 }
        }
    );

    // The record survives a restart.
    drop(sm);
    drop(_log);
    let (_log, mut sm) = open(dir.path());
    let retry = apply(&mut sm, vec![req(5, Some(7), 5_000, put("k", "again"))]);
    assert_eq!(retry, first);
    assert_digest_consistent(&sm);

    // Once the window has passed (by the entries' own clock), the record expires and the id
    // is executed anew.
    let late = 1_000 + WINDOW_MS + 1;
    apply(&mut sm, vec![req(6, Some(9), late, put("x", "x"))]);
    let again = apply(&mut sm, vec![req(7, Some(7), late, put("k", "fourth"))]);
    assert_eq!(
        again[0],
        Response {
            index: 7,
            outcome: Outcome::Put { version: 3 }
        }
    );
    // id 8 (proposed at 4_000) is still inside the window.
    let retry8 = apply(&mut sm, vec![req(8, Some(8), late, put("k", "nope"))]);
    assert_eq!(retry8, other);
    assert_digest_consistent(&sm);
}

// ---- digest ----

#[tokio::test]
async fn digest_is_incremental_and_deterministic() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    let entries = random_entries(42, 1, 600, 1_000_000);

    // A applies everything at once, B in random-sized batches with checks in between.
    apply(&mut a, entries.clone());
    let mut rng = XorShift(7);
    let mut rest = entries.as_slice();
    while !rest.is_empty() {
        let n = (1 + rng.below(40) as usize).min(rest.len());
        apply(&mut b, rest[..n].to_vec());
        assert_digest_consistent(&b);
        rest = &rest[n..];
    }
    assert_digest_consistent(&a);
    let (sa, sb) = (a.reader().status(), b.reader().status());
    assert_eq!(sa, sb);
    assert_eq!(sa.applied_index, 600);
    assert_ne!(sa.digest, crate::Digest::default());
    assert_eq!(dump(&a), dump(&b));

    // The digest covers content: a different history gives a different digest.
    let c_dir = TempDir::new().unwrap();
    let (_lc, mut c) = open(c_dir.path());
    apply(&mut c, random_entries(43, 1, 600, 1_000_000));
    assert_ne!(c.reader().status().digest, sa.digest);
}

// ---- durability across restarts ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_vote_log_and_state() {
    let dir = TempDir::new().unwrap();
    let vote = Vote::new(3, 1);
    {
        let (mut log, mut sm) = open(dir.path());
        log.save_vote(&vote).await.unwrap();
        log.blocking_append((1..=5).map(|i| req(i, None, i, put(&format!("k{i}"), "v"))))
            .await
            .unwrap();
        log.save_committed(Some(lid(4))).await.unwrap();
        apply(&mut sm, log.try_get_log_entries(1..=4).await.unwrap());
        // build a snapshot, so status reports it after the restart
        sm.try_create_snapshot_builder(true)
            .await
            .unwrap()
            .build_snapshot()
            .await
            .unwrap();
    }
    let (mut log, mut sm) = open(dir.path());
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert_eq!(log.read_committed().await.unwrap(), Some(lid(4)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(
        (state.last_purged_log_id, state.last_log_id),
        (None, Some(lid(5)))
    );
    let entries = log.try_get_log_entries(..).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(sm.applied_state().await.unwrap().0, Some(lid(4)));
    let status = sm.reader().status();
    assert_eq!(
        (status.applied_index, status.keys, status.snapshot_index),
        (4, 4, 4)
    );
    assert_eq!(sm.reader().get(b"k4").unwrap().unwrap().mod_index, 4);
    assert_eq!(sm.reader().get(b"k5").unwrap(), None);
    assert_digest_consistent(&sm);

    // Purge and truncate survive a restart too.
    log.purge(lid(2)).await.unwrap();
    log.truncate_after(Some(lid(4))).await.unwrap();
    drop((log, sm));
    let (mut log, _sm) = open(dir.path());
    let state = log.get_log_state().await.unwrap();
    assert_eq!(
        (state.last_purged_log_id, state.last_log_id),
        (Some(lid(2)), Some(lid(4)))
    );
    assert_eq!(log.try_get_log_entries(..).await.unwrap().len(), 2);
}

/// An applied entry is committed and Raft never removes a committed entry: a request to
/// truncate at or below the applied index means this replica applied something the cluster
/// did not commit. The store refuses (the node stops) instead of diverging silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_applied_entries_is_refused() {
    let dir = TempDir::new().unwrap();
    let (mut log, mut sm) = open(dir.path());
    log.blocking_append((1..=6).map(|i| req(i, None, i, put(&format!("k{i}"), "v"))))
        .await
        .unwrap();
    apply(&mut sm, log.try_get_log_entries(1..=4).await.unwrap());
    for keep in [Some(lid(3)), Some(lid(2)), None] {
        let e = log.truncate_after(keep).await.unwrap_err();
        assert!(e.to_string().contains("already applied"), "{e}");
    }
    assert_eq!(log.try_get_log_entries(..).await.unwrap().len(), 6, "nothing was removed");
    // Above the applied index (an uncommitted tail) truncation is normal.
    log.truncate_after(Some(lid(4))).await.unwrap();
    assert_eq!(log.try_get_log_entries(..).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_completes_every_append() {
    let dir = TempDir::new().unwrap();
    let (log, _sm) = open(dir.path());
    let mut tasks = Vec::new();
    // Appends are serialized by openraft; here each task appends its own index range
    // concurrently only to pile up callbacks for the flusher.
    for t in 0..8u64 {
        let mut log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let index = t * 100 + i;
                log.blocking_append([blank(index)]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut reader = log.clone();
    assert_eq!(
        reader.try_get_log_entries(700..725).await.unwrap().len(),
        25
    );
}

// ---- checksums and format ----

#[tokio::test]
async fn corrupt_value_is_detected_and_named() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = open(dir.path());
        apply(
            &mut sm,
            vec![
                req(1, None, 1, put("abc", "hello")),
                req(2, None, 2, put("abd", "world")),
            ],
        );
    }
    crate::debug_corrupt_value(dir.path(), b"abc").unwrap();
    assert!(crate::debug_corrupt_value(dir.path(), b"missing").is_err());

    let (_log, mut sm) = open(dir.path());
    let err = sm.reader().get(b"abc").unwrap_err();
    assert_eq!(corrupt_what(&err), "kv value for key 'abc'");
    assert!(err.to_string().contains("'abc'"), "{err}");
    assert_eq!(sm.reader().get(b"abd").unwrap().unwrap().value, b"world");
    let err = sm.reader().range(b"ab", None, 10).unwrap_err();
    assert_eq!(corrupt_what(&err), "kv value for key 'abc'");

    // Writing over the corrupt record fails the apply (the node stops) instead of
    // continuing from a wrong version.
    let err = sm
        .apply_entries(vec![req(3, None, 3, put("abc", "x"))])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(sm.reader().applied_index(), 2);
    // And a snapshot of a corrupt state is refused.
    let mut builder = sm.try_create_snapshot_builder(true).await.unwrap();
    assert!(builder.build_snapshot().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_log_entry_is_detected() {
    let dir = TempDir::new().unwrap();
    {
        let (mut log, _sm) = open(dir.path());
        log.blocking_append((0..5).map(blank)).await.unwrap();
    }
    {
        let db = crate::open_db(&dir.path().join("log"), 1 << 20).unwrap();
        let tree = db.open_tree(layout::TREE_LOG).unwrap();
        let key = codec::u64_key(3);
        let mut raw = tree.get(key).unwrap().unwrap().to_vec();
        let mid = raw.len() / 2;
        raw[mid] ^= 0x10;
        tree.insert(key, raw).unwrap();
        db.flush().unwrap();
    }
    let (mut log, _sm) = open(dir.path());
    assert_eq!(log.try_get_log_entries(0..3).await.unwrap().len(), 3);
    let err = log.try_get_log_entries(0..5).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("log entry 3"), "{err}");
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = TempDir::new().unwrap();
    drop(open(dir.path()));
    {
        let db = crate::open_db(&dir.path().join("db"), 1 << 20).unwrap();
        let meta = db.open_tree(layout::TREE_META).unwrap();
        meta.insert(
            layout::META_FORMAT_VERSION,
            codec::frame(&7u32.to_le_bytes()),
        )
        .unwrap();
        db.flush().unwrap();
    }
    let err = crate::open(dir.path(), opts()).err().expect("must refuse");
    assert!(
        matches!(
            err,
            StoreError::UnknownFormat {
                found: 7,
                supported: crate::FORMAT_VERSION
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains('7') && msg.contains(&crate::FORMAT_VERSION.to_string()), "{msg}");
}

#[test]
fn format_version_is_recorded_at_creation() {
    let dir = TempDir::new().unwrap();
    drop(open(dir.path()));
    let db = crate::open_db(&dir.path().join("db"), 1 << 20).unwrap();
    let raw = db
        .open_tree(layout::TREE_META)
        .unwrap()
        .get(layout::META_FORMAT_VERSION)
        .unwrap()
        .unwrap();
    assert_eq!(
        codec::unframe(&raw, String::new).unwrap(),
        crate::FORMAT_VERSION.to_le_bytes()
    );
}

// ---- snapshots ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_round_trip() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    apply(&mut a, random_entries(1, 1, 400, 5_000_000));

    let snap = a
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(lid(400)));
    let current = current_snapshot(&mut a).await;
    assert_eq!(current.meta, snap.meta);
    assert_eq!(a.reader().status().snapshot_index, 400);

    b.install_snapshot(&current.meta, current.snapshot)
        .await
        .unwrap();
    assert_eq!(b.reader().status(), a.reader().status());
    assert_eq!(
        b.applied_state().await.unwrap(),
        a.applied_state().await.unwrap()
    );
    assert_eq!(dump(&b), dump(&a));
    assert_digest_consistent(&b);
    assert_eq!(current_snapshot(&mut b).await.meta, snap.meta);

    // Both continue identically, dedup records included.
    let more = random_entries(2, 401, 200, 5_000_000 + 400 * 10_000);
    apply(&mut a, more.clone());
    apply(&mut b, more);
    assert_eq!(b.reader().status(), a.reader().status());
    assert_digest_consistent(&b);

    // Reopening keeps the installed state.
    let before = b.reader().status();
    drop((_lb, b));
    let (_lb, b) = open(b_dir.path());
    assert_eq!(b.reader().status(), before);
    assert_eq!(dump(&b), dump(&a));
}

/// More records than one install batch, so loading takes several batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_install_in_batches() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    let n = 2 * super::state_machine::INSTALL_BATCH as u64 + 500;
    let entries = (1..=n)
        .map(|i| {
            req(
                i,
                (i % 100 == 0).then_some((i / 100) as u8),
                i,
                put(&format!("key/{i:06}"), "v"),
            )
        })
        .collect();
    apply(&mut a, entries);
    let snap = a
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(b.reader().status(), a.reader().status());
    assert_eq!(b.reader().status().keys, n);
    assert_digest_consistent(&b);
    assert_eq!(
        b.reader().range(b"key/", Some(b"key/010000"), 3).unwrap(),
        a.reader().range(b"key/", Some(b"key/010000"), 3).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_snapshot_is_refused_without_changing_state() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    apply(&mut a, random_entries(3, 1, 300, 0));
    apply(
        &mut b,
        vec![req(1, None, 1, put("mine", "b")), membership(2)],
    );
    let snap = a
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    let before = b.reader().status();
    let before_files = snapshot_files(b_dir.path());

    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut snap.snapshot.reader(), &mut bytes).unwrap();
    let len = bytes.len();
    let scratch = TempDir::new().unwrap();
    let mut cases: Vec<(String, Vec<u8>)> =
        [0, 9, 13, 40, len / 3, len / 2, len - 60, len - 40, len - 1]
            .into_iter()
            .map(|i| {
                let mut damaged = bytes.clone();
                damaged[i] ^= 0x04;
                (format!("byte {i} flipped"), damaged)
            })
            .collect();
    cases.push(("truncated".into(), bytes[..len - 1].to_vec()));
    cases.push(("extended".into(), [bytes.as_slice(), b"x"].concat()));
    for (name, damaged) in cases {
        let path = scratch.path().join("damaged");
        std::fs::write(&path, &damaged).unwrap();
        let file = SnapshotFile::open(&path).unwrap();
        let r = b.install_snapshot(&snap.meta, file).await;
        assert!(r.is_err(), "{name}: install must fail");
        assert_eq!(b.reader().status(), before, "{name}: state changed");
        assert_eq!(b.reader().get(b"mine").unwrap().unwrap().value, b"b");
        assert_eq!(
            snapshot_files(b_dir.path()),
            before_files,
            "{name}: snapshot dir changed"
        );
    }

    // The undamaged file with the wrong meta is refused too.
    let mut wrong = snap.meta.clone();
    wrong.last_log_id = Some(lid(299));
    std::fs::write(scratch.path().join("good"), &bytes).unwrap();
    let file = SnapshotFile::open(&scratch.path().join("good")).unwrap();
    assert!(b.install_snapshot(&wrong, file).await.is_err());
    assert_eq!(b.reader().status(), before);

    // And the undamaged one installs.
    let file = SnapshotFile::open(&scratch.path().join("good")).unwrap();
    b.install_snapshot(&snap.meta, file).await.unwrap();
    assert_eq!(b.reader().status().digest, a.reader().status().digest);
    assert_eq!(b.reader().get(b"mine").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_snapshot_file_is_moved_into_place() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    apply(&mut a, random_entries(4, 1, 50, 0));
    let snap = a
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();

    // As the peer service does: receive into an incoming file, then install from it.
    let (mut file, path) = b.reader().incoming_snapshot_file().unwrap();
    std::io::copy(&mut snap.snapshot.reader(), &mut file).unwrap();
    drop(file);
    b.install_snapshot(&snap.meta, SnapshotFile::open(&path).unwrap())
        .await
        .unwrap();
    assert!(!path.exists(), "the incoming file became the snapshot");
    let files = snapshot_files(b_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("snap-1-50-"), "{files:?}");
    assert_eq!(b.reader().status().digest, a.reader().status().digest);
    assert_eq!(b.reader().status().snapshot_index, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_two_snapshots_are_kept() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    for i in 1..=4u64 {
        apply(&mut sm, vec![req(i, None, i, put("k", &i.to_string()))]);
        sm.try_create_snapshot_builder(true)
            .await
            .unwrap()
            .build_snapshot()
            .await
            .unwrap();
    }
    let files = snapshot_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        current_snapshot(&mut sm).await.meta.last_log_id,
        Some(lid(4))
    );
    assert_eq!(sm.reader().status().snapshot_index, 4);

    // A builder that is dropped without building leaves no file behind.
    let builder = sm.try_create_snapshot_builder(false).await.unwrap();
    drop(builder);
    assert_eq!(snapshot_files(dir.path()), files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_handle_survives_pruning() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    apply(&mut sm, vec![req(1, None, 1, put("k", "v"))]);
    sm.try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    let old = current_snapshot(&mut sm).await;
    for i in 2..=4u64 {
        apply(&mut sm, vec![blank(i)]);
        sm.try_create_snapshot_builder(true)
            .await
            .unwrap()
            .build_snapshot()
            .await
            .unwrap();
    }
    // The first file is gone from the directory but the handle still reads it whole.
    let (meta, _, count) = crate::snapshot::verify(&old.snapshot).unwrap();
    assert_eq!((meta.last_log_id, count), (Some(lid(1)), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_install_is_finished_by_open() {
    let a_dir = TempDir::new().unwrap();
    let b_dir = TempDir::new().unwrap();
    let (_la, mut a) = open(a_dir.path());
    apply(&mut a, random_entries(5, 1, 200, 0));
    let snap = a
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    {
        let (_lb, mut b) = open(b_dir.path());
        apply(&mut b, vec![req(1, None, 1, put("old", "state"))]);
    }
    // Simulate a crash after the marker was written and part of the data was loaded.
    {
        let name = "snap-1-200-0.snap";
        std::io::copy(
            &mut snap.snapshot.reader(),
            &mut std::fs::File::create(b_dir.path().join("snapshots").join(name)).unwrap(),
        )
        .unwrap();
        let db = crate::open_db(&b_dir.path().join("db"), 1 << 20).unwrap();
        let meta = db.open_tree(layout::TREE_META).unwrap();
        let pending = layout::PendingInstall {
            file_name: name.into(),
            generation: 1,
        };
        meta.insert(
            layout::META_PENDING_INSTALL,
            codec::encode(&pending).unwrap(),
        )
        .unwrap();
        let half = layout::DataTrees::open(&db, 1).unwrap();
        half.kv
            .insert(b"half-loaded", codec::frame(b"junk"))
            .unwrap();
        db.flush().unwrap();
    }
    let (_lb, b) = open(b_dir.path());
    assert_eq!(b.reader().status(), a.reader().status());
    assert_eq!(dump(&b), dump(&a));
    assert_digest_consistent(&b);
    let db_trees: Vec<String> = {
        // The old generation's trees are gone.
        drop((_lb, b));
        let db = crate::open_db(&b_dir.path().join("db"), 1 << 20).unwrap();
        db.tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    };
    assert!(!db_trees.iter().any(|n| n == "kv.0"), "{db_trees:?}");
    assert!(db_trees.iter().any(|n| n == "kv.1"), "{db_trees:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_install_of_a_damaged_file_keeps_the_old_state() {
    let dir = TempDir::new().unwrap();
    let before = {
        let (_log, mut sm) = open(dir.path());
        apply(&mut sm, vec![req(1, None, 1, put("old", "state"))]);
        sm.reader().status()
    };
    {
        let name = "snap-1-200-0.snap";
        std::fs::write(
            dir.path().join("snapshots").join(name),
            b"LKSNAP\r\n garbage",
        )
        .unwrap();
        let db = crate::open_db(&dir.path().join("db"), 1 << 20).unwrap();
        let meta = db.open_tree(layout::TREE_META).unwrap();
        let pending = layout::PendingInstall {
            file_name: name.into(),
            generation: 1,
        };
        meta.insert(
            layout::META_PENDING_INSTALL,
            codec::encode(&pending).unwrap(),
        )
        .unwrap();
        db.flush().unwrap();
    }
    let (_log, sm) = open(dir.path());
    assert_eq!(sm.reader().status(), before);
    assert_eq!(sm.reader().get(b"old").unwrap().unwrap().value, b"state");
    drop((_log, sm));
    let db = crate::open_db(&dir.path().join("db"), 1 << 20).unwrap();
    let meta = db.open_tree(layout::TREE_META).unwrap();
    assert!(layout::read_pending_install(&meta).unwrap().is_none());
}

/// A snapshot file must never panic the reader, whatever its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reader_never_panics_on_garbage() {
    let dir = TempDir::new().unwrap();
    let (_log, mut sm) = open(dir.path());
    apply(&mut sm, random_entries(6, 1, 30, 0));
    let snap = sm
        .try_create_snapshot_builder(true)
        .await
        .unwrap()
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut snap.snapshot.reader(), &mut bytes).unwrap();
    let mut rng = XorShift(99);
    let scratch = TempDir::new().unwrap();
    let path = scratch.path().join("f");
    for round in 0..300 {
        let mut b = bytes.clone();
        match round % 3 {
            0 => b.truncate(rng.below(b.len() as u64) as usize),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.next() as u8;
                }
            }
            _ => b = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        }
        if b == bytes {
            continue;
        }
        std::fs::write(&path, &b).unwrap();
        let f = SnapshotFile::open(&path).unwrap();
        assert!(crate::snapshot::verify(&f).is_err(), "round {round}");
    }
}

