//! The CAS-register workload: read / write (unique values) / compare-and-swap on about ten
//! keys at a time, rotated (each key gets a bounded number of ops, then a fresh key takes
//! its slot: keeps per-key histories short for the checker and concurrency per key low).
//!
//! Mixed in:
//! * STALE reads from random nodes (`stale_fraction`), checked by `checker::stale`;
//! * "adds": puts of fresh single-use keys `add/<v>` (`add_fraction`); after healing, a
//!   range read must find every acknowledged one. This is the explicit lost-write
//!   detector (a lost register write can be hidden by a later overwrite).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookout_proto::v1 as pb;
use lookout_proto::v1::kv_client::KvClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{self, Outcome as Out, Router, Target};
use super::recorder::{OpSummary, Outcome, Recorder};
use crate::history::{Event, EventKind, StaleMeta};

#[derive(Clone, Debug)]
pub struct CasConfig {
    pub keys: usize,
    pub ops_per_key: u64,
    pub read_fraction: f64,
    pub write_fraction: f64,
    /// The rest (after reads, writes, stale reads and adds) are cas.
    pub stale_fraction: f64,
    pub add_fraction: f64,
    /// Linearizable reads sent to a random node instead of the leader (follower reads).
    pub follower_read_fraction: f64,
}

impl Default for CasConfig {
    fn default() -> Self {
        CasConfig {
            keys: 10,
            ops_per_key: 150,
            read_fraction: 0.35,
            write_fraction: 0.2,
            stale_fraction: 0.1,
            add_fraction: 0.05,
            follower_read_fraction: 0.3,
        }
    }
}

struct Slot {
    name: String,
    ops: u64,
    busy: u32,
    /// Last value this client side saw (for cas `from`).
    last: Option<i64>,
}

struct Pool {
    slots: Vec<Slot>,
    next_key: u64,
    all: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct AddRecord {
    pub value: i64,
    pub outcome: Outcome,
}

pub struct CasWorkload {
    pub cfg: CasConfig,
    router: Arc<Router>,
    rec: Arc<Recorder>,
    pool: Mutex<Pool>,
    next_value: AtomicI64,
    adds: Mutex<Vec<AddRecord>>,
    /// STALE reads whose value was newer than their header's applied index.
    pub raced: std::sync::atomic::AtomicU64,
}

/// The set (lost-write) check's result.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SetReport {
    pub attempted: usize,
    pub acknowledged: usize,
    pub unknown: usize,
    pub found: usize,
    /// Acknowledged adds missing after healing.
    pub lost: Vec<i64>,
    /// Present but never attempted (or only definitely failed).
    pub unexpected: Vec<i64>,
    /// Unknown-outcome adds that turned out to be present.
    pub unknown_present: usize,
    pub read_ok: bool,
    pub error: Option<String>,
}

impl SetReport {
    pub fn is_ok(&self) -> bool {
        self.read_ok && self.lost.is_empty() && self.unexpected.is_empty()
    }
}

impl CasWorkload {
    pub fn new(cfg: CasConfig, router: Arc<Router>, rec: Arc<Recorder>) -> Arc<CasWorkload> {
        let mut pool = Pool { slots: vec![], next_key: 0, all: vec![] };
        for _ in 0..cfg.keys.max(1) {
            let name = format!("k{}", pool.next_key);
            pool.next_key += 1;
            pool.all.push(name.clone());
            pool.slots.push(Slot { name, ops: 0, busy: 0, last: None });
        }
        Arc::new(CasWorkload { cfg, router, rec, pool: Mutex::new(pool), next_value: AtomicI64::new(1), adds: Mutex::new(vec![]), raced: Default::default() })
    }

    fn value(&self) -> i64 {
        self.next_value.fetch_add(1, Ordering::Relaxed)
    }

    fn take_key(&self, rng: &mut StdRng) -> (String, Option<i64>) {
        let mut p = self.pool.lock().unwrap();
        let min_busy = p.slots.iter().map(|s| s.busy).min().unwrap_or(0);
        let idle: Vec<usize> = (0..p.slots.len()).filter(|&i| p.slots[i].busy == min_busy).collect();
        let i = idle[rng.random_range(0..idle.len())];
        let s = &mut p.slots[i];
        s.busy += 1;
        s.ops += 1;
        (s.name.clone(), s.last)
    }

