//! What goes into a machine ([`Input`]) and what comes out of it ([`Action`]).
//! These two enums are the whole surface a driver has to implement.

use crate::address::{Addr, Destination, Process};
use crate::message::Message;
use crate::types::{Ballot, ClientId, Command, NodeId, PValue, Slot, Value};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Everything that can happen to a machine. Nothing else enters the core.
///
/// `P` is the snapshot type of a [`crate::Server`] (a [`crate::Snapshot`] of
/// its state machine); the roles that keep no snapshot leave it `()`.
///
/// Serialisable so that a driver can record what it feeds a machine (a
/// flight recorder) and a tool can feed it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input<C, P = ()> {
    /// One period of logical time has passed. Drivers tick on a fixed period
    /// (for example every 10 ms); every timeout in [`crate::Config`] counts ticks.
    Tick,
    /// A message arrived from `from`. A peer's snapshot arrives this way too,
    /// as [`Message::Snapshot`].
    Receive {
        /// The sender, as the transport established it: its id and the
        /// roles it hosts.
        from: Process,
        /// The message.
        msg: Message<C, P>,
    },
    /// A client submits a command through this process.
    Propose(Command<C>),
    /// The driver wants its log smaller: the machine answers with one
    /// [`Action::Compact`] holding everything it needs after a restart
    /// (machines that keep no durable state answer nothing).
    Checkpoint,
    /// A client asks to read without writing: `query` is a command the state
    /// machine can answer with [`crate::StateMachine::read`]. A
    /// [`crate::Server`] answers with [`Action::ReadReply`] once the read is
    /// linearizable (read-index: its leader confirmed it still leads and the
    /// replica applied everything chosen before the read arrived), or with
    /// [`Event::ReadRefused`]. Machines that serve no reads ignore it.
    Read {
        /// The client.
        client: ClientId,
        /// The client's name for this read, echoed in the answer. A client
        /// never uses an id twice (as it never reuses a `seq`): servers tell
        /// reads apart by `(client, id)`.
        id: u64,
        /// What to read.
        query: C,
    },
    /// An operator asks the leader to hand the lead to server `to`, for a
    /// planned restart of the leader. A [`crate::Server`] that leads
    /// answers [`Event::HandingOff`] and sends [`Message::Handoff`]; `to`
    /// then campaigns at once and the others promise it although they
    /// hear a working leader, so the lead moves in one round trip and a
    /// fsync. Otherwise the answer is [`Event::TransferRefused`]. Machines
    /// that do not lead a server cluster ignore it.
    Transfer {
        /// The server to lead next.
        to: NodeId,
    },
    /// An operator asks the leader to change the cluster's members to
    /// `members` (add, remove or replace servers, any number at once). A
    /// [`crate::Server`] that leads proposes a stop-sign
    /// ([`crate::Value::Reconfigure`]) in its next free slot, and every
    /// server that applies it answers [`Event::Reconfigured`]; otherwise
    /// the answer is [`Event::ReconfigureRefused`]. Machines that do not
    /// lead a server cluster ignore it.
    Reconfigure {
        /// Every member of the next configuration.
        members: Vec<NodeId>,
    },
}

/// A record the core needs back after a crash.
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
    /// Acceptor: this server lost its durable state and restarted empty
    /// ([`crate::Server::rejoin`]). Until a later [`Record::Rejoined`] its
    /// acceptor promises nothing, votes for nothing and answers no
    /// heartbeat or catch-up: it does not know what it promised before.
    Rejoining,
    /// Acceptor: the rejoin ended. The records before it (a trim point and
    /// a promise) hold what the acceptor now vouches for.
    Rejoined,
}

/// Everything a machine needs to restart: an optional snapshot of its
/// replica and the records that rebuild its other roles. It replaces the
/// whole durable log (see [`Action::Compact`]). Drivers treat its contents
/// as opaque data to store and hand back on restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint<C, P> {
    /// The replica's snapshot; the log then starts at its `next_slot`.
    pub snapshot: Option<P>,
    /// Records to replay on top of the snapshot, in order.
    pub records: Vec<Record<C>>,
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

