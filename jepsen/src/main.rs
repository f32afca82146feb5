//! `lookout-jepsen`: stub binary. The harness (cluster control, clients,
//! nemeses) will be added here; for now it checks a recorded history.
//!
//! Usage: `lookout-jepsen check HISTORY.jsonl [--timeline OUT.html] [--timeout-secs N]`

use std::process::ExitCode;
use std::time::Duration;

use lookout_jepsen::checker::{CheckOptions, CheckResult, RegisterModel, check_stale_reads, linearizable_with, render_timeline};
use lookout_jepsen::history::History;

fn usage() -> ExitCode {
    eprintln!("usage: lookout-jepsen check HISTORY.jsonl [--timeline OUT.html] [--timeout-secs N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("check") || args.len() < 2 {
        return usage();
    }
    let path = &args[1];
    let mut timeline = None;
    let mut opts = CheckOptions::default();
    let mut i = 2;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--timeline", Some(p)) => timeline = Some(p.clone()),
            ("--timeout-secs", Some(s)) => match s.parse() {
                Ok(n) => opts.timeout = Duration::from_secs(n),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
        i += 2;
    }
    let history = match History::read_jsonl(std::path::Path::new(path)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{path}: {e}");
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
            eprintln!("{out}: {e}");
            return ExitCode::from(2);
        }
        println!("timeline written to {out}");
    }
    if report.result.is_valid() && stale.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
