//! Real `lookoutd` processes for a test run: a generated `cluster.toml`, one process per
//! node (optionally wrapped, e.g. by `fiu-run` or `ip netns exec`), per-node environment
//! (`LOOKOUT_PEER_ROUTES` for the proxy mode), and the process faults: `kill -9`,
//! SIGSTOP/SIGCONT, restart on the same data dir.
//!
//! The harness keeps its own small cluster controller rather than `lookout-testkit`'s
//! because it needs per-node environment and command wrappers, which the testkit (shared
//! with other crates' tests) does not offer.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_proto::v1 as pb;
use tonic::transport::{Channel, Endpoint};

pub const PEER_PORT: u16 = 7400;
pub const CLIENT_PORT: u16 = 7500;
/// Proxy listener for link `from → to`: `ip(from):PROXY_PORT_BASE+to`.
pub const PROXY_PORT_BASE: u16 = 7600;

/// One node of the topology.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: u64,
    pub site: &'static str,
    /// The address the node binds and advertises (its own loopback or netns address).
    pub ip: String,
}

impl NodeInfo {
    pub fn client_addr(&self) -> String {
        format!("{}:{CLIENT_PORT}", self.ip)
    }
    pub fn peer_addr(&self) -> String {
        format!("{}:{PEER_PORT}", self.ip)
    }
}

/// The shape of the cluster: 3 nodes (one per site) or 5 (2 primary, 2 alternate, 1 witness).
#[derive(Clone, Debug)]
pub struct Layout {
    pub nodes: Vec<NodeInfo>,
}

/// A 127.a.b.0/24 block that other runs and tests are unlikely to use at the same time.
pub fn loopback_block() -> (u8, u8) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(nanos);
    (((seed >> 8) % 200 + 30) as u8, (seed % 250 + 1) as u8)
}

pub fn sites_for(n: usize) -> anyhow::Result<Vec<&'static str>> {
    Ok(match n {
        3 => vec!["primary", "alternate", "witness"],
        5 => vec!["primary", "primary", "alternate", "alternate", "witness"],
        other => bail!("--nodes must be 3 or 5, not {other}"),
    })
}

impl Layout {
    /// Nodes on 127.a.b.(10+id).
    pub fn loopback(n: usize, block: (u8, u8)) -> anyhow::Result<Layout> {
        let sites = sites_for(n)?;
        Ok(Layout {
            nodes: sites
                .into_iter()
                .enumerate()
                .map(|(i, site)| {
                    let id = i as u64 + 1;
                    NodeInfo { id, site, ip: format!("127.{}.{}.{}", block.0, block.1, 10 + id) }
                })
                .collect(),
        })
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: u64) -> &NodeInfo {
        self.nodes.iter().find(|n| n.id == id).expect("node id in layout")
    }

    /// Node ids by site, sites in declaration order.
    pub fn sites(&self) -> Vec<(&'static str, Vec<u64>)> {
        let mut out: Vec<(&'static str, Vec<u64>)> = Vec::new();
        for n in &self.nodes {
            match out.iter_mut().find(|(s, _)| *s == n.site) {
                Some((_, v)) => v.push(n.id),
                None => out.push((n.site, vec![n.id])),
            }
        }
        out
    }

    pub fn render_toml(&self) -> String {
        let mut s = String::from(
            "[cluster]\nname = \"lookout-jepsen\"\npreferred_site = \"primary\"\n\n\
             [[sites]]\nname = \"primary\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"alternate\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"witness\"\nkind = \"witness\"\n\n",
        );
        for n in &self.nodes {
            s += &format!(
                "[[nodes]]\nid = {}\nsite = \"{}\"\npeer_addr = \"{}\"\nclient_addr = \"{}\"\ndata_dir = \"node{}/data\"\nvoter = true\n\n",
                n.id,
                n.site,
                n.peer_addr(),
                n.client_addr(),
                n.id
            );
        }
        s
    }
}

/// The running processes of one cluster. Dropping it resumes and kills every process it
/// started.
pub struct Cluster {
    pub layout: Layout,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    bin: PathBuf,
    procs: BTreeMap<u64, Child>,
    paused: BTreeSet<u64>,
    env: BTreeMap<u64, Vec<(String, String)>>,
    wrap: BTreeMap<u64, Vec<String>>,
    /// How many times each node was started (1 = never restarted).
    pub starts: BTreeMap<u64, u32>,
    /// Nodes that exited by themselves (not killed by the harness): (id, exit status).
    pub exits: Vec<(u64, String)>,
    /// Per-node loop-mounted ext4 images (power-loss mode).
    disks: BTreeMap<u64, LoopDisk>,
}

/// A node's data on its own ext4 filesystem in a loop-mounted image on /dev/shm, so that a
/// "power loss" can drop exactly what never reached the (virtual) disk.
struct LoopDisk {
    img: PathBuf,
    dev: String,
    mnt: PathBuf,
}

fn sh(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Why power-loss mode cannot run here, if it cannot.
pub fn power_loss_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("power-loss nemesis needs root (loop devices, mount); skipped".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("power-loss nemesis needs loop devices (/dev/loop-control); skipped".into());
    }
    for t in ["losetup", "mkfs.ext4", "mount", "umount"] {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        if !found {
            return Some(format!("power-loss nemesis needs `{t}`; skipped"));
        }
    }
    None
}

impl Cluster {
    /// Writes `dir/cluster.toml`; starts nothing.
    pub fn new(layout: Layout, dir: &Path, bin: &Path) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config_path = dir.join("cluster.toml");
        std::fs::write(&config_path, layout.render_toml())?;
        let bin = std::fs::canonicalize(bin).with_context(|| format!("lookoutd binary {}", bin.display()))?;
        Ok(Cluster {
            layout,
            dir: dir.to_path_buf(),
            config_path,
            bin,
            procs: BTreeMap::new(),
            paused: BTreeSet::new(),
            env: BTreeMap::new(),
            wrap: BTreeMap::new(),
            starts: BTreeMap::new(),
            exits: Vec::new(),
            disks: BTreeMap::new(),
        })
    }

