//! Nemeses: a seeded schedule of alternating fault and heal windows.
//!
//! Families and their variants:
//!
//! | family | variants |
//! |---|---|
//! | `kill` | `kill -9` of a random node, of the leader, of a whole site, of a majority, of every node (then restart on the same data dirs) |
//! | `pause` | SIGSTOP of the leader, of random nodes (then SIGCONT) |
//! | `partition` | random halves, isolate the leader, cut one site off, bridge, majority ring |
//! | `delay` | every link slow; links of the leader very slow (proxy mode only) |
//! | `loss` | every link lossy; links of the leader very lossy |
//! | `powerloss` | every node / a majority loses power at once: frozen, disk images taken as the kernel has them (un-fsynced page-cache data is lost), killed, restarted on the taken images (needs root and loop devices) |
//! | `disk` | fsync (`posix/io/sync/*`) or file writes (`posix/io/rw/pwrite*`) fail, through libfiu's remote control (`fiu-ctrl`; nodes run under `fiu-run -x`), on the leader / a random node; healed by crash-restarting the node |
//!
//! Every fault is healed at the end of its window, and everything is healed when the run
//! stops (SIGCONT, restart, network healed), even on error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::cluster::{Channels, Cluster, Layout};
use super::recorder::Recorder;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Kill,
    Pause,
    Partition,
    Delay,
    Loss,
    Disk,
    /// Simultaneous power loss (un-fsynced data lost) of several nodes; needs root and
    /// loop devices.
    Powerloss,
}

impl Family {
    /// Every family (`all` stands for all of them but `powerloss`, which is opt-in).
    pub const ALL: [Family; 7] =
        [Family::Kill, Family::Pause, Family::Partition, Family::Delay, Family::Loss, Family::Disk, Family::Powerloss];

    pub fn name(self) -> &'static str {
        match self {
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Partition => "partition",
            Family::Delay => "delay",
            Family::Loss => "loss",
            Family::Disk => "disk",
            Family::Powerloss => "powerloss",
        }
    }

    pub fn variants(self) -> &'static [&'static str] {
        match self {
            Family::Kill => &["kill-random", "kill-leader", "kill-site", "kill-majority", "kill-all"],
            Family::Pause => &["pause-leader", "pause-random"],
            Family::Partition => &["partition-halves", "partition-isolate-leader", "partition-site", "partition-bridge", "partition-ring"],
            Family::Delay => &["delay-all", "delay-leader"],
            Family::Loss => &["loss-all", "loss-leader"],
            Family::Disk => &["disk-fsync-leader", "disk-fsync-random", "disk-write-leader", "disk-write-random"],
            Family::Powerloss => &["powerloss-all", "powerloss-majority"],
        }
    }

    /// Does this fault need a network controller?
    pub fn is_network(self) -> bool {
        matches!(self, Family::Partition | Family::Delay | Family::Loss)
    }
}

/// Per family, the only variants to use (when the user named variants).
pub type VariantFilter = BTreeMap<Family, Vec<&'static str>>;

/// Parses `kill,pause,partition,delay,loss,disk,powerloss`, `all` or `none`. A variant
/// name (e.g. `kill-all`, `partition-isolate-leader`) restricts its family to that variant.
pub fn parse_nemesis(s: &str) -> anyhow::Result<(Vec<Family>, VariantFilter)> {
    let mut fams = BTreeSet::new();
    let mut only: BTreeMap<Family, Vec<&'static str>> = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "all" => fams.extend(Family::ALL.into_iter().filter(|f| *f != Family::Powerloss)),
            p => {
                if let Some(f) = Family::ALL.iter().find(|f| f.name() == p) {
                    fams.insert(*f);
                } else if let Some((f, v)) =
                    Family::ALL.iter().find_map(|f| f.variants().iter().find(|v| **v == p).map(|v| (*f, *v)))
                {
                    fams.insert(f);
                    only.entry(f).or_default().push(v);
                } else {
                    bail!(
                        "unknown nemesis {p:?}: use all, none, {} or a variant such as kill-all",
                        Family::ALL.map(|f| f.name()).join(", ")
                    )
                }
            }
        }
    }
    Ok((fams.into_iter().collect(), only))
}

