//! `lookout-jepsen`: runs a fault-injection test against a real `lookoutd` cluster, or
//! checks a recorded history.
//!
//! ```sh
//! lookout-jepsen test --workload cas --nemesis kill,pause,partition --time-limit 60 --seed 7
//! lookout-jepsen check HISTORY.jsonl [--timeline OUT.html] [--timeout-secs N]
//! ```
//!
//! Exit status of `test`: 0 valid, 1 invalid, 3 unknown (checker undecided, or the cluster
//! did not recover), 2 harness or usage error. A `--net netns` run without root prints
//! why it is skipped and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lookout_jepsen::checker::{CheckOptions, CheckResult, RegisterModel, check_stale_reads, linearizable_with, render_timeline};
use lookout_jepsen::harness::netns;
use lookout_jepsen::harness::report::Verdict;
use lookout_jepsen::harness::run::{self, NetMode, TestOpts, Workload};
use lookout_jepsen::history::History;

#[derive(Parser)]
#[command(name = "lookout-jepsen", about = "Jepsen-style fault-injection tests for Lookout")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a test: cluster, traffic, faults, heal, check. Writes history.jsonl,
    /// results.json and timeline.html into --out.
    Test(Box<TestArgs>),
    /// Check a recorded history.jsonl.
    Check {
        history: PathBuf,
        #[arg(long)]
        timeline: Option<PathBuf>,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
}

#[derive(clap::Args)]
struct TestArgs {
    /// cas (registers + stale reads + adds), stale (mostly STALE reads), visibility (PutLookout/Screen).
    #[arg(long, default_value = "cas")]
    workload: String,
    /// Comma-separated: kill, pause, partition, delay, loss, disk; `all`; `none`; or single
    /// variants such as kill-all, partition-isolate-leader.
    #[arg(long, default_value = "partition,kill,pause")]
    nemesis: String,
    /// Seconds of traffic under faults (healing and checking come after).
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Seed of the fault schedule and of the clients' choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// 3 (one node per site) or 5 (2 primary, 2 alternate, 1 witness).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Concurrent logical clients (each has one op in flight).
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Register keys in use at a time (rotated).
    #[arg(long, default_value_t = 10)]
    keys: usize,
    /// The lookoutd binary (default: next to this executable, else target/release/lookoutd).
    #[arg(long)]
    lookoutd: Option<PathBuf>,
    /// Result directory (default target/jepsen/<time>-<workload>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// proxy (user-space TCP proxy per peer link; default), netns (namespaces + nftables; root), direct.
    #[arg(long, default_value = "proxy")]
    net: String,
    #[arg(long, default_value_t = 1500)]
    rpc_timeout_ms: u64,
    /// Total time one op may take over its retries.
    #[arg(long, default_value_t = 3000)]
    op_timeout_ms: u64,
    /// Do not retry writes of unknown outcome (with the same request id).
    #[arg(long)]
    no_retry: bool,
    #[arg(long, default_value_t = 120)]
    check_timeout_secs: u64,
    /// Fault window length in seconds, MIN-MAX.
    #[arg(long, default_value = "4-8")]
    fault_window: String,
    /// Healthy window between faults in seconds, MIN-MAX.
    #[arg(long, default_value = "4-7")]
    heal_window: String,
    /// Share of STALE reads in the cas/stale workloads (defaults: cas 0.1, stale 0.4).
    #[arg(long)]
    stale_fraction: Option<f64>,
    /// Keep the nodes' data directories.
    #[arg(long)]
    keep_data: bool,
}

fn window(s: &str) -> Result<(Duration, Duration), String> {
    let parse = |x: &str| x.trim().parse::<f64>().map_err(|_| format!("bad window {s:?}: use MIN-MAX seconds"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let a = parse(s)?;
            (a, a)
        }
    };
    if a < 0.0 || b < a {
        return Err(format!("bad window {s:?}"));
    }
    Ok((Duration::from_secs_f64(a), Duration::from_secs_f64(b)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { history, timeline, timeout_secs } => check(&history, timeline, timeout_secs),
        Cmd::Test(a) => test(*a),
    }
}

fn test(a: TestArgs) -> ExitCode {
    let usage = |m: String| {
        eprintln!("lookout-jepsen: {m}");
        ExitCode::from(2)
    };
    let workload = match Workload::parse(&a.workload) {
        Ok(w) => w,
        Err(e) => return usage(e.to_string()),
    };
    let net = match NetMode::parse(&a.net) {
        Ok(n) => n,
        Err(e) => return usage(e.to_string()),
    };
    if net == NetMode::Netns
        && let Some(why) = netns::unavailable()
    {
        println!("SKIPPED: {why}");
        return ExitCode::SUCCESS;
    }
    let (fault_window, heal_window) = match (window(&a.fault_window), window(&a.heal_window)) {
        (Ok(f), Ok(h)) => (f, h),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() % 100_000).unwrap_or(1)
    });
    let out = a.out.clone().unwrap_or_else(|| run::out_dir_default(workload, seed));
    let lookoutd = a.lookoutd.clone().unwrap_or_else(run::default_lookoutd);
    let mut opts = TestOpts::new(workload, &a.nemesis, Duration::from_secs(a.time_limit), seed, lookoutd, out);
    opts.nodes = a.nodes;
    opts.clients = a.clients.max(1);
    opts.keys = a.keys.max(1);
    opts.net = net;
    opts.rpc_timeout = Duration::from_millis(a.rpc_timeout_ms);
    opts.op_timeout = Duration::from_millis(a.op_timeout_ms.max(a.rpc_timeout_ms));
    opts.retry_unknown = !a.no_retry;
    opts.check_timeout = Duration::from_secs(a.check_timeout_secs);
    opts.fault_window = fault_window;
    opts.heal_window = heal_window;
    opts.keep_data = a.keep_data;
    opts.stale_fraction = a.stale_fraction;
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return usage(format!("tokio runtime: {e}")),
    };
    let result = rt.block_on(run::run_test(&opts));
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(o) => {
            println!("results: {}", o.out.display());
            match o.verdict {
                Verdict::Valid => ExitCode::SUCCESS,
                Verdict::Invalid => ExitCode::from(1),
                Verdict::Unknown => ExitCode::from(3),
            }
        }
        Err(e) => {
            eprintln!("lookout-jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check(path: &std::path::Path, timeline: Option<PathBuf>, timeout_secs: u64) -> ExitCode {
    let opts = CheckOptions::with_timeout(Duration::from_secs(timeout_secs));
    let history = match History::read_jsonl(path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let report = linearizable_with(&history, &RegisterModel, &opts);
    let stale = check_stale_reads(&history);
    println!("{} ops, {} keys, checked in {:?}", history.len(), report.keys.len(), report.elapsed);
    match &report.result {
        CheckResult::Valid => println!("linearizable: VALID"),
        CheckResult::Invalid(c) => println!("linearizable: INVALID\n{}", c.explanation),
        CheckResult::Unknown { why } => println!("linearizable: UNKNOWN ({why})"),
    }
    println!("stale reads: {} checked, {} violations", stale.checked, stale.violations.len());
    for v in &stale.violations {
        println!("  {v}");
    }
    if let Some(out) = timeline {
        if let Err(e) = std::fs::write(&out, render_timeline(&history, &report.result)) {
            eprintln!("{}: {e}", out.display());
            return ExitCode::from(2);
        }
        println!("timeline written to {}", out.display());
    }
    if report.result.is_valid() && stale.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
