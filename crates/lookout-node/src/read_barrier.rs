//! The linearizable read barrier (ReadIndex), batched.
//!
//! A read needs proof that this node was still leader after the read arrived, and the
//! commit index at that moment. openraft's `ReadPolicy::ReadIndex` gets it with one
//! quorum round trip. Reads that arrive while a round trip is in flight join the next
//! one, so N concurrent reads cost about two round trips, not N.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lookout_types::NodeId;
use openraft::ReadPolicy;
use openraft::error::LinearizableReadError;
use openraft::error::RaftError;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use crate::Raft;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("read barrier did not complete: {0}")]
    NoQuorum(String),
    #[error("too many reads waiting for a barrier")]
    Overloaded,
    #[error("raft stopped: {0}")]
    Fatal(String),
}

type Waiter = oneshot::Sender<Result<u64, ReadError>>;

#[derive(Clone)]
pub struct ReadBarrier {
    tx: mpsc::Sender<Waiter>,
    stats: Arc<BarrierStats>,
}

/// Reads served and quorum rounds run, since start.
#[derive(Default)]
pub struct BarrierStats {
    pub reads: AtomicU64,
    pub rounds: AtomicU64,
}

impl ReadBarrier {
    /// `max_waiting` bounds the reads queued behind a barrier; `timeout` bounds one round.
    pub fn spawn(raft: Raft, max_waiting: usize, timeout: Duration) -> ReadBarrier {
        let (tx, rx) = mpsc::channel(max_waiting.max(1));
        let stats = Arc::new(BarrierStats::default());
        tokio::spawn(drive(raft, rx, timeout, stats.clone()));
        ReadBarrier { tx, stats }
    }

    /// (reads, rounds) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.reads.load(Ordering::Relaxed), self.stats.rounds.load(Ordering::Relaxed))
    }

    /// The commit index a linearizable read must wait to have applied. Leader only.
    pub async fn read_index(&self) -> Result<u64, ReadError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(tx).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ReadError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => ReadError::Fatal("read barrier stopped".into()),
        })?;
        rx.await.unwrap_or_else(|_| Err(ReadError::Fatal("read barrier stopped".into())))
    }
}

async fn drive(raft: Raft, mut rx: mpsc::Receiver<Waiter>, timeout: Duration, stats: Arc<BarrierStats>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = one_round(&raft, timeout).await;
        stats.rounds.fetch_add(1, Ordering::Relaxed);
        stats.reads.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for waiter in batch.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}

async fn one_round(raft: &Raft, timeout: Duration) -> Result<u64, ReadError> {
    // get_read_linearizer returns once a quorum has confirmed leadership (or fails); the
    // timeout keeps one stuck round from holding every later read hostage.
    let round = raft.get_read_linearizer(ReadPolicy::ReadIndex);
    let linearizer = tokio::time::timeout(timeout, round)
        .await
        .map_err(|_| ReadError::NoQuorum(format!("no quorum confirmation within {timeout:?}")))?
        .map_err(map_read_error)?;
    Ok(linearizer.read_log_id().index())
}

/// Maps openraft's read errors to ours (one place).
pub fn map_read_error(e: RaftError<lookout_types::TypeConfig, LinearizableReadError<lookout_types::TypeConfig>>) -> ReadError {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => ReadError::NotLeader { leader: f.leader_id },
        RaftError::APIError(other) => ReadError::NoQuorum(other.to_string()),
        RaftError::Fatal(f) => ReadError::Fatal(f.to_string()),
    }
}
