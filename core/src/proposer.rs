//! The proposer: leader election by ticks, one phase 1 for every open slot, and a
//! pipelined, batching phase 2. Only the leader proposes; the others stand by.

use crate::acceptor::owns_ballot;
use crate::action::{Action, Checkpoint, DropReason, Event, Input, ReconfigureRefusal, Record};
use crate::address::{Destination, Process, Role, Roles};
use crate::config::Config;
use crate::error::ConfigError;
use crate::message::Message;
use crate::types::{Ballot, ClientId, Command, NodeId, PValue, Slot, Value};
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
    /// Tickets handed out before this slot's commands left the queue: once
    /// the slot is chosen, every command with a smaller ticket is settled.
    tickets_end: u64,
}

/// How long, in election timeouts, a client refused as overloaded keeps
/// its place in the waiting room without retrying. Longer than a client's
/// longest back-off in every configuration we ship, short enough that a
/// client that gave up does not hold room for long.
pub(crate) const WAIT_ROOM_TIMEOUTS: u64 = 4;

/// Places in the waiting room when `pending_max` is smaller: a few ids
/// cost little, and a room only as large as a tiny queue lets the clients
/// that retry fastest take every place.
const WAIT_ROOM_MIN: usize = 64;

/// Most places in the waiting room whatever `pending_max` is: `admit`
/// looks a client up by a linear scan on every command while the room is
/// occupied, so the room must stay small even when the queue is large.
const WAIT_ROOM_MAX: usize = 1024;

