//! Text → [`ClusterConfig`]: syntax, schema (missing / unknown / mistyped
//! fields) and semantic validation, every error located by line and field.
//!
//! The text is first deserialized into a span-carrying generic tree
//! ([`crate::tree`]), then walked by hand. Walking by hand (instead of a
//! `#[derive(Deserialize)]` with `deny_unknown_fields`) is what gives every
//! error a field path like `nodes[2].client_addr` in addition to a line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;

use crate::error::ErrorKind;
use crate::tree::{Kind, Span, Val};
use crate::{
    ClusterConfig, ClusterSection, ConfigError, Limits, MAX_KEY_BYTES_CAP, MAX_VALUE_BYTES_CAP,
    NodeConfig, RaftTiming, Site, SiteKind, Storage, defaults,
};

type Result<T> = std::result::Result<T, ConfigError>;

pub(crate) fn parse(text: &str, path: &Path) -> Result<ClusterConfig> {
    let cx = Cx { text, path };
    let doc: Val = toml::from_str(text).map_err(|e| cx.syntax(&e))?;
    let root = cx.table(&doc, String::new(), None)?;
    root.check_keys(&["cluster", "sites", "nodes", "raft", "limits", "storage"])?;

    // [cluster]
    let cluster_val = root.required("cluster")?;
    let ct = cx.table(cluster_val, "cluster".into(), root.span.clone())?;
    ct.check_keys(&["name", "preferred_site"])?;
    let name = ct.opt_str("name")?;
    if let Some(n) = &name
        && n.value.trim().is_empty()
    {
        return Err(ct.invalid(n, "name", ErrorKind::InvalidValue, "must not be empty"));
    }
    let preferred = ct.req_str("preferred_site")?;

    // [[sites]]
    let site_tables = cx.array_of_tables(root.required("sites")?, "sites", root.span.clone())?;
    let mut sites = Vec::new();
    let mut site_index: HashMap<String, (usize, Option<Span>)> = HashMap::new();
    for (i, st) in site_tables.iter().enumerate() {
        st.check_keys(&["name", "kind"])?;
        let name = st.req_str("name")?;
        if name.value.trim().is_empty() {
            return Err(st.invalid(&name, "name", ErrorKind::InvalidValue, "must not be empty"));
        }
        let kind = st.req_str("kind")?;
        let Some(k) = SiteKind::from_name(&kind.value) else {
            return Err(st.invalid(
                &kind,
                "kind",
                ErrorKind::InvalidValue,
                format!(
                    "unknown site kind `{}` (expected `datacenter` or `witness`)",
                    kind.value
                ),
            ));
        };
        if let Some((j, _)) = site_index.get(&name.value) {
            return Err(st.invalid(
                &name,
                "name",
                ErrorKind::Duplicate,
                format!(
                    "duplicate site `{}` (also declared by sites[{j}].name)",
                    name.value
                ),
            ));
        }
        site_index.insert(name.value.clone(), (i, name.span.clone()));
        sites.push(Site {
            name: name.value,
            kind: k,
        });
    }
    let declared = || {
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    match site_index.get(&preferred.value) {
        None => {
            return Err(ct.invalid(
                &preferred,
                "preferred_site",
                ErrorKind::UndeclaredSite,
                format!(
                    "site `{}` is not declared in [[sites]] (declared: {})",
                    preferred.value,
                    declared()
                ),
            ));
        }
        Some((i, _)) if sites[*i].kind != SiteKind::DataCenter => {
            return Err(ct.invalid(
                &preferred,
                "preferred_site",
                ErrorKind::InvalidValue,
                format!(
                    "site `{}` is a {} site; the preferred site must be a datacenter",
                    preferred.value, sites[*i].kind
                ),
            ));
        }
        Some(_) => {}
    }

    // [[nodes]]
    let nodes_val = root.required("nodes")?;
    let node_tables = cx.array_of_tables(nodes_val, "nodes", root.span.clone())?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut nodes = Vec::new();
    let mut ids: HashMap<u64, usize> = HashMap::new();
    let mut addrs: HashMap<SocketAddr, String> = HashMap::new();
    let mut dirs: HashMap<PathBuf, usize> = HashMap::new();
    let mut voter_spans: Vec<Option<Span>> = Vec::new();
    for (i, nt) in node_tables.iter().enumerate() {
        nt.check_keys(&[
            "id",
            "site",
            "peer_addr",
            "client_addr",
            "data_dir",
            "voter",
        ])?;
        let id = nt.req_u64("id")?;
        if id.value == 0 {
            return Err(nt.invalid(
                &id,
                "id",
                ErrorKind::InvalidValue,
                "node ids start at 1; 0 is reserved",
            ));
        }
        if let Some(j) = ids.get(&id.value) {
            return Err(nt.invalid(
                &id,
                "id",
                ErrorKind::Duplicate,
                format!(
                    "duplicate node id {} (also used by nodes[{j}].id)",
                    id.value
                ),
            ));
        }
        ids.insert(id.value, i);

        let site = nt.req_str("site")?;
        if !site_index.contains_key(&site.value) {
            return Err(nt.invalid(
                &site,
                "site",
                ErrorKind::UndeclaredSite,
                format!(
                    "site `{}` is not declared in [[sites]] (declared: {})",
                    site.value,
                    declared()
                ),
            ));
        }

        let mut node_addrs = Vec::new();
        for key in ["peer_addr", "client_addr"] {
            let raw = nt.req_str(key)?;
            let addr: SocketAddr = raw.value.trim().parse().map_err(|_| {
                nt.invalid(
                    &raw,
                    key,
                    ErrorKind::InvalidValue,
                    format!(
                        "`{}` is not an IP:port socket address (host names are not accepted)",
                        raw.value
                    ),
                )
            })?;
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(nt.invalid(
                    &raw,
                    key,
                    ErrorKind::InvalidValue,
                    format!(
                        "{addr} cannot be dialed: use a concrete IP address and a non-zero port"
                    ),
                ));
            }
            let here = nt.field(key);
            if let Some(other) = addrs.get(&addr) {
                return Err(nt.invalid(
                    &raw,
                    key,
                    ErrorKind::Duplicate,
                    format!("duplicate address {addr} (also used by {other})"),
                ));
            }
            addrs.insert(addr, here);
            node_addrs.push(addr);
        }

        let dir = nt.req_str("data_dir")?;
        if dir.value.trim().is_empty() {
            return Err(nt.invalid(
                &dir,
                "data_dir",
                ErrorKind::InvalidValue,
                "must not be empty",
            ));
        }
        let data_dir = base.join(&dir.value);
        if let Some(j) = dirs.get(&data_dir) {
            return Err(nt.invalid(
                &dir,
                "data_dir",
                ErrorKind::Duplicate,
                format!(
                    "duplicate data directory {} (also used by nodes[{j}].data_dir)",
                    data_dir.display()
                ),
            ));
        }
        dirs.insert(data_dir.clone(), i);

        let voter = nt.opt_bool("voter")?;
        voter_spans.push(
            voter
                .as_ref()
                .and_then(|v| v.span.clone())
                .or_else(|| nt.span.clone()),
        );
        nodes.push(NodeConfig {
            id: id.value,
            site: site.value,
            peer_addr: node_addrs[0],
            client_addr: node_addrs[1],
            data_dir,
            voter: voter.map_or(defaults::VOTER, |v| v.value),
        });
    }
    if !nodes.iter().any(|n| n.voter) {
        let span = voter_spans
            .first()
            .cloned()
            .flatten()
            .or_else(|| nodes_val.best_span());
        let field = if nodes.is_empty() {
            "nodes".to_owned()
        } else {
            "nodes[0].voter".to_owned()
        };
        return Err(cx.error(
            span.or(root.span.clone()),
            field,
            ErrorKind::Topology,
            "no voters: at least one node must have `voter = true`",
        ));
    }

    let raft = parse_raft(&cx, &root)?;
    let limits = parse_limits(&cx, &root)?;
    let storage = parse_storage(&cx, &root)?;

    Ok(ClusterConfig {
        path: path.to_owned(),
        cluster: ClusterSection {
            name: name.map_or_else(|| defaults::CLUSTER_NAME.to_owned(), |n| n.value),
            preferred_site: preferred.value,
        },
        sites,
        nodes,
        raft,
        limits,
        storage,
    })
}

