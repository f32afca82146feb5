//! Lookout's Jepsen-style test suite: the history model ([`history`]), the
//! checkers ([`checker`]): per-key linearizability (Wing–Gong/Lowe search, as
//! in Knossos and porcupine), stale-read promises, the visibility workload,
//! and an HTML timeline of an anomaly; and the fault-injection [`harness`]
//! that runs real `lookoutd` clusters under faults and records histories.
//!
//! ```
//! use lookout_jepsen::checker::{linearizable, RegisterModel};
//! use lookout_jepsen::history::History;
//!
//! let h = History::parse_jsonl(r#"
//! {"process":0,"kind":"invoke","f":"write","key":"k","value":1,"time_ns":0}
//! {"process":0,"kind":"ok","f":"write","key":"k","value":1,"time_ns":10}
//! {"process":1,"kind":"invoke","f":"read","key":"k","time_ns":20}
//! {"process":1,"kind":"ok","f":"read","key":"k","value":1,"time_ns":30}
//! "#).unwrap();
//! assert!(linearizable(&h, &RegisterModel).is_valid());
//! ```

pub mod checker;
pub mod harness;
pub mod history;
