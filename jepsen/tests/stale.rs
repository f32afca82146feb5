//! Stale-read checks (a) never newer than committed, (b) never from a divergent
//! history, (c) never staler than claimed — violations and valid counterparts.

use lookout_jepsen::checker::stale::{StaleReport, StaleViolationKind as K, check_stale_reads};
use lookout_jepsen::checker::{RegisterModel, linearizable};
use lookout_jepsen::history::{Event, EventKind, History, StaleMeta, Value};

const MS: u64 = 1_000_000;

/// Base history on key x (times in ms):
///   p0 write 1 [0, 10]  ok index 10
///   p1 write 2 [20, 30] ok index 20
///   p0 write 3 [60, 70] ok index 30
struct B(Vec<Event>);

impl B {
    fn base() -> B {
        let mut b = B(Vec::new());
        b.write(0, 1, 0, Some(10), Some(10));
        b.write(1, 2, 20, Some(30), Some(20));
        b.write(0, 3, 60, Some(70), Some(30));
        b
    }
    fn write(&mut self, p: u64, v: i64, inv: u64, ok: Option<u64>, index: Option<u64>) -> &mut Self {
        let e = Event::invoke_write(p, "x", v, inv * MS);
        self.0.push(e.clone());
        match ok {
            Some(t) => self.0.push(Event { index, ..Event::complete(&e, EventKind::Ok, t * MS) }),
            None => self.0.push(Event::complete(&e, EventKind::Info, (inv + 1) * MS)),
        }
        self
    }
    fn stale_read(&mut self, p: u64, inv: u64, ok: u64, v: Value, staleness_ms: u64, applied: u64) -> &mut Self {
        let e = Event { stale: Some(StaleMeta::default()), ..Event::invoke_read(p, "x", inv * MS) };
        self.0.push(e.clone());
        let mut c = Event::read_ok(&e, v, ok * MS);
        c.stale = Some(StaleMeta { staleness_ms: Some(staleness_ms), applied_index: Some(applied) });
        self.0.push(c);
        self
    }
    fn check(&self) -> (History, StaleReport) {
        let mut ev = self.0.clone();
        ev.sort_by_key(|e| e.time_ns);
        let h = History::from_events(&ev).unwrap();
        let r = check_stale_reads(&h);
        for v in &r.violations {
            println!("{v}");
        }
        (h, r)
    }
}

fn kinds(r: &StaleReport) -> Vec<K> {
    r.violations.iter().map(|v| v.kind).collect()
}

#[test]
fn valid_stale_reads() {
    let mut b = B::base();
    // Applied index 10 → value 1; staleness 100ms allows it (overwritten at 30ms, bound 100-100=0).
    b.stale_read(5, 100, 101, Some(1), 100, 10);
    // Applied 25 → 2; overwritten by write 3 completing at 70ms; bound 110-40 = 70ms: not before.
    b.stale_read(6, 110, 111, Some(2), 40, 25);
    // Applied index 5 → absent; first write completed at 10ms, bound 12-5 = 7ms.
    b.stale_read(7, 12, 13, None, 5, 5);
    // Fresh: applied 30 → 3.
    b.stale_read(8, 120, 121, Some(3), 0, 30);
    let (h, r) = b.check();
    assert!(r.is_ok(), "{:?}", r.violations);
    assert_eq!(r.checked, 4);
    // Stale reads don't enter the linearizability check.
    assert!(linearizable(&h, &RegisterModel).is_valid());
}

#[test]
fn a_read_from_the_future() {
    let mut b = B::base();
    // Returns 3 but completes at 50ms, before write 3 was invoked (60ms).
    b.stale_read(5, 40, 50, Some(3), 1000, 30);
    let (_, r) = b.check();
    assert!(r.has(K::NewerThanCommitted), "{:?}", r.violations);
    assert!(r.violations[0].explanation.contains("after the read completed"));

    // Valid counterpart: the read overlaps write 3's invocation.
    let mut b = B::base();
    b.stale_read(5, 40, 65, Some(3), 1000, 30);
    assert!(b.check().1.is_ok());
}

