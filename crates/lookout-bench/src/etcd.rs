//! A real etcd cluster for side-by-side runs: Debian's `etcd` binary (package
//! `etcd-server`, 3.4.23), one process per member on its own 127.x.y.z address, fresh
//! data dirs, default fsync behaviour and default timing (heartbeat 100 ms, election
//! 1000 ms). Dropping it kills every member.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::bail;
use etcd_client::Client;
use etcd_client::ConnectOptions;

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

/// Where the etcd binary is: `$ETCD_BIN`, else `etcd` on PATH.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join("etcd")).find(|p| p.is_file())
}

pub struct EtcdCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    block: (u8, u8),
    pub ids: Vec<u64>,
    procs: BTreeMap<u64, Child>,
}

impl EtcdCluster {
    fn ip(&self, id: u64) -> String {
        format!("127.{}.{}.{}", self.block.0, self.block.1, 20 + id)
    }

    pub fn endpoint(&self, id: u64) -> String {
        format!("http://{}:{CLIENT_PORT}", self.ip(id))
    }

    fn name(id: u64) -> String {
        format!("m{id}")
    }

    pub fn start(members: u64) -> anyhow::Result<EtcdCluster> {
        let bin = etcd_binary().context("etcd not found: `apt-get install etcd-server` (or set ETCD_BIN)")?;
        let dir = tempfile::Builder::new().prefix("lookout-bench-etcd-").tempdir()?;
        let mut c = EtcdCluster { dir, bin, block: lookout_testkit::address_block(), ids: (1..=members).collect(), procs: BTreeMap::new() };
        for id in c.ids.clone() {
            c.start_member(id)?;
        }
        Ok(c)
    }

    /// Starts (or restarts, on its existing data dir) one member.
    pub fn start_member(&mut self, id: u64) -> anyhow::Result<()> {
        let initial: Vec<String> =
            self.ids.iter().map(|m| format!("{}=http://{}:{PEER_PORT}", Self::name(*m), self.ip(*m))).collect();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(format!("m{id}.log")))?;
        let child = Command::new(&self.bin)
            .args(["--name", &Self::name(id)])
            .args(["--data-dir", &self.dir.path().join(Self::name(id)).to_string_lossy()])
            .args(["--listen-client-urls", &self.endpoint(id)])
            .args(["--advertise-client-urls", &self.endpoint(id)])
            .args(["--listen-peer-urls", &format!("http://{}:{PEER_PORT}", self.ip(id))])
            .args(["--initial-advertise-peer-urls", &format!("http://{}:{PEER_PORT}", self.ip(id))])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", "lookout-bench"])
            .args(["--initial-cluster-state", "new"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.procs.insert(id, child);
        Ok(())
    }

    /// `kill -9` of one member.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn client(&self, id: u64) -> anyhow::Result<Client> {
        let opts = ConnectOptions::new().with_connect_timeout(Duration::from_millis(500)).with_timeout(Duration::from_secs(5));
        Ok(Client::connect([self.endpoint(id)], Some(opts)).await?)
    }

    /// The leader's id as seen by the running members, once one is known.
    pub async fn leader(&self) -> Option<u64> {
        let mut by_member_id = BTreeMap::new();
        let mut leader = None;
        for &id in self.procs.keys() {
            let Ok(mut client) = self.client(id).await else { continue };
            let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(300), client.status()).await else { continue };
            if let Some(h) = s.header() {
                by_member_id.insert(h.member_id(), id);
            }
            if s.leader() != 0 {
                leader = Some(s.leader());
            }
        }
        by_member_id.get(&leader?).copied()
    }

    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.leader().await {
                // A put proves the cluster is serving, not only that a leader is known.
                if let Ok(mut c) = self.client(l).await {
                    if c.put("bench/ready", "1", None).await.is_ok() {
                        return Ok(l);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("etcd: no serving leader within {timeout:?}; logs in {}", self.dir.path().display())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.procs) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Classifies an etcd client error.
pub fn error_class(e: &etcd_client::Error) -> crate::load::ErrorClass {
    match e {
        etcd_client::Error::GRpcStatus(s) => crate::load::status_class(s),
        etcd_client::Error::TransportError(_) => "Transport".into(),
        other => format!("Other({other})"),
    }
}
