//! End-to-end tests of the `lookoutctl` binary against real `lookoutd` processes:
//! clusters started by `lookout-testkit` (each node its own process on 127.x.y.z,
//! real sled files in a tempdir, real Raft) for every kv/admin command's output and
//! exit status, and `lookoutctl cluster up` itself on a config the test writes.
//!
//! `lookoutd` is taken from next to the `lookoutctl` binary (the same
//! `target/<profile>/`), where `cargo test --workspace` / `cargo build --workspace`
//! put it. With `cargo test -p lookoutctl` alone cargo does not rebuild it: build
//! the workspace first, or the tests run an older `lookoutd` (or fail if none).

use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Output;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;
use std::time::Instant;

use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use serde_json::Value;

const LEADER_WAIT: Duration = Duration::from_secs(20);

/// Clusters of 3-4 processes on a 2-core machine: one test at a time keeps
/// timing sane (and `cluster up` on fixed ports never races a TestCluster).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn lookoutctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lookoutctl"))
}

/// The real daemon, built next to `lookoutctl`. Missing is a failure, not a skip.
fn lookoutd() -> PathBuf {
    lookout_testkit::built_lookoutd()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start_cluster(rt: &tokio::runtime::Runtime, spec: &ClusterSpec) -> (TestCluster, u64) {
    let bin = lookoutd();
    let c = rt
        .block_on(async { TestCluster::start(spec, &bin) })
        .expect("start cluster");
    let leader = rt.block_on(c.wait_leader(LEADER_WAIT)).expect("a leader");
    (c, leader)
}

/// Runs `lookoutctl --config <config> ...`.
struct Ctl {
    config: PathBuf,
}

impl Ctl {
    fn new(config: &Path) -> Ctl {
        Ctl {
            config: config.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(lookoutctl())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("LOOKOUT_ENDPOINTS")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

#[track_caller]
fn exit_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// The number after `word` in `text` (`"index 7,"` -> 7).
fn number_after(text: &str, word: &str) -> u64 {
    let rest = text
        .split(word)
        .nth(1)
        .unwrap_or_else(|| panic!("no {word:?} in {text:?}"));
    rest.trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {word:?} in {text:?}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// `status --json` rows, checked for the basics every time: one row per
/// expected node, all reachable, exactly one leader, and every node naming it.
/// Polls (a new leader or member takes a moment to be known everywhere) and
/// returns the rows and the leader.
#[track_caller]
fn agreed_status(ctl: &Ctl, ids: &[u64], timeout: Duration) -> (Vec<Value>, u64) {
    let t = Instant::now();
    loop {
        let v = json(&ok(ctl.run(&["status", "--json"])));
        let rows = v.as_array().expect("an array").clone();
        let leaders: Vec<u64> = rows
            .iter()
            .filter(|r| r["role"] == "leader")
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        let ok = rows.len() == ids.len()
            && rows.iter().all(|r| r["reachable"] == true)
            && leaders.len() == 1
            && rows.iter().all(|r| r["leader"] == leaders[0]);
        if ok {
            let got: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
            assert_eq!(got, ids, "{rows:?}");
            return (rows, leaders[0]);
        }
        assert!(
            t.elapsed() < timeout,
            "status never showed {ids:?} with one agreed leader: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_kv_and_transfer_leader_against_a_real_cluster() {
    let _serial = serial();
    let rt = runtime();
    let (c, leader) = start_cluster(&rt, &ClusterSpec::three());
    let ctl = Ctl::new(&c.config_path);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let leader_addr = c.client_addr(leader);

    status_commands(&c, &ctl, leader);
    kv_commands(&c, &ctl, leader, follower);

    // ---- members: from the leader's view, with each member's own role
    let v = json(&ok(ctl.run(&["members", "--json"])));
    assert_eq!(v["leader"], leader);
    assert!(v["term"].as_u64().unwrap() >= 1);
    assert_eq!(v["learners"], Value::Array(vec![]));
    let voters = v["voters"].as_array().unwrap();
    assert_eq!(voters.len(), 3, "{v:#}");
    for (i, (id, site)) in [(1, "primary"), (2, "alternate"), (3, "witness")]
        .into_iter()
        .enumerate()
    {
        let m = &voters[i];
        assert_eq!(m["id"], id);
        assert_eq!(m["site"], site);
        assert_eq!(m["client_addr"], c.client_addr(id));
        assert_eq!(m["peer_addr"], c.peer_addr(id));
        let role = if id == leader { "leader" } else { "follower" };
        assert_eq!(m["role"], role, "{v:#}");
    }
    let o = ok(ctl.run(&["members"]));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!("leader: node {leader}, term ")),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" voter ")).count(),
        3,
        "{text}"
    );

    // ---- transfer-leader to a named node, confirmed by status
    let target = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap();
    let o = ok(ctl.run(&["transfer-leader", &target.to_string()]));
    assert!(
        stdout(&o).starts_with(&format!("OK transfer leadership to node {target} (index ")),
        "{}",
        stdout(&o)
    );
    let (rows, now) = agreed_status(&ctl, &[1, 2, 3], Duration::from_secs(10));
    assert_eq!(now, target, "{rows:?}");
    for r in &rows {
        assert_eq!(r["leader_client_addr"], c.client_addr(target));
    }
    // The old leader now points writes at the new one.
    let o = ctl.run(&["put", "k", "v", "--endpoints", &leader_addr, "--pin"]);
    exit_code(&o, 1);
    assert!(
        stderr(&o).contains(&format!(
            "(leader is node {target} at {})",
            c.client_addr(target)
        )),
        "{}",
        stderr(&o)
    );
    let o = ok(ctl.run(&["put", "after-transfer", "x"]));
    assert!(
        stdout(&o).starts_with("OK after-transfer (index "),
        "{}",
        stdout(&o)
    );
    // Transferring to the current leader is a no-op that succeeds.
    ok(ctl.run(&["transfer-leader", &target.to_string()]));
    // A non-voter is refused.
    let o = ctl.run(&["transfer-leader", "9"]);
    exit_code(&o, 1);
    assert!(
        stderr(&o).starts_with("error: FailedPrecondition: to: node 9 is not a voter"),
        "{}",
        stderr(&o)
    );
}

fn status_commands(c: &TestCluster, ctl: &Ctl, leader: u64) {
    let (rows, l) = agreed_status(ctl, &[1, 2, 3], Duration::from_secs(5));
    assert_eq!(l, leader);
    let term = rows[0]["term"].as_u64().unwrap();
    for (i, (id, site)) in [(1, "primary"), (2, "alternate"), (3, "witness")]
        .into_iter()
        .enumerate()
    {
        let r = &rows[i];
        assert_eq!(r["id"], id);
        assert_eq!(r["site"], site);
        assert_eq!(r["endpoint"], c.client_addr(id));
        assert_eq!(r["client_addr"], c.client_addr(id));
        assert_eq!(r["leader_client_addr"], c.client_addr(leader));
        assert_eq!(r["term"], term, "one term everywhere: {rows:?}");
        assert_eq!(r["format_version"], 2, "the store format (lookout_store::FORMAT_VERSION)");
        assert!(!r["build_version"].as_str().unwrap().is_empty());
        assert!(!r["digest"].as_str().unwrap().is_empty());
        assert!(r["applied_index"].as_u64().unwrap() >= 1, "{r}");
        assert_eq!(r["voters"], serde_json::json!([1, 2, 3]));
        let role = if id == leader { "leader" } else { "follower" };
        assert_eq!(r["role"], role);
    }

    // The table: a header and one row per node, exactly one leader.
    let o = ok(ctl.run(&["status"]));
    let text = stdout(&o);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "SITE",
            "ROLE",
            "TERM",
            "LAST",
            "LOG",
            "APPLIED",
            "COMMITTED",
            "LEADER",
            "DIGEST",
            "FORMAT",
            "BUILD",
            "ADDRESS"
        ],
        "{text}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (i, row) in rows.iter().enumerate() {
        let id = i as u64 + 1;
        assert_eq!(row.len(), 12, "{text}");
        assert_eq!(row[0], id.to_string(), "{text}");
        assert_eq!(row[7], leader.to_string(), "{text}");
        assert_eq!(row[11], c.client_addr(id), "{text}");
    }
    let leaders: Vec<&str> = rows
        .iter()
        .filter(|r| r[2] == "leader")
        .map(|r| r[0])
        .collect();
    assert_eq!(leaders, vec![leader.to_string()], "{text}");

    // An unreachable endpoint is a row with the error; the others still show.
    let dead = format!("127.0.0.1:{}", free_port());
    let eps = format!("{},{dead}", c.client_addr(leader));
    let o = ok(ctl.run(&["status", "--endpoints", &eps, "--timeout", "500"]));
    let text = stdout(&o);
    assert!(text.lines().next().unwrap().ends_with("ERROR"), "{text}");
    let row = text.lines().find(|l| l.contains(&dead)).unwrap();
    assert!(
        row.contains("unreachable") && row.contains("Unavailable"),
        "{row}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(&c.client_addr(leader)) && l.contains("leader")),
        "{text}"
    );
    let v = json(&ok(ctl.run(&[
        "status",
        "--endpoints",
        &eps,
        "--json",
        "--timeout",
        "500",
    ])));
    assert_eq!(v[0]["reachable"], true);
    assert_eq!(v[0]["role"], "leader");
    assert_eq!(v[1]["reachable"], false);
    assert_eq!(v[1]["error"]["code"], "Unavailable");
    // Nothing reachable at all: exit 1.
    let o = ctl.run(&["status", "--endpoints", &dead, "--timeout", "500"]);
    exit_code(&o, 1);
}

fn kv_commands(c: &TestCluster, ctl: &Ctl, leader: u64, follower: u64) {
    let leader_addr = c.client_addr(leader);
    let follower_addr = c.client_addr(follower);

    // ---- put / get (linearizable, lease, stale)
    let o = ok(ctl.run(&["put", "hello", "world"]));
    let out = stdout(&o);
    assert!(out.starts_with("OK hello (index "), "{out}");
    assert!(out.ends_with(", version 1)\n"), "{out}");
    let put_index = number_after(&out, "(index");

    let o = ok(ctl.run(&["get", "hello"]));
    assert_eq!(stdout(&o), "world\n");
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "hello: version 1, created at index {put_index}, modified at index {put_index}; read at applied index"
        )),
        "{e}"
    );
    assert!(e.contains("(linearizable)"), "{e}");
    assert!(
        number_after(&e, "read at applied index") >= put_index,
        "{e}"
    );

    let v = json(&ok(ctl.run(&[
        "get",
        "hello",
        "--json",
        "--consistency",
        "lease",
    ])));
    assert_eq!(v["key"], "hello");
    assert_eq!(v["found"], true);
    assert_eq!(v["value"], "world");
    assert_eq!(v["version"], 1);
    assert_eq!(v["mod_index"], put_index);
    assert_eq!(v["read"]["consistency"], "lease");
    assert!(v["read"]["applied_index"].as_u64().unwrap() >= put_index);
    assert!(
        (1..=3).contains(&v["read"]["served_by"].as_u64().unwrap()),
        "{v}"
    );

    // Linearizable on a follower, pinned: served there, reflecting the write.
    let v = json(&ok(ctl.run(&[
        "get",
        "hello",
        "--json",
        "--endpoints",
        &follower_addr,
        "--pin",
    ])));
    assert_eq!(v["value"], "world");
    assert_eq!(v["read"]["served_by"], follower);
    assert_eq!(v["read"]["consistency"], "linearizable");
    assert!(v["read"]["applied_index"].as_u64().unwrap() >= put_index);

    // Stale on that follower with a staleness bound: served locally, and says
    // how stale it may be (little, on a healthy cluster).
    let v = json(&ok(ctl.run(&[
        "get",
        "hello",
        "--json",
        "--endpoints",
        &follower_addr,
        "--pin",
        "--consistency",
        "stale",
        "--max-staleness-ms",
        "5000",
    ])));
    assert_eq!(v["value"], "world");
    assert_eq!(v["read"]["served_by"], follower);
    assert_eq!(v["read"]["consistency"], "stale");
    assert!(v["read"]["staleness_ms"].as_u64().unwrap() < 5000, "{v}");
    let o = ok(ctl.run(&[
        "get",
        "hello",
        "--endpoints",
        &follower_addr,
        "--pin",
        "--consistency",
        "stale",
        "--max-staleness-ms",
        "5000",
    ]));
    assert_eq!(stdout(&o), "world\n");
    assert!(
        stderr(&o).contains(&format!("on node {follower} (stale), at most ")),
        "{}",
        stderr(&o)
    );
    let o = ctl.run(&["get", "hello", "--max-staleness-ms", "5"]);
    exit_code(&o, 1);
    assert!(
        stderr(&o).contains("--max-staleness-ms needs --consistency stale"),
        "{}",
        stderr(&o)
    );

    // ---- errors: code and leader hint
    // A write pinned to a follower is refused with where the leader is.
    let o = ctl.run(&["put", "k", "v", "--endpoints", &follower_addr, "--pin"]);
    exit_code(&o, 1);
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "error: Unavailable: write: node {follower} is not the leader; leader is node {leader}"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("(leader is node {leader} at {leader_addr})")),
        "{e}"
    );
    assert!(e.contains(&format!("[{follower_addr}]")), "{e}");
    let o = ctl.run(&[
        "put",
        "k",
        "v",
        "--endpoints",
        &follower_addr,
        "--pin",
        "--json",
    ]);
    exit_code(&o, 1);
    let v = json(&o);
    assert_eq!(v["error"]["code"], "Unavailable");
    assert_eq!(v["error"]["leader_id"], leader);
    assert_eq!(v["error"]["leader_addr"], leader_addr);
    assert_eq!(v["error"]["endpoint"], follower_addr);
    // Not pinned: the redirect is followed.
    let o = ok(ctl.run(&["put", "via-follower", "v", "--endpoints", &follower_addr]));
    assert!(
        stdout(&o).starts_with("OK via-follower (index "),
        "{}",
        stdout(&o)
    );
    // Bad input is final, with the field named.
    let o = ctl.run(&["put", "", "x"]);
    exit_code(&o, 1);
    assert!(
        stderr(&o).starts_with("error: InvalidArgument: key"),
        "{}",
        stderr(&o)
    );
    let v = json(&ctl.run(&["put", "", "x", "--json"]));
    assert_eq!(v["error"]["code"], "InvalidArgument");
    assert_eq!(v["error"]["leader_id"], Value::Null);

    // ---- compare-and-swap
    let o = ok(ctl.run(&["cas", "hello", "there", "--expect-version", "1"]));
    let out = stdout(&o);
    assert!(out.starts_with("OK hello (index "), "{out}");
    assert!(
        out.ends_with(", version 2; was version 1 = world)\n"),
        "{out}"
    );
    let o = ctl.run(&["cas", "hello", "again", "--expect-value", "world"]);
    exit_code(&o, 3);
    assert!(
        stdout(&o).starts_with("compare failed: hello is version 2 = there (index "),
        "{}",
        stdout(&o)
    );
    let o = ctl.run(&["cas", "hello", "again", "--expect-absent", "--json"]);
    exit_code(&o, 3);
    let v = json(&o);
    assert_eq!(v["succeeded"], false);
    assert_eq!(v["found"], true);
    assert_eq!(v["previous"]["value"], "there");
    assert_eq!(v["previous"]["version"], 2);
    let o = ok(ctl.run(&["get", "hello"]));
    assert_eq!(stdout(&o), "there\n", "a failed cas wrote nothing");
    let v = json(&ok(ctl.run(&[
        "cas",
        "fresh",
        "x",
        "--expect-absent",
        "--json",
    ])));
    assert_eq!(v["succeeded"], true);
    assert_eq!(v["new_version"], 1);
    assert_eq!(v["previous"], Value::Null);
    let o = ok(ctl.run(&["cas", "fresh", "--delete", "--expect-value", "x"]));
    assert!(
        stdout(&o).starts_with("OK deleted fresh (index "),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).ends_with("; was version 1 = x)\n"),
        "{}",
        stdout(&o)
    );

    // ---- delete
    let o = ok(ctl.run(&["del", "hello"]));
    assert!(
        stdout(&o).starts_with("deleted hello (index "),
        "{}",
        stdout(&o)
    );
    let v = json(&ok(ctl.run(&["del", "hello", "--json"])));
    assert_eq!(v["existed"], false);
    let o = ok(ctl.run(&["get", "hello"]));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("hello: not found"), "{}", stderr(&o));
    let v = json(&ok(ctl.run(&["get", "hello", "--json"])));
    assert_eq!(v["found"], false);

    // ---- range, one page and all pages
    for i in 1..=5 {
        ok(ctl.run(&["put", &format!("r/{i}"), &format!("v{i}")]));
    }
    ok(ctl.run(&["put", "s/other", "not in r/"]));
    let o = ok(ctl.run(&["range", "r/", "--limit", "2"]));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("KEY"), "{text}");
    assert!(
        lines[1].starts_with("r/1") && lines[2].starts_with("r/2"),
        "{lines:?}"
    );
    let e = stderr(&o);
    assert!(e.contains("2 keys under \"r/\""), "{e}");
    let token = e
        .split("--continuation ")
        .nth(1)
        .expect("a continuation")
        .trim()
        .to_string();
    let v = json(&ok(ctl.run(&[
        "range",
        "r/",
        "--limit",
        "2",
        "--continuation",
        &token,
        "--json",
    ])));
    let keys: Vec<&str> = v["kvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["r/3", "r/4"]);
    let v = json(&ok(
        ctl.run(&["range", "r/", "--limit", "2", "--all", "--json"])
    ));
    assert_eq!(v["count"], 5);
    assert_eq!(v["continuation"], Value::Null);
    let keys: Vec<&str> = v["kvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["r/1", "r/2", "r/3", "r/4", "r/5"]);
    assert_eq!(v["kvs"][4]["value"], "v5");
    assert_eq!(v["kvs"][4]["version"], 1);
    let o = ok(ctl.run(&["range", "r/", "--limit", "2", "--all"]));
    assert_eq!(stdout(&o).lines().count(), 6, "{}", stdout(&o));
    assert!(stderr(&o).contains("5 keys under \"r/\""), "{}", stderr(&o));
    assert!(!stderr(&o).contains("more keys remain"), "{}", stderr(&o));
    // A stale range on a follower.
    let v = json(&ok(ctl.run(&[
        "range",
        "r/",
        "--json",
        "--consistency",
        "stale",
        "--endpoints",
        &follower_addr,
        "--pin",
    ])));
    assert_eq!(v["read"]["served_by"], follower);
    assert!(v["count"].as_u64().unwrap() <= 5);
}

#[test]
fn membership_add_learner_promote_remove() {
    let _serial = serial();
    let rt = runtime();
    let spec = ClusterSpec::three().with_node(4, "alternate", false);
    let (mut c, leader) = start_cluster(&rt, &spec);
    let ctl = Ctl::new(&c.config_path);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    ok(ctl.run(&["put", "m/1", "before-join"]));

    c.start_node(4).unwrap();
    rt.block_on(c.wait_serving(4, Duration::from_secs(10)))
        .unwrap();
    let (peer4, client4) = (c.peer_addr(4), c.client_addr(4));
    let o = ok(ctl.run(&[
        "add-learner",
        "4",
        "--peer-addr",
        &peer4,
        "--client-addr",
        &client4,
        "--site",
        "alternate",
    ]));
    let out = stdout(&o);
    assert!(out.starts_with("OK add learner 4 (index "), "{out}");
    assert!(out.ends_with("; voters [1, 2, 3], learners [4]\n"), "{out}");

    let v = json(&ok(ctl.run(&["members", "--json"])));
    assert_eq!(v["leader"], leader);
    assert_eq!(v["voters"].as_array().unwrap().len(), 3);
    let learners = v["learners"].as_array().unwrap();
    assert_eq!(learners.len(), 1, "{v:#}");
    assert_eq!(learners[0]["id"], 4);
    assert_eq!(learners[0]["site"], "alternate");
    assert_eq!(learners[0]["role"], "learner");
    assert_eq!(learners[0]["peer_addr"], peer4);
    assert_eq!(learners[0]["client_addr"], client4);
    let o = ok(ctl.run(&["members"]));
    let row = stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with("4 "))
        .map(str::to_string);
    let row = row.unwrap_or_else(|| panic!("no row for node 4: {}", stdout(&o)));
    assert!(row.contains("learner") && row.contains(&client4), "{row}");

    // Once every node knows the learner: a membership change sent to a
    // follower, pinned, is refused with the leader hint.
    let t = Instant::now();
    loop {
        let (rows, _) = agreed_status(&ctl, &[1, 2, 3, 4], Duration::from_secs(10));
        if rows.iter().all(|r| r["learners"] == serde_json::json!([4])) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let follower_addr = c.client_addr(follower);
    let o = ctl.run(&["promote", "4", "--endpoints", &follower_addr, "--pin"]);
    exit_code(&o, 1);
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "error: Unavailable: promote: node {follower} is not the leader; leader is node {leader}"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "(leader is node {leader} at {})",
            c.client_addr(leader)
        )),
        "{e}"
    );

    let o = ok(ctl.run(&["promote", "4"]));
    let out = stdout(&o);
    assert!(out.starts_with("OK promote node 4 (index "), "{out}");
    assert!(
        out.ends_with("; voters [1, 2, 3, 4], learners []\n"),
        "{out}"
    );
    // Every node, the new one included, shows the new voter set.
    let t = Instant::now();
    loop {
        let (rows, l) = agreed_status(&ctl, &[1, 2, 3, 4], Duration::from_secs(10));
        assert_eq!(l, leader);
        if rows
            .iter()
            .all(|r| r["voters"] == serde_json::json!([1, 2, 3, 4]))
        {
            assert_eq!(rows[3]["role"], "follower", "{rows:?}");
            assert_eq!(rows[3]["site"], "alternate");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The new voter serves data written before it joined.
    let v = json(&ok(ctl.run(&[
        "get",
        "m/1",
        "--json",
        "--endpoints",
        &client4,
        "--pin",
    ])));
    assert_eq!(v["value"], "before-join");
    assert_eq!(v["read"]["served_by"], 4);

    let o = ok(ctl.run(&["remove-node", "4", "--json"]));
    let v = json(&o);
    assert_eq!(v["action"], "remove node 4");
    assert_eq!(v["voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(v["learners"], serde_json::json!([]));
    let v = json(&ok(ctl.run(&["members", "--json"])));
    let ids: Vec<u64> = v["voters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(v["learners"], serde_json::json!([]));
    // Removing it again: it is no member.
    let o = ctl.run(&["remove-node", "4"]);
    exit_code(&o, 1);
    assert!(
        stderr(&o).starts_with("error: FailedPrecondition: id: node 4 is not a member"),
        "{}",
        stderr(&o)
    );
    // Decommission it, so it cannot disturb the others; they still take writes.
    c.terminate(4).unwrap();
    ok(ctl.run(&["put", "m/2", "after-remove"]));
}

// ------------------------------------------------------------ cluster up

/// A `cluster.toml` for `cluster up`, with its 3 nodes on addresses of their
/// own: 127.{230-249}.x.{11-13}, a block the testkit never uses (it takes
/// 127.{20-219}.x.y), on the testkit's ports.
struct UpConfig {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    addrs: Vec<String>,
}

impl UpConfig {
    fn new() -> UpConfig {
        let dir = tempfile::Builder::new()
            .prefix("lookoutctl-up-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let pid = std::process::id();
        let (a, b) = (230 + pid % 20, (pid / 20) % 250 + 1);
        let mut toml = String::from(
            "[cluster]\nname = \"cli-up\"\npreferred_site = \"primary\"\n\n\
             [[sites]]\nname = \"primary\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"alternate\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"witness\"\nkind = \"witness\"\n",
        );
        let mut addrs = Vec::new();
        for (id, site) in [(1, "primary"), (2, "alternate"), (3, "witness")] {
            let ip = format!("127.{a}.{b}.{}", 10 + id);
            let client = format!("{ip}:{}", lookout_testkit::CLIENT_PORT);
            let peer = format!("{ip}:{}", lookout_testkit::PEER_PORT);
            toml.push_str(&format!(
                "\n[[nodes]]\nid = {id}\nsite = \"{site}\"\npeer_addr = \"{peer}\"\n\
                 client_addr = \"{client}\"\ndata_dir = \"data/node{id}\"\n"
            ));
            addrs.push(client);
        }
        let config = root.join("cluster.toml");
        std::fs::write(&config, toml).unwrap();
        UpConfig {
            _dir: dir,
            root,
            config,
            addrs,
        }
    }

    fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.root.join(format!("data/node{id}/lookoutd.log")))
            .unwrap_or_default()
    }
}

/// A running `lookoutctl cluster up`, killed if the test fails (its nodes get
/// SIGTERM then, through PR_SET_PDEATHSIG).
struct Up {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Up {
    /// Starts `cluster up` without `--bin`: it must find the lookoutd next to itself.
    fn start(cfg: &UpConfig) -> Up {
        let mut child = Command::new(lookoutctl())
            .arg("--config")
            .arg(&cfg.config)
            .args(["cluster", "up", "--ready-timeout", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        fn pump(r: impl Read + Send + 'static, buf: Arc<Mutex<String>>) {
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        pump(child.stdout.take().unwrap(), out.clone());
        pump(child.stderr.take().unwrap(), err.clone());
        Up { child, out, err }
    }

    fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn err(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until `what` appears in stdout or stderr.
    fn wait_for(&mut self, what: &str, timeout: Duration) {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.out().contains(what) || self.err().contains(what) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "cluster up exited ({st}) before {what:?}\nstdout: {}\nstderr: {}",
                    self.out(),
                    self.err()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no {what:?} after {timeout:?}\nstdout: {}\nstderr: {}",
            self.out(),
            self.err()
        );
    }

    /// The pid of the `lookoutd --node <id>` this `cluster up` started.
    fn node_pid(&self, id: u64) -> i32 {
        let me = self.child.id().to_string();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.chars().all(|ch| ch.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let Some(after) = stat.rsplit_once(')').map(|(_, s)| s) else {
                continue;
            };
            if after.split_whitespace().nth(1) != Some(me.as_str()) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let id_text = id.to_string();
            if args
                .windows(2)
                .any(|w| w[0] == b"--node" && w[1] == id_text.as_bytes())
            {
                return name.parse().unwrap();
            }
        }
        panic!("no lookoutd --node {id} among the children of cluster up");
    }

    /// Sends SIGINT (as Ctrl-C would) and returns the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on a child pid we own and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the pumps drain
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "cluster up did not stop\nstderr: {}",
                self.err()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- cluster up stdout ----\n{}---- cluster up stderr ----\n{}",
                self.out(),
                self.err()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cluster_up_runs_real_nodes_stops_cleanly_and_keeps_data() {
    let _serial = serial();
    let daemon = lookoutd();
    let cfg = UpConfig::new();
    let ctl = Ctl::new(&cfg.config);
    for a in &cfg.addrs {
        assert!(!listening(a), "{a} is already in use before the test");
    }

    // ---- first run: comes up, serves, refuses a second copy, stops on SIGINT
    let mut up = Up::start(&cfg);
    up.wait_for("Press Ctrl-C", Duration::from_secs(40));
    let err = up.err();
    assert!(
        err.contains(&format!("with {}", daemon.display())),
        "found the lookoutd next to lookoutctl: {err}"
    );
    assert!(err.contains("waiting for the cluster"), "{err}");
    let out = up.out();
    assert!(
        out.contains("Lookout cluster \"cli-up\" is up: 3 nodes, leader node "),
        "{out}"
    );
    for a in &cfg.addrs {
        assert!(out.contains(a.as_str()), "{a} missing from\n{out}");
    }
    assert!(
        out.contains("demo: put lookout/hello = \"world\" -> index "),
        "{out}"
    );
    assert!(out.contains(", version 1\n"), "{out}");
    assert!(
        out.contains("demo: get lookout/hello -> \"world\" (version 1, written at index "),
        "{out}"
    );
    assert!(
        out.contains("lookoutctl --config"),
        "the hint names the non-default config: {out}"
    );
    for id in 1..=3 {
        let log = cfg.log(id);
        assert!(
            log.contains(&format!("lookoutctl cluster up: starting node {id}")),
            "{log}"
        );
        assert!(log.contains("lookoutd started"), "{log}");
    }

    // It is a real cluster: one leader, the commands work against it.
    agreed_status(&ctl, &[1, 2, 3], Duration::from_secs(10));
    let o = ok(ctl.run(&["put", "persist/key", "kept"]));
    assert!(stdout(&o).ends_with(", version 1)\n"), "{}", stdout(&o));
    let o = ok(ctl.run(&["get", "persist/key"]));
    assert_eq!(stdout(&o), "kept\n");
    let o = ok(ctl.run(&["get", "lookout/hello"]));
    assert_eq!(stdout(&o), "world\n");

    // A second `up` refuses: the addresses are taken.
    let o = ctl.run(&["cluster", "up", "--ready-timeout", "5"]);
    exit_code(&o, 1);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));

    let st = up.interrupt();
    assert_eq!(st.code(), Some(0), "{st}\n{}", up.err());
    let err = up.err();
    for id in 1..=3 {
        assert!(
            err.contains(&format!("node {id} stopped (exit code 0)")),
            "{err}"
        );
    }
    assert!(err.contains("stopped; data is kept"), "{err}");
    assert!(!err.contains("exited unexpectedly"), "{err}");
    for a in &cfg.addrs {
        assert!(!listening(a), "{a} still served after stop");
    }
    drop(up);

    // ---- second run on the same data: everything is still there
    let mut up = Up::start(&cfg);
    up.wait_for("Press Ctrl-C", Duration::from_secs(40));
    let out = up.out();
    assert!(
        out.contains("demo: put lookout/hello = \"world\" -> index "),
        "{out}"
    );
    assert!(
        out.contains(", version 2\n"),
        "the demo key survived the restart, so its version went up: {out}"
    );
    let v = json(&ok(ctl.run(&["get", "persist/key", "--json"])));
    assert_eq!(v["value"], "kept");
    assert_eq!(v["version"], 1);
    let (_, leader) = agreed_status(&ctl, &[1, 2, 3], Duration::from_secs(10));

    // A node that dies is reported with its log; the others keep serving.
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let pid = up.node_pid(victim);
    // SAFETY: kill(2) on a grandchild we located by its parent and command line.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    up.wait_for(
        &format!("node {victim} exited unexpectedly (killed by signal 9)"),
        Duration::from_secs(10),
    );
    let err = up.err();
    assert!(
        err.contains(&format!("data/node{victim}/lookoutd.log")),
        "{err}"
    );
    assert!(err.contains("  | "), "shows the log tail: {err}");
    let o = ok(ctl.run(&["put", "persist/after-crash", "still-here"]));
    assert!(
        stdout(&o).starts_with("OK persist/after-crash"),
        "{}",
        stdout(&o)
    );

    let st = up.interrupt();
    assert_eq!(st.code(), Some(0), "{st}\n{}", up.err());
    let err = up.err();
    for id in [1, 2, 3].into_iter().filter(|id| *id != victim) {
        assert!(
            err.contains(&format!("node {id} stopped (exit code 0)")),
            "{err}"
        );
    }
    assert!(!err.contains(&format!("node {victim} stopped")), "{err}");
    for a in &cfg.addrs {
        assert!(!listening(a), "{a} still served after stop");
    }
}

#[test]
fn unreachable_cluster_fails_with_a_clear_error() {
    let dead = format!("127.0.0.1:{}", free_port());
    let o = Command::new(lookoutctl())
        .args(["--endpoints", &dead, "--timeout", "300", "get", "k"])
        .current_dir(Path::new("/"))
        .output()
        .unwrap();
    exit_code(&o, 1);
    let e = stderr(&o);
    assert!(e.starts_with("error: Unavailable: "), "{e}");
    assert!(e.contains(&dead), "{e}");

    // No --endpoints and no cluster.toml here.
    let o = Command::new(lookoutctl())
        .args(["status"])
        .current_dir(Path::new("/"))
        .env_remove("LOOKOUT_CONFIG")
        .env_remove("LOOKOUT_ENDPOINTS")
        .output()
        .unwrap();
    exit_code(&o, 1);
    assert!(
        stderr(&o).contains("cannot load config cluster.toml"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--endpoints"), "{}", stderr(&o));
}
