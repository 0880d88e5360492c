//! # paxos-core: Multi-Paxos as deterministic state machines
//!
//! This crate is the protocol and nothing else. Each role — [`Acceptor`],
//! [`Proposer`], [`Learner`], and the [`Replica`] that applies decisions to your
//! [`StateMachine`] — is a plain struct with `step(input) -> Vec<Action>` (and
//! `step_into`, which appends to a buffer you own). [`Server`] hosts all four in
//! one node. The crate is `no_std`: it has no clock, socket, file, thread or
//! global random generator.
//!
//! ## Sans-IO
//! Your runtime (the *driver*) owns every effect. Its loop is:
//! read an [`Input`] (a message, a client command, or a [`Input::Tick`] on a fixed
//! period) → `step` → perform the returned [`Action`]s in order. Time exists only
//! as ticks; randomness (election timeouts) comes from a ChaCha generator seeded
//! by [`Config::seed`]. The same inputs in the same order give the same actions,
//! always, which is what lets `paxos-sim` replay any run bit for bit.
//!
//! ## Persist before send
//! [`Action::Persist`] is a durability barrier: the record must be durable
//! (written and fsynced) before the driver performs **any later action**. An
//! acceptor persists its promise before its `Promise` and its vote before its
//! `Accepted`; a proposer persists each campaign ballot before its `Prepare`.
//! Drivers may gather the actions of many steps and fsync once (group commit),
//! provided nothing that follows a `Persist` leaves the process before that
//! fsync. After a crash, rebuild with [`Server::recover`] (or
//! [`Acceptor::recover`]) from the synced records only.
//!
//! ## Snapshots
//! A driver compacts its log by storing [`Server::snapshot`] with
//! [`Server::checkpoint`], and restarts from them with [`Server::restore`].
//! Catching up a peer that lags below every value the others retain is the
//! server's decision, and the driver only carries it out. On
//! [`Action::SendSnapshot`] it sends that peer [`Server::snapshot`]. On
//! receipt it calls [`Server::install_snapshot`]. If the snapshot is ahead,
//! the server answers with [`Action::PersistSnapshot`], which is a durability
//! barrier like `Persist`: the new base must be stored before anything after
//! it is performed.
//!
//! ## Embedding in thirty lines
//! Three servers, a hand-written network, and a command applied everywhere:
//! ```
//! use paxos_core::{Action, Command, Config, Destination, Input, NodeId, Server, StateMachine};
//!
//! #[derive(Default)]
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
//! let mut proposed = false;
//! for _tick in 0..1000 {
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         let mut actions = node.step(Input::Tick);
//!         if !proposed && node.is_leader() {
//!             let cmd = Command { client: 7, seq: 1, op: "hello".to_string() };
//!             actions.extend(node.step(Input::Propose(cmd)));
//!             proposed = true;
//!         }
//!         // A real driver would fsync every Action::Persist before going on.
//!         for a in actions {
//!             if let Action::Send { to, msg } = a {
//!                 for &peer in &ids {
//!                     let wanted = matches!(to, Destination::Node(n) if n == peer);
//!                     if peer != ids[i] && (wanted || !matches!(to, Destination::Node(_))) {
//!                         wire.push((ids[i], peer, msg.clone()));
//!                     }
//!                 }
//!             }
//!         }
//!     }
//!     while let Some((from, to, msg)) = wire.pop() {
//!         let to_i = ids.iter().position(|&n| n == to).unwrap();
//!         for a in nodes[to_i].step(Input::Receive { from, msg }) {
//!             if let Action::Send { to: dest, msg } = a {
//!                 for &peer in &ids {
//!                     let wanted = matches!(dest, Destination::Node(n) if n == peer);
//!                     if peer != to && (wanted || !matches!(dest, Destination::Node(_))) {
//!                         wire.push((to, peer, msg.clone()));
//!                     }
//!                 }
//!             }
//!         }
//!     }
//!     if nodes.iter().all(|n| n.state().0 == ["hello"]) { break; }
//! }
//! assert!(nodes.iter().all(|n| n.state().0 == ["hello"]));
//! ```
//!
//! ## Roles apart
//! The roles also run as separate processes (the multicast driver does): give
//! acceptors [`Acceptor::notify_learners`] so learners see values, and route
//! [`Destination`] groups to the processes of that role.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod acceptor;
mod action;
mod client;
mod config;
mod error;
mod learner;
mod message;
mod proposer;
mod replica;
mod server;
mod types;
mod window;

pub use acceptor::Acceptor;
pub use action::{Action, Destination, DropReason, Event, Input, Record};
pub use client::Client;
pub use config::{Config, MEMBERS_MAX};
pub use error::{ConfigError, RecoverError};
pub use learner::Learner;
pub use message::{Message, LIMIT};
pub use proposer::{Proposer, ProposerState};
pub use replica::{Replica, SessionEntry, Snapshot, StateMachine};
pub use server::{Server, ServerStats};
pub use types::{Ballot, ClientId, Command, NodeId, PValue, Slot, Value};
