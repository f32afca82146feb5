//! `lookout.v1.Admin`: status and membership.

use std::collections::BTreeSet;
use std::time::Duration;

use lookout_proto::v1 as pb;
use lookout_proto::v1::admin_server::Admin;
use lookout_types::Node;
use lookout_types::NodeId;
use openraft::ChangeMembers;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::Ctx;
use crate::errors;

pub struct AdminService {
    pub ctx: Ctx,
}

fn role(state: ServerState) -> pb::Role {
    match state {
        ServerState::Leader => pb::Role::Leader,
        ServerState::Follower => pb::Role::Follower,
        ServerState::Candidate => pb::Role::Candidate,
        ServerState::Learner => pb::Role::Learner,
        ServerState::Shutdown => pb::Role::Shutdown,
    }
}

impl Ctx {
    pub fn status(&self) -> pb::NodeStatus {
        let node = &self.node;
        let m = node.metrics();
        let state = node.reader.status();
        let (voters, learners) = node.members();
        let leader = node.leader();
        let me = node.config.node(node.id);
        let (read_barrier_reads, read_barrier_rounds) = node.barrier.stats();
        pb::NodeStatus {
            id: node.id,
            site: me.map(|n| n.site.clone()).unwrap_or_default(),
            role: role(m.state) as i32,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: state.applied_index,
            leader: leader.as_ref().map_or(0, |(id, _)| *id),
            leader_client_addr: leader.and_then(|(_, n)| n).map(|n| n.client_addr).unwrap_or_default(),
            digest: state.digest.to_string(),
            format_version: state.format_version,
            build_version: lookout_node::BUILD_VERSION.to_string(),
            committed_index: m.cluster_committed.map(|c| c.index).unwrap_or(0),
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            client_addr: me.map(|n| n.client_addr.to_string()).unwrap_or_default(),
            snapshot_index: m.snapshot.map(|s| s.index).unwrap_or(0),
            purged_index: m.purged.map(|p| p.index).unwrap_or(0),
            keys: state.keys,
            read_barrier_reads,
            read_barrier_rounds,
        }
    }

    fn membership_response(&self, index: u64) -> pb::MembershipResponse {
        let (voters, learners) = self.node.members();
        pb::MembershipResponse { index, voters: voters.into_iter().collect(), learners: learners.into_iter().collect() }
    }

    async fn change(&self, change: ChangeMembers<NodeId, Node>, retain: bool) -> Result<pb::MembershipResponse, Status> {
        let resp = self.node.raft.change_membership(change, retain).await.map_err(|e| errors::write_error(&self.node, e))?;
        Ok(self.membership_response(resp.log_id.index))
    }

    fn require_leader(&self, what: &str) -> Result<(), Status> {
        match self.node.leader() {
            Some((id, _)) if id == self.node.id => Ok(()),
            other => Err(errors::not_leader(&self.node, other.map(|(id, _)| id), what)),
        }
    }
}

fn nonzero_id(field: &str, id: u64) -> Result<u64, Status> {
    if id == 0 {
        return Err(Status::invalid_argument(format!("{field}: node ids start at 1")));
    }
    Ok(id)
}

fn addr(field: &str, v: &str) -> Result<String, Status> {
    v.parse::<std::net::SocketAddr>()
        .map(|a| a.to_string())
        .map_err(|e| Status::invalid_argument(format!("{field}: {v:?} is not host:port ({e})")))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, req: Request<pb::StatusRequest>) -> Result<Response<pb::NodeStatus>, Status> {
        let _ticket = self.ctx.admission.admit(&req)?;
        Ok(Response::new(self.ctx.status()))
    }

    async fn add_learner(&self, req: Request<pb::AddLearnerRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let id = nonzero_id("id", r.id)?;
        let node = Node {
            peer_addr: addr("peer_addr", &r.peer_addr)?,
            client_addr: addr("client_addr", &r.client_addr)?,
            site: r.site.clone(),
        };
        if self.ctx.node.config.site(&node.site).is_none() {
            return Err(Status::invalid_argument(format!("site: {:?} is not declared in cluster.toml", node.site)));
        }
        self.ctx.require_leader("add_learner")?;
        ticket
            .run("add_learner", async {
                // Blocking: returns once the learner has caught up with the leader's log.
                let resp = self
                    .ctx
                    .node
                    .raft
                    .add_learner(id, node, true)
                    .await
                    .map_err(|e| errors::write_error(&self.ctx.node, e))?;
                Ok(Response::new(self.ctx.membership_response(resp.log_id.index)))
            })
            .await
    }

    async fn promote(&self, req: Request<pb::PromoteRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let id = nonzero_id("id", req.get_ref().id)?;
        let (_, learners) = self.ctx.node.members();
        if !learners.contains(&id) {
            return Err(Status::failed_precondition(format!("id: node {id} is not a learner; add it first")));
        }
        self.ctx.require_leader("promote")?;
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        ticket.run("promote", async { Ok(Response::new(self.ctx.change(change, false).await?)) }).await
    }

    async fn change_membership(
        &self,
        req: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        if r.voters.is_empty() {
            return Err(Status::invalid_argument("voters: must not be empty"));
        }
        let voters: BTreeSet<NodeId> = r.voters.iter().copied().collect();
        if voters.len() != r.voters.len() {
            return Err(Status::invalid_argument("voters: duplicate node id"));
        }
        self.ctx.require_leader("change_membership")?;
        let change = ChangeMembers::ReplaceAllVoters(voters);
        ticket.run("change_membership", async { Ok(Response::new(self.ctx.change(change, r.retain).await?)) }).await
    }

    async fn remove_node(&self, req: Request<pb::RemoveNodeRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let id = nonzero_id("id", req.get_ref().id)?;
        let (voters, learners) = self.ctx.node.members();
        self.ctx.require_leader("remove_node")?;
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(Status::failed_precondition("id: cannot remove the last voter"));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if learners.contains(&id) {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Err(Status::failed_precondition(format!("id: node {id} is not a member")));
        };
        ticket.run("remove_node", async { Ok(Response::new(self.ctx.change(change, false).await?)) }).await
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let to = nonzero_id("to", req.get_ref().to)?;
        let (voters, _) = self.ctx.node.members();
        if !voters.contains(&to) {
            return Err(Status::failed_precondition(format!("to: node {to} is not a voter")));
        }
        if self.ctx.node.leader().map(|(id, _)| id) == Some(to) {
            return Ok(Response::new(self.ctx.membership_response(self.ctx.node.reader.applied_index())));
        }
        self.ctx.require_leader("transfer_leader")?;
        ticket
            .run("transfer_leader", async {
                self.ctx
                    .node
                    .raft
                    .trigger()
                    .transfer_leader(to)
                    .await
                    .map_err(|e| Status::unavailable(format!("node stopped: {e}")))?;
                // Done when this node sees `to` as leader.
                let mut metrics = self.ctx.node.raft.metrics();
                loop {
                    if metrics.borrow_watched().current_leader == Some(to) {
                        break;
                    }
                    if tokio::time::timeout(Duration::from_secs(1), metrics.changed()).await.is_ok_and(|r| r.is_err()) {
                        return Err(Status::unavailable("node stopped during transfer"));
                    }
                }
                Ok(Response::new(self.ctx.membership_response(self.ctx.node.reader.applied_index())))
            })
            .await
    }
}
