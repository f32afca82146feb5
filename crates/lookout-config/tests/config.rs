//! Behaviour of `lookout-config` as seen by its users: the shipped
//! `cluster.toml`, every refusal class (with file, line and field), defaults,
//! rendering and fingerprints.

use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;

use lookout_config::{
    ClusterConfig, ConfigError, ErrorKind, Limits, MEMORY_PATH, RaftTiming, SiteKind, Storage,
};

const FILE: &str = "/etc/lookout/test-cluster.toml";

/// A valid configuration the refusal tests mutate. Tests mark the line they
/// expect an error on with `#<-`.
const BASE: &str = r#"[cluster]
name = "test"
preferred_site = "primary"

[[sites]]
name = "primary"
kind = "datacenter"

[[sites]]
name = "alternate"
kind = "datacenter"

[[sites]]
name = "witness"
kind = "witness"

[[nodes]]
id = 1
site = "primary"
peer_addr = "127.0.0.11:7400"
client_addr = "127.0.0.11:7500"
data_dir = "data/node1"

[[nodes]]
id = 2
site = "alternate"
peer_addr = "127.0.0.12:7400"
client_addr = "127.0.0.12:7500"
data_dir = "data/node2"

[[nodes]]
id = 3
site = "witness"
peer_addr = "127.0.0.13:7400"
client_addr = "127.0.0.13:7500"
data_dir = "data/node3"

[raft]
heartbeat_ms = 50
election_timeout_min_ms = 250
election_timeout_max_ms = 500

[limits]
max_key_bytes = 4096
request_deadline_ms = 5000

[storage]
cache_capacity_bytes = 1048576
"#;

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster.toml")
}

fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
    ClusterConfig::parse(text, Path::new(FILE))
}

/// `BASE` with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    edit_in(BASE, from, to)
}

fn edit_in(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur exactly once"
    );
    text.replacen(from, to, 1)
}

fn marked_line(text: &str) -> usize {
    text.lines()
        .position(|l| l.contains("#<-"))
        .expect("test text has a #<- marker")
        + 1
}

/// Asserts `text` is refused with `FILE:LINE: FIELD: ...` where LINE is the
/// `#<-`-marked line, the message contains `needle`, and the kind matches.
#[track_caller]
fn assert_refused(text: &str, field: &str, kind: ErrorKind, needle: &str) {
    let e = parse(text).expect_err("config should be refused");
    let msg = e.to_string();
    let line = marked_line(text);
    let prefix = format!("{FILE}:{line}: {field}: ");
    assert!(
        msg.starts_with(&prefix),
        "expected prefix `{prefix}`, got `{msg}`"
    );
    assert!(msg.contains(needle), "expected `{needle}` in `{msg}`");
    assert_eq!(e.kind(), kind, "{msg}");
    assert_eq!(e.line(), Some(line));
    assert_eq!(e.field(), Some(field));
    assert_eq!(e.path(), Path::new(FILE));
}

// ----- the shipped file ----------------------------------------------------

#[test]
fn shipped_cluster_toml_is_the_default_topology() {
    let path = shipped_path();
    let c = ClusterConfig::load(&path).expect("shipped cluster.toml must load");
    assert_eq!(c.path, path);
    assert!(c.survivability().is_empty(), "{:?}", c.survivability());

    // Same as ClusterConfig::default() apart from where data dirs resolve to.
    let mut expected = ClusterConfig {
        path: path.clone(),
        ..ClusterConfig::default()
    };
    let dir = path.parent().unwrap();
    for n in &mut expected.nodes {
        n.data_dir = dir.join(&n.data_dir);
    }
    assert_eq!(c, expected);

    assert_eq!(c.cluster.name, "lookout");
    assert_eq!(c.cluster.preferred_site, "primary");
    assert_eq!(c.voters().count(), 5);
    assert_eq!(c.quorum(), 3);
    assert_eq!(c.site("witness").unwrap().kind, SiteKind::Witness);
    assert_eq!(c.site("alternate").unwrap().kind, SiteKind::DataCenter);
    assert!(c.site("nowhere").is_none());
    let n1 = c.node(1).unwrap();
    assert_eq!(
        n1.peer_addr,
        "127.0.0.11:7400".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        n1.client_addr,
        "127.0.0.11:7500".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(n1.data_dir, dir.join("data/node1"));
    assert_eq!(c.node(5).unwrap().site, "witness");
    assert!(c.node(6).is_none());
    assert_eq!(c.raft, RaftTiming::default());
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.storage, Storage::default());
}

