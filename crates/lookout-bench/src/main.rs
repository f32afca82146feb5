//! `lookout-bench`: Lookout measured side by side with etcd, on real clusters it starts
//! itself (release `lookoutd`, Debian's `etcd` 3.4.23), in one run.
//!
//! - `run`: one workload against one target; QPS, p50/p99/p99.9, errors by status.
//! - `compare`: put / get (linearizable, stale) at 1 and 100 clients on Lookout and on
//!   etcd, same shape (3 members, fresh dirs, default fsync), ratios Lookout/etcd.
//! - `failover`: longest write gap after `kill -9` of the leader (or of a whole site).
//! - `capacity`: peak-day replay and 3x-saturation overload on a loaded watch-list.
//! - `full`: all of the above, writing `results.json`, `chart.svg` and `output.txt`.
//! - `smoke`: every workload for a few seconds on both systems; fails on any error.
//! - `screening`: ingest rate, Screen and ScreenManifest latency, planted recall.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use clap::Subcommand;
use clap::ValueEnum;
use lookout_gen::GenConfig;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use serde_json::json;

mod capacity;
mod etcd;
mod failover;
mod load;
mod report;
mod screening;
mod workload;

use etcd::EtcdCluster;
use load::Figures;
use load::LoadSpec;
use workload::Driver;
use workload::EtcdDriver;
use workload::KvShape;
use workload::LookoutDriver;
use workload::ScreeningPool;
use workload::Workload;

#[derive(Parser)]
#[command(name = "lookout-bench", about = "Lookout benchmarks, side by side with etcd")]
struct Args {
    /// The lookoutd binary to run.
    #[arg(long, default_value = "target/release/lookoutd", global = true)]
    lookoutd: PathBuf,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    Lookout,
    Etcd,
}

#[derive(clap::Args, Clone, Debug)]
struct LoadArgs {
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// HTTP/2 connections the clients share (default: min(clients, 10)).
    #[arg(long)]
    connections: Option<usize>,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Distinct keys of the KV workloads (preloaded before reads).
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Generated lookouts loaded before screening workloads.
    #[arg(long, default_value_t = 20_000)]
    lookouts: u64,
    /// Members: 1, 3 (one per site; the etcd comparison shape) or 5 (Lookout's default).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
}

impl LoadArgs {
    fn spec(&self, clients: usize) -> LoadSpec {
        LoadSpec {
            clients,
            connections: self.connections.unwrap_or(clients.min(10)),
            duration: Duration::from_secs(self.duration),
            warmup: Duration::from_secs(self.warmup),
            deadline: Duration::from_secs(5),
            ops_limit: None,
        }
    }

