//! The server side of the peer network: decodes openraft RPCs and hands them to the
//! local Raft instance; receives streamed snapshots into a file before installing.

use std::io::Write;

use futures::StreamExt;
use lookout_proto::v1::HelloRequest;
use lookout_proto::v1::HelloResponse;
use lookout_proto::v1::PeerFrame;
use lookout_proto::v1::ReadIndexRequest;
use lookout_proto::v1::ReadIndexResponse;
use lookout_proto::v1::SnapshotChunk;
use lookout_proto::v1::raft_peer_server::RaftPeer;
use lookout_proto::v1::snapshot_chunk::Part;
use lookout_store::SnapshotFile;
use lookout_types::SnapshotMeta;
use lookout_types::TypeConfig;
use lookout_types::Vote;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::VoteRequest;
use openraft::type_config::alias::SnapshotOf;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::LookoutNode;
use crate::frame;

pub struct PeerService {
    pub node: LookoutNode,
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped: {e}"))
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append(&self, req: Request<PeerFrame>) -> Result<Response<PeerFrame>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = frame::decode(req.get_ref())?;
        let resp = self.node.raft.append_entries(rpc).await.map_err(fatal)?;
        Ok(Response::new(frame::encode(&resp)))
    }

    async fn vote(&self, req: Request<PeerFrame>) -> Result<Response<PeerFrame>, Status> {
        let rpc: VoteRequest<TypeConfig> = frame::decode(req.get_ref())?;
        let resp = self.node.raft.vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(frame::encode(&resp)))
    }

    async fn pre_vote(&self, req: Request<PeerFrame>) -> Result<Response<PeerFrame>, Status> {
        let rpc: VoteRequest<TypeConfig> = frame::decode(req.get_ref())?;
        let resp = self.node.raft.pre_vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(frame::encode(&resp)))
    }

    async fn transfer_leader(&self, req: Request<PeerFrame>) -> Result<Response<PeerFrame>, Status> {
        let rpc: TransferLeaderRequest<TypeConfig> = frame::decode(req.get_ref())?;
        let resp = self.node.raft.handle_transfer_leader(rpc).await.map_err(fatal)?;
        Ok(Response::new(frame::encode(&resp)))
    }

    async fn install_snapshot(
        &self,
        req: Request<tonic::Streaming<SnapshotChunk>>,
    ) -> Result<Response<PeerFrame>, Status> {
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(SnapshotChunk { part: Some(Part::Header(h)) })) => h,
            _ => return Err(Status::invalid_argument("snapshot stream must start with a header")),
        };
        let (vote, meta): (Vote, SnapshotMeta) = frame::decode(&header)?;
        let (mut file, path) = self
            .node
            .reader
            .incoming_snapshot_file()
            .map_err(|e| Status::internal(format!("cannot create snapshot file: {e}")))?;
        let mut hasher = blake3::Hasher::new();
        let mut received = 0u64;
        let mut digest: Option<Vec<u8>> = None;
        let result: Result<(), Status> = async {
            while let Some(chunk) = stream.next().await {
                match chunk?.part {
                    Some(Part::Data(data)) if digest.is_none() => {
                        hasher.update(&data);
                        received += data.len() as u64;
                        // Writes are small and sequential; a blocking write here is bounded by
                        // the chunk size and keeps the code simple.
                        file.write_all(&data).map_err(|e| Status::internal(format!("snapshot write: {e}")))?;
                    }
                    Some(Part::Blake3(d)) if digest.is_none() => digest = Some(d),
                    _ => return Err(Status::invalid_argument("unexpected snapshot chunk")),
                }
            }
            let Some(expected) = digest.as_ref() else {
                return Err(Status::invalid_argument("snapshot stream ended without its blake3 trailer"));
            };
            if hasher.finalize().as_bytes().as_slice() != expected.as_slice() {
                return Err(Status::data_loss("snapshot stream blake3 mismatch"));
            }
            file.sync_all().map_err(|e| Status::internal(format!("snapshot fsync: {e}")))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        drop(file);
        tracing::info!(bytes = received, last_log_id = ?meta.last_log_id, "snapshot received");
        let snapshot_file = SnapshotFile::open(&path).map_err(|e| Status::internal(format!("snapshot open: {e}")))?;
        let snapshot: SnapshotOf<TypeConfig, SnapshotFile> = openraft::Snapshot { meta, snapshot: snapshot_file };
        let result = self.node.raft.install_full_snapshot(vote, snapshot).await;
        // A successful install moves the file into place; anything left is garbage.
        let _ = std::fs::remove_file(&path);
        let resp = result.map_err(fatal)?;
        Ok(Response::new(frame::encode(&resp)))
    }

    async fn hello(&self, _req: Request<HelloRequest>) -> Result<Response<HelloResponse>, Status> {
        let initialized = self.node.raft.is_initialized().await.map_err(fatal)?;
        Ok(Response::new(HelloResponse {
            node_id: self.node.id,
            cluster_name: self.node.config.cluster.name.clone(),
            initialized,
        }))
    }

    async fn read_index(&self, _req: Request<ReadIndexRequest>) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.node.barrier.read_index().await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ReadIndexResponse { index }))
    }
}
