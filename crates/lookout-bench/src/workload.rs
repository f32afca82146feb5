//! The workloads and the drivers that issue them against Lookout or etcd.
//!
//! Connection placement is the same for both systems: writes go to the leader over
//! `connections` HTTP/2 connections (so neither pays a forwarding hop), reads spread
//! their connections over every member.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::ValueEnum;
use etcd_client::GetOptions;
use etcd_client::KvClient as EtcdKv;
use lookout_gen::GenConfig;
use lookout_proto::v1 as pb;
use lookout_proto::v1::kv_client::KvClient;
use lookout_proto::v1::screening_client::ScreeningClient;
use lookout_testkit::TestCluster;
use lookout_testkit::request_id;
use tonic::transport::Channel;

use crate::etcd::EtcdCluster;
use crate::load::ErrorClass;
use crate::load::status_class;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    Put,
    GetLinearizable,
    GetLease,
    GetStale,
    Screen,
    Manifest,
    /// 95% Screen, 5% PutLookout of new subjects.
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Put,
        Workload::GetLinearizable,
        Workload::GetLease,
        Workload::GetStale,
        Workload::Screen,
        Workload::Manifest,
        Workload::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::GetLinearizable => "get-linearizable",
            Workload::GetLease => "get-lease",
            Workload::GetStale => "get-stale",
            Workload::Screen => "screen",
            Workload::Manifest => "manifest",
            Workload::Mixed => "mixed",
        }
    }

    /// Whether etcd has an equivalent (stale = etcd's serializable read).
    pub fn etcd_has(self) -> bool {
        matches!(self, Workload::Put | Workload::GetLinearizable | Workload::GetStale)
    }

    pub fn needs_watch_list(self) -> bool {
        matches!(self, Workload::Screen | Workload::Manifest | Workload::Mixed)
    }

    pub fn writes(self) -> bool {
        matches!(self, Workload::Put)
    }
}

/// Key and value shape of the KV workloads.
#[derive(Clone, Debug)]
pub struct KvShape {
    pub keys: u64,
    pub value_size: usize,
}

impl KvShape {
    pub fn key(&self, client: usize, seq: u64) -> String {
        format!("bench/{:06}", (client as u64).wrapping_mul(7919).wrapping_add(seq) % self.keys)
    }
}

/// Pre-built screening requests drawn from the generated population.
pub struct ScreeningPool {
    cfg: GenConfig,
    identities: Vec<pb::Identity>,
    manifests: Vec<pb::ScreenManifestRequest>,
    next_lookout: AtomicU64,
}

impl ScreeningPool {
    /// `loaded` is how many generated lookouts the cluster holds; mixed-workload writes
    /// create new ones after those.
    pub fn new(cfg: &GenConfig, loaded: u64, identities: u64, manifests: u64) -> ScreeningPool {
        let identities = (0..identities).map(|j| lookout_wire::identity_to_pb(&lookout_gen::traveller(cfg, j).identity)).collect();
        let manifests = (0..manifests).map(|f| manifest_request(cfg, f).1).collect();
        ScreeningPool { cfg: cfg.clone(), identities, manifests, next_lookout: AtomicU64::new(loaded + 1_000_000_000) }
    }

    pub fn identity(&self, n: u64) -> pb::Identity {
        self.identities[(n % self.identities.len() as u64) as usize].clone()
    }
}

/// Generated flight `f`: 300 passengers with 3 planted matches, and its ScreenManifest request.
pub fn manifest_request(cfg: &GenConfig, f: u64) -> (Vec<lookout_gen::GeneratedTraveller>, pb::ScreenManifestRequest) {
    let (itin, pax) = lookout_gen::manifest(cfg, f, 300, 3);
    let req = pb::ScreenManifestRequest {
        read: None,
        flight: Some(lookout_wire::itinerary_to_pb(&itin)),
        passengers: pax
            .iter()
            .map(|p| pb::ManifestPassenger { reference: p.id.clone(), identity: Some(lookout_wire::identity_to_pb(&p.identity)) })
            .collect(),
    };
    (pax, req)
}

/// The driver of either target, so that one run loop serves both.
#[derive(Clone)]
pub enum Driver {
    Lookout(Arc<LookoutDriver>),
    Etcd(Arc<EtcdDriver>),
}

impl Driver {
    pub fn target(&self) -> &'static str {
        match self {
            Driver::Lookout(_) => "lookout",
            Driver::Etcd(_) => "etcd",
        }
    }

    pub async fn op(&self, w: Workload, client: usize, seq: u64) -> Result<(), ErrorClass> {
        match self {
            Driver::Lookout(d) => d.op(w, client, seq).await,
            Driver::Etcd(d) => d.op(w, client, seq).await,
        }
    }

    /// Attempts retried after `Unavailable` (the Lookout driver retries; the etcd one does not).
    pub fn retried(&self) -> u64 {
        match self {
            Driver::Lookout(d) => d.retried(),
            Driver::Etcd(_) => 0,
        }
    }
}

