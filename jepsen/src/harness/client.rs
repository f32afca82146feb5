//! The harness's gRPC client: leader routing from hints, and the classification of every
//! outcome into `ok` / `fail` (certainly no effect) / `info` (unknown effect).
//!
//! Which errors are definite follows `lookout-server/src/errors.rs`:
//!
//! * `InvalidArgument`, `FailedPrecondition`, `ResourceExhausted` (admission), `NotFound`,
//!   `AlreadyExists`, `OutOfRange`, `Unimplemented`, `PermissionDenied`, `Unauthenticated`
//!   → definite.
//! * `Unavailable` saying "is not the leader" / "knows no leader" (openraft's
//!   `ForwardToLeader`, returned before anything is appended), "stale read refused", or a
//!   client-side *connect* error (nothing was sent) → definite.
//! * Everything else is unknown: `DeadlineExceeded`, `Cancelled`, a transport error after
//!   the request was sent, `Unavailable` "node stopped" or "write discarded by a leader
//!   change" (openraft's `LogEntryDiscarded`: the entry may have been committed elsewhere),
//!   `Internal`, `Unknown`, `DataLoss`.
//!
//! Writes carry a request id. After an unknown outcome a write may be retried with the
//! *same* id (the server applies it at most once and answers a duplicate with the first
//! application's result), until the op's deadline: a retry that answers makes the op
//! `ok` (or a compare failure), otherwise it stays `info`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lookout_proto::v1 as pb;
use lookout_proto::v1::kv_client::KvClient;
use lookout_proto::v1::screening_client::ScreeningClient;
use rand::Rng;
use rand::rngs::StdRng;
use tonic::Code;

use super::cluster::Channels;

/// Is a failed call's effect certainly nil?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrClass {
    Definite,
    Unknown,
}

pub fn classify(status: &tonic::Status) -> ErrClass {
    match status.code() {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::NotFound
        | Code::AlreadyExists
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::PermissionDenied
        | Code::Unauthenticated => ErrClass::Definite,
        Code::Unavailable => {
            let m = status.message();
            if m.contains("is not the leader")
                || m.contains("knows no leader")
                || m.contains("stale read refused")
                || is_connect_error(status)
            {
                ErrClass::Definite
            } else {
                ErrClass::Unknown
            }
        }
        _ => ErrClass::Unknown,
    }
}

/// A client-side failure to connect: the request was never sent.
pub fn is_connect_error(status: &tonic::Status) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = src {
        if e.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        src = e.source();
    }
    false
}

