//! Short runs of every adapter through the harness with a tiny compaction
//! distance: commands apply in order everywhere, and logs stay bounded.

use paxos_peer_bench::core_adapter::PaxosCore;
use paxos_peer_bench::harness::{Cluster, Harness, Settings};
use std::time::Duration;

/// Compaction distance of the tests: small, so that a few thousand commands
/// compact many times.
const EVERY: u64 = 256;

/// Runs `C` with rounds of 1, 7 and 100 commands and checks what the bench
/// checks, plus that compaction happened at all.
fn short_runs<C: Cluster>() {
    for per_round in [1, 7, 100] {
        let settings = Settings {
            per_round,
            compact_every: EVERY,
        };
        let mut harness = Harness::<C>::new(settings);
        harness.run(3 * EVERY, Duration::from_secs(60));
        let figures = harness.run(20 * EVERY, Duration::from_secs(60));
        harness.check(&figures);
        assert!(!figures.cut_short, "{}: too slow", C::NAME);
        assert!(figures.compactions > 0, "{}: never compacted", C::NAME);
        assert_eq!(figures.commands, 20 * EVERY / per_round * per_round);
    }
}

#[test]
fn paxos_core_applies_in_order_and_keeps_its_log_bounded() {
    short_runs::<PaxosCore>();
}

#[cfg(feature = "peers")]
#[test]
fn raft_rs_applies_in_order_and_keeps_its_log_bounded() {
    short_runs::<paxos_peer_bench::raft_adapter::RaftRs>();
}

#[cfg(feature = "peers")]
#[test]
fn omnipaxos_applies_in_order_and_keeps_its_log_bounded() {
    short_runs::<paxos_peer_bench::omnipaxos_adapter::OmniPaxosCluster>();
}
