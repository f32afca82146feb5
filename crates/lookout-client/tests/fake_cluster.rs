//! The client's routing and retry behaviour against in-process fake nodes that
//! follow the server conventions (redirecting `Unavailable` with leader hints,
//! `ResourceExhausted` when overloaded, `InvalidArgument` for bad input).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use lookout_client::Client;
use lookout_client::ClientOptions;
use lookout_client::Expected;
use lookout_client::NewValue;
use lookout_client::ReadOpts;
use lookout_client::proto;
use lookout_client::proto::admin_server::Admin;
use lookout_client::proto::admin_server::AdminServer;
use lookout_client::proto::kv_server::Kv;
use lookout_client::proto::kv_server::KvServer;
use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::metadata::MetadataValue;

#[derive(Default)]
struct Behaviour {
    /// Some((id, addr)): a follower that redirects writes there.
    redirect_to: Option<(u64, String)>,
    /// Answer this many calls with ResourceExhausted first.
    overloaded: AtomicU32,
    /// Sleep this long before answering.
    delay: Option<Duration>,
}

struct FakeNode {
    id: u64,
    b: Behaviour,
    /// (method, request id) of every call received.
    calls: Mutex<Vec<(&'static str, Vec<u8>)>>,
}

impl FakeNode {
    async fn admit(&self, method: &'static str, rid: Vec<u8>, write: bool) -> Result<(), Status> {
        self.calls.lock().unwrap().push((method, rid));
        if let Some(d) = self.b.delay {
            tokio::time::sleep(d).await;
        }
        if self
            .b
            .overloaded
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::resource_exhausted("overloaded"));
        }
        if write && let Some((id, addr)) = &self.b.redirect_to {
            let mut s = Status::unavailable(format!("node {} is not the leader", self.id));
            s.metadata_mut().insert(
                "lookout-leader-id",
                MetadataValue::try_from(id.to_string()).unwrap(),
            );
            s.metadata_mut().insert(
                "lookout-leader-addr",
                MetadataValue::try_from(addr.as_str()).unwrap(),
            );
            return Err(s);
        }
        Ok(())
    }

    fn calls(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.calls.lock().unwrap().clone()
    }
}

fn rid(h: &Option<proto::WriteHeader>) -> Vec<u8> {
    h.as_ref().map(|h| h.request_id.clone()).unwrap_or_default()
}

#[derive(Clone)]
struct Svc(Arc<FakeNode>);

