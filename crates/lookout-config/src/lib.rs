//! Lookout's cluster configuration: one `cluster.toml` declares the whole
//! topology (cluster name, sites, every node's addresses and data directory,
//! which nodes vote) and every tunable limit (Raft timing, request limits,
//! storage cache). This crate parses that file into a [`ClusterConfig`] and
//! validates it completely before anything starts, so that `lookoutd`,
//! `lookoutctl`, the tests and the Jepsen harness all agree on one topology.
//! A refused file yields a [`ConfigError`] naming the file, the 1-based line
//! and the dotted field path (`cluster.toml:14: nodes[2].client_addr: ...`).
//! The crate is pure: apart from [`ClusterConfig::load`] reading the one
//! file, it does no I/O (it does not create data directories, resolve host
//! names or touch the network). [`ClusterConfig::to_toml`] renders a config
//! back to text that parses to the same value, for tools that generate
//! configurations; [`ClusterConfig::fingerprint`] hashes that canonical text
//! for configuration-drift detection.
//!
//! Defaults for every optional field live in [`defaults`] and in the
//! `Default` impls of [`RaftTiming`], [`Limits`] and [`Storage`];
//! `ClusterConfig::default()` is the shipped five-node topology.
//!
//! ```
//! use std::path::Path;
//! use lookout_config::ClusterConfig;
//!
//! let text = ClusterConfig::default().to_toml();
//! let cfg = ClusterConfig::parse(&text, Path::new("/etc/lookout/cluster.toml")).unwrap();
//! let me = cfg.node(1).unwrap();
//! assert_eq!(me.peer_addr.to_string(), "127.0.0.11:7400");
//! assert_eq!(me.data_dir, Path::new("/etc/lookout/data/node1"));
//! assert_eq!(cfg.voters().count(), 5);
//! assert!(cfg.survivability().is_empty());
//!
//! let bad = text.replace("id = 2", "id = 1");
//! let err = ClusterConfig::parse(&bad, Path::new("cluster.toml")).unwrap_err();
//! assert!(err.to_string().contains(": nodes[1].id: duplicate node id 1"));
//! ```

mod error;
mod parse;
mod render;
mod tree;

use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ConfigError;
pub use error::ErrorKind;

/// The `path` of a [`ClusterConfig`] that was not loaded from a file.
pub const MEMORY_PATH: &str = "<memory>";

/// Hard upper bound accepted for `limits.max_key_bytes` (64 KiB).
pub const MAX_KEY_BYTES_CAP: usize = 64 * 1024;

/// Hard upper bound accepted for `limits.max_value_bytes` (64 MiB). Servers
/// must size their gRPC message limits from `max_value_bytes`, not assume
/// tonic's 4 MiB default.
pub const MAX_VALUE_BYTES_CAP: usize = 64 * 1024 * 1024;

/// Default values of every optional field in `cluster.toml`.
pub mod defaults {
    /// `cluster.name`.
    pub const CLUSTER_NAME: &str = "lookout";
    /// `nodes[].voter`: nodes vote unless declared `voter = false` (learner).
    pub const VOTER: bool = true;

    /// `raft.heartbeat_ms`: leader heartbeat interval.
    pub const HEARTBEAT_MS: u64 = 50;
    /// `raft.election_timeout_min_ms`: lower bound of the randomized election timeout.
    pub const ELECTION_TIMEOUT_MIN_MS: u64 = 250;
    /// `raft.election_timeout_max_ms`: upper bound (exclusive) of the election timeout.
    pub const ELECTION_TIMEOUT_MAX_MS: u64 = 500;
    /// `raft.snapshot_logs_since_last`: build a snapshot after this many applied entries.
    pub const SNAPSHOT_LOGS_SINCE_LAST: u64 = 10_000;
    /// `raft.logs_to_keep_after_snapshot`: log entries kept behind a snapshot
    /// so slightly lagging followers catch up without a snapshot transfer.
    pub const LOGS_TO_KEEP_AFTER_SNAPSHOT: u64 = 1_000;
    /// `raft.max_payload_entries`: most entries per AppendEntries message.
    pub const MAX_PAYLOAD_ENTRIES: u64 = 300;
    /// `raft.install_snapshot_timeout_ms`: timeout of one snapshot-transfer RPC.
    pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;

