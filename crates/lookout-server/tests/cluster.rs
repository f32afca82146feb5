//! Acceptance tests of the replicated core against real `lookoutd` processes on
//! 127.x.y.z: real sled files, real gRPC, real faults (kill -9, SIGSTOP).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use lookout_proto::v1 as pb;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use lookout_testkit::request_id;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_lookoutd");
const LEADER_WAIT: Duration = Duration::from_secs(20);

/// Clusters of 3-6 processes on a 2-core machine: one test at a time keeps timing sane.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start(spec: &ClusterSpec) -> (std::sync::MutexGuard<'static, ()>, TestCluster) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    (guard, TestCluster::start(spec, Path::new(BIN)).expect("start cluster"))
}

fn timed<T>(msg: T, ms: u64) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_millis(ms));
    r
}

async fn put(c: &TestCluster, node: u64, key: &str, value: &str, id: u64) -> Result<pb::PutResponse, tonic::Status> {
    let req = pb::PutRequest {
        header: Some(pb::WriteHeader { request_id: request_id(id) }),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    };
    c.kv(node).put(timed(req, 2000)).await.map(|r| r.into_inner())
}

async fn get(c: &TestCluster, node: u64, key: &str, consistency: pb::Consistency) -> Result<pb::GetResponse, tonic::Status> {
    let req = pb::GetRequest {
        read: Some(pb::ReadOptions { consistency: consistency as i32, max_staleness_ms: 0 }),
        key: key.as_bytes().to_vec(),
    };
    c.kv(node).get(timed(req, 3000)).await.map(|r| r.into_inner())
}

fn value_of(r: &pb::GetResponse) -> Option<String> {
    r.kv.as_ref().filter(|_| r.found).map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

/// Writes through whichever node leads, following the leader hint, retrying with the
/// same request id. Returns the response and the node that took it.
async fn put_anywhere(c: &TestCluster, key: &str, value: &str, id: u64, timeout: Duration) -> Option<pb::PutResponse> {
    c.on_leader(timeout, |node| put(c, node, key, value, id)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_linearizable_everywhere_and_stale_reads_report_staleness() {
    let (_serial, c) = start(&ClusterSpec::five());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let mut last = 0;
    for i in 0..20 {
        let r = put(&c, leader, &format!("k{i}"), &format!("v{i}"), i).await.unwrap();
        assert!(r.index > last, "indexes increase");
        assert_eq!(r.version, 1);
        last = r.index;
    }
    for node in 1..=5 {
        for i in 0..20 {
            let r = get(&c, node, &format!("k{i}"), pb::Consistency::Linearizable).await.unwrap();
            assert_eq!(value_of(&r).as_deref(), Some(format!("v{i}").as_str()), "node {node} key k{i}");
            let h = r.header.unwrap();
            assert!(h.applied_index >= last, "linearizable read on {node} reflects index {} < {last}", h.applied_index);
            assert_eq!(h.served_by, node);
        }
        let r = get(&c, node, "k3", pb::Consistency::Lease).await;
        if node == leader {
            assert_eq!(value_of(&r.unwrap()).as_deref(), Some("v3"));
        }
    }
    // Concurrent linearizable reads share read-barrier rounds.
    let before = c.status(leader).await.unwrap();
    let mut tasks = vec![];
    let clients: Vec<_> = (0..4).map(|_| c.kv(leader)).collect();
    for i in 0..200u64 {
        let mut kv = clients[i as usize % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            kv.get(pb::GetRequest { read: None, key: format!("k{}", i % 20).into_bytes() }).await.map(|r| r.into_inner())
        }));
    }
    for t in tasks {
        assert!(value_of(&t.await.unwrap().unwrap()).is_some());
    }
    let after = c.status(leader).await.unwrap();
    let reads = after.read_barrier_reads - before.read_barrier_reads;
    let rounds = after.read_barrier_rounds - before.read_barrier_rounds;
    assert!(reads >= 200, "{reads} reads went through the barrier");
    assert!(rounds < reads / 2, "{reads} concurrent reads took {rounds} quorum rounds");
    eprintln!("{reads} concurrent linearizable reads shared {rounds} barrier rounds");

    // STALE reads: every node answers and states its staleness, which is small while the
    // cluster is healthy.
    c.wait_applied(&[1, 2, 3, 4, 5], last, Duration::from_secs(5)).await.unwrap();
    for node in 1..=5 {
        let req = pb::GetRequest {
            read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 5000 }),
            key: b"k7".to_vec(),
        };
        let r = c.kv(node).get(timed(req, 2000)).await.unwrap().into_inner();
        let h = r.header.clone().unwrap();
        assert_eq!(h.consistency, pb::Consistency::Stale as i32);
        assert!(h.staleness_ms < 5000, "node {node} staleness {} ms", h.staleness_ms);
        assert!(h.applied_index >= last);
        assert_eq!(value_of(&r).as_deref(), Some("v7"));
    }
    // Status reports the same digest everywhere at the same applied index.
    let statuses: Vec<_> = futures_join(&c, &[1, 2, 3, 4, 5]).await;
    let digests: std::collections::BTreeSet<_> =
        statuses.iter().filter(|s| s.applied_index == statuses[0].applied_index).map(|s| s.digest.clone()).collect();
    assert_eq!(digests.len(), 1, "digests differ at the same index: {statuses:?}");
    for s in &statuses {
        assert_eq!(s.format_version, lookout_store::FORMAT_VERSION);
        assert!(!s.build_version.is_empty());
        assert!(!s.site.is_empty());
        assert_eq!(s.voters, vec![1, 2, 3, 4, 5]);
    }
}