#[tonic::async_trait]
impl Kv for Svc {
    async fn put(
        &self,
        r: Request<proto::PutRequest>,
    ) -> Result<Response<proto::PutResponse>, Status> {
        let r = r.into_inner();
        if r.key.is_empty() {
            return Err(Status::invalid_argument("key: must not be empty"));
        }
        self.0.admit("put", rid(&r.header), true).await?;
        Ok(Response::new(proto::PutResponse {
            index: 7,
            version: 1,
        }))
    }
    async fn get(
        &self,
        r: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        let r = r.into_inner();
        self.0.admit("get", Vec::new(), false).await?;
        let read = r.read.unwrap_or_default();
        Ok(Response::new(proto::GetResponse {
            header: Some(proto::ReadHeader {
                applied_index: 7,
                consistency: read.consistency,
                staleness_ms: read.max_staleness_ms,
                served_by: self.0.id,
            }),
            found: true,
            kv: Some(proto::KeyValue {
                key: r.key,
                value: b"v".to_vec(),
                version: 1,
                create_index: 7,
                mod_index: 7,
            }),
        }))
    }
    async fn delete(
        &self,
        r: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        self.0
            .admit("delete", rid(&r.get_ref().header), true)
            .await?;
        Ok(Response::new(proto::DeleteResponse {
            index: 8,
            existed: true,
        }))
    }
    async fn compare_and_swap(
        &self,
        r: Request<proto::CompareAndSwapRequest>,
    ) -> Result<Response<proto::CompareAndSwapResponse>, Status> {
        let r = r.into_inner();
        self.0.admit("cas", rid(&r.header), true).await?;
        use proto::compare_and_swap_request::Expected as E;
        let succeeded =
            matches!(r.expected, Some(E::ExpectedVersion(1))) && !r.delete && r.value == b"new";
        Ok(Response::new(proto::CompareAndSwapResponse {
            index: 9,
            succeeded,
            found: true,
            current: None,
            new_version: 2,
        }))
    }
    async fn range(
        &self,
        r: Request<proto::RangeRequest>,
    ) -> Result<Response<proto::RangeResponse>, Status> {
        let r = r.into_inner();
        self.0.admit("range", Vec::new(), false).await?;
        // Three pages: continuation "1", "2", then done.
        let page: u8 = r.continuation.first().map(|c| c - b'0').unwrap_or(0);
        let kv = proto::KeyValue {
            key: [r.prefix.clone(), vec![b'0' + page]].concat(),
            ..Default::default()
        };
        let continuation = if page < 2 {
            vec![b'0' + page + 1]
        } else {
            Vec::new()
        };
        Ok(Response::new(proto::RangeResponse {
            header: None,
            kvs: vec![kv],
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
        let leader = self
            .0
            .b
            .redirect_to
            .as_ref()
            .map(|(id, _)| *id)
            .unwrap_or(self.0.id);
        let role = if leader == self.0.id {
            proto::Role::Leader
        } else {
            proto::Role::Follower
        };
        Ok(Response::new(proto::NodeStatus {
            id: self.0.id,
            role: role as i32,
            leader,
            term: 3,
            ..Default::default()
        }))
    }
    async fn add_learner(
        &self,
        _: Request<proto::AddLearnerRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn promote(
        &self,
        _: Request<proto::PromoteRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn change_membership(
        &self,
        _: Request<proto::ChangeMembershipRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_node(
        &self,
        _: Request<proto::RemoveNodeRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn transfer_leader(
        &self,
        r: Request<proto::TransferLeaderRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        self.0.admit("transfer", Vec::new(), true).await?;
        Ok(Response::new(proto::MembershipResponse {
            index: 10,
            voters: vec![r.get_ref().to],
            learners: vec![],
        }))
    }
}

/// Starts a fake node on an ephemeral loopback port; returns it and its address.
async fn start(id: u64, b: Behaviour) -> (Arc<FakeNode>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let node = Arc::new(FakeNode {
        id,
        b,
        calls: Mutex::new(Vec::new()),
    });
    let svc = Svc(node.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(KvServer::new(svc.clone()))
            .add_service(AdminServer::new(svc))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (node, addr)
}

/// An address nothing listens on.
async fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn opts(deadline_ms: u64) -> ClientOptions {
    ClientOptions {
        deadline: Duration::from_millis(deadline_ms),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn follows_leader_hint_to_an_unlisted_leader_and_remembers_it() {
    let (leader, leader_addr) = start(2, Behaviour::default()).await;
    let follower_b = Behaviour {
        redirect_to: Some((2, leader_addr.clone())),
        ..Default::default()
    };
    let (follower, follower_addr) = start(1, follower_b).await;

    let client = Client::new(vec![follower_addr.clone()], opts(2000)).unwrap();
    let put = client.put("k", "v").await.unwrap();
    assert_eq!((put.index, put.version), (7, 1));
    assert_eq!(client.known_leader(), Some(leader_addr.clone()));
    assert_eq!(client.endpoints(), vec![follower_addr, leader_addr]);
    // The follower saw the write once, the leader once, with the same request id.
    let (f, l) = (follower.calls(), leader.calls());
    assert_eq!(f.len(), 1);
    assert_eq!(l.len(), 1);
    assert_eq!(f[0].1.len(), 16);
    assert_eq!(f[0].1, l[0].1);

    // Later writes go straight to the leader.
    client.delete("k").await.unwrap();
    assert_eq!(follower.calls().len(), 1);
    assert_eq!(leader.calls().len(), 2);
    assert_ne!(
        leader.calls()[0].1,
        leader.calls()[1].1,
        "each logical write has its own id"
    );

    // Admin ops are routed the same way.
    let m = client.transfer_leader(1).await.unwrap();
    assert_eq!(m.voters, vec![1]);
}

#[tokio::test]
async fn overloaded_node_is_retried_with_the_same_request_id() {
    let b = Behaviour {
        overloaded: AtomicU32::new(3),
        ..Default::default()
    };
    let (node, addr) = start(1, b).await;
    let client = Client::new(vec![addr], opts(3000)).unwrap();
    let t = Instant::now();
    let cas = client
        .compare_and_swap("k", Expected::Version(1), NewValue::Put(b"new".to_vec()))
        .await
        .unwrap();
    assert!(cas.succeeded);
    let calls = node.calls();
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|(m, id)| *m == "cas" && *id == calls[0].1));
    // Three backoffs of at least 5, 10, 20 ms (half of 10, 20, 40).
    assert!(
        t.elapsed() >= Duration::from_millis(35),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let (node, addr) = start(1, Behaviour::default()).await;
    let client = Client::new(vec![addr.clone()], opts(2000)).unwrap();
    let err = client.put("", "v").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert_eq!(err.message(), "key: must not be empty");
    assert!(
        err.to_string()
            .starts_with("InvalidArgument: key: must not be empty"),
        "{err}"
    );
    assert!(matches!(
        err,
        lookout_client::ClientError::Status { attempts: 1, .. }
    ));
    assert!(node.calls().is_empty()); // rejected before admit
}

#[tokio::test]
async fn dead_endpoint_is_skipped() {
    let dead = dead_addr().await;
    let (node, addr) = start(1, Behaviour::default()).await;
    let client = Client::new(vec![dead.clone(), addr.clone()], opts(2000)).unwrap();
    let got = client.get("k", ReadOpts::linearizable()).await.unwrap();
    assert!(got.found);
    assert_eq!(got.header.unwrap().served_by, 1);
    assert_eq!(node.calls().len(), 1);

    let all = client.status_all().await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, dead);
    let err = all[0].1.as_ref().unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert_eq!(all[1].1.as_ref().unwrap().id, 1);
    assert_eq!(client.leader_status().await.unwrap().id, 1);
}

#[tokio::test]
async fn pinned_client_returns_the_redirect_instead_of_following_it() {
    let (leader, leader_addr) = start(2, Behaviour::default()).await;
    let b = Behaviour {
        redirect_to: Some((2, leader_addr.clone())),
        ..Default::default()
    };
    let (follower, follower_addr) = start(1, b).await;
    let client = Client::new(vec![leader_addr.clone(), follower_addr.clone()], opts(2000)).unwrap();
    let pinned = client.for_endpoint(&follower_addr).unwrap();

    // Reads are served by the pinned node itself.
    let got = pinned
        .get("k", ReadOpts::stale(Some(Duration::from_millis(100))))
        .await
        .unwrap();
    let h = got.header.unwrap();
    assert_eq!(h.served_by, 1);
    assert_eq!(h.consistency, proto::Consistency::Stale as i32);
    assert_eq!(h.staleness_ms, 100);

    // A write is refused with the hint, after one attempt.
    let err = pinned.put("k", "v").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable));
    let hint = err.leader_hint().unwrap();
    assert_eq!(hint.id, Some(2));
    assert_eq!(hint.addr.as_deref(), Some(leader_addr.as_str()));
    assert!(
        err.to_string()
            .contains(&format!("leader is node 2 at {leader_addr}")),
        "{err}"
    );
    assert_eq!(follower.calls().len(), 2);
    assert!(leader.calls().is_empty());
}

#[tokio::test]
async fn range_all_follows_continuations() {
    let (_node, addr) = start(1, Behaviour::default()).await;
    let client = Client::new(vec![addr], opts(2000)).unwrap();
    let kvs = client.range_all("p/", ReadOpts::lease()).await.unwrap();
    let keys: Vec<_> = kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect();
    assert_eq!(keys, vec!["p/0", "p/1", "p/2"]);
    let page = client
        .range("p/", 1, Vec::new(), ReadOpts::lease())
        .await
        .unwrap();
    assert_eq!(page.continuation, b"1");
}

#[tokio::test]
async fn slow_node_hits_the_overall_deadline() {
    let b = Behaviour {
        delay: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let (_node, addr) = start(1, b).await;
    let client = Client::new(vec![addr], opts(300)).unwrap();
    let t = Instant::now();
    let err = client.put("k", "v").await.unwrap_err();
    let took = t.elapsed();
    assert_eq!(err.code(), Some(Code::DeadlineExceeded), "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_hung_leader_is_left_after_one_timed_out_call() {
    let hung = Behaviour {
        delay: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let (hung_node, hung_addr) = start(1, hung).await;
    let (good_node, good_addr) = start(2, Behaviour::default()).await;
    let client = Client::new(vec![hung_addr, good_addr], opts(300)).unwrap();
    let err = client.put("k", "v").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::DeadlineExceeded), "{err}");
    // The next call starts at the other endpoint instead of waiting on the hung one.
    client.put("k", "v").await.unwrap();
    assert_eq!(hung_node.calls().len(), 1);
    assert_eq!(good_node.calls().len(), 1);
}

#[tokio::test]
async fn attempt_timeout_moves_on_within_one_call() {
    let hung = Behaviour {
        delay: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let (_hung_node, hung_addr) = start(1, hung).await;
    let (good_node, good_addr) = start(2, Behaviour::default()).await;
    let opts = ClientOptions {
        attempt_timeout: Some(Duration::from_millis(100)),
        ..opts(2000)
    };
    let client = Client::new(vec![hung_addr, good_addr], opts).unwrap();
    let t = Instant::now();
    client.put("k", "v").await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(good_node.calls().len(), 1);
}
