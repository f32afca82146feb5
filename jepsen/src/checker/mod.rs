//! Checkers over a [`History`]:
//!
//! * [`linearizable`] / [`linearizable_with`]: per-key linearizability (WGL
//!   search, see [`wgl`]) against a [`Model`] such as [`RegisterModel`], keys
//!   checked in parallel under one deadline.
//! * [`render_timeline`]: an HTML timeline of a history around an anomaly.
//! * [`stale`]: stale-read checks; [`visibility`]: the visibility workload.

pub mod model;
pub mod stale;
pub mod timeline;
pub mod visibility;
mod wgl;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::history::{History, Op};

pub use model::{Model, RegisterModel};
pub use stale::{StaleReport, StaleViolation, StaleViolationKind, check_stale_reads};
pub use timeline::render_timeline;
pub use visibility::{PutOutcome, PutRecord, ScreenRecord, VisibilityReport, VisibilityViolation, check_visibility};

/// Options for [`linearizable_with`].
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Global deadline for the whole check, measured from the call. A key
    /// whose search has not finished by then makes the result `Unknown`.
    pub timeout: Duration,
    /// Worker threads (keys are checked in parallel).
    pub threads: usize,
    /// Per-key bound on the search cache (memory guard); exceeding it makes
    /// that key `Unknown`.
    pub max_cache_entries: usize,
    /// Stop the other keys' searches as soon as one key is found invalid.
    pub stop_on_first_invalid: bool,
    /// Time allowed (beyond the search, but never past the deadline) to shrink
    /// an invalid key's history to a 1-minimal non-linearizable core.
    pub minimize_budget: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: Duration::from_secs(60),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            max_cache_entries: 20_000_000,
            stop_on_first_invalid: true,
            minimize_budget: Duration::from_secs(5),
        }
    }
}

impl CheckOptions {
    pub fn with_timeout(timeout: Duration) -> Self {
        CheckOptions { timeout, ..Default::default() }
    }
}

/// The overall verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Valid,
    /// Some key's history is not linearizable (the first found, see
    /// [`CheckReport::keys`] for all).
    Invalid(Box<Counterexample>),
    /// No key is known to be invalid, but at least one could not be decided
    /// (deadline, memory bound). Never a pass.
    Unknown { why: String },
}

impl CheckResult {
    pub fn is_valid(&self) -> bool {
        matches!(self, CheckResult::Valid)
    }
    pub fn is_invalid(&self) -> bool {
        matches!(self, CheckResult::Invalid(_))
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, CheckResult::Unknown { .. })
    }
    pub fn counterexample(&self) -> Option<&Counterexample> {
        match self {
            CheckResult::Invalid(c) => Some(c),
            _ => None,
        }
    }
    /// The key named by an `Invalid` result.
    pub fn invalid_key(&self) -> Option<&str> {
        self.counterexample().map(|c| c.key.as_str())
    }
}

/// Why a key is not linearizable. All op references are [`Op::id`]s, i.e.
/// positions in [`History::ops`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    pub key: String,
    /// A small sub-history of this key that is itself not linearizable, and
    /// whose non-linearizability implies the key's (see
    /// [`Model::is_witness`]), sorted by invocation. 1-minimal when
    /// `core_is_minimal` (removing any one op makes it linearizable); the
    /// whole key's history when minimisation was not possible in time.
    pub core_ops: Vec<usize>,
    pub core_is_minimal: bool,
    /// The longest linearizable prefix the search found for the whole key's
    /// history, in linearization order (porcupine's "partial linearization").
    pub longest_prefix: Vec<usize>,
    /// Model state after `longest_prefix`.
    pub state_after_prefix: String,
    /// The op whose completion the search reached without being able to
    /// linearize it after `longest_prefix`.
    pub blocked_op: usize,
    /// Ops that could not be linearized next after `longest_prefix`: every
    /// pending op invoked before `blocked_op` completed (including it).
    pub unlinearizable: Vec<usize>,
    /// Human-readable explanation.
    pub explanation: String,
}