    fn release_key(&self, name: &str, seen: Option<Option<i64>>) {
        let mut p = self.pool.lock().unwrap();
        let ops_per_key = self.cfg.ops_per_key;
        let Some(i) = p.slots.iter().position(|s| s.name == name) else { return };
        let s = &mut p.slots[i];
        s.busy = s.busy.saturating_sub(1);
        if let Some(v) = seen {
            s.last = v;
        }
        if s.ops >= ops_per_key && s.busy == 0 {
            let name = format!("k{}", p.next_key);
            p.next_key += 1;
            p.all.push(name.clone());
            p.slots[i] = Slot { name, ops: 0, busy: 0, last: None };
        }
    }

    pub fn all_keys(&self) -> Vec<String> {
        self.pool.lock().unwrap().all.clone()
    }

    /// One logical client: ops back to back until `stop`; a new process id after `info`.
    pub async fn client_loop(self: Arc<Self>, seed: u64, stop: Arc<AtomicBool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut process = self.rec.new_process();
        while !stop.load(Ordering::Relaxed) {
            if self.one_op(&mut rng, process).await == Outcome::Info {
                process = self.rec.new_process();
            }
        }
    }

    fn summary(&self, f: &'static str, invoke: &Event, outcome: Outcome, node: u64, final_phase: bool) {
        self.rec.summary(OpSummary {
            f,
            invoke_ns: invoke.time_ns,
            complete_ns: self.rec.now_ns(),
            outcome,
            node,
            final_phase,
        });
    }

    async fn one_op(&self, rng: &mut StdRng, process: u64) -> Outcome {
        let c = &self.cfg;
        let x: f64 = rng.random();
        let mut acc = c.read_fraction;
        if x < acc {
            let target =
                if rng.random_bool(c.follower_read_fraction) { Target::Node(self.random_node(rng)) } else { Target::Leader };
            return self.read(rng, process, target, false, false).await;
        }
        acc += c.stale_fraction;
        if x < acc {
            let target = Target::Node(self.random_node(rng));
            return self.read(rng, process, target, true, false).await;
        }
        acc += c.add_fraction;
        if x < acc {
            return self.add(rng, process).await;
        }
        acc += c.write_fraction;
        if x < acc {
            let (key, _) = self.take_key(rng);
            let (o, seen) = self.write(rng, process, &key, false).await;
            self.release_key(&key, seen);
            return o;
        }
        self.cas(rng, process).await
    }

    fn random_node(&self, rng: &mut StdRng) -> u64 {
        let ids = &self.router.channels.ids;
        ids[rng.random_range(0..ids.len())]
    }

    async fn read(&self, rng: &mut StdRng, process: u64, target: Target, stale: bool, final_phase: bool) -> Outcome {
        let (key, _) = self.take_key(rng);
        let o = self.read_key(rng, process, &key, target, stale, final_phase).await;
        let seen = match &o {
            (Outcome::Ok, v) if !stale => Some(*v),
            _ => None,
        };
        self.release_key(&key, seen);
        o.0
    }