    fn shape(&self) -> KvShape {
        KvShape { keys: self.keys, value_size: self.value_size }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// One workload against one target.
    Run {
        #[arg(long, value_enum, default_value = "lookout")]
        target: Target,
        #[arg(long, value_enum)]
        workload: Workload,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// put, get-linearizable and get-stale at each client count, Lookout then etcd.
    Compare {
        /// Client counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,100")]
        clients_list: Vec<usize>,
        #[command(flatten)]
        load: LoadArgs,
        /// Write results.json and chart.svg here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Longest client-visible write gap after kill -9.
    Failover {
        #[arg(long, value_enum, default_value = "lookout")]
        target: Target,
        #[arg(long, default_value_t = 10)]
        trials: usize,
        /// Per-request deadline of the write loop.
        #[arg(long, default_value_t = 200)]
        request_timeout_ms: u64,
        /// Members (Lookout 3 or 5; etcd 3).
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Kill both primary-site nodes of the 5-node default topology instead of the leader.
        #[arg(long)]
        site: bool,
    },
    /// Peak-day replay and overload against a loaded watch-list (Lookout only).
    Capacity {
        #[arg(long, default_value_t = 1_000_000)]
        lookouts: u64,
        /// Screening queries of the peak day (the 2017 outage day: 451,182).
        #[arg(long, default_value_t = 451_182)]
        queries: u64,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds of 3x-saturation overload.
        #[arg(long, default_value_t = 60)]
        overload_secs: u64,
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        #[arg(long, default_value_t = 2)]
        ingest_streams: u64,
    },
    /// Everything, written to --out (results.json, chart.svg, output.txt).
    Full {
        #[arg(long, default_value = "docs/bench")]
        out: PathBuf,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 10)]
        trials: usize,
        #[arg(long, default_value_t = 1_000_000)]
        lookouts: u64,
        #[arg(long, default_value_t = 451_182)]
        queries: u64,
        #[arg(long, default_value_t = 60)]
        overload_secs: u64,
    },
    /// Every workload briefly on Lookout and etcd, plus one failover trial each; exits
    /// non-zero on any error. Keeps the harness from rotting (run by `cargo test`).
    Smoke {
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Skip etcd (only when it is not installed).
        #[arg(long)]
        no_etcd: bool,
    },
    /// Screening at scale: bulk ingest rate, Screen and ScreenManifest latency on a
    /// generated watch-list, with recall of the planted matches.
    Screening {
        #[arg(long, default_value_t = 100_000)]
        lookouts: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Screens of generated travellers (sequential, one client).
        #[arg(long, default_value_t = 2000)]
        screens: u64,
        /// Manifests of 300 passengers with 3 planted matches each.
        #[arg(long, default_value_t = 30)]
        manifests: u64,
        /// Concurrent ingest streams.
        #[arg(long, default_value_t = 2)]
        streams: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.lookoutd.exists() {
        bail!("{} not found: run `cargo build --release --workspace` first", args.lookoutd.display());
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let bin = args.lookoutd.as_path();
        match args.cmd {
            Cmd::Run { target, workload, load } => {
                let f = match target {
                    Target::Lookout => {
                        let (c, leader) = lookout_cluster(bin, load.nodes).await?;
                        let mut d = LookoutDriver::new(&c, leader, load.spec(load.clients).connections, &load.shape(), 1, Duration::from_secs(5));
                        if workload.needs_watch_list() {
                            d.screening = Some(load_watch_list(&c, leader, load.lookouts, 2, !args.json).await?);
                        }
                        let d = Arc::new(d);
                        if !workload.writes() {
                            preload(d.clone().into(), load.keys).await?;
                        }
                        run_on(d.clone().into(), workload, &load.spec(load.clients)).await
                    }
                    Target::Etcd => {
                        let c = EtcdCluster::start(load.nodes as u64)?;
                        let leader = c.wait_leader(Duration::from_secs(30)).await?;
                        let d = Arc::new(EtcdDriver::new(&c, leader, load.spec(load.clients).connections, &load.shape()).await?);
                        preload(d.clone().into(), load.keys).await?;
                        run_on(d.clone().into(), workload, &load.spec(load.clients)).await
                    }
                };
                emit(args.json, &[f]);
                Ok(())
            }
            Cmd::Compare { clients_list, load, out } => {
                let figures = compare(bin, &clients_list, &load, !args.json).await?;
                emit(args.json, &figures);
                if let Some(out) = out {
                    std::fs::create_dir_all(&out)?;
                    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json!({"compare": figures, "ratios": report::ratios(&figures)}))?)?;
                    report::chart(&out.join("chart.svg"), "Lookout vs etcd 3.4.23, 3 members each, same machine", &figures)?;
                }
                Ok(())
            }
            Cmd::Failover { target, trials, request_timeout_ms, nodes, site } => {
                let f = failover_run(bin, target, trials, Duration::from_millis(request_timeout_ms), nodes, site).await?;
                print_failover(args.json, &f);
                if f.lost > 0 {
                    bail!("{} acknowledged writes lost", f.lost);
                }
                Ok(())
            }
            Cmd::Capacity { lookouts, queries, clients, overload_secs, nodes, ingest_streams } => {
                let v = capacity_run(bin, lookouts, queries, clients, overload_secs, nodes, ingest_streams, !args.json).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            Cmd::Full { out, duration, trials, lookouts, queries, overload_secs } => {
                full(bin, &out, duration, trials, lookouts, queries, overload_secs).await
            }
            Cmd::Smoke { duration, no_etcd } => smoke(bin, duration, no_etcd).await,
            Cmd::Screening { lookouts, seed, screens, manifests, streams } => {
                screening::run(bin, lookouts, seed, screens, manifests, streams, args.json).await
            }
        }
    })
}

fn emit(json: bool, figures: &[Figures]) {
    if json {
        println!("{}", serde_json::to_string(figures).expect("serialisable"));
    } else {
        report::print_figures(figures);
        report::print_ratios(&report::ratios(figures));
    }
}

