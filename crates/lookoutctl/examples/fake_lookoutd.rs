//! A stand-in for `lookoutd` used by lookoutctl's own tests: same command line
//! (`--config <cluster.toml> --node <id>`), same client services and server
//! conventions, but no Raft. The voter with the lowest id is the leader (after a
//! short pretend election); every other node refuses writes and non-stale reads
//! with `Unavailable` plus leader hints, and serves stale reads from its own
//! (empty) store. Nothing is persisted. Exits 0 on SIGTERM.
//!
//! `FAKE_LOOKOUTD_CRASH=<id>:<ms>` makes node `<id>` exit with code 3 after `<ms>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use lookout_client::proto;
use lookout_client::proto::admin_server::Admin;
use lookout_client::proto::admin_server::AdminServer;
use lookout_client::proto::kv_server::Kv;
use lookout_client::proto::kv_server::KvServer;
use lookout_config::ClusterConfig;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::metadata::MetadataValue;

const ELECTION: Duration = Duration::from_millis(600);

struct Node {
    cfg: ClusterConfig,
    id: u64,
    leader: u64,
    started: Instant,
    data: Mutex<(u64, BTreeMap<Vec<u8>, proto::KeyValue>)>,
}

impl Node {
    fn leader_known(&self) -> bool {
        self.started.elapsed() >= ELECTION
    }

    fn refuse(&self) -> Status {
        let mut s = Status::unavailable(format!("node {} is not the leader", self.id));
        if self.leader_known() {
            let addr = self.cfg.node(self.leader).unwrap().client_addr.to_string();
            s.metadata_mut().insert(
                "lookout-leader-id",
                MetadataValue::try_from(self.leader.to_string()).unwrap(),
            );
            s.metadata_mut().insert(
                "lookout-leader-addr",
                MetadataValue::try_from(addr).unwrap(),
            );
        }
        s
    }

    fn write(&self) -> Result<(), Status> {
        if self.id == self.leader && self.leader_known() {
            Ok(())
        } else {
            Err(self.refuse())
        }
    }

    fn read(&self, read: &Option<proto::ReadOptions>) -> Result<proto::ReadHeader, Status> {
        let consistency = read.as_ref().map(|r| r.consistency).unwrap_or(0);
        if consistency != proto::Consistency::Stale as i32 {
            self.write()?;
        }
        Ok(proto::ReadHeader {
            applied_index: self.data.lock().unwrap().0,
            consistency,
            staleness_ms: 0,
            served_by: self.id,
        })
    }
}

fn check_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        Err(Status::invalid_argument("key: must not be empty"))
    } else {
        Ok(())
    }
}

#[derive(Clone)]
struct Svc(Arc<Node>);

#[tonic::async_trait]
impl Kv for Svc {
    async fn put(
        &self,
        r: Request<proto::PutRequest>,
    ) -> Result<Response<proto::PutResponse>, Status> {
        let r = r.into_inner();
        check_key(&r.key)?;
        self.0.write()?;
        let mut d = self.0.data.lock().unwrap();
        d.0 += 1;
        let index = d.0;
        let kv = d.1.entry(r.key.clone()).or_insert_with(|| proto::KeyValue {
            key: r.key.clone(),
            create_index: index,
            ..Default::default()
        });
        kv.value = r.value;
        kv.version += 1;
        kv.mod_index = index;
        Ok(Response::new(proto::PutResponse {
            index,
            version: kv.version,
        }))
    }

    async fn get(
        &self,
        r: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        let r = r.into_inner();
        check_key(&r.key)?;
        let header = self.0.read(&r.read)?;
        let d = self.0.data.lock().unwrap();
        let kv = d.1.get(&r.key).cloned();
        Ok(Response::new(proto::GetResponse {
            header: Some(header),
            found: kv.is_some(),
            kv,
        }))
    }

    async fn delete(
        &self,
        r: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let r = r.into_inner();
        check_key(&r.key)?;
        self.0.write()?;
        let mut d = self.0.data.lock().unwrap();
        d.0 += 1;
        let existed = d.1.remove(&r.key).is_some();
        Ok(Response::new(proto::DeleteResponse {
            index: d.0,
            existed,
        }))
    }

    async fn compare_and_swap(
        &self,
        r: Request<proto::CompareAndSwapRequest>,
    ) -> Result<Response<proto::CompareAndSwapResponse>, Status> {
        use proto::compare_and_swap_request::Expected as E;
        let r = r.into_inner();
        check_key(&r.key)?;
        self.0.write()?;
        let mut d = self.0.data.lock().unwrap();
        d.0 += 1;
        let index = d.0;
        let current = d.1.get(&r.key).cloned();
        let ok = match &r.expected {
            Some(E::ExpectedValue(v)) => current.as_ref().is_some_and(|c| &c.value == v),
            Some(E::ExpectedVersion(0)) | Some(E::ExpectAbsent(_)) => current.is_none(),
            Some(E::ExpectedVersion(n)) => current.as_ref().is_some_and(|c| c.version == *n),
            None => return Err(Status::invalid_argument("expected: missing")),
        };
        let mut new_version = 0;
        if ok && r.delete {
            d.1.remove(&r.key);
        } else if ok {
            let kv = d.1.entry(r.key.clone()).or_insert_with(|| proto::KeyValue {
                key: r.key.clone(),
                create_index: index,
                ..Default::default()
            });
            kv.value = r.value;
            kv.version += 1;
            kv.mod_index = index;
            new_version = kv.version;
        }
        Ok(Response::new(proto::CompareAndSwapResponse {
            index,
            succeeded: ok,
            found: current.is_some(),
            current,
            new_version,
        }))
    }

