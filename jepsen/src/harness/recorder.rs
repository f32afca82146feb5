//! Records every operation: invoke and completion times from one monotonic clock, in the
//! checker's JSON-lines format (`history.jsonl`), plus a per-op summary used for the
//! per-phase availability and "did the fault bite" figures.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::history::{Event, EventKind};

/// How an op ended, for statistics (a read that timed out counts as `Info` here even
/// though the checker drops it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Debug)]
pub struct OpSummary {
    pub f: &'static str,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    pub node: u64,
    /// Part of the final (post-heal) checks rather than the workload.
    pub final_phase: bool,
}

struct Inner {
    out: Option<std::io::BufWriter<std::fs::File>>,
    events: Vec<Event>,
}

/// The run's clock and logs.
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
    summaries: Mutex<Vec<OpSummary>>,
    aux: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    next_process: AtomicU64,
}

impl Recorder {
    /// `history`: where to stream `history.jsonl`; `aux`: a second JSON-lines log for
    /// workloads whose ops are not register ops (visibility).
    pub fn new(history: Option<&Path>, aux: Option<&Path>) -> std::io::Result<Recorder> {
        let open = |p: Option<&Path>| -> std::io::Result<Option<std::io::BufWriter<std::fs::File>>> {
            Ok(match p {
                Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => None,
            })
        };
        Ok(Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner { out: open(history)?, events: Vec::new() }),
            summaries: Mutex::new(Vec::new()),
            aux: Mutex::new(open(aux)?),
            next_process: AtomicU64::new(0),
        })
    }

    /// Nanoseconds since the run started (the history's clock).
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start_instant(&self) -> Instant {
        self.start
    }

    /// A fresh logical process id.
    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs `ev` with the current time (taken under the lock, so the log is in time order).
    pub fn log(&self, mut ev: Event, node: Option<u64>) -> Event {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ev.time_ns = self.now_ns();
        if let Some(out) = inner.out.as_mut() {
            let mut v = serde_json::to_value(&ev).expect("event serialises");
            if let (Some(n), Some(o)) = (node, v.as_object_mut()) {
                o.insert("node".into(), n.into());
            }
            let _ = writeln!(out, "{v}");
        }
        inner.events.push(ev.clone());
        ev
    }

    /// Logs an invocation now.
    pub fn invoke(&self, ev: Event) -> Event {
        self.log(ev, None)
    }

    /// Logs the completion of `invoke` with `kind`, customised by `edit`.
    pub fn complete(&self, invoke: &Event, kind: EventKind, node: u64, edit: impl FnOnce(&mut Event)) -> Event {
        let mut ev = Event::complete(invoke, kind, 0);
        edit(&mut ev);
        self.log(ev, Some(node))
    }

    pub fn summary(&self, s: OpSummary) {
        self.summaries.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }

    /// Appends one line to the auxiliary log.
    pub fn aux(&self, v: serde_json::Value) {
        if let Some(out) = self.aux.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(out, "{v}");
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }

    pub fn summaries(&self) -> Vec<OpSummary> {
        self.summaries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn flush(&self) {
        if let Some(o) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).out.as_mut() {
            let _ = o.flush();
        }
        if let Some(o) = self.aux.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = o.flush();
        }
    }
}
