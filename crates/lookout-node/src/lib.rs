//! One Lookout Raft node: openraft wired to the sled store (`lookout-store`), the peer
//! network over tonic, the batched linearizable read barrier, staleness tracking for
//! degraded reads, bootstrap, and membership changes.
//!
//! Invariants:
//! - Nothing here decides what a command means; that is the store's state machine.
//! - A linearizable read returns only after this node has applied everything that was
//!   committed when the read arrived (ReadIndex via the leader, batched).
//! - A node never bootstraps a cluster unless every declared voter answers and none of
//!   them already belongs to one.

pub mod frame;
pub mod freshness;
pub mod network;
pub mod peer_service;
pub mod read_barrier;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use lookout_config::ClusterConfig;
use lookout_proto::v1::HelloRequest;
use lookout_proto::v1::ReadIndexRequest;
use lookout_proto::v1::raft_peer_client::RaftPeerClient;
use lookout_proto::v1::raft_peer_server::RaftPeerServer;
use lookout_store::StateReader;
use lookout_store::StoreOptions;
use lookout_types::Node;
use lookout_types::NodeId;
use lookout_types::TypeConfig;
use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;
use openraft::ServerState;
use openraft::SnapshotPolicy;

use crate::freshness::Freshness;
use crate::network::PeerChannels;
use crate::network::PeerNetwork;
pub use crate::read_barrier::ReadBarrier;
pub use crate::read_barrier::ReadError;

pub type Raft = openraft::Raft<TypeConfig, lookout_store::StateMachine>;

/// The build version reported in status (crate version + git describe when available).
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {0} is not declared in {1}")]
    UnknownNode(NodeId, String),
    #[error("store: {0}")]
    Store(#[from] lookout_store::StoreError),
    #[error("raft config: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("peer server on {addr}: {source}")]
    PeerServer { addr: std::net::SocketAddr, source: std::io::Error },
}

/// How a read should be made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    Linearizable,
    Lease,
}

/// A running node. Cheap to clone; all clones share the same Raft instance.
#[derive(Clone)]
pub struct LookoutNode {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: StateReader,
    pub barrier: ReadBarrier,
    pub freshness: Arc<Freshness>,
    pub channels: PeerChannels,
    pub config: Arc<ClusterConfig>,
}

/// The openraft configuration derived from `cluster.toml` (one place).
pub fn raft_config(config: &ClusterConfig) -> Result<openraft::Config, openraft::ConfigError> {
    let t = &config.raft;
    openraft::Config {
        cluster_name: config.cluster.name.clone(),
        heartbeat_interval: t.heartbeat_ms,
        election_timeout_min: t.election_timeout_min_ms,
        election_timeout_max: t.election_timeout_max_ms,
        install_snapshot_timeout: t.install_snapshot_timeout_ms,
        max_payload_entries: t.max_payload_entries,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: t.logs_to_keep_after_snapshot,
        enable_pre_vote: Some(true),
        // A restarted leader must win a new election, never resume its old term. Resuming
        // is unsafe here because neither the state machine nor the committed index is
        // flushed before a client is answered (both are rebuilt from the log): a leader
        // restarted after `kill -9` would serve reads from a committed index older than
        // writes it had acknowledged, and could re-propose different entries under log
        // ids its followers already hold (found by the Jepsen long run: a linearizable
        // screen missed an acknowledged lookout, and replicas diverged).
        enable_leader_restore: Some(false),
        // Replicate entries as soon as they are written locally, in parallel with the
        // leader's own fsync (the leader counts itself only once its fsync completes).
        // Halves single-client commit latency on loopback.
        broadcast_submitted_on_append: Some(true),
        ..Default::default()
    }
    .validate()
}

/// The replicated description of a configured node.
pub fn node_info(n: &lookout_config::NodeConfig) -> Node {
    Node { peer_addr: n.peer_addr.to_string(), client_addr: n.client_addr.to_string(), site: n.site.clone() }
}

/// A listener whose accepted connections have Nagle's algorithm off: with it on, small
/// gRPC responses wait for delayed ACKs (tens of ms). `Server::tcp_nodelay` does not
/// apply to a custom incoming stream, so it is set here.
pub fn tcp_incoming(addr: std::net::SocketAddr) -> std::io::Result<tonic::transport::server::TcpIncoming> {
    Ok(tonic::transport::server::TcpIncoming::bind(addr)?.with_nodelay(Some(true)))
}

