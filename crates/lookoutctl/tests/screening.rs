//! End-to-end tests of lookoutctl's screening commands against real `lookoutd`
//! processes (clusters started by `lookout-testkit`): bulk ingest of JSON-lines
//! files with bad lines and bad records, screening a planted lookout, manifests,
//! and lookout put/get/retire/list, in text and `--json`.
//!
//! `lookoutd` is taken from next to the `lookoutctl` binary (see `cli.rs`).

use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Output;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;

use lookout_screening as domain;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;
use serde_json::Value;

const LEADER_WAIT: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn lookoutctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lookoutctl"))
}

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

fn start_cluster(rt: &tokio::runtime::Runtime) -> (TestCluster, u64) {
    let bin = lookoutd();
    let c = rt
        .block_on(async { TestCluster::start(&ClusterSpec::three(), &bin) })
        .expect("start cluster");
    let leader = rt.block_on(c.wait_leader(LEADER_WAIT)).expect("a leader");
    (c, leader)
}

struct Ctl {
    config: PathBuf,
}

impl Ctl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(lookoutctl());
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("LOOKOUT_ENDPOINTS");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
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
    exit_code(&o, 0);
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

fn pn(given: &str, surname: &str) -> domain::PersonName {
    domain::PersonName::new(given, surname)
}

fn lookout(
    id: &str,
    name: domain::PersonName,
    dob: Option<&str>,
    category: domain::Category,
) -> domain::Lookout {
    domain::Lookout {
        id: id.into(),
        subject: domain::Subject {
            name,
            aliases: vec![],
            dob: dob.map(|d| domain::PartialDate::parse(d).unwrap()),
            sex: domain::Sex::Unknown,
            nationalities: vec![],
        },
        documents: vec![],
        category,
        reason: "cli test".into(),
        source_agency: "CBSA".into(),
        valid_from_ms: None,
        valid_until_ms: None,
        version: 0,
        created_by: String::new(),
        updated_by: String::new(),
        retired: false,
    }
}

