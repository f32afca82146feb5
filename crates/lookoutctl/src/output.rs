//! Everything lookoutctl prints: tables and text for people, JSON for machines.
//! Command logic builds the values; this module only renders them.

use std::io::IsTerminal;
use std::io::Write;

use comfy_table::Cell;
use comfy_table::CellAlignment;
use comfy_table::ContentArrangement;
use comfy_table::Table;
use lookout_client::ClientError;
use lookout_client::CompareAndSwapResponse;
use lookout_client::Consistency;
use lookout_client::DeleteResponse;
use lookout_client::GetResponse;
use lookout_client::KeyValue;
use lookout_client::MembershipResponse;
use lookout_client::NodeStatus;
use lookout_client::PutResponse;
use lookout_client::ReadHeader;
use lookout_client::Role;
use lookout_client::proto;
use serde_json::Value;
use serde_json::json;

/// Renders results as text (default) or JSON (`--json`).
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

// ---------------------------------------------------------------- helpers

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses hex (as printed by [`hex`]).
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return Err(format!("{s:?} is not hex (odd length)"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("{s:?} is not hex")))
        .collect()
}

/// Bytes for display: the text if it is UTF-8, else `0x` and hex.
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => format!("0x{}", hex(b)),
    }
}

/// Adds `name: "text"` if `b` is UTF-8, else `name_hex: "..."`.
fn put_bytes(obj: &mut serde_json::Map<String, Value>, name: &str, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => obj.insert(name.to_string(), Value::String(s.to_string())),
        Err(_) => obj.insert(format!("{name}_hex"), Value::String(hex(b))),
    };
}

pub fn role_name(role: i32) -> &'static str {
    match Role::try_from(role).unwrap_or(Role::Unknown) {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
        Role::Unknown => "unknown",
    }
}

fn consistency_name(c: i32) -> &'static str {
    proto::Consistency::try_from(c)
        .map(|c| Consistency::from_proto(c).name())
        .unwrap_or("unknown")
}

fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(Cell::new));
    t
}

/// Right-aligns the given columns (numbers).
fn right(t: &mut Table, cols: &[usize]) {
    for &i in cols {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn print_table(t: &Table) {
    // comfy-table pads every line; trailing spaces are noise in a terminal.
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values always serialise")
    );
}

fn dash(n: u64) -> String {
    if n == 0 {
        "-".to_string()
    } else {
        n.to_string()
    }
}

fn kv_json(kv: &KeyValue) -> Value {
    let mut o = serde_json::Map::new();
    put_bytes(&mut o, "key", &kv.key);
    put_bytes(&mut o, "value", &kv.value);
    o.insert("version".into(), kv.version.into());
    o.insert("create_index".into(), kv.create_index.into());
    o.insert("mod_index".into(), kv.mod_index.into());
    Value::Object(o)
}

fn header_json(h: Option<&ReadHeader>) -> Value {
    match h {
        Some(h) => json!({
            "applied_index": h.applied_index,
            "consistency": consistency_name(h.consistency),
            "staleness_ms": h.staleness_ms,
            "served_by": h.served_by,
        }),
        None => Value::Null,
    }
}

fn header_text(h: Option<&ReadHeader>) -> String {
    match h {
        Some(h) => {
            let mut s = format!(
                "read at applied index {} on node {} ({})",
                h.applied_index,
                h.served_by,
                consistency_name(h.consistency)
            );
            if h.consistency == proto::Consistency::Stale as i32 {
                s.push_str(&format!(", at most {} ms stale", h.staleness_ms));
            }
            s
        }
        None => "read header missing".to_string(),
    }
}

// ---------------------------------------------------------------- errors

/// A failure as JSON: `{"error": {...}}`.
pub fn error_json(err: &crate::CtlError) -> Value {
    match err {
        crate::CtlError::Client(e) => {
            let hint = e.leader_hint();
            let mut o = json!({
                "code": e.code_name(),
                "message": e.message(),
                "endpoint": e.endpoint(),
                "leader_id": hint.and_then(|h| h.id),
                "leader_addr": hint.and_then(|h| h.addr.clone()),
            });
            if let Some(v) = e.current_version() {
                o["current_version"] = v.into();
            }
            json!({ "error": o })
        }
        crate::CtlError::Other(msg) => json!({ "error": { "code": "Error", "message": msg } }),
    }
}

/// Describes a failure: on stderr as one line, and with `--json` also as an
/// object on stdout.
pub fn error(out: Output, err: &crate::CtlError) {
    if out.json {
        print_json(&error_json(err));
    }
    eprintln!("error: {err}");
}

pub fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

// ---------------------------------------------------------------- status

/// One endpoint's line in `status`.
pub struct StatusRow {
    pub endpoint: String,
    /// Id and site of the config node with this client address, if any.
    pub declared: Option<(u64, String)>,
    pub result: Result<NodeStatus, ClientError>,
}

/// `code: message` of an error, without the endpoint (shown in its own column).
fn short_error(e: &ClientError) -> String {
    format!("{}: {}", e.code_name(), e.message())
}

pub fn status(out: Output, rows: &[StatusRow]) {
    if out.json {
        let arr: Vec<Value> = rows
            .iter()
            .map(|r| match &r.result {
                Ok(s) => json!({
                    "endpoint": r.endpoint,
                    "id": s.id,
                    "site": s.site,
                    "role": role_name(s.role),
                    "term": s.term,
                    "last_log_index": s.last_log_index,
                    "applied_index": s.applied_index,
                    "committed_index": s.committed_index,
                    "snapshot_index": s.snapshot_index,
                    "purged_index": s.purged_index,
                    "leader": s.leader,
                    "leader_client_addr": s.leader_client_addr,
                    "digest": s.digest,
                    "format_version": s.format_version,
                    "build_version": s.build_version,
                    "client_addr": s.client_addr,
                    "voters": s.voters,
                    "learners": s.learners,
                    "keys": s.keys,
                    "reachable": true,
                }),
                Err(e) => json!({
                    "endpoint": r.endpoint,
                    "id": r.declared.as_ref().map(|d| d.0),
                    "site": r.declared.as_ref().map(|d| d.1.clone()),
                    "reachable": false,
                    "error": { "code": e.code_name(), "message": e.message() },
                }),
            })
            .collect();
        print_json(&Value::Array(arr));
        return;
    }
    let any_err = rows.iter().any(|r| r.result.is_err());
    let mut headers = vec![
        "ID",
        "SITE",
        "ROLE",
        "TERM",
        "LAST LOG",
        "APPLIED",
        "COMMITTED",
        "LEADER",
        "DIGEST",
        "FORMAT",
        "BUILD",
        "ADDRESS",
    ];
    if any_err {
        headers.push("ERROR");
    }
    let mut t = table(&headers);
    for r in rows {
        match &r.result {
            Ok(s) => {
                let digest: String = s.digest.chars().take(12).collect();
                t.add_row(vec![
                    s.id.to_string(),
                    s.site.clone(),
                    role_name(s.role).to_string(),
                    s.term.to_string(),
                    s.last_log_index.to_string(),
                    s.applied_index.to_string(),
                    s.committed_index.to_string(),
                    dash(s.leader),
                    if digest.is_empty() {
                        "-".into()
                    } else {
                        digest
                    },
                    s.format_version.to_string(),
                    if s.build_version.is_empty() {
                        "-".into()
                    } else {
                        s.build_version.clone()
                    },
                    r.endpoint.clone(),
                ]);
            }
            Err(e) => {
                let (id, site) = match &r.declared {
                    Some((id, site)) => (id.to_string(), site.clone()),
                    None => ("?".to_string(), "-".to_string()),
                };
                let mut row = vec![id, site, "unreachable".to_string()];
                row.extend(std::iter::repeat_n("-".to_string(), 8));
                row.push(r.endpoint.clone());
                row.push(short_error(e));
                t.add_row(row);
            }
        }
    }
    right(&mut t, &[0, 3, 4, 5, 6, 7, 9]);
    print_table(&t);
}

// ---------------------------------------------------------------- kv

pub fn put(out: Output, key: &[u8], r: &PutResponse) {
    if out.json {
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "key", key);
        o.insert("index".into(), r.index.into());
        o.insert("version".into(), r.version.into());
        print_json(&Value::Object(o));
    } else {
        println!(
            "OK {} (index {}, version {})",
            text(key),
            r.index,
            r.version
        );
    }
}