fn parse_raft(cx: &Cx<'_>, root: &Tbl<'_>) -> Result<RaftTiming> {
    let d = RaftTiming::default();
    let Some(v) = root.get("raft") else {
        return Ok(d);
    };
    let t = cx.table(v, "raft".into(), root.span.clone())?;
    t.check_keys(&[
        "heartbeat_ms",
        "election_timeout_min_ms",
        "election_timeout_max_ms",
        "snapshot_logs_since_last",
        "logs_to_keep_after_snapshot",
        "max_payload_entries",
        "install_snapshot_timeout_ms",
    ])?;
    let hb = t.positive("heartbeat_ms", d.heartbeat_ms)?;
    let emin = t.positive("election_timeout_min_ms", d.election_timeout_min_ms)?;
    let emax = t.positive("election_timeout_max_ms", d.election_timeout_max_ms)?;
    if hb.value >= emin.value {
        let (blame, key) = blame(&emin, "election_timeout_min_ms", &hb, "heartbeat_ms");
        return Err(t.invalid(
            blame,
            key,
            ErrorKind::Timing,
            format!(
                "heartbeat_ms ({}) must be less than election_timeout_min_ms ({})",
                hb.value, emin.value
            ),
        ));
    }
    if emin.value >= emax.value {
        let (blame, key) = blame(
            &emax,
            "election_timeout_max_ms",
            &emin,
            "election_timeout_min_ms",
        );
        return Err(t.invalid(
            blame,
            key,
            ErrorKind::Timing,
            format!(
                "election_timeout_min_ms ({}) must be less than election_timeout_max_ms ({})",
                emin.value, emax.value
            ),
        ));
    }
    Ok(RaftTiming {
        heartbeat_ms: hb.value,
        election_timeout_min_ms: emin.value,
        election_timeout_max_ms: emax.value,
        snapshot_logs_since_last: t
            .positive("snapshot_logs_since_last", d.snapshot_logs_since_last)?
            .value,
        logs_to_keep_after_snapshot: t
            .opt_u64("logs_to_keep_after_snapshot")?
            .map_or(d.logs_to_keep_after_snapshot, |v| v.value),
        max_payload_entries: t
            .positive("max_payload_entries", d.max_payload_entries)?
            .value,
        install_snapshot_timeout_ms: t
            .positive("install_snapshot_timeout_ms", d.install_snapshot_timeout_ms)?
            .value,
    })
}

