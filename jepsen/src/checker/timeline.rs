//! Self-contained HTML timeline (inline SVG, no scripts, no external assets).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use super::{CheckResult, describe_op_line, fmt_duration_ns};
use crate::history::{Completion, History, Op};

/// Most ops drawn; beyond that the window is thinned to the anomaly's key.
const MAX_OPS: usize = 3000;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Render `history` as an HTML page: one row per client process, each op a
/// bar from invocation to completion (`info` ops run to the right edge,
/// hatched grey), coloured by outcome, with a tooltip giving the op's details.
/// For an `Invalid` result the view is restricted to the time window around
/// the counterexample, the anomaly's ops are outlined in red (the minimal
/// core solid, the other unlinearizable candidates dashed), ops of other keys
/// are faded, and ops of the longest linearizable prefix carry their
/// position in it.
pub fn render_timeline(history: &History, result: &CheckResult) -> String {
    let t0 = history.start_ns();
    let max_finite = history
        .ops
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
        .max()
        .unwrap_or(t0);
    let ce = result.counterexample();
    let by_id: HashMap<usize, &Op> = history.ops.iter().map(|o| (o.id, o)).collect();

    let core: HashSet<usize> = ce.map(|c| c.core_ops.iter().copied().collect()).unwrap_or_default();
    let anomaly: HashSet<usize> = ce.map(|c| c.anomaly_ops().into_iter().collect()).unwrap_or_default();
    let prefix_pos: HashMap<usize, usize> =
        ce.map(|c| c.longest_prefix.iter().enumerate().map(|(i, &id)| (id, i + 1)).collect()).unwrap_or_default();

    // Time window.
    let (mut lo, mut hi) = (t0, max_finite.max(t0 + 1));
    if ce.is_some() {
        let ops: Vec<&Op> = anomaly.iter().filter_map(|id| by_id.get(id).copied()).collect();
        if !ops.is_empty() {
            let a = ops.iter().map(|o| o.invoke_ns).min().unwrap();
            let b = ops.iter().map(|o| o.complete_ns.unwrap_or(o.invoke_ns)).max().unwrap().max(a + 1);
            let pad = ((b - a) / 5).max(1);
            lo = a.saturating_sub(pad).max(t0);
            hi = b.saturating_add(pad);
        }
    }
    // Room on the right, so ops invoked last (e.g. info ops) remain visible.
    hi = hi.saturating_add((hi - lo) / 12);
    let mut shown: Vec<&Op> =
        history.ops.iter().filter(|o| o.invoke_ns <= hi && o.complete_ns.is_none_or(|c| c >= lo)).collect();
    let mut thinned = false;
    if shown.len() > MAX_OPS {
        thinned = true;
        let key = ce.map(|c| c.key.as_str());
        shown.retain(|o| anomaly.contains(&o.id) || Some(o.key()) == key);
        shown.truncate(MAX_OPS);
    }
    let processes: Vec<u64> = {
        let mut p: Vec<u64> = shown.iter().map(|o| o.process).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let row_of: BTreeMap<u64, usize> = processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();

    let (label_w, plot_w, row_h, top) = (90.0_f64, 1100.0_f64, 30.0_f64, 34.0_f64);
    let width = label_w + plot_w + 20.0;
    let height = top + row_h * processes.len().max(1) as f64 + 20.0;
    let span = (hi - lo).max(1) as f64;
    let x_of = |t: u64| label_w + plot_w * ((t.clamp(lo, hi) - lo) as f64 / span);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#d9d9d9"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8c8c8c" stroke-width="2"/></pattern></defs>
"##
    );
    // Axis with ticks.
    let ticks = 10;
    for i in 0..=ticks {
        let t = lo + ((hi - lo) as f64 * i as f64 / ticks as f64) as u64;
        let x = x_of(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="14" text-anchor="middle" fill="#555">{}</text>"##,
            top - 10.0,
            height - 16.0,
            fmt_duration_ns(t - t0)
        );
    }
    for (p, &r) in &row_of {
        let y = top + r as f64 * row_h;
        let _ = writeln!(
            svg,
            r##"<rect x="0" y="{y:.1}" width="{width}" height="{row_h}" fill="{}"/><text x="6" y="{:.1}" fill="#333">p{p}</text>"##,
            if r % 2 == 0 { "#fafafa" } else { "#f2f2f2" },
            y + row_h / 2.0 + 4.0
        );
    }
    let anomaly_key = ce.map(|c| c.key.as_str());
    // A process may go on after an `info` op: draw the info op full height
    // up to the process's next invocation, then as a thin strip to the right
    // edge (+∞). Info ops are drawn first so later ops stay on top.
    let mut invokes: HashMap<u64, Vec<u64>> = HashMap::new();
    for o in &history.ops {
        invokes.entry(o.process).or_default().push(o.invoke_ns);
    }
    for v in invokes.values_mut() {
        v.sort_unstable();
    }
    shown.sort_by_key(|o| (!o.is_info(), o.invoke_ns, o.id));
    let right = label_w + plot_w;
    for o in &shown {
        let r = row_of[&o.process];
        let y = top + r as f64 * row_h + 4.0;
        let h = row_h - 8.0;
        let x1 = x_of(o.invoke_ns);
        let x2 = match o.complete_ns {
            Some(c) => x_of(c),
            None => {
                let next = invokes[&o.process].iter().find(|&&t| t > o.invoke_ns);
                next.map_or(right, |&t| if t > hi { right } else { x_of(t) - 1.0 })
            }
        }
        .max(x1 + 2.0);
        let strip = if o.is_info() && x2 < right {
            format!(
                r##"<rect x="{x2:.1}" y="{:.1}" width="{:.1}" height="4" fill="url(#hatch)" stroke="#8c8c8c" stroke-width="0.4"/>"##,
                y + h - 4.0,
                right - x2
            )
        } else {
            String::new()
        };
        let (fill, kind) = match &o.complete {
            Completion::Ok { .. } if o.stale.is_some() => ("#9ecae1", "ok (stale read)"),
            Completion::Ok { .. } => ("#74c476", "ok"),
            Completion::CasFailed { .. } => ("#fdae6b", "fail (compare failed)"),
            Completion::Fail { .. } => ("#fb6a4a", "fail"),
            Completion::Info => ("url(#hatch)", "info"),
        };
        let (stroke, sw, dash) = if core.contains(&o.id) {
            ("#d62728", 3.0, "")
        } else if anomaly.contains(&o.id) {
            ("#d62728", 2.0, r#" stroke-dasharray="5,3""#)
        } else {
            ("#555", 0.6, "")
        };
        let opacity = match anomaly_key {
            Some(k) if o.key() != k => 0.3,
            _ => 1.0,
        };
        let mut tip = format!("{}\nkey: {}\noutcome: {kind}", describe_op_line(o, t0), o.key());
        if let Some(i) = o.index {
            let _ = write!(tip, "\nlog index: {i}");
        }
        if let Some(s) = o.stale {
            let _ = write!(tip, "\nstale: staleness_ms={:?} applied_index={:?}", s.staleness_ms, s.applied_index);
        }
        if let Some(p) = prefix_pos.get(&o.id) {
            let _ = write!(tip, "\nposition {p} in the longest linearizable prefix");
        }
        if core.contains(&o.id) {
            tip.push_str("\nin the minimal non-linearizable core");
        } else if anomaly.contains(&o.id) {
            tip.push_str("\ncould not be linearized after the longest prefix");
        }
        let label = match prefix_pos.get(&o.id) {
            Some(p) => format!("{} [L{p}]", o.describe()),
            None => o.describe(),
        };
        let max_chars = ((x2 - x1 - 6.0) / 6.6).max(0.0) as usize;
        let label: String =
            if label.chars().count() > max_chars { label.chars().take(max_chars).collect() } else { label };
        let _ = writeln!(
            svg,
            r##"<g opacity="{opacity}"><title>{}</title>{strip}<rect x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"{dash}/><text x="{:.1}" y="{:.1}" fill="#111">{}</text></g>"##,
            esc(&tip),
            x2 - x1,
            x1 + 3.0,
            y + h / 2.0 + 4.0,
            esc(&label)
        );
    }
    svg.push_str("</svg>\n");

    let (verdict, colour) = match result {
        CheckResult::Valid => ("VALID: linearizable".to_string(), "#2ca02c"),
        CheckResult::Invalid(c) => (format!("INVALID: key {:?} is not linearizable", c.key), "#d62728"),
        CheckResult::Unknown { why } => (format!("UNKNOWN: {why}"), "#ff7f0e"),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Lookout Jepsen timeline</title>
<style>body{{font-family:sans-serif;margin:16px}} pre{{background:#f6f6f6;padding:8px;overflow:auto}}
.legend span{{display:inline-block;margin-right:14px}} .sw{{display:inline-block;width:14px;height:10px;border:1px solid #555;margin-right:4px;vertical-align:middle}}</style>
</head><body>
<h2 style="color:{colour}">{}</h2>
<p>{} ops in the history; showing {} ops of {} processes between {} and {} (from the first invocation){}.</p>
<div class="legend"><span><i class="sw" style="background:#74c476"></i>ok</span><span><i class="sw" style="background:#9ecae1"></i>ok stale read</span><span><i class="sw" style="background:#fdae6b"></i>cas compare failed</span><span><i class="sw" style="background:#fb6a4a"></i>fail</span><span><i class="sw" style="background:repeating-linear-gradient(45deg,#d9d9d9 0 3px,#8c8c8c 3px 5px)"></i>info (unknown, runs to +∞)</span><span><i class="sw" style="border:3px solid #d62728"></i>minimal core</span><span><i class="sw" style="border:2px dashed #d62728"></i>not linearizable after prefix</span><span>[Lk] = k-th in the longest linearizable prefix</span></div>
"##,
        esc(&verdict),
        history.ops.len(),
        shown.len(),
        processes.len(),
        fmt_duration_ns(lo - t0),
        fmt_duration_ns(hi - t0),
        if thinned { " (thinned to the anomaly's key)" } else { "" }
    );
    html.push_str(&svg);
    if let Some(c) = ce {
        let _ = write!(html, "<h3>Counterexample</h3>\n<pre>{}</pre>\n", esc(&c.explanation));
    }
    html.push_str("</body></html>\n");
    html
}
