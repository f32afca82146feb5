//! The pure parts of the retry policy: the backoff schedule, how a status code is
//! classified, how a leader hint is read from a status, and endpoint normalisation.
//! Nothing here touches the network, so it is all unit-tested below.

use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataMap;

/// Metadata key carrying the leader's node id (decimal) on a redirecting `Unavailable`.
pub const LEADER_ID_KEY: &str = "lookout-leader-id";
/// Metadata key carrying the leader's client address (`host:port`).
pub const LEADER_ADDR_KEY: &str = "lookout-leader-addr";

/// Exponential backoff between attempts: the ceiling for retry `n` (0-based) is
/// `initial * multiplier^n`, capped at `max`; with jitter the actual delay is drawn
/// uniformly from `[ceiling / 2, ceiling]` ("equal jitter"), so concurrent clients
/// spread out but never retry sooner than half the schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The un-jittered delay before retry number `n` (0 = first retry).
    pub fn ceiling(&self, n: u32) -> Duration {
        let initial = self.initial.as_secs_f64();
        let max = self.max.as_secs_f64();
        let factor = self.multiplier.max(1.0).powi(n.min(64) as i32);
        let secs = (initial * factor).min(max);
        if secs.is_finite() && secs >= 0.0 {
            Duration::from_secs_f64(secs)
        } else {
            self.max
        }
    }

    /// The delay before retry `n`, given `unit` drawn uniformly from `[0, 1)`.
    /// Without jitter `unit` is ignored.
    pub fn delay_with(&self, n: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(n);
        if !self.jitter {
            return ceiling;
        }
        let unit = unit.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }

    /// The delay before retry `n`, with fresh randomness.
    pub fn delay(&self, n: u32) -> Duration {
        self.delay_with(n, rand::random::<f64>())
    }
}

/// What to do after an attempt failed with a given code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Return the error to the caller at once.
    Fatal,
    /// Retry after backoff on the same endpoint (the node is up but busy).
    RetrySame,
    /// Retry, preferably elsewhere: follow a leader hint if there is one, else try
    /// the next endpoint (the node is not the leader, down, or unreachable).
    RetryElsewhere,
}

/// Classifies a failed attempt's code.
///
/// - `Unavailable` (not leader, no leader, connection refused), `DeadlineExceeded`,
///   `Cancelled` (hyper reports a connection dropped mid-call this way) and
///   `Unknown` (unclassified transport failures) move on to another endpoint.
/// - `ResourceExhausted` (overloaded) and `Aborted` retry the same endpoint.
/// - Everything else (`InvalidArgument`, `FailedPrecondition`, `NotFound`,
///   `Internal`, `Unimplemented`, ...) is final.
///
/// Retrying a write is safe because it carries the same request id every time.
pub fn classify(code: Code) -> Disposition {
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            Disposition::RetryElsewhere
        }
        Code::ResourceExhausted | Code::Aborted => Disposition::RetrySame,
        _ => Disposition::Fatal,
    }
}

/// Where the node that refused a request says the leader is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's node id, if given.
    pub id: Option<u64>,
    /// The leader's client address, `host:port`, if given.
    pub addr: Option<String>,
}

impl LeaderHint {
    /// Reads `lookout-leader-id` / `lookout-leader-addr`; `None` if neither is
    /// present and well-formed (id 0 means "no leader" and is ignored).
    pub fn from_metadata(md: &MetadataMap) -> Option<LeaderHint> {
        let text = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let id = text(LEADER_ID_KEY)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|id| *id != 0);
        let addr = text(LEADER_ADDR_KEY).and_then(|a| normalize_endpoint(&a).ok());
        if id.is_none() && addr.is_none() {
            None
        } else {
            Some(LeaderHint { id, addr })
        }
    }

    /// Reads the hint from a status's metadata.
    pub fn from_status(status: &tonic::Status) -> Option<LeaderHint> {
        Self::from_metadata(status.metadata())
    }
}

impl std::fmt::Display for LeaderHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.id, &self.addr) {
            (Some(id), Some(addr)) => write!(f, "leader is node {id} at {addr}"),
            (Some(id), None) => write!(f, "leader is node {id}"),
            (None, Some(addr)) => write!(f, "leader is at {addr}"),
            (None, None) => write!(f, "leader unknown"),
        }
    }
}

