//! Rust client for Lookout, the Raft-replicated key-value store.
//!
//! A [`Client`] is given the client addresses of some or all nodes. It finds the
//! leader by itself (following the `lookout-leader-addr` hint a follower returns),
//! retries transient failures with jittered exponential backoff inside one overall
//! deadline per call, and gives every write a random 16-byte request id that is
//! reused on each retry, so a write is applied once however often it is re-sent.
//! Clones of a client share connections and leader knowledge; it is cheap to clone
//! and safe to use from many tasks.
//!
//! Besides keys and values it speaks the screening API (`lookout.v1.Screening`):
//! lookouts ([`Client::put_lookout`], [`Client::retire_lookout`],
//! [`Client::get_lookout`], [`Client::list_lookouts`]), travellers, screening
//! ([`Client::screen`], [`Client::screen_manifest`]) and bulk ingest
//! ([`Client::ingest_lookouts`], [`Client::ingest_travellers`]). Records travel as
//! the protobuf types in [`proto`]; `lookout-wire` converts them to and from the
//! domain types of `lookout-screening`.
//!
//! ```no_run
//! use std::time::Duration;
//! use lookout_client::{Client, ClientOptions, Expected, NewValue, ReadOpts};
//!
//! # async fn demo() -> Result<(), lookout_client::ClientError> {
//! let client = Client::new(
//!     vec!["127.0.0.1:7101".into(), "127.0.0.1:7102".into(), "127.0.0.1:7103".into()],
//!     ClientOptions { deadline: Duration::from_secs(2), ..ClientOptions::default() },
//! )?;
//!
//! let put = client.put("screening/alice", "cleared").await?;
//! println!("written at index {} (version {})", put.index, put.version);
//!
//! let got = client.get("screening/alice", ReadOpts::linearizable()).await?;
//! if let Some(kv) = got.kv.filter(|_| got.found) {
//!     println!("{} (version {})", String::from_utf8_lossy(&kv.value), kv.version);
//! }
//!
//! // Only flag if nobody changed it since we read version 1.
//! let cas = client
//!     .compare_and_swap("screening/alice", Expected::Version(1), NewValue::Put(b"flagged".to_vec()))
//!     .await?;
//! assert!(cas.succeeded);
//!
//! // A read from one node's local state, at most 500 ms stale.
//! let local = client.for_endpoint("127.0.0.1:7103")?;
//! let stale = local.get("screening/alice", ReadOpts::stale(Some(Duration::from_millis(500)))).await?;
//! if let Some(h) = stale.header {
//!     println!("node {} had applied index {} ({} ms stale at most)", h.served_by, h.applied_index, h.staleness_ms);
//! }
//! # Ok(()) }
//! ```

mod error;
pub mod retry;
mod screening;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

pub use error::ClientError;
pub use lookout_proto::v1 as proto;
pub use proto::CompareAndSwapResponse;
pub use proto::DeleteResponse;
pub use proto::GetResponse;
pub use proto::KeyValue;
pub use proto::MembershipResponse;
pub use proto::NodeStatus;
pub use proto::PutResponse;
pub use proto::RangeResponse;
pub use proto::ReadHeader;
pub use proto::Role;
pub use retry::Backoff;
pub use retry::LeaderHint;
pub use screening::CURRENT_VERSION_KEY;
pub use screening::LookoutFilter;
pub use screening::MAX_MANIFEST_PASSENGERS;

use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;
use retry::Disposition;

