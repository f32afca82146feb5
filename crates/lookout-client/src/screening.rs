//! The `lookout.v1.Screening` API: lookout (watch-list) and traveller records,
//! screening, and bulk ingest.
//!
//! Unary calls behave exactly like the key-value calls: writes go to the leader
//! (following `lookout-leader-addr` hints) and carry one request id reused on
//! every retry; reads go to any endpoint with the consistency asked for; every
//! call is bounded by [`ClientOptions::deadline`](crate::ClientOptions::deadline).
//!
//! Bulk ingest is one client-streaming call to the leader. The client finds the
//! leader first (node status), then streams. It redirects or retries only while
//! no record of the stream has been handed to the transport yet; once one has,
//! a failure is returned as is (the message says how many records had been
//! sent), because the leader may already have committed some of them and the
//! stream cannot be replayed. Re-ingesting the same records is harmless (a put
//! replaces a record with the same content), so a caller that keeps its input
//! can simply send it again.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

use std::future::Future;

use crate::Client;
use crate::ClientError;
use crate::LeaderHint;
use crate::ReadOpts;
use crate::new_request_id;
use crate::proto;
use crate::request;
use crate::retry;
use crate::retry::Disposition;
use proto::screening_client::ScreeningClient;

/// Most passengers the server accepts in one `ScreenManifest` call.
pub const MAX_MANIFEST_PASSENGERS: usize = 1000;

/// Metadata key of the stored version on a version conflict (`FailedPrecondition`).
pub const CURRENT_VERSION_KEY: &str = "lookout-current-version";

/// Which lookouts [`Client::list_lookouts`] returns. The default lists every
/// non-retired lookout of every category.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookoutFilter {
    /// Empty = all categories.
    pub categories: Vec<proto::Category>,
    /// Only lookouts valid at this unix ms (`None` = do not filter on validity).
    pub valid_at_ms: Option<u64>,
    /// Also list retired lookouts.
    pub include_retired: bool,
}

/// A bulk-ingest input stream shared between attempts: an attempt that failed
/// before taking any record leaves it intact for the next one.
type Source<T> = Arc<Mutex<Pin<Box<dyn Stream<Item = T> + Send>>>>;

/// One attempt's view of the shared input: counts what the transport took.
struct Feed<T> {
    source: Source<T>,
    sent: Arc<AtomicU64>,
}

impl<T> Stream for Feed<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let next = source.as_mut().poll_next(cx);
        if let Poll::Ready(Some(_)) = &next {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        next
    }
}

fn write_header() -> Option<proto::WriteHeader> {
    Some(proto::WriteHeader {
        request_id: new_request_id(),
    })
}

impl Client {
    fn screening(&self, ch: Channel) -> ScreeningClient<Channel> {
        ScreeningClient::new(ch)
            .max_decoding_message_size(self.inner.opts.max_response_bytes)
            .max_encoding_message_size(usize::MAX)
    }

