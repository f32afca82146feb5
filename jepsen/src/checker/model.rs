//! Sequential specifications the linearizability checker checks against.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use crate::history::{Completion, Op, OpFn, Value};

/// A sequential specification of one partition (one key) of the history.
///
/// The checker partitions the history by [`Op::key`], keeps the ops for which
/// [`Model::relevant`] holds, and searches for a linearization: an order of
/// the ops, consistent with real time, in which every op is accepted by
/// [`Model::step`]. `info` ops (unknown outcome) may also be left out of the
/// order entirely ("never happened").
pub trait Model: Sync {
    type State: Clone + Eq + Hash + Debug + Send;

    /// State of a partition before any op.
    fn init(&self) -> Self::State;

    /// Whether `op` constrains the search at all (e.g. failed ops do not).
    fn relevant(&self, op: &Op) -> bool;

    /// Apply `op` (with its observed outcome) to `state`: `None` if the
    /// outcome is impossible in that state, else the next state.
    fn step(&self, state: &Self::State, op: &Op) -> Option<Self::State>;

    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }

    /// Used by counterexample minimisation: may `subset` (a sub-history of the
    /// partition `full`) serve as a witness, i.e. does "subset is not
    /// linearizable" imply "full is not linearizable"? The default, `false`,
    /// disables minimisation.
    fn is_witness(&self, _full: &[&Op], _subset: &[&Op]) -> bool {
        false
    }
}

/// A read/write/cas register per key; state = current value (`None` = absent).
///
/// * read → `v`: state must be `v`.
/// * write `v` (ok or info): state becomes `v`.
/// * cas `from→to` `CasOk`: state must be `from`; becomes `to`.
/// * cas `CasFailed{observed: Some(o)}`: state must be `o`, and `o ≠ from`.
/// * cas `CasFailed{observed: None}`: state must differ from `from`.
/// * cas `info`: if it takes effect when state = `from`, state becomes `to`,
///   otherwise nothing changes (it may also never take effect).
/// * Excluded: failed ops, reads that did not return `ok`, stale reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Value;

    fn init(&self) -> Value {
        None
    }

    fn relevant(&self, op: &Op) -> bool {
        match (&op.f, &op.complete) {
            (_, Completion::Fail { .. }) => false,
            (OpFn::Read { .. }, Completion::Ok { read: Some(_) }) => op.stale.is_none(),
            (OpFn::Read { .. }, _) => false,
            (OpFn::Write { .. }, Completion::CasFailed { .. }) => false,
            _ => true,
        }
    }

    fn step(&self, state: &Value, op: &Op) -> Option<Value> {
        match (&op.f, &op.complete) {
            (OpFn::Read { .. }, Completion::Ok { read: Some(v) }) => (state == v).then_some(*state),
            (OpFn::Read { .. }, _) => Some(*state),
            (OpFn::Write { value, .. }, _) => Some(Some(*value)),
            (OpFn::Cas { from, to, .. }, Completion::Ok { .. }) => (state == from).then_some(Some(*to)),
            (OpFn::Cas { from, .. }, Completion::CasFailed { observed: Some(o) }) => {
                (state == o && o != from).then_some(*state)
            }
            (OpFn::Cas { from, .. }, Completion::CasFailed { observed: None }) => (state != from).then_some(*state),
            (OpFn::Cas { from, to, .. }, Completion::Info) => Some(if state == from { Some(*to) } else { *state }),
            (OpFn::Cas { .. }, Completion::Fail { .. }) => Some(*state),
        }
    }

    fn describe_state(&self, state: &Value) -> String {
        match state {
            None => "absent".to_string(),
            Some(v) => v.to_string(),
        }
    }

    /// A sub-history is a witness when every value it observes (a read's
    /// result, a cas's `from`, a failed cas's `observed`) has all of its
    /// writers present, and, if it has a failed cas with an unreported
    /// observation (which observes "anything but `from`"), all writers at all.
    /// Then any linearization of the full history restricted to the subset is
    /// a linearization of the subset, so "subset not linearizable" implies
    /// "full not linearizable".
    fn is_witness(&self, full: &[&Op], subset: &[&Op]) -> bool {
        let writers = |ops: &[&Op]| {
            let mut m: HashMap<i64, usize> = HashMap::new();
            for op in ops {
                if op.may_write()
                    && let Some(v) = op.f.written_value() {
                        *m.entry(v).or_default() += 1;
                    }
            }
            m
        };
        let all = writers(full);
        let have = writers(subset);
        let mut needs_all = false;
        for op in subset {
            let observed: Option<Value> = match (&op.f, &op.complete) {
                (OpFn::Read { .. }, Completion::Ok { read: Some(v) }) => Some(*v),
                (OpFn::Cas { from, .. }, Completion::Ok { .. }) => Some(*from),
                (OpFn::Cas { .. }, Completion::CasFailed { observed: Some(o) }) => Some(*o),
                (OpFn::Cas { .. }, Completion::CasFailed { observed: None }) => {
                    needs_all = true;
                    None
                }
                _ => None,
            };
            if let Some(Some(v)) = observed
                && have.get(&v).copied().unwrap_or(0) != all.get(&v).copied().unwrap_or(0) {
                    return false;
                }
        }
        !needs_all || all == have
    }
}
