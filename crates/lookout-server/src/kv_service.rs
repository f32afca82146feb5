//! `lookout.v1.Kv`: the client key-value API.

use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use lookout_node::ReadMode;
use lookout_proto::v1 as pb;
use lookout_proto::v1::kv_server::Kv;
use lookout_types::Op;
use lookout_types::Outcome;
use lookout_types::RequestId;
use lookout_types::Versioned;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::Ctx;
use crate::errors;
use crate::validate;

pub struct KvService {
    pub ctx: Ctx,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn kv(key: Vec<u8>, v: Versioned) -> pb::KeyValue {
    pb::KeyValue { key, value: v.value, version: v.version, create_index: v.create_index, mod_index: v.mod_index }
}

impl Ctx {
    /// Proposes one command through Raft and waits for its applied response.
    pub async fn write(&self, id: Option<RequestId>, op: Op) -> Result<lookout_types::Response, Status> {
        let req = lookout_types::Request { id, proposed_at_ms: now_ms(), op };
        match self.node.raft.client_write(req).await {
            Ok(resp) => Ok(resp.data),
            Err(e) => Err(errors::write_error(&self.node, e)),
        }
    }

    /// Makes this node's state fit for a read with `opts`, and says what it reflects.
    pub async fn read_fence(&self, opts: validate::Read) -> Result<pb::ReadHeader, Status> {
        let mode = match opts.consistency {
            pb::Consistency::Linearizable => ReadMode::Linearizable,
            pb::Consistency::Lease => ReadMode::Lease,
            pb::Consistency::Stale => return self.stale_fence(opts.max_staleness_ms),
        };
        let applied = self.node.consistent_read_fence(mode).await.map_err(|e| errors::read_error(&self.node, e))?;
        Ok(pb::ReadHeader {
            applied_index: applied,
            consistency: opts.consistency as i32,
            staleness_ms: 0,
            served_by: self.node.id,
        })
    }

    fn stale_fence(&self, max_staleness_ms: u64) -> Result<pb::ReadHeader, Status> {
        let applied = self.node.reader.applied_index();
        // u64::MAX: unknown (this node has not been known up to date since it started).
        let staleness_ms = self.node.staleness().map_or(u64::MAX, |d| d.as_millis() as u64);
        if max_staleness_ms != 0 && staleness_ms > max_staleness_ms {
            let shown = if staleness_ms == u64::MAX { "unknown".to_string() } else { format!("{staleness_ms} ms") };
            return Err(Status::unavailable(format!(
                "stale read refused: node {} data may be {shown} old, more than max_staleness_ms {max_staleness_ms} (applied index {applied})",
                self.node.id
            )));
        }
        Ok(pb::ReadHeader {
            applied_index: applied,
            consistency: pb::Consistency::Stale as i32,
            staleness_ms,
            served_by: self.node.id,
        })
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let (id, op) = validate::put(req.get_ref(), &self.ctx.limits).map_err(errors::invalid)?;
        let resp = ticket.run("put", self.ctx.write(id, op)).await?;
        match resp.outcome {
            Outcome::Put { version } => Ok(Response::new(pb::PutResponse { index: resp.index, version })),
            other => Err(Status::internal(format!("put answered {other:?}"))),
        }
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let (id, op) = validate::delete(req.get_ref(), &self.ctx.limits).map_err(errors::invalid)?;
        let resp = ticket.run("delete", self.ctx.write(id, op)).await?;
        match resp.outcome {
            Outcome::Delete { existed } => Ok(Response::new(pb::DeleteResponse { index: resp.index, existed })),
            other => Err(Status::internal(format!("delete answered {other:?}"))),
        }
    }

    async fn compare_and_swap(
        &self,
        req: Request<pb::CompareAndSwapRequest>,
    ) -> Result<Response<pb::CompareAndSwapResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let (id, op) = validate::compare_and_swap(req.get_ref(), &self.ctx.limits).map_err(errors::invalid)?;
        let key = req.get_ref().key.clone();
        let resp = ticket.run("compare_and_swap", self.ctx.write(id, op)).await?;
        match resp.outcome {
            Outcome::CompareAndSwap { succeeded, previous, new_version } => {
                Ok(Response::new(pb::CompareAndSwapResponse {
                    index: resp.index,
                    succeeded,
                    found: previous.is_some(),
                    current: previous.map(|v| kv(key, v)),
                    new_version,
                }))
            }
            other => Err(Status::internal(format!("compare_and_swap answered {other:?}"))),
        }
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        validate::key("key", &r.key, &self.ctx.limits).map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("get", async {
                let header = self.ctx.read_fence(opts).await?;
                let found = self.ctx.node.reader.get(&r.key).map_err(errors::store_error)?;
                Ok(Response::new(pb::GetResponse {
                    header: Some(header),
                    found: found.is_some(),
                    kv: found.map(|v| kv(r.key.clone(), v)),
                }))
            })
            .await
    }

    async fn range(&self, req: Request<pb::RangeRequest>) -> Result<Response<pb::RangeResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let page = validate::range(r, &self.ctx.limits).map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("range", async {
                let header = self.ctx.read_fence(opts).await?;
                // One extra row tells whether another page exists.
                let mut rows = self
                    .ctx
                    .node
                    .reader
                    .range(&page.prefix, page.start_after.as_deref(), page.limit + 1)
                    .map_err(errors::store_error)?;
                let more = rows.len() > page.limit;
                rows.truncate(page.limit);
                let continuation = if more { rows.last().map(|(k, _)| k.clone()).unwrap_or_default() } else { vec![] };
                Ok(Response::new(pb::RangeResponse {
                    header: Some(header),
                    kvs: rows.into_iter().map(|(k, v)| kv(k, v)).collect(),
                    continuation,
                }))
            })
            .await
    }
}
