//! The Wing–Gong / Lowe linearizability search (as in Knossos' `wgl` and
//! porcupine) over one partition.
//!
//! Every op contributes a *call* entry at its invocation time and, unless it
//! is an `info` op, a *return* entry at its completion time. Entries are
//! sorted by time, calls before returns at equal times (equal timestamps are
//! treated as concurrent, as porcupine does), and kept in a doubly linked list.
//! The search walks the list: at a call it tries to linearize that op next
//! (model step accepted and the `(linearized set, state)` pair not seen
//! before), lifting its call and return out of the list and restarting from
//! the head; at a return it has run out of candidates that may precede that
//! op's completion, so it backtracks. `info` ops have no return entry (their
//! completion is +∞), so they are never forced: the history is linearizable
//! as soon as every op with a return has been linearized, the remaining
//! `info` ops being "never took effect" (or, equivalently, taking effect
//! after everything else).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::model::Model;
use crate::history::Op;

/// Small, fast, non-cryptographic hasher for the search cache (FxHash).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(SEED);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Limits on one search.
#[derive(Clone, Copy)]
pub(crate) struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub cancel: Option<&'a AtomicBool>,
    pub max_cache_entries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A linearization (positions in the `ops` slice, in order; left-out
    /// `info` ops are not listed).
    Linearizable(Vec<usize>),
    NotLinearizable,
    Unknown(String),
}

/// Where the deepest branch of the search got stuck.
#[derive(Debug, Clone)]
pub(crate) struct Stuck<S> {
    /// Linearized prefix (positions in `ops`), in order.
    pub prefix: Vec<usize>,
    /// Model state after the prefix.
    pub state: S,
    /// The op whose completion was reached with it still unlinearized.
    pub blocked: usize,
    /// Unlinearized ops invoked before `blocked` completed (including
    /// `blocked`): the candidates for the next linearization point, none of
    /// which leads to a full linearization.
    pub candidates: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct Outcome<S> {
    pub verdict: Verdict,
    pub stuck: Option<Stuck<S>>,
    pub steps: u64,
    pub cache_entries: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    op: u32,
    is_call: bool,
}

/// Run the search over `ops` (all in one partition).
pub(crate) fn search<M: Model>(model: &M, ops: &[&Op], limits: Limits<'_>) -> Outcome<M::State> {
    let n = ops.len();
    // Build and sort entries.
    let mut keyed: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        keyed.push((op.invoke_ns, 0, i as u32));
        if let Some(t) = op.complete_ns {
            keyed.push((t, 1, i as u32));
        }
    }
    keyed.sort_unstable();
    let entries: Vec<Entry> = keyed.iter().map(|&(_, k, op)| Entry { op, is_call: k == 0 }).collect();
    let e_count = entries.len();
    let head = e_count;
    let tail = e_count + 1;
    let mut next = vec![0usize; e_count + 2];
    let mut prev = vec![0usize; e_count + 2];
    for i in 0..e_count {
        next[i] = i + 1;
        prev[i] = if i == 0 { head } else { i - 1 };
    }
    next[head] = if e_count == 0 { tail } else { 0 };
    prev[tail] = if e_count == 0 { head } else { e_count - 1 };
    if e_count > 0 {
        next[e_count - 1] = tail;
    }
    let mut ret_of = vec![usize::MAX; n];
    for (pos, e) in entries.iter().enumerate() {
        if !e.is_call {
            ret_of[e.op as usize] = pos;
        }
    }

    let mut remaining_returns = ops.iter().filter(|o| o.complete_ns.is_some()).count();
    if remaining_returns == 0 {
        return Outcome { verdict: Verdict::Linearizable(Vec::new()), stuck: None, steps: 0, cache_entries: 0 };
    }

