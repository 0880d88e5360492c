//! One node hosting all four roles: what the chat server and the simulator run.
//! It routes messages between its own roles without sends and maps role groups
//! to "every other node" for the driver.

use crate::acceptor::Acceptor;
use crate::action::{Action, Destination, DropReason, Event, Input, Record};
use crate::config::Config;
use crate::error::{ConfigError, RecoverError};
use crate::learner::Learner;
use crate::message::Message;
use crate::proposer::Proposer;
use crate::replica::{Replica, Snapshot, StateMachine};
use crate::types::{Ballot, NodeId, Slot};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

type Cmd<S> = <S as StateMachine>::Command;
type Out<S> = <S as StateMachine>::Output;

/// Counters a driver prints on exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Messages ignored: from non-members, out of range, or otherwise unusable.
    pub ignored: u64,
    /// Slots applied to the state machine.
    pub applied_slots: Slot,
    /// Commands executed by the state machine.
    pub executed: u64,
    /// Commands passed on to the leader.
    pub forwarded: u64,
}

/// A Multi-Paxos node: acceptor, proposer, learner and replica together.
///
/// Group destinations in its [`Action::Send`]s mean every *other* member; the
/// server has already delivered the message to itself.
#[derive(Debug)]
pub struct Server<S: StateMachine> {
    id: NodeId,
    members: Vec<NodeId>,
    acceptor: Acceptor<Cmd<S>>,
    proposer: Proposer<Cmd<S>>,
    learner: Learner<Cmd<S>>,
    replica: Replica<S>,
    retain_slots: Slot,
    local: VecDeque<Message<Cmd<S>>>,
    scratch: Vec<Action<Cmd<S>, Out<S>>>,
    ignored: u64,
    forwarded: u64,
}

impl<S: StateMachine> Server<S> {
    /// A fresh node with an empty log, applying to `state`.
    pub fn new(config: Config, state: S) -> Result<Self, ConfigError> {
        Server::with_replica(config, Replica::new(state), 0)
    }

    fn with_replica(
        config: Config,
        replica: Replica<S>,
        next_slot: Slot,
    ) -> Result<Self, ConfigError> {
        let mut proposer = Proposer::new(&config)?;
        proposer.set_report_chosen(true);
        proposer.learned_prefix(next_slot);
        let mut learner = Learner::starting_at(&config, next_slot)?;
        learner.set_ask_leader(true);
        Ok(Server {
            id: config.id,
            members: config.members.clone(),
            acceptor: Acceptor::new(&config)?,
            proposer,
            learner,
            replica,
            retain_slots: config.retain_slots,
            local: VecDeque::new(),
            scratch: Vec::new(),
            ignored: 0,
            forwarded: 0,
        })
    }

    /// Rebuilds a node from its synced records after a crash. The state machine
    /// starts from `state` and is rebuilt by learning the log again from peers.
    pub fn recover<I>(config: Config, state: S, records: I) -> Result<Self, RecoverError>
    where
        I: IntoIterator<Item = Record<Cmd<S>>>,
        Cmd<S>: PartialEq,
    {
        let mut server = Server::new(config, state)?;
        server.replay(records)?;
        Ok(server)
    }

    fn replay<I>(&mut self, records: I) -> Result<(), RecoverError>
    where
        I: IntoIterator<Item = Record<Cmd<S>>>,
        Cmd<S>: PartialEq,
    {
        for record in records {
            self.proposer.replay(&record);
            self.acceptor.replay(record)?;
        }
        Ok(())
    }

    /// Rebuilds a node from a replica snapshot plus the synced records written
    /// since (or a [`Server::checkpoint`] and the records after it). The node
    /// resumes learning at the snapshot's slot.
    pub fn restore<I>(
        config: Config,
        snapshot: Snapshot<S, Out<S>>,
        records: I,
    ) -> Result<Self, RecoverError>
    where
        I: IntoIterator<Item = Record<Cmd<S>>>,
        Cmd<S>: PartialEq,
    {
        let next = snapshot.next_slot;
        let mut server = Server::with_replica(config, Replica::from_snapshot(snapshot), next)?;
        server.replay(records)?;
        Ok(server)
    }

    /// A snapshot of the replica, for a driver to store before compacting.
    pub fn snapshot(&self) -> Snapshot<S, Out<S>>
    where
        S: Clone,
    {
        self.replica.snapshot()
    }

    /// Records that rebuild this node's acceptor and proposer exactly. With a
    /// [`Server::snapshot`] they replace every earlier record of the log.
    pub fn checkpoint(&self) -> Vec<Record<Cmd<S>>> {
        let mut records = self.acceptor.checkpoint();
        records.push(self.proposer.checkpoint());
        records
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// True while this node leads.
    pub fn is_leader(&self) -> bool {
        self.proposer.is_leader()
    }

    /// The node this one believes leads.
    pub fn leader(&self) -> Option<NodeId> {
        self.proposer.leader()
    }

    /// The proposer's latest ballot.
    pub fn ballot(&self) -> Ballot {
        self.proposer.ballot()
    }

    /// The replicated state machine.
    pub fn state(&self) -> &S {
        self.replica.state()
    }

    /// The acceptor, for inspection (tests and the simulator's oracle).
    pub fn acceptor(&self) -> &Acceptor<Cmd<S>> {
        &self.acceptor
    }

    /// The learner, for inspection.
    pub fn learner(&self) -> &Learner<Cmd<S>> {
        &self.learner
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            ignored: self.ignored
                + self.acceptor.ignored()
                + self.proposer.ignored()
                + self.learner.ignored(),
            applied_slots: self.replica.next_slot(),
            executed: self.replica.executed(),
            forwarded: self.forwarded,
        }
    }