/// Why a read was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRefusal {
    /// No leader is known, or the one asked is not the leader; `leader` is
    /// who the refusing server believes leads.
    NotLeader {
        /// The believed leader, if any.
        leader: Option<NodeId>,
    },
    /// The leader did not confirm its lead in time (it may have been
    /// deposed, or the network lost the exchange).
    TimedOut,
    /// The state machine cannot answer this query without writing
    /// ([`crate::StateMachine::read`] returned `None`): submit it as a command.
    NotReadOnly,
}

/// Why a leader transfer ([`Input::Transfer`]) was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferRefusal {
    /// This server does not lead; `leader` is who it believes does.
    NotLeader {
        /// The believed leader, if any.
        leader: Option<NodeId>,
    },
    /// The named server is not a member of the cluster.
    NotAMember,
    /// The named server already leads.
    AlreadyLeader,
}

/// Why a membership change ([`Input::Reconfigure`]) was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReconfigureRefusal {
    /// This server does not lead; `leader` is who it believes does.
    NotLeader {
        /// The believed leader, if any.
        leader: Option<NodeId>,
    },
    /// A change is already under way: its stop-sign is not applied yet.
    InProgress,
    /// The members asked for are the current ones.
    Unchanged,
    /// No members, one named twice, or more than [`crate::MEMBERS_MAX`].
    Invalid,
    /// Fewer than a majority of the new members are reachable and caught
    /// up: the old members this leader heard in its last election timeout,
    /// and new servers whose log reached within `catchup_chunk` slots of
    /// the leader's (they ask for catch-up while they run as learners).
    /// The new configuration could decide nothing until more caught up.
    NoQuorum {
        /// New members ready now.
        ready: u32,
        /// How many a majority of the new members is.
        needed: u32,
    },
}

/// How a client request ended without a result (see [`crate::Session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// Every attempt was refused before it was proposed (no leader, or
    /// overloaded): the command was not and will not be applied. Safe to
    /// submit again.
    Refused {
        /// The last reason given.
        reason: DropReason,
    },
    /// The session already moved past this sequence number, so the command
    /// will never be applied.
    Superseded,
    /// The deadline passed while some attempt may have reached a leader: the
    /// command may still be applied (at most once).
    Unknown,
    /// A request was already outstanding, so this one was not taken (and
    /// used no sequence number). Submit it after the first one's outcome.
    Busy,
    /// The embedding gave up on it ([`crate::SessionInput::Cancel`]) before
    /// any attempt could have reached a leader: it was not applied and
    /// never will be.
    Cancelled,
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
    /// A client request ended without a result; see [`Failure`].
    Failed {
        /// The client.
        client: ClientId,
        /// The request's sequence number.
        seq: u64,
        /// How it ended.
        failure: Failure,
    },
    /// A message was ignored because it was malformed, out of range or from a
    /// process that may not send it. Counted, never an error.
    Ignored {
        /// [`Message::kind`] of the ignored message.
        kind: &'static str,
    },
    /// A peer's snapshot was installed: the replica now stands at
    /// `next_slot` (every slot below is applied). A snapshot that was not
    /// ahead is [`Event::Ignored`] instead.
    SnapshotInstalled {
        /// The peer that sent it.
        from: NodeId,
        /// The first slot it does not cover.
        next_slot: Slot,
    },
    /// The leader started handing the lead to `to` ([`Input::Transfer`]):
    /// it sent [`Message::Handoff`] in `ballot`. The transfer is done when
    /// `to` leads in a higher ballot; if `to` cannot (it is down, or cut
    /// off), this leader goes on leading.
    HandingOff {
        /// The server to lead next.
        to: NodeId,
        /// The ballot handed off.
        ballot: Ballot,
    },
    /// A server that rejoined after losing its state
    /// ([`crate::Server::rejoin`]) won an election counted without its own
    /// acceptor, took over what a majority of the others vouch for, and
    /// votes again from here on: it promised `ballot` and treats every slot
    /// below `trimmed_below` as chosen.
    Rejoined {
        /// The ballot it now leads in.
        ballot: Ballot,
        /// Slots below this were chosen before it rejoined.
        trimmed_below: Slot,
    },
    /// A leader transfer was not started; see [`TransferRefusal`].
    TransferRefused {
        /// The server named.
        to: NodeId,
        /// Why.
        reason: TransferRefusal,
    },
    /// This server applied a stop-sign: configuration `epoch` (its members
    /// are [`crate::Server::members`]) decides every slot from
    /// `first_slot` on. A server not among them answers nothing any more
    /// but catch-up ([`crate::Server::is_member`]); its driver may stop it.
    Reconfigured {
        /// The new configuration's number.
        epoch: u64,
        /// Its first slot.
        first_slot: Slot,
        /// Whether this server is one of its members.
        member: bool,
    },
    /// A membership change was not started; see [`ReconfigureRefusal`].
    ReconfigureRefused {
        /// Why.
        reason: ReconfigureRefusal,
    },
    /// A read ([`Input::Read`]) was not served; the client may try again
    /// (at the leader, if one is named).
    ReadRefused {
        /// The client.
        client: ClientId,
        /// The read's id.
        id: u64,
        /// Why.
        reason: ReadRefusal,
    },
}

