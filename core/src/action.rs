//! What goes into a machine ([`Input`]) and what comes out of it ([`Action`]).
//! These two enums are the whole surface a driver has to implement.

use crate::message::Message;
use crate::types::{Ballot, ClientId, Command, NodeId, PValue, Slot, Value};
use serde::{Deserialize, Serialize};

/// Everything that can happen to a machine. Nothing else enters the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<C> {
    /// One period of logical time has passed. Drivers tick on a fixed period
    /// (for example every 10 ms); every timeout in [`crate::Config`] counts ticks.
    Tick,
    /// A message arrived from the process `from` (of the role that sends that kind).
    Receive {
        /// The sender's id, as the transport authenticated it.
        from: NodeId,
        /// The message.
        msg: Message<C>,
    },
    /// A client submits a command through this process.
    Propose(Command<C>),
}

/// Where a message goes. Role groups name every process of that role; in a
/// [`crate::Server`] cluster each group means "every other node", since every
/// node runs every role and the server delivers to itself without a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// One process; its role follows from the message kind.
    Node(NodeId),
    /// Every acceptor.
    Acceptors,
    /// Every proposer.
    Proposers,
    /// Every learner.
    Learners,
    /// Every process of every role.
    All,
}

/// A record an acceptor or proposer needs back after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record<C> {
    /// Acceptor: promised never to accept below this ballot.
    Promised(Ballot),
    /// Acceptor: accepted a value (this also implies a promise of its ballot).
    Accepted(PValue<C>),
    /// Acceptor: slots below this are chosen and their records may be discarded.
    Trimmed(Slot),
    /// Proposer: campaigned with this ballot, so it must never be used again.
    Campaign(Ballot),
}

/// Why a proposal was not taken up. The client may retry under the same
/// `(client, seq)`; the replica executes it at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// This process is not the leader; `leader` is who it believes is.
    NotLeader {
        /// The believed leader, if any.
        leader: Option<NodeId>,
    },
    /// Too many proposals are waiting ([`crate::Config::pending_max`]).
    Overloaded,
    /// The client already issued a later sequence number, so this one will never
    /// be executed.
    Superseded,
}

/// Something the driver may want to count, log or tell a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The leader learned that `slot` is chosen.
    Decided {
        /// The slot.
        slot: Slot,
    },
    /// A proposal was refused; see [`DropReason`].
    Dropped {
        /// The client of the refused command.
        client: ClientId,
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: DropReason,
    },
    /// A message was ignored because it was malformed, out of range or from a
    /// process that is not a member. Counted, never an error.
    Ignored {
        /// [`Message::kind`] of the ignored message.
        kind: &'static str,
    },
}

/// An instruction to the driver, performed in order.
///
/// **Durability barrier:** a [`Action::Persist`] or [`Action::PersistSnapshot`]
/// must be durable (written and fsynced) before the driver performs any action
/// that comes after it. Drivers may gather the actions of many steps and sync
/// once, provided nothing after a `Persist` leaves the process before that sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<C, O = ()> {
    /// Make this record durable before performing any later action.
    Persist(Record<C>),
    /// Send a message.
    Send {
        /// Where to.
        to: Destination,
        /// What.
        msg: Message<C>,
    },
    /// A learner delivers the chosen value of `slot`; slots come in order, each once.
    Deliver {
        /// The slot.
        slot: Slot,
        /// Its chosen value.
        value: Value<C>,
    },
    /// The replica executed a command (or answered a retry from its session
    /// table): `output` is the result for client `client`'s request `seq`.
    /// Every replica emits this; the driver routes it to the client if it holds
    /// that client's connection, and drops it otherwise.
    Reply {
        /// The client.
        client: ClientId,
        /// The request's sequence number.
        seq: u64,
        /// The slot the command was decided in.
        slot: Slot,
        /// The state machine's output.
        output: O,
    },
    /// Something worth knowing; see [`Event`].
    Event(Event),
    /// Only from a [`crate::Server`]: peer `to` asked for slots this node no
    /// longer retains (it trimmed them, or restored from a snapshot past them)
    /// while its replica has applied them. Send `to` this node's current
    /// [`crate::Server::snapshot`]; the peer hands it to
    /// [`crate::Server::install_snapshot`]. Taking the snapshot when the
    /// action is performed rather than when it was emitted is fine: a later
    /// snapshot only reaches further. The server limits these per peer
    /// ([`crate::Config::snapshot_resend_ticks`]); a lost one is answered
    /// again when the peer, still behind, asks again.
    SendSnapshot {
        /// The peer that is behind.
        to: NodeId,
    },
    /// From a [`crate::Server`] only: the replica jumped to a peer's snapshot
    /// ([`crate::Server::install_snapshot`]) and now resumes at `next_slot`,
    /// or the server is about to trim its acceptor below `next_slot` (the
    /// `Persist(Record::Trimmed)` follows). A durability barrier
    /// like [`Action::Persist`]: make a snapshot at least this far along
    /// ([`crate::Server::snapshot`], taken when performing this action) the
    /// durable base of this node's log before performing any later action,
    /// keeping every record the log holds (or replacing them by
    /// [`crate::Server::checkpoint`]). Later actions may trim the acceptor
    /// below the new base, and a durable trim point above the durable
    /// snapshot could lose chosen values for good. A crash before the
    /// snapshot is durable is safe: the node restarts from its older base and
    /// catches up again.
    PersistSnapshot {
        /// The first slot the installed snapshot does not cover.
        next_slot: Slot,
    },
}