impl LookoutNode {
    /// Opens the store, starts Raft and the peer server, and (in the background)
    /// bootstraps a new cluster when this node is the lowest-id declared voter.
    pub async fn start(config: Arc<ClusterConfig>, id: NodeId) -> Result<LookoutNode, NodeError> {
        let me = config
            .node(id)
            .ok_or_else(|| NodeError::UnknownNode(id, config.path.display().to_string()))?
            .clone();
        let opts = StoreOptions {
            cache_capacity_bytes: config.storage.cache_capacity_bytes,
            dedup_window_ms: config.limits.dedup_window_ms,
        };
        let (log_store, state_machine) = lookout_store::open(&me.data_dir, opts)?;
        let reader = state_machine.reader();
        let routes = match std::env::var(network::PEER_ROUTES_ENV) {
            Ok(v) => network::parse_routes(&v).map_err(|e| NodeError::Raft(format!("{}: {e}", network::PEER_ROUTES_ENV)))?,
            Err(_) => Default::default(),
        };
        if !routes.is_empty() {
            tracing::warn!(?routes, "peer links routed by {}", network::PEER_ROUTES_ENV);
        }
        let network = PeerNetwork { channels: PeerChannels::with_routes(routes) };
        let channels = network.channels.clone();
        let raft_cfg = Arc::new(raft_config(&config)?);
        let raft = Raft::new(id, raft_cfg.clone(), network, log_store, state_machine)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        // A barrier round may take up to the leader lease (election_timeout_max).
        let round_timeout = Duration::from_millis(config.raft.election_timeout_max_ms * 2);
        let barrier = ReadBarrier::spawn(raft.clone(), config.limits.max_in_flight, round_timeout);
        let node = LookoutNode {
            id,
            raft,
            reader,
            barrier,
            freshness: Arc::new(Freshness::default()),
            channels,
            config: config.clone(),
        };

        let incoming = tcp_incoming(me.peer_addr).map_err(|source| NodeError::PeerServer { addr: me.peer_addr, source })?;
        let service = RaftPeerServer::new(peer_service::PeerService { node: node.clone() })
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, "peer server stopped");
            }
        });

        if me.voter {
            let n = node.clone();
            tokio::spawn(async move { n.bootstrap_when_ready().await });
        }
        {
            let n = node.clone();
            tokio::spawn(async move { n.probe_freshness().await });
        }
        Ok(node)
    }

    /// On followers, every two heartbeat intervals: ask the leader for a read index and
    /// record when the question was sent (see [`freshness`]). Bounded: one probe in flight.
    async fn probe_freshness(&self) {
        let every = Duration::from_millis(self.config.raft.heartbeat_ms * 2);
        loop {
            tokio::time::sleep(every).await;
            let leader = self.metrics().current_leader;
            if leader.is_none() || leader == Some(self.id) {
                continue;
            }
            let sent = Instant::now();
            if let Ok(index) = self.read_index(ReadMode::Linearizable).await {
                self.freshness.leader_contact(sent, index);
            }
        }
    }

    /// Bootstraps the cluster from `cluster.toml` if it is new: only the lowest-id voter
    /// does it, and only once every declared voter answers and reports no membership.
    async fn bootstrap_when_ready(&self) {
        let lowest = self.config.voters().map(|n| n.id).min();
        if lowest != Some(self.id) {
            return;
        }
        loop {
            match self.raft.is_initialized().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => return,
            }
            match self.probe_voters().await {
                Ok(()) => {
                    let members: BTreeMap<NodeId, Node> =
                        self.config.voters().map(|n| (n.id, node_info(n))).collect();
                    match self.raft.initialize(members).await {
                        Ok(()) => {
                            tracing::info!("bootstrapped a new cluster from {}", self.config.path.display());
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "bootstrap failed; retrying"),
                    }
                }
                Err(why) => tracing::info!("waiting to bootstrap: {why}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ok when every other declared voter answers Hello for this cluster, uninitialized.
    async fn probe_voters(&self) -> Result<(), String> {
        for n in self.config.voters().filter(|n| n.id != self.id) {
            let ch = self
                .channels
                .get_lane(network::Lane::Control, &self.channels.route(n.id, &n.peer_addr.to_string()))
                .map_err(|e| e.to_string())?;
            let mut req = tonic::Request::new(HelloRequest {});
            req.set_timeout(Duration::from_millis(500));
            let hello = RaftPeerClient::new(ch)
                .hello(req)
                .await
                .map_err(|e| format!("voter {} at {} not reachable: {}", n.id, n.peer_addr, e.message()))?
                .into_inner();
            if hello.node_id != n.id || hello.cluster_name != self.config.cluster.name {
                return Err(format!(
                    "{} answers as node {} of cluster {:?}, expected node {} of {:?}",
                    n.peer_addr, hello.node_id, hello.cluster_name, n.id, self.config.cluster.name
                ));
            }
            if hello.initialized {
                return Err(format!("voter {} already belongs to a cluster; not bootstrapping", n.id));
            }
        }
        Ok(())
    }

    /// The index a consistent read must see, confirmed through the leader: on the leader
    /// by the batched barrier (or lease), on a follower by asking the leader (follower read).
    pub async fn read_index(&self, mode: ReadMode) -> Result<u64, ReadError> {
        if cfg!(feature = "unsafe-skip-read-barrier") {
            // NEGATIVE CONTROL (test builds only): no proof of leadership, no quorum.
            let _ = mode;
            return Ok(self.reader.applied_index());
        }
        let leader = self.raft.current_leader().await;
        if leader == Some(self.id) {
            return match mode {
                ReadMode::Linearizable => self.barrier.read_index().await,
                ReadMode::Lease => self
                    .raft
                    .ensure_linearizable(ReadPolicy::LeaseRead)
                    .await
                    .map(|r| r.index())
                    .map_err(read_barrier::map_read_error),
            };
        }
        let Some(leader) = leader else {
            return Err(ReadError::NotLeader { leader: None });
        };
        let Some(addr) = self.peer_addr_of(leader) else {
            return Err(ReadError::NotLeader { leader: Some(leader) });
        };
        let ch = self.channels.get(&addr).map_err(|e| ReadError::NoQuorum(e.to_string()))?;
        let mut req = tonic::Request::new(ReadIndexRequest {});
        req.set_timeout(Duration::from_millis(self.config.raft.election_timeout_max_ms * 2));
        match RaftPeerClient::new(ch).read_index(req).await {
            Ok(resp) => Ok(resp.into_inner().index),
            Err(status) => Err(ReadError::NoQuorum(format!("leader {leader}: {}", status.message()))),
        }
    }

    /// A linearizable (or lease) read: returns the index this node has applied once it
    /// covers the read index.
    pub async fn consistent_read_fence(&self, mode: ReadMode) -> Result<u64, ReadError> {
        let index = self.read_index(mode).await?;
        self.reader.wait_applied(index).await;
        Ok(self.reader.applied_index())
    }

    /// Upper bound on the age of this node's applied state (None = unknown: never known
    /// up to date since start).
    pub fn staleness(&self) -> Option<Duration> {
        let now = Instant::now();
        let applied = self.reader.applied_index();
        let m = self.metrics();
        if m.state == ServerState::Leader {
            if let Some(acked) = m.last_quorum_acked.as_ref() {
                let acked = acked.clone().into_inner();
                if m.cluster_committed.as_ref().map(|c| c.index).unwrap_or(0) <= applied {
                    return Some(openraft::Instant::elapsed(&acked));
                }
            }
        }
        self.freshness.staleness(applied, now)
    }

    /// The latest Raft metrics of this node.
    pub fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// Where this node dials peer `id` (its advertised address unless routed).
    pub fn peer_addr_of(&self, id: NodeId) -> Option<String> {
        self.member(id).map(|n| self.channels.route(id, &n.peer_addr))
    }

    pub fn member(&self, id: NodeId) -> Option<Node> {
        let m = self.metrics().membership_config;
        m.membership().get_node(&id).cloned()
    }

    /// The current leader and its replicated description, if known.
    pub fn leader(&self) -> Option<(NodeId, Option<Node>)> {
        let leader = self.metrics().current_leader?;
        Some((leader, self.member(leader)))
    }

    /// Voters and learners of the effective membership.
    pub fn members(&self) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
        let m = self.metrics().membership_config;
        let voters: BTreeSet<NodeId> = m.membership().voter_ids().collect();
        let learners: BTreeSet<NodeId> = m.membership().learner_ids().collect();
        (voters, learners)
    }
}
