//! The screening API through the client, against real `lookoutd` clusters
//! started by `lookout-testkit`: lookout put/get/retire/list with version
//! conflicts, screening through a follower, manifests, and bulk ingest with bad
//! records reported by position.
//!
//! `lookoutd` is taken from `target/<profile>/` (build the workspace first; see
//! `real_cluster.rs`).

use std::path::PathBuf;
use std::time::Duration;

use lookout_client::Client;
use lookout_client::ClientOptions;
use lookout_client::LookoutFilter;
use lookout_client::ReadOpts;
use lookout_client::proto;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use tonic::Code;

const LEADER_WAIT: Duration = Duration::from_secs(20);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lookoutd() -> PathBuf {
    lookout_testkit::built_lookoutd()
}

async fn start() -> (tokio::sync::MutexGuard<'static, ()>, TestCluster, u64) {
    let guard = SERIAL.lock().await;
    let c = TestCluster::start(&ClusterSpec::three(), &lookoutd()).expect("start cluster");
    let leader = c.wait_leader(LEADER_WAIT).await.expect("a leader");
    (guard, c, leader)
}

fn client(c: &TestCluster, ids: &[u64]) -> Client {
    let endpoints = ids.iter().map(|id| c.client_addr(*id)).collect();
    let opts = ClientOptions {
        deadline: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    Client::new(endpoints, opts).unwrap()
}

fn follower_of(leader: u64) -> u64 {
    [1, 2, 3].into_iter().find(|id| *id != leader).unwrap()
}

fn name(given: &str, surname: &str) -> proto::PersonName {
    proto::PersonName {
        given: given.into(),
        surname: surname.into(),
    }
}

fn lookout(
    id: &str,
    given: &str,
    surname: &str,
    dob: &str,
    category: proto::Category,
) -> proto::Lookout {
    proto::Lookout {
        id: id.into(),
        subject: Some(proto::Subject {
            name: Some(name(given, surname)),
            aliases: vec![],
            date_of_birth: dob.into(),
            sex: proto::Sex::Unspecified as i32,
            nationalities: vec!["RUS".into()],
        }),
        documents: vec![],
        category: category as i32,
        reason: "client test".into(),
        source_agency: "CBSA".into(),
        ..Default::default()
    }
}

fn identity(given: &str, surname: &str, dob: &str) -> proto::Identity {
    proto::Identity {
        names: vec![name(given, surname)],
        date_of_birth: dob.into(),
        ..Default::default()
    }
}

fn matched_ids(matches: &[proto::LookoutMatch]) -> Vec<String> {
    matches
        .iter()
        .filter_map(|m| m.lookout.as_ref().map(|l| l.id.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookout_put_get_retire_list_with_version_conflicts() {
    let (_serial, c, leader) = start().await;
    // Only a follower: writes must find the leader by themselves.
    let client = client(&c, &[follower_of(leader)]);
    let read = ReadOpts::linearizable();

    let l = lookout(
        "L-1",
        "Ivan",
        "Sokolov",
        "1970-05-06",
        proto::Category::ReferSecondary,
    );
    let r = client
        .put_lookout(l.clone(), Some(0), "officer-1")
        .await
        .unwrap();
    assert_eq!(r.version, 1);
    assert!(r.index > 0);
    assert_eq!(client.known_leader(), Some(c.client_addr(leader)));

    // Create-only again: conflict, naming the stored version.
    let e = client
        .put_lookout(l.clone(), Some(0), "officer-1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.is_version_conflict());
    assert_eq!(e.current_version(), Some(1), "{e}");
    // A stale expected version: conflict.
    let e = client
        .put_lookout(l.clone(), Some(7), "officer-1")
        .await
        .unwrap_err();
    assert_eq!(e.current_version(), Some(1), "{e}");

    // The right expected version: replaced.
    let mut l2 = l.clone();
    l2.category = proto::Category::NoBoard as i32;
    l2.reason = "upgraded".into();
    let r2 = client.put_lookout(l2, Some(1), "officer-2").await.unwrap();
    assert_eq!(r2.version, 2);
    assert!(r2.index > r.index);

    let g = client.get_lookout("L-1", true, read).await.unwrap();
    let got = g.lookout.unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.category, proto::Category::NoBoard as i32);
    assert_eq!(got.created_by, "officer-1");
    assert_eq!(got.updated_by, "officer-2");
    assert_eq!(got.mod_index, r2.index);
    assert!(!got.retired);
    assert_eq!(g.history.len(), 1, "{:?}", g.history);
    assert_eq!(g.history[0].version, 1);
    assert_eq!(g.history[0].reason, "client test");
    assert!(g.header.unwrap().applied_index >= r2.index);

    // Retire: a stale version conflicts, the current one succeeds.
    let e = client
        .retire_lookout("L-1", Some(1), "officer-3")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert_eq!(e.current_version(), Some(2), "{e}");
    let rr = client
        .retire_lookout("L-1", Some(2), "officer-3")
        .await
        .unwrap();
    assert_eq!(rr.version, 3);
    let g = client.get_lookout("L-1", false, read).await.unwrap();
    let got = g.lookout.unwrap();
    assert!(got.retired);
    assert_eq!(got.version, 3);
    assert!(g.history.is_empty());

    // Missing records are NotFound.
    let e = client
        .retire_lookout("L-missing", None, "officer-3")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = client
        .get_lookout("L-missing", false, read)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = client.get_traveller("T-missing", read).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    // Bad input is InvalidArgument naming the field, and not retried.
    let mut bad = lookout("L-bad", "A", "B", "1980-13", proto::Category::NoBoard);
    bad.subject.as_mut().unwrap().date_of_birth = "1980-13".into();
    let e = client
        .put_lookout(bad, None, "officer-1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.message().contains("lookout.subject.date_of_birth"), "{e}");
    assert!(
        matches!(e, lookout_client::ClientError::Status { attempts: 1, .. }),
        "{e}"
    );

    // Listing: five more, across pages.
    for i in 0..5 {
        let cat = if i % 2 == 0 {
            proto::Category::NoBoard
        } else {
            proto::Category::AlertOnly
        };
        client
            .put_lookout(
                lookout(
                    &format!("L-list-{i}"),
                    "Anna",
                    &format!("Surname{i}"),
                    "",
                    cat,
                ),
                None,
                "officer-4",
            )
            .await
            .unwrap();
    }
    let live = client
        .list_lookouts_all(&LookoutFilter::default(), 2, read)
        .await
        .unwrap();
    let ids: Vec<&str> = live.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["L-list-0", "L-list-1", "L-list-2", "L-list-3", "L-list-4"]
    );
    let page = client
        .list_lookouts(&LookoutFilter::default(), 2, vec![], read)
        .await
        .unwrap();
    assert_eq!(page.lookouts.len(), 2);
    assert!(!page.continuation.is_empty());
    let with_retired = LookoutFilter {
        include_retired: true,
        ..LookoutFilter::default()
    };
    let all = client
        .list_lookouts_all(&with_retired, 0, read)
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().any(|l| l.id == "L-1" && l.retired));
    let no_board = LookoutFilter {
        categories: vec![proto::Category::NoBoard],
        ..LookoutFilter::default()
    };
    let nb = client.list_lookouts_all(&no_board, 0, read).await.unwrap();
    let ids: Vec<&str> = nb.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, vec!["L-list-0", "L-list-2", "L-list-4"]);

    // Travellers.
    let t = proto::Traveller {
        id: "T-1".into(),
        names: vec![name("Olga", "Ivanova")],
        date_of_birth: "1991-02-03".into(),
        nationality: "UKR".into(),
        itinerary: Some(proto::Itinerary {
            carrier: "AC".into(),
            flight_number: "870".into(),
            departure_port: "CDG".into(),
            arrival_port: "YUL".into(),
            scheduled_arrival_ms: 1_700_000_000_000,
        }),
        ..Default::default()
    };
    let tr = client.put_traveller(t.clone()).await.unwrap();
    assert_eq!(tr.version, 1);
    let g = client.get_traveller("T-1", read).await.unwrap();
    let got = g.traveller.unwrap();
    assert_eq!(got.names, t.names);
    assert_eq!(got.itinerary, t.itinerary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_through_a_follower_finds_a_transliterated_name() {
    let (_serial, c, leader) = start().await;
    let writer = client(&c, &[1, 2, 3]);
    let w = writer
        .put_lookout(
            lookout(
                "W-1",
                "Aleksandr",
                "Petrov",
                "1985-11-02",
                proto::Category::NoBoard,
            ),
            None,
            "officer-1",
        )
        .await
        .unwrap();
    writer
        .put_lookout(
            lookout(
                "W-2",
                "Mohammed",
                "Al-Hassan",
                "1979-03-14",
                proto::Category::ReferSecondary,
            ),
            None,
            "officer-1",
        )
        .await
        .unwrap();

    // Given only a follower endpoint, a linearizable screen of another spelling finds it.
    let follower = follower_of(leader);
    let reader = client(&c, &[follower]);
    let r = reader
        .screen(
            identity("Alexander", "Petrov", "1985-11-02"),
            ReadOpts::linearizable(),
        )
        .await
        .unwrap();
    assert_eq!(r.decision, proto::Decision::NoBoard as i32, "{r:?}");
    assert_eq!(matched_ids(&r.matches), vec!["W-1"]);
    let m = &r.matches[0];
    assert!(m.score >= 0.85, "{m:?}");
    assert!(!m.reasons.is_empty());
    let h = r.header.unwrap();
    assert!(h.applied_index >= w.index);
    assert_eq!(h.served_by, follower);

    // A stale read on that follower, once it has applied the write.
    c.wait_applied(&[follower], w.index + 1, Duration::from_secs(5))
        .await
        .unwrap();
    let pinned = reader.for_endpoint(&c.client_addr(follower)).unwrap();
    let r = pinned
        .screen(
            identity("Muhammad", "Alhassan", "1979-03-14"),
            ReadOpts::stale(Some(Duration::from_secs(5))),
        )
        .await
        .unwrap();
    assert_eq!(r.decision, proto::Decision::ReferSecondary as i32, "{r:?}");
    assert_eq!(matched_ids(&r.matches), vec!["W-2"]);
    let h = r.header.unwrap();
    assert_eq!(h.consistency, proto::Consistency::Stale as i32);
    assert_eq!(h.served_by, follower);

    // No match: clear.
    let r = reader
        .screen(
            identity("Chiara", "Bianchi", "2001-01-01"),
            ReadOpts::lease(),
        )
        .await
        .unwrap();
    assert_eq!(r.decision, proto::Decision::Clear as i32);
    assert!(r.matches.is_empty());

    // A manifest: one no-board, one refer, one clear.
    let passengers = vec![
        proto::ManifestPassenger {
            reference: "12A".into(),
            identity: Some(identity("Chiara", "Bianchi", "2001-01-01")),
        },
        proto::ManifestPassenger {
            reference: "12B".into(),
            identity: Some(identity("Alexandr", "Petrov", "1985-11-02")),
        },
        proto::ManifestPassenger {
            reference: "12C".into(),
            identity: Some(identity("Mohamad", "Al Hassan", "1979-03-14")),
        },
    ];
    let flight = proto::Itinerary {
        carrier: "AC".into(),
        flight_number: "870".into(),
        ..Default::default()
    };
    let r = reader
        .screen_manifest(Some(flight), passengers, ReadOpts::linearizable())
        .await
        .unwrap();
    assert_eq!(r.no_board, 1);
    assert_eq!(r.refer_secondary, 1);
    let refs: Vec<(&str, i32)> = r
        .passengers
        .iter()
        .map(|p| (p.reference.as_str(), p.decision))
        .collect();
    assert_eq!(
        refs,
        vec![
            ("12A", proto::Decision::Clear as i32),
            ("12B", proto::Decision::NoBoard as i32),
            ("12C", proto::Decision::ReferSecondary as i32),
        ]
    );
    // An empty manifest is refused, not retried.
    let e = reader
        .screen_manifest(None, vec![], ReadOpts::linearizable())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
}

fn ingest_record(i: usize) -> proto::IngestLookoutsRequest {
    let mut l = lookout(
        &format!("I-{i:04}"),
        &format!("Given{i}"),
        &format!("Bulkname{i}"),
        "1960",
        proto::Category::AlertOnly,
    );
    if i == 250 {
        l.subject.as_mut().unwrap().name = Some(name("Yusuf", "Ibrahimov"));
        l.subject.as_mut().unwrap().date_of_birth = "1984-11-22".into();
        l.category = proto::Category::NoBoard as i32;
    }
    proto::IngestLookoutsRequest {
        lookout: Some(l),
        actor: "bulk-loader".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_of_500_with_bad_records_reports_them_by_position() {
    let (_serial, mut c, leader) = start().await;
    // Only a follower: the client must find the leader before it streams.
    let client = client(&c, &[follower_of(leader)]);

    let mut records: Vec<_> = (0..500).map(ingest_record).collect();
    records[7].lookout.as_mut().unwrap().category = proto::Category::Unspecified as i32;
    records[123]
        .lookout
        .as_mut()
        .unwrap()
        .subject
        .as_mut()
        .unwrap()
        .nationalities = vec!["RUS".into(), "QQQ".into()];
    records[321].lookout.as_mut().unwrap().id = String::new();
    records[499].actor = String::new();
    let r = client
        .ingest_lookouts(futures::stream::iter(records))
        .await
        .unwrap();
    assert_eq!(r.accepted, 496, "{r:?}");
    assert_eq!(r.rejected, 4, "{r:?}");
    let errs: Vec<(u64, &str, &str)> = r
        .errors
        .iter()
        .map(|e| (e.position, e.id.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (7, "I-0007", "lookout.category"),
            (123, "I-0123", "lookout.subject.nationalities[1]"),
            (321, "", "lookout.id"),
            (499, "I-0499", "actor"),
        ]
    );
    assert!(r.errors.iter().all(|e| !e.reason.is_empty()));
    assert!(r.index > 0);
    assert_eq!(client.known_leader(), Some(c.client_addr(leader)));

    // What was accepted is there; what was rejected is not.
    let read = ReadOpts::linearizable();
    let g = client.get_lookout("I-0250", false, read).await.unwrap();
    assert_eq!(g.lookout.unwrap().created_by, "bulk-loader");
    assert!(
        client
            .get_lookout("I-0007", false, read)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let all = client
        .list_lookouts_all(&LookoutFilter::default(), 1000, read)
        .await
        .unwrap();
    assert_eq!(all.len(), 496);
    let r = client
        .screen(identity("Youssef", "Ibrahimov", "1984-11-22"), read)
        .await
        .unwrap();
    assert_eq!(matched_ids(&r.matches), vec!["I-0250"]);

    // Travellers, from an iterator that yields lazily.
    let travellers = (0..50).map(|i| proto::IngestTravellersRequest {
        traveller: Some(proto::Traveller {
            id: format!("T-{i:03}"),
            names: if i == 10 {
                vec![]
            } else {
                vec![name("Pax", &format!("Traveller{i}"))]
            },
            date_of_birth: if i == 20 {
                "1990-02-30".into()
            } else {
                "1990-02-03".into()
            },
            ..Default::default()
        }),
    });
    let r = client
        .ingest_travellers(futures::stream::iter(travellers))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.rejected), (48, 2), "{r:?}");
    let errs: Vec<(u64, &str)> = r
        .errors
        .iter()
        .map(|e| (e.position, e.field.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![(10, "traveller.names"), (20, "traveller.date_of_birth")]
    );
    let g = client.get_traveller("T-049", read).await.unwrap();
    assert_eq!(g.traveller.unwrap().names[0].surname, "Traveller49");

    // Pinned to a follower, the stream is refused only after records went out:
    // the error says so, names the leader, and is not retried.
    let pinned = client
        .for_endpoint(&c.client_addr(follower_of(leader)))
        .unwrap();
    let e = pinned
        .ingest_lookouts(futures::stream::iter((1000..1010).map(ingest_record)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert_eq!(
        e.leader_hint().and_then(|h| h.addr.clone()),
        Some(c.client_addr(leader))
    );
    assert!(
        e.message().contains("after 10 records had been sent"),
        "{e}"
    );
    assert!(
        matches!(e, lookout_client::ClientError::Status { attempts: 1, .. }),
        "{e}"
    );

    // With the leader it knew killed, the client finds the new one (nothing has been
    // sent yet, so it may look again) and the stream goes through.
    c.kill(leader).unwrap();
    let client = client.with_options(ClientOptions {
        deadline: Duration::from_secs(15),
        ..ClientOptions::default()
    });
    let r = client
        .ingest_lookouts(futures::stream::iter((2000..2100).map(ingest_record)))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.rejected), (100, 0), "{r:?}");
    let new_leader = c.wait_leader(LEADER_WAIT).await.unwrap();
    assert_eq!(client.known_leader(), Some(c.client_addr(new_leader)));
}