#[test]
fn a_value_nobody_wrote_or_a_failed_write() {
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(99), 1000, 30);
    let (_, r) = b.check();
    assert_eq!(kinds(&r), vec![K::NewerThanCommitted]);
    assert!(r.violations[0].explanation.contains("no op ever wrote it"));

    let mut b = B::base();
    let e = Event::invoke_write(3, "x", 7, 40 * MS);
    b.0.push(e.clone());
    b.0.push(Event::complete(&e, EventKind::Fail, 45 * MS));
    b.stale_read(5, 100, 101, Some(7), 1000, 30);
    let (_, r) = b.check();
    assert!(r.has(K::NewerThanCommitted), "{:?}", r.violations);
    assert!(r.violations[0].explanation.contains("no effect"));
}

#[test]
fn b_divergent_history() {
    // Claims applied index 15 (where x = 1) but returns 2 (committed at 20).
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(2), 1000, 15);
    let (_, r) = b.check();
    assert_eq!(kinds(&r), vec![K::DivergentHistory], "{:?}", r.violations);
    // Claims applied index 25 (x = 2) but returns the older 1.
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(1), 1000, 25);
    assert_eq!(kinds(&b.check().1), vec![K::DivergentHistory]);
    // Claims applied index 15 but returns absent.
    let mut b = B::base();
    b.stale_read(5, 100, 101, None, 1000, 15);
    assert_eq!(kinds(&b.check().1), vec![K::DivergentHistory]);

    // Valid counterparts.
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(1), 1000, 15);
    b.stale_read(6, 100, 101, Some(2), 1000, 29);
    b.stale_read(7, 100, 101, None, 1000, 9);
    assert!(b.check().1.is_ok());
}

#[test]
fn b_writer_without_index_is_bounded_by_real_time() {
    // Write 4 ends info (no index). It was invoked at 80ms, after write 3
    // (index 30) completed, so its index is > 30.
    let mut b = B::base();
    b.write(2, 4, 80, None, None);
    b.stale_read(5, 100, 101, Some(4), 1000, 25);
    let (_, r) = b.check();
    assert_eq!(kinds(&r), vec![K::DivergentHistory], "{:?}", r.violations);

    // Read at applied index 35 may reflect it: unverifiable, not a violation.
    let mut b = B::base();
    b.write(2, 4, 80, None, None);
    b.stale_read(5, 100, 101, Some(4), 1000, 35);
    let (_, r) = b.check();
    assert!(r.is_ok(), "{:?}", r.violations);
    assert_eq!(r.unverified.len(), 1);
}

#[test]
fn c_staler_than_claimed() {
    // Invoked at 100ms claiming ≤ 50ms staleness, returns 1: but write 2
    // (invoked after write 1 completed) completed at 30ms < 50ms.
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(1), 50, 10);
    let (_, r) = b.check();
    assert_eq!(kinds(&r), vec![K::StalerThanClaimed], "{:?}", r.violations);
    assert!(r.violations[0].related.contains(&1));
    // Absent, though write 1 completed at 10ms, claiming ≤ 20ms at 100ms.
    let mut b = B::base();
    b.stale_read(5, 100, 101, None, 20, 5);
    assert_eq!(kinds(&b.check().1), vec![K::StalerThanClaimed]);

    // Valid counterpart: claims ≤ 80ms (bound 20ms): write 2 completed at 30ms.
    let mut b = B::base();
    b.stale_read(5, 100, 101, Some(1), 80, 10);
    assert!(b.check().1.is_ok());
    // Concurrent overwrite (not known to follow): not a violation.
    let mut b = B(Vec::new());
    b.write(0, 1, 0, Some(50), None);
    b.write(1, 2, 10, Some(20), None);
    b.stale_read(5, 100, 101, Some(1), 10, 100);
    let (_, r) = b.check();
    assert!(r.is_ok(), "{:?}", r.violations);
}

#[test]
fn index_conflict() {
    let mut b = B::base();
    let e = Event::invoke_write(3, "x", 9, 80 * MS);
    b.0.push(e.clone());
    b.0.push(Event { index: Some(20), ..Event::complete(&e, EventKind::Ok, 85 * MS) });
    let (_, r) = b.check();
    assert_eq!(kinds(&r), vec![K::IndexConflict]);
}
