//! `lookoutctl cluster up`: start one `lookoutd` per node of the config, wait
//! until they have elected a leader that every node knows, show where to
//! connect, do a demo write and read, then supervise the nodes until Ctrl-C.
//!
//! Children run in their own process group, so a terminal's Ctrl-C reaches only
//! lookoutctl, which then stops them in order: SIGTERM, up to 5 s to exit, then
//! SIGKILL. On Linux each child also gets SIGTERM if lookoutctl itself dies
//! (`PR_SET_PDEATHSIG`); that is tied to the spawning thread, which is why
//! lookoutctl runs a single-threaded runtime on the main thread.

use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::process::Stdio;
use std::time::Duration;

use lookout_client::Client;
use lookout_client::ClientError;
use lookout_client::ClientOptions;
use lookout_client::NodeStatus;
use lookout_client::ReadOpts;
use lookout_client::Role;
use lookout_config::ClusterConfig;
use tokio::process::Child;
use tokio::signal::unix::Signal;
use tokio::signal::unix::SignalKind;
use tokio::signal::unix::signal;
use tokio::time::Instant;

use crate::CtlError;
use crate::EXIT_ERROR;
use crate::commands::DEFAULT_CONFIG;
use crate::commands::load_config;
use crate::output;
use crate::output::Output;
use crate::output::Progress;

/// How long stopping waits for a node after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of a node's log shown when it dies.
const TAIL_LINES: usize = 20;
const DEMO_KEY: &str = "lookout/hello";

/// One supervised `lookoutd`.
struct Proc {
    id: u64,
    site: String,
    client_addr: String,
    log: PathBuf,
    child: Child,
    /// Set once it has exited (and been reported).
    exited: Option<ExitStatus>,
}

struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn install() -> Result<Signals, CtlError> {
        let err =
            |e: std::io::Error| CtlError::Other(format!("cannot install signal handler: {e}"));
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    /// Resolves on SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

pub async fn up(
    path: &Path,
    explicit_config: bool,
    bin: Option<PathBuf>,
    ready_timeout: Duration,
    out: Output,
) -> Result<u8, CtlError> {
    // The children get an absolute path: they must resolve data dirs exactly as
    // we do, whatever their working directory.
    let abs =
        std::path::absolute(path).map_err(|e| format!("config path {}: {e}", path.display()))?;
    let abs = abs.canonicalize().unwrap_or(abs);
    let cfg = load_config(&abs)?;
    if cfg.nodes.is_empty() {
        return Err(CtlError::Other(format!(
            "{} declares no nodes",
            abs.display()
        )));
    }
    let bin = find_lookoutd(bin)?;
    preflight(&cfg).await?;
    let mut signals = Signals::install()?;

    output::note(&format!(
        "starting {} nodes of cluster {:?} from {} with {}",
        cfg.nodes.len(),
        cfg.cluster.name,
        abs.display(),
        bin.display()
    ));
    let mut procs: Vec<Proc> = Vec::new();
    for node in &cfg.nodes {
        match spawn_node(&bin, &abs, node) {
            Ok(p) => procs.push(p),
            Err(e) => {
                stop_all(&mut procs, out).await;
                return Err(CtlError::Other(e));
            }
        }
    }

    let endpoints: Vec<String> = procs.iter().map(|p| p.client_addr.clone()).collect();
    let probe_opts = ClientOptions {
        deadline: Duration::from_millis(1000),
        connect_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let probe = Client::new(endpoints.clone(), probe_opts)?;

    // ---- wait until every node answers and knows the same leader
    let started = Instant::now();
    let mut progress = Progress::new();
    let (leader, term, statuses) = loop {
        let rows = tokio::select! {
            _ = signals.recv() => {
                progress.finish();
                output::note("interrupted; stopping the nodes");
                stop_all(&mut procs, out).await;
                return Ok(0);
            }
            rows = async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                probe.status_all().await
            } => rows,
        };
        if reap(&mut procs, out, &mut progress) {
            output::note("a node died while the cluster was starting; stopping the others");
            stop_all(&mut procs, out).await;
            return Ok(EXIT_ERROR);
        }
        let readiness = Readiness::of(&rows);
        let elapsed = started.elapsed();
        progress.update(&format!(
            "[{:>5.1}s] waiting for the cluster: {}",
            elapsed.as_secs_f64(),
            readiness.describe(rows.len())
        ));
        if let Readiness::Ready { leader, term } = readiness {
            progress.finish();
            let statuses: Vec<NodeStatus> = rows.into_iter().filter_map(|(_, r)| r.ok()).collect();
            break (leader, term, statuses);
        }
        if elapsed >= ready_timeout {
            progress.finish();
            output::note(&format!(
                "the cluster is not ready after {} s; node states:",
                ready_timeout.as_secs()
            ));
            for (p, (_, r)) in procs.iter().zip(&rows) {
                let state = match r {
                    Ok(s) => format!(
                        "{} in term {}, leader {}",
                        output::role_name(s.role),
                        s.term,
                        if s.leader == 0 {
                            "unknown".to_string()
                        } else {
                            s.leader.to_string()
                        }
                    ),
                    Err(e) => e.to_string(),
                };
                output::note(&format!(
                    "  node {}: {state}; last lines of {}:",
                    p.id,
                    p.log.display()
                ));
                for line in tail_lines(&p.log, 5) {
                    output::note(&format!("    | {line}"));
                }
            }
            stop_all(&mut procs, out).await;
            return Ok(EXIT_ERROR);
        }
    };

    // ---- show it, and show it working
    let client = Client::new(endpoints, ClientOptions::default())?;
    let put = client.put(DEMO_KEY, "world").await;
    let get = match &put {
        Ok(_) => Some(client.get(DEMO_KEY, ReadOpts::linearizable()).await),
        Err(_) => None,
    };
    let default_path = !explicit_config || path == Path::new(DEFAULT_CONFIG);
    let report = output::UpReport {
        cluster: cfg.cluster.name.clone(),
        config: abs.display().to_string(),
        config_flag: if default_path {
            String::new()
        } else {
            format!(" --config {}", path.display())
        },
        leader,
        term,
        nodes: procs
            .iter()
            .map(|p| output::UpNode {
                id: p.id,
                site: p.site.clone(),
                role: statuses
                    .iter()
                    .find(|s| s.id == p.id)
                    .map(|s| output::role_name(s.role).to_string())
                    .unwrap_or_else(|| "?".into()),
                client_addr: p.client_addr.clone(),
                log: p.log.display().to_string(),
            })
            .collect(),
        demo: output::Demo {
            key: DEMO_KEY.to_string(),
            put,
            get,
        },
    };
    output::cluster_ready(out, &report);

    // ---- supervise until told to stop
    let mut progress = Progress::new();
    loop {
        tokio::select! {
            _ = signals.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                reap(&mut procs, out, &mut progress);
                if procs.iter().all(|p| p.exited.is_some()) {
                    output::note("every node has exited; nothing left to supervise");
                    return Ok(EXIT_ERROR);
                }
            }
        }
    }
    output::note_after_signal("stopping the cluster");
    stop_all(&mut procs, out).await;
    output::note("stopped; data is kept for the next `lookoutctl cluster up`");
    Ok(0)
}

/// What the status probe says about the cluster.
#[derive(Debug, PartialEq)]
enum Readiness {
    /// `up` nodes answer; no leader known.
    NoLeader { up: usize },
    /// A leader exists; `agree` of the `up` answering nodes know it.
    Electing {
        up: usize,
        leader: u64,
        term: u64,
        agree: usize,
    },
    /// Every node answers and names this leader.
    Ready { leader: u64, term: u64 },
}

impl Readiness {
    fn of(rows: &[(String, Result<NodeStatus, ClientError>)]) -> Readiness {
        let ok: Vec<&NodeStatus> = rows.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let up = ok.len();
        let Some(l) = ok
            .iter()
            .filter(|s| s.role == Role::Leader as i32)
            .max_by_key(|s| s.term)
        else {
            return Readiness::NoLeader { up };
        };
        let agree = ok.iter().filter(|s| s.leader == l.id).count();
        if up == rows.len() && agree == up {
            Readiness::Ready {
                leader: l.id,
                term: l.term,
            }
        } else {
            Readiness::Electing {
                up,
                leader: l.id,
                term: l.term,
                agree,
            }
        }
    }