/// Which of two related fields an inconsistency is reported against: the
/// first if the file sets it, else the second (one of them must be set, or
/// the defaults, which are consistent, would apply).
fn blame<'a, T>(
    first: &'a Leaf<T>,
    first_key: &'static str,
    second: &'a Leaf<T>,
    second_key: &'static str,
) -> (&'a Leaf<T>, &'static str) {
    if first.span.is_some() || second.span.is_none() {
        (first, first_key)
    } else {
        (second, second_key)
    }
}

fn parse_limits(cx: &Cx<'_>, root: &Tbl<'_>) -> Result<Limits> {
    let d = Limits::default();
    let Some(v) = root.get("limits") else {
        return Ok(d);
    };
    let t = cx.table(v, "limits".into(), root.span.clone())?;
    t.check_keys(&[
        "max_key_bytes",
        "max_value_bytes",
        "request_deadline_ms",
        "max_in_flight",
        "max_range_limit",
        "dedup_window_ms",
    ])?;
    let key = t.positive_usize("max_key_bytes", d.max_key_bytes)?;
    if key.value > MAX_KEY_BYTES_CAP {
        return Err(t.invalid(
            &key,
            "max_key_bytes",
            ErrorKind::InvalidValue,
            format!(
                "{} exceeds the hard cap of {MAX_KEY_BYTES_CAP} bytes",
                key.value
            ),
        ));
    }
    let val = t.positive_usize("max_value_bytes", d.max_value_bytes)?;
    if val.value > MAX_VALUE_BYTES_CAP {
        return Err(t.invalid(
            &val,
            "max_value_bytes",
            ErrorKind::InvalidValue,
            format!(
                "{} exceeds the hard cap of {MAX_VALUE_BYTES_CAP} bytes",
                val.value
            ),
        ));
    }
    let deadline = t.positive("request_deadline_ms", d.request_deadline_ms)?;
    let dedup = t.positive("dedup_window_ms", d.dedup_window_ms)?;
    if dedup.value < deadline.value {
        let (blame, k) = blame(&dedup, "dedup_window_ms", &deadline, "request_deadline_ms");
        return Err(t.invalid(
            blame,
            k,
            ErrorKind::InvalidValue,
            format!(
                "dedup_window_ms ({}) must be at least request_deadline_ms ({}), or retries of a \
                 timed-out write could apply twice",
                dedup.value, deadline.value
            ),
        ));
    }
    Ok(Limits {
        max_key_bytes: key.value,
        max_value_bytes: val.value,
        request_deadline_ms: deadline.value,
        max_in_flight: t.positive_usize("max_in_flight", d.max_in_flight)?.value,
        max_range_limit: t
            .positive_usize("max_range_limit", d.max_range_limit)?
            .value,
        dedup_window_ms: dedup.value,
    })
}

