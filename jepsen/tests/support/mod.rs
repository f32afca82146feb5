//! Shared helpers of the tests that run real `lookoutd` clusters: finding (and building)
//! the binaries, and running one harness test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use lookout_jepsen::harness::run::{self, RunOutcome, TestOpts, Workload};

/// Clusters of 3-5 processes on a 2-core machine: one run at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The release `lookoutd`, built (or brought up to date) first: a test of the harness
/// must not run a stale server binary.
pub fn lookoutd() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut b = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = b.as_ref() {
        return p.clone();
    }
    let status = Command::new(cargo())
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "lookout-server", "--bin", "lookoutd"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "cargo build --release -p lookout-server failed");
    let p = target_dir().join("release").join("lookoutd");
    assert!(p.is_file(), "{} missing after the build", p.display());
    *b = Some(p.clone());
    p
}

/// A negative-control ("mutant") `lookoutd` built with one `unsafe-*` feature.
///
/// Built in a separate target dir (`target/mutants`), never in the shared one: building
/// with features in the shared dir would replace `target/release/lookoutd` with the mutant
/// for as long as it takes to rebuild, under every other test and developer using it.
/// The first build compiles every dependency once (about 7 minutes on 2 cores); later
/// builds only relink (the two features share everything but 3 crates). The binary is
/// copied to `target/mutants/<feature>/lookoutd`.
pub fn mutant(feature: &str) -> PathBuf {
    let dir = target_dir().join("mutants");
    let status = Command::new(cargo())
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "lookout-server", "--bin", "lookoutd", "--features", feature, "--target-dir"])
        .arg(&dir)
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the {feature} mutant failed");
    let out = dir.join(feature.trim_start_matches("unsafe-"));
    std::fs::create_dir_all(&out).unwrap();
    let dst = out.join("lookoutd");
    std::fs::copy(dir.join("release").join("lookoutd"), &dst).expect("copy mutant");
    dst
}

/// `target/jepsen-tests/<pid>/<name>`: per test process, so that two test runs on one
/// machine never clean up each other's directories. Directories of processes that are
/// gone are removed.
pub fn out_dir(name: &str) -> PathBuf {
    let base = target_dir().join("jepsen-tests");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let stale = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists());
            if stale {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let d = base.join(std::process::id().to_string()).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub struct Spec<'a> {
    pub name: &'a str,
    pub workload: Workload,
    pub nemesis: &'a str,
    pub secs: u64,
    pub seed: u64,
    pub nodes: usize,
    pub bin: PathBuf,
    pub stale_fraction: Option<f64>,
    pub fault_window: (f64, f64),
    pub heal_window: (f64, f64),
}

impl<'a> Spec<'a> {
    pub fn new(name: &'a str, workload: Workload, nemesis: &'a str, secs: u64, seed: u64, bin: PathBuf) -> Spec<'a> {
        Spec {
            name,
            workload,
            nemesis,
            secs,
            seed,
            nodes: 3,
            bin,
            stale_fraction: Some(0.0),
            fault_window: (3.0, 5.0),
            heal_window: (3.0, 4.0),
        }
    }
}

/// Runs one harness test; prints its summary (visible with --nocapture).
pub fn run(spec: &Spec) -> RunOutcome {
    let mut o = TestOpts::new(spec.workload, spec.nemesis, Duration::from_secs(spec.secs), spec.seed, spec.bin.clone(), out_dir(spec.name));
    o.nodes = spec.nodes;
    o.stale_fraction = spec.stale_fraction;
    o.fault_window = (Duration::from_secs_f64(spec.fault_window.0), Duration::from_secs_f64(spec.fault_window.1));
    o.heal_window = (Duration::from_secs_f64(spec.heal_window.0), Duration::from_secs_f64(spec.heal_window.1));
    o.check_timeout = Duration::from_secs(60);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let out = rt.block_on(run::run_test(&o)).unwrap_or_else(|e| panic!("{}: harness error: {e:#}", spec.name));
    rt.shutdown_timeout(Duration::from_secs(2));
    out
}

/// One line per fault: kind, targets, whether it bit and why.
pub fn describe_faults(r: &serde_json::Value) -> String {
    r["faults"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| format!("  #{} {} {} bit={} {}", f["n"], f["kind"], f["targets"], f["bit"], f["evidence"]))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