    async fn read_key(
        &self,
        rng: &mut StdRng,
        process: u64,
        key: &str,
        target: Target,
        stale: bool,
        final_phase: bool,
    ) -> (Outcome, Option<i64>) {
        let mut inv = Event::invoke_read(process, key, 0);
        if stale {
            inv.stale = Some(StaleMeta::default());
        }
        let inv = self.rec.invoke(inv);
        let consistency = if stale { pb::Consistency::Stale } else { pb::Consistency::Linearizable };
        let f = if stale { "stale-read" } else { "read" };
        match client::kv_get(&self.router, rng, target, key, consistency).await {
            Out::Ok { value: r, node } => {
                self.rec.complete(&inv, EventKind::Ok, node, |e| {
                    e.value = serde_json::json!(r.value);
                    if stale {
                        // The server reads its applied index, then the key: an apply in
                        // between makes the value newer than the header says (never older).
                        // The read reflects at least the key's own last write, so record
                        // max(header, mod_index); `raced` counts how often that mattered.
                        if r.mod_index > r.header.applied_index {
                            self.raced.fetch_add(1, Ordering::Relaxed);
                        }
                        e.stale = Some(StaleMeta {
                            staleness_ms: (r.header.staleness_ms != u64::MAX).then_some(r.header.staleness_ms),
                            applied_index: Some(r.header.applied_index.max(r.mod_index)),
                        });
                    } else {
                        e.index = Some(r.header.applied_index);
                    }
                });
                self.summary(f, &inv, Outcome::Ok, node, final_phase);
                (Outcome::Ok, r.value)
            }
            Out::Fail { error, node } => {
                self.rec.complete(&inv, EventKind::Fail, node, |e| e.error = Some(error));
                self.summary(f, &inv, Outcome::Fail, node, final_phase);
                (Outcome::Fail, None)
            }
            Out::Info { error, node } => {
                self.rec.complete(&inv, EventKind::Info, node, |e| e.error = Some(error));
                self.summary(f, &inv, Outcome::Info, node, final_phase);
                (Outcome::Info, None)
            }
        }
    }

    /// Returns the outcome and, if known, the register's value afterwards.
    async fn write(&self, rng: &mut StdRng, process: u64, key: &str, final_phase: bool) -> (Outcome, Option<Option<i64>>) {
        let v = self.value();
        self.write_value(rng, process, key, v, final_phase).await
    }

    async fn write_value(
        &self,
        rng: &mut StdRng,
        process: u64,
        key: &str,
        v: i64,
        final_phase: bool,
    ) -> (Outcome, Option<Option<i64>>) {
        let inv = self.rec.invoke(Event::invoke_write(process, key, v, 0));
        match client::kv_put(&self.router, rng, key, v).await {
            Out::Ok { value: index, node } => {
                self.rec.complete(&inv, EventKind::Ok, node, |e| e.index = Some(index));
                self.summary("write", &inv, Outcome::Ok, node, final_phase);
                (Outcome::Ok, Some(Some(v)))
            }
            Out::Fail { error, node } => {
                self.rec.complete(&inv, EventKind::Fail, node, |e| e.error = Some(error));
                self.summary("write", &inv, Outcome::Fail, node, final_phase);
                (Outcome::Fail, None)
            }
            Out::Info { error, node } => {
                self.rec.complete(&inv, EventKind::Info, node, |e| e.error = Some(error));
                self.summary("write", &inv, Outcome::Info, node, final_phase);
                (Outcome::Info, None)
            }
        }
    }

    async fn cas(&self, rng: &mut StdRng, process: u64) -> Outcome {
        let (key, last) = self.take_key(rng);
        let to = self.value();
        let inv = self.rec.invoke(Event::invoke_cas(process, &key, last, to, 0));
        let (o, seen) = match client::kv_cas(&self.router, rng, &key, last, to).await {
            Out::Ok { value: Ok(index), node } => {
                self.rec.complete(&inv, EventKind::Ok, node, |e| e.index = Some(index));
                self.summary("cas", &inv, Outcome::Ok, node, false);
                (Outcome::Ok, Some(Some(to)))
            }
            Out::Ok { value: Err(observed), node } => {
                self.rec.log(Event::cas_compare_failed(&inv, Some(observed), 0), Some(node));
                // A compare failure is a definite, expected answer: counts as available.
                self.summary("cas", &inv, Outcome::Ok, node, false);
                (Outcome::Fail, Some(observed))
            }
            Out::Fail { error, node } => {
                self.rec.complete(&inv, EventKind::Fail, node, |e| e.error = Some(error));
                self.summary("cas", &inv, Outcome::Fail, node, false);
                (Outcome::Fail, None)
            }
            Out::Info { error, node } => {
                self.rec.complete(&inv, EventKind::Info, node, |e| e.error = Some(error));
                self.summary("cas", &inv, Outcome::Info, node, false);
                (Outcome::Info, None)
            }
        };
        self.release_key(&key, seen);
        o
    }

