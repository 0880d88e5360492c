//! The learner: finds out which value each slot chose and delivers slots strictly
//! in order, asking peers for missing slots when a gap outlasts a timeout.

use crate::acceptor::owns_ballot;
use crate::action::{Action, Event, Input};
use crate::address::{Destination, Process, Role, Roles};
use crate::config::Config;
use crate::error::ConfigError;
use crate::message::Message;
use crate::types::{Ballot, NodeId, Slot, Value};
use crate::window::SlotWindow;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

#[derive(Clone, Debug)]
enum Pending<C> {
    /// Votes seen for one ballot (the highest seen for this slot).
    Votes {
        ballot: Ballot,
        value: Value<C>,
        acks: u64,
    },
    Chosen(Value<C>),
}

/// What the acceptors answered so far to the learner's latest catch-up query.
#[derive(Clone, Debug)]
struct Recovery<C> {
    query: u64,
    /// The query's slots, `first..first + slots.len()`, all known to be
    /// chosen when it was sent.
    first: Slot,
    slots: Vec<Report<C>>,
}

/// The answers about one slot.
#[derive(Clone, Debug)]
struct Report<C> {
    /// Acceptors that answered.
    answered: u64,
    /// The highest-ballot vote among their answers.
    best: Option<(Ballot, Value<C>)>,
    /// A majority answered and the slot was settled: later answers, which
    /// may hold older votes, change nothing.
    settled: bool,
}

/// How many chunks of `catchup_chunk` slots one catch-up request asks for,
/// and a peer answers, each chunk in its own [`Message::Decided`]: a learner
/// far behind moves this many chunks per round trip, while no message holds
/// more than a chunk.
pub(crate) const CATCHUP_BURST: Slot = 4;

/// One learner. It learns that a slot is chosen in four ways: a majority of
/// acceptors accepted the same ballot; the leader's commit point covers a slot
/// whose value it saw accepted in the leader's ballot; a peer sent the value;
/// or, for a slot it knows chosen, a majority of acceptors answered one of its
/// catch-up queries (it takes their highest-ballot vote, as phase 1 does).
///
/// ```
/// use paxos_core::{Action, Ballot, Config, Input, Learner, Message, NodeId, Process, Role, Value};
/// let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
/// let mut learner = Learner::<String>::new(&config).unwrap();
/// let vote = |acceptor| Input::Receive {
///     from: Process::only(Role::Acceptor, NodeId(acceptor)),
///     msg: Message::Accepted { ballot: Ballot::new(1, NodeId(1)), slot: 0, value: Some(Value::Noop) },
/// };
/// let out: Vec<Action<String>> = learner.step(vote(1));
/// assert!(out.is_empty(), "one vote of three is not a majority");
/// let out: Vec<Action<String>> = learner.step(vote(3));
/// assert_eq!(out, [Action::Deliver { slot: 0, value: Value::Noop }]);
/// ```
#[derive(Clone, Debug)]
pub struct Learner<C> {
    config: Config,
    /// Next slot to deliver.
    next: Slot,
    pending: SlotWindow<Pending<C>>,
    /// Delivered values of slots `next - retained.len() .. next`, for catch-up.
    retained: VecDeque<Value<C>>,
    /// Their weight against [`Config::retain_commands`].
    retained_weight: u64,
    /// Total weight of the values dropped from `retained` by its bounds
    /// since this learner was made.
    dropped_weight: u64,
    /// Every slot below this was dropped from `retained` by its bounds (or
    /// was never held); 0 until the first drop.
    dropped_below: Slot,
    commit_ballot: Ballot,
    commit_upto: Slot,
    /// A value is known to exist for some slot below this (a slot past a
    /// gap was seen chosen, or a leader's commit point reaches here): the
    /// learner catches up to it. Not every slot below need be chosen yet.
    horizon: Slot,
    /// Every slot below this is known to be chosen: the highest commit point
    /// any leader announced (a commit point is true for good).
    committed_below: Slot,
    stalled_ticks: u32,
    /// First slot of the last catch-up request, while it is unanswered: a
    /// reply that delivers asks for the next chunk at once.
    asked_from: Option<Slot>,
    /// The end of the range last asked for.
    asked_to: Slot,
    /// Number of the latest catch-up query.
    query: u64,
    /// The acceptors' answers to it.
    recovery: Option<Recovery<C>>,
    /// Ask the leader (node of the newest commit ballot) rather than every learner.
    ask_leader: bool,
    /// A leader's commit point arrived in this step (see
    /// [`Learner::resume_catch_up`]).
    commit_heard: bool,
    window_max: u64,
    /// The configuration ([`Ballot::epoch`]) whose votes count: a vote of
    /// another one was counted against another set of members.
    epoch: u64,
    ignored: u64,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<C: Clone> Learner<C> {
    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
    }

