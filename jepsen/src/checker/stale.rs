//! Checks for STALE reads (reads served by any node without a read barrier).
//!
//! A stale read is not linearizable by design, so it is left out of the
//! linearizability check; instead it must satisfy three promises:
//!
//! * (a) **never newer than committed** — the value read was written by an op
//!   that may have taken effect (`ok` or `info`, not `fail`) and was invoked
//!   before the read completed: no reads from the future, no reads of values
//!   nobody wrote. ([`StaleViolationKind::NewerThanCommitted`])
//! * (b) **never from a divergent history** — the value equals the key's value
//!   after applying the committed log up to the `applied_index` the read
//!   claims to reflect, i.e. the last `ok` write of that key whose reported
//!   log `index` ≤ `applied_index` (absent if none). When the value's writer
//!   has no known index (an `info` write, or an `ok` without `index`), its
//!   index is bounded by real time — it is above the index of every indexed
//!   write that completed before it was invoked and below that of every
//!   indexed write invoked after it completed — and the read is a violation
//!   only if no index in those bounds fits. ([`StaleViolationKind::DivergentHistory`])
//! * (c) **never staler than it claims** — the value was current at some time
//!   ≥ `read invoke − staleness_ms`: no op that certainly overwrote the value
//!   completed `ok` before that time. "Certainly overwrote": a later log
//!   index than the value's writer, or invoked after the writer completed
//!   (for an absent value: any `ok` write of the key).
//!   ([`StaleViolationKind::StalerThanClaimed`])
//!
//! In addition, two different `ok` ops reporting the same log index is an
//! [`StaleViolationKind::IndexConflict`].

use std::collections::BTreeMap;
use std::fmt;

use super::{describe_op_line, fmt_duration_ns};
use crate::history::{History, Op, Value};

/// A write (or successful cas) the log committed at some index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedWrite {
    pub key: String,
    pub value: i64,
    /// The op ([`Op::id`]) that reported it.
    pub op: usize,
}

/// Raft log index → the write committed there.
pub type IndexMap = BTreeMap<u64, CommittedWrite>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StaleViolationKind {
    /// (a) the value was not written by any op invoked before the read completed.
    NewerThanCommitted,
    /// (b) the value disagrees with the committed log at the claimed applied index.
    DivergentHistory,
    /// (c) the value had been overwritten longer ago than `staleness_ms`.
    StalerThanClaimed,
    /// Two different ops reported the same log index.
    IndexConflict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleViolation {
    pub kind: StaleViolationKind,
    /// The stale read ([`Op::id`]); for `IndexConflict`, the second op.
    pub op: usize,
    /// Other ops involved (writes).
    pub related: Vec<usize>,
    pub explanation: String,
}

impl fmt::Display for StaleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.explanation)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleReport {
    /// Stale reads that completed `ok` and were checked.
    pub checked: usize,
    pub violations: Vec<StaleViolation>,
    /// Reads for which check (b) could not be decided, with the reason.
    pub unverified: Vec<(usize, String)>,
}

impl StaleReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
    pub fn has(&self, kind: StaleViolationKind) -> bool {
        self.violations.iter().any(|v| v.kind == kind)
    }
}

/// Build the index → write map from the `ok` writes / cas that reported an
/// `index`; conflicting reports come back as violations.
pub fn committed_writes(history: &History) -> (IndexMap, Vec<StaleViolation>) {
    let t0 = history.start_ns();
    let mut map = IndexMap::new();
    let mut conflicts = Vec::new();
    for op in &history.ops {
        if !op.may_write() || !op.is_ok() {
            continue;
        }
        let (Some(idx), Some(value)) = (op.index, op.f.written_value()) else { continue };
        if let Some(prev) = map.get(&idx) {
            let prev: &CommittedWrite = prev;
            conflicts.push(StaleViolation {
                kind: StaleViolationKind::IndexConflict,
                op: op.id,
                related: vec![prev.op],
                explanation: format!(
                    "log index {idx} reported for both #{} (key {:?} value {}) and {}",
                    prev.op,
                    prev.key,
                    prev.value,
                    describe_op_line(op, t0)
                ),
            });
            continue;
        }
        map.insert(idx, CommittedWrite { key: op.key().to_string(), value, op: op.id });
    }
    (map, conflicts)
}

/// Run checks (a), (b), (c) on every `ok` stale read of `history`, using the
/// index map built from the history itself.
pub fn check_stale_reads(history: &History) -> StaleReport {
    let (map, conflicts) = committed_writes(history);
    let mut report = check_stale_reads_with(history, &map);
    report.violations.splice(0..0, conflicts);
    report
}

fn show(v: &Value) -> String {
    v.map_or("absent".to_string(), |x| x.to_string())
}