/// An instruction to the driver, performed in order.
///
/// **Durability barriers:** [`Action::Persist`], [`Action::PersistSnapshot`]
/// and [`Action::Compact`] must be durable (written and fsynced) before the
/// driver performs any action that comes after them. Drivers may gather the
/// actions of many steps and sync once (group commit), provided nothing
/// after a barrier leaves the process before that sync. Every driver
/// performs every action the same way; there are no special cases by record
/// kind.
///
/// **The leader's fsync overlaps its followers'.** A leader emits each
/// `Accept` *before* the `Persist` of its own vote in the same step, so a
/// driver that performs the actions before the first barrier at once (and
/// then syncs) has the followers writing their votes while it writes its
/// own. Its own vote counts toward the decision in memory, but everything
/// that follows from the decision (the reply, the commit point) comes after
/// that `Persist` and so waits for it. Sends of *later* steps may not jump
/// ahead of an earlier step's barrier, `Accept`s included: an `Accept`
/// carries the leader's commit point, which may rest on a vote of its own
/// not yet durable, and a follower that learned a slot was chosen from a
/// vote the leader then lost in a crash could deliver a value another
/// leader later replaces.
///
/// **The log** is what the barriers wrote, in order. On restart, the latest
/// snapshot in it is the replica's base, and every record in it is replayed
/// on top, in order (see [`crate::Server::restore`]).
///
/// Serialisable so that a recording can carry a digest of what each step
/// produced, and a replay can compare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Action<C, O = (), P = ()> {
    /// Append this record to the durable log; a barrier.
    Persist(Record<C>),
    /// Append this replica snapshot to the durable log; a barrier. It
    /// becomes the base a restart resumes from; the records already in the
    /// log stay (they are replayed too: the acceptor's trim point makes the
    /// old ones harmless). A server emits one before it trims, so a durable
    /// trim point never outruns a durable snapshot, and when it installs a
    /// peer's snapshot.
    PersistSnapshot(alloc::boxed::Box<P>),
    /// Replace the whole durable log, atomically, by this checkpoint (for
    /// example: write it to a new file, fsync, rename over the log, fsync
    /// the directory); a barrier. Later writes are appended after it. The
    /// answer to [`Input::Checkpoint`]: a driver asks when its log has grown.
    Compact(alloc::boxed::Box<Checkpoint<C, P>>),
    /// Send a message.
    Send {
        /// Where to.
        to: Destination,
        /// What.
        msg: Message<C, P>,
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
    /// The answer to [`Input::Read`]: `output` is the state machine's
    /// answer to the query in the state after every slot below `slot`.
    /// Nothing was written to produce it.
    ReadReply {
        /// The client.
        client: ClientId,
        /// The read's id.
        id: u64,
        /// Every slot below this is reflected in `output`.
        slot: Slot,
        /// The state machine's answer.
        output: O,
    },
}

impl<C, O, P> Action<C, O, P> {
    /// A message to one process.
    pub(crate) fn send_to(to: Addr, msg: Message<C, P>) -> Self {
        Action::Send {
            to: Destination::To(to),
            msg,
        }
    }
}