    /// A learner that has delivered nothing yet.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Learner {
            config: config.clone(),
            next: 0,
            pending: SlotWindow::new(0),
            retained: VecDeque::new(),
            retained_weight: 0,
            dropped_weight: 0,
            dropped_below: 0,
            commit_ballot: Ballot::ZERO,
            commit_upto: 0,
            horizon: 0,
            committed_below: 0,
            stalled_ticks: 0,
            asked_from: None,
            asked_to: 0,
            query: 0,
            recovery: None,
            ask_leader: false,
            commit_heard: false,
            window_max: (config.pipeline_window as u64)
                .saturating_mul(8)
                .saturating_add((config.catchup_chunk as u64).saturating_mul(CATCHUP_BURST + 1)),
            epoch: 0,
            ignored: 0,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        })
    }

    /// A learner that resumes at `slot`, every slot below having been applied
    /// from a snapshot.
    pub(crate) fn starting_at(config: &Config, slot: Slot) -> Result<Self, ConfigError> {
        let mut l = Learner::new(config)?;
        l.next = slot;
        l.horizon = slot;
        l.pending = SlotWindow::new(slot);
        Ok(l)
    }

    /// The stop-sign just delivered started configuration `epoch` of
    /// `members` at the next slot: votes count against them from now on,
    /// and only votes of that configuration. Whatever was gathered for
    /// later slots is dropped: it was counted against the old members (or
    /// settled from their votes), which decide nothing past the stop-sign.
    /// Values known chosen are learned again from the new members.
    pub(crate) fn enter_epoch(&mut self, epoch: u64, members: &[NodeId]) {
        self.epoch = epoch;
        self.config.members = members.to_vec();
        self.pending = SlotWindow::new(self.next);
        self.recovery = None;
        self.asked_from = None;
        self.stalled_ticks = 0;
    }

    /// The proposer of the newest ballot whose commit point this learner
    /// heard: the latest leader it knows of.
    pub(crate) fn commit_leader(&self) -> Option<NodeId> {
        (self.commit_ballot != Ballot::ZERO).then_some(self.commit_ballot.node)
    }

    /// The delivered value of `slot`, if this learner still retains it.
    pub(crate) fn retained_value(&self, slot: Slot) -> Option<&Value<C>> {
        let first = self.next - self.retained.len() as Slot;
        slot.checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.retained.get(i))
    }

    pub(crate) fn set_ask_leader(&mut self, on: bool) {
        self.ask_leader = on;
    }

    /// The next slot this learner will deliver (every slot below was delivered).
    pub fn next_slot(&self) -> Slot {
        self.next
    }

    /// The learner catches up to this slot: a value is known to exist below
    /// it (not every slot below need be chosen yet).
    pub fn horizon(&self) -> Slot {
        self.horizon.max(self.next)
    }

    /// Messages ignored (from non-members, or out of range) so far.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// The retained chosen value of `slot`, if still held.
    pub fn decided(&self, slot: Slot) -> Option<&Value<C>> {
        slot.checked_sub(self.first_retained())
            .and_then(|i| self.retained.get(usize::try_from(i).ok()?))
    }

    /// The lowest slot whose value this learner still holds to serve catch-up
    /// (equal to [`Learner::next_slot`] when it holds none): slots below were
    /// dropped past `retain_slots` or `retain_commands`, or never seen
    /// because the learner started from a snapshot.
    pub fn first_retained(&self) -> Slot {
        self.next - self.retained.len() as Slot
    }

    /// Commands (no-ops counting one each) in the retained values: at most
    /// [`Config::retain_commands`] unless the newest value alone holds more.
    pub fn retained_commands(&self) -> u64 {
        self.retained_weight
    }

    /// Total weight of the values dropped from the retained ones because a
    /// bound was reached, since this learner was made: a server trims its
    /// acceptor once this has grown by `retain_commands`.
    pub(crate) fn dropped_weight(&self) -> u64 {
        self.dropped_weight
    }

    /// The highest slot below which the retained values' bounds (not a
    /// snapshot) dropped every value: the server's acceptor may trim its
    /// votes up to here.
    pub(crate) fn dropped_below(&self) -> Slot {
        self.dropped_below
    }

    /// Continues at `slot`, every slot below having been applied from a
    /// snapshot: drops what it knew below `slot` and every retained value
    /// (they no longer end at the next slot), keeping votes and the leader's
    /// commit point above. Does nothing unless `slot` is ahead.
    pub(crate) fn skip_to(&mut self, slot: Slot) {
        if slot <= self.next {
            return;
        }
        self.next = slot;
        self.horizon = self.horizon.max(slot);
        self.pending.advance_to(slot);
        self.retained.clear();
        self.retained_weight = 0;
        self.stalled_ticks = 0;
    }

    /// Handles one input; see [`Learner::step_into`].
    pub fn step<O, P>(&mut self, input: Input<C, P>) -> Vec<Action<C, O, P>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input and appends [`Action::Deliver`] for every slot that
    /// became deliverable, in slot order, plus any catch-up traffic.
    pub fn step_into<O, P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, O, P>>) {
        self.take(input, out);
        self.deliver(|slot, value| {
            out.push(Action::Deliver {
                slot,
                value: value.clone(),
            })
        });
        self.resume_catch_up(out);
    }

    /// Takes one input in, without delivering: what [`Learner::step_into`]
    /// does before its deliveries, for machines that deliver elsewhere.
    pub(crate) fn take<O, P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, O, P>>) {
        match input {
            Input::Tick => self.tick(out),
            // A learner keeps nothing durable: there is nothing to compact.
            Input::Propose(_)
            | Input::Read { .. }
            | Input::Checkpoint
            | Input::Transfer { .. }
            | Input::Reconfigure { .. } => {}
            Input::Receive { from, msg } => self.receive(from, msg, out),
        }
    }

    /// Handles a message from `from`. A vote counts only from an acceptor,
    /// a commit point only from the leader of its ballot, and chosen values
    /// only from a learner (or a client, which learns for itself).
    pub(crate) fn receive<O, P>(
        &mut self,
        from: Process,
        msg: Message<C, P>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let authentic = match &msg {
            Message::Accepted { .. } | Message::Votes { .. } => from.hosts(Role::Acceptor),
            Message::Heartbeat { ballot, .. } => owns_ballot(&from, *ballot),
            Message::Decided { .. } => from.roles.intersects(Roles::LEARNER.union(Roles::CLIENT)),
            _ => true,
        };
        if !authentic || !msg.is_well_formed() {
            self.ignore(msg.kind(), out);
            return;
        }
        match msg {
            Message::Accepted {
                ballot,
                slot,
                value: Some(value),
            } => self.vote(from.id, ballot, slot, value, out),
            Message::Heartbeat { ballot, commit, .. } => {
                self.commit(ballot, commit);
                self.commit_heard = true;
            }
            Message::CatchUp {
                from_slot, to_slot, ..
            } => self.serve(from, from_slot, to_slot, out),
            Message::Votes {
                first_slot,
                query,
                votes,
            } => self.answers(from.id, first_slot, query, votes, out),
            Message::Decided { first_slot, values } => {
                for (i, v) in values.into_iter().enumerate() {
                    self.chosen(first_slot.saturating_add(i as Slot), v, out);
                }
            }
            _ => {}
        }
    }

    /// Acceptor `from` accepted `value` in `slot` under `ballot`.
    pub(crate) fn vote<O, P>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        value: Value<C>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let Some(i) = self
            .config
            .member_index(from)
            .filter(|_| ballot.epoch() == self.epoch)
        else {
            self.ignore("accepted", out);
            return;
        };
        if !self.in_window(slot, out) {
            return;
        }
        let mut quorum = self.config.quorum();
        if bug!(self.bug, DeliverOnMinority) {
            quorum -= 1;
        }
        let committed = ballot == self.commit_ballot && slot < self.commit_upto;
        let entry = self.pending.entry(slot);
        match entry {
            Some(Pending::Chosen(_)) => return,
            Some(Pending::Votes {
                ballot: b, acks, ..
            }) if *b >= ballot => {
                if *b > ballot {
                    return; // a late vote from an older ballot
                }
                *acks |= 1 << i;
            }
            _ => {
                *entry = Some(Pending::Votes {
                    ballot,
                    value,
                    acks: 1 << i,
                })
            }
        }
        if let Some(Pending::Votes { value, acks, .. }) = entry {
            if committed || acks.count_ones() as usize >= quorum {
                let value = core::mem::replace(value, Value::Noop);
                *entry = Some(Pending::Chosen(value));
                self.horizon = self.horizon.max(slot + 1);
            }
        }
    }

    /// The leader of `ballot` says every slot below `upto` is chosen.
    pub(crate) fn commit(&mut self, ballot: Ballot, upto: Slot) {
        self.horizon = self.horizon.max(upto);
        self.committed_below = self.committed_below.max(upto);
        if ballot < self.commit_ballot {
            return;
        }
        if ballot > self.commit_ballot {
            self.commit_ballot = ballot;
            self.commit_upto = 0;
        }
        if upto <= self.commit_upto {
            return;
        }
        let from = self.commit_upto.max(self.next);
        self.commit_upto = upto;
        for slot in from..upto.min(self.pending.end()) {
            if let Some(p) = self.pending.get_mut(slot) {
                if let Pending::Votes {
                    ballot: b, value, ..
                } = p
                {
                    if *b == ballot || bug!(self.bug, CommitAnyBallot) {
                        let value = core::mem::replace(value, Value::Noop);
                        *p = Pending::Chosen(value);
                    }
                }
            }
        }
    }

    /// `slot` is known to be chosen with `value`.
    pub(crate) fn chosen<O, P>(
        &mut self,
        slot: Slot,
        value: Value<C>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if !self.in_window(slot, out) {
            return;
        }
        *self.pending.entry(slot) = Some(Pending::Chosen(value));
        self.horizon = self.horizon.max(slot + 1);
    }

    /// `slot` is known to be chosen with `value` by this node's own
    /// proposer: a quorum accepted it in the proposer's ballot. Unlike a
    /// value from a peer it is taken however far past the window it lies:
    /// the proposer held it in its own window of open slots until now, so
    /// keeping it costs no more memory than the node already spent, while
    /// dropping it would leave the slot to catch-up, one chunk per round
    /// trip, although this node knows its value. (A leader elected while
    /// its learner lags re-proposes every open slot at once; without this
    /// it could not apply a new command before fetching them all again.)
    pub(crate) fn chosen_here(&mut self, slot: Slot, value: Value<C>) {
        if slot < self.next {
            return; // already delivered
        }
        *self.pending.entry(slot) = Some(Pending::Chosen(value));
        self.horizon = self.horizon.max(slot + 1);
    }

    fn in_window<O, P>(&mut self, slot: Slot, out: &mut Vec<Action<C, O, P>>) -> bool {
        if slot < self.next {
            return false; // already delivered: a duplicate, harmless
        }
        if slot - self.next >= self.window_max {
            self.ignore("accepted", out);
            return false;
        }
        true
    }

    /// Delivers every slot that is ready, in order, calling `f` for each.
    pub(crate) fn deliver(&mut self, mut f: impl FnMut(Slot, &Value<C>)) {
        while let Some(Pending::Chosen(_)) = self.pending.front() {
            let Some(Pending::Chosen(value)) = self.pending.pop_front() else {
                unreachable!("front was checked");
            };
            f(self.next, &value);
            self.next += 1;
            self.stalled_ticks = 0;
            let stop = value.stop_sign().is_some();
            self.retain(value);
            if stop {
                // The slots after a stop-sign belong to the next
                // configuration: its owner switches (see
                // `Learner::enter_epoch`) before delivering on.
                break;
            }
        }
    }

    /// Keeps the value just delivered for catch-up, dropping the oldest
    /// values while either bound, slots or commands, is exceeded; the newest
    /// is always kept.
    fn retain(&mut self, value: Value<C>) {
        self.retained_weight += value.retained_weight();
        self.retained.push_back(value);
        let mut dropped = false;
        while self.retained.len() > 1
            && (self.retained.len() as u64 > self.config.retain_slots
                || self.retained_weight > self.config.retain_commands)
        {
            let old = self.retained.pop_front().expect("more than one retained");
            let weight = old.retained_weight();
            self.retained_weight -= weight;
            self.dropped_weight += weight;
            dropped = true;
        }
        if dropped {
            self.dropped_below = self.first_retained();
        }
    }

    /// One tick: if a known-chosen slot has been missing for `catchup_ticks`,
    /// ask for a chunk of the missing slots.
    pub(crate) fn tick<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        if self.horizon() <= self.next {
            self.stalled_ticks = 0;
            self.asked_from = None;
            return;
        }
        self.stalled_ticks += 1;
        if self.stalled_ticks < self.config.catchup_ticks {
            return;
        }
        self.ask(out);
    }

    /// After deliveries: if they answered our last catch-up request and a
    /// gap is left, ask for the next chunk now instead of a timeout later,
    /// so that catching up runs at a chunk per round trip, not per
    /// `catchup_ticks`.
    ///
    /// With learners apart, also ask at once when a leader's commit point
    /// just arrived and covers the next slot while its value is missing.
    /// The leader announces a slot chosen only after a quorum's votes
    /// reached it, and each acceptor sends its vote to the learners before
    /// it answers the leader, so a vote the learner lacks by then was lost:
    /// nothing but catch-up will bring the value, and waiting
    /// `catchup_ticks` first only delays every later slot. Once per slot;
    /// the stall timer repeats the request if it goes unanswered.
    pub(crate) fn resume_catch_up<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        if core::mem::take(&mut self.commit_heard)
            && self.config.learners_apart
            && self.next < self.committed_below
            && self.asked_from != Some(self.next)
        {
            self.ask(out);
            return;
        }
        let Some(from) = self.asked_from else {
            return;
        };
        if self.next <= from || self.next < self.asked_to {
            // Nothing yet, or the rest of the burst is on its way.
            return;
        }
        if self.horizon() > self.next {
            self.ask(out);
        } else {
            self.asked_from = None;
        }
    }

    /// Asks for a chunk of the missing slots from `next` on. The acceptors'
    /// answers can settle only those known chosen when the query goes out,
    /// below a leader's commit point (see [`Message::Votes`]).
    fn ask<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        self.stalled_ticks = 0;
        // Asking again from the same slot: the last request did not help.
        let again = self.asked_from == Some(self.next);
        self.asked_from = Some(self.next);
        let to_slot = self.horizon().min(
            self.next
                .saturating_add((self.config.catchup_chunk as Slot).saturating_mul(CATCHUP_BURST)),
        );
        self.asked_to = to_slot;
        self.query += 1;
        let blank = Report {
            answered: 0,
            best: None,
            settled: false,
        };
        let known_chosen = to_slot.min(self.committed_below).saturating_sub(self.next);
        self.recovery = Some(Recovery {
            query: self.query,
            first: self.next,
            slots: alloc::vec![blank; known_chosen as usize],
        });
        let query = self.query;
        let ask = |to| Action::Send {
            to,
            msg: Message::CatchUp {
                from_slot: self.next,
                to_slot,
                query,
            },
        };
        if !self.ask_leader {
            // Apart from the other roles, the values are with the other
            // learners, or only with the acceptors if every vote for a slot
            // was lost on the way to the learners.
            out.push(ask(Destination::Group(Roles::LEARNER)));
            out.push(ask(Destination::Group(Roles::ACCEPTOR)));
            return;
        }
        // The leader has every chosen value unless it is the one lagging (a
        // follower that won an election before catching up): then, or when
        // asking the leader did not help, ask everyone; a server whose own
        // learner lags answers with its acceptor's votes.
        let leader = self.commit_ballot.node;
        if self.commit_ballot != Ballot::ZERO && leader != self.config.id && !again {
            out.push(ask(Destination::to(Role::Learner, leader)));
        } else {
            out.push(ask(Destination::Group(Roles::LEARNER)));
        }
    }

    /// Acceptor `from` answered catch-up query `query` with its votes from
    /// `first_slot` on. A slot that a majority answered is chosen with the
    /// value of their highest-ballot vote: it was chosen before the query
    /// went out, so every acceptor of the majority that chose it had voted
    /// by the time it answered, in that ballot or a later one, and every
    /// later ballot carries the chosen value.
    fn answers<O, P>(
        &mut self,
        from: NodeId,
        first_slot: Slot,
        query: u64,
        votes: Vec<Option<(Ballot, Value<C>)>>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let Some(i) = self.config.member_index(from) else {
            self.ignore("votes", out);
            return;
        };
        let quorum = self.config.quorum();
        let next = self.next;
        let epoch = self.epoch;
        let Some(r) = self.recovery.as_mut().filter(|r| r.query == query) else {
            return; // an answer to an older query
        };
        let mut settled = Vec::new();
        for (slot, vote) in (first_slot..).zip(votes) {
            let Some(k) = slot.checked_sub(r.first).map(|k| k as usize) else {
                continue;
            };
            let Some(report) = r.slots.get_mut(k) else {
                break;
            };
            if report.settled {
                continue;
            }
            report.answered |= 1 << i;
            // A vote of another configuration is no vote in this one (a
            // member still in the old one holds votes past its stop-sign
            // that can never be chosen).
            if let Some((b, v)) = vote.filter(|(b, _)| b.epoch() == epoch) {
                let better = |best: &Ballot| {
                    if bug!(self.bug, VotesLowestBallot) {
                        b < *best
                    } else {
                        b > *best
                    }
                };
                if report.best.as_ref().is_none_or(|(best, _)| better(best)) {
                    report.best = Some((b, v));
                }
            }
            if slot >= next && report.answered.count_ones() as usize >= quorum {
                if let Some((_, v)) = report.best.take() {
                    report.settled = true;
                    settled.push((slot, v));
                }
            }
        }
        for (slot, value) in settled {
            self.chosen(slot, value, out);
        }
    }

    /// Answers a peer's catch-up request from the retained values.
    fn serve<O, P>(
        &mut self,
        from: Process,
        from_slot: Slot,
        to_slot: Slot,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let first = self.first_retained();
        if from_slot < first || from_slot >= self.next {
            // Nothing to give. Below `first` only a snapshot helps, which a
            // Server sends instead of asking its learner.
            return;
        }
        let chunk = self.config.catchup_chunk.max(1) as Slot;
        let to_slot = to_slot
            .min(self.next)
            .min(from_slot.saturating_add(chunk.saturating_mul(CATCHUP_BURST)));
        let mut first_slot = from_slot;
        while first_slot < to_slot {
            let end_slot = to_slot.min(first_slot.saturating_add(chunk));
            let values = self
                .retained
                .range((first_slot - first) as usize..(end_slot - first) as usize)
                .cloned()
                .collect();
            out.push(Action::send_to(
                from.addr(),
                Message::Decided { first_slot, values },
            ));
            first_slot = end_slot;
        }
    }

    fn ignore<O, P>(&mut self, kind: &'static str, out: &mut Vec<Action<C, O, P>>) {
        self.ignored += 1;
        out.push(Action::Event(Event::Ignored { kind }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use alloc::vec;

    type A = Action<u64, ()>;
    const QUORUM_MEMBERS: [u32; 3] = [1, 2, 3];

    fn learner(id: u32) -> Learner<u64> {
        let members = QUORUM_MEMBERS.iter().map(|&m| NodeId(m)).collect();
        Learner::new(&Config::new(NodeId(id), members)).unwrap()
    }

    fn one(op: u64) -> Value<u64> {
        Value::One(Command {
            client: 1,
            seq: op,
            op,
        })
    }

    fn acceptor(id: u32) -> Process {
        Process::only(Role::Acceptor, NodeId(id))
    }

    /// The process of the proposer that owns `ballot`.
    fn leader(ballot: Ballot) -> Process {
        Process::only(Role::Proposer, ballot.node)
    }

    fn asker() -> Process {
        Process::only(Role::Learner, NodeId(5))
    }

    fn accepted(from: u32, round: u64, slot: Slot, op: u64) -> Input<u64> {
        Input::Receive {
            from: acceptor(from),
            msg: Message::Accepted {
                ballot: Ballot::new(round, NodeId(1)),
                slot,
                value: Some(one(op)),
            },
        }
    }

    fn delivered(out: &[A]) -> Vec<(Slot, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Deliver { slot, value } => Some((*slot, value.commands()[0].op)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn learner_needs_a_majority_of_distinct_acceptors() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        assert!(
            delivered(&out).is_empty(),
            "one acceptor twice is not a quorum"
        );
        l.step_into(accepted(2, 1, 0, 7), &mut out);
        assert_eq!(delivered(&out), [(0, 7)]);
    }

    #[test]
    fn learner_never_combines_votes_from_different_ballots() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        l.step_into(accepted(2, 2, 0, 8), &mut out);
        assert!(delivered(&out).is_empty());
        l.step_into(accepted(3, 2, 0, 8), &mut out);
        assert_eq!(delivered(&out), [(0, 8)]);
    }

    #[test]
    fn learner_delivers_in_slot_order_each_slot_once() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        for slot in [2, 0, 1] {
            l.step_into(accepted(1, 1, slot, slot * 10), &mut out);
            l.step_into(accepted(2, 1, slot, slot * 10), &mut out);
            l.step_into(accepted(3, 1, slot, slot * 10), &mut out);
        }
        assert_eq!(delivered(&out), [(0, 0), (1, 10), (2, 20)]);
    }

    #[test]
    fn commit_point_chooses_only_values_seen_in_the_leaders_ballot() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        l.step_into(accepted(1, 2, 1, 8), &mut out);
        let hb = |round| Input::Receive {
            from: leader(Ballot::new(round, NodeId(1))),
            msg: Message::Heartbeat {
                ballot: Ballot::new(round, NodeId(1)),
                commit: 2,
                beat: 1,
            },
        };
        l.step_into(hb(2), &mut out);
        assert!(
            delivered(&out).is_empty(),
            "slot 0's vote is from another ballot"
        );
        l.step_into(hb(1), &mut out);
        assert!(
            delivered(&out).is_empty(),
            "an older leader's commit is ignored"
        );
    }

    #[test]
    fn stalled_learner_asks_for_missing_slots_after_catchup_ticks() {
        let mut l = learner(9);
        l.set_ask_leader(true);
        let mut out: Vec<A> = Vec::new();
        l.commit(Ballot::new(1, NodeId(2)), 5);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        let asks: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .collect();
        assert_eq!(
            asks,
            [&Action::Send {
                to: Destination::to(Role::Learner, NodeId(2)),
                msg: Message::CatchUp {
                    from_slot: 0,
                    to_slot: 5,
                    query: 1
                }
            }]
        );
    }

    #[test]
    fn standalone_learner_asks_other_learners_and_the_acceptors() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.commit(Ballot::new(1, NodeId(2)), 5);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        let ask = |to| Action::Send {
            to,
            msg: Message::CatchUp {
                from_slot: 0,
                to_slot: 5,
                query: 1,
            },
        };
        assert_eq!(
            out,
            [
                ask(Destination::Group(Roles::LEARNER)),
                ask(Destination::Group(Roles::ACCEPTOR))
            ]
        );
    }

    #[test]
    fn lagging_leader_asks_every_learner_not_itself() {
        let mut l = learner(2);
        l.set_ask_leader(true);
        let mut out: Vec<A> = Vec::new();
        l.commit(Ballot::new(1, NodeId(2)), 5);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        assert!(matches!(
            out[..],
            [Action::Send {
                to: Destination::Group(Roles::LEARNER),
                ..
            }]
        ));
    }

    #[test]
    fn catch_up_is_served_from_retained_values() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        for slot in 0..3 {
            l.step_into(accepted(1, 1, slot, slot), &mut out);
            l.step_into(accepted(2, 1, slot, slot), &mut out);
        }
        out.clear();
        l.step_into(
            Input::Receive {
                from: asker(),
                msg: Message::CatchUp {
                    from_slot: 1,
                    to_slot: 100,
                    query: 0,
                },
            },
            &mut out,
        );
        assert_eq!(
            out,
            [Action::Send {
                to: Destination::to(Role::Learner, NodeId(5)),
                msg: Message::Decided {
                    first_slot: 1,
                    values: vec![one(1), one(2)]
                }
            }]
        );
    }

    fn heartbeat(round: u64, commit: Slot) -> Input<u64> {
        Input::Receive {
            from: leader(Ballot::new(round, NodeId(1))),
            msg: Message::Heartbeat {
                ballot: Ballot::new(round, NodeId(1)),
                commit,
                beat: 1,
            },
        }
    }

    #[test]
    fn one_vote_in_the_leaders_ballot_plus_its_commit_point_is_enough() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        l.step_into(heartbeat(1, 1), &mut out);
        assert_eq!(delivered(&out), [(0, 7)], "commit after the vote");
        l.step_into(heartbeat(1, 2), &mut out);
        l.step_into(accepted(2, 1, 1, 8), &mut out);
        assert_eq!(delivered(&out), [(0, 7), (1, 8)], "vote after the commit");
        l.step_into(accepted(2, 1, 3, 9), &mut out);
        assert_eq!(
            delivered(&out).len(),
            2,
            "slot 3 is beyond the commit point"
        );
    }

    #[test]
    fn apart_a_commit_point_over_a_missing_value_makes_the_learner_ask_at_once() {
        let members: Vec<NodeId> = QUORUM_MEMBERS.iter().map(|&m| NodeId(m)).collect();
        let mut config = Config::new(NodeId(9), members);
        config.learners_apart = true;
        let mut l = Learner::<u64>::new(&config).unwrap();
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 0, 7), &mut out);
        l.step_into(heartbeat(1, 1), &mut out);
        assert_eq!(delivered(&out), [(0, 7)]);
        assert!(
            !out.iter().any(|a| matches!(a, Action::Send { .. })),
            "nothing is missing"
        );
        // Slot 1 is chosen and no vote for it arrived: ask now, no tick.
        out.clear();
        l.step_into(heartbeat(1, 3), &mut out);
        let ask = |to| Action::Send {
            to,
            msg: Message::CatchUp {
                from_slot: 1,
                to_slot: 3,
                query: 1,
            },
        };
        assert_eq!(
            out,
            [
                ask(Destination::Group(Roles::LEARNER)),
                ask(Destination::Group(Roles::ACCEPTOR))
            ]
        );
        // The same gap is asked for once; the stall timer repeats it.
        out.clear();
        l.step_into(heartbeat(1, 3), &mut out);
        l.step_into(accepted(2, 1, 4, 9), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Learners in servers wait for catchup_ticks, as before.
        let mut l = learner(9);
        l.step_into(heartbeat(1, 2), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_slot_chosen_by_votes_beyond_a_gap_makes_the_learner_ask_up_to_it() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 1, 2, 7), &mut out);
        l.step_into(accepted(2, 1, 2, 7), &mut out);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: Message::CatchUp {
                    from_slot: 0,
                    to_slot: 3,
                    ..
                },
                ..
            }
        )));
    }

    #[test]
    fn an_older_commit_point_of_the_same_leader_does_not_lower_it() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(heartbeat(1, 5), &mut out);
        l.step_into(heartbeat(1, 3), &mut out);
        for slot in 0..5 {
            l.step_into(accepted(1, 1, slot, slot), &mut out);
        }
        assert_eq!(delivered(&out).len(), 5, "one vote each, under commit 5");
    }

    #[test]
    fn a_late_vote_from_an_older_ballot_never_counts_toward_a_newer_quorum() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 2, 0, 20), &mut out);
        l.step_into(accepted(2, 1, 0, 10), &mut out);
        assert_eq!(delivered(&out), [], "one vote in ballot 2 is no quorum");
    }

    #[test]
    fn a_late_vote_from_an_older_ballot_does_not_displace_newer_votes() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(accepted(1, 2, 0, 20), &mut out);
        l.step_into(accepted(2, 1, 0, 10), &mut out);
        l.step_into(accepted(3, 2, 0, 20), &mut out);
        assert_eq!(delivered(&out), [(0, 20)]);
    }

    #[test]
    fn learner_keeps_delivered_values_and_counts_what_it_ignores() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        for slot in 0..3 {
            l.step_into(accepted(1, 1, slot, slot * 10), &mut out);
            l.step_into(accepted(2, 1, slot, slot * 10), &mut out);
        }
        assert_eq!(l.decided(1), Some(&one(10)));
        assert_eq!(l.decided(3), None);
        l.step_into(accepted(7, 1, 4, 1), &mut out);
        assert_eq!(l.ignored(), 1, "a vote from a non-member");
    }

    #[test]
    fn a_chosen_slot_beyond_a_gap_makes_the_learner_ask_for_the_gap() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.step_into(
            Input::Receive {
                from: Process::only(Role::Learner, NodeId(2)),
                msg: Message::Decided {
                    first_slot: 2,
                    values: vec![one(2)],
                },
            },
            &mut out,
        );
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: Message::CatchUp {
                    from_slot: 0,
                    to_slot: 3,
                    ..
                },
                ..
            }
        )));
    }

    #[test]
    fn the_learners_window_is_measured_from_its_next_slot() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        for slot in 0..3 {
            l.step_into(accepted(1, 1, slot, slot), &mut out);
            l.step_into(accepted(2, 1, slot, slot), &mut out);
        }
        let last_in_window = l.next_slot() + l.window_max - 1;
        l.step_into(accepted(1, 1, last_in_window, 1), &mut out);
        assert_eq!(l.ignored(), 0);
        l.step_into(accepted(1, 1, last_in_window + 1, 1), &mut out);
        assert_eq!(l.ignored(), 1);
    }

    #[test]
    fn catch_up_serves_only_what_is_still_retained() {
        let members = QUORUM_MEMBERS.iter().map(|&m| NodeId(m)).collect();
        let mut config = Config::new(NodeId(9), members);
        config.retain_slots = 2;
        let mut l = Learner::new(&config).unwrap();
        let mut out: Vec<A> = Vec::new();
        for slot in 0..5 {
            l.step_into(accepted(1, 1, slot, slot), &mut out);
            l.step_into(accepted(2, 1, slot, slot), &mut out);
        }
        let ask = |from_slot, to_slot| Input::Receive {
            from: asker(),
            msg: Message::CatchUp {
                from_slot,
                to_slot,
                query: 0,
            },
        };
        out.clear();
        l.step_into(ask(0, 5), &mut out);
        l.step_into(ask(5, 9), &mut out);
        assert!(
            out.is_empty(),
            "slots 0..3 were dropped and 5 is not decided yet"
        );
        l.step_into(ask(3, 9), &mut out);
        assert_eq!(
            out,
            [Action::Send {
                to: Destination::to(Role::Learner, NodeId(5)),
                msg: Message::Decided {
                    first_slot: 3,
                    values: vec![one(3), one(4)]
                }
            }]
        );
    }

    use crate::types::test_batch as batch;

    #[test]
    fn retained_values_are_bounded_by_commands_as_well_as_slots() {
        let members = QUORUM_MEMBERS.iter().map(|&m| NodeId(m)).collect();
        let mut config = Config::new(NodeId(9), members);
        config.retain_slots = 1_000;
        config.retain_commands = 25;
        let mut l = Learner::new(&config).unwrap();
        let mut out: Vec<A> = Vec::new();
        let decided = |l: &mut Learner<u64>, slot, value, out: &mut Vec<A>| {
            l.step_into(
                Input::Receive {
                    from: asker(),
                    msg: Message::Decided {
                        first_slot: slot,
                        values: vec![value],
                    },
                },
                out,
            )
        };
        for slot in 0..100 {
            decided(&mut l, slot, batch(slot * 10, 10), &mut out);
            assert!(l.retained_commands() <= 25, "slot {slot}");
        }
        assert_eq!(l.next_slot(), 100);
        assert_eq!(
            (l.first_retained(), l.retained_commands()),
            (98, 20),
            "a third batch would pass 25 commands"
        );
        assert_eq!(l.decided(97), None);
        assert_eq!(l.decided(99), Some(&batch(990, 10)));
        // A no-op counts as one command; a batch larger than the bound is
        // still kept, alone, as the newest value.
        decided(&mut l, 100, Value::Noop, &mut out);
        assert_eq!((l.first_retained(), l.retained_commands()), (98, 21));
        decided(&mut l, 101, batch(2000, 40), &mut out);
        assert_eq!((l.first_retained(), l.retained_commands()), (101, 40));
        // Catch-up is served from what is left, and only from it.
        out.clear();
        l.step_into(
            Input::Receive {
                from: asker(),
                msg: Message::CatchUp {
                    from_slot: 100,
                    to_slot: 102,
                    query: 0,
                },
            },
            &mut out,
        );
        assert!(out.is_empty(), "slot 100 was dropped");
    }

    #[test]
    fn votes_commit_points_and_values_count_only_from_the_roles_that_send_them() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        let from = |from, msg| Input::Receive { from, msg };
        let vote = Message::Accepted {
            ballot: Ballot::new(1, NodeId(1)),
            slot: 0,
            value: Some(one(7)),
        };
        // Two votes from learners posing with acceptors' ids.
        for id in [1, 2] {
            l.step_into(
                from(Process::only(Role::Learner, NodeId(id)), vote.clone()),
                &mut out,
            );
        }
        // A commit point from someone who does not own the ballot.
        let hb = Message::Heartbeat {
            ballot: Ballot::new(1, NodeId(1)),
            commit: 1,
            beat: 1,
        };
        l.step_into(from(Process::only(Role::Proposer, NodeId(2)), hb), &mut out);
        // Chosen values from an acceptor, which never sends them.
        let decided = Message::Decided {
            first_slot: 0,
            values: vec![one(7)],
        };
        l.step_into(from(acceptor(1), decided), &mut out);
        assert_eq!(delivered(&out), []);
        assert_eq!(l.ignored(), 4);
    }

    /// A learner asking `catchup_chunk` slots per chunk.
    fn chunked(chunk: usize) -> Learner<u64> {
        let members = QUORUM_MEMBERS.iter().map(|&m| NodeId(m)).collect();
        let mut config = Config::new(NodeId(9), members);
        config.catchup_chunk = chunk;
        Learner::new(&config).unwrap()
    }

    /// Slots `0..n` chosen and delivered here, to serve catch-up from.
    fn holding(l: &mut Learner<u64>, n: Slot) {
        for slot in 0..n {
            l.chosen_here(slot, one(slot));
        }
        l.deliver(|_, _| {});
    }

    /// Knows slots below `commit` chosen and stalls until it asks.
    fn stalled(l: &mut Learner<u64>, commit: Slot, out: &mut Vec<A>) {
        l.commit(Ballot::new(1, NodeId(2)), commit);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, out);
        }
    }

    /// The catch-up requests sent: (from, to).
    fn asks(out: &[A]) -> Vec<(Slot, Slot)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg:
                        Message::CatchUp {
                            from_slot, to_slot, ..
                        },
                    ..
                } => Some((*from_slot, *to_slot)),
                _ => None,
            })
            .collect()
    }

    /// The catch-up answers sent: (first slot, values).
    fn answers_sent(out: &[A]) -> Vec<(Slot, usize)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg: Message::Decided { first_slot, values },
                    ..
                } => Some((*first_slot, values.len())),
                _ => None,
            })
            .collect()
    }

    /// A peer learner asks for `from_slot..100`.
    fn asked_from(from_slot: Slot) -> Input<u64> {
        Input::Receive {
            from: Process::only(Role::Learner, NodeId(3)),
            msg: Message::CatchUp {
                from_slot,
                to_slot: 100,
                query: 3,
            },
        }
    }

    /// A peer learner's answer: slots `first` and `first + 1`.
    fn two_from(first: Slot) -> Input<u64> {
        Input::Receive {
            from: Process::only(Role::Learner, NodeId(2)),
            msg: Message::Decided {
                first_slot: first,
                values: vec![one(first), one(first + 1)],
            },
        }
    }

    #[test]
    fn a_catch_up_reply_that_leaves_a_gap_asks_for_the_next_chunk_at_once() {
        let mut l = chunked(2);
        let mut out: Vec<A> = Vec::new();
        stalled(&mut l, 20, &mut out);
        // A burst of four chunks of two slots.
        assert_eq!(asks(&out), [(0, 8), (0, 8)], "learners and acceptors");
        out.clear();
        l.step_into(two_from(0), &mut out);
        assert_eq!(delivered(&out), [(0, 0), (1, 1)]);
        assert_eq!(asks(&out), [], "the rest of the burst is on its way");
        for first in [2, 4, 6] {
            l.step_into(two_from(first), &mut out);
        }
        assert_eq!(delivered(&out).len(), 8);
        assert_eq!(asks(&out), [(8, 16), (8, 16)], "no wait for catchup_ticks");
    }

    /// A burst that brings the learner up to everything known chosen asks
    /// for nothing more.
    #[test]
    fn a_catch_up_burst_that_closes_the_gap_asks_no_more() {
        let mut l = chunked(2);
        let mut out: Vec<A> = Vec::new();
        stalled(&mut l, 8, &mut out);
        out.clear();
        for first in [0, 2, 4, 6] {
            l.step_into(two_from(first), &mut out);
        }
        assert_eq!(delivered(&out).len(), 8);
        assert_eq!(asks(&out), [], "nothing is missing");
    }

    /// A peer answers a burst of catch-up in chunks of `catchup_chunk`
    /// values, one message each, up to what it retains.
    #[test]
    fn a_catch_up_burst_is_answered_in_chunks() {
        let mut l = chunked(2);
        holding(&mut l, 20);
        let mut ask = |from_slot| answers_sent(&l.step(asked_from(from_slot)));
        assert_eq!(ask(1), [(1, 2), (3, 2), (5, 2), (7, 2)], "four chunks");
        assert_eq!(ask(15), [(15, 2), (17, 2), (19, 1)], "up to slot 20, known");
    }

    /// The largest chunk a config allows overflows nothing: catch-up asks,
    /// answers and the window saturate instead of panicking.
    #[test]
    fn a_huge_catchup_chunk_neither_panics_nor_wraps() {
        let mut l = chunked(usize::MAX);
        let mut out: Vec<A> = Vec::new();
        holding(&mut l, 3);
        stalled(&mut l, 10, &mut out);
        assert_eq!(asks(&out), [(3, 10), (3, 10)], "up to what is known");
        let out: Vec<A> = l.step(asked_from(0));
        assert_eq!(answers_sent(&out), [(0, 3)], "one chunk holds all it has");
    }

    #[test]
    fn a_majority_answering_a_query_settles_a_known_chosen_slot_with_its_highest_ballot_vote() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        // Slot 0 is chosen (the leader's commit point says so), but the
        // acceptors' votes for it sit in two ballots.
        l.commit(Ballot::new(5, NodeId(2)), 1);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        let answer = |id: u32, query, vote: Option<(u64, u64)>| Input::Receive {
            from: acceptor(id),
            msg: Message::Votes {
                first_slot: 0,
                query,
                votes: vec![vote.map(|(round, op)| (Ballot::new(round, NodeId(1)), one(op)))],
            },
        };
        // An answer to an older query proves nothing about now.
        l.step_into(answer(1, 0, Some((1, 7))), &mut out);
        l.step_into(answer(2, 0, Some((1, 7))), &mut out);
        assert!(delivered(&out).is_empty());
        // One acceptor is no majority, whatever it holds.
        l.step_into(answer(1, 1, Some((1, 7))), &mut out);
        assert!(delivered(&out).is_empty());
        // Acceptor 3 voted in a later ballot: its value is the chosen one.
        l.step_into(answer(3, 1, Some((4, 8))), &mut out);
        assert_eq!(delivered(&out), [(0, 8)]);
    }

    /// A slot settled by a majority's answers stays settled while an
    /// earlier slot is still missing: a late answer holding an older vote
    /// (one of a ballot that never got the slot chosen) changes nothing.
    /// Found by the sweep once catch-up asked for several chunks at once.
    #[test]
    fn a_late_answer_never_unsettles_a_slot_a_majority_settled() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        l.commit(Ballot::new(5, NodeId(2)), 2);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        let answer = |id: u32, slot, round, op| Input::Receive {
            from: acceptor(id),
            msg: Message::Votes {
                first_slot: slot,
                query: 1,
                votes: vec![Some((Ballot::new(round, NodeId(1)), one(op)))],
            },
        };
        l.step_into(answer(2, 1, 4, 8), &mut out);
        l.step_into(answer(3, 1, 4, 8), &mut out);
        l.step_into(answer(1, 1, 1, 7), &mut out);
        assert!(delivered(&out).is_empty(), "slot 0 is still missing");
        l.step_into(answer(1, 0, 4, 6), &mut out);
        l.step_into(answer(2, 0, 4, 6), &mut out);
        assert_eq!(delivered(&out), [(0, 6), (1, 8)]);
    }

    #[test]
    fn answers_never_settle_a_slot_that_is_only_before_a_chosen_one() {
        let mut l = learner(9);
        let mut out: Vec<A> = Vec::new();
        // Slot 1 is chosen by a majority; slot 0 may not be chosen at all.
        l.step_into(accepted(1, 1, 1, 5), &mut out);
        l.step_into(accepted(2, 1, 1, 5), &mut out);
        for _ in 0..l.config.catchup_ticks {
            l.step_into(Input::Tick, &mut out);
        }
        for id in [1, 2, 3] {
            l.step_into(
                Input::Receive {
                    from: acceptor(id),
                    msg: Message::Votes {
                        first_slot: 0,
                        query: 1,
                        votes: vec![Some((Ballot::new(1, NodeId(1)), one(4)))],
                    },
                },
                &mut out,
            );
        }
        assert_eq!(delivered(&out), [], "one vote each is no choice");
    }
}
