//! Terminal tables, Lookout/etcd ratios and the SVG chart of a side-by-side run.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::load::Figures;

/// Lookout / etcd for one workload and client count.
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub workload: String,
    pub clients: usize,
    /// Throughput ratio: above 1 means Lookout is faster.
    pub qps: f64,
    /// p50 and p99 latency ratios: below 1 means Lookout is faster.
    pub p50: f64,
    pub p99: f64,
}

pub fn ratios(figures: &[Figures]) -> Vec<Ratio> {
    figures
        .iter()
        .filter(|f| f.target == "lookout")
        .filter_map(|l| {
            let e = figures.iter().find(|e| e.target == "etcd" && e.workload == l.workload && e.clients == l.clients)?;
            let div = |a: f64, b: f64| if b == 0.0 { f64::NAN } else { a / b };
            Some(Ratio {
                workload: l.workload.clone(),
                clients: l.clients,
                qps: div(l.qps, e.qps),
                p50: div(l.p50_ms, e.p50_ms),
                p99: div(l.p99_ms, e.p99_ms),
            })
        })
        .collect()
}

fn errors(f: &Figures) -> String {
    let errors = if f.errors.is_empty() {
        "0".to_string()
    } else {
        f.errors.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
    };
    match f.retried {
        0 => errors,
        n => format!("{errors} (retried {n})"),
    }
}

pub fn print_figures(figures: &[Figures]) {
    println!(
        "{:<8} {:<24} {:>7} {:>5} {:>10} {:>9} {:>9} {:>9}  errors",
        "target", "workload", "clients", "conns", "qps", "p50 ms", "p99 ms", "p99.9 ms"
    );
    for f in figures {
        println!(
            "{:<8} {:<24} {:>7} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2}  {}",
            f.target,
            f.workload,
            f.clients,
            f.connections,
            f.qps,
            f.p50_ms,
            f.p99_ms,
            f.p999_ms,
            errors(f)
        );
    }
}

pub fn print_ratios(ratios: &[Ratio]) {
    if ratios.is_empty() {
        return;
    }
    println!();
    println!("{:<24} {:>7} {:>14} {:>14} {:>14}", "Lookout / etcd", "clients", "qps (>1 good)", "p50 (<1 good)", "p99 (<1 good)");
    for r in ratios {
        println!("{:<24} {:>7} {:>14.2} {:>14.2} {:>14.2}", r.workload, r.clients, r.qps, r.p50, r.p99);
    }
}

struct Group<'a> {
    label: String,
    lookout: Option<&'a Figures>,
    etcd: Option<&'a Figures>,
}

fn groups(figures: &[Figures]) -> Vec<Group<'_>> {
    let mut out: Vec<Group> = vec![];
    for f in figures {
        let label = format!("{} x{}", f.workload.replace("get-linearizable", "get-lin"), f.clients);
        let i = match out.iter().position(|g| g.label == label) {
            Some(i) => i,
            None => {
                out.push(Group { label, lookout: None, etcd: None });
                out.len() - 1
            }
        };
        match f.target.as_str() {
            "etcd" => out[i].etcd = Some(f),
            _ => out[i].lookout = Some(f),
        }
    }
    out
}

const LOOKOUT_COLOUR: RGBColor = RGBColor(31, 119, 180);
const ETCD_COLOUR: RGBColor = RGBColor(255, 127, 14);

/// Two panels, throughput and p99, one pair of bars (Lookout, etcd) per workload.
pub fn chart(path: &Path, title: &str, figures: &[Figures]) -> anyhow::Result<()> {
    let groups = groups(figures);
    let width = (260 + 110 * groups.len() as u32).max(700);
    let root = SVGBackend::new(path, (width, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (top, bottom) = root.split_vertically(440);
    panel(&top, "throughput, ops/s (higher is better)", &groups, |f| f.qps, 0)?;
    panel(&bottom, "p99 latency, ms (lower is better)", &groups, |f| f.p99_ms, 2)?;
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    groups: &[Group],
    value: impl Fn(&Figures) -> f64,
    decimals: usize,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let max = groups.iter().flat_map(|g| [g.lookout, g.etcd]).flatten().map(&value).fold(0.0, f64::max).max(1e-3) * 1.18;
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, 0f64..max)?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc(caption.split(',').next().unwrap_or("")).draw()?;
    let value = &value;
    let bars = |etcd: bool, from: f64, colour: RGBColor| {
        groups
            .iter()
            .enumerate()
            .filter_map(move |(i, g)| if etcd { g.etcd } else { g.lookout }.map(|f| (i, f)))
            .map(move |(i, f)| Rectangle::new([(i as f64 + from, 0.0), (i as f64 + from + 0.38, value(f))], colour.filled()))
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(bars(false, 0.1, LOOKOUT_COLOUR))?
        .label("Lookout")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], LOOKOUT_COLOUR.filled()));
    chart
        .draw_series(bars(true, 0.5, ETCD_COLOUR))?
        .label("etcd 3.4.23")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], ETCD_COLOUR.filled()));
    let small = ("sans-serif", 11).into_font();
    for (i, g) in groups.iter().enumerate() {
        for (f, from) in [(g.lookout, 0.1), (g.etcd, 0.5)] {
            if let Some(f) = f {
                let v = value(f);
                chart.draw_series(std::iter::once(Text::new(format!("{v:.decimals$}"), (i as f64 + from, v + max * 0.01), small.clone())))?;
            }
        }
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        let label = Text::new(g.label.clone(), (x - 4 * g.label.len() as i32 / 2 - 8, y + 8), ("sans-serif", 13).into_font());
        area.draw(&label)?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn fig(target: &str, workload: &str, clients: usize, qps: f64, p99: f64) -> Figures {
        Figures {
            target: target.into(),
            workload: workload.into(),
            clients,
            connections: 1,
            secs: 1.0,
            ok: qps as u64,
            qps,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            p999_ms: p99,
            errors: BTreeMap::new(),
            retried: 0,
        }
    }

    #[test]
    fn ratios_pair_matching_workloads_only() {
        let f = vec![
            fig("lookout", "put", 1, 2000.0, 2.0),
            fig("etcd", "put", 1, 1000.0, 4.0),
            fig("lookout", "screen", 1, 300.0, 9.0),
            fig("etcd", "put", 100, 5000.0, 40.0),
        ];
        let r = ratios(&f);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].qps, r[0].p99), (2.0, 0.5));
    }

    #[test]
    fn chart_writes_an_svg_with_every_workload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let f = vec![fig("lookout", "put", 1, 2000.0, 2.0), fig("etcd", "put", 1, 1000.0, 4.0), fig("lookout", "screen", 8, 300.0, 9.0)];
        chart(&path, "test", &f).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for label in ["put x1", "screen x8", "Lookout", "etcd 3.4.23"] {
            assert!(svg.contains(label), "{label} missing from chart");
        }
    }
}
