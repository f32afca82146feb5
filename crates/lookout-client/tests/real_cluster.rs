//! The client against real `lookoutd` clusters (one process per node on
//! 127.x.y.z, started by `lookout-testkit`): leader discovery from a follower,
//! exactly-once writes across `kill -9` of the leader, reads pinned to a chosen
//! node, and retrying through load shedding. `fake_cluster.rs` covers the
//! corner cases that are hard to provoke in a real cluster on top of these.
//!
//! `lookoutd` is taken from `target/<profile>/`, where `cargo test --workspace` /
//! `cargo build --workspace` put it; `cargo test -p lookout-client` alone does
//! not build it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use lookout_client::Client;
use lookout_client::ClientOptions;
use lookout_client::ReadOpts;
use lookout_client::proto;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use tonic::Code;

const LEADER_WAIT: Duration = Duration::from_secs(20);

/// Clusters of 3 processes on a 2-core machine: one test at a time. (An async
/// mutex: the guard is held across the whole test, awaits included.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The real daemon. Test executables live in `target/<profile>/deps/`, binaries
/// one level up. Missing is a failure, not a skip.
fn lookoutd() -> PathBuf {
    lookout_testkit::built_lookoutd()
}

async fn start(spec: &ClusterSpec) -> (tokio::sync::MutexGuard<'static, ()>, TestCluster) {
    let guard = SERIAL.lock().await;
    let c = TestCluster::start(spec, &lookoutd()).expect("start cluster");
    (guard, c)
}

fn client(c: &TestCluster, ids: &[u64], deadline: Duration) -> Client {
    let endpoints = ids.iter().map(|id| c.client_addr(*id)).collect();
    let opts = ClientOptions {
        deadline,
        ..ClientOptions::default()
    };
    Client::new(endpoints, opts).unwrap()
}