#[test]
fn shipped_defaults_have_documented_values() {
    let r = RaftTiming::default();
    assert_eq!(
        (
            r.heartbeat_ms,
            r.election_timeout_min_ms,
            r.election_timeout_max_ms
        ),
        (50, 250, 500)
    );
    assert_eq!(
        (
            r.snapshot_logs_since_last,
            r.logs_to_keep_after_snapshot,
            r.max_payload_entries
        ),
        (10_000, 1_000, 300)
    );
    assert_eq!(r.install_snapshot_timeout_ms, 10_000);
    let l = Limits::default();
    assert_eq!((l.max_key_bytes, l.max_value_bytes), (4096, 1_048_576));
    assert_eq!((l.request_deadline_ms, l.max_in_flight), (5000, 1024));
    assert_eq!((l.max_range_limit, l.dedup_window_ms), (10_000, 300_000));
    assert_eq!(Storage::default().cache_capacity_bytes, 268_435_456);
}

#[test]
fn every_field_of_the_shipped_file_is_documented() {
    // Each `key = value` line either sits right under a comment block that
    // says whether it is required or what its default is, or (for the
    // repeated [[sites]] / [[nodes]] entries) is described by name in the
    // section's header comment together with "(required)" / "(optional)".
    let text = std::fs::read_to_string(shipped_path()).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('#') || l.starts_with('[') || l.is_empty() {
            continue;
        }
        let key = l.split('=').next().unwrap().trim();
        let block: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|c| c.starts_with('#'))
            .copied()
            .collect();
        let above = !block.is_empty()
            && block
                .iter()
                .any(|c| c.contains("Default:") || c.contains("Required"));
        let in_header = lines.iter().any(|c| {
            c.starts_with('#')
                && c.split_whitespace().nth(1) == Some(key)
                && (c.contains("(required)") || c.contains("(optional)"))
        });
        assert!(
            above || in_header,
            "line {}: field `{key}` is not documented",
            i + 1
        );
    }
}

// ----- defaults and resolution ---------------------------------------------

#[test]
fn optional_sections_and_fields_default() {
    let text = r#"
[cluster]
preferred_site = "dc"
[[sites]]
name = "dc"
kind = "datacenter"
[[nodes]]
id = 7
site = "dc"
peer_addr = "10.0.0.7:1"
client_addr = "10.0.0.7:2"
data_dir = "/var/lib/lookout"
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.cluster.name, "lookout");
    assert!(c.nodes[0].voter);
    assert_eq!(c.nodes[0].data_dir, PathBuf::from("/var/lib/lookout"));
    assert_eq!(c.raft, RaftTiming::default());
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.storage, Storage::default());
    // One site holds the only voter: losing it loses the quorum.
    assert_eq!(c.survivability().len(), 1);
}

#[test]
fn partial_sections_keep_other_defaults() {
    let text = edit(
        "max_key_bytes = 4096\n",
        "max_key_bytes = 65536\nmax_in_flight = 7\n",
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.limits.max_key_bytes, 65536);
    assert_eq!(c.limits.max_in_flight, 7);
    assert_eq!(c.limits.max_value_bytes, Limits::default().max_value_bytes);
    assert_eq!(c.storage.cache_capacity_bytes, 1_048_576);
}