impl From<Arc<LookoutDriver>> for Driver {
    fn from(d: Arc<LookoutDriver>) -> Driver {
        Driver::Lookout(d)
    }
}

impl From<Arc<EtcdDriver>> for Driver {
    fn from(d: Arc<EtcdDriver>) -> Driver {
        Driver::Etcd(d)
    }
}

/// Issues workload operations against a running Lookout cluster.
pub struct LookoutDriver {
    /// `connections` channels to every node; writes use the current leader's.
    by_node: std::collections::BTreeMap<u64, Vec<Channel>>,
    /// The node writes go to: follows the leader hint of a refused write, as a real
    /// client does (lookout-client), so a leader change costs an election, not the run.
    leader: AtomicU64,
    spread: Vec<Channel>,
    shape: KvShape,
    value: Vec<u8>,
    /// Distinguishes request ids of drivers against one cluster.
    run: u64,
    /// Writes issued by this driver: every write gets a fresh request id.
    writes: AtomicU64,
    deadline: Duration,
    retried: AtomicU64,
    pub screening: Option<Arc<ScreeningPool>>,
}

/// One workload operation, fixed before its first attempt.
struct Op {
    workload: Workload,
    seq: u64,
    /// Writes only: the request id every attempt carries, and for a mixed-workload write
    /// the generated lookout it stores.
    write: Option<(Vec<u8>, Option<u64>)>,
}

impl LookoutDriver {
    pub fn new(c: &TestCluster, leader: u64, connections: usize, shape: &KvShape, run: u64, deadline: Duration) -> LookoutDriver {
        let connections = connections.max(1);
        LookoutDriver {
            by_node: c.ids.iter().map(|&id| (id, (0..connections).map(|_| c.channel(id)).collect())).collect(),
            leader: AtomicU64::new(leader),
            spread: (0..connections).map(|i| c.channel(c.ids[i % c.ids.len()])).collect(),
            shape: shape.clone(),
            value: vec![b'v'; shape.value_size],
            run,
            writes: AtomicU64::new(0),
            deadline,
            retried: AtomicU64::new(0),
            screening: None,
        }
    }

    fn request<T>(&self, msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(timeout);
        r
    }

    fn write_id(&self) -> Vec<u8> {
        request_id((self.run << 48) | self.writes.fetch_add(1, Ordering::Relaxed))
    }

    fn pool(&self) -> Result<&ScreeningPool, ErrorClass> {
        self.screening.as_deref().ok_or_else(|| "NoWatchList".to_string())
    }

