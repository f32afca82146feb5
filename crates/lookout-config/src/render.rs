//! [`ClusterConfig::to_toml`](crate::ClusterConfig::to_toml) and the hash
//! behind [`ClusterConfig::fingerprint`](crate::ClusterConfig::fingerprint).

use crate::ClusterConfig;

/// A TOML basic string with all necessary escapes.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

pub(crate) fn to_toml(c: &ClusterConfig) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("# Lookout cluster configuration (canonical form rendered by lookout-config).".into());
    line(String::new());
    line("[cluster]".into());
    line(format!("name = {}", quote(&c.cluster.name)));
    line(format!(
        "preferred_site = {}",
        quote(&c.cluster.preferred_site)
    ));
    for s in &c.sites {
        line(String::new());
        line("[[sites]]".into());
        line(format!("name = {}", quote(&s.name)));
        line(format!("kind = {}", quote(s.kind.as_str())));
    }
    for n in &c.nodes {
        line(String::new());
        line("[[nodes]]".into());
        line(format!("id = {}", n.id));
        line(format!("site = {}", quote(&n.site)));
        line(format!("peer_addr = {}", quote(&n.peer_addr.to_string())));
        line(format!(
            "client_addr = {}",
            quote(&n.client_addr.to_string())
        ));
        line(format!(
            "data_dir = {}",
            quote(&n.data_dir.to_string_lossy())
        ));
        line(format!("voter = {}", n.voter));
    }
    let r = &c.raft;
    line(String::new());
    line("[raft]".into());
    line(format!("heartbeat_ms = {}", r.heartbeat_ms));
    line(format!(
        "election_timeout_min_ms = {}",
        r.election_timeout_min_ms
    ));
    line(format!(
        "election_timeout_max_ms = {}",
        r.election_timeout_max_ms
    ));
    line(format!(
        "snapshot_logs_since_last = {}",
        r.snapshot_logs_since_last
    ));
    line(format!(
        "logs_to_keep_after_snapshot = {}",
        r.logs_to_keep_after_snapshot
    ));
    line(format!("max_payload_entries = {}", r.max_payload_entries));
    line(format!(
        "install_snapshot_timeout_ms = {}",
        r.install_snapshot_timeout_ms
    ));
    let l = &c.limits;
    line(String::new());
    line("[limits]".into());
    line(format!("max_key_bytes = {}", l.max_key_bytes));
    line(format!("max_value_bytes = {}", l.max_value_bytes));
    line(format!("request_deadline_ms = {}", l.request_deadline_ms));
    line(format!("max_in_flight = {}", l.max_in_flight));
    line(format!("max_range_limit = {}", l.max_range_limit));
    line(format!("dedup_window_ms = {}", l.dedup_window_ms));
    line(String::new());
    line("[storage]".into());
    line(format!(
        "cache_capacity_bytes = {}",
        c.storage.cache_capacity_bytes
    ));
    o
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv_known_vectors() {
        assert_eq!(super::fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(super::fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(super::fnv1a64(b"foobar"), 0x85944171f73967e8);
    }
}