    /// Creates or replaces a lookout. `expected_version`: `None` = create or
    /// replace; `Some(0)` = create only; `Some(n)` = replace only if the stored
    /// version is `n`. A conflict is `FailedPrecondition`, with the stored
    /// version in [`ClientError::current_version`]. The store sets the version,
    /// authorship (`actor`) and retirement; those fields of `lookout` are ignored.
    pub async fn put_lookout(
        &self,
        lookout: proto::Lookout,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<proto::PutLookoutResponse, ClientError> {
        let msg = proto::PutLookoutRequest {
            header: write_header(),
            lookout: Some(lookout),
            expected_version,
            actor: actor.to_string(),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.put_lookout(request(msg, t)).await }
        })
        .await
    }

    /// Retires a lookout (it stays readable, with its history, but never matches
    /// again). `NotFound` if it does not exist; a version mismatch is
    /// `FailedPrecondition` as for [`Client::put_lookout`].
    pub async fn retire_lookout(
        &self,
        id: &str,
        expected_version: Option<u64>,
        actor: &str,
    ) -> Result<proto::RetireLookoutResponse, ClientError> {
        let msg = proto::RetireLookoutRequest {
            header: write_header(),
            id: id.to_string(),
            expected_version,
            actor: actor.to_string(),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.retire_lookout(request(msg, t)).await }
        })
        .await
    }

    /// Reads a lookout (`NotFound` if it does not exist); with `with_history`,
    /// also every earlier version, oldest first.
    pub async fn get_lookout(
        &self,
        id: &str,
        with_history: bool,
        read: ReadOpts,
    ) -> Result<proto::GetLookoutResponse, ClientError> {
        let msg = proto::GetLookoutRequest {
            read: Some(read.to_proto()),
            id: id.to_string(),
            with_history,
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.get_lookout(request(msg, t)).await }
        })
        .await
    }

    /// One page of lookouts in id order. `limit` 0 = the server default (100);
    /// `continuation` is empty for the first page, else the previous page's
    /// token; the response's token is empty on the last page.
    pub async fn list_lookouts(
        &self,
        filter: &LookoutFilter,
        limit: u32,
        continuation: Vec<u8>,
        read: ReadOpts,
    ) -> Result<proto::ListLookoutsResponse, ClientError> {
        let msg = proto::ListLookoutsRequest {
            read: Some(read.to_proto()),
            categories: filter.categories.iter().map(|c| *c as i32).collect(),
            valid_at_ms: filter.valid_at_ms.unwrap_or(0),
            include_retired: filter.include_retired,
            limit,
            continuation,
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.list_lookouts(request(msg, t)).await }
        })
        .await
    }

    /// Every lookout matching `filter`, following continuation tokens with pages
    /// of `page_size` (0 = server default). Each page is its own call (own
    /// deadline); pages may reflect different indexes.
    pub async fn list_lookouts_all(
        &self,
        filter: &LookoutFilter,
        page_size: u32,
        read: ReadOpts,
    ) -> Result<Vec<proto::Lookout>, ClientError> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = self.list_lookouts(filter, page_size, token, read).await?;
            out.extend(page.lookouts);
            if page.continuation.is_empty() {
                return Ok(out);
            }
            token = page.continuation;
        }
    }

    /// Creates or replaces a traveller record.
    pub async fn put_traveller(
        &self,
        traveller: proto::Traveller,
    ) -> Result<proto::PutTravellerResponse, ClientError> {
        let msg = proto::PutTravellerRequest {
            header: write_header(),
            traveller: Some(traveller),
        };
        self.execute(true, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.put_traveller(request(msg, t)).await }
        })
        .await
    }

    /// Reads a traveller record (`NotFound` if it does not exist).
    pub async fn get_traveller(
        &self,
        id: &str,
        read: ReadOpts,
    ) -> Result<proto::GetTravellerResponse, ClientError> {
        let msg = proto::GetTravellerRequest {
            read: Some(read.to_proto()),
            id: id.to_string(),
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.get_traveller(request(msg, t)).await }
        })
        .await
    }

    /// Screens one identity: the decision and the matching lookouts, best first.
    /// The read header says which applied index the answer reflects.
    pub async fn screen(
        &self,
        identity: proto::Identity,
        read: ReadOpts,
    ) -> Result<proto::ScreenResponse, ClientError> {
        let msg = proto::ScreenRequest {
            read: Some(read.to_proto()),
            identity: Some(identity),
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.screen(request(msg, t)).await }
        })
        .await
    }

    /// Screens a flight's passengers in one call (at most
    /// [`MAX_MANIFEST_PASSENGERS`]); every answer reflects the same read fence.
    pub async fn screen_manifest(
        &self,
        flight: Option<proto::Itinerary>,
        passengers: Vec<proto::ManifestPassenger>,
        read: ReadOpts,
    ) -> Result<proto::ScreenManifestResponse, ClientError> {
        let msg = proto::ScreenManifestRequest {
            read: Some(read.to_proto()),
            flight,
            passengers,
        };
        self.execute(false, |ch, t| {
            let msg = msg.clone();
            let mut s = self.screening(ch);
            async move { s.screen_manifest(request(msg, t)).await }
        })
        .await
    }

    /// Bulk-writes lookouts in one client-streaming call to the leader. Each
    /// record is validated on its own: bad ones are counted and listed in the
    /// response by 0-based stream position, the rest are written in batches. An
    /// iterator can be passed as `futures::stream::iter(records)`.
    ///
    /// Bounded by [`ClientOptions::ingest_deadline`](crate::ClientOptions::ingest_deadline)
    /// (none by default), not by the per-call deadline, which bounds only finding
    /// the leader. See the module documentation for what is retried.
    pub async fn ingest_lookouts<S>(&self, records: S) -> Result<proto::IngestResponse, ClientError>
    where
        S: Stream<Item = proto::IngestLookoutsRequest> + Send + 'static,
    {
        self.ingest(
            records,
            |mut s, req| async move { s.ingest_lookouts(req).await },
        )
        .await
    }

    /// Bulk-writes traveller records; as [`Client::ingest_lookouts`].
    pub async fn ingest_travellers<S>(
        &self,
        records: S,
    ) -> Result<proto::IngestResponse, ClientError>
    where
        S: Stream<Item = proto::IngestTravellersRequest> + Send + 'static,
    {
        self.ingest(records, |mut s, req| async move {
            s.ingest_travellers(req).await
        })
        .await
    }

    /// The leader's client address, from the nodes' statuses, retried with
    /// backoff (an election may be under way) within the call deadline.
    pub async fn discover_leader(&self) -> Result<String, ClientError> {
        let opts = &self.inner.opts;
        if opts.pin_endpoint {
            return Ok(self.pick());
        }
        let deadline = Instant::now() + opts.deadline;
        let mut backoffs = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let found = match tokio::time::timeout(remaining, self.leader_status()).await {
                Ok(Ok(s)) => {
                    let addr = if s.client_addr.is_empty() {
                        s.leader_client_addr.clone()
                    } else {
                        s.client_addr.clone()
                    };
                    match retry::normalize_endpoint(&addr) {
                        Ok(addr) => Ok(addr),
                        Err(e) => Err(ClientError::config(format!(
                            "leader {} reports an unusable client address: {e}",
                            s.id
                        ))),
                    }
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ClientError::Status {
                    status: crate::deadline_status(opts.deadline),
                    leader: None,
                    endpoint: self.pick(),
                    attempts: backoffs + 1,
                }),
            };
            let last = match found {
                Ok(addr) => {
                    self.note_leader(&addr);
                    return Ok(addr);
                }
                Err(e @ ClientError::Config(_)) => return Err(e),
                Err(e) => e,
            };
            let now = Instant::now();
            let pause = opts
                .backoff
                .delay(backoffs)
                .min(deadline.saturating_duration_since(now) / 2);
            if now >= deadline || pause < Duration::from_millis(1) {
                return Err(last);
            }
            backoffs += 1;
            tokio::time::sleep(pause).await;
        }
    }

    /// One client-streaming call to the leader; see the module documentation.
    async fn ingest<T, S, F, Fut>(
        &self,
        records: S,
        mut call: F,
    ) -> Result<proto::IngestResponse, ClientError>
    where
        T: Send + 'static,
        S: Stream<Item = T> + Send + 'static,
        F: FnMut(ScreeningClient<Channel>, tonic::Request<Feed<T>>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<proto::IngestResponse>, tonic::Status>>,
    {
        let opts = self.inner.opts.clone();
        let source: Source<T> = Arc::new(Mutex::new(Box::pin(records)));
        let sent = Arc::new(AtomicU64::new(0));
        // Redirects (before any record went out) are bounded by the call deadline.
        let redirect_deadline = Instant::now() + opts.deadline;
        let mut target = self.discover_leader().await?;
        let mut attempts: u32 = 0;
        let mut backoffs: u32 = 0;
        loop {
            attempts += 1;
            let channel = self.inner.channels.get(&target)?;
            let mut req = tonic::Request::new(Feed {
                source: source.clone(),
                sent: sent.clone(),
            });
            if let Some(d) = opts.ingest_deadline {
                req.set_timeout(d);
            }
            let outcome = match opts.ingest_deadline {
                Some(d) => tokio::time::timeout(d, call(self.screening(channel), req))
                    .await
                    .unwrap_or_else(|_| Err(crate::deadline_status(d))),
                None => call(self.screening(channel), req).await,
            };
            let status = match outcome {
                Ok(resp) => {
                    if !opts.pin_endpoint {
                        self.note_leader(&target);
                    }
                    return Ok(resp.into_inner());
                }
                Err(status) => status,
            };
            let hint = LeaderHint::from_status(&status);
            let n = sent.load(Ordering::Relaxed);
            let disposition = retry::classify(status.code());
            let retryable = n == 0
                && disposition != Disposition::Fatal
                && attempts <= opts.max_retries
                && Instant::now() < redirect_deadline
                && !(opts.pin_endpoint && status.code() == Code::Unavailable && hint.is_some());
            if !retryable {
                let status = if n == 0 {
                    status
                } else {
                    let message = format!(
                        "{} (the ingest stream failed after {n} records had been sent; it was not \
                         retried, since the leader may have committed some of them)",
                        status.message()
                    );
                    tonic::Status::with_metadata(status.code(), message, status.metadata().clone())
                };
                return Err(ClientError::Status {
                    status,
                    leader: hint,
                    endpoint: target,
                    attempts,
                });
            }
            // Nothing was sent: go where the refusal points, or find the leader again.
            match (&hint, disposition) {
                (
                    Some(LeaderHint {
                        addr: Some(addr), ..
                    }),
                    Disposition::RetryElsewhere,
                ) if !opts.pin_endpoint && *addr != target => {
                    let addr = addr.clone();
                    self.follow_hint(&target, hint.as_ref().expect("matched"));
                    target = addr;
                    continue;
                }
                _ => {}
            }
            let now = Instant::now();
            let pause = opts
                .backoff
                .delay(backoffs)
                .min(redirect_deadline.saturating_duration_since(now) / 2);
            backoffs += 1;
            tokio::time::sleep(pause).await;
            if disposition == Disposition::RetryElsewhere && !opts.pin_endpoint {
                self.rotate_from(&target);
                target = match self.discover_leader().await {
                    Ok(addr) => addr,
                    Err(_) => self.pick(),
                };
            }
        }
    }
}