/// How a [`Client`] behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Overall time allowed for one call, retries included. Each attempt is sent
    /// with a gRPC timeout equal to what remains. Default 5 s.
    pub deadline: Duration,
    /// If set, caps each attempt: an endpoint that has not answered within this
    /// is given up on for this attempt and the call moves on to the next
    /// endpoint (a write keeps its request id, so this is safe). Default `None`:
    /// an attempt may use the whole remaining deadline, so a hung (e.g.
    /// SIGSTOPped) leader costs one call its deadline before the client moves on.
    pub attempt_timeout: Option<Duration>,
    /// Time allowed to open a connection to one endpoint. Default 1 s.
    pub connect_timeout: Duration,
    /// Most retries after the first attempt (the deadline usually ends a call
    /// first). Default 64.
    pub max_retries: u32,
    /// Delay between retries. Default 10 ms doubling to 500 ms, jittered.
    pub backoff: Backoff,
    /// Largest response accepted, in bytes (a range page of large values can
    /// exceed gRPC's usual 4 MiB). Default 256 MiB.
    pub max_response_bytes: usize,
    /// Send every call to the first endpoint only and never follow a leader hint:
    /// a refusal that names a leader is returned at once. Retries of transient
    /// failures still go to the same endpoint. Default false.
    pub pin_endpoint: bool,
    /// Overall time allowed for one bulk-ingest stream
    /// ([`Client::ingest_lookouts`], [`Client::ingest_travellers`]), which can
    /// legitimately run far longer than `deadline`. Default `None`: no limit (a
    /// dead or frozen leader is still detected by HTTP/2 keep-alive, ~10 s).
    pub ingest_deadline: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            deadline: Duration::from_secs(5),
            attempt_timeout: None,
            connect_timeout: Duration::from_secs(1),
            max_retries: 64,
            backoff: Backoff::default(),
            max_response_bytes: 256 * 1024 * 1024,
            pin_endpoint: false,
            ingest_deadline: None,
        }
    }
}

/// Read consistency; see `Consistency` in `kv.proto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// A ReadIndex barrier confirmed by a quorum, then a local read.
    #[default]
    Linearizable,
    /// Served under the leader's lease, without a quorum round trip.
    Lease,
    /// Served from the receiving node's local state.
    Stale,
}

impl Consistency {
    pub fn to_proto(self) -> proto::Consistency {
        match self {
            Consistency::Linearizable => proto::Consistency::Linearizable,
            Consistency::Lease => proto::Consistency::Lease,
            Consistency::Stale => proto::Consistency::Stale,
        }
    }

    pub fn from_proto(c: proto::Consistency) -> Self {
        match c {
            proto::Consistency::Linearizable => Consistency::Linearizable,
            proto::Consistency::Lease => Consistency::Lease,
            proto::Consistency::Stale => Consistency::Stale,
        }
    }

    /// Lower-case name: `linearizable`, `lease`, `stale`.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Lease => "lease",
            Consistency::Stale => "stale",
        }
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "linearizable" | "linear" => Ok(Consistency::Linearizable),
            "lease" => Ok(Consistency::Lease),
            "stale" => Ok(Consistency::Stale),
            other => Err(format!(
                "unknown consistency {other:?} (linearizable, lease, stale)"
            )),
        }
    }
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOpts {
    pub consistency: Consistency,
    /// STALE only: the serving node refuses (`Unavailable`) if its data may be
    /// older than this. `None` = no bound.
    pub max_staleness: Option<Duration>,
}

impl ReadOpts {
    pub fn linearizable() -> Self {
        ReadOpts {
            consistency: Consistency::Linearizable,
            max_staleness: None,
        }
    }

    pub fn lease() -> Self {
        ReadOpts {
            consistency: Consistency::Lease,
            max_staleness: None,
        }
    }

    pub fn stale(max_staleness: Option<Duration>) -> Self {
        ReadOpts {
            consistency: Consistency::Stale,
            max_staleness,
        }
    }

    fn to_proto(self) -> proto::ReadOptions {
        proto::ReadOptions {
            consistency: self.consistency.to_proto() as i32,
            // A non-zero bound below 1 ms rounds up: 0 would mean "no bound".
            max_staleness_ms: self
                .max_staleness
                .map(|d| (d.as_millis() as u64).max(u64::from(!d.is_zero())))
                .unwrap_or(0),
        }
    }
}

/// The condition of a compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The current value equals this.
    Value(Vec<u8>),
    /// The current version equals this; 0 means the key is absent.
    Version(u64),
    /// The key is absent.
    Absent,
}

/// What a successful compare-and-swap writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewValue {
    Put(Vec<u8>),
    Delete,
}

/// A fresh 16-byte request id for one logical write.
pub fn new_request_id() -> Vec<u8> {
    rand::random::<[u8; 16]>().to_vec()
}