    fn describe(&self, total: usize) -> String {
        match self {
            Readiness::NoLeader { up } => {
                format!("{up}/{total} nodes answering, no leader yet")
            }
            Readiness::Electing {
                up,
                leader,
                term,
                agree,
            } => format!(
                "{up}/{total} nodes answering, leader node {leader} (term {term}) known to {agree}"
            ),
            Readiness::Ready { leader, term } => {
                format!("{total}/{total} nodes answering, leader node {leader} (term {term})")
            }
        }
    }
}

/// The `lookoutd` to run: `--bin`, else next to this executable, else on PATH.
fn find_lookoutd(explicit: Option<PathBuf>) -> Result<PathBuf, CtlError> {
    if let Some(p) = explicit {
        if p.components().count() == 1
            && let Some(found) = on_path(p.as_os_str())
        {
            return Ok(found);
        }
        if p.is_file() {
            return Ok(std::path::absolute(&p).unwrap_or(p));
        }
        return Err(CtlError::Other(format!(
            "--bin {}: no such file",
            p.display()
        )));
    }
    let exe = std::env::current_exe().ok();
    if let Some(candidate) = exe.as_ref().map(|e| e.with_file_name("lookoutd"))
        && candidate.is_file()
    {
        return Ok(candidate);
    }
    if let Some(found) = on_path("lookoutd".as_ref()) {
        return Ok(found);
    }
    Err(CtlError::Other(format!(
        "cannot find lookoutd {}or on PATH; build it (cargo build -p lookout-server) or pass --bin PATH",
        exe.and_then(|e| e.parent().map(|d| format!("in {} ", d.display())))
            .unwrap_or_default()
    )))
}

fn on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| {
            c.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Refuses to start if something already listens on a node's addresses
/// (most likely a cluster that is already up).
async fn preflight(cfg: &ClusterConfig) -> Result<(), CtlError> {
    let mut busy = Vec::new();
    for n in &cfg.nodes {
        for (what, addr) in [("client", n.client_addr), ("peer", n.peer_addr)] {
            let probe = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), probe).await {
                busy.push(format!("node {} {what} address {addr}", n.id));
            }
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    Err(CtlError::Other(format!(
        "already in use: {} (is the cluster already up? try `lookoutctl status`)",
        busy.join(", ")
    )))
}

fn spawn_node(
    bin: &Path,
    config: &Path,
    node: &lookout_config::NodeConfig,
) -> Result<Proc, String> {
    std::fs::create_dir_all(&node.data_dir).map_err(|e| {
        format!(
            "node {}: cannot create {}: {e}",
            node.id,
            node.data_dir.display()
        )
    })?;
    let log = node.data_dir.join("lookoutd.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("node {}: cannot open {}: {e}", node.id, log.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let _ = writeln!(
        file,
        "---- lookoutctl cluster up: starting node {} (unix time {now}) ----",
        node.id
    );
    let stdout = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;

    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--config")
        .arg(config)
        .arg("--node")
        .arg(node.id.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(file))
        // Own process group: a terminal Ctrl-C goes to us, and we stop the
        // children in order.
        .process_group(0)
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("node {}: cannot start {}: {e}", node.id, bin.display()))?;
    Ok(Proc {
        id: node.id,
        site: node.site.clone(),
        client_addr: node.client_addr.to_string(),
        log,
        child,
        exited: None,
    })
}

/// Notices and reports children that exited; true if any did just now.
fn reap(procs: &mut [Proc], out: Output, progress: &mut Progress) -> bool {
    let mut any = false;
    for p in procs.iter_mut().filter(|p| p.exited.is_none()) {
        let status = match p.child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => continue,
            Err(e) => {
                output::warn(&format!("node {}: cannot check process: {e}", p.id));
                continue;
            }
        };
        progress.finish();
        p.exited = Some(status);
        any = true;
        let tail = tail_lines(&p.log, TAIL_LINES);
        output::node_died(
            out,
            p.id,
            &describe(status),
            &p.log.display().to_string(),
            &tail,
        );
    }
    any
}

