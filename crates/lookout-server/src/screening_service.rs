//! `lookout.v1.Screening`: lookout and traveller records, bulk ingest, and screening.
//!
//! Screening reads are fenced like any read (linearizable by default, or `STALE` with a
//! stated staleness), then candidates come from the match indexes the state machine
//! keeps atomically with the records, and are scored by `lookout-screening`.

use std::collections::BTreeSet;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use futures::StreamExt;
use lookout_proto::v1 as pb;
use lookout_proto::v1::screening_server::Screening;
use lookout_screening::Identity;
use lookout_screening::Lookout;
use lookout_screening::MatchConfig;
use lookout_types::Op;
use lookout_types::Outcome;
use lookout_wire as wire;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::Ctx;
use crate::errors;
use crate::validate;

/// Most passengers in one `ScreenManifest` call.
pub const MAX_MANIFEST_PASSENGERS: usize = 1000;
/// Records per Raft entry during bulk ingest.
pub const INGEST_BATCH: usize = 128;
/// Batches of one ingest stream proposed concurrently.
pub const INGEST_PIPELINE: usize = 4;
/// Per-record errors listed in an ingest response (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 1000;
/// Candidates considered per index key; bounds the work of one screen.
const MAX_CANDIDATES_PER_KEY: usize = 256;
/// Lookouts examined per `ListLookouts` page before returning a continuation.
const MAX_LIST_SCAN: usize = 10_000;

pub struct ScreeningService {
    pub ctx: Ctx,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn actor(field: &str, a: &str) -> Result<String, Status> {
    wire::id(field, a).map_err(errors::invalid)
}

fn conflict(id: &str, expected: Option<u64>, current: u64) -> Status {
    let msg = match (expected, current) {
        (_, 0) => format!("lookout {id:?} does not exist"),
        (Some(0), c) => format!("lookout {id:?} already exists at version {c}"),
        (Some(e), c) => format!("expected_version {e} but lookout {id:?} is at version {c}"),
        (None, c) => format!("lookout {id:?} is at version {c}"),
    };
    let mut s = Status::failed_precondition(msg);
    if let Ok(v) = current.to_string().parse() {
        s.metadata_mut().insert("lookout-current-version", v);
    }
    s
}

impl Ctx {
    /// Candidates for `identity` from the match indexes, then scored: the decision and the
    /// matches, best first.
    pub fn screen_identity(&self, identity: &Identity, now: u64) -> Result<(i32, Vec<pb::LookoutMatch>), Status> {
        let reader = &self.node.reader;
        let mut ids = BTreeSet::new();
        for key in lookout_screening::identity_probe_keys(identity) {
            let found = reader.lookouts_indexed_under(&key.to_string(), MAX_CANDIDATES_PER_KEY).map_err(errors::store_error)?;
            ids.extend(found);
        }
        let mut candidates: Vec<(Lookout, u64)> = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(found) = reader.lookout(id).map_err(errors::store_error)? {
                candidates.push(found);
            }
        }
        let config = MatchConfig::new(now);
        let matches = lookout_screening::screen(identity, candidates.iter().map(|(l, _)| l), &config);
        let decision = wire::decision_to_pb(lookout_screening::decide(&matches));
        let matches = matches
            .iter()
            .filter_map(|m| {
                let (l, idx) = candidates.iter().find(|(l, _)| l.id == m.lookout_id)?;
                Some((m, l, *idx))
            })
            .map(|(m, l, idx)| wire::match_to_pb(m, l, idx))
            .collect();
        Ok((decision, matches))
    }
}