impl ClientError {
    /// On a version conflict (`FailedPrecondition` from a put or retire with an
    /// expected version), the version actually stored (0 = the record does not exist).
    pub fn current_version(&self) -> Option<u64> {
        self.status()?
            .metadata()
            .get(CURRENT_VERSION_KEY)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// True for a version conflict (see [`ClientError::current_version`]).
    pub fn is_version_conflict(&self) -> bool {
        self.code() == Some(Code::FailedPrecondition) && self.current_version().is_some()
    }

    /// True when the record asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn conflict_metadata_is_read() {
        let mut s = tonic::Status::failed_precondition(
            "expected_version 1 but lookout \"L\" is at version 3",
        );
        s.metadata_mut()
            .insert(CURRENT_VERSION_KEY, "3".parse().unwrap());
        let e = ClientError::Status {
            status: s,
            leader: None,
            endpoint: "h:1".into(),
            attempts: 1,
        };
        assert_eq!(e.current_version(), Some(3));
        assert!(e.is_version_conflict());
        assert!(!e.is_not_found());
        let e = ClientError::Status {
            status: tonic::Status::not_found("id: lookout \"L\" does not exist"),
            leader: None,
            endpoint: "h:1".into(),
            attempts: 1,
        };
        assert_eq!(e.current_version(), None);
        assert!(!e.is_version_conflict());
        assert!(e.is_not_found());
    }

    #[tokio::test]
    async fn feed_counts_and_leaves_the_rest_for_the_next_attempt() {
        let source: Source<u32> = Arc::new(Mutex::new(Box::pin(futures::stream::iter(0..5))));
        let sent = Arc::new(AtomicU64::new(0));
        let mut a = Feed {
            source: source.clone(),
            sent: sent.clone(),
        };
        assert_eq!(a.next().await, Some(0));
        assert_eq!(a.next().await, Some(1));
        drop(a);
        assert_eq!(sent.load(Ordering::Relaxed), 2);
        let b = Feed {
            source,
            sent: sent.clone(),
        };
        assert_eq!(b.collect::<Vec<_>>().await, vec![2, 3, 4]);
        assert_eq!(sent.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn default_filter_lists_everything_live() {
        let f = LookoutFilter::default();
        assert!(f.categories.is_empty());
        assert_eq!(f.valid_at_ms, None);
        assert!(!f.include_retired);
    }
}
