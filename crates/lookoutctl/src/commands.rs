//! Command logic: build a client from the flags and config, call it, and hand
//! the results to `output`.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use lookout_client::Client;
use lookout_client::ClientOptions;
use lookout_client::Consistency;
use lookout_client::Expected;
use lookout_client::NewValue;
use lookout_client::ReadOpts;
use lookout_config::ClusterConfig;

use crate::Cli;
use crate::ClusterCommand;
use crate::Command;
use crate::CtlError;
use crate::EXIT_CAS_FAILED;
use crate::output;
use crate::output::Output;
use crate::output::StatusRow;

pub const DEFAULT_CONFIG: &str = "cluster.toml";
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// Runs the parsed command; returns the process exit code.
pub async fn run(cli: &Cli, out: Output) -> Result<u8, CtlError> {
    match &cli.command {
        Command::Cluster(ClusterCommand::Up { bin, ready_timeout }) => {
            let path = cli
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            crate::cluster::up(
                &path,
                cli.config.is_some(),
                bin.clone(),
                Duration::from_secs(*ready_timeout),
                out,
            )
            .await
        }
        Command::Status => {
            let ctx = Context::new(cli)?;
            let rows = status_rows(&ctx.client, ctx.config.as_ref()).await;
            let all_down = rows.iter().all(|r| r.result.is_err());
            output::status(out, &rows);
            Ok(if all_down { crate::EXIT_ERROR } else { 0 })
        }
        Command::Put { key, value } => {
            let ctx = Context::new(cli)?;
            let r = ctx.client.put(key.as_bytes(), value.as_bytes()).await?;
            output::put(out, key.as_bytes(), &r);
            Ok(0)
        }
        Command::Get {
            key,
            consistency,
            max_staleness_ms,
        } => {
            let ctx = Context::new(cli)?;
            let read = read_opts(*consistency, *max_staleness_ms)?;
            let r = ctx.client.get(key.as_bytes(), read).await?;
            output::get(out, key.as_bytes(), &r);
            Ok(0)
        }
        Command::Del { key } => {
            let ctx = Context::new(cli)?;
            let r = ctx.client.delete(key.as_bytes()).await?;
            output::delete(out, key.as_bytes(), &r);
            Ok(0)
        }
        Command::Cas(args) => {
            let ctx = Context::new(cli)?;
            let expected = if let Some(v) = &args.expect_value {
                Expected::Value(v.clone().into_bytes())
            } else if let Some(n) = args.expect_version {
                Expected::Version(n)
            } else {
                Expected::Absent
            };
            let new = match (&args.new_value, args.delete) {
                (Some(v), false) => NewValue::Put(v.clone().into_bytes()),
                (None, true) => NewValue::Delete,
                _ => {
                    return Err(CtlError::Other(
                        "give either <NEW_VALUE> or --delete".into(),
                    ));
                }
            };
            let r = ctx
                .client
                .compare_and_swap(args.key.as_bytes(), expected, new)
                .await?;
            output::cas(out, args.key.as_bytes(), args.delete, &r);
            Ok(if r.succeeded { 0 } else { EXIT_CAS_FAILED })
        }
        Command::Range {
            prefix,
            limit,
            all,
            continuation,
            consistency,
        } => {
            let ctx = Context::new(cli)?;
            let read = read_opts(*consistency, None)?;
            let mut token = match continuation {
                Some(h) => output::unhex(h).map_err(|e| format!("--continuation: {e}"))?,
                None => Vec::new(),
            };
            let mut kvs = Vec::new();
            loop {
                let page = ctx
                    .client
                    .range(prefix.as_bytes(), limit.unwrap_or(0), token, read)
                    .await?;
                kvs.extend(page.kvs);
                token = page.continuation;
                if !*all || token.is_empty() {
                    output::range(out, prefix.as_bytes(), &kvs, page.header.as_ref(), &token);
                    return Ok(0);
                }
            }
        }
        Command::Members => {
            let ctx = Context::new(cli)?;
            let m = members(&ctx).await?;
            output::members(out, &m);
            Ok(0)
        }
        Command::TransferLeader { id } => {
            let ctx = Context::new(cli)?;
            let r = ctx.client.transfer_leader(*id).await?;
            output::membership(out, &format!("transfer leadership to node {id}"), &r);
            Ok(0)
        }
        Command::AddLearner {
            id,
            peer_addr,
            client_addr,
            site,
        } => {
            let ctx = Context::new(cli)?;
            let r = ctx
                .client
                .add_learner(*id, peer_addr, client_addr, site)
                .await?;
            output::membership(out, &format!("add learner {id}"), &r);
            Ok(0)
        }
        Command::Promote { id } => {
            let ctx = Context::new(cli)?;
            let r = ctx.client.promote(*id).await?;
            output::membership(out, &format!("promote node {id}"), &r);
            Ok(0)
        }
        Command::RemoveNode { id } => {
            let ctx = Context::new(cli)?;
            let r = ctx.client.remove_node(*id).await?;
            output::membership(out, &format!("remove node {id}"), &r);
            Ok(0)
        }
        Command::Lookout(cmd) => crate::screening::lookout(&Context::new(cli)?, cmd, out).await,
        Command::Traveller(cmd) => crate::screening::traveller(&Context::new(cli)?, cmd, out).await,
        Command::Screen(args) => crate::screening::screen(&Context::new(cli)?, args, out).await,
        Command::Manifest(args) => {
            crate::screening::manifest(&Context::new(cli)?, args, cli.timeout.is_none(), out).await
        }
        Command::Ingest(cmd) => crate::screening::ingest(&Context::new(cli)?, cmd, out).await,
        Command::Gen(args) => crate::screening::generate(args, out),
    }
}

