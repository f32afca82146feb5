//! The "lookout visibility" workload: items are put, screens list items.
//!
//! * No screen invoked after an item's put was acknowledged misses that item
//!   ([`VisibilityViolation::Missed`]).
//! * No screen returns an item that was never written: no put of it was ever
//!   invoked, or every put of it certainly failed
//!   ([`VisibilityViolation::Phantom`]), or every put of it was invoked only
//!   after the screen completed ([`VisibilityViolation::FromFuture`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How a put ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Acknowledged at `ack_ns`.
    Acked { ack_ns: u64 },
    /// Certainly not written.
    Failed,
    /// Unknown (timeout, crash): may or may not have been written.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRecord {
    pub item: String,
    pub invoke_ns: u64,
    pub outcome: PutOutcome,
}

/// A screen (query) that completed successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenRecord {
    pub process: u64,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub items: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VisibilityViolation {
    /// `screen` (index into the screens) was invoked after the item's put was
    /// acknowledged but did not return it.
    Missed { screen: usize, item: String, ack_ns: u64, screen_invoke_ns: u64 },
    /// `screen` returned an item no put could have written.
    Phantom { screen: usize, item: String, why: String },
    /// `screen` returned an item whose puts were all invoked after it completed.
    FromFuture { screen: usize, item: String, put_invoke_ns: u64, screen_complete_ns: u64 },
}

impl fmt::Display for VisibilityViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VisibilityViolation::Missed { screen, item, ack_ns, screen_invoke_ns } => write!(
                f,
                "screen #{screen} invoked at {screen_invoke_ns} ns missed item {item:?}, acknowledged at {ack_ns} ns"
            ),
            VisibilityViolation::Phantom { screen, item, why } => {
                write!(f, "screen #{screen} returned item {item:?}, which was never written: {why}")
            }
            VisibilityViolation::FromFuture { screen, item, put_invoke_ns, screen_complete_ns } => write!(
                f,
                "screen #{screen} completed at {screen_complete_ns} ns returned item {item:?}, first put invoked at {put_invoke_ns} ns"
            ),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VisibilityReport {
    pub screens_checked: usize,
    pub items: usize,
    pub violations: Vec<VisibilityViolation>,
}

impl VisibilityReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Check every screen against every item (each screen is expected to see
/// every item).
pub fn check_visibility(puts: &[PutRecord], screens: &[ScreenRecord]) -> VisibilityReport {
    check_visibility_with(puts, screens, |_, _| true)
}

/// Like [`check_visibility`], but `in_scope(screen, item)` says whether a
/// screen is expected to return an item at all (e.g. the screen's query
/// matches only some items); out-of-scope items are never "missed".
pub fn check_visibility_with(
    puts: &[PutRecord],
    screens: &[ScreenRecord],
    in_scope: impl Fn(&ScreenRecord, &str) -> bool,
) -> VisibilityReport {
    #[derive(Default)]
    struct Item {
        first_ack: Option<u64>,
        first_invoke_possible: Option<u64>,
    }
    let mut items: BTreeMap<&str, Item> = BTreeMap::new();
    for p in puts {
        let it = items.entry(p.item.as_str()).or_default();
        if let PutOutcome::Acked { ack_ns } = p.outcome {
            it.first_ack = Some(it.first_ack.map_or(ack_ns, |a| a.min(ack_ns)));
        }
        if p.outcome != PutOutcome::Failed {
            it.first_invoke_possible = Some(it.first_invoke_possible.map_or(p.invoke_ns, |a| a.min(p.invoke_ns)));
        }
    }
    let mut violations = Vec::new();
    for (si, s) in screens.iter().enumerate() {
        for (item, it) in &items {
            if let Some(ack) = it.first_ack
                && s.invoke_ns > ack && !s.items.contains(*item) && in_scope(s, item) {
                    violations.push(VisibilityViolation::Missed {
                        screen: si,
                        item: item.to_string(),
                        ack_ns: ack,
                        screen_invoke_ns: s.invoke_ns,
                    });
                }
        }
        for item in &s.items {
            match items.get(item.as_str()) {
                None => violations.push(VisibilityViolation::Phantom {
                    screen: si,
                    item: item.clone(),
                    why: "no put of it was ever invoked".into(),
                }),
                Some(Item { first_invoke_possible: None, .. }) => violations.push(VisibilityViolation::Phantom {
                    screen: si,
                    item: item.clone(),
                    why: "every put of it failed".into(),
                }),
                Some(Item { first_invoke_possible: Some(t), .. }) if *t > s.complete_ns => {
                    violations.push(VisibilityViolation::FromFuture {
                        screen: si,
                        item: item.clone(),
                        put_invoke_ns: *t,
                        screen_complete_ns: s.complete_ns,
                    })
                }
                _ => {}
            }
        }
    }
    VisibilityReport { screens_checked: screens.len(), items: items.len(), violations }
}