    /// `limits.max_key_bytes`: longest accepted key (4 KiB).
    pub const MAX_KEY_BYTES: usize = 4096;
    /// `limits.max_value_bytes`: longest accepted value (1 MiB).
    pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
    /// `limits.request_deadline_ms`: server-side deadline of one client request.
    pub const REQUEST_DEADLINE_MS: u64 = 5_000;
    /// `limits.max_in_flight`: client requests a node serves concurrently
    /// before refusing new ones.
    pub const MAX_IN_FLIGHT: usize = 1024;
    /// `limits.max_range_limit`: most keys one range/scan request returns.
    pub const MAX_RANGE_LIMIT: usize = 10_000;
    /// `limits.dedup_window_ms`: how long a write's request id is remembered
    /// for exactly-once retries (5 minutes).
    pub const DEDUP_WINDOW_MS: u64 = 300_000;

    /// `storage.cache_capacity_bytes`: storage engine page cache (256 MiB).
    pub const CACHE_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;
}

/// A parsed, fully validated `cluster.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The file it was loaded from ([`MEMORY_PATH`] if built in memory).
    pub path: PathBuf,
    pub cluster: ClusterSection,
    /// Declared sites, in file order.
    pub sites: Vec<Site>,
    /// Declared nodes, in file order.
    pub nodes: Vec<NodeConfig>,
    pub raft: RaftTiming,
    pub limits: Limits,
    pub storage: Storage,
}

/// `[cluster]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSection {
    /// Cluster name, for humans and for telling clusters apart
    /// (default [`defaults::CLUSTER_NAME`]).
    pub name: String,
    /// The datacenter site that should normally hold the leader (required;
    /// must be a declared site of kind `datacenter`).
    pub preferred_site: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: defaults::CLUSTER_NAME.to_owned(),
            preferred_site: "primary".to_owned(),
        }
    }
}

/// One `[[sites]]` entry: a failure domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Site {
    pub name: String,
    pub kind: SiteKind,
}

/// What a site is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// A full site that serves clients and may hold the leader
    /// (`kind = "datacenter"`).
    DataCenter,
    /// A tie-breaker site that only contributes a vote (`kind = "witness"`).
    Witness,
}

impl SiteKind {
    /// The spelling used in `cluster.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::DataCenter => "datacenter",
            SiteKind::Witness => "witness",
        }
    }

    /// Inverse of [`SiteKind::as_str`].
    pub fn from_name(s: &str) -> Option<SiteKind> {
        match s {
            "datacenter" => Some(SiteKind::DataCenter),
            "witness" => Some(SiteKind::Witness),
            _ => None,
        }
    }
}

impl std::fmt::Display for SiteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[nodes]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Raft node id; unique, non-zero.
    pub id: u64,
    /// Name of the declared site the node lives in.
    pub site: String,
    /// Where the peer (Raft) gRPC service listens and where peers dial it.
    pub peer_addr: SocketAddr,
    /// Where the client gRPC service listens and where clients dial it.
    pub client_addr: SocketAddr,
    /// The node's storage directory. A relative value in the file is resolved
    /// against the config file's directory at parse time.
    pub data_dir: PathBuf,
    /// Whether the node votes (default [`defaults::VOTER`]); `false` makes it
    /// a learner.
    pub voter: bool,
}

/// `[raft]`: openraft timing and log-compaction knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_logs_since_last: u64,
    pub logs_to_keep_after_snapshot: u64,
    pub max_payload_entries: u64,
    pub install_snapshot_timeout_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: defaults::HEARTBEAT_MS,
            election_timeout_min_ms: defaults::ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: defaults::ELECTION_TIMEOUT_MAX_MS,
            snapshot_logs_since_last: defaults::SNAPSHOT_LOGS_SINCE_LAST,
            logs_to_keep_after_snapshot: defaults::LOGS_TO_KEEP_AFTER_SNAPSHOT,
            max_payload_entries: defaults::MAX_PAYLOAD_ENTRIES,
            install_snapshot_timeout_ms: defaults::INSTALL_SNAPSHOT_TIMEOUT_MS,
        }
    }
}

impl RaftTiming {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn election_timeout_min(&self) -> Duration {
        Duration::from_millis(self.election_timeout_min_ms)
    }

    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms)
    }

    pub fn install_snapshot_timeout(&self) -> Duration {
        Duration::from_millis(self.install_snapshot_timeout_ms)
    }
}

/// `[limits]`: what a node accepts from clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub request_deadline_ms: u64,
    pub max_in_flight: usize,
    pub max_range_limit: usize,
    pub dedup_window_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: defaults::MAX_KEY_BYTES,
            max_value_bytes: defaults::MAX_VALUE_BYTES,
            request_deadline_ms: defaults::REQUEST_DEADLINE_MS,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            max_range_limit: defaults::MAX_RANGE_LIMIT,
            dedup_window_ms: defaults::DEDUP_WINDOW_MS,
        }
    }
}

impl Limits {
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }

    pub fn dedup_window(&self) -> Duration {
        Duration::from_millis(self.dedup_window_ms)
    }
}