impl Counterexample {
    /// Every op the counterexample mentions (core, blocked, candidates), sorted.
    pub fn anomaly_ops(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.core_ops.clone();
        v.push(self.blocked_op);
        v.extend(&self.unlinearizable);
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Per-key outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    Valid,
    Invalid,
    Unknown(String),
    /// Not searched / stopped because another key was already invalid.
    Skipped,
}

#[derive(Clone, Debug)]
pub struct KeyReport {
    pub key: String,
    /// Ops of this key that the model checks.
    pub ops: usize,
    pub verdict: KeyVerdict,
    pub elapsed: Duration,
    pub search_steps: u64,
    pub cache_entries: usize,
}

/// Full report of [`linearizable_with`].
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub result: CheckResult,
    pub keys: Vec<KeyReport>,
    pub elapsed: Duration,
}

/// Check that `history` is linearizable with respect to `model`, per key,
/// with default options (60 s deadline).
pub fn linearizable<M: Model>(history: &History, model: &M) -> CheckResult {
    linearizable_with(history, model, &CheckOptions::default()).result
}

/// Check that `history` is linearizable with respect to `model`, per key.
pub fn linearizable_with<M: Model>(history: &History, model: &M, opts: &CheckOptions) -> CheckReport {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let mut parts: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        if model.relevant(op) {
            parts.entry(op.key()).or_default().push(op);
        }
    }
    let parts: Vec<(&str, Vec<&Op>)> = parts.into_iter().collect();
    // Largest partitions first, so the slowest work starts early.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].1.len()));

    type Slot<S> = Option<(KeyReport, Option<wgl::Stuck<S>>)>;
    let results: Mutex<Vec<Slot<M::State>>> = Mutex::new((0..parts.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let threads = opts.threads.max(1).min(parts.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= order.len() {
                        break;
                    }
                    let i = order[k];
                    let (key, ops) = &parts[i];
                    let t0 = Instant::now();
                    let slot = if cancel.load(Ordering::Relaxed) {
                        let rep = KeyReport {
                            key: key.to_string(),
                            ops: ops.len(),
                            verdict: KeyVerdict::Skipped,
                            elapsed: Duration::ZERO,
                            search_steps: 0,
                            cache_entries: 0,
                        };
                        (rep, None)
                    } else {
                        let limits = wgl::Limits {
                            deadline: Some(deadline),
                            cancel: Some(&cancel),
                            max_cache_entries: opts.max_cache_entries,
                        };
                        let out = wgl::search(model, ops, limits);
                        let verdict = match out.verdict {
                            wgl::Verdict::Linearizable(_) => KeyVerdict::Valid,
                            wgl::Verdict::NotLinearizable => {
                                if opts.stop_on_first_invalid {
                                    cancel.store(true, Ordering::Relaxed);
                                }
                                KeyVerdict::Invalid
                            }
                            wgl::Verdict::Unknown(why) if why == "cancelled" => KeyVerdict::Skipped,
                            wgl::Verdict::Unknown(why) => KeyVerdict::Unknown(why),
                        };
                        let stuck = if verdict == KeyVerdict::Invalid { out.stuck } else { None };
                        let rep = KeyReport {
                            key: key.to_string(),
                            ops: ops.len(),
                            verdict,
                            elapsed: t0.elapsed(),
                            search_steps: out.steps,
                            cache_entries: out.cache_entries,
                        };
                        (rep, stuck)
                    };
                    results.lock().unwrap()[i] = Some(slot);
                }
            });
        }
    });
    let results: Vec<(KeyReport, Option<wgl::Stuck<M::State>>)> =
        results.into_inner().unwrap().into_iter().map(|s| s.expect("every partition visited")).collect();

    let result = if let Some(i) = results.iter().position(|(r, _)| r.verdict == KeyVerdict::Invalid) {
        let (key, ops) = &parts[i];
        let stuck = results[i].1.clone().expect("an invalid search records where it got stuck");
        let t0 = history.start_ns();
        CheckResult::Invalid(Box::new(build_counterexample(model, key, ops, stuck, t0, deadline, opts)))
    } else if let Some((r, _)) = results.iter().find(|(r, _)| matches!(r.verdict, KeyVerdict::Unknown(_))) {
        let KeyVerdict::Unknown(why) = &r.verdict else { unreachable!() };
        let n_unknown = results.iter().filter(|(r, _)| matches!(r.verdict, KeyVerdict::Unknown(_))).count();
        CheckResult::Unknown {
            why: format!(
                "key {:?} ({} ops) undecided: {why}; {n_unknown} of {} keys undecided",
                r.key,
                r.ops,
                results.len()
            ),
        }
    } else {
        CheckResult::Valid
    };
    CheckReport { result, keys: results.into_iter().map(|(r, _)| r).collect(), elapsed: start.elapsed() }
}

