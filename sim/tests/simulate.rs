//! End-to-end runs of the simulator: determinism, progress without faults,
//! no violations under every fault (property test over fixed seeds), and
//! proof that the checkers catch a broken driver.

use paxos_sim::options::Knob;
use paxos_sim::options::Sabotage;
use paxos_sim::runner::{run_seeds, Batch, Shard};
use paxos_sim::shrink::shrink;
use paxos_sim::{run, Fault, FaultSet, HashChain, Invariant, Layout, Options, Outcome};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngSeed};

/// Raise this for long local runs: `PAXOS_SIM_CASES=100000 cargo test -p paxos-sim --release`.
const CASES_ENV: &str = "PAXOS_SIM_CASES";
/// Seeds per property in CI.
const CI_CASES: u32 = 400;
/// Fixed seed of the property tests' own generator, so CI runs the same cases.
const PROPTEST_SEED: u64 = 0x5EED_0FBA_5500;

fn cases() -> u32 {
    std::env::var(CASES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES)
}

fn prop_config() -> PropConfig {
    PropConfig {
        cases: cases(),
        rng_seed: RngSeed::Fixed(PROPTEST_SEED),
        failure_persistence: None,
        ..PropConfig::default()
    }
}

fn short(seed: u64) -> Options {
    Options {
        seed,
        heal_tick: 150,
        ..Options::default()
    }
}

fn go(opts: Options) -> Outcome {
    run::<HashChain>(opts).expect("valid options")
}

fn assert_clean(opts: &Options, outcome: &Outcome) {
    if let Some(v) = &outcome.violation {
        panic!("{v}\nreplay: paxos-sim replay {}", opts.replay_args());
    }
}

#[test]
fn same_seed_gives_the_same_trace_hash() {
    let a = go(short(42));
    let b = go(short(42));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats, b.stats);
    // Recording the events must not change the run.
    let c = go(Options {
        record: true,
        ..short(42)
    });
    assert_eq!(a.trace_hash, c.trace_hash);
    assert!(!c.events.is_empty());
    assert_ne!(a.trace_hash, go(short(43)).trace_hash, "seeds matter");
}

#[test]
fn a_batch_of_seeds_sums_up_the_same_on_any_number_of_threads() {
    const SEEDS: u64 = 12;
    let base = short(0);
    let batch = |jobs| Batch {
        first: 100,
        count: SEEDS,
        shard: Shard::ALL,
        jobs,
        fail_fast: false,
    };
    let options = |seed| {
        Ok(Options {
            seed,
            ..base.clone()
        })
    };
    let one = run_seeds::<HashChain>(batch(1), &options, &|_| {}).unwrap();
    let three = run_seeds::<HashChain>(batch(3), &options, &|_| {}).unwrap();
    assert_eq!(one.seeds, SEEDS);
    assert_eq!(one.stats, three.stats);
    assert_eq!(one.failures, three.failures);
}

#[test]
fn without_faults_every_request_completes_on_3_5_and_7_nodes() {
    for nodes in [3, 5, 7] {
        let opts = Options {
            nodes,
            faults: FaultSet::NONE,
            heal_tick: 100,
            ..short(nodes as u64)
        };
        let out = go(opts.clone());
        assert_clean(&opts, &out);
        assert!(out.stats.invoked > 0);
        assert_eq!(out.stats.invoked, out.stats.completed, "{nodes} nodes");
        assert_eq!(out.stats.lost, 0);
        assert_eq!(out.stats.crashes, 0);
    }
}

#[test]
fn heavy_faults_still_make_progress_and_heal() {
    let mut opts = short(7);
    for f in [Fault::Crash, Fault::Partition, Fault::Isolate] {
        opts.rates.set(f, 0.05);
    }
    let out = go(opts.clone());
    assert_clean(&opts, &out);
    assert!(
        out.stats.crashes > 0,
        "the fault rates were high enough to crash"
    );
    assert!(out.stats.completed > 0);
    assert_eq!(
        out.stats.invoked, out.stats.completed,
        "heal completes everything"
    );
}

fn fault_set() -> impl Strategy<Value = FaultSet> {
    prop_oneof![
        Just(FaultSet::all()),
        (0u32..1 << Fault::ALL.len()).prop_map(|bits| {
            Fault::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .fold(FaultSet::NONE, |s, (_, f)| s.with(f))
        }),
    ]
}

