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
use alloc::collections::{BTreeMap, VecDeque};
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
    /// [`Action::SendSnapshot`]s emitted: peers that asked for slots below
    /// this node's retained values.
    pub snapshots_sent: u64,
    /// Peer snapshots installed by [`Server::install_snapshot`]. One that was
    /// not ahead is counted in `ignored` instead.
    pub snapshots_installed: u64,
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
    /// Ticks since this server started: the clock of the snapshot rate limit.
    ticks: u64,
    snapshot_resend_ticks: u64,
    /// The tick at which each peer was last sent a snapshot.
    snapshot_sent_at: BTreeMap<NodeId, u64>,
    local: VecDeque<Message<Cmd<S>>>,
    scratch: Vec<Action<Cmd<S>, Out<S>>>,
    ignored: u64,
    forwarded: u64,
    snapshots_sent: u64,
    snapshots_installed: u64,
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
            ticks: 0,
            snapshot_resend_ticks: u64::from(config.snapshot_resend_ticks),
            snapshot_sent_at: BTreeMap::new(),
            local: VecDeque::new(),
            scratch: Vec::new(),
            ignored: 0,
            forwarded: 0,
            snapshots_sent: 0,
            snapshots_installed: 0,
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

    /// A snapshot of the replica, for a driver to store before compacting,
    /// or to send a peer on [`Action::SendSnapshot`].
    pub fn snapshot(&self) -> Snapshot<S, Out<S>>
    where
        S: Clone,
    {
        self.replica.snapshot()
    }

    /// Installs a peer's snapshot (sent on its [`Action::SendSnapshot`]); see
    /// [`Server::install_snapshot_into`].
    pub fn install_snapshot(
        &mut self,
        snapshot: Snapshot<S, Out<S>>,
    ) -> Vec<Action<Cmd<S>, Out<S>>> {
        let mut out = Vec::new();
        self.install_snapshot_into(snapshot, &mut out);
        out
    }

    /// Installs a peer's snapshot, appending the resulting actions to `out`.
    ///
    /// A snapshot that is not ahead of the learner's next slot changes
    /// nothing: it is counted as ignored (with [`Event::Ignored`]), as a late
    /// or duplicated one is harmless. Otherwise the replica and the learner
    /// jump to the snapshot's slot in place and the first action is
    /// [`Action::PersistSnapshot`], a durability barrier for everything after
    /// it; slots above that this node already knows to be chosen are then
    /// delivered, and the acceptor may trim below the new base.
    ///
    /// A snapshot holds only decided state, so it is safe to take from any
    /// member. The acceptor and the proposer are left as they are: a leader
    /// whose learner lagged stays leader (its ballot and open slots do not
    /// depend on the replica), and the next phase 1 starts at the new base.
    pub fn install_snapshot_into(
        &mut self,
        snapshot: Snapshot<S, Out<S>>,
        out: &mut Vec<Action<Cmd<S>, Out<S>>>,
    ) {
        let next = snapshot.next_slot;
        if next <= self.learner.next_slot() {
            self.ignored += 1;
            out.push(Action::Event(Event::Ignored { kind: "snapshot" }));
            return;
        }
        self.replica.install(snapshot);
        self.learner.skip_to(next);
        self.snapshots_installed += 1;
        out.push(Action::PersistSnapshot { next_slot: next });
        let mut scratch = core::mem::take(&mut self.scratch);
        self.learned(&mut scratch);
        self.route_all(&mut scratch, out);
        self.scratch = scratch;
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
            snapshots_sent: self.snapshots_sent,
            snapshots_installed: self.snapshots_installed,
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
                self.ticks += 1;
                self.proposer.tick(&mut scratch);
                self.learner.tick(&mut scratch);
            }
            Input::Propose(cmd) => match self.proposer.leader() {
                // A leader knows itself as leader, so this is a follower that knows one.
                Some(leader) if leader != self.id => {
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
        self.route_all(&mut scratch, out);
        self.scratch = scratch;
    }

    /// Routes `scratch` and then everything it sent this node itself.
    fn route_all(
        &mut self,
        scratch: &mut Vec<Action<Cmd<S>, Out<S>>>,
        out: &mut Vec<Action<Cmd<S>, Out<S>>>,
    ) {
        self.route(scratch, out);
        while let Some(msg) = self.local.pop_front() {
            self.dispatch(self.id, msg, scratch);
            self.route(scratch, out);
        }
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
                self.acceptor.on_accept(ballot, slot, value, out);
                if ballot.node != self.id {
                    // Our own proposer tells our learner what it chose, so only a
                    // foreign leader's value needs a vote here: the one our
                    // acceptor holds in that ballot (a refused retransmission
                    // of an earlier vote only repeats the same vote).
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
            Message::CatchUp { from_slot, .. } if from_slot < self.learner.first_retained() => {
                // Only a snapshot helps; our replica has applied every slot
                // below `first_retained`, so ours is ahead of the asker.
                self.offer_snapshot(from, out);
            }
            msg @ (Message::CatchUp { .. } | Message::Decided { .. }) => {
                self.learner.receive(from, msg, out);
            }
        }
        self.learned(out);
    }

    /// Peer `from` is below what our learner retains: send it a snapshot,
    /// unless it was sent one less than `snapshot_resend_ticks` ago (it asks
    /// again every `catchup_ticks` while the first is on its way).
    fn offer_snapshot(&mut self, from: NodeId, out: &mut Vec<Action<Cmd<S>, Out<S>>>) {
        if from == self.id {
            return;
        }
        if let Some(&at) = self.snapshot_sent_at.get(&from) {
            if self.ticks.saturating_sub(at) < self.snapshot_resend_ticks {
                return;
            }
        }
        self.snapshot_sent_at.insert(from, self.ticks);
        self.snapshots_sent += 1;
        out.push(Action::SendSnapshot { to: from });
    }

    /// After any change to what is known chosen: feeds the proposer's choices
    /// to the learner, applies what became deliverable, and trims the acceptor.
    fn learned(&mut self, out: &mut Vec<Action<Cmd<S>, Out<S>>>) {
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
            // The acceptor forgets the votes below the trim point, and the
            // learner the values: a snapshot must cover them on disk first,
            // or a whole-cluster restart would find them nowhere.
            out.push(Action::PersistSnapshot {
                next_slot: delivered,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, Value};
    use alloc::vec;

    /// Sums what it is given; the output is the running total.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Sum(u64);
    impl StateMachine for Sum {
        type Command = u64;
        type Output = u64;
        fn apply(&mut self, n: &u64) -> u64 {
            self.0 += n;
            self.0
        }
    }

    type A = Action<u64, u64>;

    fn config(id: u32) -> Config {
        let mut c = Config::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)]);
        c.retain_slots = 2;
        c
    }

    fn value(slot: Slot) -> Value<u64> {
        Value::One(Command {
            client: 7,
            seq: slot + 1,
            op: slot + 1,
        })
    }

    /// Node 2 tells `server` that slots `first..end` are chosen.
    fn decided(server: &mut Server<Sum>, first: Slot, end: Slot) -> Vec<A> {
        server.step(Input::Receive {
            from: NodeId(2),
            msg: Message::Decided {
                first_slot: first,
                values: (first..end).map(value).collect(),
            },
        })
    }

    /// Node 1 with slots `0..5` applied, retaining only the last two.
    fn ahead() -> Server<Sum> {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        decided(&mut s, 0, 5);
        assert_eq!(s.learner().next_slot(), 5);
        assert_eq!(s.learner().first_retained(), 3);
        s
    }

    fn catch_up(server: &mut Server<Sum>, from: u32, from_slot: Slot) -> Vec<A> {
        server.step(Input::Receive {
            from: NodeId(from),
            msg: Message::CatchUp {
                from_slot,
                to_slot: from_slot + 10,
            },
        })
    }

    fn snapshots_sent(out: &[A]) -> Vec<NodeId> {
        out.iter()
            .filter_map(|a| match a {
                Action::SendSnapshot { to } => Some(*to),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_peer_below_the_retained_window_is_sent_a_snapshot() {
        let mut s = ahead();
        let out = catch_up(&mut s, 3, 1);
        assert_eq!(out, [Action::SendSnapshot { to: NodeId(3) }]);
        assert_eq!(s.stats().snapshots_sent, 1);
        // Within the window the retained values are sent, not a snapshot.
        let out = catch_up(&mut s, 2, 3);
        assert!(snapshots_sent(&out).is_empty());
        assert!(matches!(
            out[..],
            [Action::Send {
                to: Destination::Node(NodeId(2)),
                msg: Message::Decided { first_slot: 3, .. }
            }]
        ));
    }

    #[test]
    fn a_fresh_server_has_nothing_to_offer_below_its_window() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        assert!(catch_up(&mut s, 3, 0).is_empty());
        assert_eq!(s.stats().snapshots_sent, 0);
    }

    #[test]
    fn snapshot_offers_are_rate_limited_per_peer() {
        let mut s = ahead();
        let resend = Config::new(NodeId(1), vec![NodeId(1)]).snapshot_resend_ticks;
        assert_eq!(snapshots_sent(&catch_up(&mut s, 3, 0)), [NodeId(3)]);
        assert!(
            snapshots_sent(&catch_up(&mut s, 3, 0)).is_empty(),
            "asked again at once"
        );
        assert_eq!(
            snapshots_sent(&catch_up(&mut s, 2, 0)),
            [NodeId(2)],
            "another peer has its own allowance"
        );
        for _ in 0..resend - 1 {
            s.step(Input::Tick);
        }
        assert!(snapshots_sent(&catch_up(&mut s, 3, 0)).is_empty());
        s.step(Input::Tick);
        assert_eq!(snapshots_sent(&catch_up(&mut s, 3, 0)), [NodeId(3)]);
        assert_eq!(s.stats().snapshots_sent, 3);
    }

    #[test]
    fn a_snapshot_not_ahead_is_ignored() {
        let mut s = ahead();
        let mut behind = Server::new(config(2), Sum::default()).unwrap();
        decided(&mut behind, 0, 5);
        let old = behind.snapshot();
        decided(&mut behind, 5, 6);
        assert_eq!(
            behind.install_snapshot(s.snapshot()),
            [Action::Event(Event::Ignored { kind: "snapshot" })],
            "a snapshot behind the learner"
        );
        assert_eq!(
            s.install_snapshot(old),
            [Action::Event(Event::Ignored { kind: "snapshot" })],
            "a snapshot at the learner's own slot"
        );
        assert_eq!((s.state(), s.learner().next_slot()), (&Sum(15), 5));
        assert_eq!(
            (behind.state(), behind.learner().next_slot()),
            (&Sum(21), 6)
        );
        assert_eq!(s.stats().ignored, 1);
        assert_eq!(s.stats().snapshots_installed, 0);
    }

    #[test]
    fn installed_snapshot_lets_the_learner_continue_from_its_slot() {
        let donor = ahead();
        let mut s = Server::new(config(3), Sum::default()).unwrap();
        // Slot 6 is already known chosen; slot 5 is the gap.
        decided(&mut s, 6, 7);
        let out = s.install_snapshot(donor.snapshot());
        assert_eq!(out[0], Action::PersistSnapshot { next_slot: 5 });
        assert_eq!(s.state(), &Sum(15));
        assert_eq!(s.learner().next_slot(), 5);
        assert_eq!(s.stats().snapshots_installed, 1);
        // Slot 5 holds a retry of slot 4's command: the session table came
        // with the snapshot, so it is answered from the cache, not executed.
        let out = s.step(Input::Receive {
            from: NodeId(2),
            msg: Message::Decided {
                first_slot: 5,
                values: vec![value(4)],
            },
        });
        assert_eq!(s.learner().next_slot(), 7, "slot 5 fills the gap to 6");
        assert_eq!(s.state(), &Sum(15 + 7));
        let replies: Vec<(Slot, u64)> = out
            .iter()
            .filter_map(|a| match a {
                Action::Reply { slot, output, .. } => Some((*slot, *output)),
                _ => None,
            })
            .collect();
        assert_eq!(replies, [(4, 15), (6, 22)]);
    }

    #[test]
    fn installing_a_snapshot_trims_the_acceptor_only_after_the_persist_barrier() {
        let mut donor = ahead();
        decided(&mut donor, 5, 10);
        let mut s = Server::new(config(3), Sum::default()).unwrap();
        let out = s.install_snapshot(donor.snapshot());
        let barrier = out
            .iter()
            .position(|a| matches!(a, Action::PersistSnapshot { next_slot: 10 }));
        let trim = out
            .iter()
            .position(|a| matches!(a, Action::Persist(Record::Trimmed(8))));
        assert_eq!(barrier, Some(0), "{out:?}");
        assert!(trim > barrier, "{out:?}");
        assert_eq!(s.acceptor().trimmed_below(), 8);
    }

    #[test]
    fn stats_add_up_what_every_role_ignored() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        // The server itself: a message from a non-member.
        s.step(Input::Receive {
            from: NodeId(9),
            msg: Message::CatchUp {
                from_slot: 0,
                to_slot: 1,
            },
        });
        let far = 1 << 40;
        // The acceptor: an accept far beyond its window.
        s.step(Input::Receive {
            from: NodeId(2),
            msg: Message::Accept {
                ballot: Ballot::new(1, NodeId(2)),
                slot: far,
                value: value(0),
                commit: 0,
            },
        });
        // The learner: a vote far beyond its window.
        s.step(Input::Receive {
            from: NodeId(2),
            msg: Message::Accepted {
                ballot: Ballot::new(1, NodeId(2)),
                slot: far,
                value: Some(value(0)),
            },
        });
        assert_eq!((s.acceptor().ignored(), s.learner().ignored()), (1, 1));
        assert_eq!(s.stats().ignored, 3);
    }

    #[test]
    fn a_trim_is_preceded_by_a_snapshot_barrier() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let out = decided(&mut s, 0, 5);
        let barrier = out
            .iter()
            .position(|a| matches!(a, Action::PersistSnapshot { next_slot: 5 }));
        let trim = out
            .iter()
            .position(|a| matches!(a, Action::Persist(Record::Trimmed(3))));
        assert!(barrier.is_some() && trim > barrier, "{out:?}");
        let out = decided(&mut s, 5, 6);
        assert!(
            !out.iter().any(|a| matches!(a, Action::Persist(_))),
            "trims come in chunks of retain_slots: {out:?}"
        );
        let out = decided(&mut s, 6, 7);
        assert!(
            out.contains(&Action::Persist(Record::Trimmed(5))),
            "{out:?}"
        );
    }
}