/// Runs one bulk ingest: validate each record, batch the valid ones into Raft entries
/// (a few in flight at once), and report every bad record by position.
async fn ingest<M, R>(
    ctx: &Ctx,
    mut stream: tonic::Streaming<M>,
    parse: impl Fn(u64, &M) -> Result<(R, String), (String, wire::Invalid)>,
    make_op: impl Fn(Vec<R>, String) -> Op,
) -> Result<pb::IngestResponse, Status>
where
    M: Send + 'static,
{
    let mut resp = pb::IngestResponse::default();
    let mut batch: Vec<R> = Vec::new();
    let mut batch_actor = String::new();
    let mut in_flight = futures::stream::FuturesOrdered::new();
    let deadline = std::time::Duration::from_millis(ctx.limits.request_deadline_ms);
    let mut position = 0u64;
    let mut pending_records = 0u64;

    let submit = |batch: Vec<R>, actor: String| {
        let n = batch.len() as u64;
        let op = make_op(batch, actor);
        let ctx = ctx.clone();
        async move {
            match tokio::time::timeout(deadline, ctx.write(None, op)).await {
                Ok(r) => r.map(|r| (r, n)),
                Err(_) => Err(errors::deadline("ingest batch", deadline)),
            }
        }
    };

    loop {
        let next = stream.next().await;
        let done = next.is_none();
        if let Some(msg) = next {
            let msg = msg?;
            match parse(position, &msg) {
                Ok((record, actor)) => {
                    if !batch.is_empty() && actor != batch_actor {
                        in_flight.push_back(submit(std::mem::take(&mut batch), batch_actor.clone()));
                    }
                    batch_actor = actor;
                    batch.push(record);
                    pending_records += 1;
                }
                Err((id, e)) => {
                    resp.rejected += 1;
                    if resp.errors.len() < MAX_REPORTED_ERRORS {
                        resp.errors.push(pb::IngestError { position, id, field: e.field, reason: e.reason });
                    }
                }
            }
            position += 1;
        }
        if batch.len() >= INGEST_BATCH || (done && !batch.is_empty()) {
            in_flight.push_back(submit(std::mem::take(&mut batch), batch_actor.clone()));
        }
        while in_flight.len() >= INGEST_PIPELINE || (done && !in_flight.is_empty()) {
            let (r, n) = in_flight.next().await.expect("non-empty")?;
            resp.accepted += n;
            pending_records -= n;
            resp.index = resp.index.max(r.index);
        }
        if done {
            debug_assert_eq!(pending_records, 0);
            return Ok(resp);
        }
    }
}

