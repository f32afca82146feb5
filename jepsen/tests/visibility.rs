//! The visibility workload checker.

use std::collections::BTreeSet;

use lookout_jepsen::checker::visibility::{
    PutOutcome, PutRecord, ScreenRecord, VisibilityViolation as V, check_visibility, check_visibility_with,
};

fn put(item: &str, invoke_ns: u64, outcome: PutOutcome) -> PutRecord {
    PutRecord { item: item.into(), invoke_ns, outcome }
}
fn screen(invoke_ns: u64, complete_ns: u64, items: &[&str]) -> ScreenRecord {
    ScreenRecord { process: 9, invoke_ns, complete_ns, items: items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>() }
}

fn puts() -> Vec<PutRecord> {
    vec![
        put("a", 0, PutOutcome::Acked { ack_ns: 10 }),
        put("b", 20, PutOutcome::Acked { ack_ns: 30 }),
        put("c", 40, PutOutcome::Unknown),
        put("d", 50, PutOutcome::Failed),
    ]
}

#[test]
fn valid_screens() {
    let screens = vec![
        screen(5, 8, &[]),           // before any ack: may miss everything
        screen(5, 25, &["a", "b"]),  // b's put overlaps: may be seen
        screen(15, 35, &["a"]),      // invoked before b's ack: may miss b
        screen(35, 45, &["a", "b", "c"]), // c unknown outcome, invoked before completion
        screen(60, 70, &["a", "b"]), // c may never have happened
    ];
    let r = check_visibility(&puts(), &screens);
    assert!(r.is_ok(), "{:?}", r.violations);
    assert_eq!((r.screens_checked, r.items), (5, 4));
}

#[test]
fn missed_item_after_ack() {
    let r = check_visibility(&puts(), &[screen(31, 40, &["a"])]);
    assert_eq!(r.violations, vec![V::Missed { screen: 0, item: "b".into(), ack_ns: 30, screen_invoke_ns: 31 }]);
    // Out of scope for that screen: not a miss.
    let r = check_visibility_with(&puts(), &[screen(31, 40, &["a"])], |_, item| item != "b");
    assert!(r.is_ok());
}

#[test]
fn phantom_and_future_items() {
    let r = check_visibility(&puts(), &[screen(100, 110, &["a", "b", "zzz", "d"])]);
    assert_eq!(r.violations.len(), 2, "{:?}", r.violations);
    assert!(matches!(&r.violations[0], V::Phantom { item, .. } if item == "d"), "{:?}", r.violations);
    assert!(matches!(&r.violations[1], V::Phantom { item, .. } if item == "zzz"));
    let r = check_visibility(&puts(), &[screen(11, 15, &["a", "b"])]);
    assert_eq!(
        r.violations,
        vec![V::FromFuture { screen: 0, item: "b".into(), put_invoke_ns: 20, screen_complete_ns: 15 }]
    );
}
