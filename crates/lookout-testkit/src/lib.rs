//! Real Lookout clusters for tests, the Jepsen suite and benchmarks.
//!
//! A [`TestCluster`] writes a `cluster.toml` into a temporary directory, starts one real
//! `lookoutd` process per node on its own 127.x.y.z address, and offers the faults the
//! tests need: `kill -9`, SIGSTOP/SIGCONT, clean restart on the same data dir. Dropping
//! it resumes and kills every process it started.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::bail;
use lookout_proto::v1 as pb;
use lookout_proto::v1::admin_client::AdminClient;
use lookout_proto::v1::kv_client::KvClient;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

pub const PEER_PORT: u16 = 7400;
pub const CLIENT_PORT: u16 = 7500;

/// The shape of a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// (id, site, voter) per node.
    pub nodes: Vec<(u64, &'static str, bool)>,
    /// Extra TOML appended under `[raft]`.
    pub raft: Vec<(&'static str, u64)>,
    /// Extra TOML appended under `[limits]`.
    pub limits: Vec<(&'static str, u64)>,
}

impl ClusterSpec {
    /// The default topology: 2 primary, 2 alternate, 1 witness, all voters.
    pub fn five() -> ClusterSpec {
        ClusterSpec {
            nodes: vec![
                (1, "primary", true),
                (2, "primary", true),
                (3, "alternate", true),
                (4, "alternate", true),
                (5, "witness", true),
            ],
            raft: vec![],
            limits: vec![],
        }
    }

    /// One node per site, all voters.
    pub fn three() -> ClusterSpec {
        ClusterSpec {
            nodes: vec![(1, "primary", true), (2, "alternate", true), (3, "witness", true)],
            raft: vec![],
            limits: vec![],
        }
    }

    pub fn with_node(mut self, id: u64, site: &'static str, voter: bool) -> Self {
        self.nodes.push((id, site, voter));
        self
    }

    pub fn raft(mut self, key: &'static str, value: u64) -> Self {
        self.raft.push((key, value));
        self
    }

    pub fn limit(mut self, key: &'static str, value: u64) -> Self {
        self.limits.push((key, value));
        self
    }
}

/// A distinct 127.a.b.0/24-style block per cluster so clusters in parallel tests and
/// processes do not collide.
pub fn address_block() -> (u8, u8) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let seed = (std::process::id().wrapping_mul(7919)).wrapping_add(n.wrapping_mul(104_729));
    (((seed >> 8) % 200 + 20) as u8, (seed % 250 + 1) as u8)
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    bin: PathBuf,
    block: (u8, u8),
    pub ids: Vec<u64>,
    procs: BTreeMap<u64, Child>,
    stopped: Vec<u64>,
}

impl TestCluster {
    pub fn ip(&self, id: u64) -> String {
        format!("127.{}.{}.{}", self.block.0, self.block.1, 10 + id)
    }

    pub fn client_addr(&self, id: u64) -> String {
        format!("{}:{}", self.ip(id), CLIENT_PORT)
    }

    pub fn peer_addr(&self, id: u64) -> String {
        format!("{}:{}", self.ip(id), PEER_PORT)
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}.log"))
    }

    /// Writes the config and starts every declared node.
    pub fn start(spec: &ClusterSpec, bin: &Path) -> anyhow::Result<TestCluster> {
        let dir = tempfile::Builder::new().prefix("lookout-test-").tempdir()?;
        let mut c = TestCluster {
            config_path: dir.path().join("cluster.toml"),
            dir,
            bin: bin.to_path_buf(),
            block: address_block(),
            ids: spec.nodes.iter().map(|n| n.0).collect(),
            procs: BTreeMap::new(),
            stopped: vec![],
        };
        std::fs::write(&c.config_path, c.render(spec))?;
        // Nodes declared as learners are started later by the test that adds them.
        for &(id, _, voter) in &spec.nodes {
            if voter {
                c.start_node(id)?;
            }
        }
        Ok(c)
    }

    fn render(&self, spec: &ClusterSpec) -> String {
        let mut s = String::from(
            "[cluster]\nname = \"lookout-test\"\npreferred_site = \"primary\"\n\n\
             [[sites]]\nname = \"primary\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"alternate\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"witness\"\nkind = \"witness\"\n\n",
        );
        for &(id, site, voter) in &spec.nodes {
            s += &format!(
                "[[nodes]]\nid = {id}\nsite = \"{site}\"\npeer_addr = \"{}\"\nclient_addr = \"{}\"\ndata_dir = \"node{id}\"\nvoter = {voter}\n\n",
                self.peer_addr(id),
                self.client_addr(id)
            );
        }
        s += "[raft]\n";
        for (k, v) in &spec.raft {
            s += &format!("{k} = {v}\n");
        }
        s += "\n[limits]\n";
        for (k, v) in &spec.limits {
            s += &format!("{k} = {v}\n");
        }
        s
    }

    /// Starts (or restarts, on the same data dir) node `id`.
    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        if let Some(mut old) = self.procs.remove(&id) {
            let _ = old.kill();
            let _ = old.wait();
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(id))?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--node")
            .arg(id.to_string())
            .env("LOOKOUT_LOG", std::env::var("LOOKOUT_LOG").unwrap_or_else(|_| "info,openraft=warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.procs.insert(id, child);
        Ok(())
    }

    fn signal(&self, id: u64, sig: i32) -> anyhow::Result<()> {
        let child = self.procs.get(&id).with_context(|| format!("node {id} is not running"))?;
        // SAFETY: plain kill(2) on a child pid we own.
        let rc = unsafe { libc::kill(child.id() as i32, sig) };
        if rc != 0 {
            bail!("kill({}, {sig}) failed: {}", child.id(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, libc::SIGKILL)?;
        if let Some(mut c) = self.procs.remove(&id) {
            let _ = c.wait();
        }
        self.stopped.retain(|s| *s != id);
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, libc::SIGTERM)?;
        if let Some(mut c) = self.procs.remove(&id) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            bail!("node {id} did not exit within 10s of SIGTERM");
        }
        Ok(())
    }

    /// SIGSTOP: the process is frozen mid-flight, sockets open.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.stopped.push(id);
        Ok(())
    }

    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, libc::SIGCONT)?;
        self.stopped.retain(|s| *s != id);
        Ok(())
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.procs.contains_key(&id)
    }

    /// The OS process id of a node this cluster started and has not killed.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs.get(&id).map(|c| c.id())
    }

    /// Ids of started nodes whose process has exited on its own (crashed).
    pub fn exited(&mut self) -> Vec<u64> {
        self.procs.iter_mut().filter_map(|(id, c)| matches!(c.try_wait(), Ok(Some(_))).then_some(*id)).collect()
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn channel(&self, id: u64) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.client_addr(id)))
            .expect("valid uri")
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy()
    }

    pub fn kv(&self, id: u64) -> KvClient<Channel> {
        KvClient::new(self.channel(id))
    }

    pub fn admin(&self, id: u64) -> AdminClient<Channel> {
        AdminClient::new(self.channel(id))
    }

    pub async fn status(&self, id: u64) -> Result<pb::NodeStatus, tonic::Status> {
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(Duration::from_secs(1));
        self.admin(id).status(req).await.map(|r| r.into_inner())
    }

    /// Waits until some running node reports itself leader and every running, unpaused
    /// node agrees on it. Returns the leader's id.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut leaders = vec![];
            let mut answered = 0;
            let live: Vec<u64> = self.procs.keys().copied().filter(|id| !self.stopped.contains(id)).collect();
            for &id in &live {
                match self.status(id).await {
                    Ok(s) => {
                        answered += 1;
                        leaders.push(s.leader);
                        if s.role == pb::Role::Leader as i32 && s.leader == id {
                            leaders.push(id);
                        }
                    }
                    Err(e) => last = format!("node {id}: {}", e.message()),
                }
            }
            if answered == live.len() && !leaders.is_empty() && leaders.iter().all(|l| *l == leaders[0] && *l != 0) {
                return Ok(leaders[0]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("no agreed leader within {timeout:?} (last error: {last})")
    }

    /// Runs `attempt(node)` until it succeeds or `timeout` passes: on an error carrying
    /// the `lookout-leader-id` hint it goes to that node next, otherwise to the next running
    /// node. A write retried this way must reuse its request id.
    pub async fn on_leader<T, F, Fut>(&self, timeout: Duration, mut attempt: F) -> Option<T>
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + timeout;
        let mut target = self.ids[0];
        let mut i = 0usize;
        while Instant::now() < deadline {
            if self.is_running(target) {
                match attempt(target).await {
                    Ok(r) => return Some(r),
                    Err(s) => {
                        let hint = s.metadata().get("lookout-leader-id").and_then(|v| v.to_str().ok()?.parse().ok());
                        if let Some(leader) = hint {
                            target = leader;
                            continue;
                        }
                    }
                }
            }
            i += 1;
            target = self.ids[i % self.ids.len()];
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits until node `id` answers status on its client address.
    pub async fn wait_serving(&self, id: u64, timeout: Duration) -> anyhow::Result<pb::NodeStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.status(id).await {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() > deadline => bail!("node {id} not serving within {timeout:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until node `id` has purged its log past `index` (snapshots and purges run in
    /// the background after the writes that trigger them). Returns its status.
    pub async fn wait_purged(&self, id: u64, index: u64, timeout: Duration) -> anyhow::Result<pb::NodeStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.status(id).await {
                Ok(s) if s.purged_index > index => return Ok(s),
                other if Instant::now() > deadline => {
                    bail!("node {id} did not purge its log past {index} within {timeout:?}: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until every listed node has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for &id in ids {
            loop {
                match self.status(id).await {
                    Ok(s) if s.applied_index >= index => break,
                    other if Instant::now() > deadline => {
                        bail!("node {id} did not apply index {index} within {timeout:?}: {other:?}")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: show what each node said last.
            for &id in &self.ids {
                let log = self.log(id);
                let tail: Vec<&str> = log.lines().rev().take(25).collect();
                eprintln!("---- node {id} log (last {} lines) ----", tail.len());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        for (_, child) in self.procs.iter_mut() {
            // SAFETY: plain kill(2) on child pids we own; SIGCONT first so a stopped
            // process can die.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `lookoutd` built alongside the running test executable: test executables live in
/// `target/<profile>/deps/`, binaries one level up. Missing is a failure, not a skip:
/// `cargo test -p <one crate>` does not build another package's binaries.
pub fn built_lookoutd() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    let p = dir.join("lookoutd");
    assert!(
        p.is_file(),
        "{} is missing: these tests run the real lookoutd; build it first with \
         `cargo build --workspace` (add --release for a release test run) or run `cargo test --workspace`",
        p.display()
    );
    p
}

/// A fresh 16-byte request id.
pub fn request_id(n: u64) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8..].copy_from_slice(&(std::process::id() as u64 ^ 0x5eed_0000_0000_0000).to_le_bytes());
    id
}
