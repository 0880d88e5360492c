//! # paxos-core: Multi-Paxos as deterministic state machines
//!
//! This crate is the protocol and nothing else. Each role — [`Acceptor`],
//! [`Proposer`], [`Learner`] — is a plain struct with `step(input) ->
//! Vec<Action>` (and `step_into`, which appends to a buffer you own).
//! [`Server`] hosts the three plus a replica that applies decisions to your
//! [`StateMachine`], each `(client, seq)` at most once; [`LearnerReplica`]
//! is a learner with its replica, for learners that run apart; [`Session`]
//! is the client side of a request, and [`Client`] a session that learns
//! for itself. The crate is `no_std`:
//! it has no clock, socket, file, thread or global random generator.
//!
//! ## The driver's loop
//! Your runtime (the *driver*) owns every effect. Its loop is: read an
//! [`Input`] (a message, a client command, a [`Input::Tick`] on a fixed
//! period, or a request to compact) → `step` → perform the returned
//! [`Action`]s **in order**. Time exists only as ticks; randomness (election
//! timeouts) comes from a ChaCha generator seeded by [`Config::seed`]. The
//! same inputs in the same order give the same actions, always, which is
//! what lets `paxos-sim` replay any run bit for bit.
//!
//! ## Durability: two barriers, one meaning for every driver
//! * [`Action::Persist`] appends a [`Record`] to the node's log.
//! * [`Action::Compact`] replaces the whole log, atomically, by a
//!   [`Checkpoint`] (a snapshot plus the records that rebuild the rest).
//!
//! Both are barriers: what they write must be durable (fsynced) before the
//! driver performs **any later action**. Drivers may gather the actions of
//! many steps and sync once (group commit), provided nothing that follows a
//! barrier leaves the process before that sync. Nothing else is special:
//! drivers never look inside a record. After a crash, rebuild with
//! [`Server::restore`] (or [`Server::recover`] when the log holds no
//! snapshot) from the synced log only. To keep a log small, feed
//! [`Input::Checkpoint`]; the answer is an `Action::Compact`.
//!
//! ## Routing
//! Ids are unique within a role; a [`Process`] is an id plus the roles it
//! hosts, and a [`Destination`] names one role and id, or a group of roles.
//! [`Destination::reaches`] answers whether a process receives it; a driver
//! has no table of its own. Give [`Input::Receive`] the sender as your
//! transport established it: the core counts votes only from acceptors and
//! leadership only from the owner of a ballot.
//!
//! ## Snapshots
//! A peer that lags below every value the others retain is sent a
//! [`Message::Snapshot`], like any message. The receiver installs it if it
//! is ahead: an [`Action::PersistSnapshot`] makes it the durable base and
//! [`Event::SnapshotInstalled`] says where the node now stands.
//!
//! ## Embedding in thirty lines
//! Three servers, a hand-written network, and a command applied everywhere:
//! ```
//! use paxos_core::{Action, Command, Config, Input, NodeId, Process, Server, StateMachine};
//!
//! #[derive(Clone, Default)]
//! struct Log(Vec<String>);
//! impl StateMachine for Log {
//!     type Command = String;
//!     type Output = usize;
//!     fn apply(&mut self, line: &String) -> usize { self.0.push(line.clone()); self.0.len() }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes: Vec<Server<Log>> = ids.iter()
//!     .map(|&id| Server::new(Config::new(id, ids.to_vec()), Log::default()).unwrap())
//!     .collect();
//! let mut wire = Vec::new(); // (from, to, message)
//! let mut inputs: Vec<(usize, Input<_, _>)> = Vec::new();
//! let mut proposed = false;
//! for _tick in 0..1000 {
//!     inputs.extend((0..3).map(|i| (i, Input::Tick)));
//!     if let (false, Some(leader)) = (proposed, nodes.iter().position(|n| n.is_leader())) {
//!         let cmd = Command { client: 7, seq: 1, op: "hello".to_string() };
//!         inputs.push((leader, Input::Propose(cmd)));
//!         proposed = true;
//!     }
//!     while let Some((i, input)) = inputs.pop() {
//!         // A real driver would fsync every Persist, PersistSnapshot and
//!         // Compact before going on.
//!         for action in nodes[i].step(input) {
//!             if let Action::Send { to, msg } = action {
//!                 for j in (0..3).filter(|&j| j != i && to.reaches(&Process::server(ids[j]))) {
//!                     wire.push((i, j, msg.clone()));
//!                 }
//!             }
//!         }
//!         if let Some((from, to, msg)) = wire.pop() {
//!             inputs.push((to, Input::Receive { from: Process::server(ids[from]), msg }));
//!         }
//!     }
//!     if nodes.iter().all(|n| n.state().0 == ["hello"]) { break; }
//! }
//! assert!(nodes.iter().all(|n| n.state().0 == ["hello"]));
//! ```
//!
//! ## Roles apart
//! The roles also run as separate processes (the multicast driver does):
//! set [`Config::learners_apart`] so that acceptors send learners their
//! votes, run [`LearnerReplica`] (or a bare [`Learner`]) for each learner,
//! and route every [`Destination`] with [`Destination::reaches`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

/// `bug!(holder, Name)`: is deliberate bug `Name` switched on in `holder`
/// (a [`zoo::Bug`] field)? Always false without the `bug-zoo` feature, where
/// the field does not exist.
#[cfg(feature = "bug-zoo")]
macro_rules! bug {
    ($holder:expr, $name:ident) => {
        $holder == $crate::zoo::Bug::$name
    };
}
#[cfg(not(feature = "bug-zoo"))]
macro_rules! bug {
    ($holder:expr, $name:ident) => {
        false
    };
}

mod acceptor;
mod action;
mod address;
mod client;
mod config;
mod error;
mod learner;
mod learner_replica;
mod message;
mod proposer;
mod reads;
mod replica;
mod server;
mod session;
mod types;
mod window;
#[cfg(feature = "bug-zoo")]
pub mod zoo;

pub use acceptor::Acceptor;
pub use action::{
    Action, Checkpoint, DropReason, Event, Failure, Input, ReadRefusal, ReconfigureRefusal, Record,
    TransferRefusal,
};
pub use address::{Addr, Destination, Process, Role, Roles};
pub use client::Client;
pub use config::{Config, MEMBERS_MAX};
pub use error::{ConfigError, RecoverError};
pub use learner::Learner;
pub use learner_replica::LearnerReplica;
pub use message::{valid_membership, Message, LIMIT};
pub use proposer::{Proposer, ProposerState};
pub use replica::{SessionEntry, Snapshot, StateMachine};
pub use server::{
    Inspect, Server, ServerAction, ServerCheckpoint, ServerInput, ServerMessage, ServerSnapshot,
    ServerStats,
};
pub use session::{Session, SessionAction, SessionConfig, SessionInput};
pub use types::{Ballot, ClientId, Command, Membership, NodeId, PValue, Slot, Value};