/// Shrink `ops` (a non-linearizable partition) to a 1-minimal witness by
/// delta debugging, within `until`. Returns (positions in `ops`, minimal?).
///
/// `focus_ns`: where the search got stuck (the blocked op's completion). The
/// ops invoked up to then are tried first as a whole, so the core tends to be
/// the anomaly the search reports rather than some later one.
fn minimize<M: Model>(
    model: &M,
    ops: &[&Op],
    focus_ns: u64,
    until: Instant,
    max_cache: usize,
) -> (Vec<usize>, bool) {
    let all: Vec<usize> = (0..ops.len()).collect();
    let invalid = |subset: &[usize]| -> Option<bool> {
        if Instant::now() >= until {
            return None;
        }
        let sub: Vec<&Op> = subset.iter().map(|&i| ops[i]).collect();
        if !model.is_witness(ops, &sub) {
            return Some(false);
        }
        let limits = wgl::Limits { deadline: Some(until), cancel: None, max_cache_entries: max_cache };
        match wgl::search(model, &sub, limits).verdict {
            wgl::Verdict::NotLinearizable => Some(true),
            wgl::Verdict::Linearizable(_) => Some(false),
            wgl::Verdict::Unknown(_) => None,
        }
    };
    // Is minimisation possible at all for this model?
    if !model.is_witness(ops, ops) {
        return (all, false);
    }
    let mut cur = all;
    let prefix: Vec<usize> = cur.iter().copied().filter(|&i| ops[i].invoke_ns <= focus_ns).collect();
    if prefix.len() < cur.len() {
        match invalid(&prefix) {
            None => return (cur, false),
            Some(true) => cur = prefix,
            Some(false) => {}
        }
    }
    let mut n = 2usize;
    while cur.len() >= 2 {
        let chunk = cur.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < cur.len() {
            let end = (start + chunk).min(cur.len());
            let complement: Vec<usize> = cur[..start].iter().chain(&cur[end..]).copied().collect();
            match invalid(&complement) {
                None => return (cur, false),
                Some(true) => {
                    cur = complement;
                    reduced = true;
                    break;
                }
                Some(false) => start = end,
            }
        }
        if reduced {
            n = (n - 1).max(2);
        } else if n >= cur.len() {
            break;
        } else {
            n = (n * 2).min(cur.len());
        }
    }
    (cur, true)
}

fn fmt_ns(ns: u64, t0: u64) -> String {
    if ns == u64::MAX {
        return "∞".to_string();
    }
    fmt_duration_ns(ns.saturating_sub(t0))
}