proptest! {
    #![proptest_config(prop_config())]

    #[test]
    fn no_invariant_breaks_under_any_faults(
        seed in any::<u64>(),
        nodes in prop_oneof![Just(3usize), Just(5), Just(7)],
        clients in 1usize..9,
        faults in fault_set(),
        crash_rate in 0.0f64..0.06,
        batch_max in proptest::option::of(1u64..4),
        pipeline_window in proptest::option::of(1u64..8),
    ) {
        let mut opts = Options { nodes, clients, faults, ..short(seed) };
        opts.rates.set(Fault::Crash, crash_rate);
        opts.tuning.set(Knob::BatchMax, batch_max);
        opts.tuning.set(Knob::PipelineWindow, pipeline_window);
        let out = go(opts.clone());
        prop_assert!(out.violation.is_none(), "{}\nreplay: paxos-sim replay {}",
            out.violation.as_ref().unwrap(), opts.replay_args());
    }
}

proptest! {
    #![proptest_config(prop_config())]

    /// Servers that compact their logs into snapshots and restore from them,
    /// and send them to peers that fell behind: safe, and every request
    /// completes after heal.
    #[test]
    fn snapshots_and_restores_stay_safe_and_live(
        seed in any::<u64>(),
        nodes in prop_oneof![Just(3usize), Just(5)],
        snapshot_ticks in 1u64..40,
        crash_rate in 0.0f64..0.06,
    ) {
        let mut opts = Options {
            nodes,
            snapshot_ticks: Some(snapshot_ticks),
            ..short(seed)
        };
        opts.rates.set(Fault::Crash, crash_rate);
        let out = go(opts.clone());
        prop_assert!(out.violation.is_none(), "{}\nreplay: paxos-sim replay {}",
            out.violation.as_ref().unwrap(), opts.replay_args());
    }
}

#[test]
fn crashed_servers_restore_from_their_snapshots() {
    let mut opts = Options {
        snapshot_ticks: Some(SNAPSHOT_TICKS),
        ..short(11)
    };
    opts.rates.set(Fault::Crash, 0.05);
    let out = go(opts.clone());
    assert_clean(&opts, &out);
    assert!(out.stats.snapshots > 0 && out.stats.crashes > 0);
    assert_eq!(out.stats.invoked, out.stats.completed);
}

/// Seeds searched for a run in which a lagging node needs a snapshot.
const SNAPSHOT_SEARCH_SEEDS: u64 = 300;

/// Regression: a server restored from a snapshot keeps no chosen values
/// below it, so a peer that lagged below every up-to-date node's snapshot
/// asked for catch-up forever and its clients never heard back. Now the
/// peer it asks sends it a snapshot, which it installs. (First found with
/// `--seed 13492343507733437679 --nodes 3 --snapshot-ticks 20 --rate
/// crash=0.033`; the seed that shows it changes whenever the runs do, so
/// the test looks for one.)
#[test]
fn a_node_behind_every_snapshot_catches_up() {
    let options = |seed| {
        let mut opts = Options {
            nodes: 3,
            snapshot_ticks: Some(20),
            ..short(seed)
        };
        opts.rates.set(Fault::Crash, 0.033);
        opts
    };
    let mut installed = None;
    for seed in 0..SNAPSHOT_SEARCH_SEEDS {
        let opts = options(seed);
        let out = go(opts.clone());
        assert_clean(&opts, &out);
        assert_eq!(out.stats.invoked, out.stats.completed, "seed {seed}");
        if out.stats.snapshots_installed > 0 {
            installed = Some((opts, out));
            break;
        }
    }
    let (opts, out) = installed.expect("some seed needs a snapshot transfer");
    // Snapshots in flight keep runs repeatable, recorded or not.
    let again = go(Options {
        record: true,
        ..opts
    });
    assert_eq!((again.trace_hash, again.stats), (out.trace_hash, out.stats));
    assert!(again
        .events
        .iter()
        .any(|e| e.label.starts_with("snapshot up to slot")));
}

/// Snapshot period of the restore test, in ticks.
const SNAPSHOT_TICKS: u64 = 10;

fn roles(proposers: usize, learners: usize) -> Layout {
    Layout::Roles {
        proposers,
        learners,
    }
}

#[test]
fn roles_apart_without_faults_complete_every_request() {
    for (acceptors, proposers, learners) in [(3, 1, 1), (3, 2, 2), (5, 3, 2)] {
        let opts = Options {
            nodes: acceptors,
            layout: roles(proposers, learners),
            faults: FaultSet::NONE,
            heal_tick: 100,
            ..short(acceptors as u64)
        };
        let out = go(opts.clone());
        assert_clean(&opts, &out);
        assert!(out.stats.invoked > 0);
        assert_eq!(out.stats.invoked, out.stats.completed);
    }
}

