//! # paxos-sim: a deterministic simulator for paxos-core
//!
//! Runs a cluster of [`paxos_core::Server`]s on a simulated network, disk and
//! clock, injects seeded faults, and checks seven invariants (agreement,
//! validity, order, at-most-once, durability, linearizability, liveness
//! after heal; sim/README.md explains them and how the checkers reason)
//! while it runs. One seed drives every random choice, so
//! a run repeats bit for bit, and a failing seed is a complete bug report.
//!
//! ```
//! use paxos_sim::{run, HashChain, Options};
//! let outcome = run::<HashChain>(Options { seed: 7, heal_tick: 100, ..Options::default() }).unwrap();
//! assert!(outcome.violation.is_none());
//! assert!(outcome.stats.completed > 0);
//! ```
//!
//! To test your own state machine, implement [`SimMachine`] for it and call
//! [`run::<YourMachine>`](run).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod cluster;
pub mod durable;
pub mod engine;
pub mod explore;
pub mod faults;
pub mod model;
pub mod netem;
pub mod options;
pub mod replay_node;
pub mod rng;
pub mod roles;
pub mod runner;
pub mod shrink;
pub mod swarm;
pub mod trace;
pub mod workload;

pub use check::Invariant;
pub use engine::{run, Outcome, Sim, SimError, Stats, Violation};
pub use model::{HashChain, SimMachine};
pub use options::{Fault, FaultSet, Knob, Options, OptionsError, Rates, Tuning, TICK_UNITS};
pub use rng::SimRng;
pub use roles::Layout;
