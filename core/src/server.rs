//! One node hosting all four roles: what the chat server and the simulator run.
//! It routes messages between its own roles without sends, and decides
//! compaction and snapshot transfer for the driver.

use crate::acceptor::{owns_ballot, Acceptor};
use crate::action::{
    Action, Checkpoint, DropReason, Event, Input, ReadRefusal, ReconfigureRefusal, Record,
    TransferRefusal,
};
use crate::address::{Destination, Process, Role, Roles};
use crate::config::Config;
use crate::error::{ConfigError, RecoverError};
use crate::learner::Learner;
use crate::message::{valid_membership, Message, LIMIT};
use crate::proposer::{Proposer, ProposerState};
use crate::reads::{LocalRead, Origin, Reads};
use crate::replica::{Replica, Snapshot, StateMachine};
use crate::types::{Ballot, Membership, NodeId, Slot};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

type Cmd<S> = <S as StateMachine>::Command;
type Out<S> = <S as StateMachine>::Output;

/// The snapshot a [`Server`] of `S` stores and sends.
pub type ServerSnapshot<S> = Snapshot<S, Out<S>>;
/// What a [`Server`] of `S` exchanges with its peers.
pub type ServerMessage<S> = Message<Cmd<S>, ServerSnapshot<S>>;
/// What a [`Server`] of `S` is fed.
pub type ServerInput<S> = Input<Cmd<S>, ServerSnapshot<S>>;
/// What a [`Server`] of `S` asks its driver to do.
pub type ServerAction<S> = Action<Cmd<S>, Out<S>, ServerSnapshot<S>>;
/// Everything a [`Server`] of `S` needs after a restart.
pub type ServerCheckpoint<S> = Checkpoint<Cmd<S>, ServerSnapshot<S>>;

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
    /// Client retries the leader ignored because it held the command,
    /// queued or in a slot not yet chosen.
    pub duplicates: u64,
    /// Candidates refused because this node still heard a working leader.
    pub refused_candidates: u64,
    /// Times this node gave up the lead for want of a quorum.
    pub stepped_down: u64,
    /// Times this leader, refused by a node that promised a rival
    /// candidate, campaigned again above it rather than step down.
    pub bumped: u64,
    /// Snapshots sent to peers that asked for slots below this node's
    /// retained values.
    pub snapshots_sent: u64,
    /// Peer snapshots installed ([`Event::SnapshotInstalled`]). One that was
    /// not ahead is counted in `ignored` instead.
    pub snapshots_installed: u64,
    /// Reads answered without a slot ([`Action::ReadReply`]).
    pub reads_served: u64,
    /// Reads refused ([`Event::ReadRefused`]).
    pub reads_refused: u64,
    /// Of the reads served, those served on the leader's lease, with no
    /// message round ([`Config::lease_ticks`]).
    pub lease_reads: u64,
    /// Candidates refused because this node granted a leader a lease.
    pub lease_refusals: u64,
    /// Leader transfers this node started as leader ([`Input::Transfer`]).
    pub transfers_started: u64,
    /// Campaigns this node started because a leader handed it the lead.
    pub handoffs_taken: u64,
    /// The node lost its durable state and has not rejoined yet
    /// ([`Server::rejoin`]): its acceptor answers nothing.
    pub rejoining: bool,
    /// Stop-signs this node applied ([`Event::Reconfigured`]).
    pub reconfigurations: u64,
    /// The configuration it is in ([`Membership::epoch`]).
    pub epoch: u64,
}

/// A Multi-Paxos node: acceptor, proposer, learner and replica together.
///
/// Its peers are the other servers ([`Process::server`]); a group
/// destination in its [`Action::Send`]s means every *other* server, since
/// it has already handed its own roles what they needed. The crate docs
/// drive three of them in thirty lines; `examples/cluster.rs` adds a crash
/// and a restart from the durable log.
#[derive(Debug)]
pub struct Server<S: StateMachine> {
    id: NodeId,
    /// The members of the current configuration (`config.members`).
    members: Vec<NodeId>,
    /// The configuration the roles were built from, with the current
    /// members: what a new configuration's roles are built from.
    config: Config,
    /// The current configuration's number ([`Ballot::epoch`]): messages
    /// of ballots of any other are never handed to the roles.
    epoch: u64,
    reconfigurations: u64,
    /// Servers outside the configuration that asked this node for
    /// catch-up (learners about to join): the slot they asked from, and
    /// when. A leader counts them ready to vote when they are close.
    learners: BTreeMap<NodeId, (Slot, u64)>,
    acceptor: Acceptor<Cmd<S>>,
    proposer: Proposer<Cmd<S>>,
    learner: Learner<Cmd<S>>,
    replica: Replica<S>,
    retain_slots: Slot,
    retain_commands: u64,
    /// The learner's [`Learner::dropped_weight`] at the last trim: once it
    /// grew by `retain_commands`, the acceptor trims again.
    trimmed_weight: u64,
    /// Ticks since this server started: the clock of the snapshot rate limit.
    ticks: u64,
    snapshot_resend_ticks: u64,
    /// The tick at which each peer was last sent a snapshot.
    snapshot_sent_at: BTreeMap<NodeId, u64>,
    local: VecDeque<ServerMessage<S>>,
    scratch: Vec<ServerAction<S>>,
    ignored: u64,
    forwarded: u64,
    refused_candidates: u64,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
    snapshots_sent: u64,
    snapshots_installed: u64,
    reads: Reads<Cmd<S>>,
    /// Ticks a read may wait on others before it is refused as timed out.
    read_wait_ticks: u32,
    lease: Lease,
    /// The latest leader transfer this node heard of ([`Message::Handoff`]).
    handoff: Option<Handoff>,
    transfers_started: u64,
    handoffs_taken: u64,
    /// [`Record::Rejoining`] still has to be written (the first action of
    /// the first step of a [`Server::rejoin`]).
    rejoin_unrecorded: bool,
    /// When this rejoining node last asked the leader for the lead.
    asked_lead_at: Option<u64>,
    /// A rejoining node won this ballot without its own acceptor; it
    /// votes again once every slot below the second field (all it
    /// re-proposed) is chosen and applied here.
    rejoin_won: Option<(Ballot, Slot)>,
    /// A rejoining node asks for the lead only once its learner reached
    /// this slot, how far the log went when it first heard a leader after
    /// its probe: the election it then wins re-proposes only what was
    /// chosen while it caught up, not the whole history (and a learner
    /// always reaches a fixed slot, however fast the log grows).
    rejoin_target: Option<Slot>,
}

/// A leader transfer under way, as a server that heard of it sees it.
#[derive(Clone, Copy, Debug)]
struct Handoff {
    /// The ballot handed off: no lease is granted to it any more (and its
    /// leader serves no lease reads).
    ballot: Ballot,
    /// Whose candidacy is promised despite a working leader...
    to: NodeId,
    /// ...before this tick.
    until: u64,
}

/// Leader leases ([`Config::lease_ticks`]), both sides.
#[derive(Clone, Debug)]
struct Lease {
    /// Ticks an acknowledged heartbeat binds this node; zero: no leases.
    grant_ticks: u64,
    /// Ticks a leader may serve reads after sending a confirmed heartbeat.
    hold_ticks: u64,
    /// This node promises no candidate anything before this tick.
    granted_until: u64,
    /// The ballot of the heartbeat that set `granted_until` (zero for the
    /// lease it assumes it granted before a restart).
    granted_to: Ballot,
    /// (beat, tick): the last heartbeat this node's proposer sent at each
    /// tick it sent any, oldest first, a bounded window.
    beats: VecDeque<(u64, u64)>,
    reads: u64,
    refusals: u64,
}

/// Heartbeat send times a leader remembers for its lease.
const LEASE_BEATS_KEPT: usize = 64;