fn print_failover(json: bool, f: &failover::FailoverFigures) {
    if json {
        println!("{}", serde_json::to_string(f).expect("serialisable"));
    } else {
        println!(
            "failover {} ({} members, kill {:?}), {} trials: write gap median {} ms, max {} ms; new leader median {} ms; {} acked, {} lost",
            f.target,
            f.members,
            f.kill,
            f.trials.len(),
            f.gap_ms_median,
            f.gap_ms_max,
            f.new_leader_ms_median.map_or("-".into(), |m| m.to_string()),
            f.acked,
            f.lost
        );
    }
}

fn spec(nodes: usize) -> anyhow::Result<ClusterSpec> {
    Ok(match nodes {
        1 => ClusterSpec { nodes: vec![(1, "primary", true)], ..ClusterSpec::three() },
        3 => ClusterSpec::three(),
        5 => ClusterSpec::five(),
        n => bail!("--nodes must be 1, 3 or 5, not {n}"),
    })
}

async fn lookout_cluster(bin: &Path, nodes: usize) -> anyhow::Result<(TestCluster, u64)> {
    let c = TestCluster::start(&spec(nodes)?, bin)?;
    let leader = c.wait_leader(Duration::from_secs(30)).await?;
    Ok((c, leader))
}

async fn load_watch_list(c: &TestCluster, leader: u64, lookouts: u64, streams: u64, progress: bool) -> anyhow::Result<Arc<ScreeningPool>> {
    let cfg = GenConfig::new(1, lookouts, 20_000);
    let ing = screening::ingest(c, leader, &cfg, lookouts, streams, progress).await?;
    if ing.rejected > 0 {
        bail!("{} generated lookouts rejected at ingest", ing.rejected);
    }
    if progress {
        eprintln!("  watch-list: {} lookouts in {:.1} s ({:.0}/s)", ing.accepted, ing.secs, ing.accepted as f64 / ing.secs);
    }
    Ok(Arc::new(ScreeningPool::new(&cfg, lookouts, 20_000, 16)))
}

/// Writes every key once so reads find values.
async fn preload(d: Driver, keys: u64) -> anyhow::Result<()> {
    let target = d.target();
    let f = load::closed_loop(target, "preload", &preload_spec(keys), move |c, s| {
        let d = d.clone();
        async move { d.op(Workload::Put, c, s).await }
    })
    .await;
    if f.error_count() > 0 {
        bail!("preloading keys on {target} failed: {:?}", f.errors);
    }
    Ok(())
}

/// One client writing `keys` keys in sequence (the key of (0, s) is s % keys).
fn preload_spec(keys: u64) -> LoadSpec {
    LoadSpec {
        clients: 1,
        connections: 1,
        duration: Duration::from_secs(3600),
        warmup: Duration::ZERO,
        deadline: Duration::from_secs(5),
        ops_limit: Some(keys),
    }
}

/// One measured run of `w` on either target; Lookout's retried attempts are counted.
async fn run_on(d: Driver, w: Workload, spec: &LoadSpec) -> Figures {
    let before = d.retried();
    let driver = d.clone();
    let mut f = load::closed_loop(d.target(), w.name(), spec, move |c, s| {
        let d = driver.clone();
        async move { d.op(w, c, s).await }
    })
    .await;
    f.retried = d.retried() - before;
    f
}

const COMPARED: [Workload; 3] = [Workload::Put, Workload::GetLinearizable, Workload::GetStale];

async fn compare(bin: &Path, clients_list: &[usize], load: &LoadArgs, progress: bool) -> anyhow::Result<Vec<Figures>> {
    let mut figures = vec![];
    {
        let (c, leader) = lookout_cluster(bin, load.nodes).await?;
        for (run, &clients) in clients_list.iter().enumerate() {
            let d = Arc::new(LookoutDriver::new(&c, leader, load.spec(clients).connections, &load.shape(), run as u64 + 1, Duration::from_secs(5)));
            if run == 0 {
                preload(d.clone().into(), load.keys).await?;
            }
            for w in COMPARED.iter().chain(&[Workload::GetLease]) {
                let f = run_on(d.clone().into(), *w, &load.spec(clients)).await;
                if progress {
                    eprintln!("  lookout {:<18} x{clients:<4} {:>8.0} qps  p99 {:.2} ms", w.name(), f.qps, f.p99_ms);
                }
                figures.push(f);
            }
        }
    }
    {
        let c = EtcdCluster::start(load.nodes as u64)?;
        let leader = c.wait_leader(Duration::from_secs(30)).await?;
        for (run, &clients) in clients_list.iter().enumerate() {
            let d = Arc::new(EtcdDriver::new(&c, leader, load.spec(clients).connections, &load.shape()).await?);
            if run == 0 {
                preload(d.clone().into(), load.keys).await?;
            }
            for w in COMPARED {
                let f = run_on(d.clone().into(), w, &load.spec(clients)).await;
                if progress {
                    eprintln!("  etcd    {:<18} x{clients:<4} {:>8.0} qps  p99 {:.2} ms", w.name(), f.qps, f.p99_ms);
                }
                figures.push(f);
            }
        }
    }
    Ok(figures)
}

