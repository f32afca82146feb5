//! `--net netns`: true packet-level partitions (root only).
//!
//! Each node runs in its own network namespace (`ip netns exec NS lookoutd ...`), with a
//! veth into a bridge that lives in a separate "switch" namespace; the harness (clients)
//! joins the bridge from the root namespace through one more veth. Addresses are a private
//! 10.a.b.0/24 that exists only on this machine. Network faults are nftables rules in the
//! receiving node's namespace:
//!
//! * cut link `A → B`: in B's namespace, `ip saddr A drop` (packets from A never arrive,
//!   established TCP connections stall exactly as with a real partition);
//! * loss: `ip saddr {peers} numgen random mod 100 < P drop`;
//! * delay: not available (the kernel has no netem); `--nemesis delay` is skipped.
//!
//! Client traffic (from the harness's address) is never filtered. Every namespace (and
//! with it every veth and nft table) is deleted when the [`Netns`] is dropped, including
//! on panic.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::cluster::{Layout, NodeInfo, sites_for};
use super::nemesis::{Family, NetControl};

pub struct Netns {
    tag: String,
    subnet: (u8, u8),
    ids: Vec<u64>,
    sites: Vec<&'static str>,
    created: Vec<String>,
    host_veth: Option<String>,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Why netns mode cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("--net netns needs root (network namespaces and nftables); skipped".into());
    }
    let has = |t: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false)
    };
    if !has("ip") {
        return Some("--net netns needs iproute2 (`ip`); skipped".into());
    }
    if !has("nft") {
        return Some("--net netns needs nftables (`apt-get install nftables`); skipped".into());
    }
    None
}

impl Netns {
    fn node_ns(&self, id: u64) -> String {
        format!("{}-n{id}", self.tag)
    }
    fn switch_ns(&self) -> String {
        format!("{}-sw", self.tag)
    }
    pub fn ip(&self, id: u64) -> String {
        format!("10.{}.{}.{}", self.subnet.0, self.subnet.1, 10 + id)
    }
    fn host_ip(&self) -> String {
        format!("10.{}.{}.1", self.subnet.0, self.subnet.1)
    }

