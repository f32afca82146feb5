//! `lookoutctl`: the operator tool for Lookout. Starts a local cluster from
//! `cluster.toml` (`cluster up`), reads and writes keys, shows node status and
//! changes membership, and works with screening records: lookouts, travellers,
//! screening, manifests and bulk ingest. Command logic lives in `commands`,
//! `cluster` and `screening`; all printing (tables, JSON) in `output`.

mod cluster;
mod commands;
mod output;
mod screening;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgGroup;
use clap::Args;
use clap::Parser;
use clap::Subcommand;
use lookout_client::ClientError;
use lookout_client::Consistency;

use crate::output::Output;

/// Exit code for failures (RPC errors, bad configuration).
pub const EXIT_ERROR: u8 = 1;
/// Exit code when a compare-and-swap's condition did not hold, or a lookout
/// write's expected version did not match.
pub const EXIT_CAS_FAILED: u8 = 3;
/// Exit code of an ingest that completed but skipped bad lines or had records rejected.
pub const EXIT_REJECTED: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "lookoutctl",
    version,
    about = "Operate a Lookout cluster: start it locally, read and write keys, inspect status, change membership, manage and screen against lookouts.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error, 3 compare-and-swap condition or expected version not met, \
                  4 ingest completed but some lines or records were rejected."
)]
pub struct Cli {
    /// Cluster configuration file [default: cluster.toml]
    #[arg(long, global = true, value_name = "PATH", env = "LOOKOUT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Client addresses to contact, comma-separated host:port
    /// [default: every node's client_addr from the config]
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        value_name = "ADDRS",
        env = "LOOKOUT_ENDPOINTS"
    )]
    pub endpoints: Vec<String>,

    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Overall deadline of each request in milliseconds, retries included [default: 5000]
    #[arg(long, global = true, value_name = "MS")]
    pub timeout: Option<u64>,

    /// Send requests only to the first endpoint; never follow leader redirects
    #[arg(long, global = true)]
    pub pin: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local cluster
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Show every node's role, term, log and applied indexes, digest and version
    Status,
    /// Write a value
    Put {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Read a value (the value on stdout, its version and index on stderr)
    Get {
        key: String,
        /// linearizable, lease or stale
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
        /// With --consistency stale: refuse if the serving node may be staler than this
        #[arg(long, value_name = "N")]
        max_staleness_ms: Option<u64>,
    },
    /// Delete a key
    Del { key: String },
    /// Compare-and-swap: write (or delete) only if the key is as expected
    Cas(CasArgs),
    /// List keys starting with a prefix
    Range {
        prefix: String,
        /// Most keys per page (server default 1000)
        #[arg(long)]
        limit: Option<u32>,
        /// Follow continuation tokens until every key is listed
        #[arg(long)]
        all: bool,
        /// Continue from this token (hex, as printed by a previous range)
        #[arg(long, value_name = "HEX", conflicts_with = "all")]
        continuation: Option<String>,
        /// linearizable, lease or stale
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
    },
    /// List voters and learners (from the leader's status) with sites and addresses
    Members,
    /// Hand leadership to another voter
    TransferLeader { id: u64 },
    /// Add a non-voting member
    AddLearner {
        id: u64,
        #[arg(long, value_name = "HOST:PORT")]
        peer_addr: String,
        #[arg(long, value_name = "HOST:PORT")]
        client_addr: String,
        #[arg(long)]
        site: String,
    },
    /// Make a learner a voter
    Promote { id: u64 },
    /// Remove a node from the cluster
    RemoveNode { id: u64 },
    /// Watch-list records (lookouts): put, get, retire, list
    #[command(subcommand)]
    Lookout(LookoutCommand),
    /// Traveller records
    #[command(subcommand)]
    Traveller(TravellerCommand),
    /// Screen one identity against the lookouts
    Screen(ScreenArgs),
    /// Screen a flight manifest: a JSON-lines file of travellers
    Manifest(ManifestArgs),
    /// Bulk-load records from a JSON-lines file (one domain record per line)
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Generate a deterministic synthetic data set (lookouts, travellers, ground truth)
    Gen(GenArgs),
}

