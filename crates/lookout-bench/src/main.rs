//! `lookout-bench`: measures real Lookout clusters started from the release `lookoutd`.
//!
//! - `put-latency`: one client, sequential puts to the leader; p50/p99/p99.9.
//! - `failover`: one client writing in a loop with a short per-request deadline while the
//!   leader is killed with `kill -9`, N times; the longest gap between successful writes,
//!   the time until a new leader is known, and acknowledged writes lost (must be 0).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use clap::Subcommand;
use hdrhistogram::Histogram;
use lookout_proto::v1 as pb;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use lookout_testkit::request_id;

mod screening;

#[derive(Parser)]
#[command(name = "lookout-bench", about = "Benchmarks of real Lookout clusters")]
struct Args {
    /// The lookoutd binary to run.
    #[arg(long, default_value = "target/release/lookoutd")]
    lookoutd: PathBuf,
    /// Print results as JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Single-client put latency against the default 5-node topology.
    PutLatency {
        #[arg(long, default_value_t = 2000)]
        ops: u64,
        #[arg(long, default_value_t = 200)]
        warmup: u64,
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// Cluster size: 1, 3 (one node per site) or 5 (the default topology).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
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
    /// Longest client-visible write gap after kill -9 of the leader.
    Failover {
        #[arg(long, default_value_t = 10)]
        trials: u32,
        /// Per-request deadline of the write loop.
        #[arg(long, default_value_t = 200)]
        request_timeout_ms: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.lookoutd.exists() {
        bail!("{} not found: run `cargo build --release --workspace` first", args.lookoutd.display());
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        match args.cmd {
            Cmd::PutLatency { ops, warmup, value_size, nodes } => put_latency(&args.lookoutd, ops, warmup, value_size, nodes, args.json).await,
            Cmd::Screening { lookouts, seed, screens, manifests, streams } => {
                screening::run(&args.lookoutd, lookouts, seed, screens, manifests, streams, args.json).await
            }
            Cmd::Failover { trials, request_timeout_ms } => {
                failover(&args.lookoutd, trials, Duration::from_millis(request_timeout_ms), args.json).await
            }
        }
    })
}


fn leader_hint(s: &tonic::Status) -> Option<u64> {
    s.metadata().get("lookout-leader-id")?.to_str().ok()?.parse().ok()
}

fn spec(nodes: usize) -> anyhow::Result<ClusterSpec> {
    Ok(match nodes {
        1 => ClusterSpec { nodes: vec![(1, "primary", true)], ..ClusterSpec::three() },
        3 => ClusterSpec::three(),
        5 => ClusterSpec::five(),
        n => bail!("--nodes must be 1, 3 or 5, not {n}"),
    })
}

async fn put_latency(bin: &std::path::Path, ops: u64, warmup: u64, value_size: usize, nodes: usize, json: bool) -> anyhow::Result<()> {
    let c = TestCluster::start(&spec(nodes)?, bin)?;
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    let value = vec![b'x'; value_size];
    let mut kv = c.kv(leader);
    let mut hist = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for i in 0..(warmup + ops) {
        let req = pb::PutRequest {
            header: Some(pb::WriteHeader { request_id: request_id(i) }),
            key: format!("bench/{:06}", i % 1000).into_bytes(),
            value: value.clone(),
        };
        let t0 = Instant::now();
        kv.put(req).await?;
        if i >= warmup {
            hist.record(t0.elapsed().as_micros() as u64)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (p50, p99, p999) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99), hist.value_at_quantile(0.999));
    if json {
        println!(
            "{}",
            serde_json::json!({"workload": "put", "clients": 1, "nodes": nodes, "ops": ops, "value_size": value_size,
                "qps": (warmup + ops) as f64 / secs, "p50_us": p50, "p99_us": p99, "p999_us": p999})
        );
    } else {
        println!("put, 1 client, {value_size}-byte values, {nodes} nodes, {ops} ops (after {warmup} warm-up)");
        println!("  qps {:.0}   p50 {:.3} ms   p99 {:.3} ms   p99.9 {:.3} ms", (warmup + ops) as f64 / secs,
            p50 as f64 / 1000.0, p99 as f64 / 1000.0, p999 as f64 / 1000.0);
    }
    Ok(())
}

struct Trial {
    gap: Duration,
    new_leader_after: Duration,
    acked: usize,
    lost: usize,
}

async fn failover(bin: &std::path::Path, trials: u32, request_timeout: Duration, json: bool) -> anyhow::Result<()> {
    let mut c = TestCluster::start(&ClusterSpec::five(), bin)?;
    let mut results = vec![];
    let mut next_id = 1_000_000u64;
    for trial in 0..trials {
        let old = c.wait_leader(Duration::from_secs(20)).await?;
        let cluster = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let ids = c.ids.clone();
        // The writer: each write goes to the node believed to lead, follows hints, and
        // rotates on errors. Every attempt of one logical write reuses its request id.
        let writer = {
            let (stop, acked) = (stop.clone(), acked.clone());
            let addrs: Vec<(u64, String)> = ids.iter().map(|&id| (id, c.client_addr(id))).collect();
            let _keep = cluster.clone();
            let base = next_id;
            tokio::spawn(async move {
                let mut target = old;
                let mut n = 0u64;
                let mut rotate = 0usize;
                let channels: std::collections::BTreeMap<u64, tonic::transport::Channel> = addrs
                    .iter()
                    .map(|(id, a)| {
                        (*id, tonic::transport::Endpoint::from_shared(format!("http://{a}")).unwrap()
                            .connect_timeout(Duration::from_millis(100)).tcp_nodelay(true).connect_lazy())
                    })
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("failover/{trial}/{n}");
                    let mut req = tonic::Request::new(pb::PutRequest {
                        header: Some(pb::WriteHeader { request_id: request_id(base + n) }),
                        key: key.clone().into_bytes(),
                        value: b"v".to_vec(),
                    });
                    req.set_timeout(request_timeout);
                    let mut kv = pb::kv_client::KvClient::new(channels[&target].clone());
                    match tokio::time::timeout(request_timeout, kv.put(req)).await {
                        Ok(Ok(_)) => {
                            acked.lock().unwrap().push((Instant::now(), key));
                            n += 1;
                        }
                        Ok(Err(s)) => match leader_hint(&s) {
                            Some(l) if l != target => target = l,
                            _ => {
                                rotate += 1;
                                target = addrs[rotate % addrs.len()].0;
                            }
                        },
                        Err(_) => {
                            rotate += 1;
                            target = addrs[rotate % addrs.len()].0;
                        }
                    }
                }
                n
            })
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let killed_at = Instant::now();
        c.kill(old)?;
        // Time until a surviving node knows a new leader.
        let mut new_leader_after = None;
        while killed_at.elapsed() < Duration::from_secs(15) && new_leader_after.is_none() {
            for &id in ids.iter().filter(|id| **id != old) {
                if let Ok(s) = c.status(id).await {
                    if s.role == pb::Role::Leader as i32 {
                        new_leader_after = Some(killed_at.elapsed());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Keep writing until writes have resumed for a second.
        let resume_deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let last = acked.lock().unwrap().last().map(|(t, _)| *t);
            if last.is_some_and(|t| t > killed_at && t.elapsed() > Duration::from_millis(1000)) || Instant::now() > resume_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.await?;
        next_id += written + 10;
        let acked = acked.lock().unwrap().clone();
        let gap = acked.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or_default();
        // Bring the old leader back and check every acknowledged write is there.
        c.start_node(old)?;
        let leader = c.wait_leader(Duration::from_secs(20)).await?;
        let mut lost = 0;
        for (_, key) in &acked {
            let mut req = tonic::Request::new(pb::GetRequest { read: None, key: key.clone().into_bytes() });
            req.set_timeout(Duration::from_secs(5));
            let r = c.kv(leader).get(req).await?.into_inner();
            if !r.found {
                lost += 1;
            }
        }
        let t = Trial { gap, new_leader_after: new_leader_after.unwrap_or(Duration::MAX), acked: acked.len(), lost };
        if !json {
            println!(
                "trial {:2}: killed leader {old}; new leader after {:>4} ms; longest write gap {:>4} ms; {} acked, {} lost",
                trial + 1,
                t.new_leader_after.as_millis(),
                t.gap.as_millis(),
                t.acked,
                t.lost
            );
        }
        results.push(t);
    }
    let mut gaps: Vec<u128> = results.iter().map(|t| t.gap.as_millis()).collect();
    gaps.sort();
    let mut elect: Vec<u128> = results.iter().map(|t| t.new_leader_after.as_millis()).collect();
    elect.sort();
    let lost: usize = results.iter().map(|t| t.lost).sum();
    let acked: usize = results.iter().map(|t| t.acked).sum();
    let median = |v: &Vec<u128>| if v.is_empty() { 0 } else { v[v.len() / 2] };
    if json {
        println!(
            "{}",
            serde_json::json!({"trials": trials, "gap_ms_median": median(&gaps), "gap_ms_max": gaps.last(),
                "new_leader_ms_median": median(&elect), "new_leader_ms_max": elect.last(), "acked": acked, "lost": lost})
        );
    } else {
        println!(
            "failover over {trials} trials: write gap median {} ms, max {} ms; new leader median {} ms, max {} ms; {acked} acked writes, {lost} lost",
            median(&gaps),
            gaps.last().unwrap_or(&0),
            median(&elect),
            elect.last().unwrap_or(&0)
        );
    }
    if lost > 0 {
        bail!("{lost} acknowledged writes lost");
    }
    Ok(())
}