async fn failover_run(bin: &Path, target: Target, trials: usize, timeout: Duration, nodes: usize, site: bool) -> anyhow::Result<failover::FailoverFigures> {
    let subject = match target {
        Target::Lookout => failover::Subject::Lookout(lookout_cluster(bin, if site { 5 } else { nodes }).await?.0),
        Target::Etcd if site => bail!("--site is Lookout's five-node topology"),
        Target::Etcd => {
            let c = EtcdCluster::start(nodes as u64)?;
            c.wait_leader(Duration::from_secs(30)).await?;
            failover::Subject::Etcd(c)
        }
    };
    let kill = if site { failover::Kill::PrimarySite } else { failover::Kill::Leader };
    failover::run(subject, kill, trials, timeout, true).await
}

#[allow(clippy::too_many_arguments)]
async fn capacity_run(
    bin: &Path,
    lookouts: u64,
    queries: u64,
    clients: usize,
    overload_secs: u64,
    nodes: usize,
    streams: u64,
    progress: bool,
) -> anyhow::Result<serde_json::Value> {
    let (mut c, leader) = lookout_cluster(bin, nodes).await?;
    let ingest_started = std::time::Instant::now();
    let pool = load_watch_list(&c, leader, lookouts, streams, progress).await?;
    let ingest_secs = ingest_started.elapsed().as_secs_f64();
    let mut d = LookoutDriver::new(&c, leader, clients, &KvShape { keys: 1000, value_size: 256 }, 1, Duration::from_secs(5));
    d.screening = Some(pool);
    let d = Arc::new(d);
    let mut workloads = vec![];
    for (w, clients) in [(Workload::Screen, 1), (Workload::Screen, 32), (Workload::Manifest, 4), (Workload::Mixed, 32)] {
        let spec = LoadSpec {
            clients,
            connections: clients.min(10),
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(2),
            deadline: Duration::from_secs(10),
            ops_limit: None,
        };
        let f = run_on(d.clone().into(), w, &spec).await;
        if progress {
            eprintln!("  {:<10} x{clients:<3} {:>7.0} qps  p50 {:.2} ms  p99 {:.2} ms", w.name(), f.qps, f.p50_ms, f.p99_ms);
        }
        workloads.push(f);
    }
    if progress {
        eprintln!("  peak day: {queries} screens, {clients} clients over {nodes} nodes ...");
    }
    let peak = capacity::peak_day(d.clone(), queries, clients).await;
    if progress {
        eprintln!("  peak day: {:.0} s wall, {:.0} qps, p99 {:.2} ms, errors {:?}", peak.secs, peak.qps, peak.p99_ms, peak.errors);
    }
    let overload = capacity::overload(&mut c, d, overload_secs, progress).await?;
    if progress {
        eprintln!(
            "  overload: offered {:.0}/s, admitted {:.0}/s p99 {:.2} ms, shed {:.1}%, errors {:?}, crashed {:?}",
            overload.offered_qps,
            overload.result.qps,
            overload.result.p99_ms,
            overload.shed_share * 100.0,
            overload.result.errors,
            overload.crashed
        );
    }
    if !overload.crashed.is_empty() {
        bail!("nodes {:?} crashed under overload", overload.crashed);
    }
    Ok(json!({
        "nodes": nodes, "lookouts": lookouts, "ingest_secs": ingest_secs, "ingest_records_per_s": lookouts as f64 / ingest_secs,
        "screening_workloads": workloads, "peak_day": peak, "overload": overload,
    }))
}

fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name"))?.split(':').nth(1).map(|s| s.trim().to_string()));
    json!({"cores": cores, "mem_gib": mem_gib, "cpu": cpu})
}