/// Connections, one lazily connected channel per endpoint, shared by a client,
/// its clones and the clients made with [`Client::for_endpoint`].
struct Channels {
    connect_timeout: Duration,
    map: Mutex<HashMap<String, Channel>>,
}

impl Channels {
    fn endpoint(&self, addr: &str) -> Result<Endpoint, ClientError> {
        Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ClientError::config(format!("endpoint {addr:?}: {e}")))
            .map(|ep| {
                ep.connect_timeout(self.connect_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .keep_alive_timeout(Duration::from_secs(5))
            })
    }

    /// The channel to `addr`, created on first use (must run inside a runtime).
    fn get(&self, addr: &str) -> Result<Channel, ClientError> {
        let mut map = self.map.lock().unwrap();
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let ch = self.endpoint(addr)?.connect_lazy();
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }
}

/// Where the next call goes.
struct Route {
    endpoints: Vec<String>,
    /// Index into `endpoints` of the endpoint to try first.
    current: usize,
    /// The last known leader: its id (if a hint gave it) and client address.
    leader: Option<(Option<u64>, String)>,
}

impl Route {
    fn index_of(&mut self, addr: &str) -> usize {
        match self.endpoints.iter().position(|e| e == addr) {
            Some(i) => i,
            None => {
                self.endpoints.push(addr.to_string());
                self.endpoints.len() - 1
            }
        }
    }
}

struct Inner {
    opts: ClientOptions,
    channels: Arc<Channels>,
    route: Mutex<Route>,
}

/// A Lookout client. Cheap to clone; clones share connections and routing state.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .field("leader", &self.known_leader())
            .field("opts", &self.inner.opts)
            .finish()
    }
}

/// Puts a message in a request carrying `timeout` as its gRPC deadline.
fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    req
}

fn deadline_status(deadline: Duration) -> tonic::Status {
    tonic::Status::deadline_exceeded(format!(
        "no answer within the client deadline of {} ms",
        deadline.as_millis()
    ))
}

/// The error to report when the deadline ends a call: the last real failure,
/// except that a `Cancelled` (how tonic reports a server-side gRPC timeout)
/// becomes `DeadlineExceeded`, which is what it means here. With `note`, the
/// message adds that the deadline passed after it (a later attempt timed out).
fn exhausted(last: ClientError, attempts: u32, deadline: Duration, note: bool) -> ClientError {
    let ClientError::Status {
        status,
        leader,
        endpoint,
        ..
    } = last
    else {
        return last;
    };
    let code = match status.code() {
        Code::Cancelled => Code::DeadlineExceeded,
        code => code,
    };
    let message = match (note, status.code()) {
        (_, Code::Cancelled) => format!(
            "{} (last attempt: {})",
            deadline_status(deadline).message(),
            status.message()
        ),
        (true, _) => format!(
            "{} (then the {} ms deadline passed)",
            status.message(),
            deadline.as_millis()
        ),
        (false, _) => status.message().to_string(),
    };
    ClientError::Status {
        status: tonic::Status::with_metadata(code, message, status.metadata().clone()),
        leader,
        endpoint,
        attempts,
    }
}

impl Client {
    /// A client for the given client addresses (`host:port`, optionally
    /// `http://host:port`). Connects lazily: no I/O happens here.
    pub fn new(endpoints: Vec<String>, opts: ClientOptions) -> Result<Client, ClientError> {
        let channels = Arc::new(Channels {
            connect_timeout: opts.connect_timeout,
            map: Mutex::new(HashMap::new()),
        });
        Self::with_channels(endpoints, opts, channels)
    }