async fn futures_join(c: &TestCluster, ids: &[u64]) -> Vec<pb::NodeStatus> {
    let mut out = vec![];
    for &id in ids {
        out.push(c.status(id).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_leader_loses_no_acknowledged_write_and_applies_none_twice() {
    let (_serial, mut c) = start(&ClusterSpec::five());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut attempted: Vec<String> = vec![];
    let kill_at = 40;
    for i in 0..120u64 {
        if i == kill_at {
            c.kill(leader).unwrap();
        }
        let key = format!("crash/{i:04}");
        let value = format!("value-{i}");
        attempted.push(key.clone());
        if let Some(_r) = put_anywhere(&c, &key, &value, 10_000 + i, Duration::from_secs(6)).await {
            acked.insert(key, value);
        }
    }
    let new_leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    assert_ne!(new_leader, leader, "a new leader took over");
    assert!(acked.len() >= 100, "writes kept succeeding after the crash: {} acked", acked.len());
    // Restart the old leader too: it must rejoin without losing anything.
    c.start_node(leader).unwrap();
    c.wait_leader(LEADER_WAIT).await.unwrap();
    for key in &attempted {
        let r = get(&c, new_leader, key, pb::Consistency::Linearizable).await.unwrap();
        match acked.get(key) {
            Some(v) => {
                assert_eq!(value_of(&r).as_deref(), Some(v.as_str()), "acknowledged write {key} lost");
            }
            None => {}
        }
        if let Some(kv) = r.kv.filter(|_| r.found) {
            // Each key is written once by one logical request (retried with the same id):
            // a version above 1 means a retry was applied twice.
            assert_eq!(kv.version, 1, "{key} applied {} times", kv.version);
        }
    }
}

/// A leader killed with `kill -9` right after acknowledging writes and restarted at once
/// (before any follower's election timeout) must not resume its old term: its state and
/// committed index are rebuilt from the log, so as a resumed leader it could answer reads
/// from before writes it had acknowledged. It has to win (or lose) a new election, and every
/// acknowledged write is read back through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_leader_does_not_resume_its_term() {
    let (_serial, mut c) = start(&ClusterSpec::three());
    for round in 0..3u64 {
        let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
        let term = c.status(leader).await.unwrap().term;
        let mut last = String::new();
        for i in 0..30u64 {
            last = format!("round-{round}-{i}");
            put(&c, leader, "restart/key", &last, 90_000 + round * 100 + i).await.unwrap();
        }
        c.kill(leader).unwrap();
        c.start_node(leader).unwrap();
        c.wait_serving(leader, LEADER_WAIT).await.unwrap();
        let now_leader = c.wait_leader(LEADER_WAIT).await.unwrap();
        let st = c.status(now_leader).await.unwrap();
        assert!(st.term > term, "round {round}: node {leader} was leader in term {term}; after its restart the leader is node {now_leader} in term {}", st.term);
        let r = get(&c, leader, "restart/key", pb::Consistency::Linearizable).await.unwrap();
        assert_eq!(value_of(&r).as_deref(), Some(last.as_str()), "round {round}: last acknowledged write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_by_log_and_by_snapshot() {
    let spec = ClusterSpec::three().raft("snapshot_logs_since_last", 50).raft("logs_to_keep_after_snapshot", 5);
    let (_serial, mut c) = start(&spec);
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    // 1. Short outage: catch up from the log.
    c.kill(follower).unwrap();
    let mut last = 0;
    for i in 0..10 {
        last = put_anywhere(&c, &format!("a{i}"), "x", 20_000 + i, Duration::from_secs(5)).await.unwrap().index;
    }
    c.start_node(follower).unwrap();
    c.wait_applied(&[follower], last, Duration::from_secs(20)).await.unwrap();

    // 2. Long outage across log compaction: catch up by snapshot install.
    c.kill(follower).unwrap();
    let before = last;
    for i in 0..300 {
        last = put_anywhere(&c, &format!("b{i:03}"), &format!("{i}"), 30_000 + i, Duration::from_secs(5)).await.unwrap().index;
    }
    // The leader purges its log past the follower's position (in the background).
    c.wait_purged(leader, before, Duration::from_secs(10)).await.unwrap();
    c.start_node(follower).unwrap();
    c.wait_applied(&[follower], last, Duration::from_secs(30)).await.unwrap();
    let fs = c.status(follower).await.unwrap();
    assert!(fs.snapshot_index > before, "follower installed a snapshot (snapshot index {})", fs.snapshot_index);
    assert!(c.log(follower).contains("snapshot received"), "follower log shows a snapshot install");
    // Same content: same digest at the same index once nothing else is written.
    let ls = c.status(leader).await.unwrap();
    let fs = c.status(follower).await.unwrap();
    assert_eq!(ls.applied_index, fs.applied_index);
    assert_eq!(ls.digest, fs.digest, "digest after snapshot install");
    let req = pb::GetRequest {
        read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
        key: b"b150".to_vec(),
    };
    let r = c.kv(follower).get(timed(req, 2000)).await.unwrap().into_inner();
    assert_eq!(value_of(&r).as_deref(), Some("150"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_learner_promote_remove_and_transfer_leader() {
    let spec = ClusterSpec::five().with_node(6, "alternate", false);
    let (_serial, mut c) = start(&spec);
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    put_anywhere(&c, "m/1", "before-join", 40_000, Duration::from_secs(5)).await.unwrap();
    c.start_node(6).unwrap();
    c.wait_serving(6, Duration::from_secs(10)).await.unwrap();
    let add = pb::AddLearnerRequest {
        id: 6,
        peer_addr: c.peer_addr(6),
        client_addr: c.client_addr(6),
        site: "alternate".into(),
    };
    let r = c.admin(leader).add_learner(timed(add, 5000)).await.unwrap().into_inner();
    assert_eq!(r.learners, vec![6]);
    let r = c.admin(leader).promote(timed(pb::PromoteRequest { id: 6 }, 5000)).await.unwrap().into_inner();
    assert!(r.voters.contains(&6), "{r:?}");
    // The new voter serves linearizable reads of data written before it joined.
    let g = get(&c, 6, "m/1", pb::Consistency::Linearizable).await.unwrap();
    assert_eq!(value_of(&g).as_deref(), Some("before-join"));

    // Transfer leadership to a named node.
    let target = if leader == 3 { 4 } else { 3 };
    c.admin(leader).transfer_leader(timed(pb::TransferLeaderRequest { to: target }, 5000)).await.unwrap();
    assert_eq!(c.wait_leader(LEADER_WAIT).await.unwrap(), target);

    let r = c.admin(target).remove_node(timed(pb::RemoveNodeRequest { id: 6 }, 5000)).await.unwrap().into_inner();
    assert!(!r.voters.contains(&6) && !r.learners.contains(&6), "{r:?}");
    let s = c.status(target).await.unwrap();
    assert_eq!(s.voters, vec![1, 2, 3, 4, 5]);
    // Membership ops on a follower point at the leader.
    let follower = [1, 2, 3, 4, 5].into_iter().find(|id| *id != target).unwrap();
    let e = c.admin(follower).remove_node(timed(pb::RemoveNodeRequest { id: 5 }, 2000)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.metadata().get("lookout-leader-id").unwrap().to_str().unwrap(), target.to_string());
}

fn expect<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>, code: Code, field: &str) {
    let e = r.expect_err("must fail");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(e.message().starts_with(field), "message {:?} names {field}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_status_and_corruption_is_reported() {
    let spec = ClusterSpec::three().limit("max_in_flight", 64);
    let (_serial, mut c) = start(&spec);
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let mut kv = c.kv(leader);

    expect(kv.put(pb::PutRequest { header: None, key: vec![], value: b"v".to_vec() }).await, Code::InvalidArgument, "key");
    expect(kv.put(pb::PutRequest { header: None, key: vec![b'k'; 4097], value: vec![] }).await, Code::InvalidArgument, "key");
    expect(
        kv.put(pb::PutRequest { header: None, key: b"k".to_vec(), value: vec![0; (1 << 20) + 1] }).await,
        Code::InvalidArgument,
        "value",
    );
    expect(
        kv.put(pb::PutRequest { header: Some(pb::WriteHeader { request_id: vec![1; 3] }), key: b"k".to_vec(), value: vec![] })
            .await,
        Code::InvalidArgument,
        "header.request_id",
    );
    expect(
        kv.get(pb::GetRequest { read: Some(pb::ReadOptions { consistency: 9, max_staleness_ms: 0 }), key: b"k".to_vec() }).await,
        Code::InvalidArgument,
        "read.consistency",
    );
    expect(
        kv.compare_and_swap(pb::CompareAndSwapRequest { key: b"k".to_vec(), ..Default::default() }).await,
        Code::InvalidArgument,
        "expected",
    );
    expect(
        kv.range(pb::RangeRequest { prefix: b"p".to_vec(), limit: 1_000_000, ..Default::default() }).await,
        Code::InvalidArgument,
        "limit",
    );
    // A write to a follower: Unavailable with the leader's address.
    let e = put(&c, follower, "k", "v", 50_000).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.metadata().get("lookout-leader-addr").unwrap().to_str().unwrap(), c.client_addr(leader));

    // Retried writes are applied once: same request id, same answer, version stays 1.
    let first = put(&c, leader, "dedup", "v", 50_001).await.unwrap();
    let again = put(&c, leader, "dedup", "v", 50_001).await.unwrap();
    assert_eq!(first.index, again.index);
    assert_eq!(again.version, 1);

    // CAS on version and value.
    let cas = |expected, value: &str| pb::CompareAndSwapRequest {
        header: None,
        key: b"dedup".to_vec(),
        expected: Some(expected),
        value: value.as_bytes().to_vec(),
        delete: false,
    };
    use pb::compare_and_swap_request::Expected as E;
    let r = kv.compare_and_swap(cas(E::ExpectedVersion(7), "no")).await.unwrap().into_inner();
    assert!(!r.succeeded && r.found && r.current.as_ref().unwrap().version == 1);
    let r = kv.compare_and_swap(cas(E::ExpectedValue(b"v".to_vec()), "w")).await.unwrap().into_inner();
    assert!(r.succeeded && r.new_version == 2);

    // Range pages with continuation.
    for i in 0..25 {
        put(&c, leader, &format!("page/{i:02}"), "x", 50_100 + i).await.unwrap();
    }
    let mut seen = vec![];
    let mut token = vec![];
    loop {
        let r = kv
            .range(pb::RangeRequest { prefix: b"page/".to_vec(), limit: 10, continuation: token.clone(), read: None })
            .await
            .unwrap()
            .into_inner();
        seen.extend(r.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()));
        if r.continuation.is_empty() {
            break;
        }
        token = r.continuation;
    }
    assert_eq!(seen, (0..25).map(|i| format!("page/{i:02}")).collect::<Vec<_>>());

    // Overload is shed with ResourceExhausted rather than queued without bound.
    let mut tasks = vec![];
    let clients: Vec<_> = (0..8).map(|_| c.kv(leader)).collect();
    for i in 0..400u64 {
        let mut kv = clients[i as usize % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            kv.get(pb::GetRequest { read: None, key: format!("page/{:02}", i % 25).into_bytes() }).await.map(|_| ())
        }));
    }
    let mut shed = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
            shed += 1;
        }
    }
    eprintln!("shed {shed} of 400 concurrent reads");
    assert!(shed > 0, "400 concurrent reads against max_in_flight 64 shed nothing");

    // A corrupted value byte in the sled file is detected on read and reported.
    put(&c, leader, "precious", "do-not-rot", 50_200).await.unwrap();
    let idx = c.status(leader).await.unwrap().applied_index;
    c.wait_applied(&[follower], idx, Duration::from_secs(5)).await.unwrap();
    c.terminate(follower).unwrap();
    lookout_store::debug_corrupt_value(&c.data_dir(follower), b"precious").unwrap();
    c.start_node(follower).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let req = pb::GetRequest {
            read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
            key: b"precious".to_vec(),
        };
        match c.kv(follower).get(timed(req, 2000)).await {
            Err(e) if e.code() == Code::DataLoss => {
                assert!(e.message().contains("precious"), "names the corrupt key: {}", e.message());
                break;
            }
            Ok(r) => panic!("corrupt value served: {r:?}"),
            Err(e) if Instant::now() > deadline => panic!("never reported corruption: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // The other replicas are unaffected.
    let r = get(&c, leader, "precious", pb::Consistency::Linearizable).await.unwrap();
    assert_eq!(value_of(&r).as_deref(), Some("do-not-rot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_side_refuses_linearizable_reads_but_serves_stale() {
    let (_serial, mut c) = start(&ClusterSpec::five());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let idx = put(&c, leader, "minority", "before", 60_000).await.unwrap().index;
    c.wait_applied(&[1, 2, 3, 4, 5], idx, Duration::from_secs(5)).await.unwrap();
    // Stop 3 of 5, including the leader: the 2 left are a minority.
    let mut stopped = vec![leader];
    stopped.extend([1, 2, 3, 4, 5].into_iter().filter(|id| *id != leader).take(2));
    for &id in &stopped {
        c.pause(id).unwrap();
    }
    let alive: Vec<u64> = [1, 2, 3, 4, 5].into_iter().filter(|id| !stopped.contains(id)).collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    for &id in &alive {
        let t0 = Instant::now();
        let e = get(&c, id, "minority", pb::Consistency::Linearizable).await.unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.code(), Code::Unavailable, "node {id}: {e:?}");
        assert!(took < Duration::from_secs(3), "node {id} answered within the deadline ({took:?})");
        let req = pb::GetRequest {
            read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
            key: b"minority".to_vec(),
        };
        let r = c.kv(id).get(timed(req, 2000)).await.unwrap().into_inner();
        assert_eq!(value_of(&r).as_deref(), Some("before"));
        let h = r.header.unwrap();
        assert!(h.staleness_ms >= 500, "staleness grows while cut off: {} ms", h.staleness_ms);
        // A tight staleness bound is refused, saying how stale the node is.
        let req = pb::GetRequest {
            read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 100 }),
            key: b"minority".to_vec(),
        };
        let e = c.kv(id).get(timed(req, 2000)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.message().contains("max_staleness_ms"), "{}", e.message());
    }
    for &id in &stopped {
        c.resume(id).unwrap();
    }
    c.wait_leader(LEADER_WAIT).await.unwrap();
    put_anywhere(&c, "minority", "after", 60_001, Duration::from_secs(10)).await.expect("writes resume after healing");
}
