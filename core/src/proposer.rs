//! The proposer: leader election by ticks, one phase 1 for every open slot, and a
//! pipelined, batching phase 2. Only the leader proposes; the others stand by.

use crate::action::{Action, Destination, DropReason, Event, Input, Record};
use crate::config::Config;
use crate::error::ConfigError;
use crate::message::Message;
use crate::types::{Ballot, Command, NodeId, PValue, Slot, Value};
use crate::window::SlotWindow;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Where a proposer stands in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposerState {
    /// Waiting for a leader's heartbeats; campaigns when they stop.
    Follower,
    /// Running phase 1 with its own ballot.
    Candidate,
    /// Won phase 1; proposes client commands.
    Leader,
}

#[derive(Clone, Debug)]
struct InFlight<C> {
    value: Value<C>,
    acks: u64,
    age_ticks: u32,
    chosen: bool,
}

/// One proposer. A cluster may run several; randomised election timeouts and
/// back-off make one of them leader, and the rest follow it.
#[derive(Clone, Debug)]
pub struct Proposer<C> {
    config: Config,
    rng: ChaCha8Rng,
    state: ProposerState,
    /// Our latest ballot (meaningful while candidate or leader).
    ballot: Ballot,
    /// The highest ballot seen anywhere; our next campaign goes above it.
    highest_seen: Ballot,
    leader: Option<NodeId>,
    timer_ticks: u32,
    timeout_ticks: u32,
    /// Every slot below is chosen *and* its value is held by a local learner.
    /// Phase 1 starts here: a slot merely reported chosen by a leader that
    /// may have crashed is re-proposed, which is safe (Paxos forces the same
    /// value) and is the only way to recover a value no learner kept.
    learned: Slot,
    // Candidate state.
    promises: u64,
    adopted: BTreeMap<Slot, (Ballot, Value<C>)>,
    prepare_from: Slot,
    trimmed_max: Slot,
    // Leader state.
    commit: Slot,
    next_slot: Slot,
    inflight: SlotWindow<InFlight<C>>,
    queue: VecDeque<Command<C>>,
    heartbeat_timer_ticks: u32,
    /// When set, chosen values are kept here for a co-located learner.
    report_chosen: bool,
    pub(crate) chosen: Vec<(Slot, Value<C>)>,
    ignored: u64,
}

