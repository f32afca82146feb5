//! Failover: a one-client write loop with a short per-request deadline runs while the
//! leader (or a whole site) is killed with `kill -9`. Per trial: the longest gap between
//! successful writes, the time until the survivors know a new leader, and how many
//! acknowledged writes are missing after the killed members return (must be 0).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::bail;
use lookout_proto::v1 as pb;
use lookout_testkit::TestCluster;
use lookout_testkit::request_id;
use serde::Serialize;

use crate::etcd::EtcdCluster;

/// What is killed in each trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kill {
    /// The current leader.
    Leader,
    /// Both members of the primary site (ids 1 and 2 of the default topology), with
    /// the leader moved there first.
    PrimarySite,
}

pub enum Subject {
    Lookout(TestCluster),
    Etcd(EtcdCluster),
}

#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub killed: Vec<u64>,
    pub gap_ms: u64,
    pub new_leader_ms: Option<u64>,
    pub acked: usize,
    pub lost: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailoverFigures {
    pub target: String,
    pub kill: Kill,
    pub members: usize,
    pub request_timeout_ms: u64,
    pub trials: Vec<Trial>,
    pub gap_ms_median: u64,
    pub gap_ms_max: u64,
    pub new_leader_ms_median: Option<u64>,
    pub acked: usize,
    pub lost: usize,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

impl Subject {
    fn name(&self) -> &'static str {
        match self {
            Subject::Lookout(_) => "lookout",
            Subject::Etcd(_) => "etcd",
        }
    }

    fn ids(&self) -> Vec<u64> {
        match self {
            Subject::Lookout(c) => c.ids.clone(),
            Subject::Etcd(c) => c.ids.clone(),
        }
    }

    async fn wait_leader(&self) -> anyhow::Result<u64> {
        match self {
            Subject::Lookout(c) => c.wait_leader(Duration::from_secs(20)).await,
            Subject::Etcd(c) => c.wait_leader(Duration::from_secs(20)).await,
        }
    }

    /// A leader among the members not in `dead`, if one is known right now.
    async fn leader_among_survivors(&self, dead: &[u64]) -> Option<u64> {
        match self {
            Subject::Lookout(c) => {
                for id in c.ids.iter().filter(|id| !dead.contains(id)) {
                    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(100), c.status(*id)).await {
                        if s.role == pb::Role::Leader as i32 {
                            return Some(*id);
                        }
                    }
                }
                None
            }
            Subject::Etcd(c) => c.leader().await.filter(|l| !dead.contains(l)),
        }
    }

    fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        match self {
            Subject::Lookout(c) => c.kill(id),
            Subject::Etcd(c) => {
                c.kill(id);
                Ok(())
            }
        }
    }

    fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        match self {
            Subject::Lookout(c) => c.start_node(id),
            Subject::Etcd(c) => c.start_member(id),
        }
    }

    /// Moves leadership to `to` (Lookout only; used to stage a site loss).
    async fn move_leader(&self, to: u64) -> anyhow::Result<()> {
        let Subject::Lookout(c) = self else { bail!("move_leader is for Lookout") };
        let leader = c.wait_leader(Duration::from_secs(20)).await?;
        if leader != to {
            c.admin(leader).transfer_leader(pb::TransferLeaderRequest { to }).await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.wait_leader(Duration::from_secs(10)).await? != to {
                if Instant::now() > deadline {
                    bail!("leadership did not move to {to}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    fn writer(&self) -> Writer {
        match self {
            Subject::Lookout(c) => {
                Writer::Lookout(c.ids.iter().map(|&id| (id, pb::kv_client::KvClient::new(c.channel(id)))).collect())
            }
            Subject::Etcd(c) => Writer::Etcd(c.ids.iter().map(|&id| (id, c.endpoint(id))).collect()),
        }
    }

    /// How many of `keys` a linearizable read from the leader does not find.
    async fn count_missing(&self, keys: &[String]) -> anyhow::Result<usize> {
        let mut missing = 0;
        match self {
            Subject::Lookout(c) => {
                let leader = c.wait_leader(Duration::from_secs(20)).await?;
                let kv = c.kv(leader);
                for key in keys {
                    let r = kv.clone().get(pb::GetRequest { read: None, key: key.as_bytes().to_vec() }).await?;
                    missing += usize::from(!r.into_inner().found);
                }
            }
            Subject::Etcd(c) => {
                let l = c.wait_leader(Duration::from_secs(20)).await?;
                let mut client = c.client(l).await?;
                for key in keys {
                    missing += usize::from(client.get(key.as_str(), None).await?.count() == 0);
                }
            }
        }
        Ok(missing)
    }
}

/// The write loop's connection to each member. Every attempt of one logical Lookout
/// write reuses its request id, so a retry after a timeout is applied at most once.
enum Writer {
    Lookout(Vec<(u64, pb::kv_client::KvClient<tonic::transport::Channel>)>),
    Etcd(Vec<(u64, String)>),
}

async fn write_loop(writer: Writer, first: u64, trial: usize, timeout: Duration, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<(Instant, String)>>>) {
    let ids: Vec<u64> = match &writer {
        Writer::Lookout(m) => m.iter().map(|(id, _)| *id).collect(),
        Writer::Etcd(m) => m.iter().map(|(id, _)| *id).collect(),
    };
    let mut etcd_clients = std::collections::BTreeMap::new();
    let mut target = first;
    let mut rotate = 0usize;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("failover/{trial}/{n}");
        let result: Result<(), Option<u64>> = match &writer {
            Writer::Lookout(m) => {
                let mut kv = m.iter().find(|(id, _)| *id == target).expect("member").1.clone();
                let mut req = tonic::Request::new(pb::PutRequest {
                    header: Some(pb::WriteHeader { request_id: request_id(((trial as u64) << 40) | n) }),
                    key: key.clone().into_bytes(),
                    value: b"v".to_vec(),
                });
                req.set_timeout(timeout);
                match tokio::time::timeout(timeout, kv.put(req)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(s)) => Err(s.metadata().get("lookout-leader-id").and_then(|v| v.to_str().ok()?.parse().ok())),
                    Err(_) => Err(None),
                }
            }
            Writer::Etcd(m) => {
                // Any live member accepts a put (followers forward to the leader).
                let ep = &m.iter().find(|(id, _)| *id == target).expect("member").1;
                if !etcd_clients.contains_key(&target) {
                    let opts = etcd_client::ConnectOptions::new().with_connect_timeout(timeout).with_timeout(timeout);
                    if let Ok(Ok(c)) = tokio::time::timeout(timeout, etcd_client::Client::connect([ep.clone()], Some(opts))).await {
                        etcd_clients.insert(target, c);
                    }
                }
                match etcd_clients.get(&target).cloned() {
                    Some(mut c) => match tokio::time::timeout(timeout, c.put(key.clone(), "v", None)).await {
                        Ok(Ok(_)) => Ok(()),
                        _ => Err(None),
                    },
                    None => Err(None),
                }
            }
        };
        match result {
            Ok(()) => {
                acked.lock().unwrap().push((Instant::now(), key));
                n += 1;
            }
            Err(Some(hint)) if hint != target && ids.contains(&hint) => target = hint,
            Err(_) => {
                rotate += 1;
                target = ids[rotate % ids.len()];
            }
        }
    }
}

pub async fn run(mut s: Subject, kill: Kill, trials: usize, timeout: Duration, progress: bool) -> anyhow::Result<FailoverFigures> {
    let mut results = vec![];
    for trial in 0..trials {
        if kill == Kill::PrimarySite {
            s.move_leader(1).await?;
        }
        let old = s.wait_leader().await?;
        let victims = match kill {
            Kill::Leader => vec![old],
            Kill::PrimarySite => vec![1, 2],
        };
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let writer = tokio::spawn(write_loop(s.writer(), old, trial, timeout, stop.clone(), acked.clone()));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let killed_at = Instant::now();
        for v in &victims {
            s.kill(*v)?;
        }
        let mut new_leader = None;
        while killed_at.elapsed() < Duration::from_secs(20) && new_leader.is_none() {
            if s.leader_among_survivors(&victims).await.is_some() {
                new_leader = Some(killed_at.elapsed());
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Keep writing until writes have been flowing again for a second.
        let resume_deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resumed_at = acked.lock().unwrap().iter().rev().take_while(|(t, _)| *t > killed_at).last().map(|(t, _)| *t);
            if resumed_at.is_some_and(|t| t.elapsed() > Duration::from_millis(1000)) || Instant::now() > resume_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let stopped_at = Instant::now();
        writer.await?;
        let acked = acked.lock().unwrap().clone();
        // The longest stretch without a successful write, including a trailing one: a
        // writer that never recovers shows as a gap lasting until the loop was stopped.
        let trailing = acked.last().map_or(stopped_at - killed_at, |(t, _)| stopped_at.saturating_duration_since(*t));
        let gap = acked.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or_default().max(trailing);
        for v in &victims {
            s.restart(*v)?;
        }
        s.wait_leader().await?;
        let keys: Vec<String> = acked.iter().map(|(_, k)| k.clone()).collect();
        let lost = s.count_missing(&keys).await?;
        let t = Trial {
            killed: victims.clone(),
            gap_ms: gap.as_millis() as u64,
            new_leader_ms: new_leader.map(|d| d.as_millis() as u64),
            acked: acked.len(),
            lost,
        };
        if progress {
            eprintln!(
                "  {} trial {:2}: killed {:?}; new leader after {} ms; longest write gap {} ms; {} acked, {} lost",
                s.name(),
                trial + 1,
                t.killed,
                t.new_leader_ms.map_or("-".to_string(), |m| m.to_string()),
                t.gap_ms,
                t.acked,
                t.lost
            );
        }
        results.push(t);
        // Let restarted members catch up before the next trial.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let elected: Vec<u64> = results.iter().filter_map(|t| t.new_leader_ms).collect();
    Ok(FailoverFigures {
        target: s.name().to_string(),
        kill,
        members: s.ids().len(),
        request_timeout_ms: timeout.as_millis() as u64,
        gap_ms_median: median(results.iter().map(|t| t.gap_ms).collect()),
        gap_ms_max: results.iter().map(|t| t.gap_ms).max().unwrap_or(0),
        new_leader_ms_median: (elected.len() == results.len()).then(|| median(elected)),
        acked: results.iter().map(|t| t.acked).sum(),
        lost: results.iter().map(|t| t.lost).sum(),
        trials: results,
    })
}