fn value_of(r: &proto::GetResponse) -> Option<String> {
    r.kv.as_ref()
        .filter(|_| r.found)
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_leader_hint_and_reads_from_a_chosen_node() {
    let (_serial, mut c) = start(&ClusterSpec::three()).await;
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap();

    // Given only a follower, the client finds the leader from the refusal's hint.
    let client = client(&c, &[follower], Duration::from_secs(5));
    assert_eq!(client.known_leader(), None);
    let r = client.put("hint/1", "a").await.unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(client.known_leader(), Some(c.client_addr(leader)));
    assert_eq!(
        client.endpoints(),
        vec![c.client_addr(follower), c.client_addr(leader)]
    );
    let r2 = client.put("hint/2", "b").await.unwrap();
    assert!(r2.index > r.index);
    let g = client
        .get("hint/1", ReadOpts::linearizable())
        .await
        .unwrap();
    assert_eq!(value_of(&g).as_deref(), Some("a"));
    assert!(g.header.unwrap().applied_index >= r.index);

    // A client pinned to a node reads that node's own state.
    c.wait_applied(&[1, 2, 3], r2.index, Duration::from_secs(5))
        .await
        .unwrap();
    for id in [1, 2, 3] {
        let local = client.for_endpoint(&c.client_addr(id)).unwrap();
        let g = local
            .get("hint/1", ReadOpts::stale(Some(Duration::from_secs(5))))
            .await
            .unwrap();
        assert_eq!(value_of(&g).as_deref(), Some("a"), "node {id}");
        let h = g.header.unwrap();
        assert_eq!(h.served_by, id);
        assert_eq!(h.consistency, proto::Consistency::Stale as i32);
        assert!(h.staleness_ms < 5000, "node {id}: {} ms", h.staleness_ms);
        assert!(h.applied_index >= r2.index);
    }
    // ... and does not follow hints: a write there is refused, naming the leader.
    let pinned = client.for_endpoint(&c.client_addr(follower)).unwrap();
    let e = pinned.put("hint/3", "c").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    let hint = e.leader_hint().expect("a leader hint");
    assert_eq!(hint.id, Some(leader));
    assert_eq!(hint.addr.as_deref(), Some(c.client_addr(leader).as_str()));
    assert_eq!(e.endpoint(), Some(c.client_addr(follower).as_str()));

    // With the leader frozen (SIGSTOP), a follower still answers a stale read
    // from its own state.
    c.pause(leader).unwrap();
    let g = pinned.get("hint/2", ReadOpts::stale(None)).await.unwrap();
    assert_eq!(value_of(&g).as_deref(), Some("b"));
    assert_eq!(g.header.unwrap().served_by, follower);
    // The unpinned client, whose known leader is frozen, still gets its write
    // through once a new leader is elected (its attempts are capped so it
    // does not wait out its deadline on the frozen node).
    let patient = client.with_options(ClientOptions {
        deadline: Duration::from_secs(10),
        attempt_timeout: Some(Duration::from_millis(500)),
        ..ClientOptions::default()
    });
    let frozen_time = Instant::now();
    let w = patient.put("hint/during-pause", "d").await.unwrap();
    assert_eq!(w.version, 1);
    let new_leader = patient.known_leader().expect("learned the new leader");
    assert!(
        new_leader == c.client_addr(follower) || new_leader == c.client_addr(other),
        "{new_leader}"
    );
    eprintln!(
        "write with the leader frozen took {:?}",
        frozen_time.elapsed()
    );
    c.resume(leader).unwrap();
    c.wait_leader(LEADER_WAIT).await.unwrap();
    let g = client
        .get("hint/during-pause", ReadOpts::linearizable())
        .await
        .unwrap();
    assert_eq!(value_of(&g).as_deref(), Some("d"));
    assert_eq!(g.kv.unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_across_a_leader_kill_succeed_and_apply_once() {
    let (_serial, mut c) = start(&ClusterSpec::three()).await;
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let client = client(&c, &[1, 2, 3], Duration::from_secs(15));
    // Learn the leader first, so writes are in flight on it when it dies.
    client.put("crash/warmup", "x").await.unwrap();
    assert_eq!(client.known_leader(), Some(c.client_addr(leader)));

    const WRITES: usize = 50;
    const KILL_AFTER: usize = 15;
    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let client = client.clone();
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..WRITES {
                let key = format!("crash/{i:03}");
                let t = Instant::now();
                let r = client.put(key.clone(), format!("value-{i}")).await;
                results.push((key, r, t.elapsed()));
                acked.fetch_add(1, Ordering::SeqCst);
            }
            results
        })
    };
    while acked.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    c.kill(leader).unwrap();
    let killed_at = acked.load(Ordering::SeqCst);
    let results = writer.await.unwrap();
    assert!(killed_at < WRITES, "the kill came before the writes ended");

    let mut slowest = Duration::ZERO;
    for (key, r, took) in &results {
        let r = r
            .as_ref()
            .unwrap_or_else(|e| panic!("{key} failed across the leader kill: {e}"));
        assert_eq!(r.version, 1, "{key}");
        slowest = slowest.max(*took);
    }
    eprintln!("killed leader {leader} after {killed_at} acks; slowest write {slowest:?}");

    let new_leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    assert_ne!(new_leader, leader);
    assert_eq!(client.known_leader(), Some(c.client_addr(new_leader)));
    // Every acknowledged write is there, applied exactly once.
    for (key, _, _) in &results {
        let g = client
            .get(key.clone(), ReadOpts::linearizable())
            .await
            .unwrap();
        let i: usize = key["crash/".len()..].parse().unwrap();
        assert_eq!(
            value_of(&g).as_deref(),
            Some(format!("value-{i}").as_str()),
            "{key}"
        );
        assert_eq!(g.kv.unwrap().version, 1, "{key} applied more than once");
    }
    let all = client
        .range_all("crash/", ReadOpts::linearizable())
        .await
        .unwrap();
    assert_eq!(all.len(), WRITES + 1);
    assert!(all.iter().all(|kv| kv.version == 1), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_retried_until_every_request_succeeds() {
    let spec = ClusterSpec::three().limit("max_in_flight", 4);
    let (_serial, c) = start(&spec).await;
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let deadline = Duration::from_secs(15);
    let client = client(&c, &[1, 2, 3], deadline);
    for i in 0..10 {
        client
            .put(format!("load/{i}"), format!("v{i}"))
            .await
            .unwrap();
    }

    const READS: u64 = 200;
    // Raw gRPC, no retries: the node really is shedding this load.
    let kv = c.kv(leader);
    let mut tasks = Vec::new();
    for i in 0..READS {
        let mut kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            let req = proto::GetRequest {
                read: None,
                key: format!("load/{}", i % 10).into_bytes(),
            };
            kv.get(req).await.map(|_| ())
        }));
    }
    let mut shed = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
            shed += 1;
        }
    }
    assert!(
        shed > 0,
        "max_in_flight 4 shed none of {READS} concurrent reads"
    );

    // The same load through the client: every read succeeds, within the deadline.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..READS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("load/{}", i % 10);
            (i, client.get(key, ReadOpts::linearizable()).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let g = r.unwrap_or_else(|e| panic!("read {i} failed: {e}"));
        assert_eq!(
            value_of(&g).as_deref(),
            Some(format!("v{}", i % 10).as_str())
        );
    }
    let took = t0.elapsed();
    assert!(took < deadline, "{took:?}");
    eprintln!("raw: {shed} of {READS} shed; through the client all {READS} succeeded in {took:?}");

    // Writes too.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.put(format!("load/w{i:02}"), "w").await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().version, 1);
    }
}