pub fn get(out: Output, key: &[u8], r: &GetResponse) {
    let kv = r.kv.as_ref().filter(|_| r.found);
    if out.json {
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "key", key);
        o.insert("found".into(), r.found.into());
        if let Some(kv) = kv {
            put_bytes(&mut o, "value", &kv.value);
            o.insert("version".into(), kv.version.into());
            o.insert("create_index".into(), kv.create_index.into());
            o.insert("mod_index".into(), kv.mod_index.into());
        }
        o.insert("read".into(), header_json(r.header.as_ref()));
        print_json(&Value::Object(o));
        return;
    }
    match kv {
        Some(kv) => {
            println!("{}", text(&kv.value));
            eprintln!(
                "{}: version {}, created at index {}, modified at index {}; {}",
                text(key),
                kv.version,
                kv.create_index,
                kv.mod_index,
                header_text(r.header.as_ref())
            );
        }
        None => {
            eprintln!(
                "{}: not found; {}",
                text(key),
                header_text(r.header.as_ref())
            );
        }
    }
}

pub fn delete(out: Output, key: &[u8], r: &DeleteResponse) {
    if out.json {
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "key", key);
        o.insert("index".into(), r.index.into());
        o.insert("existed".into(), r.existed.into());
        print_json(&Value::Object(o));
    } else if r.existed {
        println!("deleted {} (index {})", text(key), r.index);
    } else {
        println!("{} did not exist (index {})", text(key), r.index);
    }
}

pub fn cas(out: Output, key: &[u8], deleting: bool, r: &CompareAndSwapResponse) {
    let current = r.current.as_ref().filter(|_| r.found);
    if out.json {
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "key", key);
        o.insert("succeeded".into(), r.succeeded.into());
        o.insert("index".into(), r.index.into());
        o.insert("new_version".into(), r.new_version.into());
        o.insert("found".into(), r.found.into());
        o.insert(
            "previous".into(),
            current.map(kv_json).unwrap_or(Value::Null),
        );
        print_json(&Value::Object(o));
        return;
    }
    let before = match current {
        Some(kv) => format!("version {} = {}", kv.version, text(&kv.value)),
        None => "absent".to_string(),
    };
    if r.succeeded && deleting {
        println!(
            "OK deleted {} (index {}; was {})",
            text(key),
            r.index,
            before
        );
    } else if r.succeeded {
        println!(
            "OK {} (index {}, version {}; was {})",
            text(key),
            r.index,
            r.new_version,
            before
        );
    } else {
        println!(
            "compare failed: {} is {} (index {})",
            text(key),
            before,
            r.index
        );
    }
}

pub fn range(
    out: Output,
    prefix: &[u8],
    kvs: &[KeyValue],
    header: Option<&ReadHeader>,
    continuation: &[u8],
) {
    if out.json {
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "prefix", prefix);
        o.insert("count".into(), kvs.len().into());
        o.insert(
            "kvs".into(),
            Value::Array(kvs.iter().map(kv_json).collect()),
        );
        o.insert(
            "continuation".into(),
            if continuation.is_empty() {
                Value::Null
            } else {
                Value::String(hex(continuation))
            },
        );
        o.insert("read".into(), header_json(header));
        print_json(&Value::Object(o));
        return;
    }
    if !kvs.is_empty() {
        let mut t = table(&["KEY", "VALUE", "VERSION", "CREATED", "MODIFIED"]);
        for kv in kvs {
            t.add_row(vec![
                text(&kv.key),
                text(&kv.value),
                kv.version.to_string(),
                kv.create_index.to_string(),
                kv.mod_index.to_string(),
            ]);
        }
        right(&mut t, &[2, 3, 4]);
        print_table(&t);
    }
    let noun = if kvs.len() == 1 { "key" } else { "keys" };
    eprintln!(
        "{} {noun} under {:?}; {}",
        kvs.len(),
        text(prefix),
        header_text(header)
    );
    if !continuation.is_empty() {
        eprintln!(
            "more keys remain: add --all, or --continuation {}",
            hex(continuation)
        );
    }
}

