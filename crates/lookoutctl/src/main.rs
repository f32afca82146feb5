//! `lookoutctl`: the operator tool for Lookout. Starts a local cluster from
//! `cluster.toml` (`cluster up`), reads and writes keys, shows node status and
//! changes membership. Command logic lives in `commands` and `cluster`; all
//! printing (tables, JSON) in `output`.

mod cluster;
mod commands;
mod output;

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
/// Exit code when a compare-and-swap's condition did not hold.
pub const EXIT_CAS_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "lookoutctl",
    version,
    about = "Operate a Lookout cluster: start it locally, read and write keys, inspect status, change membership.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error, 3 compare-and-swap condition not met."
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
