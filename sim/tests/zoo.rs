//! The bug zoo: every deliberate core bug must be caught by the plain sweep
//! (`paxos-sim run --faults all --fail-fast --bug NAME`, every seed drawing
//! its own shape) within a bounded number of seeds. This is how the
//! checkers show they have teeth.

use paxos_sim::options::Bug;
use paxos_sim::runner::{run_seeds, Batch, Shard};
use paxos_sim::swarm::Pins;
use paxos_sim::{FaultSet, HashChain, Options};

/// What `paxos-sim run --faults all` pins: every fault kind in every seed
/// (the rest of each seed's shape is drawn).
fn all_faults() -> Pins {
    Pins {
        faults: Some(FaultSet::all()),
        ..Pins::default()
    }
}

/// Seeds each bug may take. The slowest, `fixed-election-timeout`, needed
/// 4 627 when this was written and 10 804 once a working leader no longer
/// stepped down for one rival's refusal (duels of equal timeouts now end
/// sooner); the rest at most a few hundred.
const SEEDS_MAX: u64 = 12_000;

#[test]
fn the_plain_sweep_catches_every_bug_in_the_zoo() {
    let pins = all_faults();
    let mut missed = Vec::new();
    for bug in Bug::ALL {
        let base = Options {
            bug,
            ..Options::default()
        };
        let options = |seed| Ok(pins.options(seed, &base));
        let batch = Batch {
            first: 0,
            count: SEEDS_MAX,
            shard: Shard::ALL,
            jobs: 2,
            fail_fast: true,
        };
        let summary = run_seeds::<HashChain>(batch, &options, &|_| {}).expect("valid options");
        match summary.failures.first() {
            Some((seed, v)) => println!(
                "{:<30} caught at seed {seed:>5} after {:>5} seeds: {}",
                bug.name(),
                summary.seeds,
                v.invariant
            ),
            None => missed.push(bug.name()),
        }
    }
    assert!(
        missed.is_empty(),
        "not caught within {SEEDS_MAX} seeds: {missed:?}"
    );
}

#[test]
fn without_a_bug_the_same_seeds_pass() {
    let pins = all_faults();
    let options = |seed| Ok(pins.options(seed, &Options::default()));
    let batch = Batch {
        first: 0,
        count: 200,
        shard: Shard::ALL,
        jobs: 2,
        fail_fast: true,
    };
    let summary = run_seeds::<HashChain>(batch, &options, &|_| {}).expect("valid options");
    assert!(
        summary.failures.is_empty(),
        "{:?}",
        summary.failures.first()
    );
}