    /// Requests refused with `Unavailable` (not the leader, election in progress) were
    /// retried, as lookout-client does; the figures count only what failed for good.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// One workload operation within the driver's deadline. `Unavailable` is retried on
    /// the hinted leader (or the same node after a short backoff) until the deadline, as
    /// lookout-client does: a write keeps its request id across attempts, so it is applied
    /// at most once. Anything else (`ResourceExhausted` above all) is the outcome.
    pub async fn op(&self, w: Workload, client: usize, seq: u64) -> Result<(), ErrorClass> {
        let started = std::time::Instant::now();
        let op = self.prepare(w, client, seq)?;
        let mut backoff = Duration::from_millis(10);
        loop {
            let left = self.deadline.saturating_sub(started.elapsed());
            let status = match self.attempt(&op, client, left).await {
                Ok(()) => return Ok(()),
                Err(s) => s,
            };
            let hint = status.metadata().get("lookout-leader-id").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let moved = match hint.filter(|l| self.by_node.contains_key(l)) {
                Some(l) => self.leader.swap(l, Ordering::Relaxed) != l,
                None => false,
            };
            let left = self.deadline.saturating_sub(started.elapsed());
            if status.code() != tonic::Code::Unavailable || left <= backoff {
                return Err(status_class(&status));
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            if !moved {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
        }
    }

    /// Everything an operation's attempts share: its request id, and for a mixed-workload
    /// write the lookout it creates.
    fn prepare(&self, w: Workload, client: usize, seq: u64) -> Result<Op, ErrorClass> {
        let write = match w {
            Workload::Put => Some(None),
            Workload::Mixed if (client as u64 + seq) % 20 == 0 => {
                Some(Some(self.pool()?.next_lookout.fetch_add(1, Ordering::Relaxed)))
            }
            _ => None,
        };
        Ok(Op { workload: w, seq, write: write.map(|lookout| (self.write_id(), lookout)) })
    }

    async fn attempt(&self, op: &Op, client: usize, timeout: Duration) -> Result<(), tonic::Status> {
        let target = self.leader.load(Ordering::Relaxed);
        let leader = self.by_node[&target][client % self.spread.len()].clone();
        let spread = self.spread[client % self.spread.len()].clone();
        let read = |c: pb::Consistency| Some(pb::ReadOptions { consistency: c as i32, max_staleness_ms: 0 });
        let seq = op.seq;
        match (op.workload, &op.write) {
            (Workload::Put, Some((id, _))) => {
                let req = pb::PutRequest {
                    header: Some(pb::WriteHeader { request_id: id.clone() }),
                    key: self.shape.key(client, seq).into_bytes(),
                    value: self.value.clone(),
                };
                KvClient::new(leader).put(self.request(req, timeout)).await.map(drop)
            }
            (w @ (Workload::GetLinearizable | Workload::GetLease | Workload::GetStale), _) => {
                let c = match w {
                    Workload::GetLinearizable => pb::Consistency::Linearizable,
                    Workload::GetLease => pb::Consistency::Lease,
                    _ => pb::Consistency::Stale,
                };
                let req = pb::GetRequest { read: read(c), key: self.shape.key(client, seq).into_bytes() };
                // Lease reads are served by the leader only.
                let ch = if w == Workload::GetLease { leader } else { spread };
                KvClient::new(ch).get(self.request(req, timeout)).await.map(drop)
            }
            (Workload::Manifest, _) => {
                let pool = self.pool().map_err(tonic::Status::failed_precondition)?;
                let req = pool.manifests[(client as u64 + seq) as usize % pool.manifests.len()].clone();
                ScreeningClient::new(spread).screen_manifest(self.request(req, timeout)).await.map(drop)
            }
            (Workload::Mixed, Some((id, Some(i)))) => {
                let pool = self.pool().map_err(tonic::Status::failed_precondition)?;
                let req = pb::PutLookoutRequest {
                    header: Some(pb::WriteHeader { request_id: id.clone() }),
                    lookout: Some(lookout_wire::lookout_to_pb(&lookout_gen::lookout(&pool.cfg, *i), 0)),
                    expected_version: None,
                    actor: "bench".into(),
                };
                ScreeningClient::new(leader).put_lookout(self.request(req, timeout)).await.map(drop)
            }
            _ => self.screen(spread, client, seq, timeout).await,
        }
    }

    async fn screen(&self, ch: Channel, client: usize, seq: u64, timeout: Duration) -> Result<(), tonic::Status> {
        let pool = self.pool().map_err(tonic::Status::failed_precondition)?;
        let req = pb::ScreenRequest { read: None, identity: Some(pool.identity((client as u64).wrapping_mul(104_729).wrapping_add(seq))) };
        ScreeningClient::new(ch).screen(self.request(req, timeout)).await.map(drop)
    }
}

/// Issues the KV workloads against a running etcd cluster.
pub struct EtcdDriver {
    leader: Vec<EtcdKv>,
    spread: Vec<EtcdKv>,
    shape: KvShape,
    value: Vec<u8>,
}

impl EtcdDriver {
    pub async fn new(c: &EtcdCluster, leader: u64, connections: usize, shape: &KvShape) -> anyhow::Result<EtcdDriver> {
        let connections = connections.max(1);
        let mut l = vec![];
        let mut s = vec![];
        for i in 0..connections {
            l.push(c.client(leader).await?.kv_client());
            s.push(c.client(c.ids[i % c.ids.len()]).await?.kv_client());
        }
        Ok(EtcdDriver { leader: l, spread: s, shape: shape.clone(), value: vec![b'v'; shape.value_size] })
    }

    pub async fn op(&self, w: Workload, client: usize, seq: u64) -> Result<(), ErrorClass> {
        let key = self.shape.key(client, seq);
        let r = match w {
            Workload::Put => self.leader[client % self.leader.len()].clone().put(key, self.value.clone(), None).await.map(drop),
            Workload::GetLinearizable => self.spread[client % self.spread.len()].clone().get(key, None).await.map(drop),
            Workload::GetStale => {
                self.spread[client % self.spread.len()].clone().get(key, Some(GetOptions::new().with_serializable())).await.map(drop)
            }
            other => return Err(format!("Unsupported({})", other.name())),
        };
        r.map_err(|e| crate::etcd::error_class(&e))
    }
}

#[cfg(test)]
mod tests {
    use lookout_testkit::ClusterSpec;

    use super::*;

    /// A driver whose leader guess is wrong (as after a leader change) is refused with
    /// `Unavailable` plus a hint, follows it and retries: no write fails and the retry is
    /// counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_writes_follow_the_leader_hint_within_the_deadline() {
        let c = TestCluster::start(&ClusterSpec::three(), &lookout_testkit::built_lookoutd()).unwrap();
        let leader = c.wait_leader(Duration::from_secs(30)).await.unwrap();
        let follower = *c.ids.iter().find(|&&id| id != leader).unwrap();
        let shape = KvShape { keys: 10, value_size: 8 };
        let d = LookoutDriver::new(&c, follower, 1, &shape, 1, Duration::from_secs(5));
        for seq in 0..10 {
            d.op(Workload::Put, 0, seq).await.unwrap();
        }
        assert_eq!(d.retried(), 1, "only the first write goes to the wrong node");
        assert_eq!(d.leader.load(Ordering::Relaxed), leader);
    }
}