/// One proposer. A cluster may run several; randomised election timeouts and
/// back-off make one of them leader, and the rest follow it.
///
/// ```
/// use paxos_core::{Action, Config, Input, Message, NodeId, Proposer, ProposerState, Record};
/// let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
/// let mut proposer = Proposer::<String>::new(&config).unwrap();
/// let mut out: Vec<Action<String>> = Vec::new();
/// // Nobody leads: after a randomised election timeout it campaigns.
/// while proposer.state() == ProposerState::Follower {
///     proposer.step_into(Input::Tick, &mut out);
/// }
/// let ballot = proposer.ballot();
/// assert_eq!(out[0], Action::Persist(Record::Campaign(ballot)), "never reused after a crash");
/// assert!(matches!(out[1], Action::Send { msg: Message::Prepare { .. }, .. }));
/// ```
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
    /// Whether any message from another process arrived since the last
    /// campaign. A candidate that heard nothing at all keeps its ballot
    /// when its timeout runs out: a higher one would meet the same silence.
    heard_since_campaign: bool,
    timeout_ticks: u32,
    /// A follower gives a rival candidate one election timeout to win, once
    /// per leader it heard: a node that only hears candidates (everyone else
    /// reaches only it, say) must still campaign itself in the end, as it
    /// may be the only one that can reach a quorum.
    candidate_grace: bool,
    /// Ticks since the current leader was last heard, and its ballot.
    leader_contact_ticks: u32,
    leader_ballot: Ballot,
    // Leadership check: acceptors heard (bit mask) in the current window of
    // `election_timeout_ticks`; the bit of an acceptor in the same process,
    // which always follows its own proposer; heartbeats sent.
    heard: u64,
    /// `heard` of the last whole window (the promises, right after winning).
    heard_before: u64,
    own_bit: u64,
    check_ticks: u32,
    beat: u64,
    /// Per member (by index), the highest heartbeat of this leader's ballot
    /// it acknowledged: what read-index leadership confirmation counts.
    beat_acked: Vec<u64>,
    /// The leader this proposer gave way to as a candidate that could not
    /// win (see `yield_to`).
    yielded_to: Option<Ballot>,
    /// Every slot below is chosen *and* its value is held by a local learner.
    /// Phase 1 starts here: a slot merely reported chosen by a leader that
    /// may have crashed is re-proposed, which is safe (Paxos forces the same
    /// value) and is the only way to recover a value no learner kept.
    learned: Slot,
    /// The configuration this proposer campaigns in ([`Ballot::epoch`]).
    epoch: u64,
    /// A stop-sign may be chosen in this slot in our ballot (we proposed
    /// it, or phase 1 found it): nothing is proposed above it.
    sealed: Option<Slot>,
    /// A stop-sign asked for ([`Proposer::reconfigure`]) that waits for
    /// room in the pipeline.
    stop_pending: Option<Vec<NodeId>>,
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
    /// Per client, the highest `seq` this leader queued and that command's
    /// ticket (its place in the order commands entered the queue). A retry
    /// of a command still queued or in flight is not queued again: clients
    /// retry on a timer, and under load a leader that queued every retry
    /// would spend its slots on copies of old requests while new ones wait.
    unsettled: BTreeMap<ClientId, (u64, u64)>,
    /// Tickets handed out, and tickets taken off the queue into slots.
    tickets: u64,
    dequeued: u64,
    /// Every ticket below this is in a chosen slot.
    settled: u64,
    duplicates: u64,
    stepped_down: u64,
    bumped: u64,
    heartbeat_timer_ticks: u32,
    /// Clients refused as overloaded, oldest first, with the ticks since
    /// their latest refusal: the waiting room of a full queue. While a client
    /// waits, room that frees up goes to it before any newcomer, so a
    /// client that retries after a pause is not starved by clients that
    /// resubmit the moment they are answered. At most `pending_max` clients,
    /// but no fewer than [`WAIT_ROOM_MIN`] and no more than
    /// [`WAIT_ROOM_MAX`]; one that has not retried for [`WAIT_ROOM_TIMEOUTS`]
    /// election timeouts loses its place.
    waiting: VecDeque<(ClientId, u64)>,
    /// When set, chosen values are kept here for a co-located learner.
    report_chosen: bool,
    pub(crate) chosen: Vec<(Slot, Value<C>)>,
    ignored: u64,
    /// A rejoining server's probe ([`Proposer::probe_for_rejoin`]): the
    /// other acceptors that answered it, until a majority has.
    probe: Option<u64>,
    /// A rejoining server's proposer: past its probe it campaigns only
    /// when a leader hands it the lead ([`Proposer::take_over`]), never on
    /// its own timer.
    passive: bool,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<C: Clone> Proposer<C> {
    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
    }

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
            heard_since_campaign: false,
            timeout_ticks: 0,
            candidate_grace: true,
            leader_contact_ticks: u32::MAX,
            leader_ballot: Ballot::ZERO,
            heard: 0,
            heard_before: 0,
            own_bit: 0,
            check_ticks: 0,
            beat: 0,
            beat_acked: alloc::vec![0; config.members.len()],
            yielded_to: None,
            probe: None,
            passive: false,
            learned: 0,
            epoch: 0,
            sealed: None,
            stop_pending: None,
            promises: 0,
            adopted: BTreeMap::new(),
            prepare_from: 0,
            trimmed_max: 0,
            commit: 0,
            next_slot: 0,
            inflight: SlotWindow::new(0),
            queue: VecDeque::new(),
            unsettled: BTreeMap::new(),
            waiting: VecDeque::new(),
            tickets: 0,
            dequeued: 0,
            settled: 0,
            duplicates: 0,
            stepped_down: 0,
            bumped: 0,
            heartbeat_timer_ticks: 0,
            report_chosen: false,
            chosen: Vec::new(),
            ignored: 0,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
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
            Record::Trimmed(_) | Record::Rejoining | Record::Rejoined => {}
        }
    }

    /// The record that keeps this proposer from reusing a ballot after a
    /// restart: what its answer to [`Input::Checkpoint`] holds.
    pub(crate) fn checkpoint(&self) -> Record<C> {
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
    pub fn step<O, P>(&mut self, input: Input<C, P>) -> Vec<Action<C, O, P>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input, appending the resulting actions to `out`.
    pub fn step_into<O, P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, O, P>>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Propose(cmd) => self.propose(cmd, out),
            // Reads are served, and the lead handed over, by a `Server`
            // (a transfer lifts the leases and the leader stickiness that
            // only servers keep).
            Input::Read { .. } | Input::Transfer { .. } | Input::Reconfigure { .. } => {}
            Input::Receive { from, msg } => self.receive(from, msg, out),
            Input::Checkpoint => out.push(Action::Compact(alloc::boxed::Box::new(Checkpoint {
                snapshot: None,
                records: alloc::vec![self.checkpoint()],
            }))),
        }
    }

    /// Handles a message from `from`. Promises, refusals and votes count
    /// only from acceptors; a `Prepare`, `Accept` or `Heartbeat` only from
    /// the proposer that owns its ballot.
    pub(crate) fn receive<O, P>(
        &mut self,
        from: Process,
        msg: Message<C, P>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        self.heard_from_peer();
        let authentic = match &msg {
            Message::Promise { .. }
            | Message::Nack { .. }
            | Message::Accepted { .. }
            | Message::HeartbeatAck { .. } => from.hosts(Role::Acceptor),
            Message::Prepare { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Heartbeat { ballot, .. } => owns_ballot(&from, *ballot),
            _ => true,
        };
        if !authentic || !msg.is_well_formed() {
            self.ignored += 1;
            out.push(Action::Event(Event::Ignored { kind: msg.kind() }));
            return;
        }
        let from_process = from;
        let from = from.id;
        match msg {
            Message::Promise {
                ballot,
                trimmed_below,
                accepted,
            } => self.on_promise(from, ballot, trimmed_below, accepted, out),
            Message::Nack { ballot, promised } => self.on_nack(from, ballot, promised, false, out),
            Message::Accepted { ballot, slot, .. } => self.on_accepted(from, ballot, slot, out),
            Message::HeartbeatAck { ballot, beat } => {
                self.on_heartbeat_ack(from, ballot, beat, out)
            }
            Message::Heartbeat { ballot, .. } | Message::Accept { ballot, .. } => {
                self.observe_leader(ballot, out)
            }
            Message::Prepare { ballot, .. } => self.observe_candidate(ballot, out),
            Message::Forward { commands } => self.propose_forwarded(from_process, commands, out),
            Message::CatchUp { .. }
            | Message::Decided { .. }
            | Message::Votes { .. }
            | Message::Snapshot(_)
            | Message::Refused { .. }
            | Message::ReadIndex { .. }
            | Message::ReadIndexReply { .. }
            | Message::Handoff { .. }
            | Message::AskLead => {}
        }
    }

    /// One tick: election and heartbeat timers, retransmission.
    pub(crate) fn tick<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        if !self.waiting.is_empty() {
            let horizon = u64::from(self.config.election_timeout_ticks) * WAIT_ROOM_TIMEOUTS;
            self.waiting.retain_mut(|(_, age)| {
                *age += 1;
                *age <= horizon
            });
        }
        match self.state {
            ProposerState::Follower => {
                self.timer_ticks += 1;
                self.leader_contact_ticks = self.leader_contact_ticks.saturating_add(1);
                if self.timer_ticks >= self.timeout_ticks {
                    if self.passive && self.probe.is_none() {
                        self.timer_ticks = 0;
                    } else {
                        self.campaign(out);
                    }
                }
            }
            ProposerState::Candidate => {
                self.timer_ticks += 1;
                if self.timer_ticks >= self.timeout_ticks && !self.heard_since_campaign {
                    // Not one answer, refusal or heartbeat since the campaign
                    // (the network is silent, or this process is taking a
                    // backlog of ticks after a stall): a new ballot would
                    // gain nothing and cost a durable write. Ask again with
                    // this one.
                    self.timer_ticks = 0;
                    self.timeout_ticks = self.random_timeout();
                    self.send_prepare(out);
                } else if self.timer_ticks >= self.timeout_ticks && self.passive {
                    // A rejoining server's campaign failed: wait to be
                    // handed the lead again (its probe, if still under
                    // way, is asked again by the server).
                    self.become_follower(None, out);
                } else if self.timer_ticks >= self.timeout_ticks {
                    // No quorum in time: back off randomly by campaigning again
                    // only after a fresh random timeout has run.
                    self.campaign(out);
                } else if self.timer_ticks % self.config.retransmit_ticks == 0 {
                    self.send_prepare(out);
                }
            }
            ProposerState::Leader => {
                self.check_ticks += 1;
                if self.check_ticks >= self.config.election_timeout_ticks {
                    let heard = (self.heard | self.own_bit).count_ones() as usize;
                    self.heard_before = core::mem::take(&mut self.heard);
                    self.check_ticks = 0;
                    if heard < self.config.quorum() {
                        // A whole election timeout without hearing a quorum:
                        // this leader can no longer get anything chosen, and
                        // while it claims the lead, the nodes that still hear
                        // it would refuse the candidate that could.
                        self.stepped_down += 1;
                        self.become_follower(None, out);
                        return;
                    }
                }
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

    /// A client command reaches this proposer. A leader ignores a copy of a
    /// command it has queued or has in flight (or an older request of the
    /// same client): the copy it holds gets the verdict.
    pub(crate) fn propose<O, P>(&mut self, cmd: Command<C>, out: &mut Vec<Action<C, O, P>>) {
        let reason = if !self.is_leader() {
            DropReason::NotLeader {
                leader: self.leader,
            }
        } else if self.is_sealing() && !self.holds(&cmd) {
            // Its configuration ends: the next one's first leader takes
            // it (this one again if it stays).
            DropReason::NotLeader {
                leader: self.next_leader(),
            }
        } else if self.holds(&cmd) {
            self.duplicates += 1;
            return;
        } else if !self.admit(cmd.client) {
            DropReason::Overloaded
        } else {
            self.note_queued(&cmd);
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

    /// Whether the queue takes a command of `client` now. The queue has
    /// `free` places. A client in the waiting room gets one whenever there
    /// is one; a newcomer only when places are left over for every waiting
    /// client. A client refused joins the end of the room (while it has
    /// space); a client admitted leaves it. So a client served comes back
    /// as a newcomer and waits behind those it overtook, and no place is
    /// held empty for a waiting client that is slow to retry (a strict
    /// queue did that, and each slot then waited for one client's
    /// back-off).
    fn admit(&mut self, client: ClientId) -> bool {
        let free = self.config.pending_max.saturating_sub(self.queue.len());
        match self.waiting.iter().position(|&(c, _)| c == client) {
            Some(place) if free > 0 => {
                self.waiting.remove(place);
                true
            }
            Some(place) => {
                self.waiting[place].1 = 0;
                false
            }
            None if free > self.waiting.len() => true,
            None => {
                let places = self.config.pending_max.clamp(WAIT_ROOM_MIN, WAIT_ROOM_MAX);
                if self.waiting.len() < places {
                    self.waiting.push_back((client, 0));
                }
                false
            }
        }
    }

    /// Commands `from` forwarded. A leader that refuses one (overloaded)
    /// tells the sender with [`Message::Refused`], so that its client hears
    /// at once; a proposer that is not the leader keeps quiet, as clients
    /// that learn for themselves send every attempt to every proposer.
    pub(crate) fn propose_forwarded<O, P>(
        &mut self,
        from: Process,
        commands: Vec<Command<C>>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let leader = self.is_leader();
        let start = out.len();
        for cmd in commands {
            self.propose(cmd, out);
        }
        if !leader {
            return;
        }
        for action in &mut out[start..] {
            if let Action::Event(Event::Dropped {
                client,
                seq,
                reason,
            }) = *action
            {
                *action = Action::send_to(
                    from.addr(),
                    Message::Refused {
                        client,
                        seq,
                        reason,
                    },
                );
            }
        }
    }

    /// Does this leader hold `cmd` (or a newer request of its client),
    /// queued or in a slot not yet chosen?
    fn holds(&self, cmd: &Command<C>) -> bool {
        self.unsettled
            .get(&cmd.client)
            .is_some_and(|&(seq, ticket)| {
                seq > cmd.seq || (seq == cmd.seq && ticket >= self.settled)
            })
    }

    /// Records `cmd` as queued, under the next ticket.
    fn note_queued(&mut self, cmd: &Command<C>) {
        let settled = self.settled;
        self.unsettled.insert(cmd.client, (cmd.seq, self.tickets));
        self.tickets += 1;
        // Forget settled clients once the table outgrows what can be
        // pending, so it stays bounded by the queue and the window.
        let bound =
            2 * (self.config.pending_max + self.config.pipeline_window * self.config.batch_max);
        if self.unsettled.len() > bound {
            self.unsettled.retain(|_, (_, held)| *held >= settled);
        }
    }

    /// Copies of queued or in-flight commands this leader ignored.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Times this proposer gave up the lead because it had not heard from a
    /// quorum of acceptors for an election timeout.
    pub fn stepped_down(&self) -> u64 {
        self.stepped_down
    }

    /// Times this leader, refused by one acceptor that had promised a rival
    /// candidate, campaigned again above it instead of stepping down.
    pub fn bumped(&self) -> u64 {
        self.bumped
    }

    /// Tells the proposer that the acceptor with id `id` runs in the same
    /// process, so that it counts as heard while this proposer leads.
    pub(crate) fn set_colocated_acceptor(&mut self, id: NodeId) {
        self.own_bit = self.config.member_index(id).map_or(0, |i| 1 << i);
    }

    /// The ballot of a leader other than `candidate` that this proposer
    /// heard less than an election timeout ago (or its own, if it leads):
    /// a reason for a co-located acceptor to refuse `candidate`'s `Prepare`
    /// rather than depose a leader that works. Refusing is always safe;
    /// it only keeps a node that lost touch with the leader (a link cut, a
    /// chain of nodes) from disrupting it again and again.
    pub(crate) fn live_leader(&self, candidate: NodeId) -> Option<Ballot> {
        match self.state {
            ProposerState::Leader => (candidate != self.config.id).then_some(self.ballot),
            ProposerState::Follower => {
                let live = self.leader_contact_ticks < self.config.election_timeout_ticks;
                (live && self.leader_ballot.node != candidate && self.leader_ballot != Ballot::ZERO)
                    .then_some(self.leader_ballot)
            }
            ProposerState::Candidate => None,
        }
    }

    /// An acceptor confirmed our heartbeat `beat` of `ballot`.
    pub(crate) fn on_heartbeat_ack<O, P>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        beat: u64,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.state != ProposerState::Leader || ballot != self.ballot {
            return;
        }
        if let Some(bit) = self.member_bit(from, "heartbeat-ack", out) {
            self.heard |= bit;
            let i = bit.trailing_zeros() as usize;
            if let Some(acked) = self.beat_acked.get_mut(i) {
                *acked = (*acked).max(beat.min(self.beat));
            }
        }
    }

    /// The highest heartbeat of this leader's ballot that a quorum of
    /// acceptors acknowledged (the co-located acceptor, if any, counting as
    /// having acknowledged every one): when it is at least `b`, no higher
    /// ballot had a quorum's promise when heartbeat `b` was sent. Zero when
    /// not leading.
    pub(crate) fn confirmed_beat(&self) -> u64 {
        if self.state != ProposerState::Leader {
            return 0;
        }
        let mut acked = self.beat_acked.clone();
        if let Some(own) = self.own_index() {
            acked[own] = self.beat;
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked.get(self.config.quorum() - 1).copied().unwrap_or(0)
    }

    /// The latest heartbeat this proposer sent (beats count up for its
    /// whole life).
    pub(crate) fn beat(&self) -> u64 {
        self.beat
    }

    fn own_index(&self) -> Option<usize> {
        (self.own_bit != 0).then(|| self.own_bit.trailing_zeros() as usize)
    }

    /// Sends a heartbeat now, off the timer (a leader confirming itself for
    /// reads); returns its beat. Nothing when not leading.
    pub(crate) fn heartbeat_now<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) -> Option<u64> {
        if self.state != ProposerState::Leader {
            return None;
        }
        self.send_heartbeat(out);
        Some(self.beat)
    }

    /// The read index a leader gives a read arriving now: every slot that
    /// can have been chosen is below it, since phase 1 re-proposed every
    /// slot a quorum might have chosen. `None` when not leading.
    pub(crate) fn read_index(&self) -> Option<Slot> {
        (self.state == ProposerState::Leader && !self.is_sealing()).then_some(self.next_slot)
    }

    /// Who campaigns first in the configuration this leader is ending: this
    /// leader if the stop-sign names it, else the lowest member it names
    /// (see `Server::enter_epoch`).
    fn next_leader(&self) -> Option<NodeId> {
        let members = match (&self.stop_pending, self.sealed) {
            (Some(members), _) => Some(members.as_slice()),
            (None, Some(slot)) => self.inflight.get(slot).and_then(|f| f.value.stop_sign()),
            (None, None) => None,
        }?;
        if members.contains(&self.config.id) {
            Some(self.config.id)
        } else {
            members.iter().min().copied()
        }
    }

    /// Is this leader ending its configuration (a stop-sign is proposed or
    /// asked for)? It then serves no reads: the next configuration may
    /// write before this leader hears the stop-sign chosen.
    pub(crate) fn is_sealing(&self) -> bool {
        self.sealed.is_some() || self.stop_pending.is_some()
    }

    /// Asks this leader to end its configuration with a stop-sign naming
    /// `members`, in the next free slot (see [`Value::Reconfigure`]).
    pub(crate) fn reconfigure<O, P>(
        &mut self,
        members: Vec<NodeId>,
        out: &mut Vec<Action<C, O, P>>,
    ) -> Result<(), ReconfigureRefusal> {
        if self.state != ProposerState::Leader {
            return Err(ReconfigureRefusal::NotLeader {
                leader: self.leader,
            });
        }
        if self.is_sealing() {
            return Err(ReconfigureRefusal::InProgress);
        }
        self.stop_pending = Some(members);
        self.flush(out);
        Ok(())
    }

    /// Starts configuration `epoch` under `config` (its members), whose
    /// log begins at `first_slot`: the stop-sign of the last one was just
    /// applied. A fresh proposer, a follower, except that it keeps its
    /// random generator, counters, rejoin state and, when `keep_queue`,
    /// the commands waiting for a slot (the old configuration sealed them
    /// out; a leader of the new one proposes them). Otherwise they are
    /// refused back to their clients.
    pub(crate) fn enter_epoch<O, P>(
        &mut self,
        config: &Config,
        epoch: u64,
        first_slot: Slot,
        keep_queue: bool,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        let Ok(mut fresh) = Proposer::new(config) else {
            return;
        };
        if !keep_queue {
            // The new configuration's first candidate: the old leader if
            // it stays, else its lowest member (see `Server::enter_epoch`).
            let next = self
                .leader
                .filter(|l| config.members.contains(l))
                .or_else(|| config.members.iter().min().copied());
            self.refuse_queue(next, out);
        }
        fresh.rng = self.rng.clone();
        fresh.timeout_ticks = fresh.random_timeout();
        fresh.epoch = epoch;
        // Never below a ballot this proposer used or saw: a node restored
        // into a configuration replayed its campaigns in it first, and
        // must not campaign in one of them again.
        fresh.highest_seen = self
            .highest_seen
            .max(self.ballot)
            .max(Ballot::epoch_floor(epoch));
        fresh.learned = first_slot;
        fresh.commit = first_slot;
        fresh.next_slot = first_slot;
        fresh.inflight = SlotWindow::new(first_slot);
        fresh.queue = core::mem::take(&mut self.queue);
        fresh.unsettled = core::mem::take(&mut self.unsettled);
        fresh.waiting = core::mem::take(&mut self.waiting);
        fresh.tickets = self.tickets;
        fresh.dequeued = self.dequeued;
        // Every command dequeued went into a slot below the stop-sign.
        fresh.settled = self.dequeued;
        fresh.duplicates = self.duplicates;
        fresh.stepped_down = self.stepped_down;
        fresh.bumped = self.bumped;
        fresh.report_chosen = self.report_chosen;
        fresh.passive = self.passive;
        fresh.probe = self.probe.map(|_| 0);
        fresh.ignored = self.ignored;
        fresh.beat = self.beat;
        #[cfg(feature = "bug-zoo")]
        {
            fresh.bug = self.bug;
        }
        if let Some(i) = config.member_index(config.id) {
            fresh.own_bit = 1 << i;
        }
        *self = fresh;
    }

    /// Moves queued commands into slots. A command goes out at once when the
    /// pipeline is empty; otherwise commands gather until a slot is chosen or a
    /// full batch is ready, so that load turns into batches instead of slots.
    /// A full queue counts as a full batch: with `pending_max` below
    /// `batch_max`, waiting for more would only refuse clients.
    fn flush<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        if self.sealed.is_some() {
            // Queued commands wait for the next configuration.
            return;
        }
        if let Some(members) = self.stop_pending.take() {
            if ((self.next_slot - self.commit) as usize) >= self.config.pipeline_window {
                self.stop_pending = Some(members);
                return;
            }
            let slot = self.next_slot;
            self.next_slot += 1;
            self.start_phase2(slot, Value::Reconfigure(members), out);
            if !bug!(self.bug, ProposeAfterStopSign) {
                self.sealed = Some(slot);
                return;
            }
        }
        while !self.queue.is_empty() {
            let in_flight = (self.next_slot - self.commit) as usize;
            if in_flight >= self.config.pipeline_window
                || (in_flight > 0
                    && self.queue.len() < self.config.batch_max.min(self.config.pending_max))
            {
                break;
            }
            let n = self.queue.len().min(self.config.batch_max);
            self.dequeued += n as u64;
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

    fn start_phase2<O, P>(&mut self, slot: Slot, value: Value<C>, out: &mut Vec<Action<C, O, P>>) {
        out.push(accept(self.ballot, slot, value.clone(), self.commit));
        *self.inflight.entry(slot) = Some(InFlight {
            value,
            acks: 0,
            age_ticks: 0,
            chosen: false,
            tickets_end: self.dequeued,
        });
    }

    /// A message from another process arrived (the owner of a co-located
    /// proposer calls this for every well-formed message from a peer).
    /// The leader handed this proposer the lead: campaign now, without
    /// waiting for an election timeout (a leader already leads).
    pub(crate) fn take_over<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        if self.state != ProposerState::Leader {
            self.campaign(out);
        }
    }

    /// The configured election timeout, in ticks.
    pub(crate) fn election_timeout_ticks(&self) -> u32 {
        self.config.election_timeout_ticks
    }

    pub(crate) fn heard_from_peer(&mut self) {
        self.heard_since_campaign = true;
    }

    /// This server lost its durable state, and with it the ballots it
    /// used: a new campaign could reuse one of them, and acceptors take a
    /// `Prepare` of the ballot they promised as a retransmission, so a
    /// rejoin won in a reused ballot could propose a second value in it.
    /// Its first campaigns are therefore probes in round 0, which no
    /// normal campaign uses: an acceptor promised anything refuses and
    /// names its promise, one promised nothing promises round 0. Once a
    /// majority of the *other* acceptors answered (its own abstains), its
    /// ballots go above every promise they named, and so above every
    /// ballot it voted or led in before (each had a majority promise it,
    /// and that majority meets any majority of the others).
    pub(crate) fn probe_for_rejoin(&mut self) {
        self.probe = Some(0);
    }

    /// The next slot a leader would fill: one past every slot it
    /// re-proposed when it won, or proposed since.
    pub(crate) fn next_slot(&self) -> Slot {
        self.next_slot
    }

    /// Campaign only when handed the lead (a rejoining server), or again
    /// on its own timer too.
    pub(crate) fn set_passive(&mut self, on: bool) {
        self.passive = on;
    }

    /// Is the rejoin probe still waiting for a majority of the others?
    pub(crate) fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// While probing, an acceptor's answer to a `Prepare` of `ballot`,
    /// having promised `promised` (the probe's ballot itself if it
    /// promised the probe), in whatever state a leader's heartbeat left
    /// this proposer. Returns false when not probing.
    fn probe_answer(&mut self, from: NodeId, ballot: Ballot, promised: Ballot) -> bool {
        let Some(heard) = self.probe else {
            return false;
        };
        if ballot != Ballot::new(Ballot::epoch_floor(self.epoch).round, self.config.id) {
            return true;
        }
        let Some(i) = self.config.member_index(from) else {
            return true;
        };
        self.highest_seen = self.highest_seen.max(promised);
        let heard = heard | (1u64 << i);
        if heard.count_ones() as usize >= self.config.quorum() {
            // Every ballot from here on is above what they promised.
            self.probe = None;
            if self.state == ProposerState::Candidate {
                self.state = ProposerState::Follower;
            }
            self.timer_ticks = 0;
        } else {
            self.probe = Some(heard);
        }
        true
    }

    fn campaign<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        let floor = Ballot::epoch_floor(self.epoch).round;
        let round = if self.probe.is_some() {
            floor
        } else {
            self.highest_seen.round.max(self.ballot.round).max(floor) + 1
        };
        if round >> Ballot::EPOCH_SHIFT != self.epoch {
            // Out of rounds in this configuration (or a ballot of another
            // one got through): a ballot of the next one would outrank
            // configurations this proposer knows nothing of. Never campaign.
            self.timer_ticks = 0;
            return;
        }
        self.step_down_quietly(out);
        self.ballot = Ballot::new(round, self.config.id);
        self.highest_seen = self.ballot;
        self.leader_contact_ticks = u32::MAX;
        self.state = ProposerState::Candidate;
        self.leader = None;
        self.sealed = None;
        self.stop_pending = None;
        self.promises = 0;
        self.adopted.clear();
        self.prepare_from = self.learned;
        self.trimmed_max = 0;
        self.timer_ticks = 0;
        self.timeout_ticks = self.random_timeout();
        self.heard_since_campaign = false;
        // A probe (round 0) never leads, so it need not be remembered.
        if !bug!(self.bug, CampaignNotPersisted) && self.probe.is_none() {
            out.push(Action::Persist(Record::Campaign(self.ballot)));
        }
        self.send_prepare(out);
    }

    fn send_prepare<O, P>(&self, out: &mut Vec<Action<C, O, P>>) {
        out.push(Action::Send {
            to: Destination::Group(Roles::ACCEPTOR),
            msg: Message::Prepare {
                ballot: self.ballot,
                from_slot: self.prepare_from,
            },
        });
    }

    pub(crate) fn on_promise<O, P>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        trimmed_below: Slot,
        accepted: Vec<PValue<C>>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.probe_answer(from, ballot, ballot) {
            return;
        }
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
                Some((b, _)) if *b >= pv.ballot && !bug!(self.bug, AdoptLowestBallot) => {}
                Some((b, _)) if *b <= pv.ballot && bug!(self.bug, AdoptLowestBallot) => {}
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
    fn become_leader<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        self.state = ProposerState::Leader;
        self.waiting.clear();
        self.heard = self.promises;
        self.heard_before = self.promises;
        self.beat_acked.iter_mut().for_each(|b| *b = 0);
        self.check_ticks = 0;
        self.leader = Some(self.config.id);
        self.commit = self.prepare_from.max(self.trimmed_max);
        let mut adopted = core::mem::take(&mut self.adopted);
        self.sealed = seal(&mut adopted);
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

    pub(crate) fn on_accepted<O, P>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.state != ProposerState::Leader || ballot != self.ballot {
            return;
        }
        let Some(bit) = self.member_bit(from, "accepted", out) else {
            return;
        };
        self.heard |= bit;
        let quorum = self.config.quorum();
        let Some(f) = self.inflight.get_mut(slot) else {
            return;
        };
        if f.chosen {
            return;
        }
        if bug!(self.bug, CountDuplicateAcks) {
            f.acks = (f.acks << 1) | 1;
        } else {
            f.acks |= bit;
        }
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
        while let Some(f) = self.inflight.front().filter(|f| f.chosen) {
            self.settled = f.tickets_end;
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

    /// An acceptor refused `ballot`, having promised `promised`.
    ///
    /// A leader refused by one acceptor that promised a higher ballot
    /// normally steps down. With `may_bump` (a server, whose acceptors
    /// refuse candidates while they hear a working leader), a leader that
    /// heard from a quorum other than that acceptor within the last
    /// election timeout instead campaigns again at once, above the refusal:
    /// the acceptors that follow it promise its new ballot (they refuse only
    /// *other* candidates), and so does the refusing one, whose candidate
    /// could not win past them. Stepping down would leave no leader at all
    /// until those acceptors stopped hearing it, and then every timer would
    /// run out together and duel.
    pub(crate) fn on_nack<O, P>(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        promised: Ballot,
        may_bump: bool,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.probe_answer(from, ballot, promised) {
            return;
        }
        if self.state == ProposerState::Follower || ballot != self.ballot {
            return;
        }
        if promised <= ballot {
            // Not a higher promise: the acceptor's process still hears the
            // leader of `promised` and refused to depose it. Keep trying
            // (the leader may yet fail) but point clients at it meanwhile.
            if self.state == ProposerState::Candidate
                && promised < ballot
                && promised > Ballot::epoch_floor(self.epoch)
            {
                self.leader = Some(promised.node);
            }
            return;
        }
        self.highest_seen = self.highest_seen.max(promised);
        if may_bump && self.state == ProposerState::Leader && self.quorum_without(from) {
            self.bumped += 1;
            self.campaign(out);
            return;
        }
        self.become_follower(Some(promised.node), out);
    }

    /// Did this leader hear acceptor `node` in this election timeout or
    /// the last?
    pub(crate) fn heard_lately(&self, node: NodeId) -> bool {
        self.state == ProposerState::Leader
            && self
                .config
                .member_index(node)
                .is_some_and(|i| (self.heard | self.heard_before | self.own_bit) & (1 << i) != 0)
    }

    /// Did this leader hear a quorum of acceptors other than `from` (its
    /// own counting) in this election timeout or the last?
    fn quorum_without(&self, from: NodeId) -> bool {
        if self.passive {
            return false;
        }
        let others = self
            .config
            .member_index(from)
            .map_or(u64::MAX, |i| !(1u64 << i));
        let heard = (self.heard | self.heard_before | self.own_bit) & others;
        heard.count_ones() as usize >= self.config.quorum()
    }

    /// A leader's `Heartbeat` or `Accept`: follow it if it is the newest.
    pub(crate) fn observe_leader<O, P>(&mut self, ballot: Ballot, out: &mut Vec<Action<C, O, P>>) {
        if self.yielded_to == Some(ballot) && self.state == ProposerState::Follower {
            // The leader we gave way to (see `yield_to`), below our own
            // failed ballot: keep following it while it lives.
            self.leader_contact_ticks = 0;
            self.timer_ticks = 0;
            return;
        }
        if ballot < self.highest_seen {
            return;
        }
        self.yielded_to = None;
        if ballot == self.ballot && self.state != ProposerState::Follower {
            return; // our own
        }
        self.highest_seen = ballot;
        self.candidate_grace = true;
        self.leader_contact_ticks = 0;
        self.leader_ballot = ballot;
        if self.state == ProposerState::Follower {
            self.leader = Some(ballot.node);
            self.timer_ticks = 0;
        } else {
            self.become_follower(Some(ballot.node), out);
        }
    }

    /// A candidate that cannot win gives way to a working leader of a lower
    /// ballot: its own acceptor still follows that leader (a lease it
    /// granted refused the candidate's own `Prepare`), so the leader would
    /// never hear of the higher ballot and the candidate would campaign
    /// for ever. Its ballots stay above everything it has seen.
    pub(crate) fn yield_to<O, P>(&mut self, leader: Ballot, out: &mut Vec<Action<C, O, P>>) {
        if self.state != ProposerState::Candidate || leader >= self.ballot {
            return;
        }
        self.candidate_grace = true;
        self.leader_contact_ticks = 0;
        self.leader_ballot = leader;
        self.yielded_to = Some(leader);
        self.become_follower(Some(leader.node), out);
    }

    /// Another candidate's `Prepare`: give it time to win instead of
    /// duelling, but only once until a leader is heard again (see
    /// `candidate_grace`).
    pub(crate) fn observe_candidate<O, P>(
        &mut self,
        ballot: Ballot,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if ballot <= self.highest_seen {
            return;
        }
        self.highest_seen = ballot;
        if self.state == ProposerState::Follower {
            self.leader = Some(ballot.node);
            if core::mem::take(&mut self.candidate_grace) || bug!(self.bug, NoCandidateGrace) {
                self.timer_ticks = 0;
            }
        } else {
            self.become_follower(Some(ballot.node), out);
        }
    }

    /// Tells the proposer that a learner it can rely on has delivered every
    /// slot below `slot`, so its next phase 1 may start there. Without this a
    /// standalone proposer runs phase 1 from the acceptors' trim point.
    pub(crate) fn learned_prefix(&mut self, slot: Slot) {
        self.learned = self.learned.max(slot);
    }

    fn become_follower<O, P>(&mut self, leader: Option<NodeId>, out: &mut Vec<Action<C, O, P>>) {
        self.step_down_quietly(out);
        self.state = ProposerState::Follower;
        self.leader = leader;
        self.timer_ticks = 0;
        self.timeout_ticks = self.random_timeout();
    }

    /// Leaves leadership: queued commands were never proposed, so their clients
    /// hear that they must go elsewhere. In-flight values may still be chosen by
    /// the next leader, so they get no verdict; the replica answers retries.
    fn step_down_quietly<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        self.refuse_queue(None, out);
    }

    /// Drops the queue (see `step_down_quietly`), pointing its clients at
    /// `leader`.
    fn refuse_queue<O, P>(&mut self, leader: Option<NodeId>, out: &mut Vec<Action<C, O, P>>) {
        self.inflight = SlotWindow::new(self.commit);
        self.unsettled.clear();
        self.dequeued += self.queue.len() as u64;
        self.settled = self.dequeued;
        for cmd in self.queue.drain(..) {
            out.push(Action::Event(Event::Dropped {
                client: cmd.client,
                seq: cmd.seq,
                reason: DropReason::NotLeader { leader },
            }));
        }
    }

    fn send_heartbeat<O, P>(&mut self, out: &mut Vec<Action<C, O, P>>) {
        self.heartbeat_timer_ticks = 0;
        self.beat += 1;
        out.push(Action::Send {
            to: Destination::Group(Roles::ALL),
            msg: Message::Heartbeat {
                ballot: self.ballot,
                commit: self.commit,
                beat: self.beat,
            },
        });
    }

    fn member_bit<O, P>(
        &mut self,
        from: NodeId,
        kind: &'static str,
        out: &mut Vec<Action<C, O, P>>,
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
        if bug!(self.bug, FixedElectionTimeout) {
            return base;
        }
        base + self.rng.next_u32() % base
    }
}

fn accept<C, O, P>(ballot: Ballot, slot: Slot, value: Value<C>, commit: Slot) -> Action<C, O, P> {
    Action::Send {
        to: Destination::Group(Roles::ACCEPTOR),
        msg: Message::Accept {
            ballot,
            slot,
            value,
            commit,
        },
    }
}

/// The stop-sign rule of a new leader's phase 1, on the values it adopted
/// (the highest-ballot vote its quorum reported for each slot). Returns the
/// slot of the stop-sign that may have been chosen, having dropped every
/// value above it, or `None`.
///
/// A stop-sign adopted in slot `s` in ballot `b` may be chosen, and then
/// nothing above `s` may be chosen in its configuration. Every leader that
/// proposed it there proposed nothing above it (it was the last slot it
/// filled, or it came from this very rule), so a value adopted above `s`
/// in a ballot at or below `b` was never chosen. A value above `s` in a
/// ballot *above* `b`, though, comes from a leader whose own phase 1 did
/// not make that stop-sign its last slot, which it would have done had the
/// stop-sign been chosen in `b` or any ballot before (its quorum meets the
/// one that chose it, and every ballot from the choosing one on carries
/// the same value): that stop-sign was never chosen, is replaced by a
/// no-op, and the next one up is examined the same way.
fn seal<C>(adopted: &mut BTreeMap<Slot, (Ballot, Value<C>)>) -> Option<Slot> {
    let stops: Vec<(Slot, Ballot)> = adopted
        .iter()
        .filter(|(_, (_, v))| v.stop_sign().is_some())
        .map(|(&s, (b, _))| (s, *b))
        .collect();
    for (slot, ballot) in stops {
        let outranked = adopted
            .range(slot + 1..)
            .any(|(_, (later, _))| *later > ballot);
        if outranked {
            if let Some(entry) = adopted.get_mut(&slot) {
                entry.1 = Value::Noop;
            }
        } else {
            let _ = adopted.split_off(&(slot + 1));
            return Some(slot);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    type A = Action<u64, ()>;
    const ME: NodeId = NodeId(1);

    fn config() -> Config {
        let mut c = Config::new(ME, vec![NodeId(1), NodeId(2), NodeId(3)]);
        c.batch_max = 4;
        c.pipeline_window = 2;
        c.pending_max = 6;
        c
    }

    fn cmd(seq: u64) -> Command<u64> {
        Command {
            client: 1,
            seq,
            op: seq,
        }
    }

    fn one_of(client: ClientId) -> Value<u64> {
        Value::One(Command {
            client,
            seq: 1,
            op: client,
        })
    }

    fn one(seq: u64) -> Value<u64> {
        Value::One(cmd(seq))
    }

    /// A message from process `from` of the role that sends its kind.
    fn recv(from: u32, msg: Message<u64>) -> Input<u64> {
        let role = match &msg {
            Message::Promise { .. }
            | Message::Nack { .. }
            | Message::Accepted { .. }
            | Message::Votes { .. }
            | Message::HeartbeatAck { .. } => Role::Acceptor,
            Message::Prepare { .. }
            | Message::Accept { .. }
            | Message::Heartbeat { .. }
            | Message::Handoff { .. }
            | Message::AskLead => Role::Proposer,
            Message::CatchUp { .. } | Message::Decided { .. } => Role::Learner,
            Message::Forward { .. }
            | Message::Snapshot(_)
            | Message::Refused { .. }
            | Message::ReadIndex { .. }
            | Message::ReadIndexReply { .. } => Role::Client,
        };
        Input::Receive {
            from: Process::only(role, NodeId(from)),
            msg,
        }
    }

    /// Ticks until the proposer campaigns; returns its ballot.
    fn campaign(p: &mut Proposer<u64>, out: &mut Vec<A>) -> Ballot {
        for _ in 0..2 * p.config.election_timeout_ticks {
            p.step_into(Input::Tick, out);
            if p.state() == ProposerState::Candidate {
                return p.ballot();
            }
        }
        panic!("no campaign within twice the election timeout");
    }

    fn promise(from: u32, ballot: Ballot, accepted: Vec<PValue<u64>>) -> Input<u64> {
        recv(
            from,
            Message::Promise {
                ballot,
                trimmed_below: 0,
                accepted,
            },
        )
    }

    fn leader() -> (Proposer<u64>, Ballot) {
        let mut p = Proposer::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        p.step_into(promise(1, b, vec![]), &mut out);
        p.step_into(promise(2, b, vec![]), &mut out);
        assert!(p.is_leader());
        (p, b)
    }

    fn accepts(out: &[A]) -> Vec<(Slot, Value<u64>)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg: Message::Accept { slot, value, .. },
                    ..
                } => Some((*slot, value.clone())),
                _ => None,
            })
            .collect()
    }

    fn ack(p: &mut Proposer<u64>, b: Ballot, slot: Slot, from: &[u32], out: &mut Vec<A>) {
        for &f in from {
            p.step_into(
                recv(
                    f,
                    Message::Accepted {
                        ballot: b,
                        slot,
                        value: None,
                    },
                ),
                out,
            );
        }
    }

    #[test]
    fn campaign_persists_its_ballot_before_sending_prepare() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        assert_eq!(out[0], Action::Persist(Record::Campaign(b)));
        assert!(matches!(
            out[1],
            Action::Send {
                to: Destination::Group(Roles::ACCEPTOR),
                msg: Message::Prepare { .. }
            }
        ));
    }

    #[test]
    fn new_leader_adopts_highest_ballot_value() {
        let mut p = Proposer::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        let pv = |round, op| PValue {
            slot: 0,
            ballot: Ballot::new(round, NodeId(3)),
            value: one(op),
        };
        p.step_into(promise(2, b, vec![pv(1, 10)]), &mut out);
        p.step_into(promise(3, b, vec![pv(2, 20)]), &mut out);
        assert!(p.is_leader());
        assert_eq!(accepts(&out), [(0, one(20))]);
    }

    /// A new leader's phase 1 reports `votes` (slot, round of node 3,
    /// value) from two acceptors; what it proposes, and whether it is
    /// sealed (proposes nothing more).
    fn adopt(votes: &[(Slot, u64, Value<u64>)]) -> (Vec<(Slot, Value<u64>)>, bool) {
        let mut p = Proposer::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        let pvs: Vec<PValue<u64>> = votes
            .iter()
            .map(|(slot, round, value)| PValue {
                slot: *slot,
                ballot: Ballot::new(*round, NodeId(3)),
                value: value.clone(),
            })
            .collect();
        p.step_into(promise(2, b, pvs), &mut out);
        p.step_into(promise(3, b, Vec::new()), &mut out);
        assert!(p.is_leader());
        (accepts(&out), p.is_sealing())
    }

    fn stop() -> Value<u64> {
        Value::Reconfigure(vec![NodeId(1), NodeId(2)])
    }

    #[test]
    fn a_stop_sign_found_in_phase_1_is_the_last_slot_proposed() {
        // A value above the stop-sign in an older ballot was never chosen
        // (the stop-sign's leader saw it, or it could not be chosen).
        let (adopted, sealed) = adopt(&[(0, 2, stop()), (1, 1, one(5))]);
        assert_eq!(adopted, [(0, stop())]);
        assert!(sealed, "nothing goes above a stop-sign");
    }

    #[test]
    fn a_stop_sign_outranked_above_it_is_replaced_by_a_noop() {
        // A leader of a later ballot proposed above the stop-sign: it did
        // not find it chosen, so it was not, and the slot above may be.
        let (adopted, sealed) = adopt(&[(0, 1, stop()), (1, 2, one(5))]);
        assert_eq!(adopted, [(0, Value::Noop), (1, one(5))]);
        assert!(!sealed, "the configuration goes on");
        // Of two stop-signs, the lower one that stands ends the log.
        let (adopted, _) = adopt(&[
            (0, 1, stop()),
            (1, 2, one(5)),
            (2, 2, stop()),
            (3, 1, one(6)),
        ]);
        assert_eq!(adopted, [(0, Value::Noop), (1, one(5)), (2, stop())]);
    }

    #[test]
    fn a_leader_asked_to_reconfigure_seals_its_log_after_what_it_has_in_flight() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        p.step_into(Input::Propose(cmd(1)), &mut out);
        let members = vec![NodeId(1), NodeId(2)];
        assert_eq!(p.reconfigure(members.clone(), &mut out), Ok(()));
        assert_eq!(
            p.reconfigure(members, &mut out),
            Err(ReconfigureRefusal::InProgress)
        );
        assert_eq!(accepts(&out), [(0, one(1)), (1, stop())]);
        out.clear();
        p.step_into(Input::Propose(cmd(2)), &mut out);
        assert_eq!(accepts(&out), [], "nothing after the stop-sign");
        assert_eq!(
            out,
            [Action::Event(Event::Dropped {
                client: 1,
                seq: 2,
                reason: DropReason::NotLeader {
                    leader: Some(NodeId(1)),
                },
            })],
            "a new command is sent to the next configuration's first leader"
        );
        assert_eq!(p.read_index(), None, "a sealing leader serves no reads");
    }

    #[test]
    fn new_leader_fills_holes_with_noops() {
        let mut p = Proposer::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        let pv = PValue {
            slot: 2,
            ballot: Ballot::new(1, NodeId(3)),
            value: one(5),
        };
        p.step_into(promise(2, b, vec![pv]), &mut out);
        p.step_into(promise(3, b, vec![]), &mut out);
        assert_eq!(
            accepts(&out),
            [(0, Value::Noop), (1, Value::Noop), (2, one(5))]
        );
    }

    #[test]
    fn quorum_counts_distinct_acceptors_only() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        p.step_into(promise(2, b, vec![]), &mut out);
        p.step_into(promise(2, b, vec![]), &mut out);
        assert!(
            !p.is_leader(),
            "a duplicated promise must not make a quorum"
        );
        p.step_into(promise(9, b, vec![]), &mut out);
        assert!(!p.is_leader(), "a non-member must not count");
        assert_eq!(p.ignored(), 1);
    }

    #[test]
    fn malformed_messages_are_ignored_and_counted() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let bad = Ballot::new(crate::message::LIMIT, NodeId(2));
        for _ in 0..2 {
            let out: Vec<A> = p.step(recv(
                2,
                Message::Nack {
                    ballot: bad,
                    promised: bad,
                },
            ));
            assert_eq!(
                out,
                [Action::Event(Event::Ignored { kind: "nack" })],
                "no reaction but the count"
            );
        }
        assert_eq!(p.ignored(), 2);
    }

    #[test]
    fn leader_ignores_retries_of_what_it_holds_until_it_is_chosen() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        p.step_into(Input::Propose(cmd(1)), &mut out);
        p.step_into(Input::Propose(cmd(2)), &mut out);
        assert_eq!(accepts(&out), [(0, one(1))], "2 is queued behind slot 0");
        out.clear();
        p.step_into(Input::Propose(cmd(2)), &mut out);
        p.step_into(Input::Propose(cmd(1)), &mut out);
        assert!(
            out.is_empty(),
            "a retry of a queued command, or an older one"
        );
        assert_eq!((p.pending(), p.duplicates()), (1, 2));
        ack(&mut p, b, 0, &[1, 2], &mut out);
        assert_eq!(accepts(&out), [(1, one(2))], "queued once, proposed once");
        out.clear();
        p.step_into(Input::Propose(cmd(2)), &mut out);
        assert!(out.is_empty(), "slot 1 is still in flight");
        ack(&mut p, b, 1, &[1, 2], &mut out);
        out.clear();
        p.step_into(Input::Propose(cmd(2)), &mut out);
        assert_eq!(
            accepts(&out),
            [(2, one(2))],
            "once chosen, a retry is proposed again (the replica answers it)"
        );
        assert_eq!(p.duplicates(), 3);
    }

    #[test]
    fn a_leader_that_hears_no_quorum_for_an_election_timeout_steps_down() {
        let (mut p, b) = leader();
        let et = p.config.election_timeout_ticks;
        let mut out: Vec<A> = Vec::new();
        let ack = |from| recv(from, Message::HeartbeatAck { ballot: b, beat: 1 });
        // Acks from a quorum in every window keep it leader.
        for _ in 0..3 {
            for _ in 0..et {
                p.step_into(Input::Tick, &mut out);
            }
            p.step_into(ack(1), &mut out);
            p.step_into(ack(2), &mut out);
        }
        assert!(p.is_leader());
        // One acceptor alone is not a quorum of three.
        for _ in 0..2 * et {
            p.step_into(ack(2), &mut out);
            p.step_into(Input::Tick, &mut out);
        }
        assert!(!p.is_leader());
        assert_eq!(
            (p.state(), p.leader(), p.stepped_down()),
            (ProposerState::Follower, None, 1)
        );
    }

    /// A leader refused by one acceptor that promised a higher ballot
    /// campaigns again above it only when allowed (a server, not handing
    /// off) and when it heard a quorum without that acceptor; a candidate
    /// refused so always follows.
    #[test]
    fn a_refused_leader_campaigns_again_only_with_a_quorum_without_the_refuser() {
        let mut out: Vec<A> = Vec::new();
        let higher = |b: Ballot| Ballot::new(b.round + 1, NodeId(3));
        // Heard 1 and 2 when it won: a quorum without 3.
        let (mut p, b) = leader();
        p.on_nack(NodeId(3), b, higher(b), true, &mut out);
        assert_eq!(p.state(), ProposerState::Candidate);
        assert!(p.ballot() > higher(b), "{:?} above the refusal", p.ballot());
        assert_eq!(p.bumped(), 1);
        // Refused again, now as a candidate: it follows.
        let b2 = p.ballot();
        p.on_nack(NodeId(3), b2, higher(b2), true, &mut out);
        assert_eq!(
            (p.state(), p.leader()),
            (ProposerState::Follower, Some(NodeId(3)))
        );
        assert_eq!(p.bumped(), 1);
        // Without 2, only 1 is left: no quorum, so it steps down.
        let (mut p, b) = leader();
        p.on_nack(NodeId(2), b, higher(b), true, &mut out);
        assert_eq!((p.state(), p.bumped()), (ProposerState::Follower, 0));
        // Not allowed to (a standalone proposer, or one handing off).
        let (mut p, b) = leader();
        p.on_nack(NodeId(3), b, higher(b), false, &mut out);
        assert_eq!((p.state(), p.bumped()), (ProposerState::Follower, 0));
        // What it heard in the last whole election timeout counts too.
        let (mut p, b) = leader();
        for _ in 0..p.config.election_timeout_ticks {
            p.step_into(Input::Tick, &mut out);
        }
        assert!(p.is_leader());
        p.on_nack(NodeId(3), b, higher(b), true, &mut out);
        assert_eq!((p.state(), p.bumped()), (ProposerState::Candidate, 1));
    }

    #[test]
    fn a_follower_that_hears_only_candidates_campaigns_itself_in_the_end() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let et = p.config.election_timeout_ticks;
        // A new, higher candidate every tick: the first one gets a grace
        // period, the rest do not hold the timer back.
        for round in 1..=4 * et {
            let prepare = Message::Prepare {
                ballot: Ballot::new(u64::from(round), NodeId(2)),
                from_slot: 0,
            };
            p.step_into(recv(2, prepare), &mut out);
            p.step_into(Input::Tick, &mut out);
            if p.state() == ProposerState::Candidate {
                assert!(round >= et, "campaigned before any timeout ran out");
                return;
            }
        }
        panic!("never campaigned while only hearing candidates");
    }

    #[test]
    fn an_overloaded_leader_refuses_forwarded_commands_back_to_their_sender() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        let commands = (1..=20)
            .map(|client| Command {
                client,
                seq: 1,
                op: client,
            })
            .collect();
        let forwarder = Process::server(NodeId(3));
        p.step_into(
            Input::Receive {
                from: forwarder,
                msg: Message::Forward { commands },
            },
            &mut out,
        );
        let refused: Vec<u64> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Destination::To(to),
                    msg:
                        Message::Refused {
                            client,
                            reason: DropReason::Overloaded,
                            ..
                        },
                } if *to == forwarder.addr() => Some(*client),
                _ => None,
            })
            .collect();
        // One command goes into slot 0, four (a full batch) into slot 1; then
        // the window is full, six wait (pending_max) and the rest are refused.
        assert_eq!(refused, (12..=20).collect::<Vec<_>>());
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::Event(Event::Dropped { .. }))));
    }

    #[test]
    fn leader_batches_commands_while_a_slot_is_in_flight() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        for seq in 1..=3 {
            p.step_into(Input::Propose(cmd(seq)), &mut out);
        }
        assert_eq!(accepts(&out), [(0, one(1))], "2 and 3 wait for slot 0");
        out.clear();
        ack(&mut p, b, 0, &[1, 2], &mut out);
        assert_eq!(
            accepts(&out),
            [(1, Value::Batch(vec![cmd(2), cmd(3)].into()))]
        );
        assert!(out.contains(&Action::Event(Event::Decided { slot: 0 })));
    }

    #[test]
    fn pipeline_window_bounds_slots_in_flight() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        // Full batches go out without waiting, up to the window.
        for seq in 1..=12 {
            p.step_into(Input::Propose(cmd(seq)), &mut out);
        }
        let slots: Vec<Slot> = accepts(&out).iter().map(|(s, _)| *s).collect();
        assert_eq!(slots, [0, 1], "window of {}", p.config.pipeline_window);
        assert!(p.pending() > 0);
    }

    #[test]
    fn a_refused_client_gets_the_next_free_place_before_any_newcomer() {
        let mut config = config();
        (config.batch_max, config.pipeline_window, config.pending_max) = (1, 1, 1);
        let mut p = Proposer::new(&config).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        p.step_into(promise(1, b, vec![]), &mut out);
        p.step_into(promise(2, b, vec![]), &mut out);
        let from = |client: ClientId| Command {
            client,
            seq: 1,
            op: client,
        };
        let refused = |out: &[A]| -> Vec<ClientId> {
            out.iter()
                .filter_map(|a| match a {
                    Action::Event(Event::Dropped {
                        client,
                        reason: DropReason::Overloaded,
                        ..
                    }) => Some(*client),
                    _ => None,
                })
                .collect()
        };
        let propose = |p: &mut Proposer<u64>, client| {
            let mut out: Vec<A> = Vec::new();
            p.step_into(Input::Propose(from(client)), &mut out);
            refused(&out)
        };
        // Client 1 in slot 0, client 2 queued: the queue is full.
        assert_eq!(propose(&mut p, 1), []);
        assert_eq!(propose(&mut p, 2), []);
        assert_eq!(propose(&mut p, 3), [3], "no room: 3 waits in line");
        // Slot 0 chosen: client 2 moves into slot 1 and a place frees up.
        out.clear();
        ack(&mut p, b, 0, &[1, 2], &mut out);
        assert_eq!(accepts(&out), [(1, one_of(2))]);
        assert_eq!(propose(&mut p, 4), [4], "the free place is 3's");
        assert_eq!(propose(&mut p, 3), [], "3 takes its place");
        // 4 waits now; if it never comes back, it loses its place after
        // WAIT_ROOM_TIMEOUTS election timeouts and newcomers get in again.
        out.clear();
        ack(&mut p, b, 1, &[1, 2], &mut out);
        assert_eq!(accepts(&out), [(2, one_of(3))]);
        out.clear();
        ack(&mut p, b, 2, &[1, 2], &mut out);
        assert_eq!(propose(&mut p, 5), [5], "4 still holds the place");
        let horizon = u64::from(config.election_timeout_ticks) * WAIT_ROOM_TIMEOUTS;
        for _ in 0..=horizon {
            p.step_into(Input::Tick, &mut out);
            // Keep the leader's quorum: answer every heartbeat.
            let beats: Vec<_> = out
                .drain(..)
                .filter_map(|a| match a {
                    Action::Send {
                        msg: Message::Heartbeat { beat, .. },
                        ..
                    } => Some(beat),
                    _ => None,
                })
                .collect();
            for beat in beats {
                for f in [1, 2] {
                    p.step_into(recv(f, Message::HeartbeatAck { ballot: b, beat }), &mut out);
                }
            }
        }
        assert!(p.is_leader());
        assert_eq!(propose(&mut p, 6), [], "4 gave up: a newcomer gets in");
    }

    #[test]
    fn overloaded_proposer_drops_with_a_reason() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        for seq in 1..=30 {
            p.step_into(Input::Propose(cmd(seq)), &mut out);
        }
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Event(Event::Dropped {
                reason: DropReason::Overloaded,
                ..
            })
        )));
        assert!(p.pending() <= p.config.pending_max);
    }

    #[test]
    fn follower_drops_proposals_with_a_leader_hint() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        p.step_into(
            recv(
                3,
                Message::Heartbeat {
                    ballot: Ballot::new(4, NodeId(3)),
                    commit: 0,
                    beat: 1,
                },
            ),
            &mut out,
        );
        p.step_into(Input::Propose(cmd(1)), &mut out);
        assert_eq!(
            out,
            [Action::Event(Event::Dropped {
                client: 1,
                seq: 1,
                reason: DropReason::NotLeader {
                    leader: Some(NodeId(3))
                }
            })]
        );
    }

    #[test]
    fn leader_steps_down_on_a_higher_ballot() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        p.step_into(Input::Propose(cmd(1)), &mut out);
        p.step_into(Input::Propose(cmd(2)), &mut out);
        let higher = Ballot::new(b.round + 1, NodeId(2));
        p.step_into(
            recv(
                2,
                Message::Nack {
                    ballot: b,
                    promised: higher,
                },
            ),
            &mut out,
        );
        assert_eq!(p.state(), ProposerState::Follower);
        assert_eq!(p.leader(), Some(NodeId(2)));
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::Event(Event::Dropped { seq: 2, .. }))),
            "the queued command is handed back"
        );
    }

    #[test]
    fn leader_retransmits_unacknowledged_accepts() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        p.step_into(Input::Propose(cmd(1)), &mut out);
        out.clear();
        for _ in 0..p.config.retransmit_ticks {
            p.step_into(Input::Tick, &mut out);
        }
        assert_eq!(accepts(&out), [(0, one(1))]);
    }

    #[test]
    fn next_campaign_goes_above_every_ballot_seen() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let seen = Ballot::new(7, NodeId(3));
        p.step_into(
            recv(
                3,
                Message::Heartbeat {
                    ballot: seen,
                    commit: 0,
                    beat: 1,
                },
            ),
            &mut out,
        );
        let b = campaign(&mut p, &mut out);
        assert!(b > seen && b.node == ME);
    }

    #[test]
    fn recovered_proposer_campaigns_above_its_persisted_ballot() {
        let used = Ballot::new(9, ME);
        let mut p = Proposer::<u64>::recover(&config(), [Record::Campaign(used)]).unwrap();
        let mut out: Vec<A> = Vec::new();
        assert!(campaign(&mut p, &mut out) > used);
    }

    #[test]
    fn phase1_starts_at_the_learned_prefix_and_skips_trimmed_slots() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        p.learned_prefix(5);
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: Message::Prepare { from_slot: 5, .. },
                ..
            }
        )));
        p.step_into(
            recv(
                2,
                Message::Promise {
                    ballot: b,
                    trimmed_below: 8,
                    accepted: vec![],
                },
            ),
            &mut out,
        );
        p.step_into(promise(3, b, vec![]), &mut out);
        assert_eq!(
            p.commit(),
            8,
            "slots below an acceptor's trim point are chosen"
        );
    }

    #[test]
    fn candidate_retransmits_its_prepare_and_campaigns_higher_only_once_it_hears_back() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let first = campaign(&mut p, &mut out);
        let prepares = |out: &[A]| -> Vec<Ballot> {
            out.iter()
                .filter_map(|a| match a {
                    Action::Send {
                        msg: Message::Prepare { ballot, .. },
                        ..
                    } => Some(*ballot),
                    _ => None,
                })
                .collect()
        };
        out.clear();
        for _ in 0..p.config.retransmit_ticks {
            p.step_into(Input::Tick, &mut out);
        }
        assert_eq!(
            prepares(&out),
            [first],
            "retransmitted under the same ballot"
        );
        // Silence: however many timeouts run out (a lost network, or a
        // backlog of ticks after a stall), no new ballot and no new write.
        out.clear();
        for _ in 0..10 * p.config.election_timeout_ticks {
            p.step_into(Input::Tick, &mut out);
        }
        let later = prepares(&out);
        assert!(!later.is_empty() && later.iter().all(|&b| b == first));
        assert!(!out.iter().any(|a| matches!(a, Action::Persist(_))));
        // One promise (no quorum yet) is an answer: at the next timeout
        // the candidate campaigns higher.
        p.step_into(promise(1, first, vec![]), &mut out);
        out.clear();
        for _ in 0..2 * p.config.election_timeout_ticks {
            p.step_into(Input::Tick, &mut out);
        }
        let later = prepares(&out);
        assert!(
            later.iter().any(|&b| b > first),
            "a new campaign above {first}"
        );
        assert!(
            later.len() < (2 * p.config.election_timeout_ticks) as usize,
            "not every tick"
        );
    }

    #[test]
    fn leader_sends_a_heartbeat_every_heartbeat_ticks() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        let ticks = 3 * p.config.heartbeat_ticks;
        for _ in 0..ticks {
            p.step_into(Input::Tick, &mut out);
        }
        let beats = out
            .iter()
            .filter(|a| matches!(a, Action::Send { to: Destination::Group(Roles::ALL), msg: Message::Heartbeat { ballot, .. } } if *ballot == b))
            .count();
        assert_eq!(beats, 3);
    }

    #[test]
    fn a_full_batch_goes_out_without_waiting_for_the_slot_in_flight() {
        let (mut p, _) = leader();
        let mut out: Vec<A> = Vec::new();
        for seq in 1..=5 {
            p.step_into(Input::Propose(cmd(seq)), &mut out);
        }
        let batch: Vec<_> = (2..=5).map(cmd).collect();
        assert_eq!(
            accepts(&out),
            [(0, one(1)), (1, Value::Batch(batch.into()))]
        );
        assert_eq!(p.pending(), 0);
        p.step_into(Input::Propose(cmd(6)), &mut out);
        assert_eq!(p.pending(), 1, "window full: it waits");
    }

    #[test]
    fn adoption_keeps_the_highest_ballot_whatever_the_promise_order() {
        let mut p = Proposer::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let b = campaign(&mut p, &mut out);
        let pv = |round, op| PValue {
            slot: 0,
            ballot: Ballot::new(round, NodeId(3)),
            value: one(op),
        };
        p.step_into(promise(2, b, vec![pv(2, 20)]), &mut out);
        p.step_into(promise(3, b, vec![pv(1, 10)]), &mut out);
        assert_eq!(accepts(&out), [(0, one(20))]);
    }

    #[test]
    fn a_slot_is_chosen_by_exactly_a_quorum_of_acks_in_our_ballot() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        p.step_into(Input::Propose(cmd(1)), &mut out);
        out.clear();
        let stale = Ballot::new(b.round - 1, NodeId(3));
        p.step_into(
            recv(
                2,
                Message::Accepted {
                    ballot: stale,
                    slot: 0,
                    value: None,
                },
            ),
            &mut out,
        );
        ack(&mut p, b, 0, &[1], &mut out);
        assert!(
            out.is_empty(),
            "one ack in our ballot and one in another are not a quorum"
        );
        ack(&mut p, b, 0, &[3], &mut out);
        ack(&mut p, b, 0, &[2], &mut out);
        let decided = out
            .iter()
            .filter(|a| matches!(a, Action::Event(Event::Decided { slot: 0 })))
            .count();
        assert_eq!(decided, 1, "chosen once, at the second ack");
        assert_eq!(p.commit(), 1);
    }

    #[test]
    fn commit_announces_itself_only_when_it_moves_and_nothing_else_carries_it() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        for seq in 1..=5 {
            p.step_into(Input::Propose(cmd(seq)), &mut out);
        }
        out.clear();
        let heartbeats = |out: &[A]| -> Vec<Slot> {
            out.iter()
                .filter_map(|a| match a {
                    Action::Send {
                        msg: Message::Heartbeat { commit, .. },
                        ..
                    } => Some(*commit),
                    _ => None,
                })
                .collect()
        };
        ack(&mut p, b, 1, &[1, 2], &mut out);
        assert_eq!(p.commit(), 0, "slot 1 chosen before slot 0");
        assert!(heartbeats(&out).is_empty());
        ack(&mut p, b, 0, &[1, 2], &mut out);
        assert_eq!(p.commit(), 2);
        assert_eq!(
            heartbeats(&out),
            [2],
            "nothing was queued to carry the commit point"
        );
    }

    #[test]
    fn only_a_higher_promise_for_our_own_ballot_makes_us_step_down() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        let other = Ballot::new(b.round - 1, NodeId(2));
        let higher = Ballot::new(b.round + 5, NodeId(2));
        p.step_into(
            recv(
                2,
                Message::Nack {
                    ballot: other,
                    promised: higher,
                },
            ),
            &mut out,
        );
        p.step_into(
            recv(
                2,
                Message::Nack {
                    ballot: b,
                    promised: b,
                },
            ),
            &mut out,
        );
        assert!(p.is_leader());
    }

    #[test]
    fn a_follower_hearing_its_leader_never_campaigns() {
        let mut p = Proposer::<u64>::new(&config()).unwrap();
        let mut out: Vec<A> = Vec::new();
        let leader_ballot = Ballot::new(3, NodeId(2));
        for _ in 0..5 * p.config.election_timeout_ticks {
            p.step_into(
                recv(
                    2,
                    Message::Heartbeat {
                        ballot: leader_ballot,
                        commit: 0,
                        beat: 1,
                    },
                ),
                &mut out,
            );
            p.step_into(Input::Tick, &mut out);
        }
        assert_eq!(p.state(), ProposerState::Follower);
        assert_eq!(p.leader(), Some(NodeId(2)));
        assert!(out.is_empty());
    }

    #[test]
    fn a_follower_waits_at_least_the_election_timeout_before_campaigning() {
        for seed in 0..16 {
            let mut p = Proposer::<u64>::new(&config().with_seed(seed)).unwrap();
            let mut out: Vec<A> = Vec::new();
            for _ in 0..p.config.election_timeout_ticks - 1 {
                p.step_into(Input::Tick, &mut out);
            }
            assert_eq!(p.state(), ProposerState::Follower, "seed {seed}");
        }
    }

    #[test]
    fn a_higher_candidate_or_leader_turns_us_into_its_follower() {
        let (mut p, b) = leader();
        let mut out: Vec<A> = Vec::new();
        let candidate = Ballot::new(b.round + 1, NodeId(3));
        p.step_into(
            recv(
                3,
                Message::Prepare {
                    ballot: candidate,
                    from_slot: 0,
                },
            ),
            &mut out,
        );
        assert_eq!(
            (p.state(), p.leader()),
            (ProposerState::Follower, Some(NodeId(3)))
        );
        let mut q = Proposer::<u64>::new(&config()).unwrap();
        let mine = campaign(&mut q, &mut out);
        let newer = Ballot::new(mine.round + 1, NodeId(2));
        q.step_into(
            recv(
                2,
                Message::Heartbeat {
                    ballot: newer,
                    commit: 0,
                    beat: 1,
                },
            ),
            &mut out,
        );
        assert_eq!(
            (q.state(), q.leader()),
            (ProposerState::Follower, Some(NodeId(2)))
        );
        q.step_into(
            recv(
                3,
                Message::Prepare {
                    ballot: Ballot::new(newer.round + 1, NodeId(3)),
                    from_slot: 0,
                },
            ),
            &mut out,
        );
        assert_eq!(
            q.leader(),
            Some(NodeId(3)),
            "a follower expects the newer candidate to win"
        );
    }
}