/// Read consistency flags shared by the screening reads.
#[derive(Args, Debug, Clone, Copy)]
pub struct ReadArgs {
    /// linearizable, lease or stale
    #[arg(long, default_value = "linearizable")]
    pub consistency: Consistency,
    /// With --consistency stale: refuse if the serving node may be staler than this
    #[arg(long, value_name = "N")]
    pub max_staleness_ms: Option<u64>,
}

/// A lookout category, as given on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CategoryArg {
    NoBoard,
    ReferSecondary,
    AlertOnly,
}

#[derive(Subcommand, Debug)]
pub enum LookoutCommand {
    /// Create or replace a lookout from a JSON file (one domain `Lookout`, as
    /// `lookout get --json` prints under "lookout")
    Put {
        /// The JSON file, or - for stdin
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Write only if the stored version is N (0 = create only)
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
        /// Who is making the change (recorded as created_by / updated_by)
        #[arg(long, value_name = "NAME")]
        actor: String,
    },
    /// Show a lookout
    Get {
        id: String,
        /// Also show every earlier version
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Retire a lookout (it stays on record but never matches again)
    Retire {
        id: String,
        /// Who is retiring it
        #[arg(long, value_name = "NAME")]
        actor: String,
        /// Retire only if the stored version is N
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// List lookouts in id order
    List {
        /// Only this category (repeatable)
        #[arg(long, value_enum)]
        category: Vec<CategoryArg>,
        /// Only lookouts valid at this unix time in milliseconds
        #[arg(long, value_name = "N")]
        valid_at_ms: Option<u64>,
        /// Also list retired lookouts
        #[arg(long)]
        include_retired: bool,
        /// Most lookouts per page (server default 100)
        #[arg(long)]
        limit: Option<u32>,
        /// Follow continuation tokens until every lookout is listed
        #[arg(long)]
        all: bool,
        /// Continue from this token (hex, as printed by a previous list)
        #[arg(long, value_name = "HEX", conflicts_with = "all")]
        continuation: Option<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TravellerCommand {
    /// Show a traveller record
    Get {
        id: String,
        #[command(flatten)]
        read: ReadArgs,
    },
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("who").required(true).multiple(true)
    .args(["surname", "given", "doc"])))]
pub struct ScreenArgs {
    /// Surname(s)
    #[arg(long)]
    pub surname: Option<String>,
    /// Given name(s)
    #[arg(long)]
    pub given: Option<String>,
    /// Date of birth: YYYY, YYYY-MM or YYYY-MM-DD
    #[arg(long, value_name = "DATE")]
    pub dob: Option<String>,
    /// A document: TYPE:CCC:NUMBER, TYPE one of passport, national-id, visa, other
    /// (repeatable), e.g. passport:GBR:123456789
    #[arg(long, value_name = "TYPE:CCC:NUMBER")]
    pub doc: Vec<String>,
    /// Nationality (ISO 3166-1 alpha-3)
    #[arg(long, value_name = "CCC")]
    pub nationality: Option<String>,
    /// Sex: M, F or X
    #[arg(long)]
    pub sex: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// JSON lines: each a domain `Traveller`, or an object with an "identity"
    /// (and optionally a "reference")
    pub file: PathBuf,
    /// The flight, e.g. AC870 [default: the first traveller's itinerary]
    #[arg(long)]
    pub flight: Option<String>,
    /// Also list passengers who were cleared
    #[arg(long)]
    pub all: bool,
    /// Passengers per ScreenManifest call (at most 1000)
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub chunk: u64,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags shared by both kinds of ingest.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// JSON lines, one domain record per line (- for stdin)
    pub file: PathBuf,
    /// Records per ingest call: a failure loses at most one call's progress
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk: u64,
    /// Start at this line (1-based), e.g. to resume after a failed call
    #[arg(long, value_name = "LINE", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub from_line: u64,
    /// How many errors to list in the summary (all are counted)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub errors: usize,
}

#[derive(Subcommand, Debug)]
pub enum IngestCommand {
    /// Lookouts: each line one domain `Lookout`
    Lookouts {
        #[command(flatten)]
        args: IngestArgs,
        /// Who is loading them (recorded as created_by / updated_by)
        #[arg(long, value_name = "NAME")]
        actor: String,
    },
    /// Travellers: each line one domain `Traveller`
    Travellers {
        #[command(flatten)]
        args: IngestArgs,
    },
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Seed: the same seed and sizes give byte-identical files
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of lookouts
    #[arg(long, default_value_t = 1000)]
    pub lookouts: u64,
    /// Number of travellers
    #[arg(long, default_value_t = 10_000)]
    pub travellers: u64,
    /// Fraction of travellers planted against a lookout [default: the generator's, 0.01]
    #[arg(long, value_name = "F")]
    pub plant_rate: Option<f64>,
    /// Output directory (created if missing); lookouts.jsonl, travellers.jsonl
    /// and truth.jsonl are written there
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Start one lookoutd per node in the config, wait for a leader, and supervise
    /// them until Ctrl-C
    Up {
        /// The lookoutd binary [default: next to lookoutctl, else on PATH]
        #[arg(long, value_name = "PATH")]
        bin: Option<PathBuf>,
        /// Give up if the cluster has no leader seen by every node after this long
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        ready_timeout: u64,
    },
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("expectation").required(true)
    .args(["expect_value", "expect_version", "expect_absent"])))]