    async fn range(
        &self,
        r: Request<proto::RangeRequest>,
    ) -> Result<Response<proto::RangeResponse>, Status> {
        let r = r.into_inner();
        let header = self.0.read(&r.read)?;
        let limit = if r.limit == 0 { 1000 } else { r.limit as usize };
        let d = self.0.data.lock().unwrap();
        let mut kvs: Vec<proto::KeyValue> = d
            .1
            .range(r.prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&r.prefix))
            .filter(|(k, _)| r.continuation.is_empty() || k.as_slice() > r.continuation.as_slice())
            .map(|(_, v)| v.clone())
            .take(limit + 1)
            .collect();
        let continuation = if kvs.len() > limit {
            kvs.truncate(limit);
            kvs.last().unwrap().key.clone()
        } else {
            Vec::new()
        };
        Ok(Response::new(proto::RangeResponse {
            header: Some(header),
            kvs,
            continuation,
        }))
    }
}

#[tonic::async_trait]
impl Admin for Svc {
    async fn status(
        &self,
        _: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::NodeStatus>, Status> {
        let n = &self.0;
        let me = n.cfg.node(n.id).unwrap();
        let known = n.leader_known();
        let role = match (known, n.id == n.leader, me.voter) {
            (_, _, false) => proto::Role::Learner,
            (false, _, true) => proto::Role::Candidate,
            (true, true, true) => proto::Role::Leader,
            (true, false, true) => proto::Role::Follower,
        };
        let index = n.data.lock().unwrap().0;
        Ok(Response::new(proto::NodeStatus {
            id: n.id,
            site: me.site.clone(),
            role: role as i32,
            term: 1,
            last_log_index: index,
            applied_index: index,
            committed_index: index,
            leader: if known { n.leader } else { 0 },
            leader_client_addr: if known {
                n.cfg.node(n.leader).unwrap().client_addr.to_string()
            } else {
                String::new()
            },
            digest: format!("{:016x}{:016x}", index, n.id),
            format_version: 1,
            build_version: "fake-0.1".into(),
            voters: n.cfg.voters().map(|v| v.id).collect(),
            learners: n.cfg.learners().map(|v| v.id).collect(),
            client_addr: me.client_addr.to_string(),
            keys: n.data.lock().unwrap().1.len() as u64,
            ..Default::default()
        }))
    }

    async fn add_learner(
        &self,
        _: Request<proto::AddLearnerRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.write()?;
        Err(Status::failed_precondition(
            "fake lookoutd: membership changes not supported",
        ))
    }

    async fn promote(
        &self,
        _: Request<proto::PromoteRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.write()?;
        Err(Status::failed_precondition(
            "fake lookoutd: membership changes not supported",
        ))
    }

    async fn change_membership(
        &self,
        _: Request<proto::ChangeMembershipRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.write()?;
        Err(Status::failed_precondition(
            "fake lookoutd: membership changes not supported",
        ))
    }

    async fn remove_node(
        &self,
        _: Request<proto::RemoveNodeRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.write()?;
        Err(Status::failed_precondition(
            "fake lookoutd: membership changes not supported",
        ))
    }

    async fn transfer_leader(
        &self,
        _: Request<proto::TransferLeaderRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.write()?;
        Err(Status::failed_precondition(
            "fake lookoutd: leadership transfer not supported",
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut config: Option<PathBuf> = None;
    let mut id: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--node" => id = args.next().and_then(|s| s.parse().ok()),
            other => {
                eprintln!("fake lookoutd: unexpected argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let (Some(config), Some(id)) = (config, id) else {
        eprintln!("usage: fake_lookoutd --config <cluster.toml> --node <id>");
        std::process::exit(2);
    };
    let cfg = ClusterConfig::load(&config).unwrap_or_else(|e| {
        eprintln!("fake lookoutd: {e}");
        std::process::exit(2);
    });
    let Some(me) = cfg.node(id).cloned() else {
        eprintln!("fake lookoutd: node {id} is not in {}", config.display());
        std::process::exit(2);
    };
    let leader = cfg.voters().map(|n| n.id).min().expect("a voter");
    if let Ok(spec) = std::env::var("FAKE_LOOKOUTD_CRASH")
        && let Some((who, ms)) = spec.split_once(':')
        && who.parse() == Ok(id)
    {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            eprintln!("fake lookoutd node {id}: crashing on purpose");
            std::process::exit(3);
        });
    }
    let node = Arc::new(Node {
        cfg,
        id,
        leader,
        started: Instant::now(),
        data: Mutex::new((0, BTreeMap::new())),
    });
    let svc = Svc(node);
    eprintln!("fake lookoutd node {id}: serving on {}", me.client_addr);
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let shutdown = async move {
        term.recv().await;
        eprintln!("fake lookoutd node {id}: SIGTERM, shutting down");
    };
    if let Err(e) = tonic::transport::Server::builder()
        .add_service(KvServer::new(svc.clone()))
        .add_service(AdminServer::new(svc))
        .serve_with_shutdown(me.client_addr, shutdown)
        .await
    {
        eprintln!("fake lookoutd node {id}: {e}");
        std::process::exit(1);
    }
}
