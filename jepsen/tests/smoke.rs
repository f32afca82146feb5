//! CI smoke of the fault-injection harness: every nemesis family against a real 3-node
//! cluster (about 2.5 minutes in all). Each run must come out VALID (linearizable, no
//! lost acknowledged write, no visibility violation, recovered and converged after
//! healing), and every fault it injected must have bitten (errors or unknown outcomes,
//! an election, a latency or throughput drop during its window).
//!
//! STALE reads are left out of the per-family runs (`stale_fraction = 0`) and checked by
//! their own run, `stale_reads_keep_their_staleness_bound` (40 % STALE reads under
//! partitions and delays).
//!
//! Run alone: `cargo test --release -p lookout-jepsen --test smoke -- --nocapture`

mod support;

use lookout_jepsen::harness::run::Workload;
use support::{SERIAL, Spec, describe_faults, lookoutd, run};

fn has(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn smoke(name: &str, workload: Workload, nemesis: &str, secs: u64, seed: u64) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let spec = Spec::new(name, workload, nemesis, secs, seed, lookoutd());
    check(&spec, run(&spec).results);
}

fn check(spec: &Spec, r: serde_json::Value) {
    let faults = describe_faults(&r);
    eprintln!(
        "{}: {} — {} ops, {} faults injected, {} bit\n{faults}",
        spec.name, r["verdict"], r["ops"]["total"], r["faults_injected"], r["faults_bit"]
    );
    assert_eq!(
        r["verdict"], "valid",
        "{}: {} {} {}\n{}",
        spec.name, r["invalid_because"], r["unknown_because"], r["linearizable"]["explanation"], faults
    );
    let injected = r["faults_injected"].as_u64().unwrap();
    assert!(injected >= 1, "{}: no fault injected", spec.name);
    assert_eq!(r["faults_bit"].as_u64().unwrap(), injected, "{}: a fault did not bite:\n{faults}", spec.name);
    assert!(r["fault_errors"].as_array().unwrap().is_empty(), "{}: {}", spec.name, r["fault_errors"]);
    assert!(r["ops"]["ok"].as_u64().unwrap() > 500, "{}: too little traffic: {}", spec.name, r["ops"]);
}

#[test]
fn kill() {
    smoke("smoke-kill", Workload::Cas, "kill", 22, 101);
}

#[test]
fn pause() {
    smoke("smoke-pause", Workload::Visibility, "pause", 20, 102);
}

#[test]
fn partition() {
    smoke("smoke-partition", Workload::Cas, "partition", 24, 103);
}

#[test]
fn delay() {
    smoke("smoke-delay", Workload::Cas, "delay", 18, 104);
}

#[test]
fn loss() {
    smoke("smoke-loss", Workload::Visibility, "loss", 18, 105);
}

#[test]
fn disk() {
    if !(has("fiu-run") && has("fiu-ctrl")) {
        eprintln!("SKIPPED disk smoke: fiu-run / fiu-ctrl not installed (apt-get install fiu-utils; .ci/run does)");
        return;
    }
    // The write variants: libfiu has no failure point for sync_file_range, which sled uses
    // for its log, so fsync failures only reach snapshot writes (see README).
    smoke("smoke-disk", Workload::Cas, "disk-write-leader,disk-write-random", 18, 106);
}

#[test]
fn netns_partition() {
    if let Some(why) = lookout_jepsen::harness::netns::unavailable() {
        eprintln!("SKIPPED netns smoke: {why}");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut spec = Spec::new("smoke-netns", Workload::Cas, "partition-isolate-leader,partition-halves,loss", 18, 107, lookoutd());
    spec.nodes = 3;
    let mut o = lookout_jepsen::harness::run::TestOpts::new(
        spec.workload,
        spec.nemesis,
        std::time::Duration::from_secs(spec.secs),
        spec.seed,
        spec.bin.clone(),
        support::out_dir(spec.name),
    );
    o.net = lookout_jepsen::harness::run::NetMode::Netns;
    o.stale_fraction = Some(0.0);
    o.fault_window = (std::time::Duration::from_secs(3), std::time::Duration::from_secs(5));
    o.heal_window = (std::time::Duration::from_secs(3), std::time::Duration::from_secs(4));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let out = rt.block_on(lookout_jepsen::harness::run::run_test(&o)).expect("netns run");
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    check(&spec, out.results);
}

/// STALE reads must never be staler than the `staleness_ms` they report. (This caught
/// followers dating their state by the arrival of the leader's AppendEntries, whose commit
/// index is the leader's as of sending; they now date it by ReadIndex probes.)
#[test]
fn stale_reads_keep_their_staleness_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut spec = Spec::new("smoke-stale", Workload::Stale, "partition,delay", 24, 108, lookoutd());
    spec.stale_fraction = None;
    let r = run(&spec).results;
    eprintln!("stale reads: {}", r["stale_reads"]);
    check(&spec, r);
}