async fn full(bin: &Path, out: &Path, duration: u64, trials: usize, lookouts: u64, queries: u64, overload_secs: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let load = LoadArgs { clients: 1, connections: None, duration, warmup: 2, value_size: 256, keys: 1000, lookouts, nodes: 3 };
    eprintln!("== compare: put / get at 1 and 100 clients, Lookout then etcd");
    let figures = compare(bin, &[1, 100], &load, true).await?;
    let ratios = report::ratios(&figures);
    report::chart(&out.join("chart.svg"), "Lookout vs etcd 3.4.23, 3 members each, same machine", &figures)?;
    eprintln!("== failover: kill -9 of the leader, {trials} trials each");
    let timeout = Duration::from_millis(200);
    let lf = failover_run(bin, Target::Lookout, trials, timeout, 3, false).await?;
    let ef = failover_run(bin, Target::Etcd, trials, timeout, 3, false).await?;
    eprintln!("== site loss: both primary nodes of the 5-node topology, {trials} trials");
    let sf = failover_run(bin, Target::Lookout, trials, timeout, 5, true).await?;
    eprintln!("== capacity: {lookouts} lookouts, peak day {queries} screens, {overload_secs} s overload");
    let cap = capacity_run(bin, lookouts, queries, 32, overload_secs, 5, 2, true).await?;
    let results = json!({
        "date": today(),
        "machine": machine(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "compare": figures, "ratios": ratios,
        "failover": [lf, ef], "site_loss": sf,
        "capacity": cap,
    });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    report::print_figures(&figures);
    report::print_ratios(&ratios);
    for f in [&lf, &ef, &sf] {
        print_failover(false, f);
    }
    println!("capacity: {}", serde_json::to_string_pretty(&results["capacity"])?);
    eprintln!("wrote {}/results.json and {}/chart.svg", out.display(), out.display());
    Ok(())
}

/// Today's date (UTC) from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0);
    let (y, m, d) = lookout_gen::civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn smoke(bin: &Path, duration: u64, no_etcd: bool) -> anyhow::Result<()> {
    let load = LoadArgs { clients: 4, connections: Some(2), duration, warmup: 1, value_size: 256, keys: 200, lookouts: 2_000, nodes: 3 };
    let mut figures = vec![];
    {
        let (c, leader) = lookout_cluster(bin, 3).await?;
        let mut d = LookoutDriver::new(&c, leader, 2, &load.shape(), 1, Duration::from_secs(10));
        d.screening = Some(load_watch_list(&c, leader, load.lookouts, 1, false).await?);
        let d = Arc::new(d);
        preload(d.clone().into(), load.keys).await?;
        for w in Workload::ALL {
            figures.push(run_on(d.clone().into(), w, &load.spec(4)).await);
        }
    }
    let mut failovers = vec![failover_run(bin, Target::Lookout, 1, Duration::from_millis(300), 3, false).await?];
    if !no_etcd {
        let c = EtcdCluster::start(3)?;
        let leader = c.wait_leader(Duration::from_secs(30)).await?;
        let d = Arc::new(EtcdDriver::new(&c, leader, 2, &load.shape()).await?);
        preload(d.clone().into(), load.keys).await?;
        for w in Workload::ALL.into_iter().filter(|w| w.etcd_has()) {
            figures.push(run_on(d.clone().into(), w, &load.spec(4)).await);
        }
        drop(c);
        failovers.push(failover_run(bin, Target::Etcd, 1, Duration::from_millis(300), 3, false).await?);
    }
    report::print_figures(&figures);
    for f in &failovers {
        print_failover(false, f);
    }
    let chart_dir = tempfile::tempdir()?;
    report::chart(&chart_dir.path().join("chart.svg"), "smoke", &figures)?;
    let bad: Vec<String> = figures
        .iter()
        .filter(|f| f.error_count() > 0 || f.ok == 0)
        .map(|f| format!("{} {}: {} ok, errors {:?}", f.target, f.workload, f.ok, f.errors))
        .chain(failovers.iter().filter(|f| f.lost > 0 || f.acked == 0).map(|f| format!("{} failover: {} acked, {} lost", f.target, f.acked, f.lost)))
        .collect();
    if !bad.is_empty() {
        bail!("smoke run had unexpected errors:\n{}", bad.join("\n"));
    }
    println!("smoke: every workload completed with zero errors");
    Ok(())
}