    fn with_channels(
        endpoints: Vec<String>,
        opts: ClientOptions,
        channels: Arc<Channels>,
    ) -> Result<Client, ClientError> {
        let mut list: Vec<String> = Vec::new();
        for raw in &endpoints {
            let ep = retry::normalize_endpoint(raw).map_err(ClientError::Config)?;
            channels.endpoint(&ep)?; // validate now, connect later
            if !list.contains(&ep) {
                list.push(ep);
            }
        }
        if list.is_empty() {
            return Err(ClientError::config("no endpoints given"));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                opts,
                channels,
                route: Mutex::new(Route {
                    endpoints: list,
                    current: 0,
                    leader: None,
                }),
            }),
        })
    }

    /// A client that sends every call to `addr` only and never follows a leader
    /// hint (see [`ClientOptions::pin_endpoint`]). It shares this client's
    /// connections and options.
    pub fn for_endpoint(&self, addr: &str) -> Result<Client, ClientError> {
        let opts = ClientOptions {
            pin_endpoint: true,
            ..self.inner.opts.clone()
        };
        Self::with_channels(vec![addr.to_string()], opts, self.inner.channels.clone())
    }

    /// A clone of this client with other options (same connections and routing).
    pub fn with_options(&self, opts: ClientOptions) -> Client {
        let route = self.inner.route.lock().unwrap();
        Client {
            inner: Arc::new(Inner {
                opts,
                channels: self.inner.channels.clone(),
                route: Mutex::new(Route {
                    endpoints: route.endpoints.clone(),
                    current: route.current,
                    leader: route.leader.clone(),
                }),
            }),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The endpoints known to this client, including any learned from leader hints.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.route.lock().unwrap().endpoints.clone()
    }

    /// The last known leader's client address, if any.
    pub fn known_leader(&self) -> Option<String> {
        self.inner
            .route
            .lock()
            .unwrap()
            .leader
            .as_ref()
            .map(|(_, a)| a.clone())
    }

    fn kv(&self, ch: Channel) -> KvClient<Channel> {
        KvClient::new(ch)
            .max_decoding_message_size(self.inner.opts.max_response_bytes)
            .max_encoding_message_size(usize::MAX)
    }

    fn admin(&self, ch: Channel) -> AdminClient<Channel> {
        AdminClient::new(ch).max_decoding_message_size(self.inner.opts.max_response_bytes)
    }

    /// The endpoint the next call goes to first.
    fn pick(&self) -> String {
        let route = self.inner.route.lock().unwrap();
        if self.inner.opts.pin_endpoint {
            return route.endpoints[0].clone();
        }
        route.endpoints[route.current % route.endpoints.len()].clone()
    }

    /// Follows a leader hint; returns true if it names another endpoint than `from`.
    fn follow_hint(&self, from: &str, hint: &LeaderHint) -> bool {
        let Some(addr) = &hint.addr else { return false };
        let mut route = self.inner.route.lock().unwrap();
        let i = route.index_of(addr);
        route.current = i;
        route.leader = Some((hint.id, addr.clone()));
        addr != from
    }

    /// Moves past `failed` (unless another call already did); returns true if the
    /// next endpoint differs from it.
    fn rotate_from(&self, failed: &str) -> bool {
        let mut route = self.inner.route.lock().unwrap();
        if route.leader.as_ref().is_some_and(|(_, a)| a == failed) {
            route.leader = None;
        }
        let n = route.endpoints.len();
        let cur = route.current % n;
        if route.endpoints[cur] == failed {
            route.current = (cur + 1) % n;
        }
        route.endpoints[route.current % n] != failed
    }

    fn note_leader(&self, addr: &str) {
        let mut route = self.inner.route.lock().unwrap();
        let i = route.index_of(addr);
        route.current = i;
        let id = route
            .leader
            .as_ref()
            .filter(|(_, a)| a == addr)
            .and_then(|(id, _)| *id);
        route.leader = Some((id, addr.to_string()));
    }

    /// Runs one logical call: attempts via `attempt(channel, remaining)` until it
    /// succeeds, fails with a final code, or the deadline / retry budget is spent.
    async fn execute<T, F, Fut>(&self, leader_only: bool, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let opts = &self.inner.opts;
        let deadline = Instant::now() + opts.deadline;
        let mut attempts: u32 = 0;
        let mut backoffs: u32 = 0;
        let mut quick: usize = 0; // retries since the last backoff
        // The last failure that said more than "the deadline passed".
        let mut last_real: Option<ClientError> = None;
        loop {
            let endpoint = self.pick();
            let channel = self.inner.channels.get(&endpoint)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            attempts += 1;
            let budget = opts
                .attempt_timeout
                .map_or(remaining, |cap| cap.min(remaining));
            let outcome = if remaining.is_zero() {
                None
            } else {
                tokio::time::timeout(budget, attempt(channel, budget))
                    .await
                    .ok()
            };
            let status = match outcome {
                Some(Ok(resp)) => {
                    if leader_only && !opts.pin_endpoint {
                        self.note_leader(&endpoint);
                    }
                    return Ok(resp.into_inner());
                }
                Some(Err(status)) => status,
                None if Instant::now() < deadline => {
                    // Only the attempt's own cap ran out: try elsewhere.
                    tonic::Status::deadline_exceeded(format!(
                        "no answer within the attempt timeout of {} ms",
                        budget.as_millis()
                    ))
                }
                None => {
                    // Out of time. An endpoint that never answered may be hung
                    // (SIGSTOP, a partition): start the next call elsewhere, or
                    // every call would wait on it for its whole deadline.
                    if !remaining.is_zero() && !opts.pin_endpoint {
                        self.rotate_from(&endpoint);
                    }
                    // If an earlier attempt failed for a reason, that reason
                    // explains more than the timeout does.
                    return Err(match last_real {
                        Some(e) => exhausted(e, attempts, opts.deadline, true),
                        None => ClientError::Status {
                            status: deadline_status(opts.deadline),
                            leader: None,
                            endpoint,
                            attempts,
                        },
                    });
                }
            };
            let hint = LeaderHint::from_status(&status);
            let fail = |status, hint| ClientError::Status {
                status,
                leader: hint,
                endpoint: endpoint.clone(),
                attempts,
            };
            let disposition = retry::classify(status.code());
            if disposition == Disposition::Fatal || attempts > opts.max_retries {
                return Err(fail(status, hint));
            }
            // Where to go next, and whether that is worth an immediate retry.
            let moved = match disposition {
                Disposition::RetryElsewhere if opts.pin_endpoint => {
                    if status.code() == Code::Unavailable && hint.is_some() {
                        // The pinned node is not the leader: no point retrying it.
                        return Err(fail(status, hint));
                    }
                    false
                }
                Disposition::RetryElsewhere => match &hint {
                    Some(h) if h.addr.is_some() => self.follow_hint(&endpoint, h),
                    _ => self.rotate_from(&endpoint),
                },
                _ => false,
            };
            let now = Instant::now();
            let failure = fail(status, hint);
            if now >= deadline {
                return Err(exhausted(failure, attempts, opts.deadline, false));
            }
            last_real = Some(failure);
            let budget = self.inner.route.lock().unwrap().endpoints.len();
            if moved && quick < budget {
                quick += 1;
                continue;
            }
            quick = 0;
            // Never sleep away more than half of what is left, so one more attempt
            // still gets a fair share of the deadline.
            let pause = opts.backoff.delay(backoffs).min((deadline - now) / 2);
            backoffs += 1;
            if pause < Duration::from_millis(1) {
                let last = last_real.expect("set above");
                return Err(exhausted(last, attempts, opts.deadline, false));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Writes `value` under `key`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResponse, ClientError> {
        let msg = proto::PutRequest {
            header: Some(proto::WriteHeader {
                request_id: new_request_id(),
            }),
            key: key.into(),
            value: value.into(),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut kv = self.kv(ch);
            async move { kv.put(request(msg, t)).await }
        })
        .await
    }

    /// Reads `key`. `found` is false (and `kv` empty) if it does not exist.
    pub async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        read: ReadOpts,
    ) -> Result<GetResponse, ClientError> {
        let msg = proto::GetRequest {
            read: Some(read.to_proto()),
            key: key.into(),
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut kv = self.kv(ch);
            async move { kv.get(request(msg, t)).await }
        })
        .await
    }

    /// Deletes `key`; `existed` tells whether it was there.
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<DeleteResponse, ClientError> {
        let msg = proto::DeleteRequest {
            header: Some(proto::WriteHeader {
                request_id: new_request_id(),
            }),
            key: key.into(),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut kv = self.kv(ch);
            async move { kv.delete(request(msg, t)).await }
        })
        .await
    }

    /// Writes `new` under `key` if `expected` holds. A failed comparison is not an
    /// error: `succeeded` is false and `current` shows the key as it is.
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Vec<u8>>,
        expected: Expected,
        new: NewValue,
    ) -> Result<CompareAndSwapResponse, ClientError> {
        use proto::compare_and_swap_request::Expected as E;
        let expected = match expected {
            Expected::Value(v) => E::ExpectedValue(v),
            Expected::Version(v) => E::ExpectedVersion(v),
            Expected::Absent => E::ExpectAbsent(true),
        };
        let (value, delete) = match new {
            NewValue::Put(v) => (v, false),
            NewValue::Delete => (Vec::new(), true),
        };
        let msg = proto::CompareAndSwapRequest {
            header: Some(proto::WriteHeader {
                request_id: new_request_id(),
            }),
            key: key.into(),
            expected: Some(expected),
            value,
            delete,
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut kv = self.kv(ch);
            async move { kv.compare_and_swap(request(msg, t)).await }
        })
        .await
    }

    /// One page of the keys starting with `prefix`, in key order. `limit` 0 = the
    /// server default; `continuation` is empty for the first page, else the
    /// previous page's token. The response's `continuation` is empty on the last page.
    pub async fn range(
        &self,
        prefix: impl Into<Vec<u8>>,
        limit: u32,
        continuation: Vec<u8>,
        read: ReadOpts,
    ) -> Result<RangeResponse, ClientError> {
        let msg = proto::RangeRequest {
            read: Some(read.to_proto()),
            prefix: prefix.into(),
            limit,
            continuation,
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut kv = self.kv(ch);
            async move { kv.range(request(msg, t)).await }
        })
        .await
    }

    /// Every key starting with `prefix`, following continuation tokens. Each page
    /// is its own call (own deadline); pages may reflect different indexes.
    pub async fn range_all(
        &self,
        prefix: impl Into<Vec<u8>>,
        read: ReadOpts,
    ) -> Result<Vec<KeyValue>, ClientError> {
        let prefix = prefix.into();
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = self.range(prefix.clone(), 0, token, read).await?;
            out.extend(page.kvs);
            if page.continuation.is_empty() {
                return Ok(out);
            }
            token = page.continuation;
        }
    }

    /// The status of the node at `endpoint` (any address, not only this client's
    /// endpoints). One attempt, bounded by the deadline; no redirects.
    pub async fn status(&self, endpoint: &str) -> Result<NodeStatus, ClientError> {
        let addr = retry::normalize_endpoint(endpoint).map_err(ClientError::Config)?;
        let channel = self.inner.channels.get(&addr)?;
        let timeout = self.inner.opts.deadline;
        let mut admin = self.admin(channel);
        let call = admin.status(request(proto::StatusRequest {}, timeout));
        let status = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(resp)) => return Ok(resp.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => deadline_status(timeout),
        };
        Err(ClientError::Status {
            leader: LeaderHint::from_status(&status),
            status,
            endpoint: addr,
            attempts: 1,
        })
    }

    /// The status of every endpoint, queried concurrently, in endpoint order.
    pub async fn status_all(&self) -> Vec<(String, Result<NodeStatus, ClientError>)> {
        let endpoints = self.endpoints();
        let results = futures::future::join_all(endpoints.iter().map(|e| self.status(e))).await;
        endpoints.into_iter().zip(results).collect()
    }

    /// The leader's status: found among the endpoints' statuses, or by asking the
    /// leader address they report. Errors with `Unavailable` if no leader is known.
    pub async fn leader_status(&self) -> Result<NodeStatus, ClientError> {
        let all = self.status_all().await;
        let best = all
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .filter(|s| s.role == Role::Leader as i32)
            .max_by_key(|s| s.term);
        if let Some(s) = best {
            return Ok(s.clone());
        }
        let hinted = all
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .filter(|s| s.leader != 0 && !s.leader_client_addr.is_empty())
            .max_by_key(|s| s.term)
            .map(|s| s.leader_client_addr.clone());
        if let Some(addr) = hinted {
            let s = self.status(&addr).await?;
            if s.role == Role::Leader as i32 {
                return Ok(s);
            }
        }
        let last = all.into_iter().last();
        let (endpoint, detail) = match last {
            Some((e, Err(err))) => (e, format!("; last error: {err}")),
            Some((e, Ok(_))) => (e, String::new()),
            None => (String::new(), String::new()),
        };
        Err(ClientError::Status {
            status: tonic::Status::unavailable(format!("no leader known to any endpoint{detail}")),
            leader: None,
            endpoint,
            attempts: 1,
        })
    }

    /// Adds a non-voting member (it starts receiving the log). Routed to the leader.
    pub async fn add_learner(
        &self,
        id: u64,
        peer_addr: &str,
        client_addr: &str,
        site: &str,
    ) -> Result<MembershipResponse, ClientError> {
        let msg = proto::AddLearnerRequest {
            id,
            peer_addr: peer_addr.to_string(),
            client_addr: client_addr.to_string(),
            site: site.to_string(),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut admin = self.admin(ch);
            async move { admin.add_learner(request(msg, t)).await }
        })
        .await
    }

    /// Makes learner `id` a voter. Routed to the leader.
    pub async fn promote(&self, id: u64) -> Result<MembershipResponse, ClientError> {
        let msg = proto::PromoteRequest { id };
        self.execute(true, |ch, t| {
            let mut admin = self.admin(ch);
            async move { admin.promote(request(msg, t)).await }
        })
        .await
    }

    /// Replaces the voter set; with `retain`, removed voters stay as learners.
    pub async fn change_membership(
        &self,
        voters: Vec<u64>,
        retain: bool,
    ) -> Result<MembershipResponse, ClientError> {
        let msg = proto::ChangeMembershipRequest { voters, retain };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut admin = self.admin(ch);
            async move { admin.change_membership(request(msg, t)).await }
        })
        .await
    }

    /// Removes node `id` from the cluster (voter or learner). Routed to the leader.
    pub async fn remove_node(&self, id: u64) -> Result<MembershipResponse, ClientError> {
        let msg = proto::RemoveNodeRequest { id };
        self.execute(true, |ch, t| {
            let mut admin = self.admin(ch);
            async move { admin.remove_node(request(msg, t)).await }
        })
        .await
    }

    /// Asks the leader to hand leadership to voter `to`.
    pub async fn transfer_leader(&self, to: u64) -> Result<MembershipResponse, ClientError> {
        let msg = proto::TransferLeaderRequest { to };
        self.execute(true, |ch, t| {
            let mut admin = self.admin(ch);
            async move { admin.transfer_leader(request(msg, t)).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_opts_to_proto() {
        let p = ReadOpts::linearizable().to_proto();
        assert_eq!(p.consistency, proto::Consistency::Linearizable as i32);
        assert_eq!(p.max_staleness_ms, 0);
        let p = ReadOpts::lease().to_proto();
        assert_eq!(p.consistency, proto::Consistency::Lease as i32);
        let p = ReadOpts::stale(Some(Duration::from_millis(250))).to_proto();
        assert_eq!(p.consistency, proto::Consistency::Stale as i32);
        assert_eq!(p.max_staleness_ms, 250);
        // Sub-millisecond bounds must not turn into "no bound".
        assert_eq!(
            ReadOpts::stale(Some(Duration::from_micros(10)))
                .to_proto()
                .max_staleness_ms,
            1
        );
        assert_eq!(
            ReadOpts::stale(Some(Duration::ZERO))
                .to_proto()
                .max_staleness_ms,
            0
        );
        assert_eq!(ReadOpts::default(), ReadOpts::linearizable());
    }

    #[test]
    fn consistency_parse() {
        assert_eq!("lease".parse::<Consistency>().unwrap(), Consistency::Lease);
        assert_eq!("STALE".parse::<Consistency>().unwrap(), Consistency::Stale);
        assert_eq!(
            "linearizable".parse::<Consistency>().unwrap(),
            Consistency::Linearizable
        );
        assert!("strong".parse::<Consistency>().is_err());
        for c in [
            Consistency::Linearizable,
            Consistency::Lease,
            Consistency::Stale,
        ] {
            assert_eq!(Consistency::from_proto(c.to_proto()), c);
        }
    }

    #[test]
    fn exhausted_keeps_the_real_cause() {
        let err = |status| ClientError::Status {
            status,
            leader: None,
            endpoint: "a:1".into(),
            attempts: 2,
        };
        let d = Duration::from_millis(300);
        let e = exhausted(
            err(tonic::Status::unavailable("tcp connect error")),
            7,
            d,
            true,
        );
        assert_eq!(e.code(), Some(Code::Unavailable));
        assert_eq!(
            e.message(),
            "tcp connect error (then the 300 ms deadline passed)"
        );
        assert!(matches!(e, ClientError::Status { attempts: 7, .. }));
        let e = exhausted(err(tonic::Status::unavailable("no leader")), 3, d, false);
        assert_eq!(e.message(), "no leader");
        // A server-side gRPC timeout surfaces as Cancelled; report it as a deadline.
        let e = exhausted(
            err(tonic::Status::cancelled("Timeout expired")),
            3,
            d,
            false,
        );
        assert_eq!(e.code(), Some(Code::DeadlineExceeded));
        assert!(
            e.message().ends_with("(last attempt: Timeout expired)"),
            "{e}"
        );
    }

    #[test]
    fn request_ids_are_random_16_bytes() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn new_validates_and_dedups_endpoints() {
        let c = Client::new(
            vec!["h:1".into(), "http://h:1".into(), "h:2".into()],
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(c.endpoints(), vec!["h:1", "h:2"]);
        assert!(Client::new(vec![], ClientOptions::default()).is_err());
        assert!(Client::new(vec!["nope".into()], ClientOptions::default()).is_err());
    }

    #[test]
    fn routing_follows_hints_and_rotates() {
        let c = Client::new(
            vec!["a:1".into(), "b:1".into(), "c:1".into()],
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(c.pick(), "a:1");
        // a refuses and names d (unknown so far): d is added and becomes current.
        let hint = LeaderHint {
            id: Some(4),
            addr: Some("d:1".into()),
        };
        assert!(c.follow_hint("a:1", &hint));
        assert_eq!(c.pick(), "d:1");
        assert_eq!(c.known_leader().as_deref(), Some("d:1"));
        assert_eq!(c.endpoints().len(), 4);
        // d fails at transport level: forget it as leader, move on (wrapping).
        assert!(c.rotate_from("d:1"));
        assert_eq!(c.pick(), "a:1");
        assert_eq!(c.known_leader(), None);
        // A stale failure report from another call does not move us again.
        assert!(c.rotate_from("d:1"));
        assert_eq!(c.pick(), "a:1");
        // A hint naming the endpoint itself is not a move.
        assert!(!c.follow_hint(
            "a:1",
            &LeaderHint {
                id: Some(1),
                addr: Some("a:1".into())
            }
        ));
    }

    #[test]
    fn pinned_client_sticks_to_its_endpoint() {
        let c = Client::new(vec!["a:1".into(), "b:1".into()], ClientOptions::default()).unwrap();
        let p = c.for_endpoint("b:1").unwrap();
        assert!(p.options().pin_endpoint);
        assert_eq!(p.endpoints(), vec!["b:1"]);
        assert_eq!(p.pick(), "b:1");
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_with_unavailable_within_deadline() {
        // Port 1 on loopback: nothing listens, connect is refused at once.
        let opts = ClientOptions {
            deadline: Duration::from_millis(300),
            ..ClientOptions::default()
        };
        let c = Client::new(vec!["127.0.0.1:1".into()], opts).unwrap();
        let t = std::time::Instant::now();
        let err = c.put("k", "v").await.unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
        assert!(
            matches!(err, ClientError::Status { attempts, .. } if attempts > 1),
            "{err}"
        );
        let all = c.status_all().await;
        assert_eq!(all.len(), 1);
        assert!(all[0].1.is_err());
    }
}