pub fn read_opts(
    consistency: Consistency,
    max_staleness_ms: Option<u64>,
) -> Result<ReadOpts, CtlError> {
    if max_staleness_ms.is_some() && consistency != Consistency::Stale {
        return Err(CtlError::Other(
            "--max-staleness-ms needs --consistency stale".into(),
        ));
    }
    Ok(ReadOpts {
        consistency,
        max_staleness: max_staleness_ms.map(Duration::from_millis),
    })
}

/// The client and (if it could be read) the config of one invocation.
pub struct Context {
    pub client: Client,
    pub config: Option<ClusterConfig>,
}

impl Context {
    pub fn new(cli: &Cli) -> Result<Context, CtlError> {
        let config = load_config_for_endpoints(cli)?;
        let endpoints = if cli.endpoints.is_empty() {
            let cfg = config.as_ref().expect("loaded when no endpoints are given");
            cfg.nodes
                .iter()
                .map(|n| n.client_addr.to_string())
                .collect()
        } else {
            cli.endpoints.clone()
        };
        let opts = ClientOptions {
            deadline: Duration::from_millis(cli.timeout.unwrap_or(DEFAULT_TIMEOUT_MS)),
            pin_endpoint: cli.pin,
            ..ClientOptions::default()
        };
        let client = Client::new(endpoints, opts)?;
        Ok(Context { client, config })
    }
}

/// The config, which is required unless `--endpoints` is given; with
/// `--endpoints` it is still read (for sites and peer addresses) if the file
/// exists, and a broken file is reported only if named explicitly.
fn load_config_for_endpoints(cli: &Cli) -> Result<Option<ClusterConfig>, CtlError> {
    let explicit = cli.config.is_some();
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    if cli.endpoints.is_empty() {
        return load_config(&path).map(Some).map_err(|e| {
            CtlError::Other(format!(
                "{e} (give --config PATH or --endpoints host:port,...)"
            ))
        });
    }
    if !explicit && !path.exists() {
        return Ok(None);
    }
    match load_config(&path) {
        Ok(cfg) => Ok(Some(cfg)),
        Err(e) if explicit => Err(CtlError::Other(e)),
        Err(_) => Ok(None),
    }
}

pub fn load_config(path: &Path) -> Result<ClusterConfig, String> {
    ClusterConfig::load(path).map_err(|e| format!("cannot load config {}: {e}", path.display()))
}

/// Every endpoint's status, labelled with the config node it belongs to.
pub async fn status_rows(client: &Client, config: Option<&ClusterConfig>) -> Vec<StatusRow> {
    client
        .status_all()
        .await
        .into_iter()
        .map(|(endpoint, result)| {
            let declared = config.and_then(|c| {
                c.nodes
                    .iter()
                    .find(|n| n.client_addr.to_string() == endpoint)
                    .map(|n| (n.id, n.site.clone()))
            });
            StatusRow {
                endpoint,
                declared,
                result,
            }
        })
        .collect()
}

/// Voters and learners as the leader sees them, with each member's site and
/// role from its own status where reachable, else from the config.
async fn members(ctx: &Context) -> Result<output::Members, CtlError> {
    let leader = ctx.client.leader_status().await?;
    let rows = ctx.client.status_all().await;
    let own_status = |id: u64| {
        rows.iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .find(|s| s.id == id)
            .cloned()
            .or_else(|| (leader.id == id).then(|| leader.clone()))
    };
    let declared = |id: u64| ctx.config.as_ref().and_then(|c| c.node(id)).cloned();
    let mut list = Vec::new();
    for (ids, voter) in [(&leader.voters, true), (&leader.learners, false)] {
        for &id in ids {
            let st = own_status(id);
            let cfg = declared(id);
            list.push(output::Member {
                id,
                voter,
                site: st
                    .as_ref()
                    .map(|s| s.site.clone())
                    .filter(|s| !s.is_empty())
                    .or_else(|| cfg.as_ref().map(|c| c.site.clone())),
                role: st.as_ref().map(|s| output::role_name(s.role).to_string()),
                peer_addr: cfg.as_ref().map(|c| c.peer_addr.to_string()),
                client_addr: st
                    .as_ref()
                    .map(|s| s.client_addr.clone())
                    .filter(|s| !s.is_empty())
                    .or_else(|| cfg.as_ref().map(|c| c.client_addr.to_string())),
            });
        }
    }
    Ok(output::Members {
        leader: leader.id,
        term: leader.term,
        committed_index: leader.committed_index,
        members: list,
    })
}