    /// Extra environment for node `id`'s process (applies to later starts).
    pub fn set_env(&mut self, id: u64, key: &str, value: &str) {
        let e = self.env.entry(id).or_default();
        e.retain(|(k, _)| k != key);
        e.push((key.to_string(), value.to_string()));
    }

    /// Run node `id` as `prefix... lookoutd --config .. --node id` (the prefix must exec
    /// the program so that the child's pid is lookoutd's: `fiu-run`, `ip netns exec`).
    pub fn set_wrapper(&mut self, id: u64, prefix: Vec<String>) {
        self.wrap.insert(id, prefix);
    }

    pub fn ids(&self) -> Vec<u64> {
        self.layout.ids()
    }

    /// Node `id`'s directory; its data lives in `data/` below it (the mount point of its
    /// loop disk in power-loss mode).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node{id}"))
    }

    /// Puts every node's data on its own ext4 image (`size_mb`, on /dev/shm), loop-mounted
    /// at its node directory. Call before starting the nodes.
    pub fn use_loop_disks(&mut self, size_mb: u64) -> anyhow::Result<()> {
        if let Some(why) = power_loss_unavailable() {
            bail!(why);
        }
        let tag = format!("{}-{}", std::process::id(), self.dir.display().to_string().len());
        for id in self.ids() {
            let img = PathBuf::from(format!("/dev/shm/lookout-jepsen-{tag}-{}-n{id}.img", loopback_block().1));
            let mnt = self.data_dir(id);
            std::fs::create_dir_all(&mnt)?;
            let f = std::fs::File::create(&img)?;
            f.set_len(size_mb << 20)?;
            drop(f);
            let imgs = img.display().to_string();
            sh(&["mkfs.ext4", "-q", "-F", &imgs])?;
            let dev = sh(&["losetup", "-f", "--show", &imgs])?;
            let disk = LoopDisk { img, dev: dev.clone(), mnt: mnt.clone() };
            if let Err(e) = sh(&["mount", &dev, &mnt.display().to_string()]) {
                let _ = sh(&["losetup", "-d", &dev]);
                let _ = std::fs::remove_file(&disk.img);
                return Err(e);
            }
            self.disks.insert(id, disk);
        }
        Ok(())
    }

    pub fn has_loop_disks(&self) -> bool {
        !self.disks.is_empty()
    }

    /// Simultaneous power loss of `ids`: freeze them (SIGSTOP), take each disk image as it
    /// is (what the kernel has written to the virtual disk; dirty page-cache data that was
    /// never fsynced/written back is not in it), kill -9, and remount the taken image. The
    /// nodes stay down until restarted.
    pub fn power_loss(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        if self.disks.is_empty() {
            bail!("power loss needs loop disks (nemesis powerloss)");
        }
        for &id in ids {
            if self.is_running(id) {
                let _ = self.pause(id);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        for &id in ids {
            let d = &self.disks[&id];
            let crash = d.img.with_extension("crash");
            std::fs::copy(&d.img, &crash).with_context(|| format!("copying {}", d.img.display()))?;
        }
        for &id in ids {
            self.kill(id);
            let d = self.disks.get_mut(&id).expect("disk");
            let mnt = d.mnt.display().to_string();
            sh(&["umount", "-l", &mnt])?;
            let _ = sh(&["losetup", "-d", &d.dev]);
            let crash = d.img.with_extension("crash");
            std::fs::rename(&crash, &d.img)?;
            let imgs = d.img.display().to_string();
            d.dev = sh(&["losetup", "-f", "--show", &imgs])?;
            sh(&["mount", &d.dev, &mnt])?;
        }
        Ok(())
    }

    fn teardown_disks(&mut self) {
        for (_, d) in std::mem::take(&mut self.disks) {
            let _ = sh(&["umount", "-l", &d.mnt.display().to_string()]);
            let _ = sh(&["losetup", "-d", &d.dev]);
            let _ = std::fs::remove_file(&d.img);
            let _ = std::fs::remove_file(d.img.with_extension("crash"));
        }
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node{id}.log"))
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for id in self.ids() {
            self.start_node(id)?;
        }
        Ok(())
    }

    /// Starts (or restarts, on the same data dir) node `id`.
    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        if let Some(mut old) = self.procs.remove(&id) {
            signal_pid(old.id(), libc::SIGCONT);
            let _ = old.kill();
            let _ = old.wait();
        }
        self.paused.remove(&id);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(id))?;
        let wrap = self.wrap.get(&id).cloned().unwrap_or_default();
        let mut cmd = match wrap.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("--config")
            .arg(&self.config_path)
            .arg("--node")
            .arg(id.to_string())
            .env("LOOKOUT_LOG", std::env::var("LOOKOUT_LOG").unwrap_or_else(|_| "info,openraft=warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Own process group: a Ctrl-C at the terminal reaches the harness only, which
            // then cleans up (SIGCONT + kill) itself.
            .process_group(0);
        for (k, v) in self.env.get(&id).into_iter().flatten() {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting node {id}: {}", self.bin.display()))?;
        *self.starts.entry(id).or_default() += 1;
        self.procs.insert(id, child);
        Ok(())
    }

    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs.get(&id).map(|c| c.id())
    }

    fn signal(&self, id: u64, sig: i32) -> anyhow::Result<()> {
        let child = self.procs.get(&id).with_context(|| format!("node {id} is not running"))?;
        if !signal_pid(child.id(), sig) {
            bail!("kill({}, {sig}) failed: {}", child.id(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// `kill -9` (no-op if not running).
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs.remove(&id) {
            signal_pid(c.id(), libc::SIGKILL);
            signal_pid(c.id(), libc::SIGCONT);
            let _ = c.wait();
        }
        self.paused.remove(&id);
    }

    /// SIGSTOP: frozen mid-flight, sockets open.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.paused.insert(id);
        Ok(())
    }

    pub fn resume(&mut self, id: u64) {
        if self.procs.contains_key(&id) {
            let _ = self.signal(id, libc::SIGCONT);
        }
        self.paused.remove(&id);
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.procs.contains_key(&id)
    }

    pub fn is_paused(&self, id: u64) -> bool {
        self.paused.contains(&id)
    }

    /// Running and not paused.
    pub fn live(&self) -> Vec<u64> {
        self.procs.keys().copied().filter(|id| !self.paused.contains(id)).collect()
    }

    /// Reaps nodes that exited by themselves; returns (id, exit status).
    pub fn reap_exited(&mut self) -> Vec<(u64, String)> {
        let mut out = vec![];
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            let exited = match self.procs.get_mut(&id).map(|c| c.try_wait()) {
                Some(Ok(Some(st))) => Some(st.to_string()),
                _ => None,
            };
            if let Some(st) = exited {
                self.procs.remove(&id);
                self.paused.remove(&id);
                self.exits.push((id, st.clone()));
                out.push((id, st));
            }
        }
        out
    }

    /// SIGCONT every paused node and start every node that is not running.
    pub fn heal_processes(&mut self) -> anyhow::Result<Vec<u64>> {
        for id in self.paused.clone() {
            self.resume(id);
        }
        self.reap_exited();
        let mut restarted = vec![];
        for id in self.ids() {
            if !self.is_running(id) {
                self.start_node(id)?;
                restarted.push(id);
            }
        }
        Ok(restarted)
    }

    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let v: Vec<&str> = log.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    /// Stop everything now (SIGCONT first so stopped processes can die).
    pub fn shutdown(&mut self) {
        for (_, child) in self.procs.iter_mut() {
            signal_pid(child.id(), libc::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
        self.procs.clear();
        self.paused.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
        self.teardown_disks();
    }
}

fn signal_pid(pid: u32, sig: i32) -> bool {
    // SAFETY: plain kill(2) on a child pid we own.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// gRPC channels to every node's client address, shared by all clients.
#[derive(Clone)]
pub struct Channels {
    pub ids: Vec<u64>,
    chans: BTreeMap<u64, Channel>,
}

impl Channels {
    pub fn new(layout: &Layout) -> Channels {
        let chans = layout
            .nodes
            .iter()
            .map(|n| {
                let ch = Endpoint::from_shared(format!("http://{}", n.client_addr()))
                    .expect("valid uri")
                    .connect_timeout(Duration::from_millis(300))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(1))
                    .keep_alive_timeout(Duration::from_secs(1))
                    .connect_lazy();
                (n.id, ch)
            })
            .collect();
        Channels { ids: layout.ids(), chans }
    }

    pub fn channel(&self, id: u64) -> Channel {
        self.chans[&id].clone()
    }

    pub async fn status(&self, id: u64, timeout: Duration) -> Result<pb::NodeStatus, tonic::Status> {
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(timeout);
        let mut client = pb::admin_client::AdminClient::new(self.channel(id));
        let fut = client.status(req);
        match tokio::time::timeout(timeout + Duration::from_millis(200), fut).await {
            Ok(r) => r.map(|r| r.into_inner()),
            Err(_) => Err(tonic::Status::deadline_exceeded("status: client timeout")),
        }
    }

    /// Every key-value pair node `id` holds, read STALE (from its own state, however it
    /// got there), page by page: for comparing replicas that report different digests.
    pub async fn dump_kv(&self, id: u64, timeout: Duration) -> Result<Vec<pb::KeyValue>, tonic::Status> {
        let mut client = pb::kv_client::KvClient::new(self.channel(id));
        let mut out = Vec::new();
        let mut continuation = Vec::new();
        loop {
            let mut req = tonic::Request::new(pb::RangeRequest {
                read: Some(pb::ReadOptions { consistency: pb::Consistency::Stale as i32, max_staleness_ms: 0 }),
                prefix: vec![],
                limit: 10_000,
                continuation,
            });
            req.set_timeout(timeout);
            let page = client.range(req).await?.into_inner();
            out.extend(page.kvs);
            if page.continuation.is_empty() {
                return Ok(out);
            }
            continuation = page.continuation;
        }
    }

    /// Statuses of every node that answers, concurrently.
    pub async fn statuses(&self, timeout: Duration) -> BTreeMap<u64, pb::NodeStatus> {
        let futs = self.ids.iter().map(|&id| async move { (id, self.status(id, timeout).await) });
        futures_join_all(futs).await.into_iter().filter_map(|(id, r)| r.ok().map(|s| (id, s))).collect()
    }

    /// The node that claims leadership with the highest term, if any.
    pub async fn current_leader(&self) -> Option<u64> {
        let st = self.statuses(Duration::from_millis(400)).await;
        st.values().filter(|s| s.role == pb::Role::Leader as i32).max_by_key(|s| s.term).map(|s| s.id)
    }

    /// Waits until a leader is acknowledged by every node in `ids` (all must answer).
    pub async fn wait_leader(&self, ids: &[u64], timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let st = self.statuses(Duration::from_millis(500)).await;
            let answered: Vec<&pb::NodeStatus> = ids.iter().filter_map(|id| st.get(id)).collect();
            if answered.len() == ids.len() {
                let l = answered[0].leader;
                if l != 0
                    && answered.iter().all(|s| s.leader == l)
                    && st.get(&l).is_some_and(|s| s.role == pb::Role::Leader as i32)
                {
                    return Ok(l);
                }
                last = format!("leaders seen: {:?}", answered.iter().map(|s| (s.id, s.leader)).collect::<Vec<_>>());
            } else {
                last = format!("{} of {} nodes answered status", answered.len(), ids.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no agreed leader within {timeout:?}: {last}")
    }
}

/// `join_all` without the `futures` crate: the futures run concurrently on this task.
pub async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}
