//! Negative controls: the suite must catch deliberately broken servers, and pass the real
//! one on the same schedules (positive controls).
//!
//! The mutants are `lookoutd` built with the test-only features of `lookout-server`, in a
//! separate target dir (`target/mutants`, see `support::mutant`): the first build compiles
//! every dependency once (~7 min on 2 cores), later ones take seconds.
//!
//! * `unsafe-skip-read-barrier`: linearizable reads are served from local state with no
//!   read barrier. Caught within a 30 s run that isolates the leader (deposed leaders and
//!   lagging followers answer stale reads).
//! * `unsafe-ack-before-fsync`: log appends acknowledged without a flush. Not reliably
//!   catchable by `kill -9` on this storage engine (test ignored, documented): each sled
//!   batch hands its I/O buffer to a background thread that writes it to the file within
//!   microseconds, and the node applies an entry (a batch) before the client's
//!   acknowledgement, so an acknowledged entry is lost only if the kill lands inside that
//!   window. Losing the page cache (power loss) would tell, and today the real binary does
//!   not survive power loss either (sled panics on recovery), see jepsen/README.md.
//!
//! Run: `cargo test --release -p lookout-jepsen --test negative_controls -- --nocapture`
//! (and `-- --ignored` for the two documented failures).

mod support;

use lookout_jepsen::harness::run::Workload;
use support::{SERIAL, Spec, describe_faults, lookoutd, mutant, run};

fn summary(name: &str, r: &serde_json::Value) {
    eprintln!(
        "{name}: {} — {} ops, linearizable {}, lost {}, faults {} (bit {})\n{}\n{}",
        r["verdict"],
        r["ops"]["total"],
        r["linearizable"]["result"],
        r["lost_writes"]["lost"].as_array().map_or(0, |a| a.len()),
        r["faults_injected"],
        r["faults_bit"],
        describe_faults(r),
        r["linearizable"]["explanation"].as_str().unwrap_or("")
    );
}

const ISOLATE: &str = "partition-isolate-leader";

#[test]
fn skip_read_barrier_is_reported_invalid() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = mutant("unsafe-skip-read-barrier");
    let spec = Spec::new("neg-skip-read-barrier", Workload::Cas, ISOLATE, 30, 201, bin);
    let r = run(&spec).results;
    summary(spec.name, &r);
    assert_eq!(r["verdict"], "invalid", "the skip-read-barrier mutant passed: {}", r["unknown_because"]);
    assert_eq!(r["linearizable"]["result"], "invalid");
}

#[test]
fn real_binary_passes_isolate_leader() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = lookoutd();
    let spec = Spec::new("pos-isolate-leader", Workload::Cas, ISOLATE, 30, 201, bin);
    let r = run(&spec).results;
    summary(spec.name, &r);
    assert_eq!(r["verdict"], "valid", "{} {}", r["invalid_because"], r["unknown_because"]);
    assert!(r["faults_injected"].as_u64().unwrap() >= 2);
}

#[test]
fn real_binary_keeps_acknowledged_writes_through_kill_all() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = lookoutd();
    let spec = Spec::new("pos-kill-all", Workload::Cas, "kill-all,kill-majority", 30, 202, bin);
    let r = run(&spec).results;
    summary(spec.name, &r);
    assert_eq!(r["verdict"], "valid", "{} {}", r["invalid_because"], r["unknown_because"]);
    assert!(r["lost_writes"]["acknowledged"].as_u64().unwrap() > 100);
}

#[test]
#[ignore = "not detectable by kill -9 on sled (every acknowledged entry is in the page cache already); see the module doc"]
fn ack_before_fsync_loses_acknowledged_writes_under_kill() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = mutant("unsafe-ack-before-fsync");
    let spec = Spec::new("neg-ack-before-fsync", Workload::Cas, "kill-all,kill-majority", 30, 203, bin);
    let r = run(&spec).results;
    summary(spec.name, &r);
    assert_eq!(r["verdict"], "invalid", "the ack-before-fsync mutant passed a kill -9 run");
}

#[test]
#[ignore = "fails today: after a simulated power loss sled panics on recovery; needs root and loop devices"]
fn real_binary_survives_power_loss() {
    if let Some(why) = lookout_jepsen::harness::cluster::power_loss_unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = lookoutd();
    let spec = Spec::new("pos-power-loss", Workload::Cas, "powerloss-all,powerloss-majority", 30, 204, bin);
    let r = run(&spec).results;
    summary(spec.name, &r);
    assert_eq!(r["verdict"], "valid", "{} {}", r["invalid_because"], r["unknown_because"]);
}
