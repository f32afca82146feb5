//! User-space TCP proxies, one per directed peer link (the CI default network mode; no
//! root needed).
//!
//! Node A reaches node B through the proxy of link `A → B` (A's process is started with
//! `LOOKOUT_PEER_ROUTES=B=<proxy address>`), so that link carries A's requests to B and B's
//! answers to them. Each link has a [`LinkFault`]:
//!
//! * `Pass`: bytes are forwarded as they come.
//! * `Delay`: every chunk is forwarded `ms` (± `jitter_ms`) after it was read; order is kept.
//! * `Loss`: TCP cannot lose single packets without corrupting the stream, so loss is
//!   modelled at the connection level: a new connection is stalled (accepted, nothing
//!   forwarded) with probability `p`, and an established one is cut (closed) on each chunk
//!   with probability `p / 4`.
//! * `Blackhole`: new connections are accepted but nothing is forwarded; established
//!   connections stop forwarding at once (they are held open, so the peer sees silence,
//!   as with dropped packets, and only its keep-alive timeout ends them). Raft RPCs run
//!   over long-lived HTTP/2 connections, so cutting only new connections would not
//!   partition anything. When the link heals, every stalled connection is closed so that
//!   the peer reconnects cleanly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum LinkFault {
    Pass,
    Delay { ms: u64, jitter_ms: u64 },
    Loss { p: f64 },
    Blackhole,
}

#[derive(Default, Debug, Serialize)]
pub struct LinkStats {
    pub accepted: AtomicU64,
    /// Connections accepted while blackholed/lost and never forwarded.
    pub stalled: AtomicU64,
    /// Established connections that stopped forwarding because of a blackhole.
    pub frozen: AtomicU64,
    /// Connections closed by a loss fault.
    pub cut: AtomicU64,
    pub upstream_failed: AtomicU64,
    pub bytes: AtomicU64,
}

pub struct Link {
    pub from: u64,
    pub to: u64,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    tx: watch::Sender<LinkFault>,
    pub stats: LinkStats,
}

impl Link {
    pub fn fault(&self) -> LinkFault {
        *self.tx.borrow()
    }
}

/// Every proxy of a cluster.
pub struct ProxyNet {
    links: BTreeMap<(u64, u64), Arc<Link>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ProxyNet {
    /// Starts a proxy per `(from, to, listen, upstream)`.
    pub async fn start(specs: Vec<(u64, u64, SocketAddr, SocketAddr)>) -> anyhow::Result<ProxyNet> {
        let mut links = BTreeMap::new();
        let mut tasks = Vec::new();
        for (from, to, listen, upstream) in specs {
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("proxy {from}->{to}: bind {listen}: {e}"))?;
            let (tx, _) = watch::channel(LinkFault::Pass);
            let link = Arc::new(Link { from, to, listen, upstream, tx, stats: LinkStats::default() });
            links.insert((from, to), link.clone());
            tasks.push(tokio::spawn(accept_loop(listener, link)));
        }
        Ok(ProxyNet { links, tasks })
    }

