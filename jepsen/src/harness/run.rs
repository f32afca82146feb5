//! One test run: cluster → traffic + faults → heal → final checks → recorded history →
//! checkers → `results.json`, `history.jsonl`, `timeline.html`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::cas::{CasConfig, CasWorkload};
use super::client::Router;
use super::cluster::{Channels, Cluster, Layout, PROXY_PORT_BASE, loopback_block};
use super::nemesis::{DiskControl, Family, NetControl, Nemesis, parse_nemesis};
use super::netns::Netns;
use super::proxy::ProxyNet;
use super::recorder::Recorder;
use super::report::{self, Verdict};
use super::vis::VisWorkload;
use crate::checker::{self, CheckOptions, CheckResult, RegisterModel};
use crate::history::History;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// CAS registers with stale reads and adds mixed in.
    Cas,
    /// CAS registers, with a large share of STALE reads.
    Stale,
    /// PutLookout / Screen visibility.
    Visibility,
}

impl Workload {
    pub fn parse(s: &str) -> anyhow::Result<Workload> {
        Ok(match s {
            "cas" | "register" => Workload::Cas,
            "stale" => Workload::Stale,
            "visibility" | "lookout" => Workload::Visibility,
            o => bail!("unknown workload {o:?}: cas, stale or visibility"),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Workload::Cas => "cas",
            Workload::Stale => "stale",
            Workload::Visibility => "visibility",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// Nodes dial each other directly (no network faults possible).
    Direct,
    /// A user-space TCP proxy on every directed peer link (default).
    Proxy,
    /// A network namespace per node, nftables DROP rules (root only).
    Netns,
}

impl NetMode {
    pub fn parse(s: &str) -> anyhow::Result<NetMode> {
        Ok(match s {
            "direct" => NetMode::Direct,
            "proxy" => NetMode::Proxy,
            "netns" | "nftables" => NetMode::Netns,
            o => bail!("unknown --net {o:?}: proxy, netns or direct"),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            NetMode::Direct => "direct",
            NetMode::Proxy => "proxy",
            NetMode::Netns => "netns",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TestOpts {
    pub workload: Workload,
    pub nemesis: String,
    pub time_limit: Duration,
    pub seed: u64,
    pub nodes: usize,
    pub clients: usize,
    pub lookoutd: PathBuf,
    pub out: PathBuf,
    pub net: NetMode,
    pub rpc_timeout: Duration,
    pub op_timeout: Duration,
    pub retry_unknown: bool,
    pub check_timeout: Duration,
    pub fault_window: (Duration, Duration),
    pub heal_window: (Duration, Duration),
    pub recovery_timeout: Duration,
    pub keep_data: bool,
    pub keys: usize,
    /// Share of STALE reads in the cas workload (default: 0.1 for cas, 0.4 for stale).
    pub stale_fraction: Option<f64>,
    pub quiet: bool,
}

impl TestOpts {
    pub fn new(workload: Workload, nemesis: &str, time_limit: Duration, seed: u64, lookoutd: PathBuf, out: PathBuf) -> TestOpts {
        TestOpts {
            workload,
            nemesis: nemesis.to_string(),
            time_limit,
            seed,
            nodes: 3,
            clients: 10,
            lookoutd,
            out,
            net: NetMode::Proxy,
            rpc_timeout: Duration::from_millis(1500),
            op_timeout: Duration::from_millis(3000),
            retry_unknown: true,
            check_timeout: Duration::from_secs(120),
            fault_window: (Duration::from_secs(4), Duration::from_secs(8)),
            heal_window: (Duration::from_secs(4), Duration::from_secs(7)),
            recovery_timeout: Duration::from_secs(40),
            keep_data: false,
            keys: 10,
            stale_fraction: None,
            quiet: false,
        }
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub verdict: Verdict,
    pub results: serde_json::Value,
    pub out: PathBuf,
}

/// Finds `lookoutd`: next to the running executable (cargo puts both in `target/<profile>`),
/// or `target/release/lookoutd` under the current directory.
pub fn default_lookoutd() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(3) {
            let p = dir.join("lookoutd");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("target/release/lookoutd")
}

fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

pub async fn run_test(opts: &TestOpts) -> anyhow::Result<RunOutcome> {
    let (mut families, only) = parse_nemesis(&opts.nemesis)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let mut notes: Vec<String> = vec![];
    if !opts.lookoutd.is_file() {
        bail!("{} not found: build it with `cargo build --release -p lookout-server` or pass --lookoutd", opts.lookoutd.display());
    }

    // Network mode.
    let net_mode = opts.net;
    if net_mode == NetMode::Direct && families.iter().any(|f| f.is_network()) {
        notes.push("--net direct: partition/delay/loss nemeses skipped".into());
        families.retain(|f| !f.is_network());
    }
    let cluster_dir = opts.out.join("cluster");
    if cluster_dir.exists() {
        std::fs::remove_dir_all(&cluster_dir)?;
    }
    let mut netns: Option<Arc<Netns>> = None;
    let layout = match net_mode {
        NetMode::Netns => {
            let ns = Arc::new(Netns::setup(opts.nodes, opts.seed)?);
            let l = ns.layout()?;
            netns = Some(ns);
            l
        }
        _ => Layout::loopback(opts.nodes, loopback_block())?,
    };
    if net_mode == NetMode::Netns {
        for f in families.clone() {
            if f.is_network() && !netns.as_ref().unwrap().supports(f) {
                notes.push(format!("--net netns: nemesis {} is not available (no netem in this kernel); skipped", f.name()));
                families.retain(|x| *x != f);
            }
        }
    }
    let mut cluster = Cluster::new(layout.clone(), &cluster_dir, &opts.lookoutd)?;

    let mut net: Option<Arc<dyn NetControl>> = None;
    let mut proxies: Option<Arc<ProxyNet>> = None;
    if net_mode == NetMode::Proxy {
        let mut specs = vec![];
        for a in &layout.nodes {
            for b in &layout.nodes {
                if a.id != b.id {
                    let listen: SocketAddr = format!("{}:{}", a.ip, PROXY_PORT_BASE + b.id as u16).parse()?;
                    let upstream: SocketAddr = b.peer_addr().parse()?;
                    specs.push((a.id, b.id, listen, upstream));
                }
            }
        }
        let p = Arc::new(ProxyNet::start(specs).await?);
        for n in &layout.nodes {
            cluster.set_env(n.id, "LOOKOUT_PEER_ROUTES", &p.routes_for(n.id));
        }
        net = Some(p.clone());
        proxies = Some(p);
    }
    if let Some(ns) = &netns {
        for n in &layout.nodes {
            cluster.set_wrapper(n.id, ns.wrapper(n.id));
        }
        net = Some(ns.clone());
    }

    // Disk faults: every node runs under fiu-run with remote control.
    let mut disk = None;
    if families.contains(&Family::Disk) {
        match (tool("fiu-run"), tool("fiu-ctrl")) {
            (Some(run), Some(ctrl)) => {
                let prefix = cluster_dir.join("fiu");
                for n in &layout.nodes {
                    let mut w = cluster_wrapper(&netns, n.id);
                    w.extend([run.display().to_string(), "-x".into(), "-f".into(), prefix.display().to_string()]);
                    cluster.set_wrapper(n.id, w);
                }
                disk = Some(DiskControl { fiu_ctrl: ctrl.display().to_string(), fifo_prefix: prefix.display().to_string() });
            }
            _ => {
                notes.push("disk nemesis skipped: fiu-run / fiu-ctrl not installed (apt-get install fiu-utils)".into());
                families.retain(|f| *f != Family::Disk);
            }
        }
    }
    for n in &notes {
        eprintln!("note: {n}");
    }

    if families.contains(&Family::Powerloss) {
        match super::cluster::power_loss_unavailable() {
            None => cluster.use_loop_disks(512)?,
            Some(why) => {
                notes.push(why.clone());
                eprintln!("note: {why}");
                families.retain(|f| *f != Family::Powerloss);
            }
        }
    }
    let channels = Channels::new(&layout);
    cluster.start_all()?;
    let cluster = Arc::new(Mutex::new(cluster));
    let ids = layout.ids();
    let t_boot = Instant::now();
    let leader = match channels.wait_leader(&ids, Duration::from_secs(30)).await {
        Ok(l) => l,
        Err(e) => {
            let c = cluster.lock().unwrap();
            for id in &ids {
                eprintln!("---- node {id} log ----\n{}", c.log_tail(*id, 20));
            }
            return Err(e.context("cluster did not elect a leader"));
        }
    };
    if cluster.lock().unwrap().has_loop_disks() {
        // Make the new cluster's files durable before any power loss: sled writes its
        // `conf` file without fsync, and a power loss within ~30 s of creating a store
        // empties it (reported separately; not what this nemesis is after).
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
    }
    eprintln!(
        "cluster up: {} nodes ({} net), leader {leader} after {:?}; workload {}, nemesis {:?}, {}s, seed {}",
        ids.len(),
        net_mode.name(),
        t_boot.elapsed(),
        opts.workload.name(),
        families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        opts.time_limit.as_secs(),
        opts.seed
    );

    let history_path = opts.out.join("history.jsonl");
    let aux_path = (opts.workload == Workload::Visibility).then(|| opts.out.join("visibility.jsonl"));
    let rec = Arc::new(Recorder::new(Some(&history_path), aux_path.as_deref())?);
    let router = Router::new(channels.clone(), opts.rpc_timeout, opts.op_timeout, opts.retry_unknown);
    router.set_leader_hint(leader);

    let stop = Arc::new(AtomicBool::new(false));
    let mut cas: Option<Arc<CasWorkload>> = None;
    let mut vis: Option<Arc<VisWorkload>> = None;
    let mut tasks = vec![];
    match opts.workload {
        Workload::Cas | Workload::Stale => {
            let mut cfg = CasConfig { keys: opts.keys, ..CasConfig::default() };
            if opts.workload == Workload::Stale {
                cfg.stale_fraction = 0.4;
                cfg.read_fraction = 0.15;
                cfg.write_fraction = 0.25;
            }
            if let Some(f) = opts.stale_fraction {
                cfg.stale_fraction = f.clamp(0.0, 0.9);
            }
            let w = CasWorkload::new(cfg, router.clone(), rec.clone());
            for i in 0..opts.clients {
                tasks.push(tokio::spawn(w.clone().client_loop(opts.seed.wrapping_mul(1000).wrapping_add(i as u64), stop.clone())));
            }
            cas = Some(w);
        }
        Workload::Visibility => {
            let w = VisWorkload::new(router.clone(), rec.clone(), opts.seed);
            for i in 0..opts.clients {
                tasks.push(tokio::spawn(w.clone().client_loop(opts.seed.wrapping_mul(1000).wrapping_add(i as u64), stop.clone())));
            }
            vis = Some(w);
        }
    }

    // Ctrl-C: stop, heal, and clean up like a normal end.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: healing and stopping");
                interrupted.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            }
        });
    }

    let mut nemesis = Nemesis::new(
        families.clone(),
        only,
        layout.clone(),
        cluster.clone(),
        channels.clone(),
        net.clone(),
        disk,
        rec.clone(),
        opts.seed,
    );
    nemesis.fault_window = opts.fault_window;
    nemesis.heal_window = opts.heal_window;
    let workload_start_ns = rec.now_ns();
    let until = Instant::now() + opts.time_limit;
    nemesis.run(until, &stop).await;
    // The nemesis stops one window early; traffic runs to the time limit.
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let workload_end_ns = rec.now_ns();
    let heal_errors = nemesis.heal_all();
    eprintln!("[{:>7.2}s] workload stopped; everything healed; waiting for the cluster to recover", workload_end_ns as f64 / 1e9);

    // Recovery and final ops.
    let t_rec = Instant::now();
    let recovered_leader = channels.wait_leader(&ids, opts.recovery_timeout).await;
    let recovery_ms = t_rec.elapsed().as_millis() as u64;
    let final_start_ns = rec.now_ns();
    let mut final_failed: Vec<String> = vec![];
    let mut set_report = None;
    let mut final_keys = 0usize;
    if interrupted.load(Ordering::Relaxed) {
        final_failed.push("interrupted".into());
    } else {
        if let Ok(l) = &recovered_leader {
            router.set_leader_hint(*l);
        }
        if let Some(w) = &cas {
            final_keys = w.all_keys().len();
            final_failed = w.final_ops(opts.seed ^ 0xf1a1, opts.recovery_timeout).await;
            set_report = Some(w.check_adds(Duration::from_secs(20)).await);
        }
        if let Some(w) = &vis {
            final_keys = ids.len();
            final_failed = w.final_lists(opts.recovery_timeout).await.into_iter().map(|n| format!("list on node {n}")).collect();
        }
    }
    let final_end_ns = rec.now_ns();
    let convergence = converge(&channels, &ids, Duration::from_secs(20)).await;
    rec.flush();
    let proxy_stats = net.as_ref().map(|n| n.stats());
    let restarts: BTreeMap<u64, u32> = cluster.lock().unwrap().starts.iter().map(|(k, v)| (*k, v - 1)).collect();
    cluster.lock().unwrap().reap_exited();
    let crashed: Vec<(u64, String)> = cluster.lock().unwrap().exits.clone();
    cluster.lock().unwrap().shutdown();
    drop(proxies);
    eprintln!("[{:>7.2}s] final checks done; checking the history", rec.now_ns() as f64 / 1e9);

    // Check.
    let history = History::from_events(&rec.events()).map_err(|e| anyhow::anyhow!("recorded history is malformed: {e}"))?;
    let mut copts = CheckOptions::with_timeout(opts.check_timeout);
    copts.threads = 2;
    let (lin, stale, visibility, timeline_history) = match opts.workload {
        Workload::Visibility => {
            let w = vis.as_ref().unwrap();
            let v = w.check();
            let h = w.as_history();
            let lin = tokio::task::block_in_place(|| checker::linearizable_with(&h, &RegisterModel, &copts));
            (lin, None, Some(v), h)
        }
        _ => {
            let lin = tokio::task::block_in_place(|| checker::linearizable_with(&history, &RegisterModel, &copts));
            let stale = checker::check_stale_reads(&history);
            (lin, Some(stale), None, history.clone())
        }
    };
    let timeline = checker::render_timeline(&timeline_history, &lin.result);
    std::fs::write(opts.out.join("timeline.html"), timeline)?;

    let ctx = report::Context {
        opts,
        families: &families,
        notes: &notes,
        history: &history,
        summaries: rec.summaries(),
        faults: &nemesis.faults,
        lin: &lin,
        stale: stale.as_ref(),
        visibility: visibility.as_ref(),
        vis_counts: vis.as_ref().map(|w| w.counts()),
        set: set_report.as_ref(),
        stale_raced: cas.as_ref().map(|w| w.raced.load(Ordering::Relaxed)),
        workload_start_ns,
        workload_end_ns,
        final_start_ns,
        final_end_ns,
        final_keys,
        final_failed: &final_failed,
        recovered: recovered_leader.as_ref().map(|l| *l).map_err(|e| format!("{e:#}")),
        recovery_ms,
        convergence,
        proxy_stats,
        restarts,
        heal_errors,
        crashed,
        net_mode: net_mode.name(),
    };
    let (verdict, results) = report::build(&ctx);
    std::fs::write(opts.out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    if !opts.quiet {
        report::print_summary(&results, &lin.result);
    }
    if !opts.keep_data {
        for id in &ids {
            let _ = std::fs::remove_dir_all(cluster_dir.join(format!("node{id}")).join("data"));
        }
    }
    if let CheckResult::Invalid(_) = &lin.result {
        std::fs::write(opts.out.join("anomaly.txt"), lin.result.counterexample().map(|c| c.explanation.clone()).unwrap_or_default())?;
    }
    Ok(RunOutcome { verdict, results, out: opts.out.clone() })
}

fn cluster_wrapper(netns: &Option<Arc<Netns>>, id: u64) -> Vec<String> {
    netns.as_ref().map(|n| n.wrapper(id)).unwrap_or_default()
}

/// After the final ops: every node applies the same index and reports the same digest.
async fn converge(channels: &Channels, ids: &[u64], timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let mut last = json!(null);
    loop {
        let st = channels.statuses(Duration::from_millis(800)).await;
        let all = ids.iter().all(|id| st.contains_key(id));
        let committed = st.values().map(|s| s.committed_index).max().unwrap_or(0);
        let applied: BTreeMap<u64, u64> = st.iter().map(|(k, s)| (*k, s.applied_index)).collect();
        let digests: BTreeMap<u64, String> = st.iter().map(|(k, s)| (*k, s.digest.clone())).collect();
        let same_index = applied.values().all(|a| *a == committed) && all;
        let same_digest = digests.values().collect::<std::collections::BTreeSet<_>>().len() == 1;
        last = json!({"converged": same_index && same_digest, "applied": applied, "digests": digests, "committed": committed});
        if same_index && same_digest {
            return last;
        }
        if Instant::now() > deadline {
            if same_index && !same_digest {
                last["divergent"] = json!(true);
                last["differences"] = differences(channels, ids).await;
            }
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// For replicas that diverged: every key on which the nodes disagree, with what each node
/// holds (value, version, create and mod index; null = absent). At most 50 keys listed.
async fn differences(channels: &Channels, ids: &[u64]) -> serde_json::Value {
    let mut by_node: BTreeMap<u64, BTreeMap<Vec<u8>, lookout_proto::v1::KeyValue>> = BTreeMap::new();
    for &id in ids {
        match channels.dump_kv(id, Duration::from_secs(10)).await {
            Ok(kvs) => {
                by_node.insert(id, kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect());
            }
            Err(e) => return json!({"error": format!("node {id}: {e}")}),
        }
    }
    diff_replicas(&by_node)
}

/// The keys on which replicas' contents differ (see [`differences`]).
fn diff_replicas(by_node: &BTreeMap<u64, BTreeMap<Vec<u8>, lookout_proto::v1::KeyValue>>) -> serde_json::Value {
    let keys: std::collections::BTreeSet<&Vec<u8>> = by_node.values().flat_map(|m| m.keys()).collect();
    let mut listed = Vec::new();
    let mut count = 0usize;
    for key in keys {
        let held: Vec<Option<&lookout_proto::v1::KeyValue>> = by_node.values().map(|m| m.get(key)).collect();
        if held.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        count += 1;
        if listed.len() < 50 {
            let nodes: BTreeMap<String, serde_json::Value> = by_node
                .iter()
                .map(|(id, m)| {
                    let v = m.get(key).map(|kv| {
                        json!({"value": String::from_utf8_lossy(&kv.value), "version": kv.version,
                               "create_index": kv.create_index, "mod_index": kv.mod_index})
                    });
                    (id.to_string(), v.unwrap_or(serde_json::Value::Null))
                })
                .collect();
            listed.push(json!({"key": String::from_utf8_lossy(key), "nodes": nodes}));
        }
    }
    json!({"keys_differing": count, "first": listed})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, mod_index: u64) -> (Vec<u8>, lookout_proto::v1::KeyValue) {
        let kv = lookout_proto::v1::KeyValue {
            key: key.into(),
            value: value.into(),
            version: 1,
            create_index: mod_index,
            mod_index,
        };
        (key.as_bytes().to_vec(), kv)
    }

    #[test]
    fn diff_lists_only_keys_the_replicas_disagree_on() {
        let mut by_node = BTreeMap::new();
        by_node.insert(1, BTreeMap::from([kv("a", "1", 5), kv("b", "2", 6), kv("c", "3", 7)]));
        by_node.insert(2, BTreeMap::from([kv("a", "1", 5), kv("b", "9", 8), kv("c", "3", 7)]));
        by_node.insert(3, BTreeMap::from([kv("a", "1", 5), kv("b", "2", 6)]));
        let d = diff_replicas(&by_node);
        assert_eq!(d["keys_differing"], 2);
        assert_eq!(d["first"][0]["key"], "b");
        assert_eq!(d["first"][0]["nodes"]["2"]["value"], "9");
        assert_eq!(d["first"][1]["key"], "c");
        assert!(d["first"][1]["nodes"]["3"].is_null());
        by_node.remove(&2);
        by_node.insert(3, BTreeMap::from([kv("a", "1", 5), kv("b", "2", 6), kv("c", "3", 7)]));
        assert_eq!(diff_replicas(&by_node)["keys_differing"], 0);
    }
}

pub fn out_dir_default(workload: Workload, seed: u64) -> PathBuf {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Path::new("target").join("jepsen").join(format!("{ts}-{}-seed{seed}", workload.name()))
}
