//! History model: the JSON-lines event log the harness writes, and the paired
//! operations the checkers work on.
//!
//! # Event records (one JSON object per line)
//!
//! ```json
//! {"process":1,"kind":"invoke","f":"write","key":"k","value":5,"time_ns":100}
//! {"process":1,"kind":"ok","f":"write","key":"k","value":5,"time_ns":180,"index":42}
//! {"process":2,"kind":"invoke","f":"read","key":"k","time_ns":120}
//! {"process":2,"kind":"ok","f":"read","key":"k","value":5,"time_ns":200}
//! {"process":3,"kind":"invoke","f":"cas","key":"k","value":[5,6],"time_ns":210}
//! {"process":3,"kind":"fail","f":"cas","key":"k","value":[5,6],"time_ns":260,"error":"compare failed","observed":7}
//! {"process":4,"kind":"invoke","f":"read","key":"k","time_ns":300,"stale":{}}
//! {"process":4,"kind":"ok","f":"read","key":"k","value":5,"time_ns":310,"stale":{"staleness_ms":40,"applied_index":42}}
//! ```
//!
//! * `value`: a write's value (an integer, unique across the run); a cas's
//!   `[from, to]` (`from` may be `null`: "only if absent"); a read's result on
//!   its `ok` completion (`null` = key absent). Ignored elsewhere.
//! * `kind`: `invoke`, then exactly one of `ok` (took effect between invoke and
//!   completion), `fail` (certainly had no effect), `info` (unknown: may take
//!   effect at any point after its invocation, or never). An invocation with no
//!   completion by the end of the log counts as `info`.
//! * A cas whose compare failed is a `fail` with `"error":"compare failed"` and,
//!   if the server said what it found, `"observed": <value or null>`. Such a
//!   cas had no effect but *observed* the register, so it is kept
//!   ([`Completion::CasFailed`]); every other `fail` is dropped.
//! * `index`: the raft log index the server reported for an `ok` write/cas
//!   (or the applied index a read reflected).
//! * `stale`: present on reads made with STALE consistency; its completion
//!   carries `staleness_ms` and `applied_index`. Stale reads are excluded from
//!   the linearizability check and checked by [`crate::checker::stale`].
//! * Lines that are blank or start with `#` are ignored.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A register value: `None` = key absent.
pub type Value = Option<i64>;

/// Error text that marks a `fail`ed cas as "the compare failed" (it observed
/// the register) rather than "certainly no effect for an unknown reason".
pub const CAS_COMPARE_FAILED: &str = "compare failed";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FKind {
    Read,
    Write,
    Cas,
}

/// What a stale read reported about itself. Both fields are optional so that
/// the invocation can carry `"stale":{}` to mark the read as a stale read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_index: Option<u64>,
}

/// One line of the history log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub process: u64,
    pub kind: EventKind,
    pub f: FKind,
    pub key: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    pub time_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a cas whose compare failed: what the server found. Absent = not
    /// reported; `null` = key absent.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

impl Event {
    fn base(process: u64, kind: EventKind, f: FKind, key: &str, time_ns: u64) -> Event {
        Event {
            process,
            kind,
            f,
            key: key.to_string(),
            value: serde_json::Value::Null,
            time_ns,
            index: None,
            stale: None,
            error: None,
            observed: None,
        }
    }
    pub fn invoke_read(process: u64, key: &str, time_ns: u64) -> Event {
        Event::base(process, EventKind::Invoke, FKind::Read, key, time_ns)
    }
    pub fn invoke_write(process: u64, key: &str, value: i64, time_ns: u64) -> Event {
        Event { value: value.into(), ..Event::base(process, EventKind::Invoke, FKind::Write, key, time_ns) }
    }
    pub fn invoke_cas(process: u64, key: &str, from: Value, to: i64, time_ns: u64) -> Event {
        Event {
            value: serde_json::json!([from, to]),
            ..Event::base(process, EventKind::Invoke, FKind::Cas, key, time_ns)
        }
    }
    /// A completion event (`ok`/`fail`/`info`) for an invocation.
    pub fn complete(invoke: &Event, kind: EventKind, time_ns: u64) -> Event {
        Event { kind, time_ns, ..invoke.clone() }
    }
    /// An `ok` completion of a read that returned `value`.
    pub fn read_ok(invoke: &Event, value: Value, time_ns: u64) -> Event {
        Event { value: serde_json::json!(value), ..Event::complete(invoke, EventKind::Ok, time_ns) }
    }
    /// A `fail` completion of a cas whose compare failed.
    pub fn cas_compare_failed(invoke: &Event, observed: Option<Value>, time_ns: u64) -> Event {
        Event {
            error: Some(CAS_COMPARE_FAILED.to_string()),
            observed,
            ..Event::complete(invoke, EventKind::Fail, time_ns)
        }
    }
}