    /// The `LOOKOUT_PEER_ROUTES` value for node `from`.
    pub fn routes_for(&self, from: u64) -> String {
        self.links
            .values()
            .filter(|l| l.from == from)
            .map(|l| format!("{}={}", l.to, l.listen))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn set(&self, from: u64, to: u64, fault: LinkFault) {
        if let Some(l) = self.links.get(&(from, to)) {
            l.tx.send_replace(fault);
        }
    }

    pub fn set_all(&self, fault: LinkFault) {
        for l in self.links.values() {
            l.tx.send_replace(fault);
        }
    }

    pub fn heal(&self) {
        self.set_all(LinkFault::Pass);
    }

    /// Blackholes exactly the directed links in `cut`; every other link passes.
    pub fn partition(&self, cut: &BTreeSet<(u64, u64)>) {
        for (k, l) in &self.links {
            l.tx.send_replace(if cut.contains(k) { LinkFault::Blackhole } else { LinkFault::Pass });
        }
    }

    pub fn links(&self) -> impl Iterator<Item = &Arc<Link>> {
        self.links.values()
    }

    pub fn stats_json(&self) -> serde_json::Value {
        let mut tot = [0u64; 6];
        let per: Vec<serde_json::Value> = self
            .links
            .values()
            .map(|l| {
                let s = &l.stats;
                let v = [
                    s.accepted.load(Ordering::Relaxed),
                    s.stalled.load(Ordering::Relaxed),
                    s.frozen.load(Ordering::Relaxed),
                    s.cut.load(Ordering::Relaxed),
                    s.upstream_failed.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                ];
                for (t, x) in tot.iter_mut().zip(v) {
                    *t += x;
                }
                serde_json::json!({
                    "link": format!("{}->{}", l.from, l.to),
                    "accepted": v[0], "stalled": v[1], "frozen": v[2], "cut": v[3], "upstream_failed": v[4], "bytes": v[5],
                })
            })
            .collect();
        serde_json::json!({
            "connections_accepted": tot[0],
            "connections_stalled": tot[1],
            "connections_frozen": tot[2],
            "connections_cut": tot[3],
            "upstream_failed": tot[4],
            "bytes_forwarded": tot[5],
            "links": per,
        })
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>) {
    let conns = tokio::task::JoinSet::new();
    let mut conns = conns;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    link.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    conns.spawn(serve(sock, link.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Dropping the JoinSet (when this task is aborted) aborts every connection.
}

/// Waits until the link's fault is no longer `Blackhole` (or the stalled condition ends),
/// holding the sockets open meanwhile.
async fn wait_unblocked(rx: &mut watch::Receiver<LinkFault>, lost: bool) {
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let f = *rx.borrow_and_update();
        let still = if lost { matches!(f, LinkFault::Loss { .. } | LinkFault::Blackhole) } else { f == LinkFault::Blackhole };
        if !still {
            return;
        }
    }
}

async fn serve(mut inbound: TcpStream, link: Arc<Link>) {
    let mut rx = link.tx.subscribe();
    let fault = *rx.borrow_and_update();
    let stall = match fault {
        LinkFault::Blackhole => Some(false),
        LinkFault::Loss { p } if rand::rng().random_bool(p.clamp(0.0, 1.0)) => Some(true),
        _ => None,
    };
    if let Some(lost) = stall {
        link.stats.stalled.fetch_add(1, Ordering::Relaxed);
        wait_unblocked(&mut rx, lost).await;
        return;
    }
    let upstream = match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(link.upstream)).await {
        Ok(Ok(s)) => s,
        _ => {
            link.stats.upstream_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = inbound.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let mut upstream = upstream;
    let (mut ri, mut wi) = inbound.split();
    let (mut ru, mut wu) = upstream.split();
    let blackholed = async {
        let mut rx = rx.clone();
        loop {
            if *rx.borrow_and_update() == LinkFault::Blackhole {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let end = tokio::select! {
        r = pump(&mut ri, &mut wu, &link, rx.clone()) => r,
        r = pump(&mut ru, &mut wi, &link, rx.clone()) => r,
        _ = blackholed => PumpEnd::Blackholed,
    };
    match end {
        PumpEnd::Blackholed => {
            link.stats.frozen.fetch_add(1, Ordering::Relaxed);
            // Forward nothing more; hold both sockets open until the link heals.
            wait_unblocked(&mut rx, false).await;
        }
        PumpEnd::Cut => {
            link.stats.cut.fetch_add(1, Ordering::Relaxed);
        }
        PumpEnd::Closed => {}
    }
    // Sockets drop here: both sides see the connection close.
}

enum PumpEnd {
    Closed,
    Cut,
    Blackholed,
}

/// Copies `r` to `w` applying the link's delay / loss. Returns when either side closes or
/// a loss fault cuts the connection.
async fn pump<R, W>(r: &mut R, w: &mut W, link: &Link, rx: watch::Receiver<LinkFault>) -> PumpEnd
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut last_due = Instant::now();
    let mut eof = false;
    loop {
        if eof && queue.is_empty() {
            let _ = w.shutdown().await;
            return PumpEnd::Closed;
        }
        let next_due = queue.front().map(|(d, _)| *d);
        tokio::select! {
            n = r.read(&mut buf), if !eof => {
                let n = match n { Ok(n) => n, Err(_) => return PumpEnd::Closed };
                if n == 0 {
                    eof = true;
                    continue;
                }
                let fault = *rx.borrow();
                let now = Instant::now();
                let due = match fault {
                    LinkFault::Delay { ms, jitter_ms } => {
                        let j = if jitter_ms > 0 { rand::rng().random_range(0..=2 * jitter_ms) as i64 - jitter_ms as i64 } else { 0 };
                        now + Duration::from_millis((ms as i64 + j).max(0) as u64)
                    }
                    LinkFault::Loss { p } => {
                        if rand::rng().random_bool((p / 4.0).clamp(0.0, 1.0)) {
                            return PumpEnd::Cut;
                        }
                        now
                    }
                    _ => now,
                };
                // Keep order: a chunk never overtakes an earlier one.
                let due = due.max(last_due);
                last_due = due;
                if due <= now && queue.is_empty() {
                    if w.write_all(&buf[..n]).await.is_err() {
                        return PumpEnd::Closed;
                    }
                    link.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                } else {
                    queue.push_back((due, buf[..n].to_vec()));
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let (_, chunk) = queue.pop_front().expect("queue non-empty");
                if w.write_all(&chunk).await.is_err() {
                    return PumpEnd::Closed;
                }
                link.stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    }
}