    async fn add(&self, rng: &mut StdRng, process: u64) -> Outcome {
        let v = self.value();
        let key = format!("add/{v}");
        let (o, _) = self.write_value(rng, process, &key, v, false).await;
        self.adds.lock().unwrap().push(AddRecord { value: v, outcome: o });
        o
    }

    /// After healing: a write then a read of every key ever used must succeed. Returns the
    /// keys for which either did not succeed within `timeout`.
    pub async fn final_ops(&self, seed: u64, timeout: Duration) -> Vec<String> {
        let keys = self.all_keys();
        let deadline = Instant::now() + timeout;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut failed = vec![];
        for key in keys {
            let mut process = self.rec.new_process();
            let mut wrote = false;
            let mut read = false;
            while Instant::now() < deadline && !(wrote && read) {
                if !wrote {
                    let (o, _) = self.write(&mut rng, process, &key, true).await;
                    wrote = o == Outcome::Ok;
                    if o == Outcome::Info {
                        process = self.rec.new_process();
                    }
                    if !wrote {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
                let (o, _) = self.read_key(&mut rng, process, &key, Target::Leader, false, true).await;
                read = o == Outcome::Ok;
                if o == Outcome::Info {
                    process = self.rec.new_process();
                }
                if !read {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if !(wrote && read) {
                failed.push(key);
            }
        }
        failed
    }

    /// After healing: every acknowledged add must be present.
    pub async fn check_adds(&self, timeout: Duration) -> SetReport {
        let adds = self.adds.lock().unwrap().clone();
        let mut rep = SetReport {
            attempted: adds.len(),
            acknowledged: adds.iter().filter(|a| a.outcome == Outcome::Ok).count(),
            unknown: adds.iter().filter(|a| a.outcome == Outcome::Info).count(),
            ..Default::default()
        };
        let deadline = Instant::now() + timeout;
        let mut attempt = 0usize;
        let present = loop {
            attempt += 1;
            match self.range_all("add/", attempt).await {
                Ok(v) => break Some(v),
                Err(e) if Instant::now() < deadline => {
                    rep.error = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    rep.error = Some(e);
                    break None;
                }
            }
        };
        let Some(present) = present else { return rep };
        rep.read_ok = true;
        rep.error = None;
        rep.found = present.len();
        for a in &adds {
            let here = present.contains(&a.value);
            match a.outcome {
                Outcome::Ok if !here => rep.lost.push(a.value),
                Outcome::Info if here => rep.unknown_present += 1,
                Outcome::Fail if here => rep.unexpected.push(a.value),
                _ => {}
            }
        }
        let attempted: BTreeSet<i64> = adds.iter().map(|a| a.value).collect();
        rep.unexpected.extend(present.iter().filter(|v| !attempted.contains(v)));
        rep
    }

    async fn range_all(&self, prefix: &str, attempt: usize) -> Result<BTreeSet<i64>, String> {
        let leader = self.router.leader_hint();
        let ids = &self.router.channels.ids;
        let node = if leader != 0 { leader } else { ids[attempt % ids.len()] };
        let mut out = BTreeSet::new();
        let mut continuation = vec![];
        loop {
            let req = pb::RangeRequest {
                read: Some(pb::ReadOptions { consistency: pb::Consistency::Linearizable as i32, max_staleness_ms: 0 }),
                prefix: prefix.as_bytes().to_vec(),
                limit: 5000,
                continuation: continuation.clone(),
            };
            let r = KvClient::new(self.router.channels.channel(node))
                .range(client::timed(req, Duration::from_secs(5)))
                .await
                .map_err(|s| {
                    if let Some(h) = client::leader_hint(&s) {
                        self.router.set_leader_hint(h);
                    } else {
                        self.router.set_leader_hint(0);
                    }
                    client::describe(&s)
                })?
                .into_inner();
            for kv in &r.kvs {
                out.insert(client::dec(&kv.value)?);
            }
            if r.continuation.is_empty() {
                return Ok(out);
            }
            continuation = r.continuation;
        }
    }
}