#[command(group(ArgGroup::new("outcome").required(true).args(["new_value", "delete"])))]
pub struct CasArgs {
    pub key: String,
    /// The value to write if the condition holds
    pub new_value: Option<String>,
    /// Delete the key if the condition holds
    #[arg(long)]
    pub delete: bool,
    /// Condition: the current value equals V
    #[arg(long, value_name = "V")]
    pub expect_value: Option<String>,
    /// Condition: the current version equals N (0 = absent)
    #[arg(long, value_name = "N")]
    pub expect_version: Option<u64>,
    /// Condition: the key does not exist
    #[arg(long)]
    pub expect_absent: bool,
}

/// Why a command failed.
#[derive(Debug)]
pub enum CtlError {
    Client(ClientError),
    Other(String),
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::Client(e) => e.fmt(f),
            CtlError::Other(msg) => f.write_str(msg),
        }
    }
}

impl From<ClientError> for CtlError {
    fn from(e: ClientError) -> Self {
        CtlError::Client(e)
    }
}

impl From<String> for CtlError {
    fn from(msg: String) -> Self {
        CtlError::Other(msg)
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`lookoutctl status --json | head`) instead of panicking on EPIPE. Under
    // `cluster up` that also stops the nodes (they get SIGTERM when we die).
    // SAFETY: called before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    // One thread: lookoutctl is I/O-bound, and `cluster up` relies on spawning
    // its children from the main thread (see cluster.rs).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(out, &CtlError::Other(format!("cannot start runtime: {e}")));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match rt.block_on(commands::run(&cli, out)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(out, &e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = Cli::try_parse_from([
            "lookoutctl",
            "get",
            "k",
            "--json",
            "--endpoints",
            "a:1,b:2",
            "--consistency",
            "stale",
            "--max-staleness-ms",
            "50",
            "--timeout",
            "100",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.endpoints, vec!["a:1", "b:2"]);
        assert_eq!(cli.timeout, Some(100));
        match cli.command {
            Command::Get {
                consistency,
                max_staleness_ms,
                ..
            } => {
                assert_eq!(consistency, Consistency::Stale);
                assert_eq!(max_staleness_ms, Some(50));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cas_needs_exactly_one_condition_and_one_outcome() {
        let ok = |args: &[&str]| {
            let mut v = vec!["lookoutctl", "cas"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).is_ok()
        };
        assert!(ok(&["k", "new", "--expect-version", "3"]));
        assert!(ok(&["k", "--delete", "--expect-value", "old"]));
        assert!(ok(&["k", "v", "--expect-absent"]));
        assert!(!ok(&["k", "v"]));
        assert!(!ok(&["k", "--expect-absent"]));
        assert!(!ok(&["k", "v", "--delete", "--expect-absent"]));
        assert!(!ok(&["k", "v", "--expect-absent", "--expect-version", "1"]));
    }

    #[test]
    fn cluster_up_flags() {
        let cli = Cli::try_parse_from([
            "lookoutctl",
            "--config",
            "x.toml",
            "cluster",
            "up",
            "--bin",
            "/b",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        match cli.command {
            Command::Cluster(ClusterCommand::Up { bin, ready_timeout }) => {
                assert_eq!(bin, Some(PathBuf::from("/b")));
                assert_eq!(ready_timeout, 60);
            }
            other => panic!("{other:?}"),
        }
    }
}