    let words = n.div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Box<[u64]>, M::State), FxBuild> = HashSet::default();
    // Stack frames: (call entry position, op, prior state).
    let mut stack: Vec<(usize, usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut stuck: Option<Stuck<M::State>> = None;
    let mut steps: u64 = 0;

    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = nx;
        prev[nx] = p;
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = x;
        prev[nx] = x;
    };

    let mut e = next[head];
    loop {
        steps += 1;
        if steps & 0x3ff == 0 {
            if let Some(c) = limits.cancel
                && c.load(Ordering::Relaxed) {
                    return Outcome {
                        verdict: Verdict::Unknown("cancelled".into()),
                        stuck,
                        steps,
                        cache_entries: cache.len(),
                    };
                }
            if let Some(d) = limits.deadline
                && Instant::now() >= d {
                    return Outcome {
                        verdict: Verdict::Unknown(format!(
                            "deadline reached after {steps} search steps ({} cached configurations, {} of {} ops linearized on the current branch)",
                            cache.len(),
                            stack.len(),
                            n
                        )),
                        stuck,
                        steps,
                        cache_entries: cache.len(),
                    };
                }
            if cache.len() > limits.max_cache_entries {
                return Outcome {
                    verdict: Verdict::Unknown(format!(
                        "search cache exceeded {} configurations after {steps} steps",
                        limits.max_cache_entries
                    )),
                    stuck,
                    steps,
                    cache_entries: cache.len(),
                };
            }
        }
        debug_assert!(e != tail, "walked past every return entry");
        let entry = entries[e];
        let op_i = entry.op as usize;
        if entry.is_call {
            let mut advanced = false;
            if let Some(ns) = model.step(&state, ops[op_i]) {
                linearized[op_i / 64] |= 1 << (op_i % 64);
                let fresh = cache.insert((linearized.clone().into_boxed_slice(), ns.clone()));
                if fresh {
                    let prior = std::mem::replace(&mut state, ns);
                    stack.push((e, op_i, prior));
                    unlink(&mut next, &mut prev, e);
                    let r = ret_of[op_i];
                    if r != usize::MAX {
                        unlink(&mut next, &mut prev, r);
                        remaining_returns -= 1;
                        if remaining_returns == 0 {
                            let order = stack.iter().map(|f| f.1).collect();
                            return Outcome {
                                verdict: Verdict::Linearizable(order),
                                stuck: None,
                                steps,
                                cache_entries: cache.len(),
                            };
                        }
                    }
                    e = next[head];
                    advanced = true;
                } else {
                    linearized[op_i / 64] &= !(1 << (op_i % 64));
                }
            }
            if !advanced {
                e = next[e];
            }
        } else {
            // A return with its op unlinearized: every candidate has failed.
            if stuck.as_ref().is_none_or(|s| stack.len() > s.prefix.len()) {
                let mut candidates = Vec::new();
                let mut x = next[head];
                while x != e {
                    if entries[x].is_call {
                        candidates.push(entries[x].op as usize);
                    }
                    x = next[x];
                }
                stuck = Some(Stuck {
                    prefix: stack.iter().map(|f| f.1).collect(),
                    state: state.clone(),
                    blocked: op_i,
                    candidates,
                });
            }
            match stack.pop() {
                None => {
                    return Outcome { verdict: Verdict::NotLinearizable, stuck, steps, cache_entries: cache.len() };
                }
                Some((call_e, top_op, prior)) => {
                    state = prior;
                    linearized[top_op / 64] &= !(1 << (top_op % 64));
                    let r = ret_of[top_op];
                    if r != usize::MAX {
                        relink(&mut next, &mut prev, r);
                        remaining_returns += 1;
                    }
                    relink(&mut next, &mut prev, call_e);
                    e = next[call_e];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::RegisterModel;
    use crate::history::{Completion, OpFn};

    fn op(id: usize, f: OpFn, inv: u64, end: Option<u64>, complete: Completion) -> Op {
        Op { id, process: id as u64, f, invoke_ns: inv, complete, complete_ns: end, index: None, stale: None }
    }
    fn run(ops: &[Op]) -> Verdict {
        let refs: Vec<&Op> = ops.iter().collect();
        search(&RegisterModel, &refs, Limits { deadline: None, cancel: None, max_cache_entries: usize::MAX }).verdict
    }
    fn k() -> String {
        "k".into()
    }

    #[test]
    fn empty_and_info_only_histories_are_linearizable() {
        assert_eq!(run(&[]), Verdict::Linearizable(vec![]));
        let w = op(0, OpFn::Write { key: k(), value: 1 }, 0, None, Completion::Info);
        assert_eq!(run(&[w]), Verdict::Linearizable(vec![]));
    }

    #[test]
    fn info_cas_takes_effect_only_if_compare_holds() {
        let w = op(0, OpFn::Write { key: k(), value: 1 }, 0, Some(1), Completion::Ok { read: None });
        let cas = op(1, OpFn::Cas { key: k(), from: Some(1), to: 2 }, 2, None, Completion::Info);
        let read = |id, v| op(id, OpFn::Read { key: k() }, 3, Some(4), Completion::Ok { read: Some(Some(v)) });
        assert!(matches!(run(&[w.clone(), cas.clone(), read(2, 2)]), Verdict::Linearizable(_)));
        assert!(matches!(run(&[w.clone(), cas.clone(), read(2, 1)]), Verdict::Linearizable(_)));
        let bad = op(1, OpFn::Cas { key: k(), from: Some(7), to: 2 }, 2, None, Completion::Info);
        assert_eq!(run(&[w, bad, read(2, 2)]), Verdict::NotLinearizable);
    }

    #[test]
    fn linearization_respects_real_time() {
        let w1 = op(0, OpFn::Write { key: k(), value: 1 }, 0, Some(10), Completion::Ok { read: None });
        let w2 = op(1, OpFn::Write { key: k(), value: 2 }, 5, Some(20), Completion::Ok { read: None });
        let r = op(2, OpFn::Read { key: k() }, 15, Some(30), Completion::Ok { read: Some(Some(1)) });
        // w2 overlaps r, so w2 may follow r: order w1, r, w2.
        assert_eq!(run(&[w1, w2, r]), Verdict::Linearizable(vec![0, 2, 1]));
    }
}