    /// Creates the namespaces, bridge and veths for `n` nodes.
    pub fn setup(n: usize, seed: u64) -> anyhow::Result<Netns> {
        if let Some(why) = unavailable() {
            bail!(why);
        }
        let sites = sites_for(n)?;
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let r = pid.wrapping_mul(2_654_435_761) ^ nanos ^ (seed as u32).wrapping_mul(40503);
        // Short: veth names are limited to 15 bytes.
        let tag = format!("lj{:05x}", r % 0xfffff);
        let subnet = ((r >> 8) as u8 % 200 + 20, (r >> 16) as u8);
        let mut ns = Netns { tag, subnet, ids: (1..=n as u64).collect(), sites, created: vec![], host_veth: None };
        ns.build().inspect_err(|_| ns.teardown())?;
        Ok(ns)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let sw = self.switch_ns();
        run(&["ip", "netns", "add", &sw])?;
        self.created.push(sw.clone());
        run(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &sw, "link", "set", "br0", "up"])?;
        run(&["ip", "-n", &sw, "link", "set", "lo", "up"])?;
        for id in self.ids.clone() {
            let ns = self.node_ns(id);
            run(&["ip", "netns", "add", &ns])?;
            self.created.push(ns.clone());
            let a = format!("{}a{id}", self.tag);
            let b = format!("{}b{id}", self.tag);
            run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])?;
            run(&["ip", "link", "set", &a, "netns", &ns])?;
            run(&["ip", "link", "set", &b, "netns", &sw])?;
            run(&["ip", "-n", &ns, "link", "set", &a, "name", "eth0"])?;
            run(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", self.ip(id)), "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", &sw, "link", "set", &b, "master", "br0"])?;
            run(&["ip", "-n", &sw, "link", "set", &b, "up"])?;
            self.nft(id, &self.base_rules())?;
        }
        // The harness's own leg, from the root namespace.
        let h = format!("{}h", self.tag);
        let hb = format!("{}hb", self.tag);
        run(&["ip", "link", "add", &h, "type", "veth", "peer", "name", &hb])?;
        self.host_veth = Some(h.clone());
        run(&["ip", "link", "set", &hb, "netns", &sw])?;
        run(&["ip", "-n", &sw, "link", "set", &hb, "master", "br0"])?;
        run(&["ip", "-n", &sw, "link", "set", &hb, "up"])?;
        run(&["ip", "addr", "add", &format!("{}/24", self.host_ip()), "dev", &h])?;
        run(&["ip", "link", "set", &h, "up"])?;
        Ok(())
    }

    fn base_rules(&self) -> String {
        "table inet jepsen\ndelete table inet jepsen\ntable inet jepsen {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n"
            .to_string()
    }

    fn nft(&self, id: u64, script: &str) -> anyhow::Result<()> {
        let ns = self.node_ns(id);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running nft")?;
        child.stdin.take().expect("stdin").write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft in {ns}: {}\nscript:\n{script}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Replace node `id`'s input rules with `rules` (lines inside `chain input`).
    fn set_rules(&self, id: u64, rules: &[String]) -> anyhow::Result<()> {
        let mut s = self.base_rules();
        s += "flush chain inet jepsen input\n";
        for r in rules {
            s += &format!("add rule inet jepsen input {r}\n");
        }
        self.nft(id, &s)
    }

    pub fn layout(&self) -> anyhow::Result<Layout> {
        Ok(Layout {
            nodes: self.ids.iter().zip(&self.sites).map(|(&id, &site)| NodeInfo { id, site, ip: self.ip(id) }).collect(),
        })
    }

    /// Command prefix that runs a program in node `id`'s namespace.
    pub fn wrapper(&self, id: u64) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.node_ns(id)]
    }

    fn teardown(&mut self) {
        for ns in self.created.drain(..).rev() {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
        if let Some(h) = self.host_veth.take() {
            let _ = run(&["ip", "link", "del", &h]);
        }
    }

    fn peers_of(&self, id: u64) -> Vec<String> {
        self.ids.iter().filter(|&&p| p != id).map(|&p| self.ip(p)).collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl NetControl for Netns {
    fn mode(&self) -> &'static str {
        "netns"
    }

    fn supports(&self, f: Family) -> bool {
        matches!(f, Family::Partition | Family::Loss)
    }

    fn partition(&self, cut: &BTreeSet<(u64, u64)>) -> anyhow::Result<()> {
        for &to in &self.ids {
            let from: Vec<String> = cut.iter().filter(|(_, t)| *t == to).map(|(f, _)| self.ip(*f)).collect();
            let rules: Vec<String> = if from.is_empty() { vec![] } else { vec![format!("ip saddr {{ {} }} drop", from.join(", "))] };
            self.set_rules(to, &rules)?;
        }
        Ok(())
    }

    fn delay(&self, _nodes: Option<&[u64]>, _ms: u64, _jitter_ms: u64) -> anyhow::Result<()> {
        bail!("delay needs netem, which this kernel lacks; use --net proxy")
    }

    fn loss(&self, nodes: Option<&[u64]>, p: f64) -> anyhow::Result<()> {
        let pct = (p * 100.0).round().clamp(0.0, 100.0) as u32;
        for &to in &self.ids {
            let peers: Vec<String> = match nodes {
                None => self.peers_of(to),
                Some(n) if n.contains(&to) => self.peers_of(to),
                Some(n) => n.iter().filter(|&&x| x != to).map(|&x| self.ip(x)).collect(),
            };
            let rules = if peers.is_empty() {
                vec![]
            } else {
                vec![format!("ip saddr {{ {} }} numgen random mod 100 < {pct} drop", peers.join(", "))]
            };
            self.set_rules(to, &rules)?;
        }
        Ok(())
    }

    fn heal(&self) -> anyhow::Result<()> {
        for &id in &self.ids {
            self.set_rules(id, &[])?;
        }
        Ok(())
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::json!({"mode": "netns", "namespaces": self.created, "subnet": format!("10.{}.{}.0/24", self.subnet.0, self.subnet.1)})
    }
}