fn passport(country: &str, number: &str) -> domain::Document {
    domain::Document {
        doc_type: domain::DocType::Passport,
        country: domain::CountryCode::parse(country).unwrap(),
        number: number.into(),
        expiry: None,
    }
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Distinct names for the filler lookouts (digits would be normalised away).
const SURNAMES: [&str; 38] = [
    "Anderson",
    "Baptiste",
    "Castellanos",
    "Dubois",
    "Eriksson",
    "Fitzgerald",
    "Gonzaga",
    "Hoffmann",
    "Iwasaki",
    "Jovanovic",
    "Kowalczyk",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Oyelaran",
    "Pettersen",
    "Quintero",
    "Rasmussen",
    "Szabo",
    "Tanaka",
    "Umarov",
    "Vasquez",
    "Whitfield",
    "Xenakis",
    "Yilmaz",
    "Zielinski",
    "Abernathy",
    "Bergstrom",
    "Chakraborty",
    "Delacroix",
    "Esposito",
    "Fairweather",
    "Grimaldi",
    "Hakobyan",
    "Ibarra",
    "Jablonski",
    "Kuznetsova",
    "Lombardi",
];
const GIVEN: [&str; 5] = ["Margaret", "Tobias", "Ingrid", "Rafael", "Keiko"];

/// 40 lookouts as JSON lines (line numbers 1-based): a bad JSON line at 5, a
/// blank line at 9, a record the server rejects (empty document number) at 12,
/// and a planted no-board lookout at 20.
fn lookouts_file(path: &Path) {
    let mut lines = Vec::new();
    let mut n = 0;
    while lines.len() < 42 {
        let line_no = lines.len() + 1;
        match line_no {
            5 => lines.push("{\"id\": \"broken\", this is not json".to_string()),
            9 => lines.push("   ".to_string()),
            12 => {
                let mut l = lookout(
                    "C-bad-doc",
                    pn("Omar", "Haddad"),
                    Some("1975"),
                    domain::Category::AlertOnly,
                );
                let mut d = passport("JOR", "X");
                d.number = String::new();
                l.documents = vec![d];
                lines.push(serde_json::to_string(&l).unwrap());
            }
            20 => {
                let mut l = lookout(
                    "C-PLANTED",
                    pn("Aleksandr", "Petrov"),
                    Some("1985-11-02"),
                    domain::Category::NoBoard,
                );
                l.documents = vec![passport("RUS", "751234567")];
                l.subject.aliases = vec![pn("Sasha", "Petrov")];
                lines.push(serde_json::to_string(&l).unwrap());
            }
            _ => {
                let cat = match n % 3 {
                    0 => domain::Category::AlertOnly,
                    1 => domain::Category::ReferSecondary,
                    _ => domain::Category::NoBoard,
                };
                let l = lookout(
                    &format!("C-{n:03}"),
                    pn(GIVEN[n % GIVEN.len()], SURNAMES[n]),
                    Some("1950"),
                    cat,
                );
                lines.push(serde_json::to_string(&l).unwrap());
                n += 1;
            }
        }
    }
    write_lines(path, &lines);
}

#[test]
fn ingest_screen_and_manifest() {
    let _serial = serial();
    let rt = runtime();
    let (c, leader) = start_cluster(&rt);
    let ctl = Ctl {
        config: c.config_path.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lookouts.jsonl");
    lookouts_file(&file);
    let file_s = file.to_str().unwrap();

    // ---- ingest lookouts, in calls of 7 records, --json
    let o = ctl.run(&[
        "ingest", "lookouts", file_s, "--actor", "loader", "--chunk", "7", "--json",
    ]);
    exit_code(&o, 4);
    let v = json(&o);
    assert_eq!(v["kind"], "lookouts");
    // 42 lines: one blank, one not JSON, 40 records sent of which one is rejected.
    assert_eq!(v["sent"], 40, "{v:#}");
    assert_eq!(v["accepted"], 39, "{v:#}");
    assert_eq!(v["rejected"], 1, "{v:#}");
    assert_eq!(v["bad_lines"], 1, "{v:#}");
    assert_eq!(v["calls"], 6, "{v:#}");
    assert_eq!(v["lines_read"], 42, "{v:#}");
    assert!(v["index"].as_u64().unwrap() > 0);
    assert_eq!(v["error"], Value::Null);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v:#}");
    assert_eq!(errors[0]["line"], 5);
    assert_eq!(errors[0]["position"], Value::Null);
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON"),
        "{v:#}"
    );
    assert_eq!(errors[1]["line"], 12);
    // Line 12 is the 10th record sent (lines 5 and 9 were not sent): position 9.
    assert_eq!(errors[1]["position"], 9);
    assert_eq!(errors[1]["id"], "C-bad-doc");
    assert_eq!(errors[1]["field"], "lookout.documents[0].number");
    // No progress line when stderr is not a terminal, but one note per completed call.
    let err = stderr(&o);
    assert!(!err.contains('\r'), "{err}");
    assert!(err.contains("call 6 done"), "{err}");

    // ---- the same file again, as text, in one call: records are replaced
    let o = ctl.run(&["ingest", "lookouts", file_s, "--actor", "loader"]);
    exit_code(&o, 4);
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!(
            "ingest lookouts from {file_s}: 39 accepted, 1 rejected, 1 bad line skipped (42 lines, 1 call, "
        )),
        "{text}"
    );
    assert!(text.contains("errors:"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("C-bad-doc"))
        .expect("the rejected record");
    assert!(
        row.contains("lookout.documents[0].number") && row.contains("must not be empty"),
        "{row}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("5 ") && l.contains("not valid JSON")),
        "{text}"
    );

    // ---- resume from a line: only what follows is sent
    let o = ok(ctl.run(&[
        "ingest",
        "lookouts",
        file_s,
        "--actor",
        "loader",
        "--from-line",
        "13",
        "--json",
    ]));
    let v = json(&o);
    assert_eq!(
        (
            v["accepted"].as_u64(),
            v["rejected"].as_u64(),
            v["bad_lines"].as_u64()
        ),
        (Some(30), Some(0), Some(0))
    );

    // ---- screen finds the planted lookout by a transliterated name
    let o = ok(ctl.run(&[
        "screen",
        "--surname",
        "Petrov",
        "--given",
        "Alexander",
        "--dob",
        "1985-11-02",
    ]));
    let text = stdout(&o);
    assert!(text.starts_with("DECISION: NO-BOARD\n"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("C-PLANTED"))
        .expect("a match row");
    assert!(
        row.contains("no-board") && row.contains("Aleksandr Petrov") && row.contains("1985-11-02"),
        "{row}"
    );
    assert!(text.contains("screened against applied index "), "{text}");
    let v = json(&ok(ctl.run(&[
        "screen",
        "--surname",
        "Petrov",
        "--given",
        "Alexander",
        "--dob",
        "1985-11-02",
        "--json",
    ])));
    assert_eq!(v["decision"], "no-board");
    assert_eq!(v["matches"][0]["id"], "C-PLANTED");
    assert_eq!(v["matches"][0]["category"], "no-board");
    assert!(v["matches"][0]["score"].as_f64().unwrap() >= 0.85);
    assert!(!v["matches"][0]["reasons"].as_array().unwrap().is_empty());
    assert_eq!(v["read"]["consistency"], "linearizable");
    // By document only, on a follower's local state.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let fa = c.client_addr(follower);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = json(&ok(ctl.run(&[
            "screen",
            "--doc",
            "passport:rus:751234567",
            "--endpoints",
            &fa,
            "--pin",
            "--consistency",
            "stale",
            "--max-staleness-ms",
            "5000",
            "--json",
        ])));
        if v["decision"] == "no-board" || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(v["decision"], "no-board", "{v:#}");
    assert_eq!(v["matches"][0]["id"], "C-PLANTED");
    assert_eq!(v["read"]["consistency"], "stale");
    assert_eq!(v["read"]["served_by"], follower);
    // A stale read shows its staleness in text.
    let o = ok(ctl.run(&[
        "screen",
        "--surname",
        "Nobody",
        "--endpoints",
        &fa,
        "--pin",
        "--consistency",
        "stale",
    ]));
    let text = stdout(&o);
    assert!(text.starts_with("DECISION: CLEAR\n"), "{text}");
    assert!(
        text.contains("no matching lookouts") && text.contains(" ms stale"),
        "{text}"
    );
    // Bad flags are usage errors before anything is sent.
    let o = ctl.run(&["screen", "--surname", "X", "--dob", "1985-13"]);
    exit_code(&o, 1);
    assert!(stderr(&o).contains("--dob"), "{}", stderr(&o));
    let o = ctl.run(&["screen", "--dob", "1985"]);
    exit_code(&o, 2);

    // ---- travellers: ingest (domain Traveller lines, "version" may be left out)
    let travellers = dir.path().join("travellers.jsonl");
    let mut lines = Vec::new();
    for i in 0..1100u32 {
        let identity = match i {
            500 => domain::Identity {
                names: vec![pn("Alexandr", "Petrov")],
                dob: Some(domain::PartialDate::parse("1985-11-02").unwrap()),
                ..Default::default()
            },
            1050 => domain::Identity {
                names: vec![pn(GIVEN[1], SURNAMES[1])],
                dob: Some(domain::PartialDate::parse("1950-03-04").unwrap()),
                ..Default::default()
            },
            _ => domain::Identity {
                names: vec![pn(&format!("Pax{i}"), &format!("Qwertyuiop{i}"))],
                dob: Some(domain::PartialDate::parse("1999-09-09").unwrap()),
                ..Default::default()
            },
        };
        let mut v = serde_json::to_value(domain::Traveller {
            id: format!("P-{i:04}"),
            identity,
            itinerary: domain::Itinerary {
                carrier: "AC".into(),
                flight_number: "870".into(),
                departure_port: "CDG".into(),
                arrival_port: "YUL".into(),
                scheduled_arrival_ms: 1_767_225_600_000,
            },
            version: 0,
        })
        .unwrap();
        v.as_object_mut().unwrap().remove("version");
        lines.push(v.to_string());
    }
    lines.insert(3, "[1, 2, 3]".to_string()); // line 4: JSON, but not a traveller
    write_lines(&travellers, &lines);
    let tfile = travellers.to_str().unwrap();
    let o = ctl.run(&["ingest", "travellers", tfile, "--json"]);
    exit_code(&o, 4);
    let v = json(&o);
    assert_eq!(
        (
            v["accepted"].as_u64(),
            v["rejected"].as_u64(),
            v["bad_lines"].as_u64()
        ),
        (Some(1100), Some(0), Some(1))
    );
    assert_eq!(v["errors"][0]["line"], 4);
    assert!(
        v["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a traveller"),
        "{v:#}"
    );

    // ---- traveller get
    let v = json(&ok(ctl.run(&["traveller", "get", "P-0500", "--json"])));
    assert_eq!(v["traveller"]["id"], "P-0500");
    assert_eq!(v["traveller"]["identity"]["names"][0]["surname"], "Petrov");
    assert_eq!(v["traveller"]["itinerary"]["flight_number"], "870");
    assert!(
        v["traveller"].get("version").is_none(),
        "reads do not return a traveller's version"
    );
    let o = ok(ctl.run(&["traveller", "get", "P-0500"]));
    let text = stdout(&o);
    assert!(text.starts_with("traveller P-0500\n"), "{text}");
    assert!(
        text.contains("AC870 CDG -> YUL, arriving 2026-01-01T00:00:00Z"),
        "{text}"
    );
    let o = ctl.run(&["traveller", "get", "P-9999"]);
    exit_code(&o, 1);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));

    // ---- manifest: the same file, 1,100 passengers in two calls
    let v = json(&ok(ctl.run(&["manifest", tfile, "--json"])));
    assert_eq!(v["flight"], "AC870", "{v:#}");
    assert_eq!(v["passengers"], 1100);
    assert_eq!(v["calls"], 2);
    assert_eq!(v["no_board"], 1, "{v:#}");
    assert_eq!(v["refer_secondary"], 1, "{v:#}");
    assert_eq!(v["clear"], 1098);
    let d = v["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{v:#}");
    assert_eq!(d[0]["reference"], "P-0500");
    assert_eq!(d[0]["line"], 502); // the bad line 4 shifts every later traveller by one
    assert_eq!(d[0]["decision"], "no-board");
    assert_eq!(d[0]["matches"][0]["id"], "C-PLANTED");
    assert_eq!(d[1]["reference"], "P-1050");
    assert_eq!(d[1]["decision"], "refer-secondary");
    assert_eq!(d[1]["matches"][0]["id"], "C-001");
    assert_eq!(v["bad_lines"][0]["line"], 4);
    let o = ok(ctl.run(&["manifest", tfile, "--flight", "AC871"]));
    let text = stdout(&o);
    assert!(
        text.contains(
            "flight AC871: 1,100 passengers screened in 2 calls: 1 no-board, 1 refer to secondary, 1,098 clear"
        ),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("P-0500"))
        .expect("a row for P-0500");
    assert!(
        row.contains("no-board") && row.contains("C-PLANTED"),
        "{row}"
    );
    assert!(
        !text.contains("P-0001 "),
        "clear passengers are not listed: {text}"
    );
    assert!(text.contains("line 4: not a traveller"), "{text}");
}

