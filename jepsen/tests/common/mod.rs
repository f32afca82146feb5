//! Shared test helpers: a deterministic PRNG and a simulated register cluster
//! that produces histories (correct or buggy).
#![allow(dead_code)]

use lookout_jepsen::history::{Event, EventKind, History, Value};

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: u64, hi_incl: u64) -> u64 {
        lo + self.below(hi_incl - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Clone, Debug)]
pub struct SimParams {
    pub keys: u64,
    pub processes: u64,
    pub ops: usize,
    /// Probability that a given misbehaviour happens at each opportunity
    /// (0 = a correct register).
    pub bug_rate: f64,
    /// Probability that a write/cas ends `info` (maybe applied, maybe later).
    pub info_rate: f64,
    /// Probability that a op ends `fail` without effect.
    pub fail_rate: f64,
    /// Whether completions/invocations may share a timestamp.
    pub ties: bool,
}

struct Pending {
    invoke: Event,
    applied: bool,
    read_result: Value,
    cas_observed: Option<Value>,
}

/// Simulate clients against a register per key. Each op takes effect at a
/// random instant between its invocation and completion (or, for `info` ops,
/// at any later instant or never). With `bug_rate > 0` the register
/// sometimes misbehaves: stale or future reads, lost writes, cas ignoring
/// its compare, wrong "compare failed".
pub fn simulate(rng: &mut Rng, p: &SimParams) -> Vec<Event> {
    let keys: Vec<String> = (0..p.keys).map(|k| format!("k{k}")).collect();
    let mut state: Vec<Value> = vec![None; keys.len()];
    let mut past: Vec<Vec<Value>> = vec![vec![None]; keys.len()];
    let mut pending: Vec<Option<Pending>> = (0..p.processes).map(|_| None).collect();
    // Process id currently driving each client slot; a crashed client is
    // replaced by a fresh process id (as in Jepsen).
    let mut ids: Vec<u64> = (0..p.processes).collect();
    let mut zombies: Vec<Event> = Vec::new(); // info write/cas that may still apply
    let mut next_value: i64 = 1;
    let mut invoked = 0usize;
    let mut t: u64 = 1000;
    let mut events = Vec::new();
    let key_idx = |k: &str| k[1..].parse::<usize>().unwrap();

    let apply = |rng: &mut Rng, e: &Event, state: &mut Vec<Value>, past: &mut Vec<Vec<Value>>, pend: Option<&mut Pending>| {
        let k = key_idx(&e.key);
        let lost = rng.chance(p.bug_rate * 0.3);
        let unchecked = rng.chance(p.bug_rate * 0.3);
        let spurious_fail = rng.chance(p.bug_rate * 0.2);
        match e.f {
            lookout_jepsen::history::FKind::Read => {
                let mut v = state[k];
                if rng.chance(p.bug_rate) {
                    let h = &past[k];
                    v = h[rng.below(h.len() as u64) as usize];
                }
                if let Some(pd) = pend {
                    pd.read_result = v;
                }
            }
            lookout_jepsen::history::FKind::Write => {
                let v = e.value.as_i64().unwrap();
                if !lost {
                    state[k] = Some(v);
                    past[k].push(Some(v));
                }
            }
            lookout_jepsen::history::FKind::Cas => {
                let a = e.value.as_array().unwrap();
                let (from, to) = (a[0].as_i64(), a[1].as_i64().unwrap());
                if spurious_fail {
                    if let Some(pd) = pend {
                        pd.cas_observed = Some(state[k]);
                    }
                } else if state[k] == from || unchecked {
                    state[k] = Some(to);
                    past[k].push(Some(to));
                    if let Some(pd) = pend {
                        pd.cas_observed = None;
                    }
                } else if let Some(pd) = pend {
                    pd.cas_observed = Some(state[k]);
                }
            }
        }
    };

    loop {
        let idle: Vec<usize> = (0..pending.len()).filter(|&i| pending[i].is_none()).collect();
        let busy: Vec<usize> = (0..pending.len()).filter(|&i| pending[i].is_some()).collect();
        if invoked >= p.ops && busy.is_empty() {
            break;
        }
        if !p.ties || rng.chance(0.7) {
            t += rng.range(1, 20);
        }
        // A zombie (info) op may take effect now.
        if !zombies.is_empty() && rng.chance(0.15) {
            let i = rng.below(zombies.len() as u64) as usize;
            let z = zombies.swap_remove(i);
            apply(rng, &z, &mut state, &mut past, None);
            continue;
        }
        let action = rng.below(3);
        if action == 0 && invoked < p.ops && !idle.is_empty() {
            let proc_ = idle[rng.below(idle.len() as u64) as usize];
            let key = &keys[rng.below(keys.len() as u64) as usize];
            let k = key_idx(key);
            let e = match rng.below(10) {
                0..=3 => Event::invoke_read(ids[proc_], key, t),
                4..=6 => {
                    next_value += 1;
                    Event::invoke_write(ids[proc_], key, next_value, t)
                }
                _ => {
                    next_value += 1;
                    let from = if rng.chance(0.6) {
                        state[k]
                    } else {
                        past[k][rng.below(past[k].len() as u64) as usize]
                    };
                    Event::invoke_cas(ids[proc_], key, from, next_value, t)
                }
            };
            events.push(e.clone());
            pending[proc_] = Some(Pending { invoke: e, applied: false, read_result: None, cas_observed: None });
            invoked += 1;
        } else if action == 1 && !busy.is_empty() {
            // Linearization point of a pending op.
            let proc_ = busy[rng.below(busy.len() as u64) as usize];
            let mut pd = pending[proc_].take().unwrap();
            if !pd.applied {
                let e = pd.invoke.clone();
                apply(rng, &e, &mut state, &mut past, Some(&mut pd));
                pd.applied = true;
            }
            pending[proc_] = Some(pd);
        } else if !busy.is_empty() {
            // Completion.
            let proc_ = busy[rng.below(busy.len() as u64) as usize];
            let pd = pending[proc_].take().unwrap();
            let e = &pd.invoke;
            use lookout_jepsen::history::FKind;
            if !pd.applied {
                // Not yet applied: fail (no effect), info (may apply later), or
                // apply now and complete.
                if rng.chance(p.fail_rate) {
                    events.push(Event::complete(e, EventKind::Fail, t));
                    continue;
                }
                if e.f != FKind::Read && rng.chance(p.info_rate) {
                    if rng.chance(0.3) {
                        // The client crashed: no completion is ever logged.
                        ids[proc_] += p.processes;
                    } else {
                        events.push(Event::complete(e, EventKind::Info, t));
                    }
                    zombies.push(e.clone());
                    continue;
                }
                pending[proc_] = Some(pd);
                continue;
            }
            if e.f != FKind::Read && rng.chance(p.info_rate) {
                events.push(Event::complete(e, EventKind::Info, t));
                continue;
            }
            match e.f {
                FKind::Read => {
                    let mut v = pd.read_result;
                    if rng.chance(p.bug_rate * 0.2) {
                        v = Some(next_value + 1); // from the future / never written
                    }
                    events.push(Event::read_ok(e, v, t));
                }
                FKind::Write => events.push(Event::complete(e, EventKind::Ok, t)),
                FKind::Cas => match pd.cas_observed {
                    None => events.push(Event::complete(e, EventKind::Ok, t)),
                    Some(obs) => {
                        let report = if rng.chance(0.5) { Some(obs) } else { None };
                        events.push(Event::cas_compare_failed(e, report, t));
                    }
                },
            }
        }
    }
    events
}

pub fn history(events: &[Event]) -> History {
    History::from_events(events).expect("simulated history pairs up")
}
