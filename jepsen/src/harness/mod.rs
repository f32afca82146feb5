//! The fault-injection harness: real `lookoutd` clusters, workloads, nemeses, and the
//! run that ties them to the checkers. See the crate README for the commands.
//!
//! * [`cluster`]: processes (start, `kill -9`, SIGSTOP/SIGCONT, restart) and gRPC channels.
//! * [`proxy`]: a user-space TCP proxy per directed peer link (pass, delay, loss, blackhole).
//! * [`netns`]: network namespaces + nftables (root only).
//! * [`client`]: leader routing and the ok / fail / info classification of outcomes.
//! * [`recorder`]: the history log and per-op summaries.
//! * [`cas`], [`vis`]: the workloads.
//! * [`nemesis`]: the seeded fault schedule.
//! * [`run`], [`report`]: one test run and its `results.json`.

pub mod cas;
pub mod client;
pub mod cluster;
pub mod nemesis;
pub mod netns;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod run;
pub mod vis;