/// What a network controller (proxies or nftables) can do.
pub trait NetControl: Send + Sync {
    fn mode(&self) -> &'static str;
    fn supports(&self, f: Family) -> bool;
    /// Cut exactly the directed links `(from, to)` in `cut` (traffic from `from` to `to`).
    fn partition(&self, cut: &BTreeSet<(u64, u64)>) -> anyhow::Result<()>;
    /// Slow the links touching `nodes` (all links if `None`).
    fn delay(&self, nodes: Option<&[u64]>, ms: u64, jitter_ms: u64) -> anyhow::Result<()>;
    fn loss(&self, nodes: Option<&[u64]>, p: f64) -> anyhow::Result<()>;
    fn heal(&self) -> anyhow::Result<()>;
    fn stats(&self) -> serde_json::Value;
}

impl NetControl for super::proxy::ProxyNet {
    fn mode(&self) -> &'static str {
        "proxy"
    }
    fn supports(&self, f: Family) -> bool {
        f.is_network()
    }
    fn partition(&self, cut: &BTreeSet<(u64, u64)>) -> anyhow::Result<()> {
        super::proxy::ProxyNet::partition(self, cut);
        Ok(())
    }
    fn delay(&self, nodes: Option<&[u64]>, ms: u64, jitter_ms: u64) -> anyhow::Result<()> {
        let f = super::proxy::LinkFault::Delay { ms, jitter_ms };
        for l in self.links() {
            if nodes.is_none_or(|n| n.contains(&l.from) || n.contains(&l.to)) {
                self.set(l.from, l.to, f);
            }
        }
        Ok(())
    }
    fn loss(&self, nodes: Option<&[u64]>, p: f64) -> anyhow::Result<()> {
        let f = super::proxy::LinkFault::Loss { p };
        for l in self.links() {
            if nodes.is_none_or(|n| n.contains(&l.from) || n.contains(&l.to)) {
                self.set(l.from, l.to, f);
            }
        }
        Ok(())
    }
    fn heal(&self) -> anyhow::Result<()> {
        super::proxy::ProxyNet::heal(self);
        Ok(())
    }
    fn stats(&self) -> serde_json::Value {
        self.stats_json()
    }
}

/// Disk faults through libfiu's remote control (`fiu-ctrl`).
///
/// Note: libfiu's POSIX preload has failure points for `fsync` and `fdatasync`, not for
/// `sync_file_range`, which sled uses to make its log durable on Linux. So the `fsync`
/// variant only reaches `sync_all()` callers (snapshot files, sled segment rollover);
/// the `write` variant (`pwrite`/`pwritev` fail with EIO-like errors) reaches the log.
pub struct DiskControl {
    pub fiu_ctrl: String,
    pub fifo_prefix: String,
}

