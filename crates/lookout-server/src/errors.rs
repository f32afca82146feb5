//! The one place where errors become gRPC statuses.
//!
//! - `InvalidArgument`: the request is wrong; the message names the field.
//! - `Unavailable`: not now, here; retry (maybe elsewhere). Carries the leader hint in
//!   metadata `lookout-leader-id` / `lookout-leader-addr` when one is known.
//! - `ResourceExhausted`: shed under load; back off.
//! - `DeadlineExceeded`: the deadline passed; a write's outcome is unknown (retry it with
//!   the same request id).
//! - `DataLoss`: stored data failed its checksum; the message names what is corrupt.

use lookout_node::LookoutNode;
use lookout_node::ReadError;
use lookout_store::StoreError;
use lookout_types::NodeId;
use lookout_types::TypeConfig;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use tonic::Status;

use crate::validate::Invalid;

pub const LEADER_ID_HEADER: &str = "lookout-leader-id";
pub const LEADER_ADDR_HEADER: &str = "lookout-leader-addr";

pub fn invalid(e: Invalid) -> Status {
    Status::invalid_argument(e.to_string())
}

/// `Unavailable` with whatever this node knows about the leader.
pub fn not_leader(node: &LookoutNode, hint: Option<NodeId>, what: &str) -> Status {
    let leader = hint.or_else(|| node.leader().map(|(id, _)| id)).filter(|id| *id != node.id);
    let mut status = match leader {
        Some(id) => Status::unavailable(format!("{what}: node {} is not the leader; leader is node {id}", node.id)),
        None => Status::unavailable(format!("{what}: node {} knows no leader (election in progress?)", node.id)),
    };
    if let Some(id) = leader {
        let md = status.metadata_mut();
        if let Ok(v) = id.to_string().parse() {
            md.insert(LEADER_ID_HEADER, v);
        }
        if let Some(addr) = node.member(id).and_then(|n| n.client_addr.parse().ok()) {
            md.insert(LEADER_ADDR_HEADER, addr);
        }
    }
    status
}

pub fn read_error(node: &LookoutNode, e: ReadError) -> Status {
    match e {
        ReadError::NotLeader { leader } => not_leader(node, leader, "linearizable read"),
        ReadError::NoQuorum(why) => Status::unavailable(format!("linearizable read: no quorum: {why}")),
        ReadError::Overloaded => Status::resource_exhausted("too many reads waiting for a read barrier"),
        ReadError::Fatal(why) => Status::unavailable(format!("node stopped: {why}")),
    }
}

pub fn write_error(node: &LookoutNode, e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Status {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(node, f.leader_id, "write"),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            Status::failed_precondition(format!("membership change refused: {c}"))
        }
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(d)) => {
            Status::unavailable(format!("write discarded by a leader change, retry: {d}"))
        }
        RaftError::APIError(ClientWriteError::PreconditionFailed(p)) => Status::failed_precondition(p.to_string()),
        RaftError::Fatal(f) => Status::unavailable(format!("node stopped: {f}")),
    }
}

pub fn store_error(e: StoreError) -> Status {
    match e {
        StoreError::Corrupt { .. } => Status::data_loss(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

pub fn deadline(what: &str, after: std::time::Duration) -> Status {
    Status::deadline_exceeded(format!("{what}: deadline of {after:?} passed (a write's outcome is unknown; retry with the same request id)"))
}