fn parse_storage(cx: &Cx<'_>, root: &Tbl<'_>) -> Result<Storage> {
    let d = Storage::default();
    let Some(v) = root.get("storage") else {
        return Ok(d);
    };
    let t = cx.table(v, "storage".into(), root.span.clone())?;
    t.check_keys(&["cache_capacity_bytes"])?;
    Ok(Storage {
        cache_capacity_bytes: t
            .positive("cache_capacity_bytes", d.cache_capacity_bytes)?
            .value,
    })
}

/// The file being parsed: turns spans into lines and builds errors.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
}

/// A field value with its span (`None` when the default was used).
struct Leaf<T> {
    value: T,
    span: Option<Span>,
}

/// A TOML table being read, with the dotted path that leads to it.
struct Tbl<'a> {
    cx: &'a Cx<'a>,
    prefix: String,
    span: Option<Span>,
    entries: &'a [(String, Val)],
}

impl Cx<'_> {
    /// 1-based (line, column) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let mut offset = offset;
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn line(&self, span: Option<&Span>) -> usize {
        span.map_or(1, |s| self.position(s.start).0)
    }

    fn syntax(&self, e: &toml::de::Error) -> ConfigError {
        let (line, column) = e.span().map_or((1, 1), |s| self.position(s.start));
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError::Syntax {
            path: self.path.to_owned(),
            line,
            column,
            message,
        }
    }

    fn error(
        &self,
        span: Option<Span>,
        field: String,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span.as_ref()),
            field,
            kind,
            message: message.into(),
        }
    }

    /// `val` as a table at `prefix`; `fallback` locates it if it has no span.
    fn table<'a>(
        &'a self,
        val: &'a Val,
        prefix: String,
        fallback: Option<Span>,
    ) -> Result<Tbl<'a>> {
        let span = val.best_span().or(fallback);
        match &val.kind {
            Kind::Table(entries) => Ok(Tbl {
                cx: self,
                prefix,
                span,
                entries,
            }),
            other => Err(self.error(
                span,
                if prefix.is_empty() {
                    "<document>".into()
                } else {
                    prefix
                },
                ErrorKind::WrongType,
                format!("expected a table, found {}", other.describe()),
            )),
        }
    }

    /// `val` as an array of tables (`[[name]]` or `name = [{...}, ...]`).
    fn array_of_tables<'a>(
        &'a self,
        val: &'a Val,
        name: &str,
        fallback: Option<Span>,
    ) -> Result<Vec<Tbl<'a>>> {
        let span = val.best_span().or(fallback);
        let Kind::Array(items) = &val.kind else {
            return Err(self.error(
                span,
                name.to_owned(),
                ErrorKind::WrongType,
                format!(
                    "expected an array of tables ([[{name}]]), found {}",
                    val.kind.describe()
                ),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.table(item, format!("{name}[{i}]"), span.clone()))
            .collect()
    }
}

