//! The replicated command language: what a Raft log entry asks the state machine
//! to do ([`Request`]), what applying it answered ([`Response`]), and the openraft
//! type configuration ([`TypeConfig`]) that ties them to node ids and addresses.
//!
//! Invariants:
//! - Applying a [`Request`] is deterministic: it depends only on the request, the
//!   state before it and the entry's log id. Time comes from
//!   [`Request::proposed_at_ms`], stamped once by the proposing leader, never from
//!   the applying node's clock.
//! - A request with a [`RequestId`] is applied at most once within the
//!   de-duplication window; a retry gets the first application's [`Response`].

pub use lookout_screening::Lookout;
pub use lookout_screening::Traveller;
use serde::Deserialize;
use serde::Serialize;

pub type NodeId = u64;

/// What every member knows about a node, carried in the replicated membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Address of the peer (Raft) gRPC service, `host:port`.
    pub peer_addr: String,
    /// Address of the client gRPC service, `host:port`.
    pub client_addr: String,
    /// Site name from `cluster.toml` (`primary`, `alternate`, `witness`, ...).
    pub site: String,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.peer_addr, self.site)
    }
}

openraft::declare_raft_types!(
    /// openraft type configuration for Lookout.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = Node,
);

pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;

/// A client-chosen identifier of one logical write, reused on every retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId(pub [u8; 16]);

/// One replicated command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// De-duplication id; `None` for writes that need no exactly-once guarantee.
    pub id: Option<RequestId>,
    /// Wall-clock ms at the proposing leader. Used only for de-duplication expiry.
    pub proposed_at_ms: u64,
    pub op: Op,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.op)
    }
}

/// The operation a command performs. New domains add variants here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    CompareAndSwap { key: Vec<u8>, expected: Expected, new: NewValue },
    /// Creates or replaces a lookout (its version, created_by/updated_by are set by the
    /// state machine). `expected_version`: None = upsert, Some(0) = create only,
    /// Some(n) = replace only version n.
    PutLookout { lookout: Box<Lookout>, expected_version: Option<u64>, actor: String },
    /// Upserts many lookouts in one entry (bulk ingest); each is applied as `PutLookout`
    /// with no version check.
    PutLookouts { lookouts: Vec<Lookout>, actor: String },
    /// Marks a lookout retired: it keeps its history but no longer matches.
    RetireLookout { id: String, expected_version: Option<u64>, actor: String },
    /// Creates or replaces travellers.
    PutTravellers { travellers: Vec<Traveller> },
}

/// The condition of a compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expected {
    /// The current value equals this.
    Value(Vec<u8>),
    /// The current version equals this; 0 means the key is absent.
    Version(u64),
    /// The key is absent.
    Absent,
}

/// What a successful compare-and-swap writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewValue {
    Put(Vec<u8>),
    Delete,
}

/// A stored key's value and its version metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// Writes since the key was (re)created; 1 after the first put.
    pub version: u64,
    /// Log index of the write that created the key.
    pub create_index: u64,
    /// Log index of the last write to the key.
    pub mod_index: u64,
}

/// The state machine's answer to one applied entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Log index of the entry that produced this response.
    pub index: u64,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Blank and membership entries.
    #[default]
    None,
    Put { version: u64 },
    Delete { existed: bool },
    CompareAndSwap { succeeded: bool, previous: Option<Versioned>, new_version: u64 },
    /// A lookout write took effect; its new version.
    Lookout { version: u64 },
    /// A lookout write's version check failed; the stored version (0 = absent).
    LookoutConflict { current_version: u64 },
    /// A batch write took effect; the new version of each record, in order.
    Batch { versions: Vec<u64> },
}