/// `[storage]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    pub cache_capacity_bytes: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            cache_capacity_bytes: defaults::CACHE_CAPACITY_BYTES,
        }
    }
}

impl Default for ClusterConfig {
    /// The shipped topology (the same as `/cluster.toml`): sites `primary`
    /// and `alternate` (datacenters) and `witness`; five voters, nodes 1-2 in
    /// `primary`, 3-4 in `alternate`, 5 in `witness`; node N on loopback
    /// address 127.0.0.1N, peer port 7400, client port 7500, data directory
    /// `data/nodeN` (relative, as the path is [`MEMORY_PATH`]).
    fn default() -> Self {
        let sites = vec![
            Site {
                name: "primary".into(),
                kind: SiteKind::DataCenter,
            },
            Site {
                name: "alternate".into(),
                kind: SiteKind::DataCenter,
            },
            Site {
                name: "witness".into(),
                kind: SiteKind::Witness,
            },
        ];
        let site_of = |id: u64| match id {
            1 | 2 => "primary",
            3 | 4 => "alternate",
            _ => "witness",
        };
        let nodes = (1..=5u64)
            .map(|id| {
                let ip = std::net::Ipv4Addr::new(127, 0, 0, 10 + id as u8);
                NodeConfig {
                    id,
                    site: site_of(id).into(),
                    peer_addr: SocketAddr::from((ip, 7400)),
                    client_addr: SocketAddr::from((ip, 7500)),
                    data_dir: PathBuf::from(format!("data/node{id}")),
                    voter: true,
                }
            })
            .collect();
        ClusterConfig {
            path: PathBuf::from(MEMORY_PATH),
            cluster: ClusterSection::default(),
            sites,
            nodes,
            raft: RaftTiming::default(),
            limits: Limits::default(),
            storage: Storage::default(),
        }
    }
}

impl ClusterConfig {
    /// Reads and parses `path`. Relative `data_dir`s are resolved against
    /// the directory part of `path` as given (no canonicalization).
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`. `path` names the file in error messages
    /// and its directory is the base for relative `data_dir` values; pass
    /// `Path::new(MEMORY_PATH)` for text that has no file (relative
    /// `data_dir`s then stay relative).
    pub fn parse(text: &str, path: &Path) -> Result<ClusterConfig, ConfigError> {
        parse::parse(text, path)
    }

    /// Checks an in-memory config (e.g. one built by a test harness) with the
    /// same rules as [`ClusterConfig::parse`]; line numbers in errors then
    /// refer to the text of [`ClusterConfig::to_toml`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        Self::parse(&self.to_toml(), &self.path).map(|_| ())
    }

    /// The node with this id.
    pub fn node(&self, id: u64) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Voting nodes, in file order.
    pub fn voters(&self) -> impl Iterator<Item = &NodeConfig> {
        self.nodes.iter().filter(|n| n.voter)
    }

    /// Non-voting nodes (learners), in file order.
    pub fn learners(&self) -> impl Iterator<Item = &NodeConfig> {
        self.nodes.iter().filter(|n| !n.voter)
    }

    /// The declared site with this name.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// Number of votes a Raft majority needs (`voters / 2 + 1`).
    pub fn quorum(&self) -> usize {
        self.voters().count() / 2 + 1
    }

    /// Canonical TOML text of this config: every field written explicitly,
    /// sites and nodes in order, `data_dir` exactly as stored (absolute once
    /// resolved by a parse, relative if built in memory). Parsing it with the
    /// same `path` gives back an equal `ClusterConfig`.
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }

    /// Stable fingerprint of the configuration: the 64-bit FNV-1a hash of
    /// [`ClusterConfig::to_toml`], as 16 lowercase hex digits. Equal configs
    /// have equal fingerprints on every platform and run; any field change
    /// (including a resolved `data_dir`) changes it. Not a security hash.
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", render::fnv1a64(self.to_toml().as_bytes()))
    }

    /// Warnings (not errors) about fault tolerance: one message per site
    /// whose loss would leave fewer voters than a quorum. Empty for the
    /// shipped topology (2 + 2 + 1 voters: any one site down leaves >= 3 of 5).
    pub fn survivability(&self) -> Vec<String> {
        let total = self.voters().count();
        let quorum = self.quorum();
        let mut out = Vec::new();
        for site in &self.sites {
            let here = self.voters().filter(|n| n.site == site.name).count();
            if here == 0 {
                continue;
            }
            let left = total - here;
            if left < quorum {
                out.push(format!(
                    "losing site `{}` ({} of {} voters) would leave {} voter{}, below the quorum of {}",
                    site.name,
                    here,
                    total,
                    left,
                    if left == 1 { "" } else { "s" },
                    quorum
                ));
            }
        }
        out
    }
}
