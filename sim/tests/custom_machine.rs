//! Plugging a user's own state machine into the simulator: a small key-value
//! store whose replies must match the decided log under every fault.

use paxos_core::{ClientId, StateMachine};
use paxos_sim::{run, Options, SimMachine, SimRng};
use std::collections::BTreeMap;

/// Keys the workload touches; few, so that requests conflict.
const KEYS: u64 = 4;

#[derive(Clone, Debug, PartialEq)]
enum KvOp {
    Put(u64, u64),
    Get(u64),
}

#[derive(Clone, Debug, Default)]
struct Kv(BTreeMap<u64, u64>);

impl StateMachine for Kv {
    type Command = KvOp;
    type Output = Option<u64>;
    fn apply(&mut self, op: &KvOp) -> Option<u64> {
        match op {
            KvOp::Put(k, v) => self.0.insert(*k, *v),
            KvOp::Get(k) => self.0.get(k).copied(),
        }
    }
}

impl SimMachine for Kv {
    fn fresh() -> Self {
        Kv::default()
    }
    fn random_op(rng: &mut SimRng, client: ClientId, seq: u64) -> KvOp {
        let key = rng.below(KEYS);
        if rng.chance(0.5) {
            KvOp::Put(key, client * 1_000_000 + seq)
        } else {
            KvOp::Get(key)
        }
    }
}

#[test]
fn a_user_key_value_store_runs_under_every_fault() {
    for seed in 0..20 {
        let opts = Options {
            seed,
            heal_tick: 150,
            ..Options::default()
        };
        let out = run::<Kv>(opts.clone()).unwrap();
        assert!(
            out.violation.is_none(),
            "{:?} with {}",
            out.violation,
            opts.replay_args()
        );
        assert!(out.stats.completed > 0);
    }
}

/// A machine whose replies depend on something outside the log (here, how
/// often this copy ran): not deterministic, so the linearizability checker
/// must reject it. This is how the simulator protects users from their own bugs.
#[derive(Clone, Debug, Default)]
struct Flaky {
    calls: u64,
    sum: u64,
}

impl StateMachine for Flaky {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, op: &u64) -> u64 {
        self.calls += 1;
        self.sum += op;
        // The first copy ever built answers differently: a hidden global.
        self.sum + u64::from(FIRST.with(|f| f.replace(false)))
    }
}

thread_local! {
    static FIRST: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

impl SimMachine for Flaky {
    fn fresh() -> Self {
        Flaky::default()
    }
    fn random_op(rng: &mut SimRng, _: ClientId, _: u64) -> u64 {
        rng.below(100)
    }
}

#[test]
fn a_nondeterministic_user_machine_is_caught() {
    let opts = Options {
        seed: 3,
        heal_tick: 100,
        faults: paxos_sim::FaultSet::NONE,
        ..Options::default()
    };
    let v = run::<Flaky>(opts).unwrap().violation.expect("caught");
    assert_eq!(v.invariant, paxos_sim::Invariant::Linearizability);
}