// ---------------------------------------------------------------- membership

pub fn membership(out: Output, what: &str, r: &MembershipResponse) {
    if out.json {
        print_json(&json!({
            "action": what,
            "index": r.index,
            "voters": r.voters,
            "learners": r.learners,
        }));
    } else {
        println!(
            "OK {what} (index {}); voters {:?}, learners {:?}",
            r.index, r.voters, r.learners
        );
    }
}

/// One member in `members`.
pub struct Member {
    pub id: u64,
    pub voter: bool,
    pub site: Option<String>,
    pub role: Option<String>,
    pub peer_addr: Option<String>,
    pub client_addr: Option<String>,
}

pub struct Members {
    pub leader: u64,
    pub term: u64,
    pub committed_index: u64,
    pub members: Vec<Member>,
}

pub fn members(out: Output, m: &Members) {
    if out.json {
        let list = |voter: bool| -> Vec<Value> {
            m.members
                .iter()
                .filter(|x| x.voter == voter)
                .map(|x| {
                    json!({
                        "id": x.id,
                        "site": x.site,
                        "role": x.role,
                        "peer_addr": x.peer_addr,
                        "client_addr": x.client_addr,
                    })
                })
                .collect()
        };
        print_json(&json!({
            "leader": m.leader,
            "term": m.term,
            "committed_index": m.committed_index,
            "voters": list(true),
            "learners": list(false),
        }));
        return;
    }
    println!(
        "leader: node {}, term {}, committed index {}",
        m.leader, m.term, m.committed_index
    );
    let mut t = table(&["ID", "MEMBER", "SITE", "ROLE", "PEER ADDR", "CLIENT ADDR"]);
    let opt = |s: &Option<String>| {
        s.clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    for x in &m.members {
        t.add_row(vec![
            x.id.to_string(),
            if x.voter { "voter" } else { "learner" }.to_string(),
            opt(&x.site),
            x.role.clone().unwrap_or_else(|| "unreachable".into()),
            opt(&x.peer_addr),
            opt(&x.client_addr),
        ]);
    }
    right(&mut t, &[0]);
    print_table(&t);
}

// ---------------------------------------------------------------- cluster up

/// A node of a started cluster, as shown once it is ready.
pub struct UpNode {
    pub id: u64,
    pub site: String,
    pub role: String,
    pub client_addr: String,
    pub log: String,
}

pub struct Demo {
    pub key: String,
    pub put: Result<PutResponse, ClientError>,
    pub get: Option<Result<GetResponse, ClientError>>,
}

pub struct UpReport {
    pub cluster: String,
    pub config: String,
    /// The `--config` flag a user needs to reach this cluster (empty if the default works).
    pub config_flag: String,
    pub leader: u64,
    pub term: u64,
    pub nodes: Vec<UpNode>,
    pub demo: Demo,
}

/// A one-line progress message that rewrites itself on a terminal and is
/// printed only when it changes otherwise.
pub struct Progress {
    tty: bool,
    /// False: print nothing (a progress line only for terminals).
    enabled: bool,
    last: String,
    width: usize,
}

impl Progress {
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            tty,
            enabled: true,
            last: String::new(),
            width: 0,
        }
    }

    /// A progress line shown only when stderr is a terminal.
    pub fn tty_only() -> Self {
        let mut p = Progress::new();
        p.enabled = p.tty;
        p
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    pub fn update(&mut self, msg: &str) {
        if !self.enabled || msg == self.last {
            return;
        }
        let mut err = std::io::stderr();
        if self.tty {
            let pad = self.width.saturating_sub(msg.chars().count());
            let _ = write!(err, "\r{msg}{}", " ".repeat(pad));
            self.width = msg.chars().count();
        } else {
            let _ = writeln!(err, "{msg}");
        }
        let _ = err.flush();
        self.last = msg.to_string();
    }

    /// Ends the progress line (so later output starts on a fresh line).
    pub fn finish(&mut self) {
        if self.tty && self.width > 0 {
            eprintln!();
        }
        self.width = 0;
    }
}

/// A line of `cluster up` narration (stderr, so stdout stays clean for --json).
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

/// Like [`note`], but first ends the line a terminal's `^C` echo left open.
pub fn note_after_signal(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    eprintln!("{msg}");
}

pub fn cluster_ready(out: Output, r: &UpReport) {
    let endpoints: Vec<&str> = r.nodes.iter().map(|n| n.client_addr.as_str()).collect();
    if out.json {
        let demo = json!({
            "key": r.demo.key,
            "put": match &r.demo.put {
                Ok(p) => json!({ "index": p.index, "version": p.version }),
                Err(e) => json!({ "error": e.to_string() }),
            },
            "get": match &r.demo.get {
                Some(Ok(g)) => {
                    let kv = g.kv.clone().unwrap_or_default();
                    json!({
                        "found": g.found,
                        "value": text(&kv.value),
                        "version": kv.version,
                        "mod_index": kv.mod_index,
                        "read": header_json(g.header.as_ref()),
                    })
                }
                Some(Err(e)) => json!({ "error": e.to_string() }),
                None => Value::Null,
            },
        });
        let nodes: Vec<Value> = r
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "id": n.id, "site": n.site, "role": n.role,
                    "client_addr": n.client_addr, "log": n.log,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "event": "ready",
                "cluster": r.cluster,
                "config": r.config,
                "leader": r.leader,
                "term": r.term,
                "endpoints": endpoints,
                "nodes": nodes,
                "demo": demo,
            })
        );
        return;
    }
    println!();
    println!(
        "Lookout cluster {:?} is up: {} nodes, leader node {} (term {}).",
        r.cluster,
        r.nodes.len(),
        r.leader,
        r.term
    );
    println!();
    let mut t = table(&["ID", "SITE", "ROLE", "CLIENT ADDR", "LOG"]);
    for n in &r.nodes {
        t.add_row(vec![
            n.id.to_string(),
            n.site.clone(),
            n.role.clone(),
            n.client_addr.clone(),
            n.log.clone(),
        ]);
    }
    right(&mut t, &[0]);
    print_table(&t);
    println!();
    println!("Connect to any of: {}", endpoints.join(","));
    println!(
        "  (Rust: Client::new(vec![\"{}\".into(), ...], ClientOptions::default()))",
        endpoints[0]
    );
    let flag = &r.config_flag;
    println!(
        "Try: lookoutctl{flag} put hello world && lookoutctl{flag} get hello && lookoutctl{flag} status"
    );
    println!();
    match &r.demo.put {
        Ok(p) => println!(
            "demo: put {} = \"world\" -> index {}, version {}",
            r.demo.key, p.index, p.version
        ),
        Err(e) => println!("demo: put {} failed: {e}", r.demo.key),
    }
    match &r.demo.get {
        Some(Ok(g)) => match g.kv.as_ref().filter(|_| g.found) {
            Some(kv) => println!(
                "demo: get {} -> {:?} (version {}, written at index {}); {}",
                r.demo.key,
                text(&kv.value),
                kv.version,
                kv.mod_index,
                header_text(g.header.as_ref())
            ),
            None => println!("demo: get {} -> not found?!", r.demo.key),
        },
        Some(Err(e)) => println!("demo: get {} failed: {e}", r.demo.key),
        None => {}
    }
    println!();
    println!(
        "Press Ctrl-C to stop the cluster; its data stays for the next `lookoutctl cluster up`."
    );
    let _ = std::io::stdout().flush();
}