#[test]
fn lookout_put_get_retire_list() {
    let _serial = serial();
    let rt = runtime();
    let (c, _leader) = start_cluster(&rt);
    let ctl = Ctl {
        config: c.config_path.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("L.json");
    let mut l = lookout(
        "X-1",
        pn("Wei", "Zhang"),
        Some("1972-06-30"),
        domain::Category::ReferSecondary,
    );
    l.documents = vec![passport("CHN", "E12345678")];
    std::fs::write(&path, serde_json::to_string_pretty(&l).unwrap()).unwrap();
    let p = path.to_str().unwrap();

    // ---- put: create only, then a conflict (exit 3, current version reported)
    let o = ok(ctl.run(&[
        "lookout",
        "put",
        "--file",
        p,
        "--actor",
        "officer-1",
        "--expected-version",
        "0",
    ]));
    assert!(
        stdout(&o).starts_with("OK put lookout X-1: version 1 (index "),
        "{}",
        stdout(&o)
    );
    let o = ctl.run(&[
        "lookout",
        "put",
        "--file",
        p,
        "--actor",
        "officer-1",
        "--expected-version",
        "0",
        "--json",
    ]);
    exit_code(&o, 3);
    let v = json(&o);
    assert_eq!(v["error"]["code"], "FailedPrecondition");
    assert_eq!(v["error"]["current_version"], 1);
    assert!(
        stderr(&o).contains("already exists at version 1"),
        "{}",
        stderr(&o)
    );

    // ---- get --json round-trips through put (stdin), with the right expected version
    let v = json(&ok(ctl.run(&["lookout", "get", "X-1", "--json"])));
    assert_eq!(v["lookout"]["id"], "X-1");
    assert_eq!(v["lookout"]["version"], 1);
    assert_eq!(v["lookout"]["created_by"], "officer-1");
    assert_eq!(v["lookout"]["category"], "ReferSecondary");
    assert!(v["lookout"]["mod_index"].as_u64().unwrap() > 0);
    assert_eq!(v["read"]["consistency"], "linearizable");
    let mut edited = v["lookout"].clone();
    edited["category"] = "NoBoard".into();
    edited["reason"] = "escalated".into();
    let o = ok(ctl.run_with_stdin(
        &[
            "lookout",
            "put",
            "--file",
            "-",
            "--actor",
            "officer-2",
            "--expected-version",
            "1",
            "--json",
        ],
        &edited.to_string(),
    ));
    let v = json(&o);
    assert_eq!(v["version"], 2);
    // A hand-written file may leave out what the store sets.
    let minimal = r#"{"id":"X-2","subject":{"name":{"given":"Li","surname":"Na"},"aliases":[],"dob":null,"sex":"Female","nationalities":["CHN"]},"category":"AlertOnly","valid_from_ms":null,"valid_until_ms":null}"#;
    let o = ok(ctl.run_with_stdin(
        &["lookout", "put", "--file", "-", "--actor", "officer-1"],
        minimal,
    ));
    assert!(
        stdout(&o).starts_with("OK put lookout X-2: version 1"),
        "{}",
        stdout(&o)
    );
    // Invalid files are refused before anything is sent, or by the server naming the field.
    let o = ctl.run_with_stdin(&["lookout", "put", "--file", "-", "--actor", "a"], "{oops");
    exit_code(&o, 1);
    assert!(
        stderr(&o).contains("stdin: not valid JSON"),
        "{}",
        stderr(&o)
    );
    let bad = minimal
        .replace("\"Li\"", "\"L\\u0007i\"")
        .replace("X-2", "X-3");
    let o = ctl.run_with_stdin(&["lookout", "put", "--file", "-", "--actor", "a"], &bad);
    exit_code(&o, 1);
    assert!(
        stderr(&o).contains("InvalidArgument: lookout.subject.name.given"),
        "{}",
        stderr(&o)
    );

    // ---- get (text, with history)
    let o = ok(ctl.run(&["lookout", "get", "X-1", "--history"]));
    let text = stdout(&o);
    assert!(
        text.starts_with("lookout X-1 (version 2, written at index "),
        "{text}"
    );
    for want in [
        "no-board",
        "Wei Zhang",
        "1972-06-30",
        "passport:CHN:E12345678",
        "escalated",
        "officer-2",
        "history (oldest first):",
    ] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    let hist: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("history"))
        .skip(2)
        .collect();
    assert_eq!(hist.len(), 2, "{text}");
    assert!(
        hist[0].trim_start().starts_with("1 ") && hist[0].contains("refer-secondary"),
        "{text}"
    );
    assert!(
        hist[1].trim_start().starts_with("2 ") && hist[1].contains("no-board"),
        "{text}"
    );
    let v = json(&ok(ctl.run(&[
        "lookout",
        "get",
        "X-1",
        "--history",
        "--json",
    ])));
    assert_eq!(v["history"].as_array().unwrap().len(), 1);
    assert_eq!(v["history"][0]["version"], 1);

    // ---- retire: wrong version (exit 3), then right; missing id (exit 1)
    let o = ctl.run(&[
        "lookout",
        "retire",
        "X-1",
        "--actor",
        "officer-3",
        "--expected-version",
        "1",
    ]);
    exit_code(&o, 3);
    assert!(stderr(&o).contains("is at version 2"), "{}", stderr(&o));
    let o = ok(ctl.run(&[
        "lookout",
        "retire",
        "X-1",
        "--actor",
        "officer-3",
        "--expected-version",
        "2",
    ]));
    assert!(
        stdout(&o).starts_with("OK retired lookout X-1: version 3 (index "),
        "{}",
        stdout(&o)
    );
    let o = ctl.run(&["lookout", "retire", "X-404", "--actor", "officer-3"]);
    exit_code(&o, 1);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    let v = json(&ok(ctl.run(&["lookout", "get", "X-1", "--json"])));
    assert_eq!(v["lookout"]["retired"], true);
    assert_eq!(v["lookout"]["updated_by"], "officer-3");
    let o = ctl.run(&["lookout", "get", "X-404"]);
    exit_code(&o, 1);
    // A retired lookout never matches.
    let v = json(&ok(ctl.run(&[
        "screen",
        "--surname",
        "Zhang",
        "--given",
        "Wei",
        "--dob",
        "1972-06-30",
        "--json",
    ])));
    assert_eq!(v["decision"], "clear", "{v:#}");

    // ---- list
    for i in 0..7 {
        let mut li = lookout(
            &format!("Y-{i}"),
            pn("Anna", &format!("Listed{i}")),
            None,
            domain::Category::NoBoard,
        );
        if i >= 5 {
            li.category = domain::Category::AlertOnly;
            li.valid_from_ms = Some(4_000_000_000_000); // in 2096
        }
        let o = ok(ctl.run_with_stdin(
            &["lookout", "put", "--file", "-", "--actor", "officer-4"],
            &serde_json::to_string(&li).unwrap(),
        ));
        assert!(stdout(&o).contains(&format!("Y-{i}")));
    }
    let v = json(&ok(ctl.run(&["lookout", "list", "--json"])));
    let ids: Vec<&str> = v["lookouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["X-2", "Y-0", "Y-1", "Y-2", "Y-3", "Y-4", "Y-5", "Y-6"]
    );
    assert_eq!(v["continuation"], Value::Null);
    let v = json(&ok(ctl.run(&[
        "lookout",
        "list",
        "--include-retired",
        "--json",
    ])));
    assert_eq!(v["count"], 9);
    let v = json(&ok(ctl.run(&[
        "lookout",
        "list",
        "--category",
        "alert-only",
        "--json",
    ])));
    let ids: Vec<&str> = v["lookouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["X-2", "Y-5", "Y-6"]);
    let v = json(&ok(ctl.run(&[
        "lookout",
        "list",
        "--category",
        "alert-only",
        "--valid-at-ms",
        "1767225600000",
        "--json",
    ])));
    assert_eq!(v["count"], 1, "{v:#}");
    // Pages: a token to continue with, or --all.
    let o = ok(ctl.run(&["lookout", "list", "--limit", "3"]));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 4, "header and three rows: {text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .trim_start()
            .starts_with("X-2 "),
        "{text}"
    );
    let err = stderr(&o);
    assert!(
        err.starts_with("3 lookouts; read at applied index "),
        "{err}"
    );
    let token = err
        .split("--continuation ")
        .nth(1)
        .expect("a continuation token")
        .trim()
        .to_string();
    let v = json(&ok(ctl.run(&[
        "lookout",
        "list",
        "--limit",
        "3",
        "--continuation",
        &token,
        "--json",
    ])));
    assert_eq!(v["lookouts"][0]["id"], "Y-2");
    let v =
        json(&ok(ctl.run(&[
            "lookout", "list", "--limit", "3", "--all", "--json",
        ])));
    assert_eq!(v["count"], 8);
    // Every listed lookout is a domain record again.
    for l in v["lookouts"].as_array().unwrap() {
        let d: domain::Lookout = serde_json::from_value(l.clone()).unwrap();
        assert!(d.version >= 1);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn gen_writes_deterministic_files_that_ingest_and_screen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let gen_args = |out: &Path| {
        vec![
            "gen".to_string(),
            "--seed".into(),
            "7".into(),
            "--lookouts".into(),
            "300".into(),
            "--travellers".into(),
            "3000".into(),
            "--plant-rate".into(),
            "0.2".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    // gen needs no cluster (and no config).
    let gen_run = |args: Vec<String>| {
        Command::new(lookoutctl())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let mut args = gen_args(&a);
    args.push("--json".into());
    let v = json(&ok(gen_run(args)));
    assert_eq!(v["seed"], 7);
    let files = v["files"].as_array().unwrap();
    let records = |name: &str| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["records"].as_u64())
            .unwrap()
    };
    assert_eq!(records("lookouts.jsonl"), 300);
    assert_eq!(records("travellers.jsonl"), 3000);
    let planted = records("truth.jsonl");
    assert!(planted > 300, "{v:#}");
    let o = ok(gen_run(gen_args(&b)));
    assert!(
        stdout(&o).starts_with("generated seed 7 into "),
        "{}",
        stdout(&o)
    );
    for name in ["lookouts.jsonl", "travellers.jsonl", "truth.jsonl"] {
        let x = std::fs::read(a.join(name)).unwrap();
        assert_eq!(
            x,
            std::fs::read(b.join(name)).unwrap(),
            "{name} differs between runs"
        );
        assert_eq!(
            x.iter().filter(|c| **c == b'\n').count() as u64,
            records(name)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Everything generated is accepted by the server.
    let _serial = serial();
    let rt = runtime();
    let (c, _leader) = start_cluster(&rt);
    let ctl = Ctl {
        config: c.config_path.clone(),
    };
    let v = json(&ok(ctl.run(&[
        "ingest",
        "lookouts",
        a.join("lookouts.jsonl").to_str().unwrap(),
        "--actor",
        "gen",
        "--json",
    ])));
    assert_eq!(
        (v["accepted"].as_u64(), v["rejected"].as_u64()),
        (Some(300), Some(0)),
        "{v:#}"
    );
    let v = json(&ok(ctl.run(&[
        "ingest",
        "travellers",
        a.join("travellers.jsonl").to_str().unwrap(),
        "--chunk",
        "1000",
        "--json",
    ])));
    assert_eq!(
        (
            v["accepted"].as_u64(),
            v["rejected"].as_u64(),
            v["calls"].as_u64()
        ),
        (Some(3000), Some(0), Some(3)),
        "{v:#}"
    );

    // Travellers planted with a lookout's passport match it (when that lookout is active now).
    let truth = std::fs::read_to_string(a.join("truth.jsonl")).unwrap();
    let travellers = std::fs::read_to_string(a.join("travellers.jsonl")).unwrap();
    let now = now_ms();
    let mut manifest = Vec::new();
    let mut expected = Vec::new();
    for t in truth
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
    {
        if t["class"] != "ExactDocument" || expected.len() >= 10 {
            continue;
        }
        let lid = t["lookout_id"].as_str().unwrap();
        let l = json(&ok(ctl.run(&["lookout", "get", lid, "--json"])))["lookout"].clone();
        let active = l["retired"] == false
            && l["valid_from_ms"].as_u64().is_none_or(|f| f <= now)
            && l["valid_until_ms"].as_u64().is_none_or(|u| now < u);
        if !active {
            continue;
        }
        let tid = t["traveller_id"].as_str().unwrap();
        let line = travellers
            .lines()
            .find(|l| l.contains(&format!("\"id\":\"{tid}\"")))
            .unwrap();
        manifest.push(line.to_string());
        expected.push((tid.to_string(), lid.to_string()));
    }
    assert!(
        !expected.is_empty(),
        "no active ExactDocument plant among {planted}"
    );
    let mpath = dir.path().join("manifest.jsonl");
    write_lines(&mpath, &manifest);
    let v = json(&ok(ctl.run(&[
        "manifest",
        mpath.to_str().unwrap(),
        "--all",
        "--json",
    ])));
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), expected.len());
    for (d, (tid, lid)) in decisions.iter().zip(&expected) {
        assert_eq!(d["reference"], tid.as_str());
        let ids: Vec<&str> = d["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&lid.as_str()),
            "{tid} planted on {lid} matched {ids:?}"
        );
    }
}