/// Run checks (a), (b), (c) against a given index → write map.
pub fn check_stale_reads_with(history: &History, index_map: &IndexMap) -> StaleReport {
    let t0 = history.start_ns();
    let ms = |ns: u64| fmt_duration_ns(ns.saturating_sub(t0));
    let mut report = StaleReport::default();
    // Indexed ok writes (any key): (index, complete_ns, invoke_ns), for
    // bounding the index of writes that reported none.
    let indexed: Vec<(u64, u64, u64)> = history
        .ops
        .iter()
        .filter(|o| o.may_write() && o.is_ok())
        .filter_map(|o| Some((o.index?, o.complete_ns?, o.invoke_ns)))
        .collect();
    let index_of_op: BTreeMap<usize, u64> = index_map.iter().map(|(i, w)| (w.op, *i)).collect();

    for r in history.ops.iter().filter(|o| o.is_read() && o.stale.is_some()) {
        let Some(v) = r.read_value() else { continue };
        let Some(r_end) = r.complete_ns else { continue };
        let stale = r.stale.unwrap_or_default();
        report.checked += 1;
        let key = r.key();
        let same_key = || history.ops.iter().filter(move |o| o.key() == key && !o.is_read());
        // Ops that may have written v.
        let writers: Vec<&Op> = match v {
            None => Vec::new(),
            Some(x) => same_key().filter(|o| o.may_write() && o.f.written_value() == Some(x)).collect(),
        };

        // (a) never newer than committed.
        if let Some(x) = v {
            let before: Vec<&Op> = writers.iter().copied().filter(|w| w.invoke_ns <= r_end).collect();
            if before.is_empty() {
                let why = if let Some(w) = writers.first() {
                    format!(
                        "it was written only by {} invoked at {}, after the read completed at {}",
                        describe_op_line(w, t0),
                        ms(w.invoke_ns),
                        ms(r_end)
                    )
                } else if let Some(w) = same_key().find(|o| o.f.written_value() == Some(x)) {
                    format!("its only writer certainly had no effect: {}", describe_op_line(w, t0))
                } else {
                    "no op ever wrote it".to_string()
                };
                report.violations.push(StaleViolation {
                    kind: StaleViolationKind::NewerThanCommitted,
                    op: r.id,
                    related: writers.iter().map(|w| w.id).collect(),
                    explanation: format!("stale read {} returned {x}, but {why}", describe_op_line(r, t0)),
                });
            }
        }

        // (b) never from a divergent history.
        if let Some(applied) = stale.applied_index {
            let last = index_map.range(..=applied).rev().find(|(_, w)| w.key == key);
            let expected: Value = last.map(|(_, w)| w.value);
            if expected != v {
                let at = match last {
                    Some((i, w)) => format!("value {} (written by #{} at index {i})", w.value, w.op),
                    None => "absent (no write of the key at or below it)".to_string(),
                };
                let e_idx = last.map_or(0, |(i, _)| *i);
                let mut fits = false;
                let mut notes = Vec::new();
                if v.is_some() && writers.is_empty() {
                    // Nobody could have written it: (a) already reports this.
                    fits = true;
                }
                for w in &writers {
                    if let Some(&wi) = index_of_op.get(&w.id) {
                        notes.push(format!("#{} committed it at index {wi}", w.id));
                        continue;
                    }
                    // Bounds on the unknown index from real-time order.
                    let lb = indexed.iter().filter(|(_, c, _)| *c < w.invoke_ns).map(|(i, _, _)| *i).max().unwrap_or(0);
                    let ub = match w.complete_ns {
                        Some(wc) => {
                            indexed.iter().filter(|(_, _, inv)| *inv > wc).map(|(i, _, _)| *i).min().unwrap_or(u64::MAX)
                        }
                        None => u64::MAX,
                    };
                    // Need an index i with lb < i < ub and e_idx < i <= applied.
                    let low = lb.max(e_idx) + 1;
                    let high = applied.min(ub.saturating_sub(1));
                    if low <= high {
                        fits = true;
                        report.unverified.push((
                            r.id,
                            format!("writer #{} of {} has no reported index; it may lie in {low}..={high}", w.id, show(&v)),
                        ));
                    } else {
                        let ub = if ub == u64::MAX { "∞".to_string() } else { ub.to_string() };
                        notes.push(format!("#{} has no reported index but must lie in {}..{ub}", w.id, lb + 1));
                    }
                }
                if !fits {
                    report.violations.push(StaleViolation {
                        kind: StaleViolationKind::DivergentHistory,
                        op: r.id,
                        related: writers.iter().map(|w| w.id).chain(last.map(|(_, w)| w.op)).collect(),
                        explanation: format!(
                            "stale read {} claims applied index {applied}, where the committed log has key {key:?} = {at}, but it returned {}{}",
                            describe_op_line(r, t0),
                            show(&v),
                            if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
                        ),
                    });
                }
            }
        }

        // (c) never staler than it claims.
        if let Some(s) = stale.staleness_ms {
            let bound = r.invoke_ns.saturating_sub(s.saturating_mul(1_000_000));
            let overwrote = |o: &Op| -> bool {
                if !(o.may_write() && o.is_ok()) || o.key() != key {
                    return false;
                }
                if writers.iter().any(|w| w.id == o.id) {
                    return false;
                }
                if v.is_none() {
                    return true;
                }
                if writers.is_empty() {
                    return false; // (a) reports it
                }
                writers.iter().all(|w| {
                    let by_index = matches!((w.index, o.index), (Some(a), Some(b)) if w.is_ok() && b > a);
                    let by_time = w.complete_ns.is_some_and(|wc| o.invoke_ns > wc);
                    by_index || by_time
                })
            };
            if let Some(o) = history
                .ops
                .iter()
                .filter(|o| overwrote(o) && o.complete_ns.is_some_and(|c| c < bound))
                .min_by_key(|o| o.complete_ns)
            {
                report.violations.push(StaleViolation {
                    kind: StaleViolationKind::StalerThanClaimed,
                    op: r.id,
                    related: std::iter::once(o.id).chain(writers.iter().map(|w| w.id)).collect(),
                    explanation: format!(
                        "stale read {} claims staleness ≤ {s}ms (value current at some time ≥ {}) and returned {}, but {} had overwritten it, completing at {}",
                        describe_op_line(r, t0),
                        ms(bound),
                        show(&v),
                        describe_op_line(o, t0),
                        ms(o.complete_ns.unwrap())
                    ),
                });
            }
        }
    }
    report
}
