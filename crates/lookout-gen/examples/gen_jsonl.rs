//! Writes generated data as JSON Lines to stdout.
//!
//! `cargo run -p lookout-gen --release --example gen_jsonl -- <lookouts|travellers|truth> [seed] [lookouts] [travellers] [plant_rate]`

use lookout_gen::{GenConfig, write_lookouts_jsonl, write_travellers_jsonl, write_truth_jsonl};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let mut cfg = GenConfig::new(
        arg(1, "1").parse().expect("seed"),
        arg(2, "1000").parse().expect("lookouts"),
        arg(3, "10000").parse().expect("travellers"),
    );
    cfg.plant_rate = arg(4, "0.01").parse().expect("plant_rate");
    let out = std::io::stdout().lock();
    let n = match arg(0, "lookouts").as_str() {
        "lookouts" => write_lookouts_jsonl(&cfg, out)?,
        "travellers" => write_travellers_jsonl(&cfg, out)?,
        "truth" => write_truth_jsonl(&cfg, out)?,
        other => panic!("unknown kind {other:?}"),
    };
    eprintln!("{n} lines");
    Ok(())
}
