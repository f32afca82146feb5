//! Load generation: closed-loop clients (each with one request in flight) and an
//! open-loop offered rate, both recording latency in HDR histograms and errors by
//! gRPC status. Pure timing and bookkeeping; what a request does is the caller's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The outcome class of one failed request, e.g. `Unavailable`, `ResourceExhausted`,
/// `DeadlineExceeded`, `Transport`.
pub type ErrorClass = String;

/// What one measured run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub target: String,
    pub workload: String,
    pub clients: usize,
    pub connections: usize,
    /// Measured seconds (warm-up excluded).
    pub secs: f64,
    /// Successful requests in the measured window.
    pub ok: u64,
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Failed requests in the measured window, by class.
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Attempts refused with `Unavailable` and retried within the request's deadline
    /// (leader changes), warm-up included; they are not errors unless the retries failed.
    pub retried: u64,
}

impl Figures {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub clients: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Client-side deadline of one request.
    pub deadline: Duration,
    /// Stop after this many requests (warm-up excluded) instead of after `duration`.
    pub ops_limit: Option<u64>,
}

struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<ErrorClass, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally { hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"), ok: 0, errors: BTreeMap::new() }
    }

    fn record(&mut self, r: &Result<(), ErrorClass>, latency: Duration) {
        match r {
            Ok(()) => {
                self.ok += 1;
                self.hist.saturating_record(latency.as_micros().max(1) as u64);
            }
            Err(class) => *self.errors.entry(class.clone()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.hist.add(&other.hist).expect("same bounds");
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn figures(&self, target: &str, workload: &str, spec: &LoadSpec, secs: f64) -> Figures {
        let q = |x: f64| if self.ok == 0 { 0.0 } else { self.hist.value_at_quantile(x) as f64 / 1000.0 };
        Figures {
            target: target.to_string(),
            workload: workload.to_string(),
            clients: spec.clients,
            connections: spec.connections,
            secs,
            ok: self.ok,
            qps: self.ok as f64 / secs,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            errors: self.errors.clone(),
            retried: 0,
        }
    }
}

async fn timed<Fut>(deadline: Duration, fut: Fut) -> Result<(), ErrorClass>
where
    Fut: Future<Output = Result<(), ErrorClass>>,
{
    match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err("ClientDeadline".to_string()),
    }
}

/// `spec.clients` logical clients, each issuing `op(client, seq)` back to back for the
/// warm-up and then the measured duration.
pub async fn closed_loop<F, Fut>(target: &str, workload: &str, spec: &LoadSpec, op: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ErrorClass>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = vec![];
    for client in 0..spec.clients {
        let (op, issued, limit) = (op.clone(), issued.clone(), spec.ops_limit);
        let deadline = spec.deadline;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                let measured = t0 >= measure_from;
                let done = match limit {
                    Some(limit) => measured && issued.fetch_add(1, Ordering::Relaxed) >= limit,
                    None => t0 >= end,
                };
                if done {
                    break;
                }
                let r = timed(deadline, op(client, seq)).await;
                seq += 1;
                if measured {
                    tally.record(&r, t0.elapsed());
                }
                if r.is_err() {
                    // Do not spin on a refusing target.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for t in tasks {
        total.merge(t.await.expect("load task panicked"));
    }
    let secs = match spec.ops_limit {
        Some(_) => start.elapsed().saturating_sub(spec.warmup).as_secs_f64(),
        None => spec.duration.as_secs_f64(),
    };
    total.figures(target, workload, spec, secs)
}

/// Offers `rate` requests per second for `duration`, whatever the target's latency
/// (latency counts from each request's scheduled start, so queueing is not hidden).
/// At most `max_outstanding` requests are in flight in this client; beyond that the
/// request is counted as `ClientBacklog` and not sent.
pub async fn open_loop<F, Fut>(target: &str, workload: &str, rate: f64, duration: Duration, deadline: Duration, max_outstanding: u64, op: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ErrorClass>> + Send + 'static,
{
    let op = Arc::new(op);
    let outstanding = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Result<(), ErrorClass>, Duration)>();
    let collector = tokio::spawn(async move {
        let mut tally = Tally::new();
        while let Some((r, latency)) = rx.recv().await {
            tally.record(&r, latency);
        }
        tally
    });
    let start = tokio::time::Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut backlog = 0u64;
    for seq in 0..total {
        let due = start + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(due).await;
        if outstanding.load(Ordering::Relaxed) >= max_outstanding {
            backlog += 1;
            continue;
        }
        outstanding.fetch_add(1, Ordering::Relaxed);
        let (op, tx, outstanding) = (op.clone(), tx.clone(), outstanding.clone());
        tokio::spawn(async move {
            let r = timed(deadline, op(seq as usize, seq)).await;
            let _ = tx.send((r, due.elapsed()));
            outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(tx);
    let mut tally = collector.await.expect("collector panicked");
    if backlog > 0 {
        tally.errors.insert("ClientBacklog".into(), backlog);
    }
    let spec = LoadSpec { clients: 0, connections: 0, duration, warmup: Duration::ZERO, deadline, ops_limit: None };
    tally.figures(target, workload, &spec, duration.as_secs_f64())
}

/// Classifies a tonic status by its code name.
pub fn status_class(s: &tonic::Status) -> ErrorClass {
    format!("{:?}", s.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_counts_successes_and_errors_by_class() {
        let spec = LoadSpec {
            clients: 4,
            connections: 1,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            deadline: Duration::from_millis(100),
            ops_limit: None,
        };
        let f = closed_loop("t", "w", &spec, |_c, seq| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if seq % 4 == 3 { Err("Unavailable".to_string()) } else { Ok(()) }
        })
        .await;
        assert!(f.ok > 50, "{f:?}");
        let errs = f.errors["Unavailable"];
        // One error per four requests, give or take the warm-up boundary.
        assert!(errs * 3 <= f.ok + 12 && errs * 3 + 12 >= f.ok, "{f:?}");
        assert!(f.p50_ms >= 2.0, "{f:?}");
    }

    #[tokio::test]
    async fn closed_loop_with_an_ops_limit_stops_at_the_limit() {
        let spec = LoadSpec {
            clients: 3,
            connections: 1,
            duration: Duration::from_secs(60),
            warmup: Duration::ZERO,
            deadline: Duration::from_millis(100),
            ops_limit: Some(100),
        };
        let f = closed_loop("t", "w", &spec, |_c, _s| async { Ok(()) }).await;
        assert_eq!(f.ok, 100, "{f:?}");
        assert!(f.secs < 5.0, "{f:?}");
    }

    #[tokio::test]
    async fn open_loop_latency_includes_queueing() {
        // 200/s offered to a service that takes 50 ms with at most 2 in flight: most
        // requests are refused as backlog and admitted ones still take >= 50 ms.
        let f = open_loop("t", "w", 200.0, Duration::from_millis(500), Duration::from_secs(1), 2, |_c, _s| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        })
        .await;
        assert!(f.errors.get("ClientBacklog").copied().unwrap_or(0) > 50, "{f:?}");
        assert!(f.p50_ms >= 50.0, "{f:?}");
    }
}
