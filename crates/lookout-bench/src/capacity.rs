//! Capacity and overload against a loaded watch-list.
//!
//! - Peak day: the 2017 outage day's 451,182 screening queries replayed as fast as a
//!   fixed pool of clients can, spread over every node, linearizable.
//! - Overload: the saturation throughput of `Screen` is measured, then three times that
//!   rate is offered open-loop; node memory is sampled every second throughout.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use lookout_testkit::TestCluster;
use serde::Serialize;

use crate::load::Figures;
use crate::load::LoadSpec;
use crate::load::closed_loop;
use crate::load::open_loop;
use crate::workload::LookoutDriver;
use crate::workload::Workload;

/// Resident set size of a process, in MiB, from /proc.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeMemory {
    pub node: u64,
    pub peak_rss_mib: f64,
    /// Mean RSS over the first and the last fifth of the run: a leak shows as growth.
    pub first_fifth_mib: f64,
    pub last_fifth_mib: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overload {
    pub saturation: Figures,
    pub offered_qps: f64,
    pub result: Figures,
    /// Share of offered requests refused with ResourceExhausted.
    pub shed_share: f64,
    pub memory: Vec<NodeMemory>,
    /// Nodes whose process exited during the run (must be empty).
    pub crashed: Vec<u64>,
}

pub async fn peak_day(driver: Arc<LookoutDriver>, queries: u64, clients: usize) -> Figures {
    let spec = LoadSpec {
        clients,
        connections: clients,
        duration: Duration::from_secs(24 * 3600),
        warmup: Duration::ZERO,
        deadline: Duration::from_secs(5),
        ops_limit: Some(queries),
    };
    closed_loop("lookout", "peak-day screen", &spec, move |c, s| {
        let d = driver.clone();
        async move { d.op(Workload::Screen, c, s).await }
    })
    .await
}

pub async fn overload(c: &mut TestCluster, driver: Arc<LookoutDriver>, secs: u64, progress: bool) -> anyhow::Result<Overload> {
    let spec = LoadSpec {
        clients: 64,
        connections: 16,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        ops_limit: None,
    };
    let d = driver.clone();
    let saturation = closed_loop("lookout", "screen (saturation)", &spec, move |c, s| {
        let d = d.clone();
        async move { d.op(Workload::Screen, c, s).await }
    })
    .await;
    let offered_qps = (saturation.qps * 3.0).max(10.0);
    if progress {
        eprintln!("  saturation {:.0} screens/s; offering {offered_qps:.0}/s for {secs} s", saturation.qps);
    }
    let pids: Vec<(u64, u32)> = c.ids.iter().filter_map(|&id| Some((id, c.pid(id)?))).collect();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (pids, sampling) = (pids.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut samples: Vec<Vec<f64>> = vec![vec![]; pids.len()];
            let started = Instant::now();
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, (_, pid)) in pids.iter().enumerate() {
                    samples[i].push(rss_mib(*pid).unwrap_or(0.0));
                }
                if progress && started.elapsed().as_secs() % 10 == 0 {
                    let now: Vec<String> = samples.iter().map(|s| format!("{:.0}", s.last().unwrap_or(&0.0))).collect();
                    eprintln!("  {:>3} s: RSS MiB per node {}", started.elapsed().as_secs(), now.join(" / "));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        })
    };
    let d = driver.clone();
    let result = open_loop("lookout", "screen (3x saturation)", offered_qps, Duration::from_secs(secs), Duration::from_secs(2), 50_000, move |c, s| {
        let d = d.clone();
        async move { d.op(Workload::Screen, c, s).await }
    })
    .await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await?;
    let memory = pids
        .iter()
        .zip(&samples)
        .map(|((id, _), s)| {
            let fifth = (s.len() / 5).max(1);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            NodeMemory {
                node: *id,
                peak_rss_mib: s.iter().cloned().fold(0.0, f64::max),
                first_fifth_mib: mean(&s[..fifth.min(s.len())]),
                last_fifth_mib: mean(&s[s.len().saturating_sub(fifth)..]),
            }
        })
        .collect();
    let offered = result.ok + result.error_count();
    let shed = result.errors.get("ResourceExhausted").copied().unwrap_or(0);
    Ok(Overload {
        saturation,
        offered_qps,
        shed_share: if offered == 0 { 0.0 } else { shed as f64 / offered as f64 },
        result,
        memory,
        crashed: c.exited(),
    })
}