impl<'a> Tbl<'a> {
    fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Val> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Refuses the first key (in file order) not in `allowed`.
    fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        match self
            .entries
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, v)) => Err(self.cx.error(
                v.best_span().or(self.span.clone()),
                self.field(k),
                ErrorKind::UnknownField,
                format!(
                    "unknown field `{k}` (expected one of: {})",
                    allowed.join(", ")
                ),
            )),
        }
    }

    fn required(&self, key: &str) -> Result<&'a Val> {
        self.get(key).ok_or_else(|| {
            self.cx.error(
                self.span.clone(),
                self.field(key),
                ErrorKind::MissingField,
                format!("missing required field `{key}`"),
            )
        })
    }

    fn invalid<T>(
        &self,
        leaf: &Leaf<T>,
        key: &str,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> ConfigError {
        self.cx.error(
            leaf.span.clone().or(self.span.clone()),
            self.field(key),
            kind,
            message,
        )
    }

    fn wrong_type(&self, key: &str, v: &Val, expected: &str) -> ConfigError {
        self.cx.error(
            v.best_span().or(self.span.clone()),
            self.field(key),
            ErrorKind::WrongType,
            format!("expected {expected}, found {}", v.kind.describe()),
        )
    }

    fn opt_str(&self, key: &str) -> Result<Option<Leaf<String>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match &v.kind {
            Kind::Str(s) => Ok(Some(Leaf {
                value: s.clone(),
                span: v.best_span(),
            })),
            _ => Err(self.wrong_type(key, v, "a string")),
        }
    }

    fn req_str(&self, key: &str) -> Result<Leaf<String>> {
        self.required(key)?;
        Ok(self.opt_str(key)?.expect("present"))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<Leaf<bool>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match &v.kind {
            Kind::Bool(b) => Ok(Some(Leaf {
                value: *b,
                span: v.best_span(),
            })),
            _ => Err(self.wrong_type(key, v, "a boolean (true or false)")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<Leaf<u64>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match &v.kind {
            Kind::Int(i) => match u64::try_from(*i) {
                Ok(u) => Ok(Some(Leaf {
                    value: u,
                    span: v.best_span(),
                })),
                Err(_) => Err(self.cx.error(
                    v.best_span(),
                    self.field(key),
                    ErrorKind::InvalidValue,
                    format!("must not be negative (got {i})"),
                )),
            },
            _ => Err(self.wrong_type(key, v, "a non-negative integer")),
        }
    }

    fn req_u64(&self, key: &str) -> Result<Leaf<u64>> {
        self.required(key)?;
        Ok(self.opt_u64(key)?.expect("present"))
    }

    /// An optional integer that must be > 0 when given.
    fn positive(&self, key: &str, default: u64) -> Result<Leaf<u64>> {
        match self.opt_u64(key)? {
            None => Ok(Leaf {
                value: default,
                span: None,
            }),
            Some(l) if l.value == 0 => {
                Err(self.invalid(&l, key, ErrorKind::InvalidValue, "must be greater than 0"))
            }
            Some(l) => Ok(l),
        }
    }

    fn positive_usize(&self, key: &str, default: usize) -> Result<Leaf<usize>> {
        let l = self.positive(key, default as u64)?;
        match usize::try_from(l.value) {
            Ok(value) => Ok(Leaf {
                value,
                span: l.span,
            }),
            Err(_) => Err(self.invalid(
                &l,
                key,
                ErrorKind::InvalidValue,
                "too large for this platform",
            )),
        }
    }
}