/// A node process exited while it should have been running.
pub fn node_died(out: Output, id: u64, how: &str, log: &str, tail: &[String]) {
    if out.json {
        println!(
            "{}",
            json!({ "event": "node_exited", "id": id, "status": how, "log": log, "log_tail": tail })
        );
    }
    eprintln!("node {id} exited unexpectedly ({how}); last lines of {log}:");
    for line in tail {
        eprintln!("  | {line}");
    }
}

pub fn node_stopped(out: Output, id: u64, how: &str) {
    if out.json {
        println!(
            "{}",
            json!({ "event": "node_stopped", "id": id, "status": how })
        );
    } else {
        eprintln!("node {id} stopped ({how})");
    }
}

// ---------------------------------------------------------------- screening

/// Thousands separated: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// Unix milliseconds as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn ms_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = lookout_gen::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The names used on the command line: `no-board`, `refer-secondary`, `alert-only`.
pub fn category_name(c: i32) -> &'static str {
    match proto::Category::try_from(c) {
        Ok(proto::Category::NoBoard) => "no-board",
        Ok(proto::Category::ReferSecondary) => "refer-secondary",
        Ok(proto::Category::AlertOnly) => "alert-only",
        _ => "unspecified",
    }
}

pub fn decision_name(d: i32) -> &'static str {
    match proto::Decision::try_from(d) {
        Ok(proto::Decision::Clear) => "clear",
        Ok(proto::Decision::ReferSecondary) => "refer-secondary",
        Ok(proto::Decision::NoBoard) => "no-board",
        _ => "unspecified",
    }
}

fn decision_banner(d: i32) -> &'static str {
    match proto::Decision::try_from(d) {
        Ok(proto::Decision::Clear) => "CLEAR",
        Ok(proto::Decision::ReferSecondary) => "REFER TO SECONDARY",
        Ok(proto::Decision::NoBoard) => "NO-BOARD",
        _ => "UNSPECIFIED",
    }
}

fn sex_name(s: i32) -> &'static str {
    match proto::Sex::try_from(s) {
        Ok(proto::Sex::Male) => "M",
        Ok(proto::Sex::Female) => "F",
        Ok(proto::Sex::Other) => "X",
        _ => "-",
    }
}

fn doc_type_name(t: i32) -> &'static str {
    match proto::DocumentType::try_from(t) {
        Ok(proto::DocumentType::Passport) => "passport",
        Ok(proto::DocumentType::NationalId) => "national-id",
        Ok(proto::DocumentType::Visa) => "visa",
        Ok(proto::DocumentType::Other) => "other",
        _ => "unspecified",
    }
}

pub fn name_text(n: &proto::PersonName) -> String {
    match (n.given.is_empty(), n.surname.is_empty()) {
        (false, false) => format!("{} {}", n.given, n.surname),
        (true, _) => n.surname.clone(),
        (false, true) => n.given.clone(),
    }
}