impl DiskControl {
    /// The failure points of a disk variant.
    pub fn points(kind: &str) -> &'static [&'static str] {
        if kind.contains("write") { &["posix/io/rw/pwrite*"] } else { &["posix/io/sync/*"] }
    }

    fn ctrl(&self, pid: u32, cmd: &str) -> anyhow::Result<()> {
        let out = std::process::Command::new(&self.fiu_ctrl)
            .args(["-f", &self.fifo_prefix, "-c", cmd, &pid.to_string()])
            .output()?;
        if !out.status.success() {
            bail!("fiu-ctrl {cmd:?} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    pub fn enable(&self, pid: u32, points: &[&str]) -> anyhow::Result<()> {
        for p in points {
            self.ctrl(pid, &format!("enable name={p}"))?;
        }
        Ok(())
    }

    pub fn disable(&self, pid: u32, points: &[&str]) -> anyhow::Result<()> {
        for p in points {
            self.ctrl(pid, &format!("disable name={p}"))?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub n: usize,
    pub family: Family,
    pub kind: &'static str,
    pub targets: Vec<u64>,
    pub detail: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub leader_before: Option<u64>,
    pub term_before: u64,
    pub leader_after: Option<u64>,
    pub term_after: u64,
    /// Nodes restarted when the fault healed.
    pub restarted: Vec<u64>,
    /// Non-empty if applying or healing the fault went wrong.
    pub errors: Vec<String>,
}

pub struct Nemesis {
    pub families: Vec<Family>,
    pub only: BTreeMap<Family, Vec<&'static str>>,
    pub layout: Layout,
    pub cluster: Arc<Mutex<Cluster>>,
    pub channels: Channels,
    pub net: Option<Arc<dyn NetControl>>,
    pub disk: Option<DiskControl>,
    pub rec: Arc<Recorder>,
    pub rng: StdRng,
    pub fault_window: (Duration, Duration),
    pub heal_window: (Duration, Duration),
    pub faults: Vec<FaultRecord>,
    pub notes: Vec<String>,
    deck: Vec<Family>,
    variant_decks: BTreeMap<Family, Vec<&'static str>>,
    active: Option<Active>,
}

/// State needed to heal the current fault.
struct Active {
    family: Family,
    kind: &'static str,
    targets: Vec<u64>,
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo { lo } else { lo + Duration::from_millis(rng.random_range(0..=(hi - lo).as_millis() as u64)) }
}

/// Every directed link between `a` and `b` (both directions), for all pairs across groups.
fn cut_between(a: &[u64], b: &[u64]) -> BTreeSet<(u64, u64)> {
    let mut s = BTreeSet::new();
    for &x in a {
        for &y in b {
            if x != y {
                s.insert((x, y));
                s.insert((y, x));
            }
        }
    }
    s
}

impl Nemesis {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        families: Vec<Family>,
        only: BTreeMap<Family, Vec<&'static str>>,
        layout: Layout,
        cluster: Arc<Mutex<Cluster>>,
        channels: Channels,
        net: Option<Arc<dyn NetControl>>,
        disk: Option<DiskControl>,
        rec: Arc<Recorder>,
        seed: u64,
    ) -> Nemesis {
        Nemesis {
            families,
            only,
            layout,
            cluster,
            channels,
            net,
            disk,
            rec,
            rng: StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300),
            fault_window: (Duration::from_secs(4), Duration::from_secs(8)),
            heal_window: (Duration::from_secs(4), Duration::from_secs(7)),
            faults: vec![],
            notes: vec![],
            deck: vec![],
            variant_decks: BTreeMap::new(),
            active: None,
        }
    }

    fn next_fault(&mut self) -> Option<(Family, &'static str)> {
        if self.families.is_empty() {
            return None;
        }
        if self.deck.is_empty() {
            self.deck = self.families.clone();
            self.deck.shuffle(&mut self.rng);
        }
        let f = self.deck.pop()?;
        let vd = self.variant_decks.entry(f).or_default();
        if vd.is_empty() {
            *vd = self.only.get(&f).cloned().unwrap_or_else(|| f.variants().to_vec());
            vd.shuffle(&mut self.rng);
        }
        let v = vd.pop()?;
        Some((f, v))
    }

    /// Runs the schedule until `until` (or `stop`), then heals everything.
    pub async fn run(&mut self, until: Instant, stop: &AtomicBool) {
        // A healthy warm-up first.
        let warm = between(&mut self.rng, self.heal_window);
        sleep_until_or_stop(Instant::now() + warm, until, stop).await;
        while Instant::now() + Duration::from_secs(1) < until && !stop.load(Ordering::Relaxed) {
            let Some((family, kind)) = self.next_fault() else { break };
            let window = between(&mut self.rng, self.fault_window);
            self.apply(family, kind).await;
            sleep_until_or_stop(Instant::now() + window, until, stop).await;
            self.heal_current().await;
            let rest = between(&mut self.rng, self.heal_window);
            sleep_until_or_stop(Instant::now() + rest, until, stop).await;
        }
        self.heal_current().await;
    }

    async fn leader_and_term(&self) -> (Option<u64>, u64) {
        let st = self.channels.statuses(Duration::from_millis(400)).await;
        let leader = st
            .values()
            .filter(|s| s.role == lookout_proto::v1::Role::Leader as i32)
            .max_by_key(|s| s.term)
            .map(|s| s.id);
        (leader, st.values().map(|s| s.term).max().unwrap_or(0))
    }

    fn random_nodes(&mut self, k: usize) -> Vec<u64> {
        let mut ids = self.layout.ids();
        ids.shuffle(&mut self.rng);
        ids.truncate(k);
        ids.sort();
        ids
    }

    fn pick_leader_or_random(&mut self, leader: Option<u64>) -> u64 {
        leader.unwrap_or_else(|| self.random_nodes(1)[0])
    }

    async fn apply(&mut self, family: Family, kind: &'static str) {
        let (leader, term) = self.leader_and_term().await;
        let ids = self.layout.ids();
        let n = ids.len();
        let majority = n / 2 + 1;
        let mut errors = vec![];
        let mut detail = String::new();
        let targets: Vec<u64> = match kind {
            "kill-random" | "pause-random" | "disk-fsync-random" | "disk-write-random" => {
                let k = if kind == "pause-random" && n == 5 { self.rng.random_range(1..=2) } else { 1 };
                self.random_nodes(k)
            }
            "kill-leader" | "pause-leader" | "disk-fsync-leader" | "disk-write-leader" | "partition-isolate-leader"
            | "delay-leader" | "loss-leader" => {
                if leader.is_none() {
                    detail += "no leader known; random node instead. ";
                }
                vec![self.pick_leader_or_random(leader)]
            }
            "kill-site" | "partition-site" => {
                let sites = self.layout.sites();
                let (site, nodes) = sites[self.rng.random_range(0..sites.len())].clone();
                detail += &format!("site {site}. ");
                nodes
            }
            "kill-majority" | "powerloss-majority" => self.random_nodes(majority),
            "kill-all" | "powerloss-all" => ids.clone(),
            _ => vec![],
        };
        // The window opens as the fault is applied (ops invoked from now on count).
        let start_ns = self.rec.now_ns();
        match family {
            Family::Kill => {
                let mut c = self.cluster.lock().unwrap();
                for &t in &targets {
                    c.kill(t);
                }
            }
            Family::Pause => {
                let mut c = self.cluster.lock().unwrap();
                for &t in &targets {
                    if let Err(e) = c.pause(t) {
                        errors.push(e.to_string());
                    }
                }
            }
            Family::Powerloss => {
                let mut c = self.cluster.lock().unwrap();
                if let Err(e) = c.power_loss(&targets) {
                    errors.push(format!("power loss: {e:#}"));
                }
            }
            Family::Partition => {
                let (cut, what) = self.partition_plan(kind, &targets, leader);
                detail += &what;
                match &self.net {
                    Some(net) => {
                        if let Err(e) = net.partition(&cut) {
                            errors.push(format!("partition: {e:#}"));
                        }
                    }
                    None => errors.push("no network controller".into()),
                }
            }
            Family::Delay => {
                let (ms, nodes) = if kind == "delay-leader" {
                    (self.rng.random_range(200..=600), Some(targets.clone()))
                } else {
                    (self.rng.random_range(50..=250), None)
                };
                let jitter = ms / 2;
                detail += &format!("{ms} ms ± {jitter} ms on {}. ", if nodes.is_some() { "the leader's links" } else { "every link" });
                if let Some(net) = &self.net
                    && let Err(e) = net.delay(nodes.as_deref(), ms, jitter)
                {
                    errors.push(format!("delay: {e:#}"));
                }
            }
            Family::Loss => {
                let (p, nodes) = if kind == "loss-leader" {
                    (self.rng.random_range(30..=60) as f64 / 100.0, Some(targets.clone()))
                } else {
                    (self.rng.random_range(5..=20) as f64 / 100.0, None)
                };
                detail += &format!("p = {p:.2} on {}. ", if nodes.is_some() { "the leader's links" } else { "every link" });
                if let Some(net) = &self.net
                    && let Err(e) = net.loss(nodes.as_deref(), p)
                {
                    errors.push(format!("loss: {e:#}"));
                }
            }
            Family::Disk => {
                let pid = self.cluster.lock().unwrap().pid(targets[0]);
                match (&self.disk, pid) {
                    (Some(d), Some(pid)) => {
                        let points = DiskControl::points(kind);
                        if let Err(e) = d.enable(pid, points) {
                            errors.push(format!("{e:#}"));
                        } else {
                            detail += &format!("failing {}. ", points.join(", "));
                        }
                    }
                    (None, _) => errors.push("disk nemesis needs nodes under fiu-run".into()),
                    (_, None) => errors.push(format!("node {} not running", targets[0])),
                }
            }
        }
        eprintln!(
            "[{:>7.2}s] nemesis: {kind} {:?} {}{}",
            start_ns as f64 / 1e9,
            targets,
            detail,
            if errors.is_empty() { String::new() } else { format!("ERRORS: {errors:?}") }
        );
        self.faults.push(FaultRecord {
            n: self.faults.len() + 1,
            family,
            kind,
            targets: targets.clone(),
            detail: detail.trim().to_string(),
            start_ns,
            end_ns: start_ns,
            leader_before: leader,
            term_before: term,
            leader_after: None,
            term_after: 0,
            restarted: vec![],
            errors,
        });
        self.active = Some(Active { family, kind, targets });
    }

    /// Directed links to cut for a partition variant, and a description.
    fn partition_plan(&mut self, kind: &str, targets: &[u64], leader: Option<u64>) -> (BTreeSet<(u64, u64)>, String) {
        let mut ids = self.layout.ids();
        let n = ids.len();
        match kind {
            "partition-isolate-leader" | "partition-site" => {
                let rest: Vec<u64> = ids.iter().copied().filter(|i| !targets.contains(i)).collect();
                (cut_between(targets, &rest), format!("{targets:?} | {rest:?}"))
            }
            "partition-halves" => {
                ids.shuffle(&mut self.rng);
                let (a, b) = ids.split_at(n / 2);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort();
                b.sort();
                (cut_between(&a, &b), format!("{a:?} | {b:?}"))
            }
            "partition-bridge" => {
                ids.shuffle(&mut self.rng);
                // The bridge is a follower when the leader is known: a leader bridge keeps
                // its quorum on both sides and nobody notices.
                if let Some(l) = leader
                    && ids[0] == l
                {
                    ids.swap(0, 1);
                }
                let bridge = ids[0];
                let rest = &ids[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                (cut_between(a, b), format!("{a:?} <-> {bridge} <-> {b:?} (bridge {bridge})"))
            }
            _ => {
                // Majority ring.
                ids.shuffle(&mut self.rng);
                let mut cut = BTreeSet::new();
                if n >= 5 {
                    // Each node sees its two ring neighbours: a majority each, all different.
                    for i in 0..n {
                        for j in 0..n {
                            let d = (i as i64 - j as i64).rem_euclid(n as i64);
                            if i != j && d != 1 && d != n as i64 - 1 {
                                cut.insert((ids[i], ids[j]));
                            }
                        }
                    }
                    (cut, format!("ring {ids:?}: each node reaches only its two neighbours"))
                } else {
                    // Three nodes: a one-way ring; each node can send to only one peer.
                    for i in 0..n {
                        cut.insert((ids[i], ids[(i + 1) % n]));
                    }
                    (cut, format!("one-way ring {ids:?}: traffic {}→{} etc. dropped", ids[0], ids[1]))
                }
            }
        }
    }

    async fn heal_current(&mut self) {
        let Some(active) = self.active.take() else { return };
        let mut errors = vec![];
        let mut restarted = vec![];
        match active.family {
            Family::Kill | Family::Pause | Family::Powerloss => {
                let mut c = self.cluster.lock().unwrap();
                match c.heal_processes() {
                    Ok(r) => restarted = r,
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            Family::Partition | Family::Delay | Family::Loss => {
                if let Some(net) = &self.net
                    && let Err(e) = net.heal()
                {
                    errors.push(format!("heal network: {e:#}"));
                }
            }
            Family::Disk => {
                let mut c = self.cluster.lock().unwrap();
                for &t in &active.targets {
                    if let (Some(d), Some(pid)) = (&self.disk, c.pid(t)) {
                        let _ = d.disable(pid, DiskControl::points(active.kind));
                    }
                    // The node may have stopped itself (it must not keep acknowledging on a
                    // failing disk); crash-restart it either way.
                    c.kill(t);
                }
                match c.heal_processes() {
                    Ok(r) => restarted = r,
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
        }
        let end_ns = self.rec.now_ns();
        let (leader, term) = self.leader_and_term().await;
        if let Some(f) = self.faults.last_mut() {
            f.end_ns = end_ns;
            f.leader_after = leader;
            f.term_after = term;
            f.restarted = restarted;
            f.errors.extend(errors);
        }
        eprintln!("[{:>7.2}s] nemesis: healed", end_ns as f64 / 1e9);
    }

    /// Heal everything regardless of what is active (end of run, errors).
    pub fn heal_all(&mut self) -> Vec<String> {
        let mut errors = vec![];
        if let Some(net) = &self.net
            && let Err(e) = net.heal()
        {
            errors.push(format!("heal network: {e:#}"));
        }
        let mut c = self.cluster.lock().unwrap();
        if let Some(active) = self.active.take()
            && active.family == Family::Disk
        {
            for &t in &active.targets {
                c.kill(t);
            }
        }
        if let Err(e) = c.heal_processes() {
            errors.push(format!("{e:#}"));
        }
        errors
    }
}

async fn sleep_until_or_stop(t: Instant, limit: Instant, stop: &AtomicBool) {
    let t = t.min(limit);
    while Instant::now() < t && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep((t - Instant::now()).min(Duration::from_millis(100))).await;
    }
}
