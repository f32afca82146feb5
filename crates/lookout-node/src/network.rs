//! The client side of the peer network: openraft's RPCs over tonic, with one cached
//! channel per peer, connect and request timeouts, and snapshot streaming.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use lookout_proto::v1::PeerFrame;
use lookout_proto::v1::SnapshotChunk;
use lookout_proto::v1::raft_peer_client::RaftPeerClient;
use lookout_proto::v1::snapshot_chunk::Part;
use lookout_store::SnapshotFile;
use lookout_types::Node;
use lookout_types::NodeId;
use lookout_types::TypeConfig;
use lookout_types::Vote;
use openraft::AnyError;
use openraft::OptionalSend;
use openraft::RaftNetworkFactory;
use openraft::RaftNetworkV2;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::Backoff;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::alias::SnapshotOf;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::frame;

/// Bytes per snapshot chunk on the wire.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Channels to peers, shared by every connection openraft opens, keyed by peer address.
/// A tonic `Channel` reconnects by itself, so one per address is enough.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    routes: Arc<HashMap<NodeId, String>>,
}

/// Environment variable with per-process dial overrides, `id=host:port,id=host:port`:
/// this process reaches peer `id` at that address instead of its advertised one. The
/// fault-injection suite routes every peer link through its own proxy this way.
pub const PEER_ROUTES_ENV: &str = "LOOKOUT_PEER_ROUTES";

/// Parses a `PEER_ROUTES_ENV` value.
pub fn parse_routes(v: &str) -> Result<HashMap<NodeId, String>, String> {
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (id, addr) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not id=host:port"))?;
            let id: NodeId = id.trim().parse().map_err(|_| format!("{id:?} is not a node id"))?;
            let addr: std::net::SocketAddr = addr.trim().parse().map_err(|_| format!("{addr:?} is not host:port"))?;
            Ok((id, addr.to_string()))
        })
        .collect()
}

impl PeerChannels {
    pub fn with_routes(routes: HashMap<NodeId, String>) -> PeerChannels {
        PeerChannels { channels: Arc::default(), routes: Arc::new(routes) }
    }

    /// Where this process dials peer `id`, advertised at `advertised`.
    pub fn route(&self, id: NodeId, advertised: &str) -> String {
        self.routes.get(&id).cloned().unwrap_or_else(|| advertised.to_string())
    }

    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        self.get_lane(Lane::Replication, addr)
    }

    /// A channel of its own per lane: heartbeats and votes must not queue behind a
    /// multi-megabyte append or a snapshot on the same HTTP/2 connection.
    pub fn get_lane(&self, lane: Lane, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let key = format!("{lane:?}@{addr}");
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = map.get(&key) {
            return Ok(ch.clone());
        }
        let ch = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        map.insert(key, ch.clone());
        Ok(ch)
    }
}

/// Which connection to a peer an RPC travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Appends with entries, and follower ReadIndex requests.
    Replication,
    /// Heartbeats, votes, leadership transfer, bootstrap hello.
    Control,
    /// Snapshot streams.
    Snapshot,
}

/// The smallest timeout of an append that carries entries. openraft asks for the
/// heartbeat interval (50 ms), which a batch of bulk-ingest entries (megabytes, then an
/// fsync on the follower) cannot meet; timing it out only makes the leader resend it.
const MIN_APPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// openraft's factory of peer connections.
#[derive(Clone)]
pub struct PeerNetwork {
    pub channels: PeerChannels,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerConnection {
        self.connection(target, node, Lane::Replication)
    }

    async fn new_heartbeat_client(&mut self, target: NodeId, node: &Node) -> PeerConnection {
        self.connection(target, node, Lane::Control)
    }

    async fn new_snapshot_client(&mut self, target: NodeId, node: &Node) -> PeerConnection {
        self.connection(target, node, Lane::Snapshot)
    }
}

impl PeerNetwork {
    fn connection(&self, target: NodeId, node: &Node, lane: Lane) -> PeerConnection {
        PeerConnection { target, addr: self.channels.route(target, &node.peer_addr), channels: self.channels.clone(), lane }
    }
}

pub struct PeerConnection {
    target: NodeId,
    addr: String,
    channels: PeerChannels,
    lane: Lane,
}

type RpcErr = RPCError<TypeConfig>;