/// `1234ns`, `12.3µs`, `12.345ms`, `12.345s`.
pub(crate) fn fmt_duration_ns(d: u64) -> String {
    if d < 10_000 {
        format!("{d}ns")
    } else if d < 10_000_000 {
        format!("{:.1}µs", d as f64 / 1e3)
    } else if d < 100_000_000_000 {
        format!("{:.3}ms", d as f64 / 1e6)
    } else {
        format!("{:.3}s", d as f64 / 1e9)
    }
}

/// One line describing an op, times relative to `t0`.
pub fn describe_op_line(op: &Op, t0: u64) -> String {
    format!(
        "#{} p{} {} [{} .. {}]",
        op.id,
        op.process,
        op.describe(),
        fmt_ns(op.invoke_ns, t0),
        op.complete_ns.map_or("∞ (info)".to_string(), |c| fmt_ns(c, t0))
    )
}

fn build_counterexample<M: Model>(
    model: &M,
    key: &str,
    ops: &[&Op],
    stuck: wgl::Stuck<M::State>,
    t0: u64,
    deadline: Instant,
    opts: &CheckOptions,
) -> Counterexample {
    let until = (Instant::now() + opts.minimize_budget).min(deadline);
    let focus_ns = ops[stuck.blocked].end_ns();
    let (core, core_is_minimal) = minimize(model, ops, focus_ns, until, opts.max_cache_entries);
    let index: std::collections::HashMap<usize, &Op> = ops.iter().map(|o| (o.id, *o)).collect();
    let by_id = |id: usize| -> &Op { index[&id] };
    let mut core_ops: Vec<usize> = core.iter().map(|&i| ops[i].id).collect();
    core_ops.sort_by_key(|&id| (by_id(id).invoke_ns, id));

    let longest_prefix: Vec<usize> = stuck.prefix.iter().map(|&i| ops[i].id).collect();
    let blocked_op = ops[stuck.blocked].id;
    let unlinearizable: Vec<usize> = stuck.candidates.iter().map(|&i| ops[i].id).collect();
    let state_after_prefix = model.describe_state(&stuck.state);

    let mut x = String::new();
    let _ = writeln!(x, "key {key:?} is not linearizable ({} ops checked).", ops.len());
    if core_is_minimal {
        let _ = writeln!(
            x,
            "Minimal non-linearizable sub-history ({} ops; removing any one makes it linearizable):",
            core.len()
        );
    } else {
        let _ = writeln!(x, "Could not shrink the counterexample in time; ops of the key: {}", core.len());
    }
    for &id in core_ops.iter().take(50) {
        let _ = writeln!(x, "  {}", describe_op_line(by_id(id), t0));
    }
    if core_ops.len() > 50 {
        let _ = writeln!(x, "  … {} more", core_ops.len() - 50);
    }
    let _ = writeln!(
        x,
        "Longest linearizable prefix found: {} of {} ops, ending in state {}.",
        longest_prefix.len(),
        ops.len(),
        state_after_prefix
    );
    for &id in longest_prefix.iter().rev().take(5).collect::<Vec<_>>().iter().rev() {
        let _ = writeln!(x, "  … {}", describe_op_line(by_id(*id), t0));
    }
    let _ = writeln!(
        x,
        "Then {} had to take effect before it completed, but no pending op can be linearized next without reaching a dead end:",
        describe_op_line(by_id(blocked_op), t0)
    );
    for &id in unlinearizable.iter().take(20) {
        let op = by_id(id);
        let why = match model.step(&stuck.state, op) {
            None => format!("impossible in state {state_after_prefix}"),
            Some(s) => format!("→ state {} leads to a dead end", model.describe_state(&s)),
        };
        let _ = writeln!(x, "  {}: {why}", describe_op_line(op, t0));
    }
    if unlinearizable.len() > 20 {
        let _ = writeln!(x, "  … {} more", unlinearizable.len() - 20);
    }
    Counterexample {
        key: key.to_string(),
        core_ops,
        core_is_minimal,
        longest_prefix,
        state_after_prefix,
        blocked_op,
        unlinearizable,
        explanation: x,
    }
}