pub fn leader_hint(status: &tonic::Status) -> Option<u64> {
    status.metadata().get("lookout-leader-id").and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Short text for the history's `error` field.
pub fn describe(status: &tonic::Status) -> String {
    let mut m = status.message().to_string();
    if m.len() > 160 {
        let mut cut = 160;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    format!("{:?}: {m}", status.code())
}

/// The result of one logical operation (possibly several attempts).
#[derive(Debug)]
pub enum Outcome<T> {
    Ok { value: T, node: u64 },
    /// Certainly no effect.
    Fail { error: String, node: u64 },
    /// Unknown effect.
    Info { error: String, node: u64 },
}

/// Shared routing state and channels.
pub struct Router {
    pub channels: Channels,
    leader: AtomicU64,
    /// Per-attempt RPC timeout.
    pub rpc_timeout: Duration,
    /// Total time one op may take over its attempts.
    pub op_timeout: Duration,
    /// Retry writes whose outcome is unknown, with the same request id.
    pub retry_unknown: bool,
    next_request: AtomicU64,
    run_salt: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The known leader (most of the time), else a random node.
    Leader,
    /// A fixed node (follower reads, stale reads, screens "from every node").
    Node(u64),
}

impl Router {
    pub fn new(channels: Channels, rpc_timeout: Duration, op_timeout: Duration, retry_unknown: bool) -> Arc<Router> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Arc::new(Router {
            channels,
            leader: AtomicU64::new(0),
            rpc_timeout,
            op_timeout,
            retry_unknown,
            next_request: AtomicU64::new(1),
            run_salt: nanos ^ ((std::process::id() as u64) << 32),
        })
    }

    pub fn leader_hint(&self) -> u64 {
        self.leader.load(Ordering::Relaxed)
    }

    pub fn set_leader_hint(&self, id: u64) {
        self.leader.store(id, Ordering::Relaxed);
    }

    pub fn request_id(&self) -> Vec<u8> {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let mut id = vec![0u8; 16];
        id[..8].copy_from_slice(&n.to_le_bytes());
        id[8..].copy_from_slice(&self.run_salt.to_le_bytes());
        id
    }

    fn pick(&self, target: Target, rng: &mut StdRng, avoid: Option<u64>) -> u64 {
        let ids = &self.channels.ids;
        match target {
            Target::Node(n) => n,
            Target::Leader => {
                let l = self.leader_hint();
                if l != 0 && Some(l) != avoid && rng.random_bool(0.95) {
                    l
                } else {
                    let others: Vec<u64> = ids.iter().copied().filter(|i| Some(*i) != avoid).collect();
                    let pool = if others.is_empty() { ids } else { &others };
                    pool[rng.random_range(0..pool.len())]
                }
            }
        }
    }

    /// Runs `call` against `target` until it succeeds, fails definitely with no hint to
    /// follow, or the op deadline passes. `idempotent_retry`: after an unknown outcome,
    /// retrying is allowed (the call reuses its request id, or is a read).
    pub async fn run<T, F, Fut>(&self, target: Target, rng: &mut StdRng, idempotent_retry: bool, mut call: F) -> Outcome<T>
    where
        F: FnMut(tonic::transport::Channel, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + self.op_timeout;
        let mut unknown: Option<(String, u64)> = None;
        let mut node = self.pick(target, rng, None);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let t = self.rpc_timeout.min(left).max(Duration::from_millis(50));
            let fut = call(self.channels.channel(node), t);
            let res = match tokio::time::timeout(t + Duration::from_millis(300), fut).await {
                Ok(r) => r,
                Err(_) => Err(tonic::Status::deadline_exceeded("client-side timeout")),
            };
            let status = match res {
                Ok(v) => {
                    if target == Target::Leader {
                        self.set_leader_hint(node);
                    }
                    return Outcome::Ok { value: v, node };
                }
                Err(s) => s,
            };
            let class = classify(&status);
            let hint = leader_hint(&status);
            if let Some(h) = hint {
                self.set_leader_hint(h);
            } else if target == Target::Leader && self.leader_hint() == node {
                // No answer, or no hint: stop sending everything to a node that may be
                // dead, paused or cut off; a random node will point to the leader.
                self.set_leader_hint(0);
            }
            if class == ErrClass::Unknown {
                unknown = Some((describe(&status), node));
                if !(idempotent_retry && self.retry_unknown) {
                    break;
                }
            }
            let definite_final = class == ErrClass::Definite
                && !matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
            if definite_final || Instant::now() + Duration::from_millis(60) >= deadline || attempts >= 8 {
                if let Some((e, n)) = unknown {
                    return Outcome::Info { error: e, node: n };
                }
                return if class == ErrClass::Definite {
                    Outcome::Fail { error: describe(&status), node }
                } else {
                    Outcome::Info { error: describe(&status), node }
                };
            }
            // Retry: follow the hint, else (leader target) another node.
            match (target, hint) {
                (Target::Leader, Some(h)) if h != node => node = h,
                (Target::Leader, _) => {
                    tokio::time::sleep(Duration::from_millis(30 + rng.random_range(0..40))).await;
                    node = self.pick(target, rng, Some(node));
                }
                (Target::Node(_), _) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let (e, n) = unknown.expect("unknown outcome recorded");
        Outcome::Info { error: e, node: n }
    }
}

pub fn timed<T>(msg: T, t: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(t);
    r
}

pub fn enc(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

pub fn dec(b: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| format!("value {:?} is not an i64", String::from_utf8_lossy(b)))
}

/// What a KV read returned.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub value: Option<i64>,
    pub header: pb::ReadHeader,
    /// Log index of the key's last write (0 if absent).
    pub mod_index: u64,
}

pub async fn kv_get(
    router: &Router,
    rng: &mut StdRng,
    target: Target,
    key: &str,
    consistency: pb::Consistency,
) -> Outcome<ReadResult> {
    let key = key.as_bytes().to_vec();
    router
        .run(target, rng, true, |ch, t| {
            let req = pb::GetRequest {
                read: Some(pb::ReadOptions { consistency: consistency as i32, max_staleness_ms: 0 }),
                key: key.clone(),
            };
            async move {
                let r = KvClient::new(ch).get(timed(req, t)).await?.into_inner();
                let (value, mod_index) = match (&r.kv, r.found) {
                    (Some(kv), true) => (Some(dec(&kv.value).map_err(tonic::Status::internal)?), kv.mod_index),
                    _ => (None, 0),
                };
                Ok(ReadResult { value, header: r.header.unwrap_or_default(), mod_index })
            }
        })
        .await
}

pub async fn kv_put(router: &Router, rng: &mut StdRng, key: &str, value: i64) -> Outcome<u64> {
    let rid = router.request_id();
    let key = key.as_bytes().to_vec();
    router
        .run(Target::Leader, rng, true, |ch, t| {
            let req = pb::PutRequest {
                header: Some(pb::WriteHeader { request_id: rid.clone() }),
                key: key.clone(),
                value: enc(value),
            };
            async move { Ok(KvClient::new(ch).put(timed(req, t)).await?.into_inner().index) }
        })
        .await
}

/// A cas answer: `Ok(index)` if it swapped, `Err(observed)` if the compare failed.
pub type CasResult = Result<u64, Option<i64>>;

pub async fn kv_cas(router: &Router, rng: &mut StdRng, key: &str, from: Option<i64>, to: i64) -> Outcome<CasResult> {
    let rid = router.request_id();
    let key = key.as_bytes().to_vec();
    router
        .run(Target::Leader, rng, true, |ch, t| {
            let expected = match from {
                Some(v) => pb::compare_and_swap_request::Expected::ExpectedValue(enc(v)),
                None => pb::compare_and_swap_request::Expected::ExpectAbsent(true),
            };
            let req = pb::CompareAndSwapRequest {
                header: Some(pb::WriteHeader { request_id: rid.clone() }),
                key: key.clone(),
                expected: Some(expected),
                value: enc(to),
                delete: false,
            };
            async move {
                let r = KvClient::new(ch).compare_and_swap(timed(req, t)).await?.into_inner();
                if r.succeeded {
                    Ok(Ok(r.index))
                } else {
                    let observed = match (&r.current, r.found) {
                        (Some(kv), true) => Some(dec(&kv.value).map_err(tonic::Status::internal)?),
                        _ => None,
                    };
                    Ok(Err(observed))
                }
            }
        })
        .await
}

pub fn screening(ch: tonic::transport::Channel) -> ScreeningClient<tonic::transport::Channel> {
    ScreeningClient::new(ch)
}