impl<C: Clone> Proposer<C> {
    /// A proposer that starts as a follower.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let seed = config.seed ^ (u64::from(config.id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut p = Proposer {
            config: config.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            state: ProposerState::Follower,
            ballot: Ballot::ZERO,
            highest_seen: Ballot::ZERO,
            leader: None,
            timer_ticks: 0,
            timeout_ticks: 0,
            learned: 0,
            promises: 0,
            adopted: BTreeMap::new(),
            prepare_from: 0,
            trimmed_max: 0,
            commit: 0,
            next_slot: 0,
            inflight: SlotWindow::new(0),
            queue: VecDeque::new(),
            heartbeat_timer_ticks: 0,
            report_chosen: false,
            chosen: Vec::new(),
            ignored: 0,
        };
        p.timeout_ticks = p.random_timeout();
        Ok(p)
    }

    /// Rebuilds a proposer after a crash. Only [`Record::Campaign`] matters: the
    /// next campaign uses a round above every ballot this proposer ever used.
    pub fn recover<I>(config: &Config, records: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = Record<C>>,
    {
        let mut p = Proposer::new(config)?;
        for r in records {
            p.replay(&r);
        }
        Ok(p)
    }

    pub(crate) fn replay(&mut self, record: &Record<C>) {
        match record {
            Record::Campaign(b) | Record::Promised(b) => {
                self.highest_seen = self.highest_seen.max(*b);
            }
            Record::Accepted(pv) => self.highest_seen = self.highest_seen.max(pv.ballot),
            Record::Trimmed(_) => {}
        }
    }

    /// The record that keeps this proposer from reusing a ballot after a
    /// restart, for drivers that compact their logs.
    pub fn checkpoint(&self) -> Record<C> {
        Record::Campaign(self.highest_seen.max(self.ballot))
    }

    pub(crate) fn set_report_chosen(&mut self, on: bool) {
        self.report_chosen = on;
    }

    /// Election state.
    pub fn state(&self) -> ProposerState {
        self.state
    }

    /// True while this proposer is the leader.
    pub fn is_leader(&self) -> bool {
        self.state == ProposerState::Leader
    }

    /// The proposer this one believes leads, if any (itself when leader).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Our latest ballot.
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// While leader: every slot below this is chosen.
    pub fn commit(&self) -> Slot {
        self.commit
    }

    /// Commands queued for a slot.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Messages ignored (from non-members, or out of range) so far.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Handles one input; see [`Proposer::step_into`].
    pub fn step<O>(&mut self, input: Input<C>) -> Vec<Action<C, O>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input, appending the resulting actions to `out`.
    pub fn step_into<O>(&mut self, input: Input<C>, out: &mut Vec<Action<C, O>>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Propose(cmd) => self.propose(cmd, out),
            Input::Receive { from, msg } => self.receive(from, msg, out),
        }
    }

    pub(crate) fn receive<O>(
        &mut self,
        from: NodeId,
        msg: Message<C>,
        out: &mut Vec<Action<C, O>>,
    ) {
        match msg {
            Message::Promise {
                ballot,
                trimmed_below,
                accepted,
            } => self.on_promise(from, ballot, trimmed_below, accepted, out),
            Message::Nack { ballot, promised } => self.on_nack(ballot, promised, out),
            Message::Accepted { ballot, slot, .. } => self.on_accepted(from, ballot, slot, out),
            Message::Heartbeat { ballot, .. } | Message::Accept { ballot, .. } => {
                self.observe_leader(ballot, out)
            }
            Message::Prepare { ballot, .. } => self.observe_candidate(ballot, out),
            Message::Forward { commands } => {
                for cmd in commands {
                    self.propose(cmd, out);
                }
            }
            Message::CatchUp { .. } | Message::Decided { .. } => {}
        }
    }

    /// One tick: election and heartbeat timers, retransmission.
    pub(crate) fn tick<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        match self.state {
            ProposerState::Follower => {
                self.timer_ticks += 1;
                if self.timer_ticks >= self.timeout_ticks {
                    self.campaign(out);
                }
            }
            ProposerState::Candidate => {
                self.timer_ticks += 1;
                if self.timer_ticks >= self.timeout_ticks {
                    // No quorum in time: back off randomly by campaigning again
                    // only after a fresh random timeout has run.
                    self.campaign(out);
                } else if self.timer_ticks % self.config.retransmit_ticks == 0 {
                    self.send_prepare(out);
                }
            }
            ProposerState::Leader => {
                self.heartbeat_timer_ticks += 1;
                if self.heartbeat_timer_ticks >= self.config.heartbeat_ticks {
                    self.send_heartbeat(out);
                }
                let (ballot, commit) = (self.ballot, self.commit);
                let retransmit = self.config.retransmit_ticks;
                let end = self.inflight.end();
                for slot in self.inflight.base()..end {
                    if let Some(f) = self.inflight.get_mut(slot) {
                        if f.chosen {
                            continue;
                        }
                        f.age_ticks += 1;
                        if f.age_ticks >= retransmit {
                            f.age_ticks = 0;
                            out.push(accept(ballot, slot, f.value.clone(), commit));
                        }
                    }
                }
            }
        }
    }

    /// A client command reaches this proposer.
    pub(crate) fn propose<O>(&mut self, cmd: Command<C>, out: &mut Vec<Action<C, O>>) {
        let reason = if !self.is_leader() {
            DropReason::NotLeader {
                leader: self.leader,
            }
        } else if self.queue.len() >= self.config.pending_max {
            DropReason::Overloaded
        } else {
            self.queue.push_back(cmd);
            self.flush(out);
            return;
        };
        out.push(Action::Event(Event::Dropped {
            client: cmd.client,
            seq: cmd.seq,
            reason,
        }));
    }

    /// Moves queued commands into slots. A command goes out at once when the
    /// pipeline is empty; otherwise commands gather until a slot is chosen or a
    /// full batch is ready, so that load turns into batches instead of slots.
    fn flush<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        while !self.queue.is_empty() {
            let in_flight = (self.next_slot - self.commit) as usize;
            if in_flight >= self.config.pipeline_window
                || (in_flight > 0 && self.queue.len() < self.config.batch_max)
            {
                break;
            }
            let n = self.queue.len().min(self.config.batch_max);
            let value = if n == 1 {
                Value::One(self.queue.pop_front().expect("queue is not empty"))
            } else {
                Value::Batch(self.queue.drain(..n).collect())
            };
            let slot = self.next_slot;
            self.next_slot += 1;
            self.start_phase2(slot, value, out);
        }
    }

    fn start_phase2<O>(&mut self, slot: Slot, value: Value<C>, out: &mut Vec<Action<C, O>>) {
        out.push(accept(self.ballot, slot, value.clone(), self.commit));
        *self.inflight.entry(slot) = Some(InFlight {
            value,
            acks: 0,
            age_ticks: 0,
            chosen: false,
        });
    }

    fn campaign<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        let round = self.highest_seen.round.max(self.ballot.round) + 1;
        self.step_down_quietly(out);
        self.ballot = Ballot::new(round, self.config.id);
        self.highest_seen = self.ballot;
        self.state = ProposerState::Candidate;
        self.leader = None;
        self.promises = 0;
        self.adopted.clear();
        self.prepare_from = self.learned;
        self.trimmed_max = 0;
        self.timer_ticks = 0;
        self.timeout_ticks = self.random_timeout();
        out.push(Action::Persist(Record::Campaign(self.ballot)));
        self.send_prepare(out);
    }

    fn send_prepare<O>(&self, out: &mut Vec<Action<C, O>>) {
        out.push(Action::Send {
            to: Destination::Acceptors,
            msg: Message::Prepare {
                ballot: self.ballot,
                from_slot: self.prepare_from,
            },
        });
    }

    fn on_promise<O>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        trimmed_below: Slot,
        accepted: Vec<PValue<C>>,
        out: &mut Vec<Action<C, O>>,
    ) {
        if self.state != ProposerState::Candidate || ballot != self.ballot {
            return;
        }
        let Some(bit) = self.member_bit(from, "promise", out) else {
            return;
        };
        if self.promises & bit != 0 {
            return;
        }
        self.promises |= bit;
        self.trimmed_max = self.trimmed_max.max(trimmed_below);
        for pv in accepted {
            if pv.slot < self.prepare_from {
                continue;
            }
            match self.adopted.get(&pv.slot) {
                Some((b, _)) if *b >= pv.ballot => {}
                _ => {
                    self.adopted.insert(pv.slot, (pv.ballot, pv.value));
                }
            }
        }
        if self.promises.count_ones() as usize >= self.config.quorum() {
            self.become_leader(out);
        }
    }

    /// Phase 1 succeeded: re-propose the highest-ballot value of every open slot,
    /// fill holes with no-ops, then serve new commands.
    fn become_leader<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        self.state = ProposerState::Leader;
        self.leader = Some(self.config.id);
        self.commit = self.prepare_from.max(self.trimmed_max);
        let adopted = core::mem::take(&mut self.adopted);
        let last = adopted
            .keys()
            .next_back()
            .map_or(self.commit, |s| (s + 1).max(self.commit));
        self.next_slot = last;
        self.inflight = SlotWindow::new(self.commit);
        self.send_heartbeat(out);
        let commit = self.commit;
        let mut adopted = adopted.into_iter().filter(|(s, _)| *s >= commit).peekable();
        for slot in commit..last {
            let value = match adopted.next_if(|(s, _)| *s == slot) {
                Some((_, (_, v))) => v,
                None => Value::Noop,
            };
            self.start_phase2(slot, value, out);
        }
        self.flush(out);
    }

    fn on_accepted<O>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        out: &mut Vec<Action<C, O>>,
    ) {
        if self.state != ProposerState::Leader || ballot != self.ballot {
            return;
        }
        let Some(bit) = self.member_bit(from, "accepted", out) else {
            return;
        };
        let quorum = self.config.quorum();
        let Some(f) = self.inflight.get_mut(slot) else {
            return;
        };
        if f.chosen {
            return;
        }
        f.acks |= bit;
        if (f.acks.count_ones() as usize) < quorum {
            return;
        }
        f.chosen = true;
        let value = core::mem::replace(&mut f.value, Value::Noop);
        if self.report_chosen {
            self.chosen.push((slot, value));
        }
        out.push(Action::Event(Event::Decided { slot }));
        let before = self.commit;
        while self.inflight.front().is_some_and(|f| f.chosen) {
            self.inflight.pop_front();
            self.commit += 1;
        }
        if self.commit > before {
            let sent_before = out.len();
            self.flush(out);
            if out.len() == sent_before {
                // Nothing new carries the commit point, so announce it now:
                // followers apply without waiting for the next heartbeat.
                self.send_heartbeat(out);
            }
        }
    }

    fn on_nack<O>(&mut self, ballot: Ballot, promised: Ballot, out: &mut Vec<Action<C, O>>) {
        if self.state == ProposerState::Follower || ballot != self.ballot || promised <= ballot {
            return;
        }
        self.highest_seen = self.highest_seen.max(promised);
        self.become_follower(Some(promised.node), out);
    }

    /// A leader's `Heartbeat` or `Accept`: follow it if it is the newest.
    pub(crate) fn observe_leader<O>(&mut self, ballot: Ballot, out: &mut Vec<Action<C, O>>) {
        if ballot < self.highest_seen {
            return;
        }
        if ballot == self.ballot && self.state != ProposerState::Follower {
            return; // our own
        }
        self.highest_seen = ballot;
        if self.state == ProposerState::Follower {
            self.leader = Some(ballot.node);
            self.timer_ticks = 0;
        } else {
            self.become_follower(Some(ballot.node), out);
        }
    }

    /// Another candidate's `Prepare`: give it time to win instead of duelling.
    pub(crate) fn observe_candidate<O>(&mut self, ballot: Ballot, out: &mut Vec<Action<C, O>>) {
        if ballot <= self.highest_seen {
            return;
        }
        self.highest_seen = ballot;
        if self.state == ProposerState::Follower {
            self.leader = Some(ballot.node);
            self.timer_ticks = 0;
        } else {
            self.become_follower(Some(ballot.node), out);
        }
    }

    /// Tells the proposer that a learner it can rely on has delivered every
    /// slot below `slot`, so its next phase 1 may start there. Without this a
    /// standalone proposer runs phase 1 from the acceptors' trim point.
    pub fn learned_prefix(&mut self, slot: Slot) {
        self.learned = self.learned.max(slot);
    }

    fn become_follower<O>(&mut self, leader: Option<NodeId>, out: &mut Vec<Action<C, O>>) {
        self.step_down_quietly(out);
        self.state = ProposerState::Follower;
        self.leader = leader;
        self.timer_ticks = 0;
        self.timeout_ticks = self.random_timeout();
    }

    /// Leaves leadership: queued commands were never proposed, so their clients
    /// hear that they must go elsewhere. In-flight values may still be chosen by
    /// the next leader, so they get no verdict; the replica answers retries.
    fn step_down_quietly<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        if self.state == ProposerState::Leader {
            self.inflight = SlotWindow::new(self.commit);
        }
        for cmd in self.queue.drain(..) {
            out.push(Action::Event(Event::Dropped {
                client: cmd.client,
                seq: cmd.seq,
                reason: DropReason::NotLeader { leader: None },
            }));
        }
    }

    fn send_heartbeat<O>(&mut self, out: &mut Vec<Action<C, O>>) {
        self.heartbeat_timer_ticks = 0;
        out.push(Action::Send {
            to: Destination::All,
            msg: Message::Heartbeat {
                ballot: self.ballot,
                commit: self.commit,
            },
        });
    }

    fn member_bit<O>(
        &mut self,
        from: NodeId,
        kind: &'static str,
        out: &mut Vec<Action<C, O>>,
    ) -> Option<u64> {
        match self.config.member_index(from) {
            Some(i) => Some(1u64 << i),
            None => {
                self.ignored += 1;
                out.push(Action::Event(Event::Ignored { kind }));
                None
            }
        }
    }

    fn random_timeout(&mut self) -> u32 {
        let base = self.config.election_timeout_ticks;
        base + self.rng.next_u32() % base
    }
}

fn accept<C, O>(ballot: Ballot, slot: Slot, value: Value<C>, commit: Slot) -> Action<C, O> {
    Action::Send {
        to: Destination::Acceptors,
        msg: Message::Accept {
            ballot,
            slot,
            value,
            commit,
        },
    }
}