fn unreachable(e: &(impl std::error::Error + 'static)) -> RpcErr {
    RPCError::Unreachable(Unreachable::new(e))
}

/// Transport-level failures (refused, reset, timed out) make the peer "unreachable" so
/// openraft backs off; anything else is a network error.
fn status_to_rpc_error(status: tonic::Status) -> RpcErr {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            unreachable(&status)
        }
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

impl PeerConnection {
    fn client(&self) -> Result<RaftPeerClient<Channel>, RpcErr> {
        self.client_on(self.lane)
    }

    fn client_on(&self, lane: Lane) -> Result<RaftPeerClient<Channel>, RpcErr> {
        let ch = self.channels.get_lane(lane, &self.addr).map_err(|e| unreachable(&e))?;
        Ok(RaftPeerClient::new(ch).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20))
    }

    fn request<T>(msg: T, option: &RPCOption) -> tonic::Request<T> {
        Self::request_within(msg, option.hard_ttl())
    }

    fn request_within<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        req
    }

    fn decode<T: serde::de::DeserializeOwned>(frame: &PeerFrame) -> Result<T, RpcErr> {
        frame::decode(frame).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        // Heartbeats (no entries) travel on the control lane.
        let (mut client, timeout) = if rpc.entries.is_empty() {
            (self.client_on(Lane::Control)?, option.hard_ttl())
        } else {
            (self.client()?, option.hard_ttl().max(MIN_APPEND_TIMEOUT))
        };
        let resp = client.append(Self::request_within(frame::encode(&rpc), timeout)).await.map_err(status_to_rpc_error)?;
        Self::decode(resp.get_ref())
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        let mut client = self.client_on(Lane::Control)?;
        let resp = client.vote(Self::request(frame::encode(&rpc), &option)).await.map_err(status_to_rpc_error)?;
        Self::decode(resp.get_ref())
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        let mut client = self.client_on(Lane::Control)?;
        let resp = client.pre_vote(Self::request(frame::encode(&rpc), &option)).await.map_err(status_to_rpc_error)?;
        Self::decode(resp.get_ref())
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcErr> {
        let mut client = self.client_on(Lane::Control)?;
        let resp =
            client.transfer_leader(Self::request(frame::encode(&req), &option)).await.map_err(status_to_rpc_error)?;
        Self::decode(resp.get_ref())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client_on(Lane::Snapshot)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let header = frame::encode(&(vote, snapshot.meta.clone()));
        let file = snapshot.snapshot;
        let target = self.target;
        // The reader runs on a blocking thread: pread the file chunk by chunk, hash it, and
        // feed the bounded channel (back-pressure from the network bounds memory).
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let send = |part: Part| tx.blocking_send(SnapshotChunk { part: Some(part) }).is_ok();
            if !send(Part::Header(header)) {
                return Ok(());
            }
            let mut hasher = blake3::Hasher::new();
            let mut offset = 0u64;
            let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
            while offset < file.len {
                let want = ((file.len - offset) as usize).min(buf.len());
                file.file.read_exact_at(&mut buf[..want], offset)?;
                hasher.update(&buf[..want]);
                offset += want as u64;
                if !send(Part::Data(buf[..want].to_vec())) {
                    return Ok(());
                }
            }
            send(Part::Blake3(hasher.finalize().as_bytes().to_vec()));
            Ok(())
        });
        let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let resp = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            resp = call => resp,
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StreamingError::Network(NetworkError::new(&e))),
            Err(e) => return Err(StreamingError::Network(NetworkError::new(&AnyError::error(e.to_string())))),
        }
        let resp = resp.map_err(|s| StreamingError::from(status_to_rpc_error(s)))?;
        tracing::info!(target, "snapshot sent");
        Ok(Self::decode(resp.get_ref())?)
    }

    fn backoff(&self) -> Option<Backoff> {
        // Retry an unreachable peer at a steady, short interval: fast recovery after a
        // partition heals without a tight loop while it lasts.
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(100))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_apply() {
        let r = parse_routes("2=127.0.0.1:9002, 3=127.0.0.1:9003").unwrap();
        let ch = PeerChannels::with_routes(r);
        assert_eq!(ch.route(2, "127.0.0.12:7400"), "127.0.0.1:9002");
        assert_eq!(ch.route(4, "127.0.0.14:7400"), "127.0.0.14:7400");
        assert!(parse_routes("2").is_err());
        assert!(parse_routes("x=127.0.0.1:1").is_err());
        assert!(parse_routes("2=nowhere").is_err());
        assert!(parse_routes("").unwrap().is_empty());
    }
}
