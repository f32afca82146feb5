//! `results.json`: the verdict, op counts, every fault with the proof that it bit, and
//! availability per phase.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cas::SetReport;
use super::nemesis::{Family, FaultRecord};
use super::recorder::{OpSummary, Outcome};
use super::run::TestOpts;
use crate::checker::{CheckReport, CheckResult, KeyVerdict, StaleReport, VisibilityReport};
use crate::history::{Completion, History};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

pub struct Context<'a> {
    pub opts: &'a TestOpts,
    pub families: &'a [Family],
    pub notes: &'a [String],
    pub history: &'a History,
    pub summaries: Vec<OpSummary>,
    pub faults: &'a [FaultRecord],
    pub lin: &'a CheckReport,
    pub stale: Option<&'a StaleReport>,
    pub visibility: Option<&'a VisibilityReport>,
    pub vis_counts: Option<Value>,
    pub set: Option<&'a SetReport>,
    /// STALE reads whose value was newer than their header's applied index.
    pub stale_raced: Option<u64>,
    pub workload_start_ns: u64,
    pub workload_end_ns: u64,
    pub final_start_ns: u64,
    pub final_end_ns: u64,
    pub final_keys: usize,
    pub final_failed: &'a [String],
    pub recovered: Result<u64, String>,
    pub recovery_ms: u64,
    pub convergence: Value,
    pub proxy_stats: Option<Value>,
    pub restarts: BTreeMap<u64, u32>,
    pub heal_errors: Vec<String>,
    pub crashed: Vec<(u64, String)>,
    pub net_mode: &'static str,
}

#[derive(Default, Clone)]
struct Counts {
    ok: usize,
    fail: usize,
    info: usize,
    lat_ok_ns: Vec<u64>,
}

impl Counts {
    fn add(&mut self, s: &OpSummary) {
        match s.outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.lat_ok_ns.push(s.complete_ns.saturating_sub(s.invoke_ns));
            }
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }
    fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }
    fn availability(&self) -> Option<f64> {
        (self.total() > 0).then(|| self.ok as f64 / self.total() as f64)
    }
    fn p50_ms(&self) -> Option<f64> {
        percentile(&self.lat_ok_ns, 0.5).map(|ns| ns as f64 / 1e6)
    }
}

