//! Short runs of every adapter through the harness with a tiny compaction
//! distance: commands apply in order everywhere, and logs stay bounded.

use paxos_peer_bench::core_adapter::PaxosCore;
use paxos_peer_bench::harness::{Cluster, Harness, Settings};
use paxos_peer_bench::memory::memory_run;
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

/// The memory run, short and with a small command bound so that it trims:
/// it runs every command in order (the harness checks) and reports both
/// marks; what the memory figures are is the bench's business, not a test's.
#[test]
fn the_memory_run_applies_in_order_and_keeps_retained_commands_bounded() {
    let figures = memory_run(2_000, 20_000, 100, Duration::from_secs(60), |c| {
        c.retain_commands = 500
    });
    assert!(!figures.cut_short, "too slow");
    assert_eq!((figures.first.0, figures.last.0), (2_000, 20_000));
    assert!(figures.compactions > 0, "never compacted");
    for (learner, acceptor) in figures.retained {
        assert!(learner <= 500, "a learner retains {learner} commands");
        // Up to 500 retained and a chunk of up to 500 below, plus a
        // round in flight.
        assert!(acceptor <= 1_100, "an acceptor holds {acceptor} commands");
    }
}
