//! The lookout-visibility workload: `PutLookout` of new subjects, interleaved with
//! `Screen` of those subjects from every node (linearizable screens, so followers answer
//! through the leader's read index). Checked by `checker::visibility`: no screen invoked
//! after a put was acknowledged misses that lookout; no screen returns a lookout that was
//! never written. After healing, `ListLookouts` on every node must list every
//! acknowledged lookout.
//!
//! Every subject has a unique passport number (matched exactly) and a unique name; a
//! screen of subject S is expected to return S's lookout (other matches are allowed but
//! must exist).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookout_proto::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{self, Outcome as Out, Router, Target};
use super::recorder::{OpSummary, Outcome, Recorder};
use crate::checker::visibility::{PutOutcome, PutRecord, ScreenRecord, VisibilityReport, check_visibility_with};
use crate::history::{Completion, History, Op, OpFn};

const SYL: [&str; 32] = [
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "zu", "pe", "da", "go", "hu", "ji", "ba", "fe", "sa", "to", "wi", "ye",
    "no", "ru", "ke", "mo", "li", "ze", "po", "qua", "xi", "dre", "bla", "sto",
];

fn word(mut n: u64, len: usize) -> String {
    let mut s = String::new();
    for _ in 0..len {
        s.push_str(SYL[(n % 32) as usize]);
        n /= 32;
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// A subject's identity fields.
pub struct Subject {
    pub id: String,
    pub given: String,
    pub surname: String,
    pub dob: String,
    pub passport: String,
}

pub fn subject(tag: &str, n: u64) -> Subject {
    Subject {
        id: format!("J{tag}-{n}"),
        given: word(n, 4),
        surname: word(n.wrapping_mul(2_654_435_761).wrapping_add(17), 4),
        dob: format!("{}-{:02}-{:02}", 1940 + n % 60, 1 + (n / 60) % 12, 1 + (n / 720) % 28),
        passport: format!("JP{tag}{n:08}"),
    }
}

fn passport(number: &str) -> pb::Document {
    pb::Document {
        r#type: pb::DocumentType::Passport as i32,
        issuing_country: "XXA".into(),
        number: number.into(),
        expiry: String::new(),
    }
}

fn lookout_pb(s: &Subject) -> pb::Lookout {
    pb::Lookout {
        id: s.id.clone(),
        subject: Some(pb::Subject {
            name: Some(pb::PersonName { given: s.given.clone(), surname: s.surname.clone() }),
            aliases: vec![],
            date_of_birth: s.dob.clone(),
            sex: pb::Sex::Unspecified as i32,
            nationalities: vec![],
        }),
        documents: vec![passport(&s.passport)],
        category: pb::Category::NoBoard as i32,
        reason: "jepsen visibility".into(),
        source_agency: "JEPSEN".into(),
        ..Default::default()
    }
}

fn identity_pb(s: &Subject) -> pb::Identity {
    pb::Identity {
        names: vec![pb::PersonName { given: s.given.clone(), surname: s.surname.clone() }],
        date_of_birth: s.dob.clone(),
        documents: vec![passport(&s.passport)],
        ..Default::default()
    }
}

#[derive(Clone, Debug)]
struct Put {
    n: u64,
    item: String,
    process: u64,
    invoke_ns: u64,
    complete_ns: Option<u64>,
    outcome: PutOutcome,
}

#[derive(Clone, Debug)]
struct Screen {
    process: u64,
    invoke_ns: u64,
    complete_ns: u64,
    items: BTreeSet<String>,
    /// The subject screened; `None` for a final full listing (every item in scope).
    target: Option<(u64, String)>,
    node: u64,
}

pub struct VisWorkload {
    router: Arc<Router>,
    rec: Arc<Recorder>,
    tag: String,
    next_subject: AtomicU64,
    recent: Mutex<VecDeque<u64>>,
    puts: Mutex<Vec<Put>>,
    screens: Mutex<Vec<Screen>>,
    pub put_fraction: f64,
}

impl VisWorkload {
    pub fn new(router: Arc<Router>, rec: Arc<Recorder>, seed: u64) -> Arc<VisWorkload> {
        Arc::new(VisWorkload {
            router,
            rec,
            tag: format!("{}", seed % 10_000),
            next_subject: AtomicU64::new(1),
            recent: Mutex::new(VecDeque::new()),
            puts: Mutex::new(vec![]),
            screens: Mutex::new(vec![]),
            put_fraction: 0.35,
        })
    }

    pub async fn client_loop(self: Arc<Self>, seed: u64, stop: Arc<AtomicBool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut process = self.rec.new_process();
        while !stop.load(Ordering::Relaxed) {
            let have_recent = !self.recent.lock().unwrap().is_empty();
            let o = if !have_recent || rng.random_bool(self.put_fraction) {
                self.put(&mut rng, process).await
            } else {
                self.screen(&mut rng, process).await
            };
            if o == Outcome::Info {
                process = self.rec.new_process();
            }
        }
    }

    fn summary(&self, f: &'static str, invoke_ns: u64, outcome: Outcome, node: u64, final_phase: bool) {
        self.rec.summary(OpSummary { f, invoke_ns, complete_ns: self.rec.now_ns(), outcome, node, final_phase });
    }

    async fn put(&self, rng: &mut StdRng, process: u64) -> Outcome {
        let n = self.next_subject.fetch_add(1, Ordering::Relaxed);
        let s = subject(&self.tag, n);
        let invoke_ns = self.rec.now_ns();
        self.rec.aux(serde_json::json!({"process": process, "kind": "invoke", "f": "put", "item": s.id, "time_ns": invoke_ns}));
        {
            let mut r = self.recent.lock().unwrap();
            r.push_back(n);
            if r.len() > 30 {
                r.pop_front();
            }
        }
        let rid = self.router.request_id();
        let l = lookout_pb(&s);
        let out = self
            .router
            .run(Target::Leader, rng, true, |ch, t| {
                let req = pb::PutLookoutRequest {
                    header: Some(pb::WriteHeader { request_id: rid.clone() }),
                    lookout: Some(l.clone()),
                    expected_version: None,
                    actor: "jepsen".into(),
                };
                async move { Ok(client::screening(ch).put_lookout(client::timed(req, t)).await?.into_inner().index) }
            })
            .await;
        let now = self.rec.now_ns();
        let (outcome, stat, kind, node, extra) = match out {
            Out::Ok { value, node } => (PutOutcome::Acked { ack_ns: now }, Outcome::Ok, "ok", node, serde_json::json!({"index": value})),
            Out::Fail { error, node } => (PutOutcome::Failed, Outcome::Fail, "fail", node, serde_json::json!({"error": error})),
            Out::Info { error, node } => (PutOutcome::Unknown, Outcome::Info, "info", node, serde_json::json!({"error": error})),
        };
        let mut line = serde_json::json!({"process": process, "kind": kind, "f": "put", "item": s.id, "time_ns": now, "node": node});
        if let (Some(o), Some(e)) = (line.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        self.rec.aux(line);
        self.puts.lock().unwrap().push(Put {
            n,
            item: s.id,
            process,
            invoke_ns,
            complete_ns: (stat != Outcome::Info).then_some(now),
            outcome,
        });
        self.summary("put", invoke_ns, stat, node, false);
        stat
    }

    async fn screen(&self, rng: &mut StdRng, process: u64) -> Outcome {
        let n = {
            let r = self.recent.lock().unwrap();
            r[rng.random_range(0..r.len())]
        };
        let ids = &self.router.channels.ids;
        let node = ids[rng.random_range(0..ids.len())];
        let s = subject(&self.tag, n);
        let invoke_ns = self.rec.now_ns();
        self.rec.aux(serde_json::json!({"process": process, "kind": "invoke", "f": "screen", "item": s.id, "node": node, "time_ns": invoke_ns}));
        let identity = identity_pb(&s);
        let out = self
            .router
            .run(Target::Node(node), rng, true, |ch, t| {
                let req = pb::ScreenRequest { read: None, identity: Some(identity.clone()) };
                async move {
                    let r = client::screening(ch).screen(client::timed(req, t)).await?.into_inner();
                    Ok(r.matches.iter().filter_map(|m| m.lookout.as_ref().map(|l| l.id.clone())).collect::<BTreeSet<String>>())
                }
            })
            .await;
        let now = self.rec.now_ns();
        match out {
            Out::Ok { value: items, node } => {
                self.rec.aux(serde_json::json!({"process": process, "kind": "ok", "f": "screen", "item": s.id, "node": node, "time_ns": now, "items": items}));
                self.screens.lock().unwrap().push(Screen {
                    process,
                    invoke_ns,
                    complete_ns: now,
                    items,
                    target: Some((n, s.id)),
                    node,
                });
                self.summary("screen", invoke_ns, Outcome::Ok, node, false);
                Outcome::Ok
            }
            Out::Fail { error, node } | Out::Info { error, node } => {
                // A screen has no effect: whatever its outcome, the process may go on.
                self.rec.aux(serde_json::json!({"process": process, "kind": "fail", "f": "screen", "item": s.id, "node": node, "time_ns": now, "error": error}));
                self.summary("screen", invoke_ns, Outcome::Fail, node, false);
                Outcome::Fail
            }
        }
    }

    /// After healing: list every lookout on every node; returns the nodes that could not
    /// answer within `timeout`.
    pub async fn final_lists(&self, timeout: Duration) -> Vec<u64> {
        let deadline = Instant::now() + timeout;
        let mut failed = vec![];
        for &node in &self.router.channels.ids.clone() {
            let process = self.rec.new_process();
            let mut done = false;
            while !done && Instant::now() < deadline {
                let invoke_ns = self.rec.now_ns();
                match self.list_all(node).await {
                    Ok(items) => {
                        let now = self.rec.now_ns();
                        self.rec.aux(serde_json::json!({"process": process, "kind": "ok", "f": "list", "node": node, "time_ns": now, "count": items.len()}));
                        self.screens.lock().unwrap().push(Screen { process, invoke_ns, complete_ns: now, items, target: None, node });
                        self.summary("list", invoke_ns, Outcome::Ok, node, true);
                        done = true;
                    }
                    Err(e) => {
                        self.rec.aux(serde_json::json!({"process": process, "kind": "fail", "f": "list", "node": node, "time_ns": self.rec.now_ns(), "error": e}));
                        self.summary("list", invoke_ns, Outcome::Fail, node, true);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if !done {
                failed.push(node);
            }
        }
        failed
    }

    async fn list_all(&self, node: u64) -> Result<BTreeSet<String>, String> {
        let mut out = BTreeSet::new();
        let mut continuation = vec![];
        loop {
            let req = pb::ListLookoutsRequest { limit: 1000, continuation: continuation.clone(), ..Default::default() };
            let r = client::screening(self.router.channels.channel(node))
                .list_lookouts(client::timed(req, Duration::from_secs(5)))
                .await
                .map_err(|s| client::describe(&s))?
                .into_inner();
            out.extend(r.lookouts.into_iter().map(|l| l.id));
            if r.continuation.is_empty() {
                return Ok(out);
            }
            continuation = r.continuation;
        }
    }

    pub fn counts(&self) -> serde_json::Value {
        let puts = self.puts.lock().unwrap();
        let screens = self.screens.lock().unwrap();
        let mut by_node: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
        for s in screens.iter().filter(|s| s.target.is_some()) {
            *by_node.entry(s.node).or_default() += 1;
        }
        serde_json::json!({
            "screens_ok_by_node": by_node,
            "puts": puts.len(),
            "puts_acked": puts.iter().filter(|p| matches!(p.outcome, PutOutcome::Acked { .. })).count(),
            "puts_failed": puts.iter().filter(|p| p.outcome == PutOutcome::Failed).count(),
            "puts_unknown": puts.iter().filter(|p| p.outcome == PutOutcome::Unknown).count(),
            "screens_ok": screens.iter().filter(|s| s.target.is_some()).count(),
            "final_lists": screens.iter().filter(|s| s.target.is_none()).count(),
        })
    }

    pub fn check(&self) -> VisibilityReport {
        let puts = self.puts.lock().unwrap();
        let screens = self.screens.lock().unwrap();
        let p: Vec<PutRecord> =
            puts.iter().map(|p| PutRecord { item: p.item.clone(), invoke_ns: p.invoke_ns, outcome: p.outcome }).collect();
        let s: Vec<ScreenRecord> = screens
            .iter()
            .map(|s| ScreenRecord { process: s.process, invoke_ns: s.invoke_ns, complete_ns: s.complete_ns, items: s.items.clone() })
            .collect();
        let scope: HashMap<(u64, u64), Option<String>> =
            screens.iter().map(|s| ((s.process, s.invoke_ns), s.target.as_ref().map(|t| t.1.clone()))).collect();
        check_visibility_with(&p, &s, |sr, item| match scope.get(&(sr.process, sr.invoke_ns)) {
            Some(Some(t)) => t == item,
            _ => true,
        })
    }

    /// The visibility history as register ops, for the timeline: a put of subject `n` is a
    /// write of `n` to key `item`; a screen of it is a read of that key returning `n` if the
    /// lookout was among the matches, else absent.
    pub fn as_history(&self) -> History {
        let puts = self.puts.lock().unwrap();
        let screens = self.screens.lock().unwrap();
        let mut ops: Vec<Op> = Vec::new();
        for p in puts.iter() {
            let complete = match p.outcome {
                PutOutcome::Acked { .. } => Completion::Ok { read: None },
                PutOutcome::Failed => Completion::Fail { error: None },
                PutOutcome::Unknown => Completion::Info,
            };
            ops.push(Op {
                id: 0,
                process: p.process,
                f: OpFn::Write { key: p.item.clone(), value: p.n as i64 },
                invoke_ns: p.invoke_ns,
                complete,
                complete_ns: p.complete_ns,
                index: None,
                stale: None,
            });
        }
        for s in screens.iter() {
            let Some((n, item)) = &s.target else { continue };
            let seen = s.items.contains(item).then_some(*n as i64);
            ops.push(Op {
                id: 0,
                process: s.process,
                f: OpFn::Read { key: item.clone() },
                invoke_ns: s.invoke_ns,
                complete: Completion::Ok { read: Some(seen) },
                complete_ns: Some(s.complete_ns),
                index: None,
                stale: None,
            });
        }
        ops.sort_by_key(|o| o.invoke_ns);
        History::from_ops(ops)
    }
}