#[test]
fn self_learning_core_clients_see_every_request_chosen_without_faults() {
    let opts = Options {
        nodes: 3,
        layout: roles(2, 2),
        core_clients: true,
        faults: FaultSet::NONE,
        heal_tick: 100,
        ..short(5)
    };
    let out = go(opts.clone());
    assert_clean(&opts, &out);
    assert!(out.stats.invoked > 0);
    assert_eq!(out.stats.invoked, out.stats.completed);
}

proptest! {
    #![proptest_config(prop_config())]

    /// Safety only: with the roles apart, liveness after heal is known to fail
    /// when every learner misses a chosen slot (see the ignored test below).
    #[test]
    fn roles_apart_stay_safe_under_any_faults(
        seed in any::<u64>(),
        acceptors in prop_oneof![Just(3usize), Just(5)],
        proposers in 1usize..4,
        learners in 1usize..4,
        faults in fault_set(),
        crash_rate in 0.0f64..0.06,
        batch_max in proptest::option::of(1u64..4),
        core_clients in any::<bool>(),
    ) {
        let mut opts = Options {
            nodes: acceptors,
            layout: roles(proposers, learners),
            faults,
            liveness: false,
            ..short(seed)
        };
        opts.rates.set(Fault::Crash, crash_rate);
        opts.tuning.set(Knob::BatchMax, batch_max);
        opts.core_clients = core_clients;
        let out = go(opts.clone());
        prop_assert!(out.violation.is_none(), "{}\nreplay: paxos-sim replay {}",
            out.violation.as_ref().unwrap(), opts.replay_args());
    }
}

/// Known core gap: apart from proposers, learners catch up only from other
/// learners, so a slot that every learner missed is never delivered and its
/// client waits forever. Run with `--ignored` once the core serves catch-up
/// from acceptors or the leader.
#[test]
fn roles_apart_recover_a_slot_every_learner_missed() {
    let opts = Options {
        nodes: 3,
        clients: 1,
        layout: roles(2, 2),
        faults: FaultSet::parse("oneway,slow,storm,pause").unwrap(),
        ..short(0)
    };
    let out = go(opts.clone());
    assert_clean(&opts, &out);
}

#[test]
fn checkers_catch_a_driver_that_sends_before_fsync() {
    let opts = Options {
        sabotage: Sabotage::SendBeforeSync,
        ..short(1)
    };
    // The persist-before-send checker sees the first message that leaves
    // ahead of its record, long before two learners could disagree.
    let v = go(opts).violation.expect("the broken barrier is visible");
    assert_eq!(v.invariant, Invariant::PersistBeforeSend);
}

#[test]
fn checkers_catch_a_driver_that_loses_its_log() {
    let caught = (0..20).find_map(|seed| {
        go(Options {
            sabotage: Sabotage::ForgetDisk,
            ..short(seed)
        })
        .violation
    });
    assert_eq!(
        caught.expect("some seed crashes a node").invariant,
        Invariant::Durability
    );
}

#[test]
fn shrinking_a_passing_run_finds_nothing() {
    assert!(shrink::<HashChain>(&short(1), Invariant::Agreement).is_none());
}

#[test]
fn shrinking_keeps_the_failure_and_replays_it_exactly() {
    // The first seed the sabotage breaks (which one depends on schedules).
    let (opts, original) = (0..20)
        .find_map(|seed| {
            let opts = Options {
                sabotage: Sabotage::ForgetDisk,
                ..short(seed)
            };
            go(opts.clone()).violation.map(|v| (opts, v))
        })
        .expect("some seed crashes a node");
    let (small, v) = shrink::<HashChain>(&opts, original.invariant).expect("it fails");
    assert_eq!(v.invariant, original.invariant);
    assert!(small.faults.iter().count() <= opts.faults.iter().count());
    assert!(
        small.faults.contains(Fault::Crash),
        "crash is needed to lose the log"
    );
    assert!(v.step <= original.step || small.faults != opts.faults);
    let again = go(small.clone()).violation.expect("the shrunk run fails");
    assert_eq!(again, v, "replay of {}", small.replay_args());
}

#[test]
fn reads_without_a_slot_are_served_and_linearizable_under_faults() {
    let mut served = 0;
    for seed in 0..12 {
        let mut opts = Options {
            read_percent: 50,
            faults: FaultSet::all(),
            ..short(seed)
        };
        if seed % 2 == 1 {
            // Leases, with clocks within their drift bound.
            opts.tuning.set(Knob::LeaseTicks, Some(8));
        }
        let out = go(opts.clone());
        assert_clean(&opts, &out);
        served += out.stats.reads;
    }
    assert!(served > 100, "only {served} reads served");
}
