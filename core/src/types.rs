//! Identifiers and values that every role shares: nodes, ballots, slots, commands.
//! They are plain data, ordered and serialisable, with no behaviour beyond ordering.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Identity of a process within its role (in a [`crate::Server`] cluster, of a node).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Position in the replicated log. Slot numbers start at 0.
pub type Slot = u64;

/// A proposal number: `(round, node)`, ordered lexicographically so that two
/// proposers never share a ballot and a higher round always wins.
///
/// [`Ballot::ZERO`] is below every ballot a proposer can use (rounds start at 1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// Monotonic round number; a proposer's next campaign uses a higher one.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot that nobody holds; every acceptor starts promised to it.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };

    /// A ballot for `node` in `round`.
    pub const fn new(round: u64, node: NodeId) -> Self {
        Ballot { round, node }
    }
}

impl Ballot {
    /// How many low bits of a round count campaigns within one
    /// configuration; the bits above hold the configuration's epoch
    /// ([`Membership::epoch`]), so every ballot of a later configuration
    /// ranks above every ballot of an earlier one.
    pub const EPOCH_SHIFT: u32 = 40;

    /// The configuration this ballot belongs to.
    pub const fn epoch(&self) -> u64 {
        self.round >> Ballot::EPOCH_SHIFT
    }

    /// The lowest ballot of configuration `epoch`: below every ballot a
    /// proposer of that configuration uses, above every ballot of the ones
    /// before it.
    pub const fn epoch_floor(epoch: u64) -> Ballot {
        Ballot {
            round: epoch << Ballot::EPOCH_SHIFT,
            node: NodeId(0),
        }
    }
}

/// A configuration of a [`crate::Server`] cluster: who votes, from which
/// slot on. Epoch 0 is the one the cluster started with; a stop-sign
/// ([`Value::Reconfigure`]) chosen in slot `s` of epoch `e` starts epoch
/// `e + 1` at slot `s + 1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The configuration's number.
    pub epoch: u64,
    /// Its acceptors (every one a server).
    pub members: Vec<NodeId>,
    /// The first slot it decides.
    pub first_slot: Slot,
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node.0)
    }
}

/// Identity of a client session. Together with [`Command::seq`] it names one request.
pub type ClientId = u64;

/// One client request: the operation for the state machine plus the identity the
/// replica uses to execute a retried request only once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command<C> {
    /// The client session that issued it.
    pub client: ClientId,
    /// Per-client sequence number, starting at 1 and increasing by one per request.
    pub seq: u64,
    /// The operation, opaque to the protocol.
    pub op: C,
}

/// What a slot holds once chosen: nothing (a hole filled by a new leader), one
/// command, or a batch of commands that share one round of Paxos.
///
/// A batch is shared, not copied: a value is sent to every peer, kept by the
/// leader until chosen, voted on, retained for catch-up and written in
/// checkpoints, and each of those is a reference count, not a copy of the
/// commands. It is encoded exactly as a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value<C> {
    /// Filler for a slot that no surviving proposal reached.
    Noop,
    /// A single command (the common case at low load, with no allocation).
    One(Command<C>),
    /// Several commands decided together, executed in order.
    Batch(Arc<[Command<C>]>),
    /// A stop-sign: the last slot of its configuration. The servers named
    /// form the next configuration, which starts at the following slot.
    /// Always alone in its slot; it executes no command.
    Reconfigure(Vec<NodeId>),
}

impl<C> Value<C> {
    /// The commands in execution order (empty for a no-op).
    pub fn commands(&self) -> &[Command<C>] {
        match self {
            Value::Noop | Value::Reconfigure(_) => &[],
            Value::One(c) => core::slice::from_ref(c),
            Value::Batch(cs) => cs,
        }
    }

    /// The next configuration's members, if this is a stop-sign.
    pub fn stop_sign(&self) -> Option<&[NodeId]> {
        match self {
            Value::Reconfigure(members) => Some(members),
            _ => None,
        }
    }

    /// What the value counts for against [`crate::Config::retain_commands`]:
    /// its commands, and one for a no-op, which is kept as well.
    pub(crate) fn retained_weight(&self) -> u64 {
        self.commands().len().max(1) as u64
    }

    /// Builds the most compact value holding `commands`.
    pub fn from_commands(mut commands: Vec<Command<C>>) -> Self {
        match commands.len() {
            0 => Value::Noop,
            1 => Value::One(commands.pop().expect("length checked")),
            _ => Value::Batch(commands.into()),
        }
    }
}

/// A value accepted by an acceptor in some ballot: what phase 1 reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PValue<C> {
    /// The slot it was accepted for.
    pub slot: Slot,
    /// The ballot it was accepted in.
    pub ballot: Ballot,
    /// The value itself.
    pub value: Value<C>,
}

/// A batch of `n` commands of client 1 whose ops start at `first` (for the
/// roles' tests).
#[cfg(test)]
pub(crate) fn test_batch(first: u64, n: u64) -> Value<u64> {
    Value::from_commands(
        (first..first + n)
            .map(|op| Command {
                client: 1,
                seq: op + 1,
                op,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn values_are_built_in_their_most_compact_form() {
        let c = |seq| Command {
            client: 1,
            seq,
            op: (),
        };
        assert_eq!(Value::<()>::from_commands(vec![]), Value::Noop);
        assert_eq!(Value::from_commands(vec![c(1)]), Value::One(c(1)));
        assert_eq!(
            Value::from_commands(vec![c(1), c(2)]),
            Value::Batch(vec![c(1), c(2)].into())
        );
        assert_eq!(Value::Batch(vec![c(1), c(2)].into()).commands().len(), 2);
        assert!(Value::<()>::Noop.commands().is_empty());
    }

    #[test]
    fn ballots_order_by_round_then_node() {
        assert!(Ballot::new(2, NodeId(1)) > Ballot::new(1, NodeId(9)));
        assert!(Ballot::new(2, NodeId(2)) > Ballot::new(2, NodeId(1)));
        assert!(Ballot::new(1, NodeId(0)) > Ballot::ZERO);
    }
}