#[tonic::async_trait]
impl Screening for ScreeningService {
    async fn put_lookout(&self, req: Request<pb::PutLookoutRequest>) -> Result<Response<pb::PutLookoutResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let lookout = wire::lookout_from_pb("lookout", &r.lookout).map_err(errors::invalid)?;
        let actor = actor("actor", &r.actor)?;
        let id = validate::request_id(&r.header).map_err(errors::invalid)?;
        let lid = lookout.id.clone();
        let op = Op::PutLookout { lookout: Box::new(lookout), expected_version: r.expected_version, actor };
        let resp = ticket.run("put_lookout", self.ctx.write(id, op)).await?;
        match resp.outcome {
            Outcome::Lookout { version } => Ok(Response::new(pb::PutLookoutResponse { index: resp.index, version })),
            Outcome::LookoutConflict { current_version } => Err(conflict(&lid, r.expected_version, current_version)),
            other => Err(Status::internal(format!("put_lookout answered {other:?}"))),
        }
    }

    async fn retire_lookout(
        &self,
        req: Request<pb::RetireLookoutRequest>,
    ) -> Result<Response<pb::RetireLookoutResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let lid = wire::id("id", &r.id).map_err(errors::invalid)?;
        let actor = actor("actor", &r.actor)?;
        let id = validate::request_id(&r.header).map_err(errors::invalid)?;
        let op = Op::RetireLookout { id: lid.clone(), expected_version: r.expected_version, actor };
        let resp = ticket.run("retire_lookout", self.ctx.write(id, op)).await?;
        match resp.outcome {
            Outcome::Lookout { version } => Ok(Response::new(pb::RetireLookoutResponse { index: resp.index, version })),
            Outcome::LookoutConflict { current_version: 0 } => {
                Err(Status::not_found(format!("id: lookout {lid:?} does not exist")))
            }
            Outcome::LookoutConflict { current_version } => Err(conflict(&lid, r.expected_version, current_version)),
            other => Err(Status::internal(format!("retire_lookout answered {other:?}"))),
        }
    }

    async fn get_lookout(&self, req: Request<pb::GetLookoutRequest>) -> Result<Response<pb::GetLookoutResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let lid = wire::id("id", &r.id).map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("get_lookout", async {
                let header = self.ctx.read_fence(opts).await?;
                let reader = &self.ctx.node.reader;
                let Some((l, idx)) = reader.lookout(&lid).map_err(errors::store_error)? else {
                    return Err(Status::not_found(format!("id: lookout {lid:?} does not exist")));
                };
                let history = if r.with_history {
                    reader.lookout_history(&lid).map_err(errors::store_error)?.iter().map(|h| wire::lookout_to_pb(h, 0)).collect()
                } else {
                    vec![]
                };
                Ok(Response::new(pb::GetLookoutResponse {
                    header: Some(header),
                    lookout: Some(wire::lookout_to_pb(&l, idx)),
                    history,
                }))
            })
            .await
    }

    async fn list_lookouts(
        &self,
        req: Request<pb::ListLookoutsRequest>,
    ) -> Result<Response<pb::ListLookoutsResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        let categories = r
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| wire::category_from_pb(&format!("categories[{i}]"), *c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(errors::invalid)?;
        let limit = match r.limit {
            0 => 100,
            n if n as usize > self.ctx.limits.max_range_limit => {
                return Err(errors::invalid(wire::invalid(
                    "limit",
                    format!("{n} exceeds max_range_limit {}", self.ctx.limits.max_range_limit),
                )));
            }
            n => n as usize,
        };
        let after = if r.continuation.is_empty() {
            None
        } else {
            Some(String::from_utf8(r.continuation.clone()).map_err(|_| errors::invalid(wire::invalid("continuation", "not a token from this API")))?)
        };
        ticket
            .run("list_lookouts", async {
                let header = self.ctx.read_fence(opts).await?;
                let mut out = Vec::new();
                let mut cursor = after;
                let mut scanned = 0usize;
                let mut exhausted = false;
                while out.len() < limit && scanned < MAX_LIST_SCAN {
                    let page = self.ctx.node.reader.lookouts_page(cursor.as_deref(), 256).map_err(errors::store_error)?;
                    if page.is_empty() {
                        exhausted = true;
                        break;
                    }
                    for (l, idx) in page {
                        scanned += 1;
                        cursor = Some(l.id.clone());
                        let keep = (r.include_retired || !l.retired)
                            && (categories.is_empty() || categories.contains(&l.category))
                            && (r.valid_at_ms == 0 || l.is_active_at(r.valid_at_ms));
                        if keep {
                            out.push(wire::lookout_to_pb(&l, idx));
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
                let continuation = if exhausted { vec![] } else { cursor.map(String::into_bytes).unwrap_or_default() };
                Ok(Response::new(pb::ListLookoutsResponse { header: Some(header), lookouts: out, continuation }))
            })
            .await
    }

    async fn put_traveller(
        &self,
        req: Request<pb::PutTravellerRequest>,
    ) -> Result<Response<pb::PutTravellerResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let traveller = wire::traveller_from_pb("traveller", &r.traveller).map_err(errors::invalid)?;
        let id = validate::request_id(&r.header).map_err(errors::invalid)?;
        let resp = ticket.run("put_traveller", self.ctx.write(id, Op::PutTravellers { travellers: vec![traveller] })).await?;
        match resp.outcome {
            Outcome::Batch { versions } if versions.len() == 1 => {
                Ok(Response::new(pb::PutTravellerResponse { index: resp.index, version: versions[0] }))
            }
            other => Err(Status::internal(format!("put_traveller answered {other:?}"))),
        }
    }

    async fn get_traveller(
        &self,
        req: Request<pb::GetTravellerRequest>,
    ) -> Result<Response<pb::GetTravellerResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let tid = wire::id("id", &r.id).map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("get_traveller", async {
                let header = self.ctx.read_fence(opts).await?;
                match self.ctx.node.reader.traveller(&tid).map_err(errors::store_error)? {
                    Some(t) => Ok(Response::new(pb::GetTravellerResponse {
                        header: Some(header),
                        traveller: Some(wire::traveller_to_pb(&t)),
                    })),
                    None => Err(Status::not_found(format!("id: traveller {tid:?} does not exist"))),
                }
            })
            .await
    }

    async fn ingest_lookouts(
        &self,
        req: Request<tonic::Streaming<pb::IngestLookoutsRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let _slot = self.ctx.admission.admit(&req)?;
        let resp = ingest(
            &self.ctx,
            req.into_inner(),
            |_, m: &pb::IngestLookoutsRequest| {
                let id = m.lookout.as_ref().map(|l| l.id.clone()).unwrap_or_default();
                let l = wire::lookout_from_pb("lookout", &m.lookout).map_err(|e| (id.clone(), e))?;
                let a = wire::id("actor", &m.actor).map_err(|e| (id, e))?;
                Ok((l, a))
            },
            |lookouts, actor| Op::PutLookouts { lookouts, actor },
        )
        .await?;
        Ok(Response::new(resp))
    }

    async fn ingest_travellers(
        &self,
        req: Request<tonic::Streaming<pb::IngestTravellersRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let _slot = self.ctx.admission.admit(&req)?;
        let resp = ingest(
            &self.ctx,
            req.into_inner(),
            |_, m: &pb::IngestTravellersRequest| {
                let id = m.traveller.as_ref().map(|t| t.id.clone()).unwrap_or_default();
                let t = wire::traveller_from_pb("traveller", &m.traveller).map_err(|e| (id, e))?;
                Ok((t, String::new()))
            },
            |travellers, _| Op::PutTravellers { travellers },
        )
        .await?;
        Ok(Response::new(resp))
    }

    async fn screen(&self, req: Request<pb::ScreenRequest>) -> Result<Response<pb::ScreenResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        let identity = wire::identity_from_pb("identity", &r.identity).map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("screen", async {
                let header = self.ctx.read_fence(opts).await?;
                let _slot = self.ctx.admission.compute_slot().await?;
                let (decision, matches) = self.ctx.screen_identity(&identity, now_ms())?;
                Ok(Response::new(pb::ScreenResponse { header: Some(header), decision, matches }))
            })
            .await
    }

    async fn screen_manifest(
        &self,
        req: Request<pb::ScreenManifestRequest>,
    ) -> Result<Response<pb::ScreenManifestResponse>, Status> {
        let ticket = self.ctx.admission.admit(&req)?;
        let r = req.get_ref();
        if r.passengers.len() > MAX_MANIFEST_PASSENGERS {
            return Err(errors::invalid(wire::invalid(
                "passengers",
                format!("{} passengers exceeds {MAX_MANIFEST_PASSENGERS}", r.passengers.len()),
            )));
        }
        if r.passengers.is_empty() {
            return Err(errors::invalid(wire::invalid("passengers", "must not be empty")));
        }
        wire::itinerary_from_pb("flight", &r.flight).map_err(errors::invalid)?;
        let identities = r
            .passengers
            .iter()
            .enumerate()
            .map(|(i, p)| wire::identity_from_pb(&format!("passengers[{i}].identity"), &p.identity))
            .collect::<Result<Vec<_>, _>>()
            .map_err(errors::invalid)?;
        let opts = validate::read(&r.read).map_err(errors::invalid)?;
        ticket
            .run("screen_manifest", async {
                // One fence covers the whole manifest: every answer reflects at least it.
                let header = self.ctx.read_fence(opts).await?;
                let _slot = self.ctx.admission.compute_slot().await?;
                let now = now_ms();
                let mut out = pb::ScreenManifestResponse { header: Some(header), ..Default::default() };
                for (p, identity) in r.passengers.iter().zip(&identities) {
                    let (decision, matches) = self.ctx.screen_identity(identity, now)?;
                    if decision == pb::Decision::NoBoard as i32 {
                        out.no_board += 1;
                    } else if decision == pb::Decision::ReferSecondary as i32 {
                        out.refer_secondary += 1;
                    }
                    out.passengers.push(pb::PassengerDecision { reference: p.reference.clone(), decision, matches });
                }
                Ok(Response::new(out))
            })
            .await
    }
}