#[test]
fn relative_data_dirs_resolve_against_the_file_directory() {
    let c = ClusterConfig::parse(BASE, Path::new("/srv/lk/cluster.toml")).unwrap();
    assert_eq!(c.nodes[0].data_dir, PathBuf::from("/srv/lk/data/node1"));
    let c = ClusterConfig::parse(BASE, Path::new("cluster.toml")).unwrap();
    assert_eq!(c.nodes[0].data_dir, PathBuf::from("data/node1"));
    let c = ClusterConfig::parse(BASE, Path::new(MEMORY_PATH)).unwrap();
    assert_eq!(c.nodes[0].data_dir, PathBuf::from("data/node1"));
    assert_eq!(c.path, PathBuf::from(MEMORY_PATH));
    let abs = edit("data_dir = \"data/node1\"", "data_dir = \"/abs/one\"");
    let c = ClusterConfig::parse(&abs, Path::new("/srv/lk/cluster.toml")).unwrap();
    assert_eq!(c.nodes[0].data_dir, PathBuf::from("/abs/one"));
}

#[test]
fn learners_are_not_voters() {
    let text = edit(
        "data_dir = \"data/node3\"\n",
        "data_dir = \"data/node3\"\nvoter = false\n",
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.voters().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(c.learners().map(|n| n.id).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn inline_tables_and_dotted_keys_are_accepted() {
    let text = edit("[raft]\nheartbeat_ms = 50\n", "[raft]\nheartbeat_ms = 40\n");
    let text = edit_in(&text, "[storage]\ncache_capacity_bytes = 1048576\n", "");
    let text = format!("storage.cache_capacity_bytes = 99\n{text}");
    let c = parse(&text).unwrap();
    assert_eq!(c.raft.heartbeat_ms, 40);
    assert_eq!(c.storage.cache_capacity_bytes, 99);
}

// ----- refusals: syntax and schema -----------------------------------------

#[test]
fn malformed_toml_is_refused_with_its_line() {
    let text = edit("id = 2\n", "id = \n#<-\n");
    // The parser reports the position right after `id = `, i.e. on that line
    // or (for a missing value) where the value was expected.
    let e = parse(&text).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    let msg = e.to_string();
    let line = e.line().unwrap();
    let id_line = text.lines().position(|l| l == "id = ").unwrap() + 1;
    assert_eq!(line, id_line, "{msg}");
    assert!(
        msg.starts_with(&format!("{FILE}:{id_line}: malformed TOML")),
        "{msg}"
    );

    let text = edit("name = \"alternate\"", "name = \"alternate #<-");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.line(), Some(marked_line(&text)), "{e}");

    let text = edit(
        "site = \"witness\"\n",
        "site = \"witness\"\nsite = \"primary\" #<-\n",
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(e.to_string().contains("duplicate key"), "{e}");
    assert_eq!(e.line(), Some(marked_line(&text)), "{e}");
}

#[test]
fn missing_required_fields_are_refused() {
    // A missing node field is reported on the node's [[nodes]] header.
    let text = edit("[[nodes]]\nid = 2\n", "[[nodes]] #<-\nid = 2\n");
    let text = edit_in(&text, "data_dir = \"data/node2\"\n", "");
    assert_refused(
        &text,
        "nodes[1].data_dir",
        ErrorKind::MissingField,
        "missing required field `data_dir`",
    );

    for field in ["id", "site", "peer_addr", "client_addr"] {
        let text = edit("[[nodes]]\nid = 3\n", "[[nodes]] #<-\nid = 3\n");
        let line = text
            .lines()
            .skip(marked_line(&text))
            .find(|l| l.starts_with(&format!("{field} =")))
            .unwrap()
            .to_owned();
        let text = edit_in(&text, &format!("{line}\n"), "");
        assert_refused(
            &text,
            &format!("nodes[2].{field}"),
            ErrorKind::MissingField,
            field,
        );
    }

    let text = edit("preferred_site = \"primary\"\n", "");
    let text = edit_in(&text, "[cluster]\n", "[cluster] #<-\n");
    assert_refused(
        &text,
        "cluster.preferred_site",
        ErrorKind::MissingField,
        "preferred_site",
    );

    let text = edit("kind = \"witness\"\n", "");
    let text = edit_in(
        &text,
        "[[sites]]\nname = \"witness\"",
        "[[sites]] #<-\nname = \"witness\"",
    );
    assert_refused(&text, "sites[2].kind", ErrorKind::MissingField, "kind");

    // A missing top-level section is reported at line 1.
    let text = edit(
        "[cluster]\nname = \"test\"\npreferred_site = \"primary\"\n",
        "#<-\n",
    );
    assert_refused(
        &text,
        "cluster",
        ErrorKind::MissingField,
        "missing required field `cluster`",
    );
}

#[test]
fn unknown_fields_are_refused() {
    let text = edit(
        "data_dir = \"data/node2\"\n",
        "data_dir = \"data/node2\"\ndta_dir = \"x\" #<-\n",
    );
    assert_refused(
        &text,
        "nodes[1].dta_dir",
        ErrorKind::UnknownField,
        "unknown field `dta_dir`",
    );

    let text = edit(
        "heartbeat_ms = 50\n",
        "heartbeat_ms = 50\nheartbeat = 50 #<-\n",
    );
    assert_refused(
        &text,
        "raft.heartbeat",
        ErrorKind::UnknownField,
        "heartbeat_ms",
    );

    let text = format!("{BASE}\n[metrics] #<-\nport = 9000\n");
    assert_refused(
        &text,
        "metrics",
        ErrorKind::UnknownField,
        "unknown field `metrics`",
    );

    let text = edit(
        "kind = \"witness\"\n",
        "kind = \"witness\"\nzone = \"z\" #<-\n",
    );
    assert_refused(&text, "sites[2].zone", ErrorKind::UnknownField, "zone");

    let text = edit("name = \"test\"\n", "name = \"test\"\nversion = 2 #<-\n");
    assert_refused(&text, "cluster.version", ErrorKind::UnknownField, "version");
}

#[test]
fn wrongly_typed_fields_are_refused() {
    let text = edit("id = 2\n", "id = \"2\" #<-\n");
    assert_refused(
        &text,
        "nodes[1].id",
        ErrorKind::WrongType,
        "expected a non-negative integer, found a string",
    );

    let text = edit(
        "data_dir = \"data/node1\"\n",
        "data_dir = \"data/node1\"\nvoter = \"yes\" #<-\n",
    );
    assert_refused(&text, "nodes[0].voter", ErrorKind::WrongType, "boolean");

    let text = edit("heartbeat_ms = 50", "heartbeat_ms = 50.5 #<-");
    assert_refused(
        &text,
        "raft.heartbeat_ms",
        ErrorKind::WrongType,
        "found a float",
    );

    let text = edit("id = 1\n", "id = -1 #<-\n");
    assert_refused(&text, "nodes[0].id", ErrorKind::InvalidValue, "negative");

    let text = format!(
        "raft = 5 #<-\n{}",
        edit(
            "[raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 500\n",
            ""
        )
    );
    assert_refused(&text, "raft", ErrorKind::WrongType, "expected a table");

    let text = edit("name = \"test\"\n", "name = 1979-05-27T07:32:00Z #<-\n");
    assert_refused(
        &text,
        "cluster.name",
        ErrorKind::WrongType,
        "found a datetime",
    );
}

// ----- refusals: semantics -------------------------------------------------

#[test]
fn duplicate_node_id_is_refused() {
    let text = edit("id = 3\n", "id = 1 #<-\n");
    assert_refused(
        &text,
        "nodes[2].id",
        ErrorKind::Duplicate,
        "duplicate node id 1 (also used by nodes[0].id)",
    );
}

#[test]
fn node_id_zero_is_refused() {
    let text = edit("id = 2\n", "id = 0 #<-\n");
    assert_refused(
        &text,
        "nodes[1].id",
        ErrorKind::InvalidValue,
        "0 is reserved",
    );
}

#[test]
fn duplicate_addresses_are_refused_across_kinds() {
    // Same kind.
    let text = edit(
        "client_addr = \"127.0.0.13:7500\"",
        "client_addr = \"127.0.0.11:7500\" #<-",
    );
    assert_refused(
        &text,
        "nodes[2].client_addr",
        ErrorKind::Duplicate,
        "duplicate address 127.0.0.11:7500 (also used by nodes[0].client_addr)",
    );
    // A peer address reused as another node's client address.
    let text = edit(
        "client_addr = \"127.0.0.12:7500\"",
        "client_addr = \"127.0.0.11:7400\" #<-",
    );
    assert_refused(
        &text,
        "nodes[1].client_addr",
        ErrorKind::Duplicate,
        "duplicate address 127.0.0.11:7400 (also used by nodes[0].peer_addr)",
    );
    // One node using the same address for both services.
    let text = edit(
        "client_addr = \"127.0.0.13:7500\"",
        "client_addr = \"127.0.0.13:7400\" #<-",
    );
    assert_refused(
        &text,
        "nodes[2].client_addr",
        ErrorKind::Duplicate,
        "nodes[2].peer_addr",
    );
}

#[test]
fn bad_addresses_are_refused() {
    let text = edit(
        "peer_addr = \"127.0.0.12:7400\"",
        "peer_addr = \"node2:7400\" #<-",
    );
    assert_refused(
        &text,
        "nodes[1].peer_addr",
        ErrorKind::InvalidValue,
        "not an IP:port",
    );
    let text = edit(
        "peer_addr = \"127.0.0.12:7400\"",
        "peer_addr = \"0.0.0.0:7400\" #<-",
    );
    assert_refused(
        &text,
        "nodes[1].peer_addr",
        ErrorKind::InvalidValue,
        "cannot be dialed",
    );
    let text = edit(
        "client_addr = \"127.0.0.12:7500\"",
        "client_addr = \"127.0.0.12:0\" #<-",
    );
    assert_refused(
        &text,
        "nodes[1].client_addr",
        ErrorKind::InvalidValue,
        "cannot be dialed",
    );
    // IPv6 is fine.
    let text = edit(
        "client_addr = \"127.0.0.12:7500\"",
        "client_addr = \"[::1]:7500\"",
    );
    assert_eq!(
        parse(&text).unwrap().nodes[1].client_addr,
        "[::1]:7500".parse().unwrap()
    );
}

#[test]
fn duplicate_data_dir_is_refused() {
    let text = edit("data_dir = \"data/node3\"", "data_dir = \"data/node1\" #<-");
    assert_refused(
        &text,
        "nodes[2].data_dir",
        ErrorKind::Duplicate,
        "also used by nodes[0].data_dir",
    );
    let text = edit("data_dir = \"data/node3\"", "data_dir = \"\" #<-");
    assert_refused(&text, "nodes[2].data_dir", ErrorKind::InvalidValue, "empty");
}

#[test]
fn sites_are_checked() {
    let text = edit("site = \"alternate\"\n", "site = \"elsewhere\" #<-\n");
    assert_refused(
        &text,
        "nodes[1].site",
        ErrorKind::UndeclaredSite,
        "site `elsewhere` is not declared in [[sites]] (declared: primary, alternate, witness)",
    );

    let text = edit(
        "preferred_site = \"primary\"",
        "preferred_site = \"main\" #<-",
    );
    assert_refused(
        &text,
        "cluster.preferred_site",
        ErrorKind::UndeclaredSite,
        "`main` is not declared",
    );

    let text = edit(
        "preferred_site = \"primary\"",
        "preferred_site = \"witness\" #<-",
    );
    assert_refused(
        &text,
        "cluster.preferred_site",
        ErrorKind::InvalidValue,
        "must be a datacenter",
    );

    let text = edit("name = \"alternate\"", "name = \"primary\" #<-");
    assert_refused(
        &text,
        "sites[1].name",
        ErrorKind::Duplicate,
        "duplicate site `primary` (also declared by sites[0].name)",
    );

    let text = edit("kind = \"witness\"", "kind = \"arbiter\" #<-");
    assert_refused(
        &text,
        "sites[2].kind",
        ErrorKind::InvalidValue,
        "unknown site kind `arbiter`",
    );
}

#[test]
fn raft_timing_is_checked() {
    let text = edit(
        "election_timeout_min_ms = 250",
        "election_timeout_min_ms = 50 #<-",
    );
    assert_refused(
        &text,
        "raft.election_timeout_min_ms",
        ErrorKind::Timing,
        "heartbeat_ms (50) must be less than election_timeout_min_ms (50)",
    );

    let text = edit(
        "election_timeout_max_ms = 500",
        "election_timeout_max_ms = 250 #<-",
    );
    assert_refused(
        &text,
        "raft.election_timeout_max_ms",
        ErrorKind::Timing,
        "must be less than election_timeout_max_ms (250)",
    );

    // Only the heartbeat is set: it is the one blamed.
    let text = edit(
        "heartbeat_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 500\n",
        "heartbeat_ms = 300 #<-\n",
    );
    assert_refused(
        &text,
        "raft.heartbeat_ms",
        ErrorKind::Timing,
        "heartbeat_ms (300) must be less than election_timeout_min_ms (250)",
    );

    // Only the minimum is set and exceeds the default maximum.
    let text = edit(
        "heartbeat_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 500\n",
        "election_timeout_min_ms = 600 #<-\n",
    );
    assert_refused(
        &text,
        "raft.election_timeout_min_ms",
        ErrorKind::Timing,
        "(600) must be less than election_timeout_max_ms (500)",
    );

    let text = edit("heartbeat_ms = 50", "heartbeat_ms = 0 #<-");
    assert_refused(
        &text,
        "raft.heartbeat_ms",
        ErrorKind::InvalidValue,
        "greater than 0",
    );

    let text = edit(
        "election_timeout_max_ms = 500\n",
        "election_timeout_max_ms = 500\nmax_payload_entries = 0 #<-\n",
    );
    assert_refused(
        &text,
        "raft.max_payload_entries",
        ErrorKind::InvalidValue,
        "greater than 0",
    );

    // logs_to_keep_after_snapshot may be 0.
    let text = edit(
        "election_timeout_max_ms = 500\n",
        "election_timeout_max_ms = 500\nlogs_to_keep_after_snapshot = 0\n",
    );
    assert_eq!(parse(&text).unwrap().raft.logs_to_keep_after_snapshot, 0);
}

#[test]
fn limits_are_checked() {
    for field in [
        "max_value_bytes",
        "max_in_flight",
        "max_range_limit",
        "request_deadline_ms",
    ] {
        let text = edit(
            "max_key_bytes = 4096\n",
            &format!("max_key_bytes = 4096\n{field} = 0 #<-\n"),
        );
        let text = text.replace("request_deadline_ms = 5000\n", "");
        assert_refused(
            &text,
            &format!("limits.{field}"),
            ErrorKind::InvalidValue,
            "greater than 0",
        );
    }
    let text = edit("max_key_bytes = 4096", "max_key_bytes = 0 #<-");
    assert_refused(
        &text,
        "limits.max_key_bytes",
        ErrorKind::InvalidValue,
        "greater than 0",
    );
    let text = edit("max_key_bytes = 4096", "max_key_bytes = 65537 #<-");
    assert_refused(
        &text,
        "limits.max_key_bytes",
        ErrorKind::InvalidValue,
        "hard cap of 65536",
    );
    let text = edit(
        "max_key_bytes = 4096\n",
        "max_key_bytes = 4096\nmax_value_bytes = 67108865 #<-\n",
    );
    assert_refused(
        &text,
        "limits.max_value_bytes",
        ErrorKind::InvalidValue,
        "hard cap",
    );
    let text = edit(
        "max_key_bytes = 4096\n",
        "max_key_bytes = 4096\ndedup_window_ms = 1000 #<-\n",
    );
    assert_refused(
        &text,
        "limits.dedup_window_ms",
        ErrorKind::InvalidValue,
        "at least request_deadline_ms (5000)",
    );
    let text = edit(
        "cache_capacity_bytes = 1048576",
        "cache_capacity_bytes = 0 #<-",
    );
    assert_refused(
        &text,
        "storage.cache_capacity_bytes",
        ErrorKind::InvalidValue,
        "greater than 0",
    );
}

#[test]
fn at_least_one_voter_is_required() {
    let mut text = BASE.to_owned();
    for i in 1..=3 {
        let from = format!("data_dir = \"data/node{i}\"\n");
        let marker = if i == 1 { " #<-" } else { "" };
        text = edit_in(&text, &from, &format!("{from}voter = false{marker}\n"));
    }
    assert_refused(&text, "nodes[0].voter", ErrorKind::Topology, "no voters");

    let text = format!(
        "nodes = [] #<-\n{}",
        BASE.split("[[nodes]]").next().unwrap()
    );
    let text = format!("{text}\n");
    assert_refused(&text, "nodes", ErrorKind::Topology, "no voters");
}

#[test]
fn nodes_as_inline_tables_report_their_line() {
    let head = BASE.split("[[nodes]]").next().unwrap();
    let text = format!(
        "nodes = [\n  {{ id = 1, site = \"primary\", peer_addr = \"127.0.0.1:1\", client_addr = \"127.0.0.1:2\", data_dir = \"a\" }},\n  {{ id = 1, site = \"primary\", peer_addr = \"127.0.0.1:3\", client_addr = \"127.0.0.1:4\", data_dir = \"b\" }}, #<-\n]\n{head}"
    );
    assert_refused(
        &text,
        "nodes[1].id",
        ErrorKind::Duplicate,
        "duplicate node id 1",
    );
}

#[test]
fn load_reports_unreadable_files_and_names_the_file() {
    let e = ClusterConfig::load(Path::new("/nonexistent/lookout/cluster.toml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/lookout/cluster.toml: cannot read"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    let text = edit("id = 3\n", "id = 2 #<-\n");
    std::fs::write(&path, &text).unwrap();
    let e = ClusterConfig::load(&path).unwrap_err();
    let want = format!(
        "{}:{}: nodes[2].id: duplicate node id 2",
        path.display(),
        marked_line(&text)
    );
    assert!(e.to_string().starts_with(&want), "{e}");
}

#[test]
fn error_display_matches_the_documented_shape() {
    let text = edit(
        "client_addr = \"127.0.0.13:7500\"",
        "client_addr = \"127.0.0.11:7500\"",
    );
    let e = ClusterConfig::parse(&text, Path::new("cluster.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cluster.toml:35: nodes[2].client_addr: duplicate address 127.0.0.11:7500 (also used by nodes[0].client_addr)"
    );
}

// ----- survivability -------------------------------------------------------

#[test]
fn survivability_reports_sites_whose_loss_loses_quorum() {
    // BASE: one voter per site, 3 voters: any site down leaves 2 of 3.
    assert!(parse(BASE).unwrap().survivability().is_empty());

    // Two voters in primary, one in alternate: losing primary leaves 1 of 3.
    let text = edit("site = \"alternate\"\n", "site = \"primary\"\n");
    let w = parse(&text).unwrap().survivability();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`primary`") && w[0].contains("quorum of 2"),
        "{w:?}"
    );

    // 2 + 2 with no witness: losing either datacenter loses the quorum.
    let mut c = ClusterConfig::default();
    c.nodes.retain(|n| n.site != "witness");
    assert_eq!(c.survivability().len(), 2);

    // Learners do not count.
    let mut c = ClusterConfig::default();
    c.nodes[4].voter = false;
    assert_eq!(c.survivability().len(), 2);
    assert!(ClusterConfig::default().survivability().is_empty());
}

// ----- rendering and fingerprints -----------------------------------------

#[test]
fn to_toml_round_trips() {
    let shipped = ClusterConfig::load(&shipped_path()).unwrap();
    let again = ClusterConfig::parse(&shipped.to_toml(), &shipped.path).unwrap();
    assert_eq!(again, shipped);

    let d = ClusterConfig::default();
    assert_eq!(ClusterConfig::parse(&d.to_toml(), &d.path).unwrap(), d);

    // Non-default values, a learner, awkward strings.
    let mut c = ClusterConfig::default();
    c.cluster.name = "weird \"name\" \\ ünïcode\ttab".into();
    c.nodes[2].voter = false;
    c.nodes[0].data_dir = PathBuf::from("/tmp/with space/'quote'");
    c.nodes[1].client_addr = "[::1]:9000".parse().unwrap();
    c.raft.heartbeat_ms = 7;
    c.raft.logs_to_keep_after_snapshot = 0;
    c.limits.max_value_bytes = 12345;
    c.storage.cache_capacity_bytes = 1;
    let text = c.to_toml();
    assert_eq!(ClusterConfig::parse(&text, &c.path).unwrap(), c, "{text}");
    c.validate().unwrap();
}

#[test]
fn validate_checks_in_memory_configs() {
    let mut c = ClusterConfig::default();
    c.nodes[3].id = 1;
    let e = c.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(e.field(), Some("nodes[3].id"));
}

#[test]
fn fingerprint_is_stable_and_tracks_every_field() {
    let base = ClusterConfig::default();
    let fp = base.fingerprint();
    assert_eq!(fp.len(), 16);
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(fp, ClusterConfig::default().fingerprint());
    assert_eq!(
        fp,
        ClusterConfig::parse(&base.to_toml(), Path::new(MEMORY_PATH))
            .unwrap()
            .fingerprint()
    );

    type Mutation = Box<dyn Fn(&mut ClusterConfig)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        ("cluster.name", Box::new(|c| c.cluster.name.push('x'))),
        (
            "preferred_site",
            Box::new(|c| c.cluster.preferred_site = "alternate".into()),
        ),
        (
            "site kind",
            Box::new(|c| c.sites[1].kind = SiteKind::Witness),
        ),
        ("site order", Box::new(|c| c.sites.swap(0, 1))),
        ("node id", Box::new(|c| c.nodes[0].id = 9)),
        (
            "node site",
            Box::new(|c| c.nodes[0].site = "alternate".into()),
        ),
        ("peer_addr", Box::new(|c| c.nodes[0].peer_addr.set_port(1))),
        (
            "client_addr",
            Box::new(|c| c.nodes[0].client_addr.set_port(1)),
        ),
        ("data_dir", Box::new(|c| c.nodes[0].data_dir.push("x"))),
        ("voter", Box::new(|c| c.nodes[0].voter = false)),
        ("heartbeat", Box::new(|c| c.raft.heartbeat_ms += 1)),
        (
            "election min",
            Box::new(|c| c.raft.election_timeout_min_ms += 1),
        ),
        (
            "election max",
            Box::new(|c| c.raft.election_timeout_max_ms += 1),
        ),
        (
            "snapshot",
            Box::new(|c| c.raft.snapshot_logs_since_last += 1),
        ),
        (
            "keep",
            Box::new(|c| c.raft.logs_to_keep_after_snapshot += 1),
        ),
        ("payload", Box::new(|c| c.raft.max_payload_entries += 1)),
        (
            "install",
            Box::new(|c| c.raft.install_snapshot_timeout_ms += 1),
        ),
        ("key", Box::new(|c| c.limits.max_key_bytes += 1)),
        ("value", Box::new(|c| c.limits.max_value_bytes += 1)),
        ("deadline", Box::new(|c| c.limits.request_deadline_ms += 1)),
        ("in flight", Box::new(|c| c.limits.max_in_flight += 1)),
        ("range", Box::new(|c| c.limits.max_range_limit += 1)),
        ("dedup", Box::new(|c| c.limits.dedup_window_ms += 1)),
        ("cache", Box::new(|c| c.storage.cache_capacity_bytes += 1)),
    ];
    let mut seen = std::collections::HashSet::from([fp.clone()]);
    for (what, mutate) in mutations {
        let mut c = base.clone();
        mutate(&mut c);
        let f = c.fingerprint();
        assert_ne!(f, fp, "changing {what} must change the fingerprint");
        assert!(
            seen.insert(f),
            "{what}: fingerprint collided with another mutation"
        );
    }
}