fn percentile(v: &[u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

fn count(summaries: &[OpSummary], from: u64, to: u64) -> Counts {
    let mut c = Counts::default();
    for s in summaries.iter().filter(|s| !s.final_phase && s.invoke_ns >= from && s.invoke_ns < to) {
        c.add(s);
    }
    c
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn secs(ns: u64) -> f64 {
    round3(ns as f64 / 1e9)
}

/// How long after a fault heals its effects still count as "during the fault".
const GRACE_NS: u64 = 1_000_000_000;

pub fn build(ctx: &Context) -> (Verdict, Value) {
    let s = &ctx.summaries;
    let mut invalid: Vec<String> = vec![];
    let mut unknown: Vec<String> = vec![];

    // Ops.
    let mut by_f: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut all = Counts::default();
    for op in s.iter().filter(|o| !o.final_phase) {
        by_f.entry(op.f).or_default().add(op);
        all.add(op);
    }
    let by_f_json: BTreeMap<&str, Value> =
        by_f.iter().map(|(k, c)| (*k, json!({"ok": c.ok, "fail": c.fail, "info": c.info}))).collect();

    // Phases: healthy / fault windows in time order.
    let mut phases = vec![];
    let mut t = ctx.workload_start_ns;
    let mut healthy = Counts::default();
    let mut faulted = Counts::default();
    for f in ctx.faults {
        if f.start_ns > t {
            let c = count(s, t, f.start_ns);
            healthy.ok += c.ok;
            healthy.fail += c.fail;
            healthy.info += c.info;
            healthy.lat_ok_ns.extend(&c.lat_ok_ns);
            phases.push(phase_json("healthy", t, f.start_ns, &c));
        }
        let c = count(s, f.start_ns, f.end_ns);
        faulted.ok += c.ok;
        faulted.fail += c.fail;
        faulted.info += c.info;
        phases.push(phase_json(f.kind, f.start_ns, f.end_ns, &c));
        t = f.end_ns;
    }
    if ctx.workload_end_ns > t {
        let c = count(s, t, ctx.workload_end_ns);
        healthy.ok += c.ok;
        healthy.fail += c.fail;
        healthy.info += c.info;
        healthy.lat_ok_ns.extend(&c.lat_ok_ns);
        phases.push(phase_json("healthy", t, ctx.workload_end_ns, &c));
    }
    let mut fin = Counts::default();
    for op in s.iter().filter(|o| o.final_phase) {
        fin.add(op);
    }
    phases.push(phase_json("final (after heal)", ctx.final_start_ns, ctx.final_end_ns, &fin));
    let healthy_p50 = healthy.p50_ms();
    // Throughput relative to the healthy phases: with one op in flight per client, a
    // blocked cluster shows as few ops (not as many failed ones).
    let healthy_secs: f64 = phases
        .iter()
        .filter(|p| p["phase"] == "healthy")
        .map(|p| p["end_s"].as_f64().unwrap_or(0.0) - p["start_s"].as_f64().unwrap_or(0.0))
        .sum();
    let healthy_rate = if healthy_secs > 0.0 { healthy.ok as f64 / healthy_secs } else { 0.0 };
    for p in phases.iter_mut() {
        if healthy_rate > 0.0
            && let Some(r) = p["ok_per_s"].as_f64()
        {
            p["throughput_vs_healthy"] = json!(round3(r / healthy_rate));
        }
    }

    // Faults and whether they bit.
    let mut faults_json = vec![];
    let mut bit_count = 0;
    let mut not_bit = vec![];
    for f in ctx.faults {
        let c = count(s, f.start_ns, f.end_ns + GRACE_NS);
        let errors = c.fail + c.info;
        let mut reasons = vec![];
        if errors > 0 {
            reasons.push(format!("{} errors ({} fail, {} info) among {} ops", errors, c.fail, c.info, c.total()));
        }
        if f.term_after > f.term_before && f.term_before > 0 {
            reasons.push(format!("leader election (term {} → {})", f.term_before, f.term_after));
        }
        let p50 = c.p50_ms();
        let win_s = (f.end_ns + GRACE_NS).saturating_sub(f.start_ns) as f64 / 1e9;
        let rel = if healthy_rate > 0.0 && win_s > 0.0 { Some(c.ok as f64 / win_s / healthy_rate) } else { None };
        if let Some(r) = rel
            && r < 0.5
        {
            reasons.push(format!("throughput fell to {:.0}% of healthy", r * 100.0));
        }
        if let (Some(p), Some(h)) = (p50, healthy_p50)
            && h > 0.0
            && p / h >= 2.0
        {
            reasons.push(format!("median latency {p:.1} ms vs {h:.1} ms healthy"));
        }
        let mut disk = Value::Null;
        if f.family == Family::Disk {
            let t = f.targets.first().copied().unwrap_or(0);
            // Writes acknowledged by the faulty node once its disk had been failing for
            // 500 ms: it must stop acknowledging rather than lie.
            let acked = s
                .iter()
                .filter(|o| {
                    o.node == t
                        && o.outcome == Outcome::Ok
                        && matches!(o.f, "write" | "cas" | "put")
                        && o.invoke_ns > f.start_ns + 500_000_000
                        && o.complete_ns < f.end_ns
                })
                .count();
            let served = s
                .iter()
                .filter(|o| {
                    o.node == t && matches!(o.f, "write" | "cas" | "put") && o.invoke_ns > f.start_ns && o.invoke_ns < f.end_ns
                })
                .count();
            if f.kind.contains("write") && acked > 0 {
                invalid.push(format!("#{} {}: node {t} acknowledged {acked} writes while its disk writes failed", f.n, f.kind));
            }
            disk = json!({"node": t, "writes_acked_after_fault": acked, "writes_sent_to_node": served,
                          "stopped_acknowledging": acked == 0});
            if acked == 0 && served > 0 {
                reasons.push(format!("node {t} stopped acknowledging writes"));
            }
        }
        let bit = !reasons.is_empty();
        if bit {
            bit_count += 1;
        } else {
            not_bit.push(format!("#{} {}", f.n, f.kind));
        }
        let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("start_s".into(), json!(secs(f.start_ns)));
            o.insert("end_s".into(), json!(secs(f.end_ns)));
            o.insert(
                "window".into(),
                json!({"ops": c.total(), "ok": c.ok, "fail": c.fail, "info": c.info,
                       "availability": c.availability().map(round3), "p50_ms": p50.map(round3),
                       "throughput_vs_healthy": rel.map(round3)}),
            );
            o.insert("bit".into(), json!(bit));
            if !disk.is_null() {
                o.insert("disk".into(), disk);
            }
            o.insert("evidence".into(), json!(reasons));
            o.remove("start_ns");
            o.remove("end_ns");
        }
        faults_json.push(v);
    }
    let fault_errors: Vec<String> =
        ctx.faults.iter().flat_map(|f| f.errors.iter().map(move |e| format!("#{} {}: {e}", f.n, f.kind))).collect();

    // Linearizability.
    let lin = &ctx.lin;
    let checked_ops: usize = lin.keys.iter().map(|k| k.ops).sum();
    let lin_json = match &lin.result {
        CheckResult::Valid => json!({"result": "valid"}),
        CheckResult::Invalid(c) => {
            invalid.push(format!("history not linearizable (key {:?})", c.key));
            json!({"result": "invalid", "key": c.key, "core_ops": c.core_ops, "explanation": c.explanation})
        }
        CheckResult::Unknown { why } => {
            unknown.push(format!("linearizability undecided: {why}"));
            json!({"result": "unknown", "why": why})
        }
    };
    let mut lin_json = lin_json;
    lin_json["ops_checked"] = json!(checked_ops);
    lin_json["keys"] = json!(lin.keys.len());
    lin_json["keys_valid"] = json!(lin.keys.iter().filter(|k| k.verdict == KeyVerdict::Valid).count());
    lin_json["elapsed_ms"] = json!(lin.elapsed.as_millis() as u64);
    lin_json["max_key_ops"] = json!(lin.keys.iter().map(|k| k.ops).max().unwrap_or(0));

    let stale_json = ctx.stale.map(|st| {
        if !st.is_ok() {
            invalid.push(format!("{} stale-read violations", st.violations.len()));
        }
        json!({
            "checked": st.checked,
            "violations": st.violations.iter().take(20).map(|v| v.to_string()).collect::<Vec<_>>(),
            "violation_count": st.violations.len(),
            "unverified": st.unverified.len(),
            "header_raced": ctx.stale_raced,
        })
    });
    let set_json = ctx.set.map(|r| {
        if !r.lost.is_empty() {
            invalid.push(format!("{} acknowledged writes lost", r.lost.len()));
        }
        if !r.unexpected.is_empty() {
            invalid.push(format!("{} writes present that were never acknowledged or attempted", r.unexpected.len()));
        }
        if !r.read_ok {
            unknown.push("could not read the add set after healing".into());
        }
        serde_json::to_value(r).unwrap_or(Value::Null)
    });
    let vis_json = ctx.visibility.map(|v| {
        if !v.is_ok() {
            invalid.push(format!("{} visibility violations", v.violations.len()));
        }
        json!({
            "screens_checked": v.screens_checked,
            "items": v.items,
            "violation_count": v.violations.len(),
            "violations": v.violations.iter().take(20).map(|x| x.to_string()).collect::<Vec<_>>(),
            "counts": ctx.vis_counts,
        })
    });
    if let Err(e) = &ctx.recovered {
        unknown.push(format!("cluster did not recover after healing: {e}"));
    }
    if !ctx.final_failed.is_empty() {
        unknown.push(format!("final write/read failed after healing on {} of {}", ctx.final_failed.len(), ctx.final_keys));
    }
    if ctx.convergence.get("divergent").and_then(Value::as_bool) == Some(true) {
        invalid.push("replicas at the same applied index report different digests".into());
    } else if ctx.convergence.get("converged").and_then(Value::as_bool) != Some(true) {
        unknown.push("replicas did not converge to one applied index and digest in time".into());
    }

    let verdict = if !invalid.is_empty() {
        Verdict::Invalid
    } else if !unknown.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let o = ctx.opts;
    let hist_ops = ctx.history.ops.len();
    let info_ops = ctx.history.ops.iter().filter(|o| matches!(o.complete, Completion::Info)).count();
    let results = json!({
        "verdict": verdict.name(),
        "invalid_because": invalid,
        "unknown_because": unknown,
        "config": {
            "workload": o.workload.name(),
            "nemesis": ctx.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "nemesis_arg": o.nemesis,
            "seed": o.seed,
            "nodes": o.nodes,
            "clients": o.clients,
            "keys": o.keys,
            "net": ctx.net_mode,
            "time_limit_s": o.time_limit.as_secs_f64(),
            "rpc_timeout_ms": o.rpc_timeout.as_millis() as u64,
            "op_timeout_ms": o.op_timeout.as_millis() as u64,
            "retry_unknown": o.retry_unknown,
            "lookoutd": o.lookoutd.display().to_string(),
        },
        "notes": ctx.notes,
        "ops": {
            "total": all.total(),
            "ok": all.ok,
            "fail": all.fail,
            "info": all.info,
            "by_f": by_f_json,
            "history_ops": hist_ops,
            "history_info_ops": info_ops,
            "final_phase_ops": fin.total(),
        },
        "linearizable": lin_json,
        "stale_reads": stale_json,
        "lost_writes": set_json,
        "visibility": vis_json,
        "faults_injected": ctx.faults.len(),
        "faults_bit": bit_count,
        "faults_not_bit": not_bit,
        "fault_errors": fault_errors,
        "faults": faults_json,
        "availability": {
            "healthy": healthy.availability().map(round3),
            "faulted": faulted.availability().map(round3),
            "healthy_p50_ms": healthy_p50.map(round3),
            "healthy_ok_per_s": round3(healthy_rate),
        },
        "phases": phases,
        "recovery": {
            "leader": ctx.recovered.as_ref().ok(),
            "error": ctx.recovered.as_ref().err(),
            "ms": ctx.recovery_ms,
            "final_keys": ctx.final_keys,
            "final_failed": ctx.final_failed,
        },
        "convergence": ctx.convergence,
        "node_restarts": ctx.restarts,
        "nodes_exited_by_themselves": ctx.crashed.iter().map(|(id, st)| json!({"node": id, "status": st})).collect::<Vec<_>>(),
        "heal_errors": ctx.heal_errors,
        "network": ctx.proxy_stats,
        "workload_s": secs(ctx.workload_end_ns.saturating_sub(ctx.workload_start_ns)),
    });
    (verdict, results)
}

fn phase_json(label: &str, from: u64, to: u64, c: &Counts) -> Value {
    let dur = (to.saturating_sub(from)) as f64 / 1e9;
    json!({
        "phase": label,
        "start_s": secs(from),
        "end_s": secs(to),
        "ops": c.total(),
        "ok": c.ok,
        "fail": c.fail,
        "info": c.info,
        "availability": c.availability().map(round3),
        "ok_per_s": if dur > 0.0 { round3(c.ok as f64 / dur) } else { 0.0 },
        "p50_ms": c.p50_ms().map(round3),
    })
}

/// A human summary on stdout.
pub fn print_summary(r: &Value, lin: &CheckResult) {
    let g = |p: &str| r.pointer(p).cloned().unwrap_or(Value::Null);
    println!("== {} ==", g("/verdict").as_str().unwrap_or("?").to_uppercase());
    for k in ["/invalid_because", "/unknown_because"] {
        if let Some(a) = g(k).as_array() {
            for x in a {
                println!("  {}", x.as_str().unwrap_or(""));
            }
        }
    }
    println!(
        "ops: {} (ok {}, fail {}, info {}); linearizability checked {} ops on {} keys in {} ms: {}",
        g("/ops/total"),
        g("/ops/ok"),
        g("/ops/fail"),
        g("/ops/info"),
        g("/linearizable/ops_checked"),
        g("/linearizable/keys"),
        g("/linearizable/elapsed_ms"),
        g("/linearizable/result").as_str().unwrap_or("?")
    );
    if let Some(st) = g("/stale_reads").as_object() {
        println!("stale reads: {} checked, {} violations", st["checked"], st["violation_count"]);
    }
    if let Some(st) = g("/lost_writes").as_object() {
        println!(
            "adds: {} acknowledged, {} lost, {} unexpected",
            st["acknowledged"],
            st["lost"].as_array().map_or(0, |a| a.len()),
            st["unexpected"].as_array().map_or(0, |a| a.len())
        );
    }
    if let Some(v) = g("/visibility").as_object() {
        println!("visibility: {} screens checked, {} items, {} violations", v["screens_checked"], v["items"], v["violation_count"]);
    }
    println!("faults injected: {}, bit: {} (not bit: {})", g("/faults_injected"), g("/faults_bit"), g("/faults_not_bit"));
    if let Some(ph) = g("/phases").as_array() {
        println!(
            "{:<28} {:>8} {:>8} {:>6} {:>6} {:>6} {:>7} {:>8} {:>9}",
            "phase", "start s", "end s", "ok", "fail", "info", "ok/all", "p50 ms", "ok/s rel"
        );
        for p in ph {
            let n = |k: &str| p[k].to_string();
            println!(
                "{:<28} {:>8} {:>8} {:>6} {:>6} {:>6} {:>7} {:>8} {:>9}",
                p["phase"].as_str().unwrap_or(""),
                n("start_s"),
                n("end_s"),
                n("ok"),
                n("fail"),
                n("info"),
                p["availability"].as_f64().map_or("-".into(), |a| format!("{:.1}%", a * 100.0)),
                p["p50_ms"].as_f64().map_or("-".into(), |x| format!("{x:.1}")),
                p["throughput_vs_healthy"].as_f64().map_or("-".into(), |x| format!("{:.0}%", x * 100.0)),
            );
        }
    }
    if let CheckResult::Invalid(c) = lin {
        println!("{}", c.explanation);
    }
}
