//! The HTML timeline of a larger invalid history is restricted to the anomaly.

mod common;

use common::{Rng, SimParams, simulate};
use lookout_jepsen::checker::{RegisterModel, linearizable, render_timeline};

#[test]
fn timeline_window_is_restricted_to_the_anomaly() {
    // Find a seeded buggy history of a few hundred ops that is invalid.
    for seed in 0..200 {
        let mut rng = Rng(seed);
        let p = SimParams { keys: 3, processes: 5, ops: 400, bug_rate: 0.01, info_rate: 0.03, fail_rate: 0.05, ties: false };
        let h = common::history(&simulate(&mut rng, &p));
        let r = linearizable(&h, &RegisterModel);
        let Some(c) = r.counterexample() else { continue };
        println!("seed {seed}: {}", c.explanation);
        assert!(c.core_is_minimal);
        assert!(c.core_ops.len() < 20, "core should be small: {:?}", c.core_ops);
        let html = render_timeline(&h, &r);
        let shown: usize = html.matches("<g opacity").count();
        println!("timeline shows {shown} of {} ops", h.len());
        assert!(shown >= c.core_ops.len() && shown < h.len(), "window not restricted: {shown}");
        for id in &c.core_ops {
            assert!(html.contains(&format!("<title>#{id} p")), "core op #{id} not drawn");
        }
        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("random_invalid_timeline.html");
        std::fs::write(&path, html).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    panic!("no invalid history found");
}
