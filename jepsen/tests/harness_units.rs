//! Pieces of the harness that need no cluster: nemesis parsing, outcome classification,
//! the generated topology.

use lookout_jepsen::harness::client::{ErrClass, classify};
use lookout_jepsen::harness::cluster::Layout;
use lookout_jepsen::harness::nemesis::{Family, parse_nemesis};

#[test]
fn nemesis_names() {
    let (f, only) = parse_nemesis("all").unwrap();
    assert_eq!(f, vec![Family::Kill, Family::Pause, Family::Partition, Family::Delay, Family::Loss, Family::Disk]);
    assert!(only.is_empty(), "all means every variant");
    let (f, only) = parse_nemesis("kill-all, partition-isolate-leader,pause").unwrap();
    assert_eq!(f, vec![Family::Kill, Family::Pause, Family::Partition]);
    assert_eq!(only[&Family::Kill], vec!["kill-all"]);
    assert!(!only.contains_key(&Family::Pause));
    assert_eq!(parse_nemesis("none").unwrap().0, vec![]);
    assert_eq!(parse_nemesis("powerloss").unwrap().0, vec![Family::Powerloss]);
    let e = parse_nemesis("kill,meteor").unwrap_err().to_string();
    assert!(e.contains("meteor"), "{e}");
    for fam in Family::ALL {
        for v in fam.variants() {
            assert_eq!(parse_nemesis(v).unwrap().0, vec![fam], "{v}");
        }
    }
}

#[test]
fn outcome_classification_follows_the_server_error_mapping() {
    use tonic::Status;
    let definite = [
        Status::invalid_argument("key: must not be empty"),
        Status::failed_precondition("expected version 3"),
        Status::resource_exhausted("overloaded: 1024 requests in flight (max_in_flight)"),
        Status::unavailable("write: node 1 is not the leader; leader is node 2"),
        Status::unavailable("write: node 1 knows no leader (election in progress?)"),
        Status::unavailable("stale read refused: node 3 data may be unknown old"),
    ];
    for s in &definite {
        assert_eq!(classify(s), ErrClass::Definite, "{s:?}");
    }
    let unknown = [
        Status::deadline_exceeded("put: deadline of 5s passed"),
        Status::cancelled("Timeout expired"),
        Status::unavailable("write discarded by a leader change, retry: ..."),
        Status::unavailable("node stopped: fatal"),
        Status::unavailable("linearizable read: no quorum: leader 1: transport error"),
        Status::unknown("transport error"),
        Status::internal("h2 protocol error"),
        Status::data_loss("crc mismatch"),
    ];
    for s in &unknown {
        assert_eq!(classify(s), ErrClass::Unknown, "{s:?}");
    }
}

#[tokio::test]
async fn connect_errors_are_definite() {
    // Nothing listens on this port: the request is never sent.
    let ch = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let mut kv = lookout_proto::v1::kv_client::KvClient::new(ch);
    let err = kv.get(lookout_proto::v1::GetRequest::default()).await.unwrap_err();
    assert_eq!(classify(&err), ErrClass::Definite, "{err:?}");
}

#[test]
fn topology() {
    let l = Layout::loopback(5, (99, 7)).unwrap();
    assert_eq!(l.ids(), vec![1, 2, 3, 4, 5]);
    assert_eq!(l.sites(), vec![("primary", vec![1, 2]), ("alternate", vec![3, 4]), ("witness", vec![5])]);
    assert_eq!(l.node(3).client_addr(), "127.99.7.13:7500");
    let toml = l.render_toml();
    assert!(toml.contains("peer_addr = \"127.99.7.15:7400\""));
    assert!(toml.contains("data_dir = \"node5/data\""));
    let l3 = Layout::loopback(3, (99, 7)).unwrap();
    assert_eq!(l3.sites().len(), 3);
    assert!(Layout::loopback(4, (99, 7)).is_err());
}
