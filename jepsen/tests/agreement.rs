//! Agreement with porcupine (the `porcupine-rs` port) on 10,000+ seeded random
//! small histories, some with `info` ops (porcupine handles those as ops
//! whose return is at +∞, which it may linearize after everything else —
//! i.e. "never happened"), some with ties in timestamps, from a register that
//! is correct or buggy.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Rng, SimParams, simulate};
use lookout_jepsen::checker::{CheckOptions, CheckResult, RegisterModel, linearizable_with};
use lookout_jepsen::history::{Completion, History, Op, OpFn, Value};
use porcupine_rs::{CheckResult as PResult, Model as PModel, Operation};

/// The register model again, written independently for porcupine.
#[derive(Clone, Debug)]
struct PorcRegister;

#[derive(Clone, Debug)]
enum PKind {
    Read(Value),
    Write(i64),
    CasOk { from: Value, to: i64 },
    CasFailed { from: Value, observed: Option<Value> },
    InfoWrite(i64),
    InfoCas { from: Value, to: i64 },
}

#[derive(Clone, Debug)]
struct POp {
    key: String,
    kind: PKind,
}

impl PModel for PorcRegister {
    type State = Value;
    type Op = POp;
    type Metadata = ();

    fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
        let mut by_key: BTreeMap<String, Vec<Operation<Self>>> = BTreeMap::new();
        for op in history {
            by_key.entry(op.op.key.clone()).or_default().push(op.clone());
        }
        by_key.into_values().collect()
    }

    fn init() -> Value {
        None
    }

    fn step(state: &Value, op: &POp) -> (bool, Value) {
        match &op.kind {
            PKind::Read(v) => (v == state, *state),
            PKind::Write(v) | PKind::InfoWrite(v) => (true, Some(*v)),
            PKind::CasOk { from, to } => {
                if from == state {
                    (true, Some(*to))
                } else {
                    (false, *state)
                }
            }
            PKind::CasFailed { from, observed } => {
                let ok = from != state && observed.is_none_or(|o| o == *state);
                (ok, *state)
            }
            PKind::InfoCas { from, to } => {
                if from == state {
                    (true, Some(*to))
                } else {
                    (true, *state)
                }
            }
        }
    }
}

fn to_porcupine(h: &History) -> Vec<Operation<PorcRegister>> {
    to_porcupine_ops(h.ops.iter())
}

fn to_porcupine_ops<'a>(ops: impl Iterator<Item = &'a Op>) -> Vec<Operation<PorcRegister>> {
    let mut out = Vec::new();
    for op in ops {
        let kind = match (&op.f, &op.complete) {
            (_, Completion::Fail { .. }) => continue,
            (OpFn::Read { .. }, Completion::Ok { read: Some(v) }) if op.stale.is_none() => PKind::Read(*v),
            (OpFn::Read { .. }, _) => continue,
            (OpFn::Write { value, .. }, Completion::Ok { .. }) => PKind::Write(*value),
            (OpFn::Write { value, .. }, Completion::Info) => PKind::InfoWrite(*value),
            (OpFn::Cas { from, to, .. }, Completion::Ok { .. }) => PKind::CasOk { from: *from, to: *to },
            (OpFn::Cas { from, .. }, Completion::CasFailed { observed }) => {
                PKind::CasFailed { from: *from, observed: *observed }
            }
            (OpFn::Cas { from, to, .. }, Completion::Info) => PKind::InfoCas { from: *from, to: *to },
            (OpFn::Write { .. }, Completion::CasFailed { .. }) => unreachable!(),
        };
        out.push(Operation {
            client_id: Some(op.process as u32),
            call_time: op.invoke_ns as i64,
            return_time: op.complete_ns.map_or(i64::MAX, |c| c as i64),
            op: POp { key: op.key().to_string(), kind },
            metadata: None,
        });
    }
    out
}

#[test]
fn agrees_with_porcupine_on_random_histories() {
    const N: u64 = 12_000;
    let opts = CheckOptions { timeout: Duration::from_secs(10), threads: 1, ..Default::default() };
    let (mut valid, mut invalid, mut with_info, mut with_cas_failed) = (0u64, 0u64, 0u64, 0u64);
    let mut disagreements = Vec::new();
    let start = Instant::now();
    for seed in 0..N {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x1234_5678);
        let params = SimParams {
            keys: rng.range(1, 3),
            processes: rng.range(2, 4),
            ops: rng.range(1, 12) as usize,
            bug_rate: if rng.chance(0.4) { 0.0 } else { [0.1, 0.3, 0.6][rng.below(3) as usize] },
            info_rate: if rng.chance(0.5) { 0.0 } else { 0.2 },
            fail_rate: if rng.chance(0.5) { 0.0 } else { 0.15 },
            ties: rng.chance(0.3),
        };
        let events = simulate(&mut rng, &params);
        let h = common::history(&events);
        if h.ops.iter().any(|o| o.is_info()) {
            with_info += 1;
        }
        if h.ops.iter().any(|o| matches!(o.complete, Completion::CasFailed { .. })) {
            with_cas_failed += 1;
        }
        let ours = linearizable_with(&h, &RegisterModel, &opts).result;
        let theirs = porcupine_rs::check_operations_timeout(&to_porcupine(&h), Duration::from_secs(10));
        let agree = match (&ours, &theirs) {
            (CheckResult::Valid, PResult::Ok) => {
                valid += 1;
                true
            }
            (CheckResult::Invalid(c), PResult::Illegal) => {
                invalid += 1;
                // The reported core must itself be non-linearizable for porcupine.
                let core: Vec<&Op> = c.core_ops.iter().map(|&i| &h.ops[i]).collect();
                let core_p = to_porcupine_ops(core.into_iter());
                let core_verdict = porcupine_rs::check_operations_timeout(&core_p, Duration::from_secs(10));
                if core_verdict != PResult::Illegal {
                    disagreements.push(format!("seed {seed}: core {:?} is {core_verdict:?} for porcupine", c.core_ops));
                }
                // And it lies within the invalid key.
                c.core_ops.iter().all(|&i| h.ops[i].key() == c.key)
            }
            _ => false,
        };
        if !agree {
            disagreements.push(format!("seed {seed}: ours {ours:?}, porcupine {theirs:?}\n{events:#?}"));
        }
    }
    println!(
        "agreement: {N} histories in {:?}: {valid} valid, {invalid} invalid (both checkers); {with_info} with info ops, {with_cas_failed} with failed-compare cas; {} disagreements",
        start.elapsed(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{} disagreements, first:\n{}", disagreements.len(), disagreements[0]);
    assert!(valid > N / 5 && invalid > N / 10, "the generator must produce both kinds: {valid} valid, {invalid} invalid");
    assert!(with_info > N / 10, "too few histories with info ops: {with_info}");
}
