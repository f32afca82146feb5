//! Admission control: every request gets a deadline and an in-flight slot, or is shed.
//!
//! The deadline is the smaller of the client's `grpc-timeout` and the configured
//! `request_deadline_ms`. The in-flight bound is a semaphore; when it is exhausted the
//! request is refused at once with `ResourceExhausted` instead of queueing without bound.
//!
//! CPU-bound requests (screening: candidate lookup and scoring) also need a compute slot
//! while they compute: a few per core, so admitted work is not slowed by an unbounded
//! number of others sharing the CPU. The slot is taken after the read fence, never held
//! while waiting on it: on a node cut off from quorum, linearizable screens wait on the
//! fence (using no CPU) and must not starve the STALE screens that node can still answer.
//! Fence waiters are bounded by the in-flight slots and the read barrier's queue.
//! A request waits at most [`COMPUTE_QUEUE_WAIT`] for one, then is shed with
//! `ResourceExhausted`: under overload the node answers fewer requests, each on time,
//! instead of every request late.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::Semaphore;
use tonic::Status;

/// Longest a request waits for a compute slot before it is shed.
pub const COMPUTE_QUEUE_WAIT: Duration = Duration::from_millis(25);
/// Compute slots per core.
const COMPUTE_SLOTS_PER_CORE: usize = 4;

#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    max_deadline: Duration,
    compute: Arc<Semaphore>,
}

pub struct Ticket {
    _slot: OwnedSemaphorePermit,
    pub deadline: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, max_deadline: Duration) -> Admission {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Admission {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            max_deadline,
            compute: Arc::new(Semaphore::new(cores * COMPUTE_SLOTS_PER_CORE)),
        }
    }

    /// A compute slot for CPU-bound work, or `ResourceExhausted` after
    /// [`COMPUTE_QUEUE_WAIT`]. Hold it while computing.
    pub async fn compute_slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        match tokio::time::timeout(COMPUTE_QUEUE_WAIT, self.compute.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Status::resource_exhausted(format!(
                "overloaded: no compute slot free within {} ms",
                COMPUTE_QUEUE_WAIT.as_millis()
            ))),
        }
    }

    pub fn admit<T>(&self, req: &tonic::Request<T>) -> Result<Ticket, Status> {
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!("overloaded: {} requests in flight (max_in_flight)", self.max_in_flight))
        })?;
        let client = req.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        let deadline = client.map_or(self.max_deadline, |c| c.min(self.max_deadline));
        Ok(Ticket { _slot: slot, deadline })
    }

    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.slots.available_permits()
    }
}

impl Ticket {
    /// Runs `fut` within this ticket's deadline.
    pub async fn run<R>(&self, what: &str, fut: impl Future<Output = Result<R, Status>>) -> Result<R, Status> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(crate::errors::deadline(what, self.deadline)),
        }
    }
}

/// Parses a gRPC `grpc-timeout` header value: up to 8 digits and a unit (H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("-1m"), None);
    }

    #[test]
    fn sheds_beyond_max_in_flight() {
        let a = Admission::new(2, Duration::from_secs(5));
        let r = tonic::Request::new(());
        let t1 = a.admit(&r).unwrap();
        let _t2 = a.admit(&r).unwrap();
        assert_eq!(a.admit(&r).err().unwrap().code(), tonic::Code::ResourceExhausted);
        drop(t1);
        assert!(a.admit(&r).is_ok());
    }

    #[tokio::test]
    async fn compute_slots_shed_after_the_queue_wait() {
        let a = Admission::new(1000, Duration::from_secs(5));
        let mut held = vec![];
        while let Ok(Ok(p)) = tokio::time::timeout(Duration::from_millis(5), a.compute_slot()).await {
            held.push(p);
            assert!(held.len() <= 1024, "compute slots are unbounded");
        }
        assert!(!held.is_empty());
        let t0 = std::time::Instant::now();
        let e = a.compute_slot().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(t0.elapsed() >= COMPUTE_QUEUE_WAIT);
        held.pop();
        assert!(a.compute_slot().await.is_ok());
    }

    #[test]
    fn client_deadline_is_capped() {
        let a = Admission::new(1, Duration::from_secs(5));
        let mut r = tonic::Request::new(());
        r.metadata_mut().insert("grpc-timeout", "60S".parse().unwrap());
        assert_eq!(a.admit(&r).unwrap().deadline, Duration::from_secs(5));
        let mut r = tonic::Request::new(());
        r.metadata_mut().insert("grpc-timeout", "100m".parse().unwrap());
        assert_eq!(a.admit(&r).unwrap().deadline, Duration::from_millis(100));
    }
}
