//! End-to-end tests of the lookoutctl binary against `examples/fake_lookoutd`
//! (same command line and client conventions as lookoutd, no Raft): `cluster up`
//! start-up, demo, supervision and clean stop, then every kv/admin command's
//! output and exit status.

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
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;

fn lookoutctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lookoutctl"))
}

/// `cargo test` builds examples next to the binaries.
fn fake_lookoutd() -> PathBuf {
    let p = lookoutctl()
        .parent()
        .unwrap()
        .join("examples")
        .join("fake_lookoutd");
    assert!(
        p.is_file(),
        "{} missing: run through `cargo test`",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    /// Client addresses of nodes 1..=3.
    addrs: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut toml = String::from(
            "[cluster]\nname = \"test\"\npreferred_site = \"primary\"\n\n\
             [[sites]]\nname = \"primary\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"alternate\"\nkind = \"datacenter\"\n\n\
             [[sites]]\nname = \"witness\"\nkind = \"witness\"\n",
        );
        let mut addrs = Vec::new();
        for (id, site) in [(1, "primary"), (2, "alternate"), (3, "witness")] {
            let client = format!("127.0.0.1:{}", free_port());
            let peer = format!("127.0.0.1:{}", free_port());
            toml.push_str(&format!(
                "\n[[nodes]]\nid = {id}\nsite = \"{site}\"\npeer_addr = \"{peer}\"\n\
                 client_addr = \"{client}\"\ndata_dir = \"data/node{id}\"\n"
            ));
            addrs.push(client);
        }
        let config = root.join("cluster.toml");
        std::fs::write(&config, toml).unwrap();
        Fixture {
            _dir: dir,
            root,
            config,
            addrs,
        }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(lookoutctl())
            .arg("--config")
            .arg(&self.config)
            .args(args)
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

/// A running `lookoutctl cluster up`, killed if the test fails.
struct Up {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Up {
    fn start(fx: &Fixture, env: &[(&str, &str)]) -> Up {
        let mut cmd = Command::new(lookoutctl());
        cmd.arg("--config")
            .arg(&fx.config)
            .args(["cluster", "up", "--ready-timeout", "30", "--bin"])
            .arg(fake_lookoutd())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
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

    /// Sends SIGINT (as Ctrl-C would) and returns the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the pumps drain
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "cluster up did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // The children die with it (PR_SET_PDEATHSIG).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

#[test]
fn cluster_up_serves_commands_and_stops_cleanly() {
    let fx = Fixture::new();
    let mut up = Up::start(&fx, &[]);
    up.wait_for("Press Ctrl-C", Duration::from_secs(30));
    let out = up.out();
    assert!(
        out.contains("Lookout cluster \"test\" is up: 3 nodes, leader node 1"),
        "{out}"
    );
    for a in &fx.addrs {
        assert!(out.contains(a.as_str()), "{a} missing from\n{out}");
    }
    assert!(
        out.contains("demo: put lookout/hello = \"world\" -> index 1, version 1"),
        "{out}"
    );
    assert!(
        out.contains("demo: get lookout/hello -> \"world\" (version 1, written at index 1)"),
        "{out}"
    );
    assert!(
        out.contains("lookoutctl --config"),
        "hint names the non-default config: {out}"
    );
    assert!(up.err().contains("waiting for the cluster"), "{}", up.err());
    for id in 1..=3 {
        let log = fx.root.join(format!("data/node{id}/lookoutd.log"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!("fake lookoutd node {id}: serving")),
            "{text}"
        );
    }

    // A second `up` refuses: the addresses are taken.
    let o = fx.ctl(&["cluster", "up", "--bin", fake_lookoutd().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));

    kv_commands(&fx);
    admin_commands(&fx);

    let st = up.interrupt();
    assert!(st.success(), "{st}\n{}", up.err());
    let err = up.err();
    for id in 1..=3 {
        assert!(
            err.contains(&format!("node {id} stopped (exit code 0)")),
            "{err}"
        );
        let log = fx.root.join(format!("data/node{id}/lookoutd.log"));
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("SIGTERM, shutting down")
        );
    }
    for a in &fx.addrs {
        assert!(!listening(a), "{a} still served after stop");
    }
}

fn kv_commands(fx: &Fixture) {
    let o = ok(fx.ctl(&["put", "hello", "world"]));
    assert_eq!(stdout(&o), "OK hello (index 2, version 1)\n");
    let o = ok(fx.ctl(&["get", "hello"]));
    assert_eq!(stdout(&o), "world\n");
    assert!(
        stderr(&o).contains("version 1, created at index 2, modified at index 2"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("on node 1 (linearizable)"),
        "{}",
        stderr(&o)
    );
    let v = json(&ok(fx.ctl(&[
        "get",
        "hello",
        "--json",
        "--consistency",
        "lease",
    ])));
    assert_eq!(v["value"], "world");
    assert_eq!(v["found"], true);
    assert_eq!(v["version"], 1);
    assert_eq!(v["read"]["served_by"], 1);
    assert_eq!(v["read"]["consistency"], "lease");

    // Pinned to a follower: a stale read is served there (the fake's followers
    // hold no data); a linearizable one is refused with the leader hint.
    let n3 = fx.addrs[2].as_str();
    let v = json(&ok(fx.ctl(&[
        "get",
        "hello",
        "--json",
        "--endpoints",
        n3,
        "--pin",
        "--consistency",
        "stale",
        "--max-staleness-ms",
        "100",
    ])));
    assert_eq!(v["found"], false);
    assert_eq!(v["read"]["served_by"], 3);
    let o = fx.ctl(&["get", "hello", "--endpoints", n3, "--pin"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with("error: Unavailable: node 3 is not the leader"),
        "{e}"
    );
    assert!(
        e.contains(&format!("leader is node 1 at {}", fx.addrs[0])),
        "{e}"
    );
    let v = json(&fx.ctl(&["put", "k", "v", "--endpoints", n3, "--pin", "--json"]));
    assert_eq!(v["error"]["code"], "Unavailable");
    assert_eq!(v["error"]["leader_id"], 1);
    assert_eq!(v["error"]["leader_addr"], fx.addrs[0]);
    // Not pinned: the redirect is followed.
    ok(fx.ctl(&["put", "via-follower", "v", "--endpoints", n3]));
    let o = fx.ctl(&["get", "hello", "--max-staleness-ms", "5"]);
    assert_eq!(o.status.code(), Some(1), "needs --consistency stale");

    // compare-and-swap
    let o = ok(fx.ctl(&["cas", "hello", "there", "--expect-version", "1"]));
    assert_eq!(
        stdout(&o),
        "OK hello (index 4, version 2; was version 1 = world)\n"
    );
    let o = fx.ctl(&["cas", "hello", "again", "--expect-value", "world"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stdout(&o),
        "compare failed: hello is version 2 = there (index 5)\n"
    );
    let v = json(&ok(fx.ctl(&[
        "cas",
        "fresh",
        "x",
        "--expect-absent",
        "--json",
    ])));
    assert_eq!(v["succeeded"], true);
    assert_eq!(v["new_version"], 1);
    assert_eq!(v["previous"], Value::Null);
    let o = ok(fx.ctl(&["cas", "fresh", "--delete", "--expect-value", "x"]));
    assert!(stdout(&o).starts_with("OK deleted fresh"), "{}", stdout(&o));

    // delete
    let o = ok(fx.ctl(&["del", "hello"]));
    assert_eq!(stdout(&o), "deleted hello (index 8)\n");
    let v = json(&ok(fx.ctl(&["del", "hello", "--json"])));
    assert_eq!(v["existed"], false);
    let o = ok(fx.ctl(&["get", "hello"]));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("hello: not found"), "{}", stderr(&o));

    // range
    for i in 1..=5 {
        ok(fx.ctl(&["put", &format!("r/{i}"), &format!("v{i}")]));
    }
    let o = ok(fx.ctl(&["range", "r/", "--limit", "2"]));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("KEY"));
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
    let v = json(&ok(fx.ctl(&[
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
        fx.ctl(&["range", "r/", "--limit", "2", "--all", "--json"])
    ));
    assert_eq!(v["count"], 5);
    assert_eq!(v["continuation"], Value::Null);
    assert_eq!(v["kvs"][4]["value"], "v5");

    // errors
    let o = fx.ctl(&["put", "", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: InvalidArgument: key: must not be empty"),
        "{}",
        stderr(&o)
    );
}

fn admin_commands(fx: &Fixture) {
    let v = json(&ok(fx.ctl(&["status", "--json"])));
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    for (i, s) in arr.iter().enumerate() {
        assert_eq!(s["id"], i as u64 + 1);
        assert_eq!(s["leader"], 1);
        assert_eq!(s["endpoint"], fx.addrs[i]);
        assert_eq!(s["reachable"], true);
    }
    assert_eq!(arr[0]["role"], "leader");
    assert_eq!(arr[1]["role"], "follower");
    assert_eq!(arr[1]["site"], "alternate");

    let o = ok(fx.ctl(&["status"]));
    let text = stdout(&o);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
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
        ]
    );
    assert!(text.lines().nth(1).unwrap().contains("leader"), "{text}");
    assert!(text.contains("fake-0.1"), "{text}");

    // An unreachable endpoint is a row with the error.
    let dead = format!("127.0.0.1:{}", free_port());
    let eps = format!("{},{dead}", fx.addrs[0]);
    let o = ok(fx.ctl(&["status", "--endpoints", &eps, "--timeout", "500"]));
    let text = stdout(&o);
    assert!(text.lines().next().unwrap().ends_with("ERROR"), "{text}");
    let row = text.lines().find(|l| l.contains(&dead)).unwrap();
    assert!(
        row.contains("unreachable") && row.contains("Unavailable"),
        "{row}"
    );
    let v = json(&ok(fx.ctl(&["status", "--endpoints", &eps, "--json"])));
    assert_eq!(v[1]["reachable"], false);
    assert_eq!(v[1]["error"]["code"], "Unavailable");
    // Nothing reachable at all: exit 1.
    let o = fx.ctl(&["status", "--endpoints", &dead]);
    assert_eq!(o.status.code(), Some(1));

    let v = json(&ok(fx.ctl(&["members", "--json"])));
    assert_eq!(v["leader"], 1);
    let voters = v["voters"].as_array().unwrap();
    assert_eq!(voters.len(), 3);
    assert_eq!(voters[2]["site"], "witness");
    assert_eq!(voters[2]["client_addr"], fx.addrs[2]);
    assert!(
        voters[2]["peer_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let o = ok(fx.ctl(&["members"]));
    assert!(
        stdout(&o).starts_with("leader: node 1, term 1"),
        "{}",
        stdout(&o)
    );

    let o = fx.ctl(&["transfer-leader", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("FailedPrecondition: fake lookoutd: leadership transfer not supported"),
        "{}",
        stderr(&o)
    );
    let o = fx.ctl(&[
        "add-learner",
        "9",
        "--peer-addr",
        "127.0.0.1:1",
        "--client-addr",
        "127.0.0.1:2",
        "--site",
        "primary",
    ]);
    assert!(stderr(&o).contains("FailedPrecondition"), "{}", stderr(&o));
}

#[test]
fn cluster_up_reports_a_dying_node_and_keeps_the_rest() {
    let fx = Fixture::new();
    let mut up = Up::start(&fx, &[("FAKE_LOOKOUTD_CRASH", "2:2500")]);
    up.wait_for("Press Ctrl-C", Duration::from_secs(30));
    up.wait_for(
        "node 2 exited unexpectedly (exit code 3)",
        Duration::from_secs(10),
    );
    let err = up.err();
    assert!(
        err.contains("  | fake lookoutd node 2: crashing on purpose"),
        "{err}"
    );
    assert!(err.contains("data/node2/lookoutd.log"), "{err}");
    // The others still serve.
    ok(fx.ctl(&["put", "still", "here"]));
    let st = up.interrupt();
    assert!(st.success(), "{st}");
    let err = up.err();
    assert!(
        err.contains("node 1 stopped (exit code 0)") && err.contains("node 3 stopped"),
        "{err}"
    );
    assert!(!err.contains("node 2 stopped"), "{err}");
}

#[test]
fn unreachable_cluster_fails_with_a_clear_error() {
    let dead = format!("127.0.0.1:{}", free_port());
    let o = Command::new(lookoutctl())
        .args(["--endpoints", &dead, "--timeout", "300", "get", "k"])
        .current_dir(Path::new("/"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.starts_with("error: Unavailable: "), "{e}");
    assert!(e.contains(&dead), "{e}");

    // No --endpoints and no cluster.toml here.
    let o = Command::new(lookoutctl())
        .args(["status"])
        .current_dir(Path::new("/"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot load config cluster.toml"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--endpoints"), "{}", stderr(&o));
}
