//! The state machine under test. Users plug in their own by implementing
//! [`SimMachine`]; the simulator wraps it in [`Recorded`] to watch executions.

use crate::rng::SimRng;
use paxos_core::{ClientId, StateMachine};

/// A state machine the simulator can drive: it knows how to start fresh and
/// how to make up a random operation for a client.
///
/// Outputs must be comparable, because the linearizability checker replays the
/// decided log through a fresh copy and compares every reply with it; the
/// machine must be `Clone` so that nodes can take snapshots.
pub trait SimMachine: StateMachine<Command: PartialEq, Output: PartialEq> + Clone {
    /// The state every replica starts from (and restarts from after a crash).
    fn fresh() -> Self;
    /// A random operation for request `seq` of `client`.
    fn random_op(rng: &mut SimRng, client: ClientId, seq: u64) -> Self::Command;
    /// A random read-only query ([`StateMachine::read`] answers it), for
    /// reads served without a slot; `None` (the default) if the machine
    /// has none, and then the workload only writes.
    fn random_read(rng: &mut SimRng) -> Option<Self::Command> {
        let _ = rng;
        None
    }
}

/// A user operation tagged with the request it belongs to, so that the
/// simulator can tell which request a replica executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged<C> {
    /// The client.
    pub client: ClientId,
    /// The request's sequence number.
    pub seq: u64,
    /// The user's operation.
    pub op: C,
}

/// Wraps the user's machine and journals every execution, for the
/// at-most-once checker.
#[derive(Clone, Debug)]
pub struct Recorded<S> {
    inner: S,
    executed: Vec<(ClientId, u64)>,
}

impl<S: SimMachine> Recorded<S> {
    /// A fresh wrapped machine.
    pub fn fresh() -> Self {
        Recorded {
            inner: S::fresh(),
            executed: Vec::new(),
        }
    }

    /// The user's machine.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Every `(client, seq)` executed so far, in order.
    pub fn executed(&self) -> &[(ClientId, u64)] {
        &self.executed
    }
}

impl<S: SimMachine> StateMachine for Recorded<S> {
    type Command = Tagged<S::Command>;
    type Output = S::Output;

    fn apply(&mut self, command: &Self::Command) -> Self::Output {
        self.executed.push((command.client, command.seq));
        self.inner.apply(&command.op)
    }

    fn read(&self, query: &Self::Command) -> Option<Self::Output> {
        self.inner.read(&query.op)
    }
}

/// The default machine: a hash chain. Each operation folds a number into the
/// state and returns the new state, so a reply reveals the exact sequence of
/// operations before it: any reordering, loss or repeat changes the output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashChain(pub u64);

impl StateMachine for HashChain {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, op: &u64) -> u64 {
        self.0 = mix(self.0 ^ op.rotate_left(17));
        self.0
    }

    /// [`HashChain::READ`] reads the state; every other number is a write.
    fn read(&self, query: &u64) -> Option<u64> {
        (*query == HashChain::READ).then_some(self.0)
    }
}

impl HashChain {
    /// The read-only query: answers the current state.
    pub const READ: u64 = u64::MAX;
}

impl SimMachine for HashChain {
    fn fresh() -> Self {
        HashChain(0x243F_6A88_85A3_08D3)
    }

    fn random_op(rng: &mut SimRng, _client: ClientId, _seq: u64) -> u64 {
        // Never the read query: writes and reads stay apart.
        rng.next_u64().min(HashChain::READ - 1)
    }

    fn random_read(_rng: &mut SimRng) -> Option<u64> {
        Some(HashChain::READ)
    }
}

/// A 64-bit finaliser (from SplitMix64): cheap and well mixed.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_chain_output_depends_on_order() {
        let mut a = HashChain::fresh();
        let mut b = HashChain::fresh();
        a.apply(&1);
        let ab = a.apply(&2);
        b.apply(&2);
        let ba = b.apply(&1);
        assert_ne!(ab, ba);
    }

    #[test]
    fn recorded_journals_executions_in_order() {
        let mut r: Recorded<HashChain> = Recorded::fresh();
        r.apply(&Tagged {
            client: 1,
            seq: 1,
            op: 5,
        });
        r.apply(&Tagged {
            client: 2,
            seq: 1,
            op: 6,
        });
        assert_eq!(r.executed(), [(1, 1), (2, 1)]);
    }
}
