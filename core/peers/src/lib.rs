//! paxos-core and its peers (OmniPaxos, raft-rs) in one harness, so that a
//! figure is only ever compared with a peer measured in the same run.
//!
//! [`harness`] drives any [`harness::Cluster`]: three replicas in one thread,
//! lock-step rounds of N proposals at the leader whose messages are delivered
//! by value in FIFO waves until every replica has applied them, every record a
//! library persists kept in an in-memory log that is compacted at least every
//! [`harness::COMPACT_EVERY`] commands. Each library has one adapter file;
//! paxos-core's is [`core_adapter`], the only file that names its API. The
//! peers are behind the `peers` feature, so that the workspace's tests and
//! lints never build them; `cargo bench -p paxos-peer-bench --features peers`
//! runs the comparison (`benches/peers.rs`). [`memory`] is paxos-core's
//! memory run (`cargo bench -p paxos-peer-bench -- memory`): resident
//! memory after 1 M and after 10 M commands in rounds of 100.

pub mod core_adapter;
pub mod harness;
pub mod memory;
#[cfg(feature = "peers")]
pub mod omnipaxos_adapter;
#[cfg(feature = "peers")]
pub mod raft_adapter;
