//! Performance and deadline behaviour.

mod common;

use std::time::{Duration, Instant};

use common::{Rng, SimParams, simulate};
use lookout_jepsen::checker::{CheckOptions, CheckResult, KeyVerdict, RegisterModel, linearizable_with};
use lookout_jepsen::history::{Event, EventKind, History};

fn big_valid(keys: u64, processes: u64, ops: usize, seed: u64) -> History {
    let mut rng = Rng(seed);
    let p = SimParams { keys, processes, ops, bug_rate: 0.0, info_rate: 0.01, fail_rate: 0.02, ties: false };
    common::history(&simulate(&mut rng, &p))
}

#[test]
fn five_thousand_ops_ten_keys_five_processes_is_fast() {
    let h = big_valid(10, 5, 5000, 42);
    assert_eq!(h.len(), 5000);
    let infos = h.ops.iter().filter(|o| o.is_info()).count();
    let t = Instant::now();
    let rep = linearizable_with(&h, &RegisterModel, &CheckOptions::with_timeout(Duration::from_secs(30)));
    let took = t.elapsed();
    println!(
        "5000 ops / 10 keys / 5 processes ({infos} info): {:?} in {took:?}; steps per key: {:?}",
        rep.result,
        rep.keys.iter().map(|k| k.search_steps).collect::<Vec<_>>()
    );
    assert_eq!(rep.result, CheckResult::Valid);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn five_thousand_ops_one_key_is_fast() {
    let h = big_valid(1, 5, 5000, 7);
    let t = Instant::now();
    let rep = linearizable_with(&h, &RegisterModel, &CheckOptions::with_timeout(Duration::from_secs(30)));
    let took = t.elapsed();
    println!("5000 ops / 1 key / 5 processes: {:?} in {took:?}", rep.result);
    assert_eq!(rep.result, CheckResult::Valid);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// `n` fully concurrent writes, then a read of a value nobody wrote: the
/// search has to rule out every order of the writes (exponential).
fn pathological(key: &str, n: u64, t0: u64, first_process: u64) -> Vec<Event> {
    let mut ev = Vec::new();
    let invokes: Vec<Event> =
        (0..n).map(|i| Event::invoke_write(first_process + i, key, (first_process + i) as i64 + 1, t0 + i)).collect();
    ev.extend(invokes.iter().cloned());
    for (i, e) in invokes.iter().enumerate() {
        ev.push(Event::complete(e, EventKind::Ok, t0 + 1000 + i as u64));
    }
    let r = Event::invoke_read(first_process + n, key, t0 + 2000);
    ev.push(r.clone());
    ev.push(Event::read_ok(&r, Some(-1), t0 + 2010));
    ev
}

#[test]
fn pathological_history_with_tiny_deadline_is_unknown() {
    let h = History::from_events(&pathological("x", 40, 0, 0)).unwrap();
    let t = Instant::now();
    let rep = linearizable_with(&h, &RegisterModel, &CheckOptions::with_timeout(Duration::from_millis(50)));
    let took = t.elapsed();
    println!("pathological: {:?} after {took:?}", rep.result);
    assert!(rep.result.is_unknown(), "{:?}", rep.result);
    let CheckResult::Unknown { why } = &rep.result else { unreachable!() };
    assert!(why.contains("\"x\"") && why.contains("deadline"), "{why}");
    assert!(took < Duration::from_secs(2), "deadline not honoured: {took:?}");
}

#[test]
fn memory_bound_gives_unknown() {
    let h = History::from_events(&pathological("x", 40, 0, 0)).unwrap();
    let opts = CheckOptions { max_cache_entries: 10_000, ..CheckOptions::with_timeout(Duration::from_secs(30)) };
    let rep = linearizable_with(&h, &RegisterModel, &opts);
    assert!(rep.result.is_unknown(), "{:?}", rep.result);
}

#[test]
fn unknown_key_is_named_and_other_keys_still_checked() {
    let mut ev = pathological("slow", 40, 0, 0);
    let w = Event::invoke_write(100, "fine", 1000, 5);
    ev.push(w.clone());
    ev.push(Event::complete(&w, EventKind::Ok, 6));
    let h = History::from_events(&ev).unwrap();
    let rep = linearizable_with(&h, &RegisterModel, &CheckOptions::with_timeout(Duration::from_millis(100)));
    let CheckResult::Unknown { why } = &rep.result else { panic!("{:?}", rep.result) };
    assert!(why.contains("\"slow\""), "{why}");
    let fine = rep.keys.iter().find(|k| k.key == "fine").unwrap();
    assert_eq!(fine.verdict, KeyVerdict::Valid);
}

#[test]
fn invalid_key_wins_over_undecided_key() {
    let mut ev = pathological("slow", 40, 0, 0);
    // Key "bad": write 1 acknowledged, then a read sees nothing.
    let w = Event::invoke_write(100, "bad", 1000, 5);
    ev.push(w.clone());
    ev.push(Event::complete(&w, EventKind::Ok, 6));
    let r = Event::invoke_read(100, "bad", 7);
    ev.push(r.clone());
    ev.push(Event::read_ok(&r, None, 8));
    let h = History::from_events(&ev).unwrap();
    let t = Instant::now();
    let rep = linearizable_with(&h, &RegisterModel, &CheckOptions::with_timeout(Duration::from_secs(20)));
    assert_eq!(rep.result.invalid_key(), Some("bad"), "{:?}", rep.result);
    assert!(t.elapsed() < Duration::from_secs(5), "the undecidable key was not cancelled: {:?}", t.elapsed());
}