/// SIGTERM to every running child, up to [`STOP_GRACE`] for all to exit, then
/// SIGKILL for the rest.
async fn stop_all(procs: &mut [Proc], out: Output) {
    for p in procs.iter().filter(|p| p.exited.is_none()) {
        if let Some(pid) = p.child.id() {
            // SAFETY: kill(2) with a pid we spawned and have not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for p in procs.iter_mut().filter(|p| p.exited.is_none()) {
        let how = match tokio::time::timeout_at(deadline, p.child.wait()).await {
            Ok(Ok(status)) => describe(status),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = p.child.start_kill();
                match p.child.wait().await {
                    Ok(status) => format!(
                        "{}; killed after {} s",
                        describe(status),
                        STOP_GRACE.as_secs()
                    ),
                    Err(e) => format!("kill failed: {e}"),
                }
            }
        };
        if let Ok(Some(status)) = p.child.try_wait() {
            p.exited = Some(status);
        }
        output::node_stopped(out, p.id, &how);
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The last `n` lines of a file (reads at most its last 64 KiB).
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    const MAX: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return vec![format!("(cannot open {})", path.display())];
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(MAX);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably a partial line
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: u64, role: Role, term: u64, leader: u64) -> Result<NodeStatus, ClientError> {
        Ok(NodeStatus {
            id,
            role: role as i32,
            term,
            leader,
            ..Default::default()
        })
    }

    fn down() -> Result<NodeStatus, ClientError> {
        Err(ClientError::Config("down".into()))
    }

    fn rows(
        v: Vec<Result<NodeStatus, ClientError>>,
    ) -> Vec<(String, Result<NodeStatus, ClientError>)> {
        v.into_iter()
            .enumerate()
            .map(|(i, r)| (format!("n{i}:1"), r))
            .collect()
    }

    #[test]
    fn readiness() {
        let r = rows(vec![
            st(1, Role::Follower, 1, 0),
            down(),
            st(3, Role::Candidate, 2, 0),
        ]);
        assert_eq!(Readiness::of(&r), Readiness::NoLeader { up: 2 });
        let r = rows(vec![
            st(1, Role::Follower, 2, 2),
            st(2, Role::Leader, 2, 2),
            st(3, Role::Follower, 1, 0),
        ]);
        assert_eq!(
            Readiness::of(&r),
            Readiness::Electing {
                up: 3,
                leader: 2,
                term: 2,
                agree: 2
            }
        );
        let r = rows(vec![
            st(1, Role::Follower, 2, 2),
            st(2, Role::Leader, 2, 2),
            down(),
        ]);
        assert!(matches!(
            Readiness::of(&r),
            Readiness::Electing { up: 2, .. }
        ));
        // A deposed leader in an older term does not count.
        let r = rows(vec![
            st(1, Role::Leader, 1, 1),
            st(2, Role::Leader, 3, 2),
            st(3, Role::Follower, 3, 2),
        ]);
        assert!(matches!(
            Readiness::of(&r),
            Readiness::Electing {
                leader: 2,
                agree: 2,
                ..
            }
        ));
        let r = rows(vec![
            st(1, Role::Follower, 3, 2),
            st(2, Role::Leader, 3, 2),
            st(3, Role::Learner, 3, 2),
        ]);
        assert_eq!(Readiness::of(&r), Readiness::Ready { leader: 2, term: 3 });
        assert_eq!(
            Readiness::Ready { leader: 2, term: 3 }.describe(3),
            "3/3 nodes answering, leader node 2 (term 3)"
        );
    }

    #[test]
    fn tail_reads_last_lines() {
        let dir = std::env::temp_dir().join(format!("lookoutctl-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&f, text).unwrap();
        let t = tail_lines(&f, 3);
        assert_eq!(t, vec!["line 28", "line 29", "line 30"]);
        assert_eq!(tail_lines(&f, 100).len(), 30);
        assert!(tail_lines(&dir.join("missing"), 3)[0].starts_with("(cannot open"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn describes_exit() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit code 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit code 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