    /// Handles one input; see [`Server::step_into`].
    pub fn step(&mut self, input: Input<Cmd<S>>) -> Vec<Action<Cmd<S>, Out<S>>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input and everything it causes inside this node, appending
    /// the actions for the driver to `out` in the order they must be performed.
    pub fn step_into(&mut self, input: Input<Cmd<S>>, out: &mut Vec<Action<Cmd<S>, Out<S>>>) {
        let mut scratch = core::mem::take(&mut self.scratch);
        match input {
            Input::Tick => {
                self.proposer.tick(&mut scratch);
                self.learner.tick(&mut scratch);
            }
            Input::Propose(cmd) => match self.proposer.leader() {
                Some(leader) if leader != self.id && !self.proposer.is_leader() => {
                    self.forwarded += 1;
                    out.push(Action::Send {
                        to: Destination::Node(leader),
                        msg: Message::Forward {
                            commands: alloc::vec![cmd],
                        },
                    });
                }
                _ => self.proposer.propose(cmd, &mut scratch),
            },
            Input::Receive { from, msg } => {
                if self.members.contains(&from) && msg.is_well_formed() {
                    self.dispatch(from, msg, &mut scratch);
                } else {
                    self.ignored += 1;
                    scratch.push(Action::Event(Event::Ignored { kind: msg.kind() }));
                }
            }
        }
        self.route(&mut scratch, out);
        while let Some(msg) = self.local.pop_front() {
            self.dispatch(self.id, msg, &mut scratch);
            self.route(&mut scratch, out);
        }
        self.scratch = scratch;
    }

    fn dispatch(
        &mut self,
        from: NodeId,
        msg: Message<Cmd<S>>,
        out: &mut Vec<Action<Cmd<S>, Out<S>>>,
    ) {
        match msg {
            Message::Prepare { ballot, from_slot } => {
                if self.acceptor.on_prepare(ballot, from_slot, out) {
                    self.proposer.observe_candidate(ballot, out);
                }
            }
            Message::Accept {
                ballot,
                slot,
                value,
                commit,
            } => {
                let accepted = self.acceptor.on_accept(ballot, slot, value, out);
                if accepted && ballot.node != self.id {
                    // Our own proposer tells our learner what it chose, so only a
                    // foreign leader's value needs a vote here.
                    if let Some((b, v)) = self.acceptor.accepted(slot) {
                        if b == ballot {
                            self.learner.vote(self.id, ballot, slot, v.clone(), out);
                        }
                    }
                }
                self.proposer.observe_leader(ballot, out);
                self.learner.commit(ballot, commit);
            }
            Message::Heartbeat { ballot, commit } => {
                self.proposer.observe_leader(ballot, out);
                self.learner.commit(ballot, commit);
            }
            Message::Forward { commands } => {
                if self.proposer.is_leader() {
                    for cmd in commands {
                        self.proposer.propose(cmd, out);
                    }
                } else {
                    // Forward at most once, so a stale hint cannot make a loop;
                    // the client's retry finds the leader.
                    for cmd in commands {
                        out.push(Action::Event(Event::Dropped {
                            client: cmd.client,
                            seq: cmd.seq,
                            reason: DropReason::NotLeader {
                                leader: self.proposer.leader(),
                            },
                        }));
                    }
                }
            }
            msg @ (Message::Promise { .. } | Message::Nack { .. }) => {
                self.proposer.receive(from, msg, out);
            }
            Message::Accepted {
                ballot,
                slot,
                value,
            } => {
                self.proposer.receive(
                    from,
                    Message::Accepted {
                        ballot,
                        slot,
                        value: None,
                    },
                    out,
                );
                if let Some(value) = value {
                    self.learner.vote(from, ballot, slot, value, out);
                }
            }
            msg @ (Message::CatchUp { .. } | Message::Decided { .. }) => {
                self.learner.receive(from, msg, out);
            }
        }
        for (slot, value) in self.proposer.chosen.drain(..) {
            self.learner.chosen(slot, value, out);
        }
        if self.proposer.is_leader() {
            // Tells a leader that won before catching up which slots to fetch.
            self.learner
                .commit(self.proposer.ballot(), self.proposer.commit());
        }
        let replica = &mut self.replica;
        self.learner
            .deliver(|slot, value| replica.apply(slot, value, out));
        let delivered = self.learner.next_slot();
        self.proposer.learned_prefix(delivered);
        // Trim in chunks so that the trim record is rare.
        let keep_from = delivered.saturating_sub(self.retain_slots);
        if keep_from >= self.acceptor.trimmed_below() + self.retain_slots.max(1) {
            self.acceptor.trim_below(keep_from, out);
        }
    }

    /// Moves a role's actions to the driver, turning sends to ourselves into
    /// local deliveries.
    fn route(
        &mut self,
        scratch: &mut Vec<Action<Cmd<S>, Out<S>>>,
        out: &mut Vec<Action<Cmd<S>, Out<S>>>,
    ) {
        for action in scratch.drain(..) {
            match action {
                Action::Send {
                    to: Destination::Node(id),
                    msg,
                } if id == self.id => self.local.push_back(msg),
                Action::Send {
                    to:
                        to @ (Destination::Acceptors
                        | Destination::Proposers
                        | Destination::Learners
                        | Destination::All),
                    msg,
                } => {
                    // Our own heartbeat or catch-up request would teach us
                    // nothing (dispatch feeds the leader's commit point to its
                    // learner directly), so only real work is delivered locally.
                    if !matches!(msg, Message::Heartbeat { .. } | Message::CatchUp { .. }) {
                        self.local.push_back(msg.clone());
                    }
                    out.push(Action::Send { to, msg });
                }
                other => out.push(other),
            }
        }
    }
}
