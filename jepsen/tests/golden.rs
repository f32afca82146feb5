//! Hand-written golden histories (tests/golden/*.jsonl), valid and invalid.

use std::path::PathBuf;

use lookout_jepsen::checker::{CheckResult, RegisterModel, linearizable, render_timeline};
use lookout_jepsen::history::{Completion, History};

#[derive(Debug)]
enum Expect {
    Valid,
    Invalid { key: &'static str, core: &'static [usize] },
}

fn load(name: &str) -> History {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    History::read_jsonl(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `core`: the expected minimal non-linearizable core, as op ids (positions
/// in invocation order); empty = don't check.
const GOLDEN: &[(&str, Expect)] = &[
    ("valid_sequential.jsonl", Expect::Valid),
    ("invalid_sequential.jsonl", Expect::Invalid { key: "x", core: &[0, 1] }),
    ("valid_concurrent_read_sees_write.jsonl", Expect::Valid),
    ("valid_concurrent_read_misses_write.jsonl", Expect::Valid),
    ("invalid_concurrent_read_unsees_write.jsonl", Expect::Invalid { key: "x", core: &[0, 1, 2] }),
    ("valid_concurrent_writes_order_a.jsonl", Expect::Valid),
    ("valid_concurrent_writes_order_b.jsonl", Expect::Valid),
    ("invalid_concurrent_writes_flipflop.jsonl", Expect::Invalid { key: "x", core: &[0, 1, 2, 3] }),
    ("invalid_stale_read.jsonl", Expect::Invalid { key: "x", core: &[0, 1, 2] }),
    ("valid_info_write_becomes_visible.jsonl", Expect::Valid),
    ("valid_info_write_never_happens.jsonl", Expect::Valid),
    ("invalid_info_write_visible_before_invoke.jsonl", Expect::Invalid { key: "x", core: &[1, 2] }),
    ("invalid_info_write_undone.jsonl", Expect::Invalid { key: "x", core: &[0, 1, 2, 3] }),
    ("valid_cas_chain.jsonl", Expect::Valid),
    ("invalid_cas_chain_double_success.jsonl", Expect::Invalid { key: "x", core: &[0, 1, 2] }),
    ("invalid_cas_compare_failed_wrongly.jsonl", Expect::Invalid { key: "x", core: &[] }),
    ("invalid_cas_observed_mismatch.jsonl", Expect::Invalid { key: "x", core: &[1] }),
    ("valid_fail_ignored.jsonl", Expect::Valid),
    ("invalid_failed_write_visible.jsonl", Expect::Invalid { key: "x", core: &[2] }),
    ("invalid_multi_key_b.jsonl", Expect::Invalid { key: "b", core: &[1, 4] }),
    ("valid_multi_key.jsonl", Expect::Valid),
    ("valid_stale_reads_excluded.jsonl", Expect::Valid),
    ("valid_equal_timestamps.jsonl", Expect::Valid),
];

#[test]
fn golden_histories() {
    let mut failures = Vec::new();
    for (name, expect) in GOLDEN {
        let h = load(name);
        let r = linearizable(&h, &RegisterModel);
        let ok = match (expect, &r) {
            (Expect::Valid, CheckResult::Valid) => true,
            (Expect::Invalid { key, core }, CheckResult::Invalid(c)) => {
                println!("{name}:\n{}", c.explanation);
                c.key == *key && c.core_is_minimal && (core.is_empty() || c.core_ops == *core)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {r:?}"));
        }
    }
    assert!(failures.is_empty(), "golden mismatches:\n{}", failures.join("\n"));
}

/// Every golden file is covered by the table (so a new file can't be forgotten).
#[test]
fn golden_table_covers_every_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".jsonl") {
            assert!(GOLDEN.iter().any(|(n, _)| *n == name), "{name} not in the GOLDEN table");
        }
    }
}

#[test]
fn parse_semantics() {
    let h = load("valid_fail_ignored.jsonl");
    assert_eq!(h.len(), 6);
    assert!(matches!(h.ops[1].complete, Completion::Fail { .. }));
    assert!(matches!(h.ops[2].complete, Completion::Fail { .. }), "a cas failing for another reason is a plain fail");
    assert!(matches!(h.ops[4].complete, Completion::Info));
    assert_eq!(h.ops[4].complete_ns, None);
    let h = load("valid_cas_chain.jsonl");
    assert_eq!(h.ops[3].complete, Completion::CasFailed { observed: Some(Some(3)) });
    assert_eq!(h.ops[4].complete, Completion::CasFailed { observed: None });
    let h = load("valid_info_write_never_happens.jsonl");
    assert!(h.ops[1].is_info(), "an invocation never completed is info");
    let h = load("valid_stale_reads_excluded.jsonl");
    assert_eq!(h.ops[0].index, Some(5));
    let s = h.ops[2].stale.unwrap();
    assert_eq!((s.staleness_ms, s.applied_index), (Some(100), Some(5)));
    // Errors name the line.
    let bad = "{\"process\":0,\"kind\":\"invoke\",\"f\":\"read\",\"key\":\"x\",\"time_ns\":0}\n\
               {\"process\":0,\"kind\":\"invoke\",\"f\":\"read\",\"key\":\"x\",\"time_ns\":1}\n";
    assert_eq!(History::parse_jsonl(bad).unwrap_err().line, 2);
    let bad = "{\"process\":0,\"kind\":\"ok\",\"f\":\"read\",\"key\":\"x\",\"time_ns\":0}\n";
    assert!(History::parse_jsonl(bad).is_err());
}

#[test]
fn counterexample_and_timeline() {
    let h = load("invalid_stale_read.jsonl");
    let r = linearizable(&h, &RegisterModel);
    let c = r.counterexample().expect("invalid");
    // Ops: 0 w1, 1 w2, 2 r→1, 3 r→∅ (invoked at 5, listed last).
    assert_eq!(c.blocked_op, 2, "{c:?}");
    assert!(c.unlinearizable.contains(&2));
    assert!(c.longest_prefix.contains(&1) && c.longest_prefix.contains(&0), "{c:?}");
    assert_eq!(c.state_after_prefix, "2");
    let html = render_timeline(&h, &r);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert!(html.contains("INVALID: key &quot;x&quot;"));
    assert!(html.contains("stroke=\"#d62728\" stroke-width=\"3\""), "core ops highlighted");
    assert!(html.contains("<title>#2 p2 read x → 1"), "tooltips carry op details");
    assert!(html.contains("p0") && html.contains("p3"), "one row per process");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("invalid_stale_read.html"), &html).unwrap();

    // Info ops are drawn to the right edge, hatched.
    let h = load("invalid_info_write_visible_before_invoke.jsonl");
    let r = linearizable(&h, &RegisterModel);
    let html = render_timeline(&h, &r);
    assert!(html.contains("url(#hatch)"));
    std::fs::write(dir.join("invalid_info.html"), &html).unwrap();

    // Valid histories render too.
    let h = load("valid_cas_chain.jsonl");
    let html = render_timeline(&h, &linearizable(&h, &RegisterModel));
    assert!(html.contains("VALID"));
}
