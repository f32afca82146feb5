//! Acceptance tests of the screening API against real `lookoutd` processes.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use lookout_proto::v1 as pb;
use lookout_proto::v1::screening_client::ScreeningClient;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use lookout_testkit::request_id;
use tonic::Code;
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_lookoutd");
const LEADER_WAIT: Duration = Duration::from_secs(20);

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start(spec: &ClusterSpec) -> (std::sync::MutexGuard<'static, ()>, TestCluster) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    (guard, TestCluster::start(spec, Path::new(BIN)).expect("start cluster"))
}

fn sc(c: &TestCluster, node: u64) -> ScreeningClient<Channel> {
    ScreeningClient::new(c.channel(node))
}

fn timed<T>(msg: T, ms: u64) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_millis(ms));
    r
}

fn name(given: &str, surname: &str) -> pb::PersonName {
    pb::PersonName { given: given.into(), surname: surname.into() }
}

fn passport(country: &str, number: &str) -> pb::Document {
    pb::Document { r#type: pb::DocumentType::Passport as i32, issuing_country: country.into(), number: number.into(), expiry: String::new() }
}

fn lookout(id: &str, given: &str, surname: &str, dob: &str, category: pb::Category) -> pb::Lookout {
    pb::Lookout {
        id: id.into(),
        subject: Some(pb::Subject {
            name: Some(name(given, surname)),
            aliases: vec![],
            date_of_birth: dob.into(),
            sex: pb::Sex::Unspecified as i32,
            nationalities: vec![],
        }),
        documents: vec![],
        category: category as i32,
        reason: "test".into(),
        source_agency: "CBSA".into(),
        ..Default::default()
    }
}

fn identity(given: &str, surname: &str, dob: &str) -> pb::Identity {
    pb::Identity { names: vec![name(given, surname)], date_of_birth: dob.into(), ..Default::default() }
}

async fn put_lookout(c: &TestCluster, node: u64, l: pb::Lookout, rid: u64) -> Result<pb::PutLookoutResponse, tonic::Status> {
    let req = pb::PutLookoutRequest {
        header: Some(pb::WriteHeader { request_id: request_id(rid) }),
        lookout: Some(l),
        expected_version: None,
        actor: "officer-7".into(),
    };
    sc(c, node).put_lookout(timed(req, 3000)).await.map(|r| r.into_inner())
}

async fn screen(c: &TestCluster, node: u64, id: pb::Identity) -> Result<pb::ScreenResponse, tonic::Status> {
    sc(c, node).screen(timed(pb::ScreenRequest { read: None, identity: Some(id) }, 3000)).await.map(|r| r.into_inner())
}

fn matched_ids(r: &pb::ScreenResponse) -> Vec<String> {
    r.matches.iter().filter_map(|m| m.lookout.as_ref().map(|l| l.id.clone())).collect()
}

/// Puts through whichever node leads, following hints, reusing the request id.
async fn put_lookout_anywhere(c: &TestCluster, l: pb::Lookout, rid: u64) -> Option<pb::PutLookoutResponse> {
    c.on_leader(Duration::from_secs(10), |node| put_lookout(c, node, l.clone(), rid)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_lookout_is_seen_by_every_later_screen_even_after_leader_crash() {
    let (_s, mut c) = start(&ClusterSpec::five());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let subjects = [
        ("Mohammed", "Al-Hassan", "1979-03-14", "Muhammad", "Alhassan"),
        ("Aleksandr", "Petrov", "1985-11-02", "Alexander", "Petrov"),
        ("José María", "García López", "1990-01-20", "Jose Maria", "Garcia Lopez"),
        ("Wei", "Zhang", "1972-06-30", "Zhang", "Wei"),
    ];
    for (i, (g, s, dob, _, _)) in subjects.iter().enumerate() {
        let r = put_lookout(&c, leader, lookout(&format!("V-{i}"), g, s, dob, pb::Category::NoBoard), 1000 + i as u64)
            .await
            .unwrap();
        assert_eq!(r.version, 1);
        // Immediately after the acknowledgement, every node's linearizable screen of a
        // transliterated/reordered spelling finds it.
        for node in 1..=5 {
            let (_, _, _, vg, vs) = subjects[i];
            let r = screen(&c, node, identity(vg, vs, dob)).await.unwrap();
            assert!(matched_ids(&r).contains(&format!("V-{i}")), "node {node} missed V-{i}: {r:?}");
            assert_eq!(r.decision, pb::Decision::NoBoard as i32);
            assert!(r.header.unwrap().applied_index > 0);
        }
    }
    // Kill the leader; a lookout acknowledged by the new leader is visible everywhere.
    c.kill(leader).unwrap();
    let r = put_lookout_anywhere(&c, lookout("V-after", "Srinivasan", "Raghavan", "1969-09-09", pb::Category::ReferSecondary), 2000)
        .await
        .expect("writes resume after the crash");
    assert!(r.index > 0);
    for node in [1, 2, 3, 4, 5].into_iter().filter(|n| *n != leader) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = loop {
            match screen(&c, node, identity("Srinivasan", "Raghavan", "1969-09-09")).await {
                Ok(r) => break r,
                Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("node {node}: {e:?}"),
            }
        };
        assert!(matched_ids(&r).contains(&"V-after".to_string()), "node {node}: {r:?}");
        assert_eq!(r.decision, pb::Decision::ReferSecondary as i32);
        // Earlier lookouts survived the crash too.
        let r = screen(&c, node, identity("Wei", "Zhang", "1972-06-30")).await.unwrap();
        assert!(matched_ids(&r).contains(&"V-3".to_string()));
    }
    // A stale screen says it is stale.
    let req = pb::ScreenRequest {
        read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
        identity: Some(identity("Wei", "Zhang", "1972-06-30")),
    };
    let follower = [1, 2, 3, 4, 5].into_iter().find(|n| *n != leader).unwrap();
    let r = sc(&c, follower).screen(timed(req, 3000)).await.unwrap().into_inner();
    assert_eq!(r.header.unwrap().consistency, pb::Consistency::Stale as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_survive_restart_and_snapshot_install_and_retired_lookouts_stop_matching() {
    let spec = ClusterSpec::three().raft("snapshot_logs_since_last", 40).raft("logs_to_keep_after_snapshot", 5);
    let (_s, mut c) = start(&spec);
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|n| *n != leader).unwrap();
    let mut l = lookout("R-1", "Łukasz", "Wiśniewski", "1988", pb::Category::ReferSecondary);
    l.documents = vec![passport("POL", "EK 123-456")];
    put_lookout(&c, leader, l, 3000).await.unwrap();

    // Follower down while enough is written to compact the log past it.
    c.kill(follower).unwrap();
    for i in 0..120u64 {
        put_lookout(&c, leader, lookout(&format!("F-{i}"), "Filler", &format!("Person{i}"), "1950", pb::Category::AlertOnly), 3100 + i)
            .await
            .unwrap();
    }
    // The log is compacted past the follower's position (in the background).
    c.wait_purged(leader, 5, Duration::from_secs(10)).await.unwrap();
    c.start_node(follower).unwrap();
    let idx = c.status(leader).await.unwrap().applied_index;
    c.wait_applied(&[follower], idx, Duration::from_secs(30)).await.unwrap();
    assert!(c.log(follower).contains("snapshot received"), "the follower caught up by snapshot");

    let stale = |id: pb::Identity| pb::ScreenRequest {
        read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
        identity: Some(id),
    };
    // On the snapshot-installed follower: by name (diacritics dropped, year-only DOB) and by document.
    let r = sc(&c, follower).screen(timed(stale(identity("Lukasz", "Wisniewski", "1988-04-01")), 3000)).await.unwrap().into_inner();
    assert!(matched_ids(&r).contains(&"R-1".to_string()), "{r:?}");
    let by_doc = pb::Identity { names: vec![name("X", "Y")], documents: vec![passport("POL", "ek123456")], ..Default::default() };
    let r = sc(&c, follower).screen(timed(stale(by_doc.clone()), 3000)).await.unwrap().into_inner();
    assert!(matched_ids(&r).contains(&"R-1".to_string()), "document match after snapshot: {r:?}");
    assert!(r.matches[0].reasons.iter().any(|x| x.kind == "DOCUMENT_EXACT"));

    // Restart every node: indexes come back from disk.
    for id in [1, 2, 3] {
        c.terminate(id).unwrap();
        c.start_node(id).unwrap();
    }
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let r = screen(&c, leader, by_doc.clone()).await.unwrap();
    assert!(matched_ids(&r).contains(&"R-1".to_string()));

    // Retire: no longer matches, but history is kept.
    let req = pb::RetireLookoutRequest { header: None, id: "R-1".into(), expected_version: Some(1), actor: "officer-9".into() };
    let rr = sc(&c, leader).retire_lookout(timed(req, 3000)).await.unwrap().into_inner();
    assert_eq!(rr.version, 2);
    for node in [1, 2, 3] {
        let r = screen(&c, node, by_doc.clone()).await.unwrap();
        assert!(!matched_ids(&r).contains(&"R-1".to_string()), "retired lookout still matches on {node}");
        assert_eq!(r.decision, pb::Decision::Clear as i32);
    }
    let g = sc(&c, leader)
        .get_lookout(timed(pb::GetLookoutRequest { read: None, id: "R-1".into(), with_history: true }, 3000))
        .await
        .unwrap()
        .into_inner();
    let cur = g.lookout.unwrap();
    assert!(cur.retired && cur.version == 2 && cur.updated_by == "officer-9" && cur.created_by == "officer-7");
    assert_eq!(g.history.len(), 1);
    assert_eq!(g.history[0].version, 1);

    // Optimistic concurrency: a stale expected_version is FailedPrecondition with the current version.
    let req = pb::PutLookoutRequest {
        header: None,
        lookout: Some(lookout("R-1", "Lukasz", "Wisniewski", "1988", pb::Category::NoBoard)),
        expected_version: Some(1),
        actor: "officer-7".into(),
    };
    let e = sc(&c, leader).put_lookout(timed(req, 3000)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.metadata().get("lookout-current-version").unwrap().to_str().unwrap(), "2");
    // All replicas agree on the digest once quiet.
    let idx = c.status(leader).await.unwrap().applied_index;
    c.wait_applied(&[1, 2, 3], idx, Duration::from_secs(10)).await.unwrap();
    let digests: std::collections::BTreeSet<String> =
        futures_digests(&c, &[1, 2, 3]).await.into_iter().collect();
    assert_eq!(digests.len(), 1, "replica digests differ: {digests:?}");
}

async fn futures_digests(c: &TestCluster, ids: &[u64]) -> Vec<String> {
    let mut out = vec![];
    for &id in ids {
        out.push(c.status(id).await.unwrap().digest);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_bulk_ingest_keeps_the_good_rows() {
    let (_s, c) = start(&ClusterSpec::three());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let mut client = sc(&c, leader);
    let expect = |r: Result<tonic::Response<pb::ScreenResponse>, tonic::Status>, field: &str| {
        let e = r.expect_err("must fail");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with(field), "{:?} names {field}", e.message());
    };
    let mut missing_name = identity("A", "B", "1980");
    missing_name.names = vec![name("", "")];
    expect(client.screen(pb::ScreenRequest { read: None, identity: Some(missing_name) }).await, "identity.names[0]");
    expect(client.screen(pb::ScreenRequest { read: None, identity: Some(identity("A", "B", "1980-02-30")) }).await, "identity.date_of_birth");
    let mut bad_country = identity("A", "B", "1980");
    bad_country.nationality = "XYZ".into();
    expect(client.screen(pb::ScreenRequest { read: None, identity: Some(bad_country) }).await, "identity.nationality");
    expect(client.screen(pb::ScreenRequest { read: None, identity: None }).await, "identity");
    let e = client
        .put_lookout(pb::PutLookoutRequest {
            header: None,
            lookout: Some(lookout("B-1", "", "", "1980", pb::Category::NoBoard)),
            expected_version: None,
            actor: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("lookout.subject.name"), "{}", e.message());
    let passengers: Vec<pb::ManifestPassenger> = (0..1001)
        .map(|i| pb::ManifestPassenger { reference: format!("{i}"), identity: Some(identity("A", "B", "1980")) })
        .collect();
    let e = client
        .screen_manifest(pb::ScreenManifestRequest { read: None, flight: None, passengers })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("passengers"), "{}", e.message());

    // Bulk ingest: 1,000 rows, every 100th bad in a different way; the 990 good ones are stored.
    let rows: Vec<pb::IngestLookoutsRequest> = (0..1000)
        .map(|i| {
            let mut l = lookout(&format!("I-{i:04}"), "Given", &format!("Surname{i}"), "1970", pb::Category::ReferSecondary);
            if i % 100 == 7 {
                match (i / 100) % 3 {
                    0 => l.subject.as_mut().unwrap().date_of_birth = "1970-13".into(),
                    1 => l.subject.as_mut().unwrap().nationalities = vec!["QQQ".into()],
                    _ => l.subject.as_mut().unwrap().name = None,
                }
            }
            pb::IngestLookoutsRequest { lookout: Some(l), actor: "loader".into() }
        })
        .collect();
    let resp = client.ingest_lookouts(tokio_stream::iter(rows)).await.unwrap().into_inner();
    assert_eq!(resp.accepted, 990);
    assert_eq!(resp.rejected, 10);
    let positions: Vec<u64> = resp.errors.iter().map(|e| e.position).collect();
    assert_eq!(positions, (0..10).map(|k| k * 100 + 7).collect::<Vec<_>>());
    assert!(resp.errors.iter().all(|e| e.field.starts_with("lookout.subject") && !e.reason.is_empty()));
    for i in [0u64, 6, 8, 500, 999] {
        let g = client
            .get_lookout(pb::GetLookoutRequest { read: None, id: format!("I-{i:04}"), with_history: false })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(g.lookout.unwrap().created_by, "loader");
    }
    let e = client.get_lookout(pb::GetLookoutRequest { read: None, id: "I-0007".into(), with_history: false }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Paged listing sees all 990.
    let mut seen = 0;
    let mut token = vec![];
    loop {
        let r = client
            .list_lookouts(pb::ListLookoutsRequest { limit: 300, continuation: token.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        seen += r.lookouts.len();
        if r.continuation.is_empty() {
            break;
        }
        token = r.continuation;
    }
    assert_eq!(seen, 990);
    // Reserved keys are not reachable through the key-value API.
    let e = lookout_proto::v1::kv_client::KvClient::new(c.channel(leader))
        .get(pb::GetRequest { read: None, key: b"\0lookout\0I-0001".to_vec() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let r = lookout_proto::v1::kv_client::KvClient::new(c.channel(leader))
        .range(pb::RangeRequest { prefix: vec![], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(r.kvs.is_empty(), "screening records leaked into Range: {} rows", r.kvs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_of_300_returns_exactly_the_3_planted_matches() {
    let (_s, c) = start(&ClusterSpec::three());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    const GIVEN: [&str; 20] = [
        "Oliver", "Amelia", "Noah", "Isla", "Mateo", "Lucia", "Omar", "Layla", "Ivan", "Olga", "Hiroshi", "Yuki", "Arjun",
        "Priya", "Kwame", "Ama", "Lars", "Ingrid", "Tomasz", "Zofia",
    ];
    const SURNAMES: [&str; 15] = [
        "Thornbury", "Vasquez", "Haddad", "Kowalczyk", "Tanaka", "Raghunathan", "Mensah", "Lindqvist", "Okonkwo",
        "Fitzgerald", "Carvalho", "Nakamura", "Petrenko", "Abernathy", "Delacroix",
    ];
    let passenger = |i: usize| {
        let dob = format!("{}-{:02}-{:02}", 1950 + (i % 50), 1 + i % 12, 1 + i % 28);
        (GIVEN[i % 20], SURNAMES[i / 20], dob)
    };
    // 60 lookouts on people who are not on the flight, plus 3 on passengers 17, 150 and 288
    // (one by document, one under a variant spelling, one by alias).
    let mut rows = vec![];
    for k in 0..60 {
        let l = lookout(&format!("X-{k}"), GIVEN[k % 20], &format!("Quillfeather{k}"), "1966-06-06", pb::Category::NoBoard);
        rows.push(pb::IngestLookoutsRequest { lookout: Some(l), actor: "loader".into() });
    }
    let (g, s, dob) = passenger(17);
    let mut by_doc = lookout("P-doc", "Someone", "Else", "1901", pb::Category::NoBoard);
    by_doc.documents = vec![passport("GHA", "G1234567")];
    rows.push(pb::IngestLookoutsRequest { lookout: Some(by_doc), actor: "loader".into() });
    let _ = (g, s, dob);
    let (g, s, dob) = passenger(150);
    assert_eq!(s, "Lindqvist");
    let variant = lookout("P-name", g, "Lindkvist", &dob, pb::Category::ReferSecondary);
    rows.push(pb::IngestLookoutsRequest { lookout: Some(variant), actor: "loader".into() });
    let (g, s, dob) = passenger(288);
    let mut alias = lookout("P-alias", "Unrelated", "Personname", &dob[..4], pb::Category::NoBoard);
    alias.subject.as_mut().unwrap().aliases = vec![name(g, s)];
    rows.push(pb::IngestLookoutsRequest { lookout: Some(alias), actor: "loader".into() });
    let resp = sc(&c, leader).ingest_lookouts(tokio_stream::iter(rows)).await.unwrap().into_inner();
    assert_eq!((resp.accepted, resp.rejected), (63, 0));

    let passengers: Vec<pb::ManifestPassenger> = (0..300)
        .map(|i| {
            let (g, s, dob) = passenger(i);
            let mut id = identity(g, s, &dob);
            if i == 17 {
                id.documents = vec![passport("GHA", "g-123 4567")];
            }
            pb::ManifestPassenger { reference: format!("seat-{i}"), identity: Some(id) }
        })
        .collect();
    let flight = pb::Itinerary {
        carrier: "AC".into(),
        flight_number: "870".into(),
        departure_port: "CDG".into(),
        arrival_port: "YUL".into(),
        scheduled_arrival_ms: 1_800_000_000_000,
    };
    // From a follower, linearizably: one call, one decision per passenger.
    let follower = [1, 2, 3].into_iter().find(|n| *n != leader).unwrap();
    let r = sc(&c, follower)
        .screen_manifest(timed(pb::ScreenManifestRequest { read: None, flight: Some(flight), passengers }, 5000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.passengers.len(), 300);
    let flagged: Vec<(String, i32, Vec<String>)> = r
        .passengers
        .iter()
        .filter(|p| p.decision != pb::Decision::Clear as i32)
        .map(|p| (p.reference.clone(), p.decision, p.matches.iter().map(|m| m.lookout.as_ref().unwrap().id.clone()).collect()))
        .collect();
    assert_eq!(
        flagged,
        vec![
            ("seat-17".to_string(), pb::Decision::NoBoard as i32, vec!["P-doc".to_string()]),
            ("seat-150".to_string(), pb::Decision::ReferSecondary as i32, vec!["P-name".to_string()]),
            ("seat-288".to_string(), pb::Decision::NoBoard as i32, vec!["P-alias".to_string()]),
        ],
        "exactly the planted passengers are flagged"
    );
    assert_eq!((r.no_board, r.refer_secondary), (2, 1));
    assert!(r.header.unwrap().applied_index >= resp.index);
}

/// On a node cut off from quorum, linearizable screens wait on the read fence until their
/// deadline; meanwhile the node must keep answering STALE screens (degraded operation),
/// however many linearizable ones are waiting. More are sent than the node has compute
/// slots (4 per core), so a fence waiter holding a slot would get the STALE ones shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_screens_are_answered_on_a_minority_node_while_linearizable_ones_wait() {
    let (_s, mut c) = start(&ClusterSpec::three());
    let leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    let r = put_lookout(&c, leader, lookout("M-1", "Ivan", "Sokolov", "1968-02-11", pb::Category::NoBoard), 7000).await.unwrap();
    c.wait_applied(&[1, 2, 3], r.index, Duration::from_secs(5)).await.unwrap();
    let alone = *c.ids.iter().find(|&&id| id != leader).unwrap();
    for id in c.ids.clone() {
        if id != alone {
            c.pause(id).unwrap();
        }
    }
    let waiting = 8 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let blocked: Vec<_> = (0..waiting)
        .map(|_| {
            let mut client = sc(&c, alone);
            let req = pb::ScreenRequest { read: None, identity: Some(identity("Ivan", "Sokolov", "1968-02-11")) };
            tokio::spawn(async move { client.screen(timed(req, 3000)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let req = pb::ScreenRequest {
            read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
            identity: Some(identity("Ivan", "Sokolov", "1968-02-11")),
        };
        let r = sc(&c, alone).screen(timed(req, 1000)).await.expect("a STALE screen on the minority node").into_inner();
        assert_eq!(r.header.as_ref().unwrap().consistency, pb::Consistency::Stale as i32);
        assert_eq!(matched_ids(&r), vec!["M-1".to_string()]);
        assert_eq!(r.decision, pb::Decision::NoBoard as i32);
    }
    for b in blocked {
        let e = b.await.unwrap().expect_err("a linearizable screen without quorum must not succeed");
        assert!(matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded), "{e:?}");
    }
    for id in c.ids.clone() {
        if id != alone {
            c.resume(id).unwrap();
        }
    }
    c.wait_leader(LEADER_WAIT).await.unwrap();
}