/// The function an operation applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpFn {
    Read { key: String },
    Write { key: String, value: i64 },
    Cas { key: String, from: Value, to: i64 },
}

impl OpFn {
    pub fn key(&self) -> &str {
        match self {
            OpFn::Read { key } | OpFn::Write { key, .. } | OpFn::Cas { key, .. } => key,
        }
    }
    /// The value this op writes if it takes effect (write, or a successful cas).
    pub fn written_value(&self) -> Option<i64> {
        match self {
            OpFn::Read { .. } => None,
            OpFn::Write { value, .. } => Some(*value),
            OpFn::Cas { to, .. } => Some(*to),
        }
    }
}

/// How an operation completed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Completion {
    /// Took effect between invoke and completion. For a read, `read` is the
    /// value returned; for a write it is `None`; for a cas it is `None` and the
    /// cas succeeded (`CasOk`).
    Ok { read: Option<Value> },
    /// A cas whose compare failed: it had no effect, but observed a value
    /// different from `from` (`observed`, when the server reported it).
    CasFailed { observed: Option<Value> },
    /// Certainly had no effect.
    Fail { error: Option<String> },
    /// Unknown outcome; never completes (completion time = +∞).
    Info,
}

/// A stale read's self-description.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StaleRead {
    pub staleness_ms: Option<u64>,
    pub applied_index: Option<u64>,
}

/// A paired invoke/completion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// Position in [`History::ops`].
    pub id: usize,
    pub process: u64,
    pub f: OpFn,
    pub invoke_ns: u64,
    pub complete: Completion,
    /// `None` for `info` ops (never complete).
    pub complete_ns: Option<u64>,
    /// Raft log index the server reported with an `ok` completion.
    pub index: Option<u64>,
    /// `Some` for reads issued with STALE consistency.
    pub stale: Option<StaleRead>,
}

impl Op {
    pub fn key(&self) -> &str {
        self.f.key()
    }
    pub fn is_info(&self) -> bool {
        matches!(self.complete, Completion::Info)
    }
    pub fn is_ok(&self) -> bool {
        matches!(self.complete, Completion::Ok { .. })
    }
    pub fn is_read(&self) -> bool {
        matches!(self.f, OpFn::Read { .. })
    }
    /// The value a read returned (only for `ok` reads).
    pub fn read_value(&self) -> Option<Value> {
        match (&self.f, &self.complete) {
            (OpFn::Read { .. }, Completion::Ok { read }) => *read,
            _ => None,
        }
    }
    /// May this op have changed the register? (`ok` or `info` write/cas.)
    pub fn may_write(&self) -> bool {
        !self.is_read() && matches!(self.complete, Completion::Ok { .. } | Completion::Info)
    }
    /// Completion time, `u64::MAX` for `info`.
    pub fn end_ns(&self) -> u64 {
        self.complete_ns.unwrap_or(u64::MAX)
    }
    /// Short human description, e.g. `write 5`, `read → 5`, `cas 1→2 ok`.
    pub fn describe(&self) -> String {
        let v = |v: &Value| v.map_or("∅".to_string(), |x| x.to_string());
        let outcome = match &self.complete {
            Completion::Ok { .. } => "ok".to_string(),
            Completion::CasFailed { observed: Some(o) } => format!("compare failed, saw {}", v(o)),
            Completion::CasFailed { observed: None } => "compare failed".to_string(),
            Completion::Fail { error: Some(e) } => format!("fail: {e}"),
            Completion::Fail { error: None } => "fail".to_string(),
            Completion::Info => "info".to_string(),
        };
        let stale = if self.stale.is_some() { " (stale)" } else { "" };
        match &self.f {
            OpFn::Read { key } => match &self.complete {
                Completion::Ok { read: Some(r) } => format!("read {key} → {}{stale}", v(r)),
                _ => format!("read {key} {outcome}{stale}"),
            },
            OpFn::Write { key, value } => format!("write {key} {value} {outcome}"),
            OpFn::Cas { key, from, to } => format!("cas {key} {}→{to} {outcome}", v(from)),
        }
    }
}

/// A complete history: operations in invocation order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line (or event position) the error is about.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history line {}: {}", self.line, self.message)
    }
}
impl std::error::Error for HistoryError {}

fn parse_value(v: &serde_json::Value) -> Result<Value, String> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| format!("value {n} is not an i64")),
        serde_json::Value::String(s) => s.parse::<i64>().map(Some).map_err(|_| format!("value {s:?} is not an i64")),
        other => Err(format!("value {other} is not an integer or null")),
    }
}