impl<S: StateMachine + Clone> Server<S> {
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
        proposer.set_colocated_acceptor(config.id);
        proposer.learned_prefix(next_slot);
        let mut learner = Learner::starting_at(&config, next_slot)?;
        learner.set_ask_leader(true);
        if !config.members.contains(&config.id) {
            // A learner until a stop-sign names it.
            proposer.set_passive(true);
        }
        Ok(Server {
            id: config.id,
            members: config.members.clone(),
            epoch: 0,
            reconfigurations: 0,
            learners: BTreeMap::new(),
            acceptor: Acceptor::new(&acceptor_config(&config))?,
            proposer,
            learner,
            replica,
            retain_slots: config.retain_slots,
            retain_commands: config.retain_commands,
            trimmed_weight: 0,
            ticks: 0,
            snapshot_resend_ticks: u64::from(config.snapshot_resend_ticks),
            snapshot_sent_at: BTreeMap::new(),
            local: VecDeque::new(),
            scratch: Vec::new(),
            ignored: 0,
            forwarded: 0,
            refused_candidates: 0,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
            snapshots_sent: 0,
            snapshots_installed: 0,
            reads: Reads::default(),
            read_wait_ticks: config.election_timeout_ticks.saturating_mul(2),
            lease: Lease {
                grant_ticks: u64::from(config.lease_ticks),
                hold_ticks: u64::from(config.leader_lease_ticks()),
                // It may have granted a lease just before a crash.
                granted_until: u64::from(config.lease_ticks),
                granted_to: Ballot::ZERO,
                beats: VecDeque::new(),
                reads: 0,
                refusals: 0,
            },
            handoff: None,
            transfers_started: 0,
            handoffs_taken: 0,
            rejoin_unrecorded: false,
            asked_lead_at: None,
            rejoin_won: None,
            rejoin_target: None,
            config,
        })
    }

    /// A member that lost its durable state (a wiped or replaced disk, or a
    /// log it cannot trust) and restarts empty, under its old id.
    ///
    /// Starting it with [`Server::new`] instead would be unsafe: it would
    /// promise and vote as if it had never promised or voted, and a value
    /// chosen with its forgotten vote could be overwritten. A rejoining
    /// server's acceptor answers nothing — no promise, vote, heartbeat
    /// acknowledgement or catch-up answer — and its proposer never
    /// campaigns on its own timer. After a probe in round 0, which finds a
    /// ballot above every ballot it used before it lost them, it catches up
    /// as a learner (snapshot and log) to where the log stood when it first
    /// heard a leader, then asks the leader it hears to hand it the lead
    /// ([`Message::AskLead`]). Its proposer then campaigns, and since its
    /// own acceptor is silent it wins only with promises from a majority
    /// of the *other* members. It re-proposes the short tail they report,
    /// and once that is chosen and applied here, a snapshot goes to disk
    /// and the acceptor votes again ([`Event::Rejoined`], and the records
    /// [`Record::Trimmed`], [`Record::Promised`],
    /// [`Record::Rejoined`]). The first action of its first step is
    /// [`Record::Rejoining`], so a crash before the end leaves it
    /// rejoining when it is restored from its log.
    ///
    /// It needs a majority among the other members, so a cluster of one
    /// or two cannot rejoin a member ([`ConfigError::CannotRejoin`]); and
    /// two members rejoining at once in a cluster of three wait for each
    /// other for ever (safely).
    pub fn rejoin(config: Config, state: S) -> Result<Self, ConfigError> {
        let others = config.members.iter().filter(|&&m| m != config.id).count();
        if others < config.quorum() {
            return Err(ConfigError::CannotRejoin {
                members: config.members.len(),
            });
        }
        let mut server = Server::new(config, state)?;
        server.acceptor.abstain();
        server.proposer.probe_for_rejoin();
        server.proposer.set_passive(true);
        server.rejoin_unrecorded = true;
        Ok(server)
    }

    /// Rebuilds a node from its synced records after a crash, when its log
    /// holds no snapshot. The state machine starts from `state` and is
    /// rebuilt by learning the log again from peers.
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
        if self.acceptor.is_abstaining() {
            // A rejoin cut short by a crash starts over, probe first.
            self.proposer.probe_for_rejoin();
            self.proposer.set_passive(true);
        }
        Ok(())
    }

    /// Rebuilds a node from its durable log after a crash: the latest
    /// snapshot in it (of an [`Action::PersistSnapshot`] or an
    /// [`Action::Compact`]) and every record in it, in order. The node
    /// resumes learning at the snapshot's slot.
    pub fn restore<I>(
        config: Config,
        snapshot: ServerSnapshot<S>,
        records: I,
    ) -> Result<Self, RecoverError>
    where
        I: IntoIterator<Item = Record<Cmd<S>>>,
        Cmd<S>: PartialEq,
    {
        let next = snapshot.next_slot;
        let mut server = Server::with_replica(config, Replica::from_snapshot(snapshot), next)?;
        server.replay(records)?;
        if server.replica.membership().is_some() {
            // In the configuration the snapshot was taken in; the records
            // of older ones replayed above are dropped again.
            let mut quiet = Vec::new();
            server.enter_epoch(false, &mut quiet);
        }
        Ok(server)
    }

    /// A snapshot of the replica: the state machine and session table at
    /// the replica's next slot.
    pub fn snapshot(&self) -> ServerSnapshot<S> {
        self.replica.snapshot()
    }

    /// Everything this node needs after a restart: the replica's snapshot
    /// and the records that rebuild its acceptor and proposer exactly. What
    /// [`Input::Checkpoint`] answers with, in an [`Action::Compact`].
    pub fn checkpoint(&self) -> ServerCheckpoint<S> {
        let mut records = self.acceptor.checkpoint();
        records.push(self.proposer.checkpoint());
        Checkpoint {
            snapshot: Some(self.replica.snapshot()),
            records,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The members of the configuration this node is in.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The configuration this node is in: its number, members and first
    /// slot (epoch 0, the configured members and slot 0 before any
    /// stop-sign).
    pub fn membership(&self) -> Membership {
        self.replica
            .membership()
            .cloned()
            .unwrap_or_else(|| Membership {
                epoch: 0,
                members: self.members.clone(),
                first_slot: 0,
            })
    }

    /// Is this node a member of its configuration? A node that is not (a
    /// new server catching up before it is added, or one removed) only
    /// learns: it serves and asks for catch-up, and never campaigns, votes
    /// or takes client requests.
    pub fn is_member(&self) -> bool {
        self.members.contains(&self.id)
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

    /// Switches on a deliberate bug in this node's roles (testing the
    /// testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
        self.acceptor.set_bug(bug);
        self.proposer.set_bug(bug);
        self.learner.set_bug(bug);
        self.replica.set_bug(bug);
    }

    /// The first slot the replica has not applied: every slot below is
    /// reflected in [`Server::state`].
    pub fn applied_up_to(&self) -> Slot {
        self.replica.next_slot()
    }

    /// Read-only access to the roles inside, for tests, simulators and
    /// debugging tools. Driving a server never needs it.
    pub fn inspect(&self) -> Inspect<'_, Cmd<S>> {
        Inspect {
            acceptor: &self.acceptor,
            proposer: &self.proposer,
            learner: &self.learner,
        }
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
            duplicates: self.proposer.duplicates(),
            refused_candidates: self.refused_candidates,
            stepped_down: self.proposer.stepped_down(),
            bumped: self.proposer.bumped(),
            snapshots_sent: self.snapshots_sent,
            snapshots_installed: self.snapshots_installed,
            reads_served: self.reads.served,
            reads_refused: self.reads.refused,
            lease_reads: self.lease.reads,
            lease_refusals: self.lease.refusals,
            transfers_started: self.transfers_started,
            handoffs_taken: self.handoffs_taken,
            rejoining: self.acceptor.is_abstaining(),
            reconfigurations: self.reconfigurations,
            epoch: self.epoch,
        }
    }

    /// Handles one input; see [`Server::step_into`].
    pub fn step(&mut self, input: ServerInput<S>) -> Vec<ServerAction<S>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input and everything it causes inside this node, appending
    /// the actions for the driver to `out` in the order they must be performed.
    ///
    /// Messages count only from the other servers of the cluster (a process
    /// that hosts an acceptor with a member's id); anything else is ignored
    /// and counted.
    #[inline]
    pub fn step_into(&mut self, input: ServerInput<S>, out: &mut Vec<ServerAction<S>>) {
        if core::mem::take(&mut self.rejoin_unrecorded) {
            out.push(Action::Persist(Record::Rejoining));
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        match input {
            Input::Tick => {
                self.ticks += 1;
                if self.is_member() {
                    self.proposer.tick(&mut scratch);
                }
                self.learner.tick(&mut scratch);
                if !self.reads.is_idle() {
                    for read in self.reads.tick(self.read_wait_ticks) {
                        self.refuse_read(read, ReadRefusal::TimedOut, &mut scratch);
                    }
                }
            }
            Input::Read { client, id, query } => {
                self.read(LocalRead { client, id, query }, &mut scratch)
            }
            Input::Propose(cmd) => {
                if let Some(answer) = self.replica.retry_answer(&cmd) {
                    // Executed already (this node may have skipped over it
                    // by installing a snapshot, and so never answered it).
                    scratch.push(answer);
                } else if !self.is_member() {
                    // The latest leader heard of, if it is a member.
                    let leader = self
                        .learner
                        .commit_leader()
                        .filter(|l| self.members.contains(l));
                    scratch.push(Action::Event(Event::Dropped {
                        client: cmd.client,
                        seq: cmd.seq,
                        reason: DropReason::NotLeader { leader },
                    }));
                } else if let Some(successor) = self.successor() {
                    scratch.push(Action::Event(Event::Dropped {
                        client: cmd.client,
                        seq: cmd.seq,
                        reason: DropReason::NotLeader {
                            leader: Some(successor),
                        },
                    }));
                } else if let Some(leader) = self.proposer.leader().filter(|&l| l != self.id) {
                    // A follower that knows a leader (a leader knows itself).
                    self.forwarded += 1;
                    out.push(Action::Send {
                        to: Destination::to(Role::Proposer, leader),
                        msg: Message::Forward {
                            commands: alloc::vec![cmd],
                        },
                    });
                } else {
                    self.proposer.propose(cmd, &mut scratch);
                }
            }
            Input::Receive { from, msg } => self.receive(from, msg, &mut scratch),
            Input::Checkpoint => scratch.push(Action::Compact(Box::new(self.checkpoint()))),
            Input::Transfer { to } => self.transfer(to, &mut scratch),
            Input::Reconfigure { members } => self.reconfigure(members, &mut scratch),
        }
        self.route_all(&mut scratch, out);
        if !self.reads.is_idle() {
            self.advance_reads(&mut scratch);
            self.route_all(&mut scratch, out);
        }
        self.note_beat();
        self.scratch = scratch;
    }

    /// Remembers when the proposer's latest heartbeat went out (every beat
    /// of one step goes out at the same tick).
    fn note_beat(&mut self) {
        if self.lease.hold_ticks == 0 {
            return;
        }
        let beat = self.proposer.beat();
        if self.lease.beats.back().is_some_and(|&(b, _)| b >= beat) || beat == 0 {
            return;
        }
        if self.lease.beats.len() == LEASE_BEATS_KEPT {
            self.lease.beats.pop_front();
        }
        self.lease.beats.push_back((beat, self.ticks));
    }

    /// True while this leader holds a lease: a quorum acknowledged one of
    /// its heartbeats in its ballot, sent less than `hold_ticks` ago.
    fn holds_lease(&self) -> bool {
        if self.lease.hold_ticks == 0 || self.acceptor.promised() > self.proposer.ballot() {
            return false;
        }
        if self.handed_off(self.proposer.ballot()) {
            // It gave the lead away: the servers may promise its successor
            // before any lease it was granted runs out.
            return false;
        }
        let confirmed = self.proposer.confirmed_beat();
        if confirmed == 0 {
            return false;
        }
        // The first remembered step whose last beat is at least `confirmed`
        // sent it. Older than the window: too old to hold a lease anyway.
        match self.lease.beats.iter().find(|&&(b, _)| b >= confirmed) {
            Some(&(_, sent)) => self.ticks < sent + self.lease.hold_ticks,
            None => false,
        }
    }

    /// While this leader hands off its lead (for an election timeout at
    /// most, in case its successor cannot take it): the successor. New
    /// commands are refused with it as the hint, so that none is proposed
    /// in a ballot about to end, to wait there for a timeout.
    fn successor(&self) -> Option<NodeId> {
        self.handoff
            .filter(|h| {
                self.proposer.is_leader()
                    && h.ballot == self.proposer.ballot()
                    && self.ticks < h.until
            })
            .map(|h| h.to)
    }

    /// Was `ballot` handed off to another server?
    fn handed_off(&self, ballot: Ballot) -> bool {
        self.handoff.is_some_and(|h| h.ballot == ballot)
    }

    /// An operator asks this node, if it leads, to hand the lead to `to`.
    fn transfer(&mut self, to: NodeId, out: &mut Vec<ServerAction<S>>) {
        let reason = if !self.proposer.is_leader() {
            Some(TransferRefusal::NotLeader {
                leader: self.proposer.leader(),
            })
        } else if to == self.id {
            Some(TransferRefusal::AlreadyLeader)
        } else if !self.members.contains(&to) {
            Some(TransferRefusal::NotAMember)
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(Action::Event(Event::TransferRefused { to, reason }));
            return;
        }
        let ballot = self.proposer.ballot();
        self.transfers_started += 1;
        out.push(Action::Event(Event::HandingOff { to, ballot }));
        // Every server, this one included (routed to itself): from here on
        // this leader serves no lease reads, so the others may drop theirs.
        out.push(Action::Send {
            to: Destination::Group(Roles::SERVER),
            msg: Message::Handoff { ballot, to },
        });
    }

    /// The leader of `ballot` hands the lead to `to`.
    fn on_handoff(&mut self, ballot: Ballot, to: NodeId, out: &mut Vec<ServerAction<S>>) {
        if ballot < self.acceptor.promised() || !self.members.contains(&to) {
            // A stale transfer, from a leader already deposed here.
            return self.ignore("handoff", out);
        }
        if self.lease.granted_to == ballot {
            // Its leader stopped serving reads on it before it sent this.
            self.lease.granted_until = self.lease.granted_until.min(self.ticks);
        }
        self.handoff = Some(Handoff {
            ballot,
            to,
            until: self.ticks + u64::from(self.proposer.election_timeout_ticks()),
        });
        if to == self.id && !self.proposer.is_leader() {
            self.handoffs_taken += 1;
            self.proposer.take_over(out);
        }
    }

    /// Ends a rejoin won in `ballot` once this node still leads in it and
    /// has applied every slot below `reproposed`: a snapshot at
    /// `delivered` goes to disk, then the acceptor takes it as its trim
    /// point and votes again (see [`Acceptor::end_rejoin`] for why).
    fn end_rejoin(
        &mut self,
        ballot: Ballot,
        reproposed: Slot,
        delivered: Slot,
        out: &mut Vec<ServerAction<S>>,
    ) {
        if !self.proposer.is_leader() || self.proposer.ballot() != ballot {
            // Deposed first: it must catch up and win again, without its
            // own vote.
            self.rejoin_won = None;
            self.rejoin_target = None;
            return;
        }
        if delivered < reproposed {
            return;
        }
        self.rejoin_won = None;
        self.asked_lead_at = None;
        self.proposer.set_passive(false);
        out.push(Action::PersistSnapshot(Box::new(self.replica.snapshot())));
        self.acceptor.end_rejoin(ballot, delivered, out);
        self.trimmed_weight = self.learner.dropped_weight();
        out.push(Action::Event(Event::Rejoined {
            ballot,
            trimmed_below: delivered,
        }));
    }

    /// A rejoining node heard `leader`: probe first (see
    /// `Proposer::probe_for_rejoin`; a probe is a campaign, retransmitted
    /// as one), then ask the leader for the lead, at most once an election
    /// timeout (the handoff may be lost, or go to another).
    fn ask_lead(&mut self, leader: NodeId, out: &mut Vec<ServerAction<S>>) {
        if self.proposer.probing() {
            if self.proposer.state() != ProposerState::Candidate {
                self.proposer.take_over(out);
            }
            return;
        }
        let every = u64::from(self.proposer.election_timeout_ticks());
        if leader == self.id || self.asked_lead_at.is_some_and(|at| self.ticks < at + every) {
            return;
        }
        let target = *self.rejoin_target.get_or_insert(self.learner.horizon());
        if self.learner.next_slot() < target {
            // Catch up as a learner first (snapshot and log), so that the
            // election re-proposes a short tail, not the whole history.
            return;
        }
        self.asked_lead_at = Some(self.ticks);
        out.push(Action::Send {
            to: Destination::to(Role::Proposer, leader),
            msg: Message::AskLead,
        });
    }

    /// A client's read arrived: the leader confirms it, a follower asks the
    /// leader for the index.
    fn read(&mut self, read: LocalRead<Cmd<S>>, out: &mut Vec<ServerAction<S>>) {
        if self.replica.state().read(&read.query).is_none() {
            return self.refuse_read(read, ReadRefusal::NotReadOnly, out);
        }
        if bug!(self.bug, ReadLocally) {
            self.reads.ready.push((0, read, 0));
            return;
        }
        if let Some(index) = self.proposer.read_index() {
            if self.holds_lease() {
                // No other leader can be elected before the lease ends, so
                // nothing can have been chosen that this leader does not know.
                self.lease.reads += 1;
                self.reads.ready.push((index, read, 0));
            } else {
                self.reads.unconfirmed.push((index, Origin::Local(read)));
            }
            return;
        }
        match self.proposer.leader() {
            Some(leader) if leader != self.id => {
                let (client, id) = (read.client, read.id);
                self.reads.asked.insert((client, id), (read, 0));
                out.push(Action::Send {
                    to: Destination::to(Role::Proposer, leader),
                    msg: Message::ReadIndex { client, id },
                });
            }
            leader => self.refuse_read(read, ReadRefusal::NotLeader { leader }, out),
        }
    }

    fn refuse_read(
        &mut self,
        read: LocalRead<Cmd<S>>,
        reason: ReadRefusal,
        out: &mut Vec<ServerAction<S>>,
    ) {
        self.reads.refused += 1;
        out.push(Action::Event(Event::ReadRefused {
            client: read.client,
            id: read.id,
            reason,
        }));
    }

    /// Moves reads along after a step: confirms the leader's round, starts
    /// the next one, and serves every read whose index the replica reached.
    fn advance_reads(&mut self, out: &mut Vec<ServerAction<S>>) {
        if self.proposer.read_index().is_none() {
            // Not (or no longer) leading: nobody will confirm these.
            let leader = self.proposer.leader();
            for (_, origin) in self.reads.take_unconfirmed() {
                self.answer_unconfirmed(origin, leader, out);
            }
        } else {
            let own_promise_ok = self.acceptor.promised() <= self.proposer.ballot();
            if let Some((beat, _)) = &self.reads.round {
                if own_promise_ok && self.proposer.confirmed_beat() >= *beat {
                    let (_, confirmed) = self.reads.round.take().expect("a round is in flight");
                    for (index, origin) in confirmed {
                        match origin {
                            Origin::Local(read) => self.reads.ready.push((index, read, 0)),
                            Origin::Remote { node, client, id } => out.push(Action::Send {
                                to: Destination::to(Role::Proposer, node),
                                msg: Message::ReadIndexReply {
                                    client,
                                    id,
                                    index: Some(index),
                                    leader: None,
                                },
                            }),
                        }
                    }
                }
            }
            if self.reads.round.is_none() && !self.reads.unconfirmed.is_empty() {
                if let Some(beat) = self.proposer.heartbeat_now(out) {
                    let waiting = core::mem::take(&mut self.reads.unconfirmed);
                    self.reads.round = Some((beat, waiting));
                }
            }
        }
        let applied = self.replica.next_slot();
        if self
            .reads
            .ready
            .iter()
            .any(|(index, _, _)| *index <= applied)
        {
            let ready = core::mem::take(&mut self.reads.ready);
            for (index, read, age) in ready {
                if index > applied {
                    self.reads.ready.push((index, read, age));
                    continue;
                }
                match self.replica.state().read(&read.query) {
                    Some(output) => {
                        self.reads.served += 1;
                        out.push(Action::ReadReply {
                            client: read.client,
                            id: read.id,
                            slot: applied,
                            output,
                        });
                    }
                    None => self.refuse_read(read, ReadRefusal::NotReadOnly, out),
                }
            }
        }
    }

    fn answer_unconfirmed(
        &mut self,
        origin: Origin<Cmd<S>>,
        leader: Option<NodeId>,
        out: &mut Vec<ServerAction<S>>,
    ) {
        match origin {
            Origin::Local(read) => self.refuse_read(read, ReadRefusal::NotLeader { leader }, out),
            Origin::Remote { node, client, id } => out.push(Action::Send {
                to: Destination::to(Role::Proposer, node),
                msg: Message::ReadIndexReply {
                    client,
                    id,
                    index: None,
                    leader,
                },
            }),
        }
    }

    /// A server of this cluster: hosts an acceptor whose id is a member.
    fn is_peer(&self, from: &Process) -> bool {
        from.hosts(Role::Acceptor) && self.members.contains(&from.id)
    }

    /// A message from another process. The roles hear only the members of
    /// this node's configuration, and only ballots of it; a server outside
    /// the configuration (a learner about to join, one removed, or one a
    /// configuration behind) is still served catch-up and heard about what
    /// is chosen.
    fn receive(&mut self, from: Process, msg: ServerMessage<S>, out: &mut Vec<ServerAction<S>>) {
        if !msg.is_well_formed() || !from.hosts(Role::Acceptor) {
            return self.ignore(msg.kind(), out);
        }
        if let Some(ballot) = ballot_of(&msg) {
            if ballot.epoch() > self.epoch {
                // A later configuration runs, so the stop-sign that ended
                // ours was chosen, in a slot this node has not delivered:
                // its next slot is chosen, and maybe more (a commit point
                // is true in any configuration). The learner catches up
                // from the sender, stop-sign included.
                // A candidate's `from_slot` is its learned prefix: chosen too.
                let next = self.learner.next_slot().saturating_add(1);
                let upto = match msg {
                    Message::Accept { commit, .. } | Message::Heartbeat { commit, .. } => {
                        commit.max(next)
                    }
                    Message::Prepare { from_slot, .. } => from_slot.max(next),
                    _ => next,
                };
                self.learner.commit(ballot, upto);
                self.learner.resume_catch_up(out);
                return self.ignore(msg.kind(), out);
            }
            if ballot.epoch() < self.epoch {
                // The sender missed our stop-sign: tell it.
                self.tell_stop_sign(from, out);
                return self.ignore(msg.kind(), out);
            }
        }
        let learner_food = matches!(
            msg,
            Message::CatchUp { .. } | Message::Decided { .. } | Message::Snapshot(_)
        );
        if (self.is_member() || bug!(self.bug, RemovedMemberVotes)) && self.is_peer(&from) {
            self.proposer.heard_from_peer();
            self.dispatch(from, msg, out);
        } else if learner_food {
            if let Message::CatchUp { from_slot, .. } = msg {
                if !self.members.contains(&from.id) {
                    self.learners.insert(from.id, (from_slot, self.ticks));
                }
            }
            self.dispatch(from, msg, out);
        } else if let (
            Message::Heartbeat { ballot, commit, .. } | Message::Accept { ballot, commit, .. },
            true,
        ) = (&msg, self.is_peer(&from))
        {
            // Not a member: learn how far the log goes, no more.
            self.learner.commit(*ballot, *commit);
            self.learner.resume_catch_up(out);
            self.learned(out);
        } else {
            self.ignore(msg.kind(), out);
        }
    }

    /// `from` sent a message of the configuration before ours: send it
    /// the stop-sign that ended it (or a snapshot, which carries the
    /// configuration, once the stop-sign's slot is no longer retained).
    fn tell_stop_sign(&mut self, from: Process, out: &mut Vec<ServerAction<S>>) {
        let Some(first) = self.replica.membership().map(|m| m.first_slot) else {
            return;
        };
        let stop = first - 1;
        match self.learner.retained_value(stop) {
            Some(value) if value.stop_sign().is_some() => out.push(Action::Send {
                to: Destination::To(from.addr()),
                msg: Message::Decided {
                    first_slot: stop,
                    values: alloc::vec![value.clone()],
                },
            }),
            _ => self.offer_snapshot(from, out),
        }
    }

    /// An operator asks this node, if it leads, to change the members.
    fn reconfigure(&mut self, members: Vec<NodeId>, out: &mut Vec<ServerAction<S>>) {
        let mut sorted = members.clone();
        sorted.sort_unstable();
        let mut current = self.members.clone();
        current.sort_unstable();
        let refusal = if !self.proposer.is_leader() {
            Some(ReconfigureRefusal::NotLeader {
                leader: self.proposer.leader(),
            })
        } else if !valid_membership(&members) {
            Some(ReconfigureRefusal::Invalid)
        } else if self.proposer.is_sealing() || self.successor().is_some() {
            Some(ReconfigureRefusal::InProgress)
        } else if sorted == current {
            Some(ReconfigureRefusal::Unchanged)
        } else {
            let ready = members.iter().filter(|&&m| self.ready_to_vote(m)).count();
            let needed = members.len() / 2 + 1;
            (ready < needed).then_some(ReconfigureRefusal::NoQuorum {
                ready: ready as u32,
                needed: needed as u32,
            })
        };
        let result = match refusal {
            Some(reason) => Err(reason),
            None => self.proposer.reconfigure(members, out),
        };
        if let Err(reason) = result {
            out.push(Action::Event(Event::ReconfigureRefused { reason }));
        }
    }

    /// Could `node` vote in a configuration this leader starts now? A
    /// member if this leader heard it lately; a server outside if it asked
    /// for catch-up lately from within a chunk of this node's log.
    fn ready_to_vote(&self, node: NodeId) -> bool {
        if self.members.contains(&node) {
            return node == self.id || self.proposer.heard_lately(node);
        }
        let recent = 2 * u64::from(self.proposer.election_timeout_ticks());
        self.learners.get(&node).is_some_and(|&(from, at)| {
            self.ticks.saturating_sub(at) <= recent
                && from.saturating_add(self.config.catchup_chunk as Slot)
                    >= self.learner.next_slot()
        })
    }

    /// The replica applied a stop-sign (or installed a snapshot past one):
    /// rebuild the roles for the configuration it names. The acceptor
    /// forgets the old configuration's votes and promises nothing below
    /// the new one's ballots; the learner counts the new members; the
    /// proposer starts over as a follower in the new ballots, keeping the
    /// commands that wait for a slot. A member that led the old
    /// configuration campaigns at once, as does the lowest-numbered member
    /// when the old leader is not one; the others wait for it.
    ///
    /// `announce`: a stop-sign applied here, in this step. A snapshot of
    /// the new configuration goes to disk first (what a restart restores),
    /// and every server is told the stop-sign is chosen: the servers
    /// still in the old configuration learn it from nobody else, as the
    /// old configuration's leader sends nothing more in it.
    fn enter_epoch(&mut self, announce: bool, out: &mut Vec<ServerAction<S>>) {
        let Some(m) = self.replica.membership().cloned() else {
            return;
        };
        if m.epoch <= self.epoch {
            return;
        }
        let old_leader = self.proposer.leader();
        let was_leader = self.proposer.is_leader();
        self.epoch = m.epoch;
        self.members = m.members.clone();
        self.config.members = m.members.clone();
        let member = self.is_member();
        if announce {
            out.push(Action::PersistSnapshot(Box::new(self.replica.snapshot())));
            self.reconfigurations += 1;
        }
        let floor = Ballot::epoch_floor(m.epoch);
        self.acceptor.enter_epoch(floor, m.first_slot);
        self.learner.enter_epoch(m.epoch, &m.members);
        self.proposer
            .enter_epoch(&self.config, m.epoch, m.first_slot, member, out);
        // A learner until named; a rejoining member campaigns only when
        // handed the lead.
        self.proposer
            .set_passive(!member || self.acceptor.is_abstaining());
        if self.acceptor.is_abstaining() {
            // A ballot it used in this configuration before it lost its
            // state may be anywhere: probe again.
            self.proposer.probe_for_rejoin();
        }
        self.handoff = None;
        self.rejoin_won = None;
        self.rejoin_target = None;
        self.asked_lead_at = None;
        self.learners.retain(|id, _| !m.members.contains(id));
        if announce {
            if let Some(stop) = self.learner.retained_value(m.first_slot - 1) {
                out.push(Action::Send {
                    to: Destination::Group(Roles::SERVER),
                    msg: Message::Decided {
                        first_slot: m.first_slot - 1,
                        values: alloc::vec![stop.clone()],
                    },
                });
            }
            out.push(Action::Event(Event::Reconfigured {
                epoch: m.epoch,
                first_slot: m.first_slot,
                member,
            }));
        }
        let first_up = old_leader.is_none_or(|l| !m.members.contains(&l))
            && m.members.iter().min() == Some(&self.id);
        if member && !self.acceptor.is_abstaining() && (was_leader || first_up) && announce {
            self.proposer.take_over(out);
        }
    }

    fn ignore(&mut self, kind: &'static str, out: &mut Vec<ServerAction<S>>) {
        self.ignored += 1;
        out.push(Action::Event(Event::Ignored { kind }));
    }

    /// Installs a peer's snapshot if it is ahead of the learner's next slot.
    ///
    /// A snapshot that is not ahead changes nothing: it is counted as
    /// ignored, as a late or duplicated one is harmless. Otherwise the
    /// replica and the learner jump to the snapshot's slot in place, and the
    /// first actions are an [`Action::PersistSnapshot`] that makes it the
    /// durable base of the log (a barrier for everything after it) and
    /// [`Event::SnapshotInstalled`]; slots above that this node already knows
    /// to be chosen are then delivered.
    ///
    /// A snapshot holds only decided state, so it is safe to take from any
    /// member. The acceptor and the proposer are left as they are: a leader
    /// whose learner lagged stays leader (its ballot and open slots do not
    /// depend on the replica), and the next phase 1 starts at the new base.
    fn install(
        &mut self,
        from: NodeId,
        snapshot: ServerSnapshot<S>,
        out: &mut Vec<ServerAction<S>>,
    ) {
        let next = snapshot.next_slot;
        let behind = next <= self.learner.next_slot() && !bug!(self.bug, InstallBehind);
        if behind || next >= LIMIT {
            self.ignore("snapshot", out);
            return;
        }
        out.push(Action::PersistSnapshot(Box::new(snapshot.clone())));
        self.replica.install(snapshot);
        if !bug!(self.bug, LearnerNotMovedOnInstall) {
            self.learner.skip_to(next);
        }
        self.snapshots_installed += 1;
        out.push(Action::Event(Event::SnapshotInstalled {
            from,
            next_slot: next,
        }));
        if self
            .replica
            .membership()
            .is_some_and(|m| m.epoch > self.epoch)
        {
            // Past one stop-sign or more; the snapshot on disk holds the
            // configuration.
            self.reconfigurations += 1;
            let m = self.membership();
            self.enter_epoch(false, out);
            out.push(Action::Event(Event::Reconfigured {
                epoch: m.epoch,
                first_slot: m.first_slot,
                member: self.is_member(),
            }));
        }
    }

    /// Routes `scratch` and then everything it sent this node itself.
    fn route_all(&mut self, scratch: &mut Vec<ServerAction<S>>, out: &mut Vec<ServerAction<S>>) {
        self.route(scratch, out);
        let me = Process::server(self.id);
        while let Some(msg) = self.local.pop_front() {
            self.dispatch(me, msg, scratch);
            self.route(scratch, out);
        }
    }

    fn dispatch(&mut self, from: Process, msg: ServerMessage<S>, out: &mut Vec<ServerAction<S>>) {
        match msg {
            Message::Prepare { ballot, from_slot } => {
                if !owns_ballot(&from, ballot) {
                    return self.ignore("prepare", out);
                }
                if self.acceptor.silent() {
                    // Rejoining: it cannot promise, nor refuse in the name
                    // of a leader or a lease.
                    return;
                }
                let handed_to = self
                    .handoff
                    .is_some_and(|h| h.to == ballot.node && self.ticks < h.until);
                if ballot > self.acceptor.promised() {
                    if self.ticks < self.lease.granted_until {
                        // A lease this node granted still holds: whoever
                        // holds it may be serving reads on it.
                        self.lease.refusals += 1;
                        out.push(Action::Send {
                            to: Destination::to(Role::Proposer, ballot.node),
                            msg: Message::Nack {
                                ballot,
                                promised: self.acceptor.promised(),
                            },
                        });
                        return;
                    }
                    if let Some(leader) = self
                        .proposer
                        .live_leader(ballot.node)
                        .filter(|_| !handed_to)
                    {
                        // Leader stickiness: this node hears a working leader,
                        // so it does not help depose it. The refusal names
                        // that leader (a `promised` below the candidate's
                        // ballot), for the candidate to point clients at.
                        self.refused_candidates += 1;
                        out.push(Action::Send {
                            to: Destination::to(Role::Proposer, ballot.node),
                            msg: Message::Nack {
                                ballot,
                                promised: leader,
                            },
                        });
                        return;
                    }
                }
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
                if !owns_ballot(&from, ballot) {
                    return self.ignore("accept", out);
                }
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
            Message::Heartbeat {
                ballot,
                commit,
                beat,
            } => {
                if !owns_ballot(&from, ballot) {
                    return self.ignore("heartbeat", out);
                }
                if self.lease.grant_ticks > 0
                    && ballot >= self.acceptor.promised()
                    && !self.handed_off(ballot)
                    && !self.acceptor.silent()
                {
                    // The acknowledgement below grants the sender a lease.
                    self.lease.granted_until = self.ticks + self.lease.grant_ticks;
                    self.lease.granted_to = ballot;
                    if self.acceptor.promised() < self.proposer.ballot() {
                        // Our own acceptor refused our candidacy for this
                        // leader's lease: follow the leader instead.
                        self.proposer.yield_to(ballot, out);
                    }
                }
                self.acceptor.heartbeat_answer(ballot, beat, out);
                self.proposer.observe_leader(ballot, out);
                self.learner.commit(ballot, commit);
                if self.acceptor.silent() {
                    // After the learner heard how far the log goes.
                    self.ask_lead(ballot.node, out);
                }
            }
            Message::HeartbeatAck { ballot, beat } => {
                self.proposer.on_heartbeat_ack(from.id, ballot, beat, out)
            }
            Message::Forward { commands } => {
                let successor = self.successor();
                if self.proposer.is_leader() && successor.is_none() {
                    self.proposer.propose_forwarded(from, commands, out);
                } else {
                    // Forward at most once, so a stale hint cannot make a
                    // loop: the server that forwarded tells its client,
                    // whose retry follows the hint.
                    let leader = successor.or(self.proposer.leader());
                    for cmd in commands {
                        out.push(Action::Send {
                            to: Destination::To(from.addr()),
                            msg: Message::Refused {
                                client: cmd.client,
                                seq: cmd.seq,
                                reason: DropReason::NotLeader { leader },
                            },
                        });
                    }
                }
            }
            Message::Refused {
                client,
                seq,
                reason,
            } => out.push(Action::Event(Event::Dropped {
                client,
                seq,
                reason,
            })),
            // A peer server hosts an acceptor and the message was checked
            // well formed: the proposer's own checks would only repeat ours.
            Message::Promise {
                ballot,
                trimmed_below,
                accepted,
            } => {
                self.proposer
                    .on_promise(from.id, ballot, trimmed_below, accepted, out);
                if self.acceptor.is_abstaining()
                    && self.proposer.is_leader()
                    && self
                        .rejoin_won
                        .is_none_or(|(b, _)| b != self.proposer.ballot())
                {
                    // Won without our own acceptor's promise: once what it
                    // re-proposed is chosen, our acceptor may vote again.
                    self.rejoin_won = Some((self.proposer.ballot(), self.proposer.next_slot()));
                }
            }
            Message::Nack { ballot, promised } => {
                let may_bump = !self.handed_off(ballot);
                self.proposer
                    .on_nack(from.id, ballot, promised, may_bump, out)
            }
            Message::Accepted {
                ballot,
                slot,
                value,
            } => {
                self.proposer.on_accepted(from.id, ballot, slot, out);
                if let Some(value) = value {
                    self.learner.vote(from.id, ballot, slot, value, out);
                }
            }
            Message::CatchUp { from_slot, .. } if from_slot < self.learner.first_retained() => {
                // Only a snapshot helps; our replica has applied every slot
                // below `first_retained`, so ours is ahead of the asker.
                self.offer_snapshot(from, out);
            }
            Message::CatchUp {
                from_slot,
                to_slot,
                query,
            } if from_slot >= self.learner.next_slot() => {
                // Our learner lags too (a leader that won before catching
                // up may have decided these slots past its learner's
                // window): our acceptor's votes may be the last copies.
                self.acceptor
                    .report_votes(from.addr(), from_slot, to_slot, query, out);
            }
            msg @ (Message::CatchUp { .. } | Message::Decided { .. } | Message::Votes { .. }) => {
                self.learner.receive(from, msg, out);
            }
            Message::Snapshot(snapshot) => self.install(from.id, *snapshot, out),
            Message::ReadIndex { client, id } => {
                let origin = Origin::Remote {
                    node: from.id,
                    client,
                    id,
                };
                match self.proposer.read_index() {
                    Some(index) => self.reads.unconfirmed.push((index, origin)),
                    None => {
                        let leader = self.proposer.leader();
                        self.answer_unconfirmed(origin, leader, out)
                    }
                }
            }
            Message::ReadIndexReply {
                client,
                id,
                index,
                leader,
            } => {
                if let Some((read, _)) = self.reads.asked.remove(&(client, id)) {
                    match index {
                        Some(index) => self.reads.ready.push((index, read, 0)),
                        None => self.refuse_read(read, ReadRefusal::NotLeader { leader }, out),
                    }
                }
            }
            Message::Handoff { ballot, to } => {
                if !owns_ballot(&from, ballot) {
                    return self.ignore("handoff", out);
                }
                self.on_handoff(ballot, to, out);
            }
            Message::AskLead => {
                if self.proposer.is_leader()
                    && self.successor().is_none()
                    && from.id != self.id
                    && !self.acceptor.is_abstaining()
                {
                    self.transfer(from.id, out);
                }
            }
        }
        self.learned(out);
    }

    /// Peer `from` is below what our learner retains: send it a snapshot,
    /// unless it was sent one less than `snapshot_resend_ticks` ago (it asks
    /// again every `catchup_ticks` while the first is on its way). Taken
    /// now: a later snapshot than the one asked for only reaches further.
    fn offer_snapshot(&mut self, from: Process, out: &mut Vec<ServerAction<S>>) {
        if from.id == self.id {
            return;
        }
        if let Some(&at) = self.snapshot_sent_at.get(&from.id) {
            if self.ticks.saturating_sub(at) < self.snapshot_resend_ticks {
                return;
            }
        }
        self.snapshot_sent_at.insert(from.id, self.ticks);
        self.snapshots_sent += 1;
        out.push(Action::Send {
            to: Destination::To(from.addr()),
            msg: Message::Snapshot(Box::new(self.replica.snapshot())),
        });
    }

    /// After any change to what is known chosen: feeds the proposer's choices
    /// to the learner, applies what became deliverable, and trims the acceptor.
    fn learned(&mut self, out: &mut Vec<ServerAction<S>>) {
        for (slot, value) in self.proposer.chosen.drain(..) {
            self.learner.chosen_here(slot, value);
        }
        if self.proposer.is_leader() {
            // Tells a leader that won before catching up which slots to fetch.
            self.learner
                .commit(self.proposer.ballot(), self.proposer.commit());
        }
        loop {
            let replica = &mut self.replica;
            self.learner
                .deliver(|slot, value| replica.apply(slot, value, out));
            if self
                .replica
                .membership()
                .is_none_or(|m| m.epoch <= self.epoch)
            {
                break;
            }
            // The learner stopped right after the stop-sign.
            self.enter_epoch(true, out);
        }
        self.learner.resume_catch_up(out);
        let delivered = self.learner.next_slot();
        self.proposer.learned_prefix(delivered);
        if let Some((ballot, reproposed)) = self.rejoin_won {
            self.end_rejoin(ballot, reproposed, delivered, out);
        }
        // Trim in chunks so that compactions are rare: once `retain_slots`
        // slots, or `retain_commands` commands, have gone past what the
        // learner retains. The trim point never passes the learner's first
        // retained value, so a peer served by neither (below it) is sent a
        // snapshot, as before.
        let keep_from = delivered
            .saturating_sub(self.retain_slots)
            .max(self.learner.dropped_below());
        let trimmed = self.acceptor.trimmed_below();
        let by_slots = keep_from >= trimmed + self.retain_slots.max(1);
        let by_commands = keep_from > trimmed
            && self.learner.dropped_weight() - self.trimmed_weight >= self.retain_commands.max(1);
        if by_slots || by_commands {
            self.trimmed_weight = self.learner.dropped_weight();
            // The acceptor forgets the votes below the trim point, and the
            // learner the values: a snapshot must cover them on disk first,
            // or a whole-cluster restart would find them nowhere.
            if bug!(self.bug, TrimBeforeSnapshot) {
                out.push(Action::Persist(Record::Trimmed(keep_from)));
            }
            out.push(Action::PersistSnapshot(Box::new(self.replica.snapshot())));
            self.acceptor.trim_below(keep_from);
            if !bug!(self.bug, TrimBeforeSnapshot) {
                out.push(Action::Persist(Record::Trimmed(keep_from)));
            }
        }
    }

    /// Moves a role's actions to the driver, turning sends to ourselves into
    /// local deliveries.
    fn route(&mut self, scratch: &mut Vec<ServerAction<S>>, out: &mut Vec<ServerAction<S>>) {
        for action in scratch.drain(..) {
            match action {
                Action::Send {
                    to: Destination::To(addr),
                    msg,
                } if addr.id == self.id && Roles::SERVER.contains(addr.role) => {
                    self.local.push_back(msg)
                }
                Action::Send {
                    to,
                    msg: msg @ Message::CatchUp { .. },
                } => {
                    // Our learner's query, to the leader or to every peer.
                    // Our own acceptor answers it too: its votes count
                    // toward the majority the learner needs to settle a
                    // slot no learner has (dispatch answers with them when
                    // the query starts at or above our learner's next
                    // slot, as our own always does). Without them, two
                    // lagging learners that reach only each other never
                    // settle such a slot, as each hears one answer of two.
                    self.local.push_back(msg.clone());
                    out.push(Action::Send { to, msg });
                }
                Action::Send {
                    to: to @ Destination::Group(roles),
                    msg,
                } if roles.intersects(Roles::SERVER) => {
                    // Our own heartbeat would teach us nothing (dispatch
                    // feeds the leader's commit point to its learner
                    // directly), so only real work is delivered locally.
                    if !matches!(msg, Message::Heartbeat { .. }) {
                        self.local.push_back(msg.clone());
                    }
                    out.push(Action::Send { to, msg });
                }
                other => out.push(other),
            }
        }
    }
}

/// The configuration the roles of a node that is not a member are built
/// from: its acceptor is never used, but must name itself.
fn acceptor_config(config: &Config) -> Config {
    let mut c = config.clone();
    if !c.members.contains(&c.id) {
        c.members = alloc::vec![c.id];
    }
    c
}

/// The ballot whose configuration a message belongs to, for messages of
/// one ballot. Catch-up answers carry many ballots; the learner checks
/// those itself.
fn ballot_of<C, P>(msg: &Message<C, P>) -> Option<Ballot> {
    match msg {
        Message::Prepare { ballot, .. }
        | Message::Promise { ballot, .. }
        | Message::Nack { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Accepted { ballot, .. }
        | Message::Heartbeat { ballot, .. }
        | Message::HeartbeatAck { ballot, .. }
        | Message::Handoff { ballot, .. } => Some(*ballot),
        _ => None,
    }
}

/// Read-only views of the roles inside a [`Server`] (see
/// [`Server::inspect`]): what simulators' oracles and tests look at.
#[derive(Clone, Copy, Debug)]
pub struct Inspect<'a, C> {
    acceptor: &'a Acceptor<C>,
    proposer: &'a Proposer<C>,
    learner: &'a Learner<C>,
}

impl<'a, C> Inspect<'a, C> {
    /// The acceptor: its promise, votes and trim point.
    pub fn acceptor(&self) -> &'a Acceptor<C> {
        self.acceptor
    }

    /// The proposer: its election state, ballot and commit point.
    pub fn proposer(&self) -> &'a Proposer<C> {
        self.proposer
    }

    /// The learner: what it delivered and still retains.
    pub fn learner(&self) -> &'a Learner<C> {
        self.learner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Addr;
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
        /// Adding 0 writes nothing: the total, read.
        fn read(&self, n: &u64) -> Option<u64> {
            (*n == 0).then_some(self.0)
        }
    }

    type A = ServerAction<Sum>;

    fn config(id: u32) -> Config {
        let mut c = Config::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)]);
        c.retain_slots = 2;
        c
    }

    fn server(id: u32) -> Process {
        Process::server(NodeId(id))
    }

    fn value(slot: Slot) -> Value<u64> {
        Value::One(Command {
            client: 7,
            seq: slot + 1,
            op: slot + 1,
        })
    }

    fn receive(s: &mut Server<Sum>, from: u32, msg: ServerMessage<Sum>) -> Vec<A> {
        s.step(Input::Receive {
            from: server(from),
            msg,
        })
    }

    /// Node 2 tells `s` that slots `first..end` are chosen.
    fn decided(s: &mut Server<Sum>, first: Slot, end: Slot) -> Vec<A> {
        let values = (first..end).map(value).collect();
        receive(
            s,
            2,
            Message::Decided {
                first_slot: first,
                values,
            },
        )
    }

    fn learner(s: &Server<Sum>) -> &Learner<u64> {
        s.inspect().learner()
    }

    /// Node 1 with slots `0..5` applied, retaining only the last two.
    fn ahead() -> Server<Sum> {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        decided(&mut s, 0, 5);
        assert_eq!(learner(&s).next_slot(), 5);
        assert_eq!(learner(&s).first_retained(), 3);
        s
    }

    fn catch_up(s: &mut Server<Sum>, from: u32, from_slot: Slot) -> Vec<A> {
        let msg = Message::CatchUp {
            from_slot,
            to_slot: from_slot + 10,
            query: 0,
        };
        receive(s, from, msg)
    }

    /// The peers sent a snapshot, with the slot it reaches.
    fn snapshots_sent(out: &[A]) -> Vec<(NodeId, Slot)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Destination::To(addr),
                    msg: Message::Snapshot(s),
                } => Some((addr.id, s.next_slot)),
                _ => None,
            })
            .collect()
    }

    fn install(s: &mut Server<Sum>, from: u32, snapshot: ServerSnapshot<Sum>) -> Vec<A> {
        receive(s, from, Message::Snapshot(Box::new(snapshot)))
    }

    #[test]
    fn a_peer_below_the_retained_window_is_sent_a_snapshot() {
        let mut s = ahead();
        let out = catch_up(&mut s, 3, 1);
        assert_eq!(snapshots_sent(&out), [(NodeId(3), 5)]);
        assert_eq!(out.len(), 1);
        assert_eq!(s.stats().snapshots_sent, 1);
        // Within the window the retained values are sent, not a snapshot.
        let out = catch_up(&mut s, 2, 3);
        assert!(snapshots_sent(&out).is_empty());
        assert!(matches!(
            out[..],
            [Action::Send {
                to: Destination::To(Addr { id: NodeId(2), .. }),
                msg: Message::Decided { first_slot: 3, .. }
            }]
        ));
    }

    #[test]
    fn a_fresh_server_answers_catch_up_with_empty_votes_not_a_snapshot() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let out = catch_up(&mut s, 3, 0);
        assert!(
            matches!(&out[..], [Action::Send { msg: Message::Votes { votes, .. }, .. }] if votes.iter().all(Option::is_none)),
            "{out:?}"
        );
        assert_eq!(s.stats().snapshots_sent, 0);
    }

    #[test]
    fn snapshot_offers_are_rate_limited_per_peer() {
        let mut s = ahead();
        let resend = Config::new(NodeId(1), vec![NodeId(1)]).snapshot_resend_ticks;
        let peers = |out: &[A]| {
            snapshots_sent(out)
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(peers(&catch_up(&mut s, 3, 0)), [NodeId(3)]);
        assert!(
            peers(&catch_up(&mut s, 3, 0)).is_empty(),
            "asked again at once"
        );
        assert_eq!(
            peers(&catch_up(&mut s, 2, 0)),
            [NodeId(2)],
            "another peer has its own allowance"
        );
        for _ in 0..resend - 1 {
            s.step(Input::Tick);
        }
        assert!(peers(&catch_up(&mut s, 3, 0)).is_empty());
        s.step(Input::Tick);
        assert_eq!(peers(&catch_up(&mut s, 3, 0)), [NodeId(3)]);
        assert_eq!(s.stats().snapshots_sent, 3);
    }

    #[test]
    fn a_snapshot_not_ahead_is_ignored() {
        let mut s = ahead();
        let mut behind = Server::new(config(2), Sum::default()).unwrap();
        decided(&mut behind, 0, 5);
        let old = behind.snapshot();
        decided(&mut behind, 5, 6);
        let ignored = [Action::Event(Event::Ignored { kind: "snapshot" })];
        assert_eq!(
            install(&mut behind, 1, s.snapshot()),
            ignored,
            "a snapshot behind the learner"
        );
        assert_eq!(
            install(&mut s, 2, old),
            ignored,
            "a snapshot at the learner's own slot"
        );
        assert_eq!((s.state(), learner(&s).next_slot()), (&Sum(15), 5));
        assert_eq!(
            (behind.state(), learner(&behind).next_slot()),
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
        let out = install(&mut s, 1, donor.snapshot());
        let Action::PersistSnapshot(base) = &out[0] else {
            panic!("the new base is made durable first: {out:?}");
        };
        assert_eq!(base.next_slot, 5);
        assert_eq!(
            out[1],
            Action::Event(Event::SnapshotInstalled {
                from: NodeId(1),
                next_slot: 5
            })
        );
        assert_eq!(s.state(), &Sum(15));
        assert_eq!(s.applied_up_to(), 5);
        assert_eq!(s.stats().snapshots_installed, 1);
        // Slot 5 holds a retry of slot 4's command: the session table came
        // with the snapshot, so it is answered from the cache, not executed.
        let out = receive(
            &mut s,
            2,
            Message::Decided {
                first_slot: 5,
                values: vec![value(4)],
            },
        );
        assert_eq!(learner(&s).next_slot(), 7, "slot 5 fills the gap to 6");
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

    /// A follower that skipped over a client's command by installing a
    /// snapshot never answered it; when the client retries there, the
    /// session table that came with the snapshot answers at once, with no
    /// forward and no new slot (seeds 33151 and 88808 of the sweep: a client
    /// that retried only at lagging followers never heard back). A retry of
    /// an older request is superseded; a new one still goes to the leader.
    #[test]
    fn a_retry_of_a_command_executed_here_is_answered_from_the_session_table() {
        let donor = ahead();
        let mut s = Server::new(config(3), Sum::default()).unwrap();
        receive(&mut s, 2, heartbeat(Ballot::new(1, NodeId(2))));
        install(&mut s, 1, donor.snapshot());
        let retry = |seq| {
            Input::Propose(Command {
                client: 7,
                seq,
                op: seq,
            })
        };
        // Slot 4 held client 7's request 5, which made the sum 15.
        assert_eq!(
            s.step(retry(5)),
            [Action::Reply {
                client: 7,
                seq: 5,
                slot: 4,
                output: 15
            }]
        );
        assert_eq!(
            s.step(retry(4)),
            [Action::Event(Event::Dropped {
                client: 7,
                seq: 4,
                reason: DropReason::Superseded
            })]
        );
        assert!(matches!(
            sent(&s.step(retry(6)))[..],
            [(_, Message::Forward { .. })]
        ));
        assert_eq!(s.stats().forwarded, 1);
    }

    /// What a step wrote, in order: `Snap(next_slot)` for a snapshot,
    /// `Trim(slot)` for a trim record, `Other` for any other record.
    #[derive(Debug, PartialEq)]
    enum Wrote {
        Snap(Slot),
        Trim(Slot),
        Other,
    }

    fn writes(out: &[A]) -> Vec<Wrote> {
        out.iter()
            .filter_map(|a| match a {
                Action::PersistSnapshot(s) => Some(Wrote::Snap(s.next_slot)),
                Action::Persist(Record::Trimmed(t)) => Some(Wrote::Trim(*t)),
                Action::Persist(_) | Action::Compact(_) => Some(Wrote::Other),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn installing_a_snapshot_trims_the_acceptor_only_after_a_snapshot_that_covers_it() {
        let mut donor = ahead();
        decided(&mut donor, 5, 10);
        let mut s = Server::new(config(3), Sum::default()).unwrap();
        let out = install(&mut s, 1, donor.snapshot());
        assert_eq!(
            writes(&out),
            [Wrote::Snap(10), Wrote::Snap(10), Wrote::Trim(8)]
        );
        assert_eq!(s.inspect().acceptor().trimmed_below(), 8);
    }

    #[test]
    fn a_trim_is_written_after_a_snapshot_that_covers_it() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let out = decided(&mut s, 0, 5);
        assert_eq!(writes(&out), [Wrote::Snap(5), Wrote::Trim(3)]);
        let out = decided(&mut s, 5, 6);
        assert_eq!(writes(&out), [], "trims come in chunks of retain_slots");
        let out = decided(&mut s, 6, 7);
        assert_eq!(writes(&out), [Wrote::Snap(7), Wrote::Trim(5)]);
    }

    #[test]
    fn a_node_keeps_chosen_batches_within_retain_commands_and_snapshots_as_it_trims() {
        let mut c = config(1);
        c.retain_slots = 1_000;
        c.retain_commands = 30;
        let mut s = Server::new(c, Sum::default()).unwrap();
        let ballot = Ballot::new(1, NodeId(2));
        let mut snapshots = 0;
        for slot in 0..100u64 {
            let commands = (0..10)
                .map(|i| Command {
                    client: 7,
                    seq: slot * 10 + i + 1,
                    op: 1,
                })
                .collect();
            let accept = Message::Accept {
                ballot,
                slot,
                value: Value::from_commands(commands),
                commit: slot + 1,
            };
            let out = receive(&mut s, 2, accept);
            let wrote = writes(&out);
            snapshots += wrote.iter().filter(|w| matches!(w, Wrote::Snap(_))).count();
            let (learner, acceptor) = (learner(&s), s.inspect().acceptor());
            assert!(learner.retained_commands() <= 30, "slot {slot}");
            // Up to 30 retained and a chunk of up to 30 more below them,
            // plus the slot just voted for.
            assert!(acceptor.retained_commands() <= 70, "slot {slot}");
            assert!(acceptor.trimmed_below() <= learner.first_retained());
        }
        assert_eq!(s.applied_up_to(), 100);
        assert_eq!(s.state(), &Sum(1_000));
        assert_eq!(learner(&s).first_retained(), 97);
        // A trim, with its snapshot, once every 30 commands dropped.
        assert!((28..=33).contains(&snapshots), "{snapshots} snapshots");
        // A peer below what is retained is sent a snapshot.
        let out = catch_up(&mut s, 3, 90);
        assert_eq!(snapshots_sent(&out), [(NodeId(3), 100)]);
    }

    #[test]
    fn a_checkpoint_restores_the_same_node() {
        let mut s = ahead();
        receive(
            &mut s,
            2,
            Message::Prepare {
                ballot: Ballot::new(4, NodeId(2)),
                from_slot: 5,
            },
        );
        let out = s.step(Input::Checkpoint);
        let [Action::Compact(c)] = &out[..] else {
            panic!("expected one compaction: {out:?}");
        };
        let c = (**c).clone();
        let snapshot = c
            .snapshot
            .expect("a server's checkpoint holds its snapshot");
        let r = Server::restore(config(1), snapshot, c.records).unwrap();
        assert_eq!((r.state(), r.applied_up_to()), (&Sum(15), 5));
        assert_eq!(r.inspect().acceptor().promised(), Ballot::new(4, NodeId(2)));
        assert!(r.ballot() < Ballot::new(5, NodeId(1)));
    }

    #[test]
    fn only_the_clusters_servers_are_heard_and_only_the_owner_of_a_ballot_leads_in_it() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let prepare = Message::Prepare {
            ballot: Ballot::new(3, NodeId(2)),
            from_slot: 0,
        };
        // A learner with a member's id is not a server of the cluster.
        let out = s.step(Input::Receive {
            from: Process::only(Role::Learner, NodeId(2)),
            msg: prepare.clone(),
        });
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "prepare" })]);
        // Server 3 may not prepare in server 2's ballot.
        let out = receive(&mut s, 3, prepare);
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "prepare" })]);
        assert_eq!(s.inspect().acceptor().promised(), Ballot::ZERO);
    }

    #[test]
    fn a_server_whose_learner_lags_answers_catch_up_with_its_votes() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let ballot = Ballot::new(3, NodeId(2));
        for slot in [4, 5] {
            let accept = Message::Accept {
                ballot,
                slot,
                value: value(slot),
                commit: 0,
            };
            receive(&mut s, 2, accept);
        }
        assert_eq!(learner(&s).next_slot(), 0, "slots 0..4 never reached it");
        let out = catch_up(&mut s, 3, 4);
        let [Action::Send {
            to: Destination::To(Addr { id: NodeId(3), .. }),
            msg:
                Message::Votes {
                    first_slot: 4,
                    votes,
                    ..
                },
        }] = &out[..]
        else {
            panic!("expected its votes for server 3: {out:?}");
        };
        assert_eq!(
            votes[..3],
            [Some((ballot, value(4))), Some((ballot, value(5))), None]
        );
    }

    fn heartbeat(ballot: Ballot) -> ServerMessage<Sum> {
        Message::Heartbeat {
            ballot,
            commit: 0,
            beat: 1,
        }
    }

    fn sent(out: &[A]) -> Vec<(Destination, &ServerMessage<Sum>)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { to, msg } => Some((*to, msg)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_node_that_hears_a_working_leader_refuses_to_depose_it() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let leader = Ballot::new(3, NodeId(2));
        let out = receive(&mut s, 2, heartbeat(leader));
        assert_eq!(
            sent(&out),
            [(
                Destination::to(Role::Proposer, NodeId(2)),
                &Message::HeartbeatAck {
                    ballot: leader,
                    beat: 1
                }
            )],
            "the heartbeat is acknowledged"
        );
        let rival = Ballot::new(4, NodeId(3));
        let prepare = Message::Prepare {
            ballot: rival,
            from_slot: 0,
        };
        let out = receive(&mut s, 3, prepare.clone());
        assert_eq!(
            sent(&out),
            [(
                Destination::to(Role::Proposer, NodeId(3)),
                &Message::Nack {
                    ballot: rival,
                    promised: leader
                }
            )],
            "refused, naming the leader; nothing persisted"
        );
        assert_eq!(s.inspect().acceptor().promised(), Ballot::ZERO);
        assert_eq!(s.stats().refused_candidates, 1);
        // Once the leader has been silent for an election timeout, the
        // candidate gets its promise.
        for _ in 0..config(1).election_timeout_ticks {
            s.step(Input::Tick);
        }
        let out = receive(&mut s, 3, prepare);
        assert!(out.contains(&Action::Persist(Record::Promised(rival))));
        assert!(matches!(sent(&out)[..], [(_, Message::Promise { .. })]));
    }

    /// The leader's own vote must not delay its followers' votes: the
    /// `Accept` leaves before the barrier that makes the leader's vote
    /// durable, so a driver syncs the leader's disk while the followers
    /// sync theirs. What the vote decides waits for that barrier.
    #[test]
    fn a_leader_sends_its_accept_before_persisting_its_own_vote() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let ballot = (0..=2 * config(1).election_timeout_ticks)
            .find_map(|_| {
                s.step(Input::Tick).iter().find_map(|a| match a {
                    Action::Send {
                        msg: Message::Prepare { ballot, .. },
                        ..
                    } => Some(*ballot),
                    _ => None,
                })
            })
            .expect("a campaign within two election timeouts");
        let promise = Message::Promise {
            ballot,
            trimmed_below: 0,
            accepted: Vec::new(),
        };
        receive(&mut s, 2, promise);
        assert!(s.is_leader());
        let cmd = Command {
            client: 7,
            seq: 1,
            op: 5,
        };
        let out = s.step(Input::Propose(cmd.clone()));
        let accept = out.iter().position(|a| {
            matches!(a, Action::Send { to, msg: Message::Accept { value, .. } }
                if to.reaches(&server(2)) && *value == Value::One(cmd.clone()))
        });
        let vote = out.iter().position(
            |a| matches!(a, Action::Persist(Record::Accepted(pv)) if pv.ballot == ballot),
        );
        let (Some(accept), Some(vote)) = (accept, vote) else {
            panic!("an accept to the followers and a persisted vote: {out:?}")
        };
        assert!(accept < vote, "the accept waits for no fsync: {out:?}");
        let out = receive(
            &mut s,
            2,
            Message::Accepted {
                ballot,
                slot: 0,
                value: None,
            },
        );
        assert!(
            out.iter().any(|a| matches!(
                a,
                Action::Reply {
                    seq: 1,
                    output: 5,
                    ..
                }
            )),
            "a majority voted: the leader's own vote and node 2's"
        );
    }

    /// Three servers and the messages in flight between them.
    struct Trio {
        nodes: Vec<Server<Sum>>,
        wire: VecDeque<(u32, Destination, ServerMessage<Sum>)>,
        events: Vec<(u32, Event)>,
        lease_reads: u64,
        /// The kind of every message each node sent.
        sent: Vec<(u32, &'static str)>,
    }

    impl Trio {
        fn new(lease_ticks: u32) -> Self {
            let nodes = (1..=3)
                .map(|id| {
                    let mut c = config(id).with_seed(u64::from(id));
                    c.lease_ticks = lease_ticks;
                    Server::new(c, Sum::default()).unwrap()
                })
                .collect();
            Trio {
                nodes,
                wire: VecDeque::new(),
                events: Vec::new(),
                lease_reads: 0,
                sent: Vec::new(),
            }
        }

        fn step(&mut self, id: u32, input: ServerInput<Sum>) {
            for a in self.nodes[id as usize - 1].step(input) {
                match a {
                    Action::Send { to, msg } => {
                        self.sent.push((id, msg.kind()));
                        self.wire.push_back((id, to, msg));
                    }
                    Action::Event(e) => self.events.push((id, e)),
                    Action::ReadReply { .. } => self.lease_reads += 1,
                    _ => {}
                }
            }
        }

        /// Delivers every message, and every message that causes, without
        /// a tick: whatever happens here takes no timeout.
        fn settle(&mut self) {
            while let Some((from, to, msg)) = self.wire.pop_front() {
                for id in 1..=3u32 {
                    if id != from && to.reaches(&server(id)) {
                        let from = server(from);
                        self.step(
                            id,
                            Input::Receive {
                                from,
                                msg: msg.clone(),
                            },
                        );
                    }
                }
            }
        }

        fn tick_all(&mut self) {
            for id in 1..=3 {
                self.step(id, Input::Tick);
            }
            self.settle();
        }

        fn leaders(&self) -> Vec<u32> {
            (1..=3u32)
                .filter(|&id| self.nodes[id as usize - 1].is_leader())
                .collect()
        }

        /// What node `w` reported when its rejoin ended: ballot and trim point.
        fn rejoined(&self, w: u32) -> Option<(Ballot, Slot)> {
            self.events.iter().find_map(|(id, e)| match e {
                Event::Rejoined {
                    ballot,
                    trimmed_below,
                } if *id == w => Some((*ballot, *trimmed_below)),
                _ => None,
            })
        }

        /// Ticks (at most `ticks` times) until node `w` has rejoined.
        fn tick_until_rejoined(&mut self, w: u32, ticks: u32) -> Option<(Ballot, Slot)> {
            for _ in 0..ticks {
                self.tick_all();
                if let Some(r) = self.rejoined(w) {
                    return Some(r);
                }
            }
            None
        }

        /// Ticks until one leader is elected, and then until it holds a
        /// lease if leases are on; returns its id.
        fn elect(&mut self) -> u32 {
            for _ in 0..100 {
                self.tick_all();
                if let [leader] = self.leaders()[..] {
                    return leader;
                }
            }
            panic!("no leader elected");
        }
    }

    fn add(client: u64, seq: u64, op: u64) -> ServerInput<Sum> {
        Input::Propose(Command { client, seq, op })
    }

    /// A follower loses its disk and comes back empty under its old id.
    /// Its acceptor answers nothing until the server wins an election
    /// counted without it, and then vouches for every slot chosen before
    /// (trimmed) and votes again; the cluster's totals agree throughout.
    #[test]
    fn a_wiped_server_votes_again_only_after_an_election_won_without_it() {
        for lease_ticks in [0, 8] {
            let mut t = Trio::new(lease_ticks);
            let leader = t.elect();
            for seq in 1..=5 {
                t.step(leader, add(7, seq, seq));
                t.settle();
            }
            t.tick_all();
            let chosen = t.nodes[leader as usize - 1].applied_up_to();
            assert!(chosen >= 5, "{chosen}");
            let w = leader % 3 + 1;
            let mut c = config(w).with_seed(99);
            c.lease_ticks = lease_ticks;
            t.nodes[w as usize - 1] = Server::rejoin(c, Sum::default()).unwrap();
            assert!(t.nodes[w as usize - 1].stats().rejoining);
            let first = t.nodes[w as usize - 1].step(Input::Tick);
            assert!(
                matches!(first.first(), Some(Action::Persist(Record::Rejoining))),
                "the rejoin is durable before anything else: {first:?}"
            );
            t.sent.clear();
            let mut rejoined = None;
            for _ in 0..100 {
                t.tick_all();
                rejoined = t.rejoined(w);
                if rejoined.is_some() {
                    break;
                }
                let silent = t.sent.iter().filter(|(id, _)| *id == w).all(|(_, k)| {
                    !matches!(
                        *k,
                        "promise" | "accepted" | "heartbeat-ack" | "votes" | "nack"
                    )
                });
                assert!(silent, "a rejoining acceptor answered: {:?}", t.sent);
            }
            let (ballot, trimmed_below) = rejoined.expect("the wiped server rejoins");
            assert!(t.sent.contains(&(w, "ask-lead")), "{:?}", t.sent);
            assert!(
                t.sent.contains(&(w, "prepare")),
                "it probes before it asks: {:?}",
                t.sent
            );
            assert_eq!(t.leaders(), vec![w], "it rejoins as leader");
            assert_eq!(ballot, t.nodes[w as usize - 1].ballot());
            let rejoiner = &t.nodes[w as usize - 1];
            assert!(!rejoiner.stats().rejoining);
            let acceptor = rejoiner.inspect().acceptor();
            assert_eq!(acceptor.promised(), ballot);
            // Every slot chosen before the wipe is vouched for as chosen,
            // and applied here, before the acceptor answers again.
            assert!(trimmed_below >= chosen, "{trimmed_below} < {chosen}");
            assert_eq!(acceptor.trimmed_below(), trimmed_below);
            assert!(rejoiner.applied_up_to() >= trimmed_below);
            for seq in 6..=8 {
                t.step(w, add(7, seq, seq));
                t.settle();
            }
            for _ in 0..20 {
                t.tick_all();
            }
            let totals: Vec<u64> = t.nodes.iter().map(|n| n.state().0).collect();
            assert_eq!(totals, vec![36, 36, 36], "lease_ticks {lease_ticks}");
        }
    }

    /// The leader loses its disk and comes back before anyone else
    /// campaigns: the others still promise the ballot it led in. A fresh
    /// proposer would campaign in that very ballot and the acceptors would
    /// take it for a retransmission; the probe makes it go above.
    #[test]
    fn a_wiped_leader_never_rejoins_in_a_ballot_it_used_before() {
        let mut t = Trio::new(0);
        let w = t.elect();
        let old = t.nodes[w as usize - 1].ballot();
        t.step(w, add(7, 1, 1));
        t.settle();
        t.nodes[w as usize - 1] = Server::rejoin(config(w).with_seed(5), Sum::default()).unwrap();
        let leader_ballots: Vec<Ballot> = t.nodes.iter().map(|n| n.ballot()).collect();
        let (ballot, _) = t
            .tick_until_rejoined(w, 200)
            .unwrap_or_else(|| panic!("no rejoin: {leader_ballots:?}"));
        assert!(ballot > old, "rejoined in {ballot}, had led in {old}");
        for _ in 0..20 {
            t.tick_all();
        }
        let totals: Vec<u64> = t.nodes.iter().map(|n| n.state().0).collect();
        assert_eq!(totals, vec![1, 1, 1]);
    }

    /// A wiped server with a long log to learn catches up as a learner
    /// before it asks for the lead, so the election it wins re-proposes a
    /// short tail, not the whole history (re-proposing thousands of slots
    /// at once stalled a real cluster for seconds).
    #[test]
    fn a_wiped_server_catches_up_before_it_asks_for_the_lead() {
        let config = |id: u32, seed: u64| {
            let mut c = Config::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)]);
            c.retain_slots = 16_384;
            c.pipeline_window = 4;
            c.catchup_chunk = 8;
            c.with_seed(seed)
        };
        let mut t = Trio::new(0);
        for id in 1..=3u32 {
            t.nodes[id as usize - 1] =
                Server::new(config(id, u64::from(id)), Sum::default()).unwrap();
        }
        let leader = t.elect();
        for seq in 1..=300 {
            t.step(leader, add(7, seq, 1));
            t.settle();
        }
        let w = leader % 3 + 1;
        t.nodes[w as usize - 1] = Server::rejoin(config(w, 99), Sum::default()).unwrap();
        t.events.clear();
        assert!(t.tick_until_rejoined(w, 300).is_some(), "no rejoin");
        let decided = t
            .events
            .iter()
            .filter(|(id, e)| *id == w && matches!(e, Event::Decided { .. }))
            .count();
        // Nothing was chosen while it caught up: a handful of slots at most.
        assert!(decided <= 16, "the rejoin re-proposed {decided} slots");
        assert_eq!(t.nodes[w as usize - 1].state().0, 300);
    }

    /// The abstention outlives a crash in the middle of the rejoin, and
    /// ends only with the record that says it ended.
    #[test]
    fn a_rejoin_cut_short_by_a_crash_resumes_abstaining() {
        let records = |rs: Vec<Record<u64>>| Server::recover(config(2), Sum::default(), rs);
        let b = Ballot::new(4, NodeId(2));
        let cut = records(vec![
            Record::Rejoining,
            Record::Trimmed(3),
            Record::Promised(b),
        ])
        .unwrap();
        assert!(cut.stats().rejoining);
        let done = records(vec![
            Record::Rejoining,
            Record::Trimmed(3),
            Record::Promised(b),
            Record::Rejoined,
        ])
        .unwrap();
        assert!(!done.stats().rejoining);
        let mut rejoining = Server::rejoin(config(2), Sum::default()).unwrap();
        let compacted = rejoining.step(Input::Checkpoint);
        let Some(Action::Compact(checkpoint)) = compacted.last() else {
            panic!("{compacted:?}");
        };
        let again = records(checkpoint.records.clone()).unwrap();
        assert!(again.stats().rejoining, "a compaction keeps the abstention");
        let mut two = Config::new(NodeId(1), vec![NodeId(1), NodeId(2)]);
        two.retain_slots = 2;
        assert_eq!(
            Server::rejoin(two, Sum::default()).unwrap_err(),
            ConfigError::CannotRejoin { members: 2 }
        );
    }

    #[test]
    fn a_transfer_moves_the_lead_without_waiting_for_a_timeout_or_a_lease() {
        // Leases long enough that nothing here could wait for them to end.
        let mut t = Trio::new(8);
        let old = t.elect();
        for _ in 0..3 {
            t.tick_all(); // heartbeats acknowledged: every follower granted a lease
        }
        let read = |id: u64| Input::Read {
            client: 9,
            id,
            query: 0,
        };
        t.step(old, read(1));
        assert_eq!(t.lease_reads, 1, "the leader serves a read on its lease");
        let to = old % 3 + 1;
        let ballot = t.nodes[old as usize - 1].ballot();
        t.step(old, Input::Transfer { to: NodeId(to) });
        assert_eq!(
            t.events.last(),
            Some(&(
                old,
                Event::HandingOff {
                    to: NodeId(to),
                    ballot
                }
            ))
        );
        // Still leading until deposed, but no longer on its lease.
        t.step(old, read(2));
        assert_eq!(t.lease_reads, 1, "no lease read after handing off");
        // Nor does it take new commands, which would wait out a ballot
        // about to end: it points their clients at its successor.
        let early = Command {
            client: 8,
            seq: 1,
            op: 1,
        };
        t.step(old, Input::Propose(early));
        assert_eq!(
            t.events.last(),
            Some(&(
                old,
                Event::Dropped {
                    client: 8,
                    seq: 1,
                    reason: DropReason::NotLeader {
                        leader: Some(NodeId(to))
                    }
                }
            ))
        );
        t.settle();
        assert_eq!(t.leaders(), [to], "the named server leads, with no tick");
        assert!(t.nodes[to as usize - 1].ballot() > ballot);
        assert_eq!(t.nodes[to as usize - 1].stats().handoffs_taken, 1);
        assert_eq!(t.nodes[old as usize - 1].stats().transfers_started, 1);
        // The cluster goes on: a command is chosen under the new leader.
        let cmd = Command {
            client: 7,
            seq: 1,
            op: 4,
        };
        t.step(to, Input::Propose(cmd));
        t.settle();
        assert!(t.nodes.iter().all(|n| n.state().0 == 4));
    }

    /// A follower whose timer ran out just before the leader's first
    /// message reached it campaigns; the others still hear the leader and
    /// refuse it, but its own acceptor promised it and so refuses the
    /// leader's next accept. The leader, which still has a quorum without
    /// that node, campaigns again above the rival at once and keeps the
    /// lead, with no tick: stepping down would leave the cluster without a
    /// leader until every timer ran out together (seed 28913 of the
    /// simulator's sweep, a duel of four servers).
    #[test]
    fn a_leader_refused_by_one_rivals_acceptor_campaigns_again_instead_of_stepping_down() {
        for lease_ticks in [0, 8] {
            let mut t = Trio::new(lease_ticks);
            let leader = t.elect();
            t.tick_all();
            let rival = leader % 3 + 1;
            let before = t.nodes[leader as usize - 1].ballot();
            // Only the rival's clock runs, and nothing is delivered.
            for _ in 0..100 {
                t.step(rival, Input::Tick);
                if t.nodes[rival as usize - 1].ballot() > before {
                    break;
                }
            }
            let rival_ballot = t.nodes[rival as usize - 1].ballot();
            assert!(rival_ballot > before, "the rival campaigned");
            t.settle();
            assert_eq!(t.leaders(), [leader], "the others refused the rival");
            t.step(leader, add(1, 1, 4));
            t.settle();
            assert_eq!(t.leaders(), [leader], "still leading, with no tick");
            let after = t.nodes[leader as usize - 1].ballot();
            assert!(after > rival_ballot, "{after:?} above {rival_ballot:?}");
            assert_eq!(t.nodes[leader as usize - 1].stats().bumped, 1);
            assert_eq!(t.nodes[leader as usize - 1].stats().stepped_down, 0);
            assert_eq!(t.nodes[rival as usize - 1].leader(), Some(NodeId(leader)));
            assert!(
                t.nodes.iter().all(|n| n.state().0 == 4),
                "the command is chosen and applied everywhere"
            );
        }
    }

    #[test]
    fn a_transfer_is_refused_by_a_follower_to_itself_and_to_a_stranger() {
        let mut t = Trio::new(0);
        let leader = t.elect();
        let follower = leader % 3 + 1;
        let refused = |t: &mut Trio, id: u32, to: u32| {
            t.step(id, Input::Transfer { to: NodeId(to) });
            match t.events.last() {
                Some(&(_, Event::TransferRefused { reason, .. })) => reason,
                other => panic!("not refused: {other:?}"),
            }
        };
        assert_eq!(
            refused(&mut t, follower, leader),
            TransferRefusal::NotLeader {
                leader: Some(NodeId(leader))
            }
        );
        assert_eq!(
            refused(&mut t, leader, leader),
            TransferRefusal::AlreadyLeader
        );
        assert_eq!(refused(&mut t, leader, 9), TransferRefusal::NotAMember);
        assert!(t.wire.is_empty(), "nothing sent");
        assert_eq!(t.leaders(), [leader]);
    }

    #[test]
    fn a_handoff_from_a_deposed_leader_changes_nothing() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let newer = Ballot::new(5, NodeId(3));
        receive(
            &mut s,
            3,
            Message::Prepare {
                ballot: newer,
                from_slot: 0,
            },
        );
        let stale = Message::Handoff {
            ballot: Ballot::new(4, NodeId(2)),
            to: NodeId(1),
        };
        let out = receive(&mut s, 2, stale);
        assert!(sent(&out).is_empty(), "no campaign: {out:?}");
        assert_eq!(s.stats().handoffs_taken, 0);
        assert_eq!(s.stats().ignored, 1);
    }

    #[test]
    fn a_stale_leaders_heartbeat_is_answered_with_a_refusal() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let new = Ballot::new(5, NodeId(3));
        receive(
            &mut s,
            3,
            Message::Prepare {
                ballot: new,
                from_slot: 0,
            },
        );
        let old = Ballot::new(2, NodeId(2));
        let out = receive(&mut s, 2, heartbeat(old));
        assert_eq!(
            sent(&out),
            [(
                Destination::to(Role::Proposer, NodeId(2)),
                &Message::Nack {
                    ballot: old,
                    promised: new
                }
            )]
        );
    }

    #[test]
    fn a_forward_to_a_server_that_is_not_leader_is_refused_back_with_its_hint() {
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        receive(&mut s, 2, heartbeat(Ballot::new(3, NodeId(2))));
        let cmd = Command {
            client: 9,
            seq: 4,
            op: 1,
        };
        let out = receive(
            &mut s,
            3,
            Message::Forward {
                commands: vec![cmd],
            },
        );
        let refused = Message::Refused {
            client: 9,
            seq: 4,
            reason: DropReason::NotLeader {
                leader: Some(NodeId(2)),
            },
        };
        assert_eq!(sent(&out), [(Destination::To(server(3).addr()), &refused)]);
        // The server that forwarded tells its client.
        let mut forwarder = Server::new(config(3), Sum::default()).unwrap();
        let out = receive(&mut forwarder, 1, refused);
        assert_eq!(
            out,
            [Action::Event(Event::Dropped {
                client: 9,
                seq: 4,
                reason: DropReason::NotLeader {
                    leader: Some(NodeId(2))
                }
            })]
        );
    }

    /// The catch-up queries among `out`: (query, from_slot, to_slot).
    fn queries(out: &[A]) -> Vec<(u64, Slot, Slot)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg:
                        Message::CatchUp {
                            from_slot,
                            to_slot,
                            query,
                        },
                    ..
                } => Some((*query, *from_slot, *to_slot)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_lagging_learner_counts_its_own_acceptors_votes_toward_the_majority_it_asks() {
        // Server 1's acceptor voted for slot 0 in leader 3's ballot; leader
        // 2 got the slot chosen in a later ballot whose Accept never came.
        let mut s = Server::new(config(1), Sum::default()).unwrap();
        let old = Ballot::new(1, NodeId(3));
        let accept = Message::Accept {
            ballot: old,
            slot: 0,
            value: value(0),
            commit: 0,
        };
        receive(&mut s, 3, accept);
        let new = Ballot::new(2, NodeId(2));
        let beat = Message::Heartbeat {
            ballot: new,
            commit: 1,
            beat: 1,
        };
        receive(&mut s, 2, beat);
        assert_eq!(s.applied_up_to(), 0, "one vote in another ballot");
        // Leader 2 is out of reach: the first query (to it) goes
        // unanswered, the second goes to every peer. Server 3, whose
        // learner lags as well, answers with its acceptor's vote.
        let mut out = Vec::new();
        for _ in 0..100 {
            if queries(&out).len() == 2 {
                break;
            }
            out.extend(s.step(Input::Tick));
        }
        let asked = queries(&out);
        assert_eq!(asked.len(), 2, "{asked:?}");
        let (query, from_slot, _) = asked[1];
        assert_eq!(from_slot, 0);
        assert_eq!(s.applied_up_to(), 0);
        let votes = Message::Votes {
            first_slot: 0,
            query,
            votes: vec![Some((old, value(0)))],
        };
        receive(&mut s, 3, votes);
        // Two answers of three acceptors, server 1's own among them: a
        // majority, so the slot is settled with their highest-ballot vote.
        // Without its own answer, two lagging servers that reach only each
        // other would ask each other for ever.
        assert_eq!(s.applied_up_to(), 1);
        assert_eq!(s.state(), &Sum(1));
    }

    #[test]
    fn a_leader_elected_while_its_learner_lags_delivers_every_slot_it_gets_chosen() {
        let mut c = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        c.pipeline_window = 1;
        c.catchup_chunk = 1;
        let mut s = Server::new(c, Sum::default()).unwrap();
        // Nobody leads, so server 1 campaigns from slot 0.
        let mut out = Vec::new();
        for _ in 0..100 {
            out.extend(s.step(Input::Tick));
            if s.ballot() != Ballot::ZERO {
                break;
            }
        }
        let ballot = s.ballot();
        assert!(
            sent(&out)
                .iter()
                .any(|(_, m)| matches!(m, Message::Prepare { ballot: b, .. } if *b == ballot)),
            "server 1 campaigned: {out:?}"
        );
        // Server 2 voted for slots 0..40 under an older leader, far past
        // the learner's window of a few slots.
        let slots: Slot = 40;
        let old = Ballot::new(ballot.round - 1, NodeId(3));
        let accepted = (0..slots)
            .map(|slot| crate::types::PValue {
                slot,
                ballot: old,
                value: value(slot),
            })
            .collect();
        let promise = Message::Promise {
            ballot,
            trimmed_below: 0,
            accepted,
        };
        receive(&mut s, 2, promise);
        assert!(s.is_leader());
        // Server 2's acks come back last slot first: all but the last few
        // slots are chosen while they lie past the learner's window.
        for slot in (0..slots).rev() {
            let vote = Message::Accepted {
                ballot,
                slot,
                value: None,
            };
            receive(&mut s, 2, vote);
        }
        // Its proposer saw every slot chosen: its learner takes them all,
        // not only those in its window, so the leader applies at once
        // instead of fetching each slot again from peers.
        assert_eq!(s.applied_up_to(), slots);
        assert_eq!(s.state(), &Sum(slots * (slots + 1) / 2));
    }
}
