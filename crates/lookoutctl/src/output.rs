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

/// Describes a failure: on stderr as one line, and with `--json` also as an
/// object on stdout.
pub fn error(out: Output, err: &crate::CtlError) {
    if out.json {
        let v = match err {
            crate::CtlError::Client(e) => {
                let hint = e.leader_hint();
                json!({ "error": {
                    "code": e.code_name(),
                    "message": e.message(),
                    "endpoint": e.endpoint(),
                    "leader_id": hint.and_then(|h| h.id),
                    "leader_addr": hint.and_then(|h| h.addr.clone()),
                }})
            }
            crate::CtlError::Other(msg) => json!({ "error": { "code": "Error", "message": msg } }),
        };
        print_json(&v);
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
    last: String,
    width: usize,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
            width: 0,
        }
    }

    pub fn update(&mut self, msg: &str) {
        if msg == self.last {
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
    fn role_names() {
        assert_eq!(role_name(Role::Leader as i32), "leader");
        assert_eq!(role_name(Role::Learner as i32), "learner");
        assert_eq!(role_name(99), "unknown");
    }
}