/// `passport:GBR:123456789` (the form `screen --doc` takes), with the expiry if known.
fn doc_text(d: &proto::Document) -> String {
    let mut s = format!(
        "{}:{}:{}",
        doc_type_name(d.r#type),
        d.issuing_country,
        d.number
    );
    if !d.expiry.is_empty() {
        s.push_str(&format!(" (expires {})", d.expiry));
    }
    s
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn subject_name(l: &proto::Lookout) -> String {
    l.subject
        .as_ref()
        .and_then(|s| s.name.as_ref())
        .map(name_text)
        .unwrap_or_default()
}

fn subject_dob(l: &proto::Lookout) -> String {
    l.subject
        .as_ref()
        .map(|s| s.date_of_birth.clone())
        .unwrap_or_default()
}

fn validity_text(l: &proto::Lookout) -> String {
    match (l.valid_from_ms, l.valid_until_ms) {
        (0, 0) => "always".into(),
        (from, 0) => format!("from {}", ms_text(from)),
        (0, until) => format!("until {}", ms_text(until)),
        (from, until) => format!("from {} until {}", ms_text(from), ms_text(until)),
    }
}

/// A lookout as its domain JSON (what `lookout put --file` and `ingest lookouts`
/// read), plus `mod_index`.
pub fn lookout_json(l: &proto::Lookout) -> Value {
    match lookout_wire::lookout_from_pb("lookout", &Some(l.clone())) {
        Ok(mut d) => {
            d.version = l.version;
            d.created_by = l.created_by.clone();
            d.updated_by = l.updated_by.clone();
            d.retired = l.retired;
            let mut v = serde_json::to_value(&d).expect("domain records serialise");
            v["mod_index"] = l.mod_index.into();
            v
        }
        // Stored records were validated on the way in; show what there is anyway.
        Err(e) => json!({
            "id": l.id,
            "version": l.version,
            "retired": l.retired,
            "mod_index": l.mod_index,
            "unreadable": e.to_string(),
        }),
    }
}

/// A traveller as its domain JSON (what `ingest travellers` reads), without the
/// version, which reads do not return.
fn traveller_json(t: &proto::Traveller) -> Value {
    match lookout_wire::traveller_from_pb("traveller", &Some(t.clone())) {
        Ok(d) => {
            let mut v = serde_json::to_value(&d).expect("domain records serialise");
            if let Some(o) = v.as_object_mut() {
                o.remove("version");
            }
            v
        }
        Err(e) => json!({ "id": t.id, "unreadable": e.to_string() }),
    }
}

pub fn lookout_written(out: Output, action: &str, id: &str, index: u64, version: u64) {
    if out.json {
        print_json(&json!({ "id": id, "action": action, "version": version, "index": index }));
    } else {
        println!("OK {action} lookout {id}: version {version} (index {index})");
    }
}

/// Field / value lines, aligned.
fn print_fields(rows: &[(&str, String)]) {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for (k, v) in rows {
        t.add_row(vec![format!(" {k}"), v.clone()]);
    }
    print_table(&t);
}

pub fn lookout_get(out: Output, r: &proto::GetLookoutResponse) {
    let Some(l) = r.lookout.as_ref() else {
        eprintln!("no lookout in the response");
        return;
    };
    if out.json {
        print_json(&json!({
            "lookout": lookout_json(l),
            "history": r.history.iter().map(lookout_json).collect::<Vec<_>>(),
            "read": header_json(r.header.as_ref()),
        }));
        return;
    }
    let s = l.subject.clone().unwrap_or_default();
    println!(
        "lookout {} (version {}, written at index {}){}",
        l.id,
        l.version,
        l.mod_index,
        if l.retired { " RETIRED" } else { "" }
    );
    let mut rows = vec![
        ("category", category_name(l.category).to_string()),
        ("name", s.name.as_ref().map(name_text).unwrap_or_default()),
    ];
    if !s.aliases.is_empty() {
        rows.push((
            "aliases",
            s.aliases
                .iter()
                .map(name_text)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    rows.push(("born", or_dash(&s.date_of_birth)));
    rows.push(("sex", sex_name(s.sex).to_string()));
    rows.push(("nationality", or_dash(&s.nationalities.join(", "))));
    rows.push((
        "documents",
        or_dash(
            &l.documents
                .iter()
                .map(doc_text)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    ));
    rows.push(("reason", or_dash(&l.reason)));
    rows.push(("agency", or_dash(&l.source_agency)));
    rows.push(("valid", validity_text(l)));
    rows.push(("created by", or_dash(&l.created_by)));
    rows.push(("updated by", or_dash(&l.updated_by)));
    rows.push((
        "status",
        if l.retired { "retired" } else { "active" }.to_string(),
    ));
    print_fields(&rows);
    if !r.history.is_empty() {
        println!();
        println!("history (oldest first):");
        let mut t = table(&[
            "VERSION",
            "STATUS",
            "CATEGORY",
            "NAME",
            "DOB",
            "UPDATED BY",
            "REASON",
        ]);
        for h in r.history.iter().chain(std::iter::once(l)) {
            t.add_row(vec![
                h.version.to_string(),
                if h.retired { "retired" } else { "active" }.to_string(),
                category_name(h.category).to_string(),
                subject_name(h),
                or_dash(&subject_dob(h)),
                or_dash(&h.updated_by),
                or_dash(&h.reason),
            ]);
        }
        right(&mut t, &[0]);
        print_table(&t);
    }
    eprintln!("{}", header_text(r.header.as_ref()));
}

pub fn lookout_list(
    out: Output,
    lookouts: &[proto::Lookout],
    header: Option<&ReadHeader>,
    continuation: &[u8],
) {
    if out.json {
        print_json(&json!({
            "count": lookouts.len(),
            "lookouts": lookouts.iter().map(lookout_json).collect::<Vec<_>>(),
            "continuation": if continuation.is_empty() { Value::Null } else { Value::String(hex(continuation)) },
            "read": header_json(header),
        }));
        return;
    }
    if !lookouts.is_empty() {
        let mut t = table(&[
            "ID",
            "CATEGORY",
            "NAME",
            "DOB",
            "DOCUMENTS",
            "VERSION",
            "STATUS",
            "UPDATED BY",
        ]);
        for l in lookouts {
            t.add_row(vec![
                l.id.clone(),
                category_name(l.category).to_string(),
                subject_name(l),
                or_dash(&subject_dob(l)),
                or_dash(
                    &l.documents
                        .iter()
                        .map(doc_text)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                l.version.to_string(),
                if l.retired { "retired" } else { "active" }.to_string(),
                or_dash(&l.updated_by),
            ]);
        }
        right(&mut t, &[5]);
        print_table(&t);
    }
    eprintln!(
        "{}; {}",
        plural(lookouts.len() as u64, "lookout", "lookouts"),
        header_text(header)
    );
    if !continuation.is_empty() {
        eprintln!(
            "more lookouts remain: add --all, or --continuation {}",
            hex(continuation)
        );
    }
}

pub fn traveller_get(out: Output, r: &proto::GetTravellerResponse) {
    let Some(t) = r.traveller.as_ref() else {
        eprintln!("no traveller in the response");
        return;
    };
    if out.json {
        print_json(&json!({
            "traveller": traveller_json(t),
            "read": header_json(r.header.as_ref()),
        }));
        return;
    }
    println!("traveller {}", t.id);
    let mut rows = vec![
        (
            "names",
            t.names.iter().map(name_text).collect::<Vec<_>>().join("; "),
        ),
        ("born", or_dash(&t.date_of_birth)),
        ("sex", sex_name(t.sex).to_string()),
        ("nationality", or_dash(&t.nationality)),
        (
            "documents",
            or_dash(
                &t.documents
                    .iter()
                    .map(doc_text)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    ];
    if let Some(it) = t
        .itinerary
        .as_ref()
        .filter(|it| **it != proto::Itinerary::default())
    {
        let mut s = format!("{}{}", it.carrier, it.flight_number);
        if !it.departure_port.is_empty() || !it.arrival_port.is_empty() {
            s.push_str(&format!(
                " {} -> {}",
                or_dash(&it.departure_port),
                or_dash(&it.arrival_port)
            ));
        }
        if it.scheduled_arrival_ms != 0 {
            s.push_str(&format!(", arriving {}", ms_text(it.scheduled_arrival_ms)));
        }
        rows.push(("flight", s));
    }
    print_fields(&rows);
    eprintln!("{}", header_text(r.header.as_ref()));
}

fn reasons_text(m: &proto::LookoutMatch) -> String {
    m.reasons
        .iter()
        .map(|r| {
            if r.detail.is_empty() {
                r.kind.clone()
            } else {
                r.detail.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn match_json(m: &proto::LookoutMatch) -> Value {
    let l = m.lookout.clone().unwrap_or_default();
    json!({
        "id": l.id,
        "category": category_name(l.category),
        "score": (f64::from(m.score) * 1000.0).round() / 1000.0,
        "reasons": m.reasons.iter().map(|r| json!({ "kind": r.kind, "detail": r.detail })).collect::<Vec<_>>(),
        "name": subject_name(&l),
        "dob": Some(subject_dob(&l)).filter(|d| !d.is_empty()),
        "version": l.version,
        "mod_index": l.mod_index,
    })
}

fn matches_table(matches: &[proto::LookoutMatch]) -> Table {
    let mut t = table(&["LOOKOUT", "CATEGORY", "SCORE", "NAME", "DOB", "REASONS"]);
    for m in matches {
        let l = m.lookout.clone().unwrap_or_default();
        t.add_row(vec![
            l.id.clone(),
            category_name(l.category).to_string(),
            format!("{:.3}", m.score),
            subject_name(&l),
            or_dash(&subject_dob(&l)),
            reasons_text(m),
        ]);
    }
    right(&mut t, &[2]);
    t
}

fn screened_text(h: Option<&ReadHeader>) -> String {
    match h {
        Some(h) => {
            let mut s = format!(
                "screened against applied index {} on node {} ({})",
                h.applied_index,
                h.served_by,
                consistency_name(h.consistency)
            );
            if h.consistency == proto::Consistency::Stale as i32 {
                if h.staleness_ms == u64::MAX {
                    s.push_str(", staleness unknown");
                } else {
                    s.push_str(&format!(", data at most {} ms stale", h.staleness_ms));
                }
            }
            s
        }
        None => "read header missing".into(),
    }
}

pub fn screen(out: Output, r: &proto::ScreenResponse) {
    if out.json {
        print_json(&json!({
            "decision": decision_name(r.decision),
            "matches": r.matches.iter().map(match_json).collect::<Vec<_>>(),
            "read": header_json(r.header.as_ref()),
        }));
        return;
    }
    println!("DECISION: {}", decision_banner(r.decision));
    println!();
    if r.matches.is_empty() {
        println!("no matching lookouts");
    } else {
        println!("{}:", plural(r.matches.len() as u64, "match", "matches"));
        print_table(&matches_table(&r.matches));
    }
    println!();
    println!("{}", screened_text(r.header.as_ref()));
}

/// A line of input that was skipped.
#[derive(Clone, Debug)]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

pub struct ManifestRow {
    pub line: u64,
    pub reference: String,
    pub name: String,
    pub decision: i32,
    pub matches: Vec<proto::LookoutMatch>,
}

#[derive(Default)]
pub struct ManifestReport {
    pub flight: Option<String>,
    pub show_clear: bool,
    pub rows: Vec<ManifestRow>,
    pub bad: Vec<BadLine>,
    pub calls: u64,
    /// The last call's header, and the lowest applied index of any call.
    pub header: Option<ReadHeader>,
    pub min_index: Option<u64>,
}

pub fn manifest_progress_text(done: usize, total: usize, elapsed: std::time::Duration) -> String {
    format!(
        "manifest: {}/{} passengers screened ({:.0} s)",
        count(done as u64),
        count(total as u64),
        elapsed.as_secs_f64()
    )
}

/// The match behind a decision: the best-scoring one of the decisive category
/// (matches come best first), else the best.
fn decisive_match(decision: i32, matches: &[proto::LookoutMatch]) -> Option<&proto::LookoutMatch> {
    let category = match proto::Decision::try_from(decision) {
        Ok(proto::Decision::NoBoard) => Some(proto::Category::NoBoard as i32),
        Ok(proto::Decision::ReferSecondary) => Some(proto::Category::ReferSecondary as i32),
        _ => None,
    };
    category
        .and_then(|c| {
            matches
                .iter()
                .find(|m| m.lookout.as_ref().is_some_and(|l| l.category == c))
        })
        .or_else(|| matches.first())
}

pub fn manifest(out: Output, r: &ManifestReport) {
    let n = |d: proto::Decision| r.rows.iter().filter(|x| x.decision == d as i32).count() as u64;
    let (clear, refer, no_board) = (
        n(proto::Decision::Clear),
        n(proto::Decision::ReferSecondary),
        n(proto::Decision::NoBoard),
    );
    let shown: Vec<&ManifestRow> = r
        .rows
        .iter()
        .filter(|x| r.show_clear || x.decision != proto::Decision::Clear as i32)
        .collect();
    if out.json {
        print_json(&json!({
            "flight": r.flight,
            "passengers": r.rows.len(),
            "calls": r.calls,
            "clear": clear,
            "refer_secondary": refer,
            "no_board": no_board,
            "decisions": shown.iter().map(|x| json!({
                "line": x.line,
                "reference": x.reference,
                "name": x.name,
                "decision": decision_name(x.decision),
                "matches": x.matches.iter().map(match_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "bad_lines": r.bad.iter().map(|b| json!({ "line": b.line, "reason": b.reason })).collect::<Vec<_>>(),
            "min_applied_index": r.min_index,
            "read": header_json(r.header.as_ref()),
        }));
        return;
    }
    if !shown.is_empty() {
        let mut t = table(&[
            "LINE",
            "REFERENCE",
            "PASSENGER",
            "DECISION",
            "MATCHES",
            "LOOKOUT",
            "CATEGORY",
            "SCORE",
            "REASONS",
        ]);
        for x in &shown {
            let best = decisive_match(x.decision, &x.matches);
            let l = best.and_then(|m| m.lookout.clone()).unwrap_or_default();
            t.add_row(vec![
                x.line.to_string(),
                x.reference.clone(),
                x.name.clone(),
                decision_name(x.decision).to_string(),
                x.matches.len().to_string(),
                or_dash(&l.id),
                if best.is_some() {
                    category_name(l.category).to_string()
                } else {
                    "-".into()
                },
                best.map(|m| format!("{:.3}", m.score))
                    .unwrap_or_else(|| "-".into()),
                best.map(reasons_text).unwrap_or_default(),
            ]);
        }
        right(&mut t, &[0, 4, 7]);
        print_table(&t);
        println!();
    }
    let flight = r
        .flight
        .as_deref()
        .map(|f| format!("flight {f}: "))
        .unwrap_or_default();
    println!(
        "{flight}{} screened in {}: {} no-board, {} refer to secondary, {} clear",
        plural(r.rows.len() as u64, "passenger", "passengers"),
        plural(r.calls, "call", "calls"),
        count(no_board),
        count(refer),
        count(clear)
    );
    if !r.bad.is_empty() {
        println!(
            "{} skipped:",
            plural(r.bad.len() as u64, "bad line", "bad lines")
        );
        for b in &r.bad {
            println!("  line {}: {}", b.line, b.reason);
        }
    }
    let mut screened = screened_text(r.header.as_ref());
    if let (Some(min), Some(h)) = (r.min_index, r.header.as_ref())
        && min != h.applied_index
    {
        screened.push_str(&format!(" (earlier calls from index {min})"));
    }
    println!("{screened}");
}

/// One error of an ingest: a bad line (no position) or a record the server rejected.
pub struct IngestErrorRow {
    pub line: Option<u64>,
    /// Position among the records sent (0-based, across calls); `u64::MAX` for a
    /// line that was never sent.
    pub position: u64,
    pub id: String,
    pub field: String,
    pub reason: String,
}

#[derive(Default)]
pub struct IngestSummary {
    pub kind: &'static str,
    pub file: String,
    pub from_line: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub bad_lines: u64,
    /// Records sent in completed calls.
    pub sent: u64,
    pub calls: u64,
    pub index: u64,
    pub elapsed: std::time::Duration,
    /// Lines of the file read (known when the ingest completed).
    pub lines_read: Option<u64>,
    /// The first errors, by line.
    pub errors: Vec<IngestErrorRow>,
    pub failure: Option<crate::CtlError>,
    /// After a failed call: the line that call started at.
    pub resume_from_line: Option<u64>,
}

fn rate(n: u64, elapsed: std::time::Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (n as f64 / secs).round() as u64
    } else {
        0
    }
}

/// The live progress line: records sent (and their rate), and, between calls,
/// what the leader has acknowledged so far.
pub fn ingest_progress_text(
    s: &IngestSummary,
    sent: u64,
    bad: u64,
    call_sent: bool,
    elapsed: std::time::Duration,
) -> String {
    let mut text = format!(
        "ingest {}: {} sent, {}/s, {:.0} s",
        s.kind,
        count(sent),
        count(rate(sent, elapsed)),
        elapsed.as_secs_f64()
    );
    if s.calls > 0 {
        text.push_str(&format!(
            ", {} accepted in {}",
            count(s.accepted),
            plural(s.calls, "call", "calls")
        ));
    }
    if bad > 0 {
        text.push_str(&format!(", {}", plural(bad, "bad line", "bad lines")));
    }
    if call_sent {
        text.push_str("; waiting for the leader to commit");
    }
    text
}

/// A line after each completed call of a multi-call ingest (when no progress line is shown).
pub fn ingest_call_text(
    kind: &str,
    s: &IngestSummary,
    in_call: usize,
    elapsed: std::time::Duration,
) -> String {
    format!(
        "ingest {kind}: call {} done ({} records); so far {} accepted, {} rejected, {} bad lines, {}/s",
        s.calls,
        count(in_call as u64),
        count(s.accepted),
        count(s.rejected),
        count(s.bad_lines),
        count(rate(s.sent, elapsed))
    )
}

pub fn ingest_summary(out: Output, s: &IngestSummary) {
    let rate = rate(s.sent, s.elapsed);
    if out.json {
        let mut v = json!({
            "kind": s.kind,
            "file": s.file,
            "from_line": s.from_line,
            "accepted": s.accepted,
            "rejected": s.rejected,
            "bad_lines": s.bad_lines,
            "sent": s.sent,
            "calls": s.calls,
            "index": s.index,
            "lines_read": s.lines_read,
            "elapsed_ms": s.elapsed.as_millis() as u64,
            "records_per_s": rate,
            "errors": s.errors.iter().map(|e| json!({
                "line": e.line,
                "position": (e.position != u64::MAX).then_some(e.position),
                "id": (!e.id.is_empty()).then_some(e.id.as_str()),
                "field": (!e.field.is_empty()).then_some(e.field.as_str()),
                "reason": e.reason,
            })).collect::<Vec<_>>(),
            "resume_from_line": s.resume_from_line,
            "error": Value::Null,
        });
        if let Some(f) = &s.failure {
            v["error"] = error_json(f)["error"].clone();
        }
        print_json(&v);
    } else {
        let mut line = format!(
            "ingest {} from {}: {} accepted, {} rejected, {} skipped",
            s.kind,
            s.file,
            count(s.accepted),
            count(s.rejected),
            plural(s.bad_lines, "bad line", "bad lines"),
        );
        let mut parts = vec![];
        if let Some(n) = s.lines_read {
            parts.push(plural(n, "line", "lines"));
        }
        parts.push(plural(s.calls, "call", "calls"));
        parts.push(format!("{:.1} s", s.elapsed.as_secs_f64()));
        parts.push(format!("{} records/s", count(rate)));
        if s.index > 0 {
            parts.push(format!("last index {}", s.index));
        }
        line.push_str(&format!(" ({})", parts.join(", ")));
        println!("{line}");
        let total = s.rejected + s.bad_lines;
        if !s.errors.is_empty() {
            println!();
            if total as usize > s.errors.len() {
                println!("first {} of {} errors:", s.errors.len(), count(total));
            } else {
                println!("errors:");
            }
            let mut t = table(&["LINE", "POSITION", "ID", "FIELD", "REASON"]);
            for e in &s.errors {
                t.add_row(vec![
                    e.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                    if e.position == u64::MAX {
                        "-".into()
                    } else {
                        e.position.to_string()
                    },
                    or_dash(&e.id),
                    or_dash(&e.field),
                    e.reason.clone(),
                ]);
            }
            right(&mut t, &[0, 1]);
            print_table(&t);
        }
    }
    if let Some(f) = &s.failure {
        eprintln!("error: {f}");
        if let Some(line) = s.resume_from_line {
            eprintln!(
                "the ingest stopped in the call that began at line {line}; every earlier call completed. \
                 Resume with --from-line {line} (records of the failed call may already be stored; \
                 sending them again replaces them with the same content)."
            );
        }
    }
}

/// `1.2 MB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn gen_progress_text(
    parts: &[(&str, u64, Option<u64>)],
    elapsed: std::time::Duration,
) -> String {
    let files: Vec<String> = parts
        .iter()
        .map(|(name, n, expected)| {
            let name = name.trim_end_matches(".jsonl");
            match expected {
                Some(total) => format!("{name} {}/{}", count(*n), count(*total)),
                None => format!("{name} {}", count(*n)),
            }
        })
        .collect();
    format!("gen: {} ({:.0} s)", files.join(", "), elapsed.as_secs_f64())
}

pub struct GenFile {
    pub name: &'static str,
    pub path: String,
    pub records: u64,
    pub bytes: u64,
}

pub struct GenReport {
    pub seed: u64,
    pub plant_rate: f64,
    pub dir: String,
    pub files: Vec<GenFile>,
    pub elapsed: std::time::Duration,
}

pub fn gen_summary(out: Output, r: &GenReport) {
    if out.json {
        print_json(&json!({
            "seed": r.seed,
            "plant_rate": r.plant_rate,
            "dir": r.dir,
            "files": r.files.iter().map(|f| json!({
                "name": f.name, "path": f.path, "records": f.records, "bytes": f.bytes,
            })).collect::<Vec<_>>(),
            "elapsed_ms": r.elapsed.as_millis() as u64,
        }));
        return;
    }
    println!(
        "generated seed {} into {} in {:.1} s:",
        r.seed,
        r.dir,
        r.elapsed.as_secs_f64()
    );
    let mut t = table(&["FILE", "RECORDS", "SIZE"]);
    for f in &r.files {
        t.add_row(vec![
            f.name.to_string(),
            count(f.records),
            bytes_text(f.bytes),
        ]);
    }
    right(&mut t, &[1, 2]);
    print_table(&t);
    let path = |name: &str| {
        r.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    };
    println!(
        "load it with: lookoutctl ingest lookouts {} --actor NAME && lookoutctl ingest travellers {}",
        path("lookouts.jsonl"),
        path("travellers.jsonl")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(unhex("000fff").unwrap(), vec![0, 15, 255]);
        assert_eq!(unhex("0x0a").unwrap(), vec![10]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }

    #[test]
    fn text_falls_back_to_hex() {
        assert_eq!(text(b"hello"), "hello");
        assert_eq!(text(&[0xff, 0x00]), "0xff00");
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "value", &[0xff]);
        put_bytes(&mut o, "key", b"k");
        assert_eq!(Value::Object(o), json!({ "value_hex": "ff", "key": "k" }));
    }

    #[test]
    fn counts_and_times() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(ms_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(ms_text(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(ms_text(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(ms_text(4_102_444_799_000), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn names_of_enums() {
        assert_eq!(category_name(proto::Category::NoBoard as i32), "no-board");
        assert_eq!(
            category_name(proto::Category::AlertOnly as i32),
            "alert-only"
        );
        assert_eq!(
            decision_name(proto::Decision::ReferSecondary as i32),
            "refer-secondary"
        );
        assert_eq!(decision_name(77), "unspecified");
    }

    #[test]
    fn lookout_json_is_the_domain_form() {
        let l = proto::Lookout {
            id: "L-1".into(),
            subject: Some(proto::Subject {
                name: Some(proto::PersonName {
                    given: "Ana".into(),
                    surname: "Lima".into(),
                }),
                date_of_birth: "1980-07".into(),
                nationalities: vec!["BRA".into()],
                ..Default::default()
            }),
            category: proto::Category::NoBoard as i32,
            version: 4,
            created_by: "a".into(),
            updated_by: "b".into(),
            retired: true,
            mod_index: 99,
            ..Default::default()
        };
        let v = lookout_json(&l);
        assert_eq!(v["mod_index"], 99);
        let d: lookout_screening::Lookout = serde_json::from_value(v).unwrap();
        assert_eq!(d.id, "L-1");
        assert_eq!((d.version, d.retired), (4, true));
        assert_eq!(d.updated_by, "b");
        assert_eq!(d.category, lookout_screening::Category::NoBoard);
    }

    #[test]
    fn the_decisive_match_is_shown() {
        let m = |id: &str, c: proto::Category| proto::LookoutMatch {
            lookout: Some(proto::Lookout {
                id: id.into(),
                category: c as i32,
                ..Default::default()
            }),
            score: 0.9,
            reasons: vec![],
        };
        let ms = vec![
            m("alert", proto::Category::AlertOnly),
            m("refer", proto::Category::ReferSecondary),
            m("deny", proto::Category::NoBoard),
        ];
        let id = |d: proto::Decision| {
            decisive_match(d as i32, &ms)
                .and_then(|x| x.lookout.clone())
                .map(|l| l.id)
        };
        assert_eq!(id(proto::Decision::NoBoard).as_deref(), Some("deny"));
        assert_eq!(
            id(proto::Decision::ReferSecondary).as_deref(),
            Some("refer")
        );
        assert_eq!(id(proto::Decision::Clear).as_deref(), Some("alert"));
        assert!(decisive_match(proto::Decision::Clear as i32, &[]).is_none());
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name(Role::Leader as i32), "leader");
        assert_eq!(role_name(Role::Learner as i32), "learner");
        assert_eq!(role_name(99), "unknown");
    }
}