fn parse_fn(e: &Event) -> Result<OpFn, String> {
    let key = e.key.clone();
    Ok(match e.f {
        FKind::Read => OpFn::Read { key },
        FKind::Write => match parse_value(&e.value)? {
            Some(value) => OpFn::Write { key, value },
            None => return Err("write without a value".into()),
        },
        FKind::Cas => match &e.value {
            serde_json::Value::Array(a) if a.len() == 2 => {
                let from = parse_value(&a[0])?;
                let to = parse_value(&a[1])?.ok_or("cas to null")?;
                OpFn::Cas { key, from, to }
            }
            other => return Err(format!("cas value must be [from, to], got {other}")),
        },
    })
}

impl History {
    /// Pair invoke/completion events per process. Events must be in log
    /// order; each process has at most one outstanding invocation.
    pub fn from_events(events: &[Event]) -> Result<History, HistoryError> {
        let mut ops: Vec<Op> = Vec::new();
        let mut open: HashMap<u64, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let err = |message: String| HistoryError { line: i + 1, message };
            match e.kind {
                EventKind::Invoke => {
                    if let Some(&prev) = open.get(&e.process) {
                        return Err(err(format!(
                            "process {} invoked while op invoked at {} ns is outstanding",
                            e.process, ops[prev].invoke_ns
                        )));
                    }
                    let f = parse_fn(e).map_err(err)?;
                    let id = ops.len();
                    ops.push(Op {
                        id,
                        process: e.process,
                        f,
                        invoke_ns: e.time_ns,
                        complete: Completion::Info,
                        complete_ns: None,
                        index: None,
                        stale: e.stale.map(|s| StaleRead { staleness_ms: s.staleness_ms, applied_index: s.applied_index }),
                    });
                    open.insert(e.process, id);
                }
                kind => {
                    let Some(id) = open.remove(&e.process) else {
                        return Err(err(format!("{kind:?} for process {} with no outstanding invocation", e.process)));
                    };
                    let op = &mut ops[id];
                    let fk = match op.f {
                        OpFn::Read { .. } => FKind::Read,
                        OpFn::Write { .. } => FKind::Write,
                        OpFn::Cas { .. } => FKind::Cas,
                    };
                    if fk != e.f || op.key() != e.key {
                        return Err(err(format!(
                            "completion {:?} {} does not match invocation {:?} {}",
                            e.f,
                            e.key,
                            fk,
                            op.key()
                        )));
                    }
                    if e.time_ns < op.invoke_ns {
                        return Err(err(format!("completion at {} ns before its invocation at {} ns", e.time_ns, op.invoke_ns)));
                    }
                    if let Some(s) = e.stale {
                        let cur = op.stale.unwrap_or_default();
                        op.stale = Some(StaleRead {
                            staleness_ms: s.staleness_ms.or(cur.staleness_ms),
                            applied_index: s.applied_index.or(cur.applied_index),
                        });
                    }
                    match kind {
                        EventKind::Ok => {
                            let read = if fk == FKind::Read { Some(parse_value(&e.value).map_err(err)?) } else { None };
                            op.complete = Completion::Ok { read };
                            op.complete_ns = Some(e.time_ns);
                            op.index = e.index;
                        }
                        EventKind::Fail => {
                            let compare_failed = fk == FKind::Cas
                                && (e.observed.is_some()
                                    || e.error.as_deref().is_some_and(|s| s.trim().eq_ignore_ascii_case(CAS_COMPARE_FAILED)));
                            op.complete = if compare_failed {
                                Completion::CasFailed { observed: e.observed }
                            } else {
                                Completion::Fail { error: e.error.clone() }
                            };
                            op.complete_ns = Some(e.time_ns);
                        }
                        EventKind::Info => {}
                        EventKind::Invoke => unreachable!(),
                    }
                }
            }
        }
        Ok(History { ops })
    }

    /// Parse a JSON-lines log (blank lines and `#` comments ignored).
    pub fn parse_jsonl(text: &str) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let e: Event = serde_json::from_str(t).map_err(|e| HistoryError { line: n + 1, message: e.to_string() })?;
            events.push(e);
            lines.push(n + 1);
        }
        History::from_events(&events).map_err(|e| HistoryError { line: lines.get(e.line - 1).copied().unwrap_or(0), ..e })
    }

    pub fn read_jsonl(path: &std::path::Path) -> Result<History, Box<dyn std::error::Error + Send + Sync>> {
        let text = std::fs::read_to_string(path)?;
        Ok(History::parse_jsonl(&text)?)
    }

    /// Build a history directly from ops (ids are reassigned to positions).
    pub fn from_ops(mut ops: Vec<Op>) -> History {
        for (i, op) in ops.iter_mut().enumerate() {
            op.id = i;
        }
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Distinct keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.ops.iter().map(|o| o.key().to_string()).collect();
        k.sort();
        k.dedup();
        k
    }

    /// Earliest invocation time (0 for an empty history).
    pub fn start_ns(&self) -> u64 {
        self.ops.iter().map(|o| o.invoke_ns).min().unwrap_or(0)
    }
}