/// Normalises an endpoint to `host:port`: trims, drops an `http://` prefix and a
/// trailing `/`. Rejects `https://` (no TLS support) and anything with a path.
pub fn normalize_endpoint(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let s = s.strip_prefix("http://").unwrap_or(s);
    if s.contains("://") {
        return Err(format!(
            "endpoint {raw:?}: only plain http:// (host:port) is supported"
        ));
    }
    let s = s.trim_end_matches('/');
    if s.is_empty() {
        return Err("empty endpoint".to_string());
    }
    if s.contains('/') || s.chars().any(char::is_whitespace) {
        return Err(format!("endpoint {raw:?} is not host:port"));
    }
    // host:port, [v6]:port
    let port = s.rsplit_once(':').map(|(_, p)| p);
    match port {
        Some(p) if !p.is_empty() && p.parse::<u16>().is_ok() && !s.ends_with("]") => {}
        _ => return Err(format!("endpoint {raw:?} has no port (expected host:port)")),
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    #[test]
    fn backoff_ceiling_doubles_and_caps() {
        let b = Backoff {
            jitter: false,
            ..Backoff::default()
        };
        let ms: Vec<u128> = (0..9).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ms, vec![10, 20, 40, 80, 160, 320, 500, 500, 500]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(500));
        assert_eq!(b.delay(3), Duration::from_millis(80));
    }

    #[test]
    fn backoff_jitter_stays_in_upper_half() {
        let b = Backoff::default();
        assert_eq!(b.delay_with(2, 0.0), Duration::from_millis(20));
        assert_eq!(b.delay_with(2, 1.0), Duration::from_millis(40));
        assert_eq!(b.delay_with(10, 0.5), Duration::from_millis(375));
        for n in 0..20 {
            let d = b.delay(n);
            assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "{n}: {d:?}");
        }
    }

    #[test]
    fn backoff_multiplier_below_one_is_constant() {
        let b = Backoff {
            multiplier: 0.5,
            jitter: false,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(5), Duration::from_millis(10));
    }

    #[test]
    fn classification() {
        use Disposition::*;
        assert_eq!(classify(Code::Unavailable), RetryElsewhere);
        assert_eq!(classify(Code::DeadlineExceeded), RetryElsewhere);
        assert_eq!(classify(Code::Cancelled), RetryElsewhere);
        assert_eq!(classify(Code::Unknown), RetryElsewhere);
        assert_eq!(classify(Code::ResourceExhausted), RetrySame);
        assert_eq!(classify(Code::Aborted), RetrySame);
        for c in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::Internal,
            Code::DataLoss,
            Code::OutOfRange,
        ] {
            assert_eq!(classify(c), Fatal, "{c:?}");
        }
    }

    fn status_with(pairs: &[(&'static str, &'static str)]) -> tonic::Status {
        let mut s = tonic::Status::unavailable("not leader");
        for (k, v) in pairs {
            s.metadata_mut().insert(*k, MetadataValue::from_static(v));
        }
        s
    }

    #[test]
    fn leader_hint_parsing() {
        let s = status_with(&[(LEADER_ID_KEY, "2"), (LEADER_ADDR_KEY, "127.0.0.1:7102")]);
        assert_eq!(
            LeaderHint::from_status(&s),
            Some(LeaderHint {
                id: Some(2),
                addr: Some("127.0.0.1:7102".into())
            })
        );
        let s = status_with(&[(LEADER_ADDR_KEY, " http://10.0.0.1:7000/ ")]);
        assert_eq!(
            LeaderHint::from_status(&s),
            Some(LeaderHint {
                id: None,
                addr: Some("10.0.0.1:7000".into())
            })
        );
        let s = status_with(&[(LEADER_ID_KEY, "3")]);
        assert_eq!(
            LeaderHint::from_status(&s),
            Some(LeaderHint {
                id: Some(3),
                addr: None
            })
        );
        // Malformed or "no leader" values are ignored.
        assert_eq!(LeaderHint::from_status(&status_with(&[])), None);
        assert_eq!(
            LeaderHint::from_status(&status_with(&[(LEADER_ID_KEY, "0")])),
            None
        );
        assert_eq!(
            LeaderHint::from_status(&status_with(&[(LEADER_ID_KEY, "x")])),
            None
        );
        assert_eq!(
            LeaderHint::from_status(&status_with(&[(LEADER_ADDR_KEY, "")])),
            None
        );
        assert_eq!(
            LeaderHint::from_status(&status_with(&[(LEADER_ADDR_KEY, "nohost")])),
            None
        );
    }

    #[test]
    fn leader_hint_display() {
        let h = LeaderHint {
            id: Some(2),
            addr: Some("a:1".into()),
        };
        assert_eq!(h.to_string(), "leader is node 2 at a:1");
        assert_eq!(LeaderHint::default().to_string(), "leader unknown");
    }

    #[test]
    fn endpoint_normalisation() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:7001").unwrap(),
            "127.0.0.1:7001"
        );
        assert_eq!(normalize_endpoint(" http://h:1/ ").unwrap(), "h:1");
        assert_eq!(normalize_endpoint("[::1]:7001").unwrap(), "[::1]:7001");
        assert_eq!(normalize_endpoint("localhost:80").unwrap(), "localhost:80");
        assert!(normalize_endpoint("https://h:1").is_err());
        assert!(normalize_endpoint("").is_err());
        assert!(normalize_endpoint("h").is_err());
        assert!(normalize_endpoint("h:").is_err());
        assert!(normalize_endpoint("h:99999").is_err());
        assert!(normalize_endpoint("[::1]").is_err());
        assert!(normalize_endpoint("h:1/x").is_err());
    }
}
